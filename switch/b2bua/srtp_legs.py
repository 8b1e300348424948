"""SRTP per leg of an anchored call: each leg keyed on its own, the relay bridging.

Theory of operation
-------------------
Every leg of a call has an ``Encryption`` setting (its extension's or
trunk's ``encryption``, ``dialplan/schema.py``):

* ``off``: plain RTP only; an offer whose streams are all SRTP (RTP/SAVP)
  gets 488, a best-effort ``a=crypto`` in RTP/AVP is ignored;
* ``optional``: an SRTP offer is accepted, answered with our own key, and
  bridged to whatever the other leg speaks; offers *to* the leg are plain
  RTP/AVP, unless the leg has already negotiated SRTP on that m-line (a
  re-INVITE keeps it SRTP);
* ``required``: offers to the leg are RTP/SAVP with our ``a=crypto`` lines
  only, and an offer from it with an RTP stream that is not SRTP gets 488.

Keys never cross the call (RFC 4568 §6.1: a key belongs to one pair of
parties): ``SrtpLegs.offer`` takes the offer received on leg X, records the
line of X it uses and our answer line for X (``answer_crypto``), and returns
a copy for leg Y without X's ``a=crypto``/``a=fingerprint``/``a=setup``,
with the protocol and, when Y is to speak SRTP, our own offer lines
(``offer_crypto``).  ``SrtpLegs.answer`` takes Y's answer: our offered line
it chose (``accept_crypto``, else 488), then a copy for X without Y's lines
and with our answer line for X.  ``media.offer_answer`` copies the rest.

The keys of each answered m-line become an ``SrtpSide`` per relay side (None:
plain), kept while the same keys are renegotiated (183 then 200, session
refreshes), so no keystream is started twice.  ``wire`` sets the relay: as
soon as one side of a stream is SRTP, both sides get an RTP tap and an RTCP
tap (``RelayStream.set_tap``/``set_rtcp_tap``); an SRTP side's packets are
unprotected there and handed back with ``RelayStream.forward`` (payload-type
map, rewriter), and an SRTP side's ``encoder`` protects what is sent to it,
players included.  A stream with two plain sides keeps the plain hot path.

DTLS-SRTP (UDP/TLS/RTP/SAVP) is not terminated yet: such a stream is refused
with 488 (a leg that allows SRTP cannot be answered plain RTP).

``release`` drops every context; the relay closes the streams.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from media.relay import Encoder, Side
from media.sdes import CryptoAttribute, accept_crypto, answer_crypto, offer_crypto
from media.sdp import (
    NOT_ACCEPTABLE_HERE,
    Attribute,
    MediaDescription,
    SdpError,
    SessionDescription,
)
from media.srtp import SrtpBridge, SrtpKeys, SrtpSide

from .media import Leg

log = logging.getLogger("centrala.media")

KEYING_ATTRIBUTES = ("crypto", "fingerprint", "setup", "tls-id")  # one leg's, never relayed
_OTHER: dict[Side, Side] = {"a": "b", "b": "a"}


class Encryption(enum.StrEnum):
    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


@runtime_checkable
class SrtpStream(Protocol):
    """What the bridge needs of a relayed stream (``media.relay.RelayStream``)."""

    def set_tap(self, from_side: Side, tap: Callable[[memoryview], None] | None) -> None: ...
    def set_rtcp_tap(self, from_side: Side,
                     tap: Callable[[memoryview], None] | None) -> None: ...
    def set_encoder(self, side: Side, encoder: Encoder | None) -> None: ...
    def forward(self, from_side: Side, packet: bytearray) -> bool: ...
    def send_rtcp(self, side: Side, packet: bytes | bytearray) -> bool: ...


@dataclass(slots=True)
class _Offer:
    """One offer crossing the call: per m-line, the offerer's line we use with our
    answer line for it, and the lines we offered the answerer."""

    offerer: Leg
    to_offerer: dict[int, tuple[CryptoAttribute, CryptoAttribute]] = field(default_factory=dict)
    to_answerer: dict[int, list[CryptoAttribute]] = field(default_factory=dict)


def is_srtp(m: MediaDescription) -> bool:
    """SDES SRTP: RTP/SAVP(F), or a best-effort ``a=crypto`` in RTP/AVP(F)."""
    return m.is_rtp and not is_dtls(m) and ("/SAVP" in m.proto or m.has_attribute("crypto"))


def is_dtls(m: MediaDescription) -> bool:
    return m.proto.startswith("UDP/TLS/")


class SrtpLegs:
    """The SRTP keys of one call's legs and the bridges they need."""

    def __init__(self, call_ref: str, setting: Callable[[Leg], Encryption]) -> None:
        self.call_ref = call_ref
        self._setting = setting
        self._settings: dict[Leg, Encryption] = {}  # fixed at first use: reloads spare calls
        self._pending: dict[Leg, _Offer] = {}  # by answerer
        self.sides: dict[tuple[int, Side], SrtpSide] = {}  # (m-line, relay side): its SRTP
        self._wired: set[int] = set()

    def setting(self, leg: Leg) -> Encryption:
        if leg not in self._settings:
            self._settings[leg] = self._setting(leg)
        return self._settings[leg]

    # -- offer/answer ---------------------------------------------------------------------
    def offer(self, sender: Leg, receiver: Leg, offer: SessionDescription) -> SessionDescription:
        """``offer`` from ``sender`` checked against its setting; the copy to anchor for
        ``receiver``, keyed for it.  488 for an offer the sender's setting refuses."""
        out = SessionDescription.parse(bytes(offer))
        out.remove_attributes(*KEYING_ATTRIBUTES)
        pending = _Offer(sender)
        for i, m in enumerate(out.media):
            if m.port == 0 or not m.is_rtp:
                continue
            theirs = self._offered_key(sender, offer.media[i])
            if theirs is not None:
                pending.to_offerer[i] = theirs
            m.remove_attributes(*KEYING_ATTRIBUTES)
            if self._offer_srtp(receiver, i):
                m.proto = "RTP/SAVPF" if m.proto.endswith("F") else "RTP/SAVP"
                ours = pending.to_answerer[i] = offer_crypto()
                m.attributes += [_crypto(line) for line in ours]
            else:
                m.proto = "RTP/AVPF" if m.proto.endswith("F") else "RTP/AVP"
        self._pending[receiver] = pending
        return out

    def _offered_key(self, sender: Leg, m: MediaDescription
                     ) -> tuple[CryptoAttribute, CryptoAttribute] | None:
        setting = self.setting(sender)
        if is_dtls(m):
            raise SdpError("DTLS-SRTP is not supported: offer SDES (a=crypto)",
                           NOT_ACCEPTABLE_HERE)
        mandatory = "/SAVP" in m.proto
        if setting is Encryption.OFF or not is_srtp(m):
            if mandatory:
                raise SdpError("SRTP offered to a leg with encryption off", NOT_ACCEPTABLE_HERE)
            if setting is Encryption.REQUIRED:
                raise SdpError("this extension requires encryption (SRTP)", NOT_ACCEPTABLE_HERE)
            return None
        try:
            return answer_crypto(m.attribute_values("crypto"))
        except SdpError:
            if mandatory or setting is Encryption.REQUIRED:
                raise
            return None  # best effort (RTP/AVP) with lines we cannot use: plain

    def _offer_srtp(self, receiver: Leg, index: int) -> bool:
        return self.setting(receiver) is Encryption.REQUIRED or (index, receiver.side) in self.sides

    def answer(self, sender: Leg, answer: SessionDescription) -> SessionDescription:
        """``answer`` from ``sender`` to the offer last sent to it: our lines checked
        and its keys taken; the copy to anchor for the offerer, with our answer
        lines for it.  488 when ``sender`` did not key SRTP we offered."""
        pending = self._pending.get(sender)
        if pending is None:
            raise SdpError("an answer to no offer (RFC 3264 §4)", NOT_ACCEPTABLE_HERE)
        out = SessionDescription.parse(bytes(answer))
        out.remove_attributes(*KEYING_ATTRIBUTES)
        staged: dict[tuple[int, Side], SrtpSide | None] = {}
        for i, m in enumerate(out.media):
            values = m.attribute_values("crypto")
            m.remove_attributes(*KEYING_ATTRIBUTES)
            if m.port == 0 or not m.is_rtp:
                continue
            offered = pending.to_answerer.get(i)
            staged[(i, sender.side)] = None
            if offered is not None:
                line = accept_crypto(offered, values)
                ours = next(o for o in offered if o.tag == line.tag)
                staged[(i, sender.side)] = self._side(i, sender.side, line, ours)
            x = pending.to_offerer.get(i)
            staged[(i, pending.offerer.side)] = None
            if x is not None:
                m.attributes.append(_crypto(x[1]))
                staged[(i, pending.offerer.side)] = self._side(i, pending.offerer.side, *x)
        for key, value in staged.items():
            if value is None:
                self.sides.pop(key, None)
            else:
                self.sides[key] = value
        return out

    def _side(self, index: int, side: Side, theirs: CryptoAttribute,
              ours: CryptoAttribute) -> SrtpSide:
        """The contexts for these keys: the ones in use when the keys are unchanged."""
        current = self.sides.get((index, side))
        remote, local = theirs.srtp_keys, ours.srtp_keys
        if current is not None and _same(current, remote, local):
            return current
        return SrtpSide.of(remote, local)

    # -- the relay ------------------------------------------------------------------------
    def wire(self, streams: Mapping[int, object]) -> None:
        """Taps and encoders on each stream with an SRTP side; none on the others."""
        for index, stream in streams.items():
            a, b = self.sides.get((index, "a")), self.sides.get((index, "b"))
            if a is None and b is None and index not in self._wired:
                continue
            if not isinstance(stream, SrtpStream):
                raise SdpError("this relay cannot bridge SRTP", NOT_ACCEPTABLE_HERE)
            if a is None and b is None:
                _unwire(stream)
                self._wired.discard(index)
                continue
            _wire(stream, SrtpBridge(a, b))
            self._wired.add(index)
            log.debug("[%s] stream %d: side a %s, side b %s", self.call_ref, index,
                      "SRTP" if a else "RTP", "SRTP" if b else "RTP")

    def release(self) -> None:
        """The call is over: forget every key and context (idempotent)."""
        self.sides.clear()
        self._pending.clear()
        self._wired.clear()


