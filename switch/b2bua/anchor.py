"""Every call's media anchored in the switch: offer/answer through the RTP relay.

Theory of operation
-------------------
``AnchorHook`` (one per switch) opens an ``AnchorSession`` per call.  The
session owns the call's ``Stream``s, one per m-line, whose side "a"
faces the caller (leg A) and side "b" the callee (leg B), and it writes every
SDP that crosses the call with ``media.offer_answer``:

* ``offer(sender, receiver, sdp)``: streams are opened for the RTP and T.38
  m-lines that have none yet (re-offers reuse the ports they had), the
  receiver's anchors go into the offer (``anchor_offer``), with the codecs
  both legs allow.  The offer state is kept per receiver until the next offer
  to it.  An m-line that changes kind (audio -> ``m=image udptl t38`` for a
  fax, and back) gets a new stream of the new kind, *staged*: the old one
  keeps relaying until the answer swaps them (the old one is closed then),
  and ``refused(receiver)`` (the re-offer got 488, 415, 606...) closes the
  staged and newly opened streams and leaves the live ones untouched.
* ``answer(sender, sdp)``: ``anchor_answer`` against the offer last sent to
  ``sender``; each ``StreamPlan`` sets the relay: remote addresses (a
  ``c=0.0.0.0`` keeps the latch it had), payload-type maps both ways, and
  hold: RTP is not relayed to a party whose SDP says it does not receive, nor
  to the party the offerer puts on hold (offer sendonly/inactive, RFC 3264
  §8.4, RFC 6337 §5.3).  The answerer's sendonly alone (early-media
  announcements) does not silence what it sends.  A resume (sendrecv)
  relays again.

Forks share one B side: every B fork is offered the same B-side ports (each
its own ``o=`` and its own codec filter, so each gets its own offer state),
and whichever fork's answer arrives last (183 early media, then the
winning 200) sets the B side's remote.  The losing forks hold no port of
their own, so nothing is left to free when they are cancelled; their offer
states die with the session.  The first winning 200 is the B leg from then
on (the call keeps using that fork's ``Leg``).

Our ``o=`` is one per leg (``LegOrigin``): a new session id at the first
offer, the version up by one whenever the SDP we send there changes.  The
address in ``c=``/``o=`` is ``media.advertise`` when set, else the switch's
local address facing that leg's peer (the one our SIP Contact uses; an
unspecified listen address is resolved through the routing table).

Codecs: a leg allows its extension's ``codecs``, else its tenant's, else
``media.codecs``; telephone-event and CN always pass.  An offer carries what
both legs allow; when that is nothing, the receiver is offered the codecs the
switch transcodes to (``media_features.py``: music on hold, transcoding, DTMF
INFO <-> RFC 4733), else 488.  ``release()`` closes every stream of the call (idempotent).

Recording: ``record`` hands the call's recording (``recording.py``) to the
features, which start it on the first audio stream once both codecs are known;
``release()`` finalises it with everything else.

Fax (T.38 and its G.711 fallback): a T.38 re-offer is relayed for any call;
when the other party refuses it (488, 415, 606), the call stays on its audio
stream, which must then carry the fax tones intact.  A call is *fax-safe*
when the calling or the called extension has ``fax: true``: if the two legs
allow a G.711 codec in common, only PCMU/PCMA (and telephone-event) are
offered on either leg, so both ends pick G.711 and the relay copies the
packets untouched: no transcoding, so no jitter buffer, no packet-loss
concealment and no dropped late packets (the only jitter buffer is a
transcoder's, ``media/transcode.py``); and comfort noise (RFC 3389 CN) is
never offered on a fax call, so no end replaces fax tones it takes for
silence with noise.  Without a common G.711 codec the call is transcoded as
any other (it connects, the fax may fail).

SRTP: each leg follows its extension's or trunk's ``encryption``; the keying
lines of one leg never reach the other (``srtp_legs.py``): the offer and the
answer are re-keyed per leg before they are anchored, and the relay bridges
an SRTP side to a plain one (or to another SRTP side with other keys).
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Protocol

from dialplan.schema import Config
from media.offer_answer import (
    Anchor,
    CodecPref,
    LegOrigin,
    LegPrefs,
    OfferState,
    StreamPlan,
    anchor_answer,
    anchor_offer,
)
from media.ports import PortsExhausted
from media.relay import Addr
from media.sdp import NOT_ACCEPTABLE_HERE, MediaDescription, SdpError, SessionDescription
from media.udptl import is_t38

from ..sip.address import Address
from .media import DigitCallback, Leg, MediaSession, Side
from .media_features import CallFeatures, MediaFeatures
from .srtp_legs import Encryption, SrtpLegs

log = logging.getLogger("centrala.media")

ALWAYS_ALLOWED = ("telephone-event", "CN")  # RFC 4733 digits and RFC 3389 comfort noise
FAX_CODECS = frozenset({"pcmu", "pcma"})  # G.711: fax tones survive it untouched
FAX_EXTRAS = frozenset({"telephone-event"})  # ...and what may ride along (not CN)
LocalAddress = Callable[[Address], tuple[str, str, int]]  # Endpoint.local_address


def behind_nat(sdp_ip: str, peer: Address) -> str | None:
    """Where a leg's RTP comes from when its SDP names a private address but its
    signalling comes from a public one: a phone behind NAT, whose media leaves from
    the same public address (symmetric RTP, RFC 4961).  None: trust the SDP."""
    try:
        sdp, signalling = ipaddress.ip_address(sdp_ip), ipaddress.ip_address(peer.host)
    except ValueError:
        return None
    return peer.host if sdp.is_private and not signalling.is_private else None

class Stream(Protocol):
    """What a call needs of one relayed m-line (``media.relay.RelayStream``)."""

    udptl: bool  # T.38: datagrams relayed as they are

    def local(self, side: Side) -> tuple[str, int, int]: ...
    def set_remote(self, side: Side, rtp_addr: Addr, rtcp_addr: Addr | None = None, *,
                   source_ip: str | None = None) -> None: ...
    def set_pt_map(self, from_side: Side, mapping: Mapping[int, int]) -> None: ...
    def hold(self, side: Side, on: bool) -> None: ...
    def close(self) -> None: ...


class Relay(Protocol):
    """The switch's RTP relay (``media.relay.MediaRelay``)."""

    def open(self, call_ref: Hashable, mux_a: bool = False, mux_b: bool = False,
             udptl: bool = False) -> Stream: ...
    def close_call(self, call_ref: Hashable) -> None: ...


