"""Session descriptions (SDP, RFC 8866, formerly RFC 4566) as a wire type.

Theory of operation
-------------------
``SessionDescription.parse(data)`` checks the bounds of what a peer controls
first (total size, number of lines, line length), then splits the text at LF:
the CR before it is optional and the last line needs no end at all (OpenSIPS
GHSA-xj5x-g52f-548h crashed on that).  The lines before the first ``m=`` make
the session level, each ``m=`` opens a ``MediaDescription`` (RFC 8866 §5).
The lines the media layer uses are typed (``o=``, ``c=``, ``b=``, ``m=``,
``a=``); the others (``i= u= e= p= t= r= z= k=``) are kept verbatim as
``Line`` in ``extra``.  Attributes stay verbatim and in order; the typed views
the media layer needs (rtpmap, fmtp, ptime, maxptime, direction, rtcp,
rtcp-mux) are read on access and checked once at parse time, so a truncated
``a=rtpmap`` is refused at the door.  ``a=crypto``, ``a=fingerprint``,
``a=setup`` and the ICE lines are kept untouched.

``bytes(sd)`` of an unmodified description is the exact input, whatever its
line ends.  Once anything changed, the whole description is written anew in
RFC order with CRLF line ends (§5).  The check is cheap: the serialisation
made at parse time is compared with the current one.

Every problem raises ``SdpError`` carrying the SIP status to answer: 400 when
the text is not well-formed SDP, 488 when it is SDP the switch cannot use
(RFC 3261 §21.4.26), 513 when it is over ``MAX_SIZE``.  No other exception escapes ``parse()`` or an accessor.
Duplicates are resolved deterministically, never trusted as unique: the first
``a=rtpmap``/``a=fmtp`` of a payload type wins, a format listed twice on an
``m=`` line counts once (FreeSWITCH GHSA-gjj5-79p2-9g3q).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, TypeVar

# Bounds on what a peer controls (STYLE §9).  A WebRTC audio+video offer with
# ICE candidates stays well under all of them.
MAX_SIZE = 32 * 1024
MAX_LINES = 512
MAX_LINE_LENGTH = 1024  # CVE-2007-2293: overlong T.38 attributes
MAX_MEDIA = 16
MAX_FORMATS = 64

BAD_REQUEST = 400
NOT_ACCEPTABLE_HERE = 488

_SESSION_RANK = {t: i for i, t in enumerate("vosiuepcb")} | {
    "t": 9, "r": 9, "z": 10, "k": 11, "a": 12,  # r= belongs to the t= before it
}
_MEDIA_RANK = {t: i for i, t in enumerate("micbka")}
_LINE_RE = re.compile(r"([a-z])=([^\x00-\x08\x0a-\x1f\x7f]*)\Z")
# RFC 8866 §9: token-char, and proto = token *("/" token).
_TOKEN = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_TOKEN_RE = re.compile(_TOKEN + r"\Z")
_PROTO_RE = re.compile(rf"{_TOKEN}(?:/{_TOKEN})*\Z")
# Unicast and multicast addresses, FQDNs (§9); IP literals are checked by the user.
_ADDRESS_RE = re.compile(r"[0-9A-Za-z.:_\-/]{1,255}\Z")
_RTPMAP_RE = re.compile(r"(\d{1,3}) +([^/\s]+)/(\d{1,10})(?:/(\d{1,3}))?\s*\Z")
_DECIMAL_RE = re.compile(r"(\d{1,5})(?:\.\d{1,6})?\s*\Z")

T = TypeVar("T")


class SdpError(Exception):
    """A session description the switch cannot take; ``status`` is the SIP answer."""

    def __init__(self, reason: str, status: int = BAD_REQUEST) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Direction(StrEnum):
    """RFC 3264 §5.1 / RFC 8866 §6.7: who sends media on a stream."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE


DIRECTIONS = frozenset(d.value for d in Direction)