def _crypto(line: CryptoAttribute) -> Attribute:
    return Attribute("crypto", str(line))


def _same(side: SrtpSide, remote: SrtpKeys, local: SrtpKeys) -> bool:
    return side.receive.keys == remote and side.send.keys == local


def _wire(stream: SrtpStream, bridge: SrtpBridge) -> None:
    for side in ("a", "b"):
        srtp = bridge.sides[side]
        stream.set_encoder(side, None if srtp is None else srtp.send.protect)
        stream.set_tap(side, _rtp_tap(stream, side, srtp))
        stream.set_rtcp_tap(side, _rtcp_tap(stream, side, bridge))


def _unwire(stream: SrtpStream) -> None:
    for side in ("a", "b"):
        stream.set_encoder(side, None)
        stream.set_tap(side, None)
        stream.set_rtcp_tap(side, None)


def _rtp_tap(stream: SrtpStream, from_side: Side,
             srtp: SrtpSide | None) -> Callable[[memoryview], None]:
    """RTP from ``from_side``: unprotected if it speaks SRTP, then relayed on through
    ``forward`` (which protects it when the other side speaks SRTP)."""
    forward = stream.forward
    if srtp is None:
        def plain(packet: memoryview) -> None:
            forward(from_side, bytearray(packet))

        return plain
    unprotect = srtp.receive.unprotect

    def decrypt(packet: memoryview) -> None:
        out = unprotect(packet)
        if out is not None:
            forward(from_side, bytearray(out))

    return decrypt


def _rtcp_tap(stream: SrtpStream, from_side: Side,
              bridge: SrtpBridge) -> Callable[[memoryview], None]:
    to_side = _OTHER[from_side]
    send, rtcp = stream.send_rtcp, bridge.rtcp

    def tap(packet: memoryview) -> None:
        out = rtcp(from_side, packet)
        if out is not None:
            send(to_side, out)

    return tap


__all__ = ["Encryption", "SrtpLegs", "SrtpStream", "is_dtls", "is_srtp"]
