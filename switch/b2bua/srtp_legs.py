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
with the protocol (towards a plain leg RTP/AVP, or as offered when X was
plain; else RTP/SAVP) and, when Y is to speak SRTP, our own offer lines
(``offer_crypto``).  ``SrtpLegs.answer`` takes Y's answer: our offered line it
chose (``accept_crypto``, else 488), then a copy for X without Y's lines
and with our answer line for X.  ``media.offer_answer`` copies the rest.

The keys of each answered m-line become an ``SrtpSide`` per relay side (None:
plain), kept while the same keys are renegotiated (183 then 200, session
refreshes), so no keystream is started twice.  ``wire`` gives each SRTP side
of a stream a ``media.relay.Transform`` (``RelayStream.set_transform``): the
relay unprotects what the side sends before anything else sees it and
protects what goes to it last, so recording, DTMF detection, transcoding
taps, players and rewriters all work on plain RTP; RTCP likewise (SRTCP).
A stream with two plain sides keeps the plain hot path.

DTLS-SRTP (RFC 5763/5764, UDP/TLS/RTP/SAVP): an offer with ``a=fingerprint``
and ``a=setup`` is answered with the fingerprint of the call's certificate
(``DtlsCertificate``, made when a call first needs it) and ``a=setup:active``
(``answer_setup``).  Once the relay knows the peer, a ``DtlsLink`` runs the
sans-IO ``DtlsSession`` on that side's RTP socket: the relay's raw handler
feeds it the DTLS datagrams from the peer's SDP address (``classify``, RFC
7983; anything else is ignored), ``send_raw`` sends its flights, one
``loop.call_at`` timer per link drives retransmission.  Until the handshake
is done and the peer's certificate matches its fingerprint, nothing is
relayed to or from that stream; then the exported keys (RFC 5764 §4.2)
become the side's ``SrtpSide`` and the stream is re-wired.  An offer to a leg
with a DTLS association is DTLS again (``a=setup:actpass``); an answer with
the same fingerprints and roles keeps the association and its keys.  Offers
we start on a leg without one use SDES.

``release`` closes every DTLS association (close_notify), cancels its timer
and drops every context; the relay closes the streams.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from media.dtls import (
    DtlsCertificate,
    DtlsRole,
    DtlsSession,
    DtlsState,
    Fingerprint,
    PacketKind,
    Setup,
    answer_setup,
    classify,
    dtls_role,
    remote_fingerprints,
)
from media.relay import DROP_ALL, RawHandler, Side, Transform
from media.sdes import CryptoAttribute, KeyParams, accept_crypto, answer_crypto, offer_crypto
from media.sdp import (
    NOT_ACCEPTABLE_HERE,
    Attribute,
    MediaDescription,
    SdpError,
    SessionDescription,
)
from media.srtp import SrtpSide

from .media import Leg

log = logging.getLogger("centrala.media")

KEYING_ATTRIBUTES = ("crypto", "fingerprint", "setup", "tls-id")  # one leg's, never relayed
SIDES: tuple[Side, Side] = ("a", "b")
PLAIN_PROTOS = ("RTP/AVP", "RTP/AVPF")  # kept as offered towards a plain leg


class Encryption(enum.StrEnum):
    OFF = "off"
    OPTIONAL = "optional"
    REQUIRED = "required"


@runtime_checkable
class SrtpStream(Protocol):
    """What the bridge needs of a relayed stream (``media.relay.RelayStream``)."""

    def set_transform(self, side: Side, transform: Transform | None) -> None: ...
    def set_raw_handler(self, side: Side, handler: RawHandler | None) -> None: ...
    def send_raw(self, side: Side, data: bytes, addr: tuple[object, ...] | None = None
                 ) -> bool: ...


@dataclass(frozen=True, slots=True)
class _Dtls:
    """A DTLS-SRTP m-line of one party: its fingerprints, our role, its address."""

    fingerprints: tuple[Fingerprint, ...]
    setup: Setup  # ours, as we write it in our SDP
    role: DtlsRole
    peer_ip: str  # DTLS is accepted from this IP only (RTP bleed)

    def same_association(self, other: _Dtls) -> bool:
        """RFC 5763 §6.7: the same fingerprints and roles keep the association."""
        return (self.fingerprints, self.role) == (other.fingerprints, other.role)