# -- lexical helpers -----------------------------------------------------------
def _uint(text: str, maximum: int, what: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 20 or int(text) > maximum:
        raise SdpError(f"{what} is not a number up to {maximum}: {text[:40]!r}")
    return int(text)


def _token(text: str, what: str) -> str:
    if not _TOKEN_RE.match(text):
        raise SdpError(f"{what} is not a token: {text[:40]!r}")
    return text


def _address(text: str, what: str) -> str:
    if not _ADDRESS_RE.match(text):
        raise SdpError(f"{what} is not an address: {text[:40]!r}")
    return text


def _fields(value: str, count: int, what: str) -> list[str]:
    parts = value.split()
    if len(parts) != count:
        raise SdpError(f"{what} needs {count} fields, not {len(parts)}")
    return parts


def _once(current: T | None, new: T, what: str) -> T:
    if current is not None:
        raise SdpError(f"more than one {what} line")
    return new


# -- typed lines ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Line:
    """A line kept without interpretation: ``<type>=<value>``."""

    type: str
    value: str

    def __str__(self) -> str:
        return f"{self.type}={self.value}"


@dataclass(frozen=True, slots=True)
class Origin:
    """``o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>`` (§5.2)."""

    username: str
    sess_id: int
    sess_version: int
    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @classmethod
    def parse(cls, value: str) -> Origin:
        user, sess_id, version, nettype, addrtype, address = _fields(value, 6, "o=")
        return cls(
            user,
            _uint(sess_id, 2**64 - 1, "o= sess-id"),
            _uint(version, 2**64 - 1, "o= sess-version"),
            _address(address, "o= address"),
            _token(nettype, "o= nettype"),
            _token(addrtype, "o= addrtype"),
        )

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version}"
            f" {self.nettype} {self.addrtype} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    """``c=<nettype> <addrtype> <connection-address>`` (§5.7)."""

    address: str
    nettype: str = "IN"
    addrtype: str = "IP4"

    @classmethod
    def parse(cls, value: str) -> Connection:
        nettype, addrtype, address = _fields(value, 3, "c=")
        return cls(
            _address(address, "c= address"),
            _token(nettype, "c= nettype"),
            _token(addrtype, "c= addrtype"),
        )

    @classmethod
    def of(cls, host: str) -> Connection:
        """``IN IP4`` or ``IN IP6`` for an IP literal."""
        return cls(host, "IN", "IP6" if ":" in host else "IP4")

    @property
    def host(self) -> str:
        """The address without a multicast ``/ttl/count`` suffix."""
        return self.address.split("/", 1)[0]

    @property
    def is_hold(self) -> bool:
        """RFC 3264 §8.4: ``c=IN IP4 0.0.0.0`` is the RFC 2543 way to stop media."""
        return self.addrtype == "IP4" and self.host == "0.0.0.0"

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """``b=<bwtype>:<bandwidth>`` (§5.8)."""

    bwtype: str
    bandwidth: int

    @classmethod
    def parse(cls, value: str) -> Bandwidth:
        bwtype, colon, amount = value.partition(":")
        if not colon:
            raise SdpError(f"b= without ':': {value[:40]!r}")
        return cls(_token(bwtype, "b= bwtype"), _uint(amount, 2**32 - 1, "b= bandwidth"))

    def __str__(self) -> str:
        return f"{self.bwtype}:{self.bandwidth}"


@dataclass(frozen=True, slots=True)
class Attribute:
    """``a=<name>`` or ``a=<name>:<value>`` (§5.13), value verbatim."""

    name: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Attribute:
        name, colon, value = text.partition(":")
        return cls(_token(name, "attribute name"), value if colon else None)

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True)
class Codec:
    """An RTP payload format: encoding name, clock rate, channels (§6.6)."""

    name: str
    clock_rate: int
    channels: int = 1

    @property
    def key(self) -> tuple[str, int, int]:
        """Identity for matching: encoding names are case-insensitive (RFC 4855 §3)."""
        return self.name.lower(), self.clock_rate, self.channels

    def __str__(self) -> str:
        tail = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.name}/{self.clock_rate}{tail}"


# RFC 3551 §6, tables 4 and 5: payload types usable without a=rtpmap.
STATIC_PAYLOAD_TYPES: Mapping[int, Codec] = {
    0: Codec("PCMU", 8000), 3: Codec("GSM", 8000), 4: Codec("G723", 8000),
    5: Codec("DVI4", 8000), 6: Codec("DVI4", 16000), 7: Codec("LPC", 8000),
    8: Codec("PCMA", 8000), 9: Codec("G722", 8000), 10: Codec("L16", 44100, 2),
    11: Codec("L16", 44100), 12: Codec("QCELP", 8000), 13: Codec("CN", 8000),
    14: Codec("MPA", 90000), 15: Codec("G728", 8000), 16: Codec("DVI4", 11025),
    17: Codec("DVI4", 22050), 18: Codec("G729", 8000), 25: Codec("CelB", 90000),
    26: Codec("JPEG", 90000), 28: Codec("nv", 90000), 31: Codec("H261", 90000),
    32: Codec("MPV", 90000), 33: Codec("MP2T", 90000), 34: Codec("H263", 90000),
}


@dataclass(frozen=True, slots=True)
class RtpMap:
    """``a=rtpmap:<payload type> <encoding name>/<clock rate>[/<channels>]`` (§6.6)."""

    payload_type: int
    codec: Codec
    explicit_channels: bool = False  # "opus/48000/2" but also "PCMU/8000/1"

    @classmethod
    def parse(cls, value: str) -> RtpMap:
        match = _RTPMAP_RE.match(value)
        if not match:
            raise SdpError(f"malformed a=rtpmap: {value[:60]!r}")
        pt, name, clock, channels = match.groups()
        codec = Codec(
            _token(name, "rtpmap encoding name"),
            _uint(clock, 2**32 - 1, "rtpmap clock rate"),
            _uint(channels or "1", 255, "rtpmap channels"),
        )
        if codec.clock_rate == 0 or codec.channels == 0:
            raise SdpError(f"a=rtpmap with a zero clock rate or channel count: {value[:60]!r}")
        return cls(_uint(pt, 127, "rtpmap payload type"), codec, channels is not None)

    def __str__(self) -> str:
        c = self.codec
        tail = f"/{c.channels}" if self.explicit_channels or c.channels != 1 else ""
        return f"{self.payload_type} {c.name}/{c.clock_rate}{tail}"


@dataclass(frozen=True, slots=True)
class Fmtp:
    """``a=fmtp:<format> <format specific parameters>`` (§6.15)."""

    format: str
    params: str

    @classmethod
    def parse(cls, value: str) -> Fmtp:
        fmt, _, params = value.partition(" ")
        return cls(_token(fmt, "fmtp format"), params.strip())

    def __str__(self) -> str:
        return f"{self.format} {self.params}"


@dataclass(frozen=True, slots=True)
class Rtcp:
    """RFC 3605 ``a=rtcp:<port> [<nettype> <addrtype> <connection-address>]``."""

    port: int
    connection: Connection | None = None

    @classmethod
    def parse(cls, value: str) -> Rtcp:
        port, _, rest = value.strip().partition(" ")
        connection = Connection.parse(rest) if rest else None
        return cls(_uint(port, 65535, "a=rtcp port"), connection)

    def __str__(self) -> str:
        return f"{self.port} {self.connection}" if self.connection else str(self.port)


def _decimal_ms(value: str, what: str) -> int:
    """``a=ptime``/``a=maxptime`` (§6.4, §6.5): milliseconds, a fraction is rounded."""
    ms = round(float(value)) if _DECIMAL_RE.match(value) else 0
    if not 0 < ms <= 10000:
        raise SdpError(f"malformed a={what}: {value[:40]!r}")
    return ms


# -- attribute lists (shared by the session level and media sections) -----------
class _Attributes:
    """Access to an ordered ``attributes`` list; the first of duplicates wins."""

    __slots__ = ()
    attributes: list[Attribute]

    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=<name>:<value>`` ("" for a flag), or None."""
        for a in self.attributes:
            if a.name == name:
                return "" if a.value is None else a.value
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [a.value or "" for a in self.attributes if a.name == name]

    def has_attribute(self, name: str) -> bool:
        return any(a.name == name for a in self.attributes)

    def remove_attributes(self, *names: str) -> None:
        self.attributes[:] = [a for a in self.attributes if a.name not in names]

    def set_attribute(self, name: str, value: str | None = None) -> None:
        """Replace the first ``a=<name>`` in place (dropping the others) or append one."""
        new = Attribute(name, value)
        at = next((i for i, a in enumerate(self.attributes) if a.name == name), None)
        self.remove_attributes(name)
        self.attributes.insert(len(self.attributes) if at is None else at, new)

    @property
    def direction(self) -> Direction | None:
        """The first direction attribute at this level (§6.7), if any."""
        return next((Direction(a.name) for a in self.attributes if a.name in DIRECTIONS), None)

    def set_direction(self, direction: Direction | None) -> None:
        """Exactly one direction attribute at this level (None: none)."""
        self.remove_attributes(*DIRECTIONS)
        if direction is not None:
            self.attributes.append(Attribute(direction.value))


