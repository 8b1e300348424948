"""SRTP (RFC 3711) for one direction of a stream, and the bridge between an SRTP
leg and a plain one.

Theory of operation
-------------------
``SrtpKeys`` is what keying gives: a protection profile and the master key
followed by the master salt, from an ``a=crypto`` line (SDES, RFC 4568,
``media/sdes.py``) or from the DTLS exporter (RFC 5764 §4.2,
``media/dtls.py``).  ``SrtpContext`` wraps one pylibsrtp session for one
direction: a sending context protects RTP and RTCP with our key, a receiving
context unprotects with the peer's key.  Every libsrtp refusal of a packet
(authentication failure, replay, a packet too short or too long) comes back
as ``None`` and a count in ``SrtpStats``; no exception leaves the context.

libsrtp keeps one cryptographic stream per SSRC and creates it on the first
packet of that SSRC that authenticates.  The SSRCs are chosen by the peer,
so a context keeps at most ``MAX_SSRCS`` of them and forgets the oldest
when a new one arrives (STYLE rule 9).  Sending contexts refuse to protect
a sequence number twice (libsrtp's replay check on the sending side): the
same keystream never encrypts two payloads.

``SrtpBridge`` holds both sides of a relayed stream ("a" and "b"), each
either plain or SRTP (an ``SrtpSide``: the peer's receiving context and our
sending context).  A packet from side X is unprotected if X speaks SRTP and
protected again if the other side does; between two plain sides it passes
untouched.  It is sans-IO; ``tap()`` gives the callable ``RelayStream.set_tap``
wants, sending the result with ``RelayStream.send``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import pylibsrtp

from .rtp import RTCP_HEADER_SIZE, RTP_HEADER_SIZE

if TYPE_CHECKING:
    from .relay import Side

MAX_SSRCS = 16  # cryptographic streams kept per context
REPLAY_WINDOW = 128  # RFC 3711 §3.3.2: at least 64


class SrtpProfile(enum.Enum):
    """The protection profiles Centrala speaks: their SDES (RFC 4568 §6.2) and
    DTLS-SRTP (RFC 5764 §4.1.2) names and libsrtp's number."""

    AES_CM_128_HMAC_SHA1_80 = (
        "AES_CM_128_HMAC_SHA1_80", b"SRTP_AES128_CM_SHA1_80",
        pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    AES_CM_128_HMAC_SHA1_32 = (
        "AES_CM_128_HMAC_SHA1_32", b"SRTP_AES128_CM_SHA1_32",
        pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    )

    def __init__(self, sdes_name: str, dtls_name: bytes, libsrtp: int) -> None:
        self.sdes_name, self.dtls_name, self.libsrtp = sdes_name, dtls_name, libsrtp

    @property
    def key_length(self) -> int:
        return 16  # RFC 3711 §8.2: a 128-bit master key

    @property
    def salt_length(self) -> int:
        return 14  # and a 112-bit master salt

    @classmethod
    def from_sdes(cls, name: str) -> SrtpProfile | None:
        return next((p for p in cls if p.sdes_name == name), None)

    @classmethod
    def from_dtls(cls, name: bytes) -> SrtpProfile | None:
        return next((p for p in cls if p.dtls_name == name), None)


@dataclass(frozen=True, slots=True)
class SrtpKeys:
    """A profile and ``master key || master salt`` for one direction."""

    profile: SrtpProfile
    master: bytes = field(repr=False)

    def __post_init__(self) -> None:
        expected = self.profile.key_length + self.profile.salt_length
        if len(self.master) != expected:
            raise ValueError(
                f"SRTP master key and salt are {expected} bytes, not {len(self.master)}")


class SrtpDirection(enum.Enum):
    SEND = "send"  # protect with our key
    RECEIVE = "receive"  # unprotect with the peer's key


@dataclass(slots=True)
class SrtpStats:
    """Counters of one context; every refused packet is in exactly one of the last three."""

    packets: int = 0  # protected or unprotected
    auth_failures: int = 0
    replays: int = 0
    malformed: int = 0  # too short, too long, or any other libsrtp refusal

    @property
    def dropped(self) -> int:
        return self.auth_failures + self.replays + self.malformed


_AUTH_FAILURE = pylibsrtp.ERRORS[7]  # srtp_err_status_auth_fail
_REPLAYS = frozenset(pylibsrtp.ERRORS[9:11])  # replay_fail, replay_old


class SrtpContext:
    """One direction of SRTP and SRTCP with one master key (RFC 3711 §3.2)."""

    __slots__ = ("_session", "_ssrcs", "direction", "keys", "stats")

    def __init__(self, keys: SrtpKeys, direction: SrtpDirection) -> None:
        self.keys, self.direction = keys, direction
        self.stats = SrtpStats()
        sending = direction is SrtpDirection.SEND
        policy = pylibsrtp.Policy(
            key=keys.master, srtp_profile=keys.profile.libsrtp,
            ssrc_type=(pylibsrtp.Policy.SSRC_ANY_OUTBOUND if sending
                       else pylibsrtp.Policy.SSRC_ANY_INBOUND),
        )
        policy.window_size = REPLAY_WINDOW
        self._session = pylibsrtp.Session(policy)
        self._ssrcs: dict[int, None] = {}  # insertion order: oldest first

    def protect(self, packet: bytes | bytearray | memoryview) -> bytes | None:
        """SRTP from plain RTP (sending context), or None when refused."""
        return self._run(packet, RTP_HEADER_SIZE, 8, self._session.protect, SrtpDirection.SEND)

    def protect_rtcp(self, packet: bytes | bytearray | memoryview) -> bytes | None:
        return self._run(packet, RTCP_HEADER_SIZE, 4, self._session.protect_rtcp,
                         SrtpDirection.SEND)

    def unprotect(self, packet: bytes | bytearray | memoryview) -> bytes | None:
        """Plain RTP from SRTP (receiving context), or None when refused."""
        return self._run(packet, RTP_HEADER_SIZE, 8, self._session.unprotect,
                         SrtpDirection.RECEIVE)

    def unprotect_rtcp(self, packet: bytes | bytearray | memoryview) -> bytes | None:
        return self._run(packet, RTCP_HEADER_SIZE, 4, self._session.unprotect_rtcp,
                         SrtpDirection.RECEIVE)

    def _run(self, packet: bytes | bytearray | memoryview, minimum: int, ssrc_at: int,
             transform: Callable[[bytes], bytes], direction: SrtpDirection) -> bytes | None:
        if direction is not self.direction:
            raise ValueError(f"a {self.direction.value} context cannot do that")
        if len(packet) < minimum:
            self.stats.malformed += 1
            return None
        ssrc = int.from_bytes(packet[ssrc_at : ssrc_at + 4], "big")
        try:
            out = transform(bytes(packet))
        except pylibsrtp.Error as exc:
            self._count(str(exc))
            return None
        except ValueError:  # pylibsrtp: over its 1500-byte buffer (with the trailer)
            self.stats.malformed += 1
            return None
        self.stats.packets += 1
        if ssrc not in self._ssrcs:
            self._remember(ssrc)
        return out

    def _count(self, reason: str) -> None:
        if reason == _AUTH_FAILURE:
            self.stats.auth_failures += 1
        elif reason in _REPLAYS:
            self.stats.replays += 1
        else:
            self.stats.malformed += 1

    def _remember(self, ssrc: int) -> None:
        self._ssrcs[ssrc] = None
        if len(self._ssrcs) > MAX_SSRCS:
            oldest = next(iter(self._ssrcs))
            del self._ssrcs[oldest]
            self._session.remove_stream(oldest)


@dataclass(slots=True)
class SrtpSide:
    """An SRTP leg: the peer's packets are unprotected with ``receive``, ours
    protected with ``send``."""

    receive: SrtpContext
    send: SrtpContext

    @classmethod
    def of(cls, remote: SrtpKeys, local: SrtpKeys) -> SrtpSide:
        """``remote``: the key the peer sends with; ``local``: the one we send with."""
        return cls(SrtpContext(remote, SrtpDirection.RECEIVE),
                   SrtpContext(local, SrtpDirection.SEND))


class SendingStream(Protocol):
    """What ``SrtpBridge.tap`` needs of ``media.relay.RelayStream``."""

    def send(self, side: Side, packet: bytearray) -> bool: ...


_OTHER: dict[Side, Side] = {"a": "b", "b": "a"}


class SrtpBridge:
    """Both sides of a stream, each plain (None) or SRTP: decrypt from an SRTP
    side, encrypt towards one, pass through between plain ones."""

    __slots__ = ("sides",)

    def __init__(self, a: SrtpSide | None, b: SrtpSide | None) -> None:
        self.sides: dict[Side, SrtpSide | None] = {"a": a, "b": b}

    def rtp(self, from_side: Side, packet: bytes | bytearray | memoryview) -> bytes | None:
        """The RTP packet to send to the other side, or None when it is dropped."""
        return self._bridge(from_side, packet, rtcp=False)

    def rtcp(self, from_side: Side, packet: bytes | bytearray | memoryview) -> bytes | None:
        """The same for a compound RTCP packet."""
        return self._bridge(from_side, packet, rtcp=True)

    def _bridge(self, from_side: Side, packet: bytes | bytearray | memoryview,
                rtcp: bool) -> bytes | None:
        source, target = self.sides[from_side], self.sides[_OTHER[from_side]]
        plain: bytes | bytearray | memoryview = packet
        if source is not None:
            ctx = source.receive
            unprotected = ctx.unprotect_rtcp(packet) if rtcp else ctx.unprotect(packet)
            if unprotected is None:
                return None
            plain = unprotected
        if target is not None:
            ctx = target.send
            return ctx.protect_rtcp(plain) if rtcp else ctx.protect(plain)
        return bytes(plain)

    def tap(self, from_side: Side, stream: SendingStream) -> Callable[[memoryview], None]:
        """For ``RelayStream.set_tap(from_side, ...)``: bridge each RTP packet and
        send it to the other side."""
        to_side = _OTHER[from_side]

        def tap(packet: memoryview) -> None:
            out = self._bridge(from_side, packet, rtcp=False)
            if out is not None:
                stream.send(to_side, bytearray(out))

        return tap
