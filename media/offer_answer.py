"""RFC 3264 offer/answer for a B2BUA that anchors media.

Theory of operation
-------------------
Centrala sits in the media path of every call: each party sends RTP to an
*anchor*, a port pair of the switch on that party's leg, and the relay copies
packets between the two anchors of a stream.  Signalling follows suit: an
offer received on leg X is anchored before it is sent on leg Y, and the
answer received on leg Y is anchored before it is sent back on leg X.

``anchor_offer`` (RFC 3264 §5) copies the offer with our own ``o=`` for leg Y
(§5, §8: one session id per leg, the version up by one whenever the SDP
changes), the anchor's address in ``c=`` and its ports in ``m=`` and
``a=rtcp`` (RFC 3605).  The offerer's codec order is kept, filtered by
``LegPrefs``.  A T.38 fax stream (``m=image <port> udptl t38``, RFC 3362, T.38
Annex D) is anchored too, its T.38 attributes passed through as offered (they
are checked, ``media/udptl.py``, but the relay forwards UDPTL datagrams
unchanged, so ``T38FaxMaxDatagram`` and ``T38FaxMaxBuffer`` of one end are
what the other end gets); it has no RTCP, no payload types and no codec
filter.  Any other stream that is not RTP, that the caller gave no anchor, or
that is left without a real codec (telephone-event and CN do not count) is
disabled with port 0 (§8.2); when no stream remains the offer is refused with
488.  The direction becomes an explicit media attribute, since a legacy
``c=0.0.0.0`` hold (§8.4) would be lost with the address.  ICE lines and
BUNDLE groups describe the offerer's transport, not the anchor's, so they are
dropped; crypto, fingerprint and setup lines pass through verbatim.

``anchor_answer`` (RFC 3264 §6) checks the answer against the relayed offer
(same number, order and kinds of m-lines), maps each payload type of the
answer back to the number the offerer used for that codec (§6.1: the answerer
may number dynamic types its own way) and writes the answer for leg X with
leg X's anchors and origin: rejected streams stay with port 0, the direction
is the answerer's.  It also returns one ``StreamPlan`` per m-line, everything
the relay needs to move RTP and RTCP between the legs; a T.38 stream's plan
has ``udptl`` set and only addresses and directions (``payload_type`` -1).
An m-line may change kind in a re-offer (audio -> image for a fax, back to
audio after it, RFC 6337 §5.1 / T.38 Annex D): each offer is taken on its own
terms, the anchor (``switch/b2bua/anchor.py``) swaps the relay stream.

Payload type numbering (§5.1): a party receives with the numbers of its own
SDP.  Leg X only ever sees X's numbers.  Leg Y receives with the numbers of
its answer (``x_to_y``) and sends with the numbers of the offer it got, which
are X's; many phones send with their own answer numbers instead, so
``y_to_x`` takes both wherever they do not collide.

A re-INVITE from the answerer, or an offer in a 2xx to an INVITE without
SDP, goes through the same two functions with the legs' roles swapped.

Everything here is pure: no sockets, no clock, no randomness.  The caller
supplies the anchors and the session ids and keeps one ``LegOrigin`` per leg
for the life of the call.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .sdp import (
    DIRECTIONS,
    NOT_ACCEPTABLE_HERE,
    Attribute,
    Codec,
    Connection,
    Direction,
    Line,
    MediaDescription,
    Origin,
    Rtcp,
    SdpError,
    SessionDescription,
)
from .udptl import T38Params, is_t38

# Formats that ride along with a codec but carry no media of their own.
AUXILIARY_CODECS = frozenset({"telephone-event", "cn", "red", "ulpfec", "flexfec-03", "rtx"})
# RFC 8839 §5: the offerer's candidates and credentials, meaningless at the anchor.
ICE_ATTRIBUTES = frozenset({
    "candidate", "remote-candidates", "end-of-candidates", "ice-ufrag", "ice-pwd",
    "ice-options", "ice-lite", "ice-mismatch", "ice-pacing",
})
_NOT_RELAYED = ICE_ATTRIBUTES | DIRECTIONS | {"rtcp", "rtcp-mux"}


# -- configuration and caller-supplied state ---------------------------------------
@dataclass(frozen=True, slots=True)
class CodecPref:
    """A codec the switch relays: ``opus``, ``G722/8000``, ``opus/48000/2``..."""

    name: str
    clock_rate: int | None = None
    channels: int | None = None

    @classmethod
    def parse(cls, text: str) -> CodecPref:
        name, *numbers = text.split("/")
        clock = int(numbers[0]) if numbers else None
        return cls(name, clock, int(numbers[1]) if len(numbers) > 1 else None)

    def accepts(self, codec: Codec) -> bool:
        """Names compare case-insensitively (RFC 4855 §3); unset numbers match any."""
        return (
            codec.name.lower() == self.name.lower()
            and self.clock_rate in (None, codec.clock_rate)
            and self.channels in (None, codec.channels)
        )


@dataclass(frozen=True, slots=True)
class LegPrefs:
    """The codecs the switch lets through; the offerer's order is kept."""

    codecs: tuple[CodecPref, ...]

    @classmethod
    def of(cls, *names: str) -> LegPrefs:
        return cls(tuple(CodecPref.parse(n) for n in names))

    def accepts(self, codec: Codec | None) -> bool:
        return codec is not None and any(p.accepts(codec) for p in self.codecs)