@dataclass(slots=True)
class _Offer:
    """One offer crossing the call: per m-line, the offerer's keying we answer
    (its line we use with our answer line, or its DTLS parameters), and what we
    offered the answerer (our lines, or DTLS with our fingerprint)."""

    offerer: Leg
    to_offerer: dict[int, tuple[CryptoAttribute, CryptoAttribute] | _Dtls] = field(
        default_factory=dict)
    to_answerer: dict[int, list[CryptoAttribute] | None] = field(default_factory=dict)


def is_srtp(m: MediaDescription) -> bool:
    """SDES SRTP: RTP/SAVP(F), or a best-effort ``a=crypto`` in RTP/AVP(F)."""
    return m.is_rtp and not is_dtls(m) and ("/SAVP" in m.proto or m.has_attribute("crypto"))


def is_dtls(m: MediaDescription) -> bool:
    return m.proto.startswith("UDP/TLS/")


def _values(sd: SessionDescription, i: int, name: str) -> list[str]:
    """A media section's ``a=<name>`` values, else the session level's (RFC 8122 §5)."""
    return sd.media[i].attribute_values(name) or sd.attribute_values(name)


def _peer_ip(sd: SessionDescription, i: int) -> str:
    connection = sd.connection_of(i)
    if connection is None:
        raise SdpError(f"no c= for media {i} (RFC 8866 §5.7)")
    try:
        return ipaddress.ip_address(connection.address).compressed
    except ValueError:
        raise SdpError("DTLS-SRTP needs an IP address in c=", NOT_ACCEPTABLE_HERE) from None