@dataclass(slots=True)
class _Pending:
    """An offer sent to a leg, until the next offer to that leg."""

    offerer: Leg
    state: OfferState
    opened: list[int]  # indexes that had no stream before this offer
    staged: dict[int, Stream] = field(default_factory=dict)  # kind changes, until answered


class AnchorHook:
    """The media layer of a switch: the relay and the codec rules of the configuration."""

    def __init__(self, relay: Relay, config: Config, local_address: LocalAddress,
                 features: MediaFeatures | None = None) -> None:
        self.relay = relay
        self._local_address = local_address
        self.features = features  # MOH, transcoding, DTMF (media_features.py)
        self.apply(config)

    def apply(self, config: Config) -> None:
        """A reloaded configuration: new calls follow its codecs and advertise address."""
        self.advertise = config.media.advertise
        default = _prefs(config.media.codecs)
        self._tenants: dict[str, LegPrefs] = {}
        self._extensions: dict[tuple[str, str], LegPrefs] = {}
        self._encryption = _encryption(config)
        self._fax = {(t.domain, e.number) for t in config.tenants for e in t.extensions if e.fax}
        for tenant in config.tenants:
            own = _prefs(tenant.codecs) if tenant.codecs else default
            self._tenants[tenant.domain] = own
            for ext in tenant.extensions:
                if ext.codecs:
                    self._extensions[(tenant.domain, ext.number)] = _prefs(ext.codecs)
        self._default = default
        if self.features is not None:
            self.features.apply(config)

    def prefs(self, tenant: str, label: str | None) -> LegPrefs:
        """The codecs a leg allows: its extension's, its tenant's, the switch's."""
        own = self._extensions.get((tenant, label)) if label else None
        return own or self._tenants.get(tenant, self._default)

    def encryption(self, tenant: str, label: str | None) -> Encryption:
        """A leg's SRTP setting: its extension's or trunk's; optional for a caller
        the switch cannot name (SRTP offers accepted, plain RTP offered)."""
        found = self._encryption.get((tenant, label)) if label else None
        return found or Encryption.OPTIONAL

    def fax(self, tenant: str, label: str | None) -> bool:
        """The leg is an extension with ``fax: true``: its calls are made fax-safe."""
        return label is not None and (tenant, label) in self._fax

    def address(self, peer: Address) -> str:
        """The address our SDP gives to ``peer``."""
        if self.advertise:
            return self.advertise
        host = self._local_address(peer)[1]
        return host if not ipaddress.ip_address(host).is_unspecified else _route_to(peer.host)

    def session(self, call_ref: str, tenant: str, caller: str | None) -> MediaSession:
        return AnchorSession(self, call_ref, tenant, caller)