DEFAULT_PREFS = LegPrefs.of("opus", "G722", "PCMA", "PCMU", "telephone-event")


@dataclass(frozen=True, slots=True)
class Anchor:
    """The switch's end of one stream on one leg: where that party sends RTP and RTCP."""

    address: str
    rtp_port: int
    rtcp_port: int | None = None  # RFC 3550 §11: the next port up when None

    @property
    def rtcp(self) -> int:
        return self.rtp_port + 1 if self.rtcp_port is None else self.rtcp_port


@dataclass(frozen=True, slots=True)
class LegOrigin:
    """Our ``o=`` on one leg, shared by the offers and answers we send there (RFC 3264 §5)."""

    sess_id: int
    address: str
    sess_version: int = 0
    username: str = "-"
    last: bytes = field(default=b"", repr=False)  # the SDP last sent on the leg

    @property
    def origin(self) -> Origin:
        return Origin(self.username, self.sess_id, self.sess_version, self.address,
                      "IN", Connection.of(self.address).addrtype)

    def stamp(self, sd: SessionDescription) -> LegOrigin:
        """Put our o= on ``sd``; §8: the version goes up by one only if the SDP changed."""
        sd.origin = self.origin
        if not self.last or bytes(sd) == self.last:
            return replace(self, last=bytes(sd))
        bumped = replace(self, sess_version=self.sess_version + 1)
        sd.origin = bumped.origin
        return replace(bumped, last=bytes(sd))


@dataclass(frozen=True, slots=True)
class OfferState:
    """What ``anchor_answer`` needs to know about the offer it answers."""

    offer: SessionDescription  # as received on leg X
    relayed: SessionDescription  # as sent on leg Y
    anchors: Mapping[int, Anchor]  # leg Y's anchor of each stream relayed (port != 0)
    origin: LegOrigin  # ours on leg Y, as stamped on ``relayed``


# -- what the relay gets ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LegMedia:
    """One party of a stream, as its own SDP describes it."""

    anchor: Anchor  # our end on this leg
    rtp: tuple[str, int]  # where the party receives RTP
    rtcp: tuple[str, int]  # ...and RTCP: RFC 3605 a=rtcp, RFC 5761 mux, else port + 1
    rtcp_mux: bool
    direction: Direction  # as declared, a legacy c=0.0.0.0 counted (RFC 3264 §8.4)
    payload_type: int  # the chosen codec in this leg's numbering; -1 for UDPTL
    telephone_event: int | None  # RFC 4733, in this leg's numbering
    ptime: int | None

    @property
    def holds_peer(self) -> bool:
        """sendonly or inactive: this party has put the other one on hold."""
        return not self.direction.receives


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """One m-line of a call, for the RTP relay; ``x`` offered, ``y`` answered."""

    index: int
    media: str
    rejected: bool
    codec: Codec | None = None
    x: LegMedia | None = None
    y: LegMedia | None = None
    x_to_y: Mapping[int, int] = field(default_factory=dict, hash=False)  # RTP to leg Y
    y_to_x: Mapping[int, int] = field(default_factory=dict, hash=False)  # RTP to leg X
    udptl: bool = False  # T.38: datagrams relayed as they are, no RTP, no RTCP