# -- lines ----------------------------------------------------------------------
def _lines(data: bytes) -> list[Line]:
    """Bounded, ASCII-only split into lines; LF, CRLF and a last line without either."""
    if len(data) > MAX_SIZE:
        raise SdpError(f"session description over {MAX_SIZE} bytes", 513)
    if not data.isascii():
        raise SdpError("session description with non-ASCII bytes")
    texts = data.decode("ascii").split("\n")
    if len(texts) > MAX_LINES:
        raise SdpError(f"session description over {MAX_LINES} lines")
    return [_line(t.removesuffix("\r")) for t in texts if t not in ("", "\r")]


def _line(text: str) -> Line:
    if len(text) > MAX_LINE_LENGTH:
        raise SdpError(f"SDP line over {MAX_LINE_LENGTH} characters: {text[:40]!r}...")
    match = _LINE_RE.match(text)
    if not match:
        raise SdpError(f"not an SDP <type>=<value> line: {text[:40]!r}")
    return Line(match[1], match[2])


def _in_order(ranked: list[tuple[int, str]]) -> list[str]:
    return [text for _, text in sorted(ranked, key=lambda item: item[0])]


# -- media descriptions -----------------------------------------------------------
PAYLOAD_TYPE_ATTRIBUTES = frozenset({"rtpmap", "fmtp", "rtcp-fb"})  # "<pt> ..." values