class SrtpLegs:
    """The SRTP keys of one call's legs and the bridges they need."""

    def __init__(self, call_ref: str, setting: Callable[[Leg], Encryption],
                 certificate: Callable[[], DtlsCertificate] = DtlsCertificate.generate) -> None:
        self.call_ref = call_ref
        self._setting = setting
        self._certificate = certificate
        self._cert: DtlsCertificate | None = None
        self._settings: dict[Leg, Encryption] = {}  # fixed at first use: reloads spare calls
        self._pending: dict[Leg, _Offer] = {}  # by answerer
        self.sides: dict[tuple[int, Side], SrtpSide] = {}  # (m-line, relay side): its SRTP
        self.links: dict[tuple[int, Side], DtlsLink] = {}  # DTLS-SRTP sides, keyed or not yet
        self._streams: dict[int, SrtpStream] = {}
        self._wired: set[int] = set()

    def setting(self, leg: Leg) -> Encryption:
        if leg not in self._settings:
            self._settings[leg] = self._setting(leg)
        return self._settings[leg]

    @property
    def certificate(self) -> DtlsCertificate:
        if self._cert is None:
            self._cert = self._certificate()
        return self._cert

    # -- offer/answer ---------------------------------------------------------------------
    def offer(self, sender: Leg, receiver: Leg, offer: SessionDescription) -> SessionDescription:
        """``offer`` from ``sender`` checked against its setting; the copy to anchor for
        ``receiver``, keyed for it.  488 for an offer the sender's setting refuses."""
        out = offer.copy()
        out.remove_attributes(*KEYING_ATTRIBUTES)
        pending = _Offer(sender)
        for i, m in enumerate(out.media):
            if m.port == 0 or not m.is_rtp:
                continue
            theirs = (self._offered_dtls(sender, offer, i) if is_dtls(m)
                      else self._offered_key(sender, offer.media[i], i))
            if theirs is not None:
                pending.to_offerer[i] = theirs
            m.remove_attributes(*KEYING_ATTRIBUTES)
            pending.to_answerer[i] = self._key_offer(receiver, i, m)
        self._pending[receiver] = pending
        return out

    def _key_offer(self, receiver: Leg, i: int, m: MediaDescription
                   ) -> list[CryptoAttribute] | None:
        """The m-line as we offer it to ``receiver``: DTLS when its leg has a DTLS
        association (a re-offer keeps it), SDES when it must or did speak SRTP,
        else plain RTP.  Returns our SDES lines."""
        if (i, receiver.side) in self.links:
            m.proto = "UDP/TLS/RTP/SAVPF" if m.proto.endswith("F") else "UDP/TLS/RTP/SAVP"
            m.attributes += [Attribute("fingerprint", str(self.certificate.fingerprint())),
                             Attribute("setup", Setup.ACTPASS.value)]
            return None
        if self.setting(receiver) is Encryption.REQUIRED or (i, receiver.side) in self.sides:
            m.proto = "RTP/SAVP"
            ours = offer_crypto()
            m.attributes += [_crypto(line) for line in ours]
            return ours
        if m.proto not in PLAIN_PROTOS:
            m.proto = "RTP/AVP"  # what every phone takes (SAVPF/AVPF is WebRTC's)
        return None

    def _offered_key(self, sender: Leg, m: MediaDescription, i: int
                     ) -> tuple[CryptoAttribute, CryptoAttribute] | None:
        setting = self.setting(sender)
        mandatory = "/SAVP" in m.proto
        if setting is Encryption.OFF or not is_srtp(m):
            if mandatory:
                raise SdpError("SRTP offered to a leg with encryption off", NOT_ACCEPTABLE_HERE)
            if setting is Encryption.REQUIRED:
                raise SdpError("this extension requires encryption (SRTP)", NOT_ACCEPTABLE_HERE)
            return None
        try:
            theirs, ours = answer_crypto(m.attribute_values("crypto"))
        except SdpError:
            if mandatory or setting is Encryption.REQUIRED:
                raise
            return None  # best effort (RTP/AVP) with lines we cannot use: plain
        current = self.sides.get((i, sender.side))
        if current is not None and current.send.keys.profile is theirs.profile:
            ours = replace(ours, keys=(KeyParams(current.send.keys.master),))  # §7.1.4: no rekey
        return theirs, ours

    def _offered_dtls(self, sender: Leg, offer: SessionDescription, i: int) -> _Dtls:
        """RFC 5763 §5: the offerer's fingerprints and a=setup; we answer active
        unless it is active itself."""
        if self.setting(sender) is Encryption.OFF:
            raise SdpError("DTLS-SRTP offered to a leg with encryption off", NOT_ACCEPTABLE_HERE)
        fingerprints = tuple(remote_fingerprints(_values(offer, i, "fingerprint")))
        setup = (_values(offer, i, "setup") or [Setup.ACTPASS.value])[0]
        theirs = Setup.parse(setup)
        ours = answer_setup(theirs)
        link = self.links.get((i, sender.side))
        if theirs is Setup.ACTPASS and link is not None and (
            link.params.fingerprints == fingerprints
        ):
            ours = link.params.setup  # a re-offer: keep the roles, and the association
        return _Dtls(fingerprints, ours, dtls_role(ours, theirs), _peer_ip(offer, i))

    def answer(self, sender: Leg, answer: SessionDescription) -> SessionDescription:
        """``answer`` from ``sender`` to the offer last sent to it: our lines checked
        and its keys taken; the copy to anchor for the offerer, with our answer
        lines for it.  488 when ``sender`` did not key SRTP we offered."""
        pending = self._pending.get(sender)
        if pending is None:
            raise SdpError("an answer to no offer (RFC 3264 §4)", NOT_ACCEPTABLE_HERE)
        out = answer.copy()
        out.remove_attributes(*KEYING_ATTRIBUTES)
        staged: dict[tuple[int, Side], SrtpSide | _Dtls | None] = {}
        for i, m in enumerate(out.media):
            if m.port == 0 or not m.is_rtp:
                m.remove_attributes(*KEYING_ATTRIBUTES)
                continue
            staged[(i, sender.side)] = self._answered(sender, pending, answer, i)
            m.remove_attributes(*KEYING_ATTRIBUTES)
            x = pending.to_offerer.get(i)
            y = pending.offerer.side
            if isinstance(x, _Dtls):
                m.attributes += [Attribute("fingerprint", str(self.certificate.fingerprint())),
                                 Attribute("setup", x.setup.value)]
                staged[(i, y)] = x
            elif x is not None:
                m.attributes.append(_crypto(x[1]))
                staged[(i, y)] = self._side(i, y, *x)
            else:
                staged[(i, y)] = None
        for (i, side), value in staged.items():
            self._commit(i, side, value)
        return out

    def _answered(self, sender: Leg, pending: _Offer, answer: SessionDescription, i: int
                  ) -> SrtpSide | _Dtls | None:
        """What the answerer keyed on m-line ``i`` against what we offered it."""
        m = answer.media[i]
        if (i, sender.side) in self.links and pending.to_answerer.get(i) is None and is_dtls(m):
            fingerprints = tuple(remote_fingerprints(_values(answer, i, "fingerprint")))
            theirs = Setup.parse((_values(answer, i, "setup") or ["active"])[0])
            role = dtls_role(Setup.ACTPASS, theirs)
            ours = Setup.ACTIVE if role is DtlsRole.CLIENT else Setup.PASSIVE
            return _Dtls(fingerprints, ours, role, _peer_ip(answer, i))
        offered = pending.to_answerer.get(i)
        if offered is None:
            return None
        line = accept_crypto(offered, m.attribute_values("crypto"))
        ours_line = next(o for o in offered if o.tag == line.tag)
        return self._side(i, sender.side, line, ours_line)

    def _commit(self, i: int, side: Side, value: SrtpSide | _Dtls | None) -> None:
        key = (i, side)
        link = self.links.get(key)
        if isinstance(value, _Dtls):
            if link is not None and link.params.same_association(value):
                if not ipaddress.ip_address(value.peer_ip).is_unspecified:  # not a c=0 hold
                    link.params = value
                return  # keep the association and its keys
            self.sides.pop(key, None)
            if link is not None:
                link.close()
            self.links[key] = DtlsLink(self, i, side, value)
            return
        if link is not None:
            self.links.pop(key).close()
        if value is None:
            self.sides.pop(key, None)
        else:
            self.sides[key] = value

    def _side(self, index: int, side: Side, theirs: CryptoAttribute,
              ours: CryptoAttribute) -> SrtpSide:
        """The contexts for these keys: each direction keeps the context in use while
        its key is unchanged, so a sending context never restarts its packet index
        with a key it has used (keystream reuse, RFC 3711 §9.1)."""
        current = self.sides.get((index, side))
        remote, local = theirs.srtp_keys, ours.srtp_keys
        if current is None:
            return SrtpSide.of(remote, local)
        if current.receive.keys == remote and current.send.keys == local:
            return current
        fresh = SrtpSide.of(remote, local)
        return SrtpSide(current.receive if current.receive.keys == remote else fresh.receive,
                        current.send if current.send.keys == local else fresh.send)

    # -- the relay ------------------------------------------------------------------------
    def wire(self, streams: Mapping[int, object]) -> None:
        """Taps and encoders on each stream with an SRTP side; none on the others.
        DTLS associations not started yet start here (the relay knows the peer)."""
        for index, stream in streams.items():
            if not any(k[0] == index for k in (*self.sides, *self.links)) and (
                index not in self._wired
            ):
                continue
            if not isinstance(stream, SrtpStream):
                raise SdpError("this relay cannot bridge SRTP", NOT_ACCEPTABLE_HERE)
            self._streams[index] = stream
            self.rewire(index)
            for side in ("a", "b"):
                link = self.links.get((index, side))
                if link is not None and link.stream is None:
                    link.start(stream)

    def rewire(self, index: int) -> None:
        """Set one stream's transforms from the current keys (a DTLS handshake just gave some)."""
        stream = self._streams.get(index)
        if stream is None:
            return
        kinds = []
        for side in SIDES:
            srtp = self.sides.get((index, side))
            waiting = srtp is None and (index, side) in self.links
            stream.set_transform(side, DROP_ALL if waiting else
                                 None if srtp is None else srtp_transform(srtp))
            kinds.append("DTLS (keying)" if waiting else "SRTP" if srtp else "RTP")
        if kinds == ["RTP", "RTP"]:
            self._wired.discard(index)
        else:
            self._wired.add(index)
        log.debug("[%s] stream %d: side a %s, side b %s", self.call_ref, index, *kinds)

    def keyed(self, link: DtlsLink, keys: SrtpSide) -> None:
        """A DTLS handshake finished and its fingerprint matched: its side speaks SRTP."""
        if self.links.get((link.index, link.side)) is link:
            self.sides[(link.index, link.side)] = keys
            self.rewire(link.index)

    def release(self) -> None:
        """The call is over: close DTLS associations, cancel their timers, forget every
        key and context (idempotent)."""
        links = list(self.links.values())
        self.links.clear()
        for link in links:
            link.close()
        self.sides.clear()
        self._pending.clear()
        self._streams.clear()
        self._wired.clear()


