"""Transaction timer values (RFC 3261 §17, Table 4 of Appendix A; RFC 6026 §8.11).

Theory of operation
-------------------
``TimerConfig`` holds the three base values T1, T2 and T4; every other timer is
derived from them.  The transactions keep *absolute deadlines* (plain floats
on the caller's clock) in fields named after the RFC timers (``timer_a``...),
and ask this object only for the *durations*.  Timers whose value depends on
the transport take ``reliable`` and return 0 over TCP/TLS/SCTP: a zero
duration means "fire at once", which the machines do by arming the timer at
``now`` and running their due timers before returning.

Retransmission intervals: Timer A doubles without a cap (§17.1.1.2); Timers
E and G double up to T2 (§17.1.2.2, §17.2.1).  Timer C (§16.6 step 11) is
not one of the RFC's UA timers: Centrala uses it as a guard on a client
INVITE stuck in Proceeding (see ``client_invite.py``); ``None`` disables it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """Base timer values in seconds (RFC 3261 §17.1.1.1, Table 4)."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # maximum retransmit interval for non-INVITE and INVITE responses
    t4: float = 5.0  # maximum duration a message remains in the network
    timer_c: float | None = 181.0  # RFC 3261 §16.6 step 11: > 3 minutes

    def __post_init__(self) -> None:
        if not (0 < self.t1 <= self.t2) or self.t4 < 0:
            raise ValueError("timers must satisfy 0 < T1 <= T2 and T4 >= 0")
        if self.timer_c is not None and self.timer_c <= 0:
            raise ValueError("Timer C must be positive")

    # -- client INVITE (RFC 3261 §17.1.1.2) -------------------------------
    @property
    def timer_a(self) -> float:
        """Initial INVITE retransmit interval (unreliable transports only)."""
        return self.t1

    @property
    def timer_b(self) -> float:
        """INVITE transaction timeout."""
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        """Wait time for response retransmits, unreliable: at least 32 s."""
        return max(32.0, 64 * self.t1)

    @property
    def timer_m(self) -> float:
        """RFC 6026 §8.4: wait time for 2xx retransmissions in Accepted."""
        return 64 * self.t1

    # -- client non-INVITE (RFC 3261 §17.1.2.2) ---------------------------
    @property
    def timer_e(self) -> float:
        """Initial non-INVITE retransmit interval (unreliable transports only)."""
        return self.t1

    @property
    def timer_f(self) -> float:
        """Non-INVITE transaction timeout."""
        return 64 * self.t1

    @property
    def timer_k(self) -> float:
        """Wait time for response retransmits, unreliable."""
        return self.t4

    # -- server INVITE (RFC 3261 §17.2.1) ---------------------------------
    @property
    def timer_g(self) -> float:
        """Initial INVITE response retransmit interval (unreliable only)."""
        return self.t1

    @property
    def timer_h(self) -> float:
        """Wait time for ACK receipt."""
        return 64 * self.t1

    @property
    def timer_i(self) -> float:
        """Wait time for ACK retransmits, unreliable."""
        return self.t4

    @property
    def timer_l(self) -> float:
        """RFC 6026 §8.7: wait time for INVITE retransmissions in Accepted."""
        return 64 * self.t1

    # -- server non-INVITE (RFC 3261 §17.2.2) -----------------------------
    @property
    def timer_j(self) -> float:
        """Wait time for request retransmits, unreliable."""
        return 64 * self.t1

    # -- per transport ------------------------------------------------------
    def d(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timer_d

    def i(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timer_i

    def j(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timer_j

    def k(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timer_k

    # -- retransmission back-off -------------------------------------------
    def next_a(self, interval: float) -> float:
        """RFC 3261 §17.1.1.2: Timer A doubles each time, no cap."""
        return 2 * interval

    def next_e(self, interval: float) -> float:
        """RFC 3261 §17.1.2.2: Timer E doubles up to T2 (in Trying)."""
        return min(2 * interval, self.t2)

    def next_g(self, interval: float) -> float:
        """RFC 3261 §17.2.1: Timer G doubles up to T2."""
        return min(2 * interval, self.t2)


DEFAULT_TIMERS = TimerConfig()


def earliest(*deadlines: float | None) -> float | None:
    """The smallest armed deadline, or None if none is armed."""
    best: float | None = None
    for d in deadlines:
        if d is not None and (best is None or d < best):
            best = d
    return best


__all__ = ["DEFAULT_TIMERS", "TimerConfig", "earliest"]