class AnchorSession:
    """The anchored media of one call."""

    def __init__(self, hook: AnchorHook, call_ref: str, tenant: str, caller: str | None) -> None:
        self.hook, self.call_ref, self.tenant, self.caller = hook, call_ref, tenant, caller
        self.streams: dict[int, Stream] = {}
        self.released = False
        self._origins: dict[Leg, LegOrigin] = {}
        self._prefs: dict[Leg, LegPrefs] = {}  # fixed at a leg's first offer: reloads spare calls
        self._pending: dict[Leg, _Pending] = {}  # by answerer
        self.srtp = SrtpLegs(call_ref, _leg_encryption(hook, tenant, caller))
        self.features: CallFeatures | None = (
            hook.features.session(call_ref, tenant) if hook.features is not None else None)

    # -- offer/answer -------------------------------------------------------------------
    def offer(self, sender: Leg, receiver: Leg, sdp: bytes) -> bytes:
        offer = SessionDescription.parse(sdp)
        self._drop_staged(receiver)
        opened, staged = self._open(offer, sender)
        streams = {**self.streams, **staged}
        local = {i: self._anchor(s, receiver) for i, s in streams.items()
                 if i < len(offer.media)}
        sender_prefs, receiver_prefs = self._leg_prefs(sender), self._leg_prefs(receiver)
        prefs = _common(sender_prefs, receiver_prefs)
        if self._fax_call(sender, receiver):
            sender_prefs, receiver_prefs, prefs = fax_safe(sender_prefs, receiver_prefs, prefs)
        if self.features is not None:  # no codec in common: offer what we transcode to
            offer, prefs = self.features.widen(receiver, offer, sender_prefs, receiver_prefs,
                                               prefs)
        try:
            keyed = self.srtp.offer(sender, receiver, offer)
            relayed, state = anchor_offer(keyed, local, prefs, self._origin(receiver))
        except SdpError:
            self._close(opened)
            _close_all(staged.values())
            raise
        state = replace(state, offer=offer)  # the answer to the sender follows its own offer
        self._close(i for i in opened if i not in state.anchors)  # streams the offer disabled
        _close_all(s for i, s in staged.items() if i not in state.anchors)
        self._origins[receiver] = state.origin
        self._pending[receiver] = _Pending(
            sender, state, [i for i in opened if i in state.anchors],
            {i: s for i, s in staged.items() if i in state.anchors})
        return state.origin.last  # bytes(relayed), as stamped: not serialised again

    def refused(self, receiver: Leg) -> None:
        """The offer last sent to ``receiver`` got a failure response (RFC 3264 §8:
        the session stays as it was): close what it opened, keep the live streams."""
        pending = self._pending.pop(receiver, None)
        if pending is not None:
            _close_all(pending.staged.values())
            pending.staged.clear()
            self._close(i for i in pending.opened if i in self.streams)

    def answer(self, sender: Leg, sdp: bytes) -> bytes:
        pending = self._pending.get(sender)
        if pending is None:
            raise SdpError("an answer to no offer (RFC 3264 §4)", NOT_ACCEPTABLE_HERE)
        offerer, state = pending.offerer, pending.state
        answer = self.srtp.answer(sender, SessionDescription.parse(sdp))
        self._swap(pending)
        local = {i: self._anchor(s, offerer) for i, s in self.streams.items()}
        before = self._origin(offerer)
        out, plans, origin = anchor_answer(answer, state, local, before)
        if self.features is not None:  # a transcoded stream: the offerer's own codec
            origin = self.features.narrow(sender, out, plans, origin, before, state.offer)
        self._origins[offerer] = origin
        for plan in plans:
            self._apply(plan, offerer, sender)
        self.srtp.wire(self.streams)
        if self.features is not None:
            self.features.applied(self.streams, plans, offerer.side, sender.side)
        return origin.last  # bytes(out), as last stamped (narrow() stamps what it changes)

    def send_digit(self, to: Side, digit: str, duration_ms: int) -> bool:
        """A key press (SIP INFO) as RFC 4733 to side ``to``, if it has telephone-event."""
        return self.features is not None and self.features.send_digit(to, digit, duration_ms)

    def digits_to(self, callback: DigitCallback) -> None:
        if self.features is not None:
            self.features.on_digit = callback

    def record(self, state_dir: Path, relative: PurePosixPath) -> bool:
        return self.features is not None and self.features.record(state_dir, relative)

    def recorded(self) -> PurePosixPath | None:
        return self.features.recorded() if self.features is not None else None

    def release(self) -> None:
        if not self.released:
            self.released = True
            if self.features is not None:
                self.features.release()
            self.streams.clear()
            for leg in list(self._pending):
                self._drop_staged(leg)
            self.srtp.release()
            self.hook.relay.close_call(self.call_ref)

    # -- streams ---------------------------------------------------------------------------
    def _open(self, offer: SessionDescription, sender: Leg) -> tuple[list[int], dict[int, Stream]]:
        """Streams for the offer's RTP and T.38 m-lines: new indexes go live at once
        (returned as ``opened``), an index whose stream is of the other kind gets a
        staged one (``staged``).  The offerer's side binds no RTCP port when it offers
        rtcp-mux (we always accept it); a T.38 stream binds none at all."""
        if self.released:
            raise SdpError("the call is over", NOT_ACCEPTABLE_HERE)
        opened: list[int] = []
        staged: dict[int, Stream] = {}
        for i, m in enumerate(offer.media):
            current = self.streams.get(i)
            if m.port == 0 or not (m.is_rtp or is_t38(m)) or (
                current is not None and current.udptl == is_t38(m)
            ):
                continue
            try:
                stream = self._new_stream(m, sender)
            except PortsExhausted as exc:
                self._close(opened)
                _close_all(staged.values())
                raise SdpError(str(exc), exc.status) from None
            if current is None:
                self.streams[i] = stream
                opened.append(i)
            else:
                staged[i] = stream
        return opened, staged

    def _new_stream(self, m: MediaDescription, sender: Leg) -> Stream:
        mux = m.rtcp_mux
        return self.hook.relay.open(self.call_ref, mux_a=mux and sender.side == "a",
                                    mux_b=mux and sender.side == "b", udptl=is_t38(m))

    def _swap(self, pending: _Pending) -> None:
        """An answer to an offer that changed the kind of m-lines: the staged streams
        go live, the ones they replace are closed."""
        for i, stream in pending.staged.items():
            self._close([i])
            self.streams[i] = stream
        pending.staged.clear()

    def _drop_staged(self, receiver: Leg) -> None:
        """A new offer to ``receiver`` (or the end): the previous one's staged streams
        were never answered."""
        pending = self._pending.get(receiver)
        if pending is not None:
            _close_all(pending.staged.values())
            pending.staged.clear()

    def _close(self, indexes: Iterable[int]) -> None:
        for i in list(indexes):
            if i not in self.streams:
                continue
            if self.features is not None:
                self.features.dropped(i)
            self.streams.pop(i).close()

    def _anchor(self, stream: Stream, leg: Leg) -> Anchor:
        _, rtp, rtcp = stream.local(leg.side)
        return Anchor(self._origin(leg).address, rtp, rtcp)

    def _apply(self, plan: StreamPlan, x_leg: Leg, y_leg: Leg) -> None:
        """One answered m-line onto its stream; ``x_leg`` offered, ``y_leg`` answered."""
        stream = self.streams.get(plan.index)
        if stream is None:
            return
        if plan.rejected or plan.x is None or plan.y is None:
            stream.hold("a", True)
            stream.hold("b", True)
            return
        x, y = x_leg.side, y_leg.side
        for leg, media in ((x_leg, plan.x), (y_leg, plan.y)):
            if not ipaddress.ip_address(media.rtp[0]).is_unspecified:  # c=0.0.0.0: keep the latch
                stream.set_remote(leg.side, media.rtp, media.rtcp,
                                  source_ip=behind_nat(media.rtp[0], leg.peer))
        stream.set_pt_map(x, plan.x_to_y)
        stream.set_pt_map(y, plan.y_to_x)
        stream.hold(x, not plan.x.direction.receives)
        stream.hold(y, not plan.y.direction.receives or plan.x.holds_peer)

    # -- per leg ------------------------------------------------------------------------------
    def _origin(self, leg: Leg) -> LegOrigin:
        origin = self._origins.get(leg)
        if origin is None:
            origin = LegOrigin(secrets.randbits(62), self.hook.address(leg.peer))
            self._origins[leg] = origin
        return origin

    def _fax_call(self, *legs: Leg) -> bool:
        return any(self.hook.fax(self.tenant, self._label(leg)) for leg in legs)

    def _label(self, leg: Leg) -> str | None:
        return self.caller if leg.side == "a" else leg.label

    def _leg_prefs(self, leg: Leg) -> LegPrefs:
        prefs = self._prefs.get(leg)
        if prefs is None:
            prefs = self._prefs[leg] = self.hook.prefs(self.tenant, self._label(leg))
        return prefs