@dataclass(slots=True)
class MediaDescription(_Attributes):
    """One media section: ``m=<media> <port>[/<count>] <proto> <fmt> ...`` and its lines (§5.14)."""

    media: str
    port: int
    proto: str
    formats: list[str]
    port_count: int | None = None
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    extra: list[Line] = field(default_factory=list)  # i=, k=

    TYPED: ClassVar[Mapping[str, type[RtpMap | Fmtp | Rtcp]]] = {
        "rtpmap": RtpMap, "fmtp": Fmtp, "rtcp": Rtcp,
    }

    @classmethod
    def parse(cls, data: bytes) -> MediaDescription:
        """One media section on its own, from its ``m=`` line on."""
        return cls._from_lines(_lines(data))

    @classmethod
    def _from_lines(cls, lines: list[Line]) -> MediaDescription:
        if not lines or lines[0].type != "m":
            raise SdpError("a media description starts with m=")
        m = cls._from_media_line(lines[0].value)
        for line in lines[1:]:
            m._add_line(line)
        m._check_attributes()
        return m

    @classmethod
    def _from_media_line(cls, value: str) -> MediaDescription:
        tokens = value.split()
        if len(tokens) < 4:
            raise SdpError(f"m= needs <media> <port> <proto> <fmt>...: {value[:60]!r}")
        media, port, proto, *formats = tokens
        if len(formats) > MAX_FORMATS:
            raise SdpError(f"m= line with over {MAX_FORMATS} formats")
        port, slash, count = port.partition("/")
        m = cls(_token(media, "m= media"), _uint(port, 65535, "m= port"), proto, formats)
        if slash:
            m.port_count = _uint(count, 65535, "m= number of ports")
            if m.port_count == 0:
                raise SdpError("m= with zero ports")
        if not _PROTO_RE.match(proto):
            raise SdpError(f"m= proto is not a token: {proto[:40]!r}")
        for fmt in formats:
            if m.is_rtp:
                _uint(fmt, 127, "RTP payload type")
            else:
                _token(fmt, "m= format")
        return m

    def _add_line(self, line: Line) -> None:
        match line.type:
            case "c":
                self.connection = _once(self.connection, Connection.parse(line.value), "media c=")
            case "b":
                self.bandwidths.append(Bandwidth.parse(line.value))
            case "a":
                self.attributes.append(Attribute.parse(line.value))
            case "i" | "k":
                self.extra.append(line)
            case _:
                raise SdpError(f"{line.type}= is not allowed in a media description")

    def _check_attributes(self) -> None:
        """Refuse a broken rtpmap, fmtp, rtcp, ptime or maxptime now, not on first use."""
        for a in self.attributes:
            if a.name in self.TYPED:
                self.TYPED[a.name].parse(a.value or "")
            elif a.name in ("ptime", "maxptime"):
                _decimal_ms(a.value or "", a.name)

    def copy(self) -> MediaDescription:
        """An independent copy (its lines are immutable: only the lists are new)."""
        return MediaDescription(
            self.media, self.port, self.proto, list(self.formats), self.port_count,
            self.connection, list(self.bandwidths), list(self.attributes), list(self.extra),
        )

    def __bytes__(self) -> bytes:
        return ("".join(f"{line}\r\n" for line in self.lines())).encode("ascii")

    def lines(self) -> list[str]:
        """The section's lines in RFC order, without line ends."""
        port = f"{self.port}/{self.port_count}" if self.port_count else str(self.port)
        head = f"m={self.media} {port} {' '.join([self.proto, *self.formats])}"
        ranked = [(_MEDIA_RANK["m"], head)]
        ranked += [(_MEDIA_RANK[x.type], str(x)) for x in self.extra]
        if self.connection:
            ranked.append((_MEDIA_RANK["c"], f"c={self.connection}"))
        ranked += [(_MEDIA_RANK["b"], f"b={b}") for b in self.bandwidths]
        ranked += [(_MEDIA_RANK["a"], f"a={a}") for a in self.attributes]
        return _in_order(ranked)

    # -- typed views -------------------------------------------------------------
    @property
    def is_rtp(self) -> bool:
        """RTP/AVP, RTP/SAVP, RTP/AVPF, UDP/TLS/RTP/SAVPF...: formats are payload types."""
        return "RTP/" in self.proto

    @property
    def payload_types(self) -> list[int]:
        """The formats as payload types, in order, each once (empty unless RTP)."""
        return list(dict.fromkeys(int(f) for f in self.formats)) if self.is_rtp else []

    def _payload_type_values(self, name: str) -> Iterable[tuple[int, str]]:
        for value in self.attribute_values(name):
            pt, _, _ = value.partition(" ")
            if pt.isascii() and pt.isdigit() and len(pt) <= 3:
                yield int(pt), value

    def rtpmap(self, pt: int) -> RtpMap | None:
        """The first a=rtpmap of ``pt``, else the RFC 3551 static assignment."""
        for number, value in self._payload_type_values("rtpmap"):
            if number == pt:
                return RtpMap.parse(value)
        static = STATIC_PAYLOAD_TYPES.get(pt)
        return RtpMap(pt, static) if static else None

    def codec(self, pt: int) -> Codec | None:
        rtpmap = self.rtpmap(pt)
        return rtpmap.codec if rtpmap else None

    def fmtp(self, pt: int) -> Fmtp | None:
        for number, value in self._payload_type_values("fmtp"):
            if number == pt:
                return Fmtp.parse(value)
        return None

    def set_rtpmap(self, rtpmap: RtpMap) -> None:
        self._set_payload_attribute("rtpmap", rtpmap.payload_type, str(rtpmap))

    def set_fmtp(self, fmtp: Fmtp) -> None:
        self._set_payload_attribute("fmtp", int(fmtp.format), str(fmtp))

    def _set_payload_attribute(self, name: str, pt: int, value: str) -> None:
        new = Attribute(name, value)
        for i, a in enumerate(self.attributes):
            if a.name == name and _payload_type_of(a) == str(pt):
                self.attributes[i] = new
                return
        self.attributes.append(new)

    def remove_format(self, fmt: str) -> None:
        """Drop ``fmt`` from the m= line with its rtpmap, fmtp and rtcp-fb lines."""
        key = _format_key(fmt)
        self.formats = [f for f in self.formats if _format_key(f) != key]
        self.attributes = [a for a in self.attributes if _payload_type_of(a) != key]

    def renumber(self, mapping: Mapping[int, int]) -> None:
        """Rewrite payload types on the m= line and in rtpmap/fmtp/rtcp-fb lines."""
        self.formats = [
            str(mapping[int(f)]) if f.isdigit() and int(f) in mapping else f for f in self.formats
        ]
        self.attributes = [_renumbered(a, mapping) for a in self.attributes]

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        return None if value is None else _decimal_ms(value, "ptime")

    @property
    def maxptime(self) -> int | None:
        value = self.attribute("maxptime")
        return None if value is None else _decimal_ms(value, "maxptime")

    @property
    def rtcp(self) -> Rtcp | None:
        value = self.attribute("rtcp")
        return None if value is None else Rtcp.parse(value)

    def set_rtcp(self, rtcp: Rtcp | None) -> None:
        self.remove_attributes("rtcp")
        if rtcp is not None:
            self.attributes.append(Attribute("rtcp", str(rtcp)))

    @property
    def rtcp_mux(self) -> bool:
        """RFC 5761 §5.1.1: ``a=rtcp-mux``."""
        return self.has_attribute("rtcp-mux")

    def set_rtcp_mux(self, on: bool) -> None:
        self.remove_attributes("rtcp-mux")
        if on:
            self.attributes.append(Attribute("rtcp-mux"))