# -- the offer ------------------------------------------------------------------------
def anchor_offer(
    offer: SessionDescription,
    local: Mapping[int, Anchor],
    prefs: LegPrefs,
    origin: LegOrigin,
) -> tuple[SessionDescription, OfferState]:
    """The offer to send on leg Y for ``offer`` received on leg X (RFC 3264 §5).

    ``local`` holds leg Y's anchor for each media index to relay; a stream
    without one is disabled.  ``origin`` is ours on leg Y (the new one is in
    the returned state).
    """
    media = [
        _offer_stream(offer, i, local.get(i), prefs, origin.address)
        for i in range(len(offer.media))
    ]
    if all(m.port == 0 for m in media):
        raise SdpError("no acceptable media stream in the offer", NOT_ACCEPTABLE_HERE)
    relayed = _anchored_session(offer, media, origin.address)
    stamped = origin.stamp(relayed)
    anchors = {i: local[i] for i, m in enumerate(media) if m.port}
    return relayed, OfferState(offer, relayed, anchors, stamped)


def _offer_stream(
    offer: SessionDescription, i: int, anchor: Anchor | None, prefs: LegPrefs, address: str
) -> MediaDescription:
    m = offer.media[i]
    if anchor is None or m.port == 0 or m.port_count not in (None, 1):
        return _disabled(m)
    if is_t38(m):
        return _t38_stream(offer, i, anchor, offer.direction_of(i), address)
    if not m.is_rtp:
        return _disabled(m)
    _endpoint(offer, i)  # junk or multicast addresses are refused here
    out = _copy_media(m)
    for pt in m.payload_types:
        if not prefs.accepts(m.codec(pt)):
            out.remove_format(str(pt))
    if not _has_real_codec(out, out.payload_types):
        return _disabled(m)
    _anchor_media(out, anchor, offer.direction_of(i), m.rtcp_mux, anchor.rtcp, address)
    return out


# -- the answer ------------------------------------------------------------------------
def anchor_answer(
    answer: SessionDescription,
    state: OfferState,
    local: Mapping[int, Anchor],
    origin: LegOrigin,
) -> tuple[SessionDescription, list[StreamPlan], LegOrigin]:
    """The answer to send on leg X for ``answer`` received on leg Y (RFC 3264 §6).

    ``local`` holds leg X's anchor for each media index; ``origin`` is ours on
    leg X, returned updated.
    """
    _check_shape(answer, state.relayed)
    built = [
        _answer_stream(answer, state, i, local.get(i), origin.address)
        for i in range(len(answer.media))
    ]
    sd = _anchored_session(answer, [m for m, _ in built], origin.address)
    return sd, [plan for _, plan in built], origin.stamp(sd)


def _check_shape(answer: SessionDescription, offer: SessionDescription) -> None:
    """§6: as many m-lines as the offer, in the same order, of the same kinds."""
    if [m.media for m in answer.media] != [m.media for m in offer.media]:
        raise SdpError(
            f"answer m-lines {[m.media for m in answer.media]} do not match the offer's "
            f"{[m.media for m in offer.media]} (RFC 3264 §6)",
            NOT_ACCEPTABLE_HERE,
        )


def _answer_stream(
    answer: SessionDescription, state: OfferState, i: int, anchor: Anchor | None, address: str
) -> tuple[MediaDescription, StreamPlan]:
    offered, relayed, answered = state.offer.media[i], state.relayed.media[i], answer.media[i]
    if is_t38(relayed):
        return _answer_t38(answer, state, i, anchor, address)
    to_x = _offer_numbers(relayed, answered)
    live = relayed.port != 0 and answered.port != 0 and _has_real_codec(answered, to_x)
    if anchor is None or not live:
        return _disabled(offered), StreamPlan(i, offered.media, rejected=True)
    out = _copy_media(answered)
    for pt in answered.payload_types:
        if pt not in to_x:
            out.remove_format(str(pt))
    out.renumber(to_x)
    out.proto = offered.proto
    mux = offered.rtcp_mux  # §5.1.1 of RFC 5761: we always accept it
    rtcp_port = anchor.rtp_port if mux else anchor.rtcp
    _anchor_media(out, anchor, answer.direction_of(i), mux, rtcp_port, address)
    return out, _plan(answer, state, i, anchor, to_x)