def fax_safe(*prefs: LegPrefs) -> tuple[LegPrefs, ...]:
    """``prefs`` (the sender's, the receiver's, the common ones, last) for a fax call:
    never CN, and only G.711 when the common ones have it (see the module docstring)."""
    g711 = any(p.name.lower() in FAX_CODECS for p in prefs[-1].codecs)
    allowed = FAX_CODECS | FAX_EXTRAS

    def keep(p: CodecPref) -> bool:
        return p.name.lower() != "cn" and (not g711 or p.name.lower() in allowed)

    return tuple(LegPrefs(tuple(p for p in each.codecs if keep(p))) for each in prefs)


def _close_all(streams: Iterable[Stream]) -> None:
    for stream in list(streams):
        stream.close()


def _leg_encryption(hook: AnchorHook, tenant: str, caller: str | None
                    ) -> Callable[[Leg], Encryption]:
    """A call's SRTP setting per leg, for its ``SrtpLegs``: a function of the hook,
    not a method of the session, which would make the two a reference cycle."""
    def setting(leg: Leg) -> Encryption:
        return hook.encryption(tenant, caller if leg.side == "a" else leg.label)
    return setting


def _prefs(names: list[str]) -> LegPrefs:
    return LegPrefs.of(*names, *ALWAYS_ALLOWED)


