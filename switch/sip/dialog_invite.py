"""End-to-end response retransmission of the INVITE session (RFC 3261 §13.3.1.4, RFC 3262 §3).

Theory of operation
-------------------
Since RFC 6026 the INVITE server transaction sends a 2xx once and never
again: the UAS core retransmits it, end to end and over every transport (a
hop further on may be UDP), until the ACK arrives.  A reliable provisional
response (RFC 3262 §3) is retransmitted the same way until its PRACK.  One
machine, ``ResponseRetransmitter``, does both:

* Created when the response is first sent (at ``now``).  ``retransmit_at``
  fires after T1, then the interval doubles up to T2 (§13.3.1.4): with the
  default timers, retransmissions at 0.5, 1.5, 3.5, 7.5, 11.5, 15.5 ... 31.5 s.
* ``give_up_at`` fires 64*T1 after the start (32 s) with no acknowledgement:
  the TU hears ``AckTimeout`` (it must then send BYE, §13.3.1.4) or
  ``PrackTimeout`` (it should answer the INVITE 5xx, RFC 3262 §3).
* ``acknowledged()`` (the ACK / PRACK arrived) or ``stop()`` (the TU gave
  up the response: the INVITE got its final response, the dialog ended)
  stops both timers; later ACKs are absorbed.

``InviteSessionUAS`` is the 2xx flavour (``ack_received``), and
``ReliableProvisionalUAS`` the 1xx one (``prack_received``).  Both are
sans-IO: ``next_timer()`` is the one deadline, ``handle_timer(now)`` returns
``Send`` outputs and the timeout event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

from .address import Address
from .events import Send
from .message import Request, Response
from .timers import DEFAULT_TIMERS, TimerConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AckTimeout:
    """No ACK for our 2xx within 64*T1: the TU must send BYE (RFC 3261 §13.3.1.4)."""

    cseq: int
    owner: object | None = None


@dataclass(frozen=True, slots=True)
class PrackTimeout:
    """No PRACK for a reliable 1xx within 64*T1: the TU should reject the INVITE
    with a 5xx (RFC 3262 §3)."""

    rseq: int
    cseq: int
    owner: object | None = None


SessionOutput = Send | AckTimeout | PrackTimeout


class RetransmitState(Enum):
    RETRANSMITTING = "Retransmitting"
    ACKNOWLEDGED = "Acknowledged"
    STOPPED = "Stopped"
    TIMED_OUT = "Timed out"


class RetransmitInput(Enum):
    # Values name the deadline fields, as in transaction_base.
    TIMER_RETRANSMIT = "retransmit_at"
    TIMER_GIVE_UP = "give_up_at"
    ACKNOWLEDGED = "ACK/PRACK received"
    STOP = "stopped by the TU"


class RetransmitAction(Enum):
    NONE = "none"
    IGNORE = "ignore"
    RETRANSMIT = "retransmit"
    GIVE_UP = "report timeout"


S, I, A = RetransmitState, RetransmitInput, RetransmitAction

# (state, input) -> (action, next state).  Timers are disarmed on leaving
# RETRANSMITTING, so they have no key in the other states.
Key = tuple[RetransmitState, RetransmitInput]
TRANSITIONS: dict[Key, tuple[RetransmitAction, RetransmitState]] = {
    (S.RETRANSMITTING, I.TIMER_RETRANSMIT): (A.RETRANSMIT, S.RETRANSMITTING),
    (S.RETRANSMITTING, I.TIMER_GIVE_UP): (A.GIVE_UP, S.TIMED_OUT),
    (S.RETRANSMITTING, I.ACKNOWLEDGED): (A.NONE, S.ACKNOWLEDGED),
    (S.RETRANSMITTING, I.STOP): (A.NONE, S.STOPPED),
    (S.ACKNOWLEDGED, I.ACKNOWLEDGED): (A.IGNORE, S.ACKNOWLEDGED),  # ACK retransmission
    (S.ACKNOWLEDGED, I.STOP): (A.IGNORE, S.ACKNOWLEDGED),
    (S.STOPPED, I.ACKNOWLEDGED): (A.IGNORE, S.STOPPED),
    (S.STOPPED, I.STOP): (A.IGNORE, S.STOPPED),
    (S.TIMED_OUT, I.ACKNOWLEDGED): (A.IGNORE, S.TIMED_OUT),  # too late: the TU was told
    (S.TIMED_OUT, I.STOP): (A.IGNORE, S.TIMED_OUT),
}
del S, I, A

# Order in which due timers fire on a tie: giving up before retransmitting.
_TIMERS = (RetransmitInput.TIMER_GIVE_UP, RetransmitInput.TIMER_RETRANSMIT)


class ResponseRetransmitter:
    """Retransmits ``response`` to ``dest`` until acknowledged; see module docstring."""

    __slots__ = (
        "_interval",
        "dest",
        "give_up_at",
        "owner",
        "response",
        "retransmit_at",
        "state",
        "timers",
    )

    def __init__(
        self,
        response: Response,
        dest: Address,
        now: float,
        timers: TimerConfig = DEFAULT_TIMERS,
        owner: object = None,
    ) -> None:
        self.response = response
        self.dest = dest
        self.timers = timers
        self.owner = owner
        self.state = RetransmitState.RETRANSMITTING
        self._interval = timers.t1
        self.retransmit_at: float | None = now + timers.t1  # §13.3.1.4: T1 first
        self.give_up_at: float | None = now + 64 * timers.t1  # §13.3.1.4: 64*T1

    # -- inputs ------------------------------------------------------------
    def next_timer(self) -> float | None:
        a, b = self.retransmit_at, self.give_up_at
        if a is None or b is None:
            return b if a is None else a
        return min(a, b)

    def handle_timer(self, now: float) -> list[SessionOutput]:
        """Fire every timer due at ``now``, earliest first."""
        out: list[SessionOutput] = []
        while True:
            due = None
            for inp in _TIMERS:
                at = getattr(self, inp.value)
                if at is not None and at <= now and (due is None or at < getattr(self, due.value)):
                    due = inp
            if due is None:
                return out
            setattr(self, due.value, None)
            out.extend(self._feed(due, now))

    def acknowledged(self) -> None:
        self._feed(RetransmitInput.ACKNOWLEDGED, None)

    def stop(self) -> None:
        self._feed(RetransmitInput.STOP, None)

    @property
    def done(self) -> bool:
        return self.state is not RetransmitState.RETRANSMITTING

    # -- machinery -----------------------------------------------------------
    def _feed(self, inp: RetransmitInput, now: float | None) -> list[SessionOutput]:
        action, next_state = TRANSITIONS[(self.state, inp)]
        out: list[SessionOutput] = []
        if action is RetransmitAction.RETRANSMIT:
            assert now is not None
            out.append(Send(self.response, self.dest))
            self._interval = min(2 * self._interval, self.timers.t2)  # doubling up to T2
            self.retransmit_at = now + self._interval
        elif action is RetransmitAction.GIVE_UP:
            out.append(self._timeout_event())
        self._set_state(next_state, inp)
        return out

    def _set_state(self, new: RetransmitState, inp: RetransmitInput) -> None:
        old = self.state
        if new is old:
            return
        logger.debug(
            "[%s] %s %s: %s -> %s (%s)",
            self.response.call_id,
            self.response.status,
            self.response.cseq,
            old.value,
            new.value,
            inp.value,
        )
        self.state = new
        self.retransmit_at = self.give_up_at = None  # every other state is final

    def _timeout_event(self) -> AckTimeout | PrackTimeout:
        raise NotImplementedError


class InviteSessionUAS(ResponseRetransmitter):
    """RFC 3261 §13.3.1.4: a 2xx to an INVITE (initial or re-INVITE) awaiting its ACK."""

    __slots__ = ()

    @property
    def cseq(self) -> int:
        return self.response.cseq.seq

    def ack_received(self, ack: Request | None = None) -> bool:
        """Stop retransmitting; False (and nothing stops) if ``ack`` is for another
        INVITE of the dialog (its CSeq number differs)."""
        if ack is not None and ack.cseq.seq != self.cseq:
            return False
        self.acknowledged()
        return True

    def _timeout_event(self) -> AckTimeout:
        return AckTimeout(self.cseq, self.owner)


class ReliableProvisionalUAS(ResponseRetransmitter):
    """RFC 3262 §3: a reliable 1xx (carrying ``RSeq``) awaiting its PRACK."""

    __slots__ = ("rseq",)

    def __init__(
        self,
        response: Response,
        rseq: int,
        dest: Address,
        now: float,
        timers: TimerConfig = DEFAULT_TIMERS,
        owner: object = None,
    ) -> None:
        super().__init__(response, dest, now, timers, owner)
        self.rseq = rseq

    def prack_received(self) -> None:
        self.acknowledged()

    def _timeout_event(self) -> PrackTimeout:
        return PrackTimeout(self.rseq, self.response.cseq.seq, self.owner)


__all__ = [
    "TRANSITIONS",
    "AckTimeout",
    "InviteSessionUAS",
    "PrackTimeout",
    "ReliableProvisionalUAS",
    "ResponseRetransmitter",
    "RetransmitAction",
    "RetransmitInput",
    "RetransmitState",
    "SessionOutput",
]