def _offer_numbers(offered: MediaDescription, answered: MediaDescription) -> dict[int, int]:
    """Answer payload type -> the offer's for the same codec, in answer order.

    The offer's own number wins when it denotes the same codec, else its first
    number for that codec not yet taken: duplicate codecs pair up in order and
    an answer type left over is dropped (GHSA-gjj5-79p2-9g3q).
    """
    mapping: dict[int, int] = {}
    for pt in answered.payload_types:
        codec = answered.codec(pt)
        free = [
            o for o in offered.payload_types
            if codec and _same(offered.codec(o), codec) and o not in mapping.values()
        ]
        target = pt if pt in free else next(iter(free), None)
        if target is not None:
            mapping[pt] = target
    return mapping


def _plan(
    answer: SessionDescription, state: OfferState, i: int, anchor_x: Anchor, to_x: dict[int, int]
) -> StreamPlan:
    answered = answer.media[i]
    chosen = next(pt for pt in to_x if not _auxiliary(answered.codec(pt)))
    event = next((pt for pt in to_x if _is_event(answered.codec(pt))), None)
    mux_y = answered.rtcp_mux and state.relayed.media[i].rtcp_mux
    y = _leg(answer, i, state.anchors[i], mux_y, chosen, event)
    x = _leg(state.offer, i, anchor_x, state.offer.media[i].rtcp_mux, to_x[chosen],
             None if event is None else to_x[event])
    y_to_x = {x_pt: x_pt for x_pt in to_x.values()}  # §5.1: Y sends with the offer's numbers
    for y_pt, x_pt in to_x.items():
        y_to_x.setdefault(y_pt, x_pt)  # ...or, commonly, with its own
    return StreamPlan(
        i, answered.media, False, answered.codec(chosen), x, y,
        {x_pt: y_pt for y_pt, x_pt in to_x.items()}, y_to_x,
    )


def _leg(
    sd: SessionDescription, i: int, anchor: Anchor, mux: bool, pt: int, event: int | None
) -> LegMedia:
    rtp = _endpoint(sd, i)
    return LegMedia(
        anchor, rtp, _rtcp_endpoint(sd, i, rtp, mux), mux, sd.direction_of(i), pt, event,
        sd.media[i].ptime,
    )


# -- T.38 (RFC 3362, T.38 Annex D) -------------------------------------------------------
def _t38_stream(
    sd: SessionDescription, i: int, anchor: Anchor, direction: Direction, address: str
) -> MediaDescription:
    """``m=image <our port> udptl t38`` with the sender's T.38 attributes, which must
    parse (488 otherwise); no RTCP, and a direction only when it is not sendrecv."""
    m = sd.media[i]
    _endpoint(sd, i)
    T38Params.from_media(m)
    out = MediaDescription(
        m.media, anchor.rtp_port, m.proto, ["t38"], bandwidths=list(m.bandwidths),
        attributes=[a for a in m.attributes if a.name not in _NOT_RELAYED],
    )
    out.connection = None if anchor.address == address else Connection.of(anchor.address)
    out.set_direction(None if direction is Direction.SENDRECV else direction)
    return out


def _answer_t38(
    answer: SessionDescription, state: OfferState, i: int, anchor: Anchor | None, address: str
) -> tuple[MediaDescription, StreamPlan]:
    """A T.38 stream of the answer: accepted only as T.38 with a port (§6)."""
    offered, answered = state.offer.media[i], answer.media[i]
    if anchor is None or state.relayed.media[i].port == 0 or answered.port == 0 or not (
        is_t38(answered)
    ):
        return _disabled(offered), StreamPlan(i, offered.media, rejected=True, udptl=True)
    out = _t38_stream(answer, i, anchor, answer.direction_of(i), address)
    y = _udptl_leg(answer, i, state.anchors[i])
    x = _udptl_leg(state.offer, i, anchor)
    return out, StreamPlan(i, answered.media, False, None, x, y, udptl=True)


def _udptl_leg(sd: SessionDescription, i: int, anchor: Anchor) -> LegMedia:
    rtp = _endpoint(sd, i)
    return LegMedia(anchor, rtp, rtp, True, sd.direction_of(i), -1, None, None)