def _format_key(fmt: str) -> str:
    """A format as compared: payload type "08" is "8"."""
    return str(int(fmt)) if fmt.isdigit() and len(fmt) <= 3 else fmt


def _payload_type_of(a: Attribute) -> str | None:
    """The format an rtpmap/fmtp/rtcp-fb line is about (None for others, "*" for all)."""
    if a.name not in PAYLOAD_TYPE_ATTRIBUTES:
        return None
    return _format_key((a.value or "").partition(" ")[0])


def _renumbered(a: Attribute, mapping: Mapping[int, int]) -> Attribute:
    pt = _payload_type_of(a)
    if pt is None or not pt.isdigit() or int(pt) not in mapping:
        return a
    rest = (a.value or "").partition(" ")[2]
    return Attribute(a.name, f"{mapping[int(pt)]} {rest}" if rest else str(mapping[int(pt)]))


# -- session descriptions ---------------------------------------------------------
@dataclass(slots=True)
class SessionDescription(_Attributes):
    """A whole SDP body: session-level lines and media sections (§5)."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = field(default_factory=list)
    attributes: list[Attribute] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    extra: list[Line] = field(default_factory=list)  # i= u= e= p= t= r= z= k=, in order
    _raw: bytes = field(default=b"", init=False, repr=False, compare=False)
    _parsed: bytes = field(default=b"", init=False, repr=False, compare=False)

    @classmethod
    def parse(cls, data: bytes) -> SessionDescription:
        lines = _lines(data)
        starts = [i for i, line in enumerate(lines) if line.type == "m"] + [len(lines)]
        if len(starts) - 1 > MAX_MEDIA:
            raise SdpError(f"over {MAX_MEDIA} media descriptions", NOT_ACCEPTABLE_HERE)
        sd = cls._from_lines(lines[: starts[0]])
        sd.media = [
            MediaDescription._from_lines(lines[a:b]) for a, b in itertools.pairwise(starts)
        ]
        sd._raw, sd._parsed = data, sd._serialise()
        return sd

    @classmethod
    def _from_lines(cls, lines: list[Line]) -> SessionDescription:
        if not lines or lines[0].type != "v":
            raise SdpError("a session description starts with v= (RFC 8866 §5.1)")
        if lines[0].value != "0":
            raise SdpError(f"SDP version {lines[0].value[:20]!r} is not 0")
        origin: Origin | None = None
        name: str | None = None
        sd = cls(Origin("-", 0, 0, "0.0.0.0"))
        for line in lines[1:]:
            match line.type:
                case "o":
                    origin = _once(origin, Origin.parse(line.value), "o=")
                case "s":
                    name = _once(name, line.value, "s=")
                case _:
                    sd._add_line(line)
        if origin is None:
            raise SdpError("session description without o= (RFC 8866 §5.2)")
        sd.origin, sd.session_name = origin, "-" if name is None else name
        return sd

    def _add_line(self, line: Line) -> None:
        match line.type:
            case "c":
                self.connection = _once(self.connection, Connection.parse(line.value), "c=")
            case "b":
                self.bandwidths.append(Bandwidth.parse(line.value))
            case "a":
                self.attributes.append(Attribute.parse(line.value))
            case "v":
                raise SdpError("more than one v= line")
            case _:
                self.extra.append(line)

    def copy(self) -> SessionDescription:
        """An independent copy, as ``parse(bytes(self))`` but without the text round trip;
        an unchanged copy of a parsed description still serialises to its exact bytes."""
        out = SessionDescription(
            self.origin, self.session_name, self.connection, list(self.bandwidths),
            list(self.attributes), [m.copy() for m in self.media], list(self.extra),
        )
        out._raw, out._parsed = self._raw, self._parsed
        return out

    def __bytes__(self) -> bytes:
        out = self._serialise()
        return self._raw if out == self._parsed and self._raw else out

    def _serialise(self) -> bytes:
        ranked = [(0, "v=0"), (1, f"o={self.origin}"), (2, f"s={self.session_name}")]
        ranked += [(_SESSION_RANK[x.type], str(x)) for x in self.extra]
        if self.connection:
            ranked.append((_SESSION_RANK["c"], f"c={self.connection}"))
        ranked += [(_SESSION_RANK["b"], f"b={b}") for b in self.bandwidths]
        ranked += [(_SESSION_RANK["a"], f"a={a}") for a in self.attributes]
        lines = _in_order(ranked) + [line for m in self.media for line in m.lines()]
        return "".join(f"{line}\r\n" for line in lines).encode("ascii")

    # -- effective values of a media section -----------------------------------
    def connection_of(self, index: int) -> Connection | None:
        """The media's own c=, else the session-level one (§5.7)."""
        return self.media[index].connection or self.connection

    def direction_of(self, index: int) -> Direction:
        """Media-level attribute, else session-level, else sendrecv (RFC 3264 §5.1).

        RFC 3264 §8.4: with the legacy ``c=0.0.0.0`` the party receives nothing,
        so a sendrecv stream counts as sendonly and a recvonly one as inactive.
        """
        declared = self.media[index].direction or self.direction or Direction.SENDRECV
        connection = self.connection_of(index)
        if connection is not None and connection.is_hold:
            return Direction.of(declared.sends, receives=False)
        return declared