def _encryption(config: Config) -> dict[tuple[str, str], Encryption]:
    """Every extension's and trunk's SRTP setting, by (tenant, leg label)."""
    found: dict[tuple[str, str], Encryption] = {}
    for tenant in config.tenants:
        for ext in tenant.extensions:
            found[(tenant.domain, ext.number)] = Encryption(ext.encryption)
        for trunk in tenant.trunks:
            found[(tenant.domain, f"trunk:{trunk.name}")] = Encryption(trunk.encryption)
    return found


def _common(a: LegPrefs, b: LegPrefs) -> LegPrefs:
    """The codecs both lists allow, in ``a``'s order; unset rates/channels take the other's."""
    both = []
    for p in a.codecs:
        for q in b.codecs:
            if p.name.lower() != q.name.lower():
                continue
            if None not in (p.clock_rate, q.clock_rate) and p.clock_rate != q.clock_rate:
                continue
            if None not in (p.channels, q.channels) and p.channels != q.channels:
                continue
            both.append(CodecPref(p.name, p.clock_rate or q.clock_rate, p.channels or q.channels))
    return LegPrefs(tuple(dict.fromkeys(both)))


def _route_to(host: str) -> str:
    """The local address the kernel would send from to ``host`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))
        return str(probe.getsockname()[0])


__all__ = ["AnchorHook", "AnchorSession"]