class DtlsLink:
    """One DTLS-SRTP association on a side's RTP socket: the sans-IO ``DtlsSession``
    fed by the relay's raw handler, its flights sent with ``send_raw``, its
    retransmission timer on the event loop (``loop.call_at``)."""

    def __init__(self, legs: SrtpLegs, index: int, side: Side, params: _Dtls) -> None:
        self.legs, self.index, self.side, self.params = legs, index, side, params
        self.session = DtlsSession(legs.certificate, params.role, params.fingerprints,
                                   name=f"{legs.call_ref}/{index}{side}")
        self.stream: SrtpStream | None = None
        self.addr: tuple[object, ...] | None = None  # where the peer's DTLS came from
        self.timer: asyncio.TimerHandle | None = None
        self.done = False

    def start(self, stream: SrtpStream) -> None:
        self.stream = stream
        stream.set_raw_handler(self.side, self.on_datagram)
        self._send(self.session.start())

    def on_datagram(self, data: memoryview, addr: tuple[object, ...]) -> None:
        """Off the hot path: a non-RTP datagram on the side's RTP socket."""
        if addr[0] != self.params.peer_ip or classify(data) is not PacketKind.DTLS:
            return  # STUN (no ICE here) or someone else's
        self.addr = addr
        try:
            self._send(self.session.receive(bytes(data)))
            self._check()
        except Exception:  # network input must not escape into the event loop
            log.exception("[%s] DTLS datagram on stream %d side %s", self.legs.call_ref,
                          self.index, self.side)

    def _check(self) -> None:
        state = self.session.state
        if state is DtlsState.CONNECTED and not self.done:
            self.done = True
            ours, theirs = self.session.srtp_keys()
            log.info("[%s] DTLS-SRTP keyed on stream %d side %s (%s)", self.legs.call_ref,
                     self.index, self.side, ours.profile.sdes_name)
            self.legs.keyed(self, SrtpSide.of(theirs, ours))
        elif state is DtlsState.FAILED and not self.done:
            self.done = True
            log.warning("[%s] DTLS-SRTP on stream %d side %s failed: %s", self.legs.call_ref,
                        self.index, self.side, self.session.failure)

    def _send(self, datagrams: list[bytes]) -> None:
        stream = self.stream
        if stream is not None:
            for datagram in datagrams:
                stream.send_raw(self.side, datagram, self.addr)
        self._arm()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        delay = self.session.timeout()
        if delay is not None and self.stream is not None:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_at(loop.time() + delay, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        try:
            self._send(self.session.handle_timeout())
            self._check()
        except Exception:
            log.exception("[%s] DTLS retransmission on stream %d side %s", self.legs.call_ref,
                          self.index, self.side)

    def close(self) -> None:
        """close_notify to the peer, the timer cancelled, the raw handler removed."""
        stream, self.stream = self.stream, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        datagrams = self.session.close()
        if stream is not None:
            for datagram in datagrams:
                stream.send_raw(self.side, datagram, self.addr)
            stream.set_raw_handler(self.side, None)


def _crypto(line: CryptoAttribute) -> Attribute:
    return Attribute("crypto", str(line))


def srtp_transform(side: SrtpSide) -> Transform:
    """The relay's view of an SRTP side: the peer's packets unprotected on
    arrival, ours protected on departure."""
    return Transform(side.receive.unprotect, side.receive.unprotect_rtcp,
                     side.send.protect, side.send.protect_rtcp)


__all__ = ["Encryption", "SrtpLegs", "SrtpStream", "is_dtls", "is_srtp"]