# -- shared pieces ----------------------------------------------------------------------
def _anchored_session(
    source: SessionDescription, media: list[MediaDescription], address: str
) -> SessionDescription:
    """``source``'s session level as the anchor sends it; stamp() sets o=."""
    return SessionDescription(
        origin=Origin("-", 0, 0, address),
        session_name=source.session_name,
        connection=Connection.of(address),
        bandwidths=list(source.bandwidths),
        attributes=[a for a in source.attributes if _relayed_session_attribute(a)],
        media=media,
        extra=[x for x in source.extra if x.type in ("t", "r")] or [Line("t", "0 0")],
    )


def _relayed_session_attribute(a: Attribute) -> bool:
    """RFC 8843 BUNDLE would send every stream to one anchor port: not offered."""
    bundle = a.name == "group" and (a.value or "").startswith("BUNDLE")
    return a.name not in _NOT_RELAYED and not bundle


def _copy_media(m: MediaDescription) -> MediaDescription:
    """RTP media ``m`` with each payload type once, without the lines the anchor rewrites."""
    return MediaDescription(
        m.media, m.port, m.proto, [str(pt) for pt in m.payload_types],
        bandwidths=list(m.bandwidths),
        attributes=[a for a in m.attributes if a.name not in _NOT_RELAYED],
    )


def _disabled(m: MediaDescription) -> MediaDescription:
    """§8.2: a stream kept in place with port 0."""
    return MediaDescription(m.media, 0, m.proto, list(dict.fromkeys(m.formats)))


def _anchor_media(
    out: MediaDescription, anchor: Anchor, direction: Direction, mux: bool, rtcp_port: int,
    session_address: str,
) -> None:
    out.port, out.port_count = anchor.rtp_port, None
    out.connection = None if anchor.address == session_address else Connection.of(anchor.address)
    out.set_rtcp_mux(mux)
    out.set_rtcp(Rtcp(rtcp_port))
    out.set_direction(direction)


def _endpoint(sd: SessionDescription, i: int) -> tuple[str, int]:
    """Where the party that wrote ``sd`` receives RTP for stream ``i``."""
    connection = sd.connection_of(i)
    if connection is None:
        raise SdpError(f"no c= for media {i} (RFC 8866 §5.7)")
    return _unicast_ip(connection), sd.media[i].port


def _rtcp_endpoint(
    sd: SessionDescription, i: int, rtp: tuple[str, int], mux: bool
) -> tuple[str, int]:
    rtcp = sd.media[i].rtcp
    if mux:
        return rtp
    if rtcp is not None:
        return (_unicast_ip(rtcp.connection) if rtcp.connection else rtp[0]), rtcp.port
    if rtp[1] == 65535:
        raise SdpError("RTP on port 65535 leaves no port for RTCP", NOT_ACCEPTABLE_HERE)
    return rtp[0], rtp[1] + 1


def _unicast_ip(connection: Connection) -> str:
    """The IP literal of ``IN IP4``/``IN IP6``; FQDNs and multicast are not relayed."""
    try:
        ip = ipaddress.ip_address(connection.address)
    except ValueError:
        raise SdpError(
            f"c= address {connection.address[:40]!r} is not an IP address", NOT_ACCEPTABLE_HERE
        ) from None
    if connection.nettype != "IN" or connection.addrtype != f"IP{ip.version}" or ip.is_multicast:
        raise SdpError(f"c={connection} cannot be relayed", NOT_ACCEPTABLE_HERE)
    return str(ip)


def _same(a: Codec | None, b: Codec) -> bool:
    return a is not None and a.key == b.key


def _auxiliary(codec: Codec | None) -> bool:
    return codec is None or codec.name.lower() in AUXILIARY_CODECS


def _is_event(codec: Codec | None) -> bool:
    return codec is not None and codec.name.lower() == "telephone-event"


def _has_real_codec(m: MediaDescription, pts: Iterable[int]) -> bool:
    return any(not _auxiliary(m.codec(pt)) for pt in pts)


# -- hold ----------------------------------------------------------------------------------
def is_hold(sd: SessionDescription) -> bool:
    """The sender of ``sd`` puts its peer on hold (RFC 3264 §8.4, RFC 6337 §5.3).

    Every stream in use is sendonly or inactive, by attribute or by the legacy
    ``c=0.0.0.0``; a description with no stream in use is not a hold.
    """
    active = [i for i, m in enumerate(sd.media) if m.port]
    return bool(active) and not any(sd.direction_of(i).receives for i in active)
