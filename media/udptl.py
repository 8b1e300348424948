"""T.38 fax relay: UDPTL packets (ITU-T T.38 §9.1) and the T.38 SDP parameters
of ``m=image <port> udptl t38`` (T.38 Annex D, RFC 3362).

Theory of operation
-------------------
A UDPTL packet is the ASN.1 ``UDPTLPacket`` in aligned PER, as Asterisk's
``udptl.c`` and spandsp write it::

    seq-number (2 octets) | primary IFP (open type) |
    error-recovery: 0x00, count, IFP...              -- secondary-ifp-packets
                  | 0x80, 0x01, span, count, data... -- fec-info

An open type is a PER length determinant (one octet below 128, two below
16384; fragments are refused) and at least one octet (X.691 §10.1).
``UdptlPacket.parse`` accepts only the minimal encoding, with nothing after
the last field, so ``bytes(UdptlPacket.parse(data)) == data`` always; the
IFPs themselves stay opaque bytes, the relay forwards packets as they are.
Everything a peer controls is bounded (``MAX_PACKET_SIZE``, at most
``MAX_REDUNDANCY`` secondary IFPs or ``MAX_FEC_ENTRIES`` FEC blocks, a span
up to ``MAX_FEC_SPAN``) and every problem raises ``UdptlError``.

``T38Params`` is the typed view of a T.38 media section's attributes
(names and enumerated values match case-insensitively, as Asterisk does;
the first of duplicates wins, as in ``media/sdp.py``), written back in
canonical form by ``to_attributes``.  A malformed value is SDP the switch
cannot use: ``SdpError`` with 488.  ``answer(local)`` applies the Annex D
rules for the answer: the lower version and bit rate, the offer's rate
management, the smaller buffer and datagram (the relay forwards datagrams
unchanged, so neither end may be promised more than the other can take),
the strongest error correction both support, and an option only if both
have it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields, replace
from typing import ClassVar

from .sdp import NOT_ACCEPTABLE_HERE, Attribute, MediaDescription, SdpError

MAX_PACKET_SIZE = 1500  # an Ethernet MTU; T38FaxMaxDatagram is usually 200..1400
MAX_REDUNDANCY = 16  # secondary IFPs in one packet (Asterisk keeps 16)
MAX_FEC_ENTRIES = 16
MAX_FEC_SPAN = 127
_SHORT_LENGTH, _LONG_LENGTH = 0x80, 0x4000  # X.691 §10.9.3.6 and .7.2
_SECONDARY, _FEC = 0x00, 0x80  # the error-recovery CHOICE index, padded to an octet


class UdptlError(ValueError):
    """Bytes that are not a UDPTL packet Centrala accepts, or a packet it cannot write."""


# -- PER helpers -----------------------------------------------------------------------
def _length(data: bytes, pos: int) -> tuple[int, int]:
    """(a length determinant's value, the position after it), minimal encoding only."""
    if pos >= len(data):
        raise UdptlError("UDPTL packet truncated at a length")
    first = data[pos]
    if first < _SHORT_LENGTH:
        return first, pos + 1
    if first & 0x40:
        raise UdptlError("fragmented UDPTL length (over 16 KiB)")
    if pos + 1 >= len(data):
        raise UdptlError("UDPTL packet truncated in a length")
    value = (first & 0x3F) << 8 | data[pos + 1]
    if value < _SHORT_LENGTH:
        raise UdptlError("UDPTL length not minimally encoded")
    return value, pos + 2


def _open_type(data: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = _length(data, pos)
    if size == 0 or pos + size > len(data):
        raise UdptlError("UDPTL open type empty or truncated")
    return data[pos : pos + size], pos + size


def _open_types(data: bytes, pos: int, limit: int, what: str) -> tuple[tuple[bytes, ...], int]:
    count, pos = _length(data, pos)
    if count > limit:
        raise UdptlError(f"UDPTL packet with {count} {what}, over {limit}")
    items = []
    for _ in range(count):
        item, pos = _open_type(data, pos)
        items.append(item)
    return tuple(items), pos


def _encode_length(value: int) -> bytes:
    if value < _SHORT_LENGTH:
        return bytes([value])
    return bytes([0x80 | value >> 8, value & 0xFF])


def _encode_open_types(items: tuple[bytes, ...]) -> bytes:
    return _encode_length(len(items)) + b"".join(_encode_length(len(i)) + i for i in items)


# -- UDPTL -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FecInfo:
    """``fec-info``: ``span`` (fec-npackets) and the FEC data blocks."""

    span: int
    data: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class UdptlPacket:
    """T.38 §9.1 ``UDPTLPacket``: a sequence number, the primary IFP and either
    secondary IFPs (redundancy, newest first) or FEC."""

    seq: int
    primary: bytes
    secondary: tuple[bytes, ...] = ()
    fec: FecInfo | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.seq <= 0xFFFF:
            raise UdptlError(f"UDPTL sequence number {self.seq} out of range")
        if self.fec is not None and self.secondary:
            raise UdptlError("UDPTL carries redundancy or FEC, not both")
        blocks = self.fec.data if self.fec else self.secondary
        if len(blocks) > (MAX_FEC_ENTRIES if self.fec else MAX_REDUNDANCY):
            raise UdptlError(f"UDPTL packet with {len(blocks)} recovery entries")
        if self.fec is not None and not 0 <= self.fec.span <= MAX_FEC_SPAN:
            raise UdptlError(f"UDPTL FEC span {self.fec.span} out of range")
        if any(not 0 < len(b) < _LONG_LENGTH for b in (self.primary, *blocks)):
            raise UdptlError("UDPTL IFPs and FEC blocks are 1 to 16383 octets")

    @classmethod
    def parse(cls, data: bytes) -> UdptlPacket:
        if not 5 <= len(data) <= MAX_PACKET_SIZE:
            raise UdptlError(f"UDPTL packet of {len(data)} bytes")
        primary, pos = _open_type(data, 2)
        if pos >= len(data):
            raise UdptlError("UDPTL packet without error recovery")
        recovery, pos = data[pos], pos + 1
        secondary: tuple[bytes, ...] = ()
        fec = None
        if recovery == _SECONDARY:
            secondary, pos = _open_types(data, pos, MAX_REDUNDANCY, "secondary IFPs")
        elif recovery == _FEC:
            if data[pos : pos + 1] != b"\x01" or pos + 2 > len(data):
                raise UdptlError("UDPTL FEC span is not one octet")
            span = data[pos + 1]
            blocks, pos = _open_types(data, pos + 2, MAX_FEC_ENTRIES, "FEC entries")
            fec = FecInfo(span, blocks)
        else:
            raise UdptlError(f"UDPTL error recovery octet {recovery:#04x}")
        if pos != len(data):
            raise UdptlError(f"{len(data) - pos} bytes after the UDPTL packet")
        return cls(int.from_bytes(data[:2], "big"), primary, secondary, fec)

    def __bytes__(self) -> bytes:
        out = self.seq.to_bytes(2, "big") + _encode_length(len(self.primary)) + self.primary
        if self.fec is None:
            out += bytes([_SECONDARY]) + _encode_open_types(self.secondary)
        else:
            out += bytes([_FEC, 1, self.fec.span]) + _encode_open_types(self.fec.data)
        if len(out) > MAX_PACKET_SIZE:
            raise UdptlError(f"UDPTL packet of {len(out)} bytes, over {MAX_PACKET_SIZE}")
        return out


# -- T.38 SDP (Annex D) ----------------------------------------------------------------------
class RateManagement(enum.StrEnum):
    LOCAL_TCF = "localTCF"  # TCF generated by the receiving gateway (TCP)
    TRANSFERRED_TCF = "transferredTCF"  # TCF sent end to end (required over UDP)


class ErrorCorrection(enum.StrEnum):
    """``T38FaxUdpEC``, weakest first: ``answer`` takes the lower of the two."""

    NONE = "t38UDPNoEC"
    REDUNDANCY = "t38UDPRedundancy"
    FEC = "t38UDPFEC"

    @property
    def rank(self) -> int:
        return list(ErrorCorrection).index(self)


def _refuse(reason: str) -> SdpError:
    return SdpError(reason, NOT_ACCEPTABLE_HERE)


def _number(name: str, value: str | None) -> int:
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 10:
        raise _refuse(f"a={name} is not a number: {(value or '')[:40]!r}")
    number = int(value)
    if number > 0xFFFFFFFF:
        raise _refuse(f"a={name} over 2^32-1")
    return number


def _flag(name: str, value: str | None) -> bool:
    """A bare flag is on; ``:1``/``:0`` as some gateways write it."""
    if value is None or value == "1":
        return True
    if value == "0":
        return False
    raise _refuse(f"a={name} is a flag, not {value[:40]!r}")


def _choice(name: str, value: str | None, enum_type: type[enum.StrEnum]) -> enum.StrEnum:
    for member in enum_type:
        if value is not None and value.lower() == member.value.lower():
            return member
    raise _refuse(f"a={name} cannot be {(value or '')[:40]!r}")


def _min(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True, slots=True)
class T38Params:
    """The T.38 attributes of an ``m=image ... udptl t38`` section (T.38 Annex D)."""

    version: int = 0
    max_bit_rate: int | None = None
    rate_management: RateManagement = RateManagement.TRANSFERRED_TCF
    max_buffer: int | None = None
    max_datagram: int | None = None
    error_correction: ErrorCorrection = ErrorCorrection.NONE
    fill_bit_removal: bool = False
    transcoding_mmr: bool = False
    transcoding_jbig: bool = False

    ATTRIBUTES: ClassVar[dict[str, str]] = {  # field -> attribute name, in writing order
        "version": "T38FaxVersion", "max_bit_rate": "T38MaxBitRate",
        "rate_management": "T38FaxRateManagement", "max_buffer": "T38FaxMaxBuffer",
        "max_datagram": "T38FaxMaxDatagram", "error_correction": "T38FaxUdpEC",
        "fill_bit_removal": "T38FaxFillBitRemoval", "transcoding_mmr": "T38FaxTranscodingMMR",
        "transcoding_jbig": "T38FaxTranscodingJBIG",
    }

    @classmethod
    def from_media(cls, m: MediaDescription) -> T38Params:
        """The parameters of a T.38 media section (any port, 0 included)."""
        if not is_t38(m):
            raise _refuse(f"not a T.38 stream: m={m.media} {m.port} {m.proto}")
        found: dict[str, str | None] = {}
        for a in m.attributes:  # the first of duplicates wins
            found.setdefault(a.name.lower(), a.value)
        values: dict[str, object] = {}
        for f in fields(cls):
            name = cls.ATTRIBUTES[f.name]
            if name.lower() in found:
                values[f.name] = _convert(f.name, name, found[name.lower()])
        return cls(**values)  # type: ignore[arg-type]

    def to_attributes(self) -> list[Attribute]:
        """The canonical attributes: flags only when on, absent numbers left out,
        no ``T38FaxUdpEC`` for none (Annex D names only FEC and redundancy)."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            name = self.ATTRIBUTES[f.name]
            if value is None or value is False or value is ErrorCorrection.NONE:
                continue
            out.append(Attribute(name) if value is True else Attribute(name, str(value)))
        return out

    def apply_to(self, m: MediaDescription) -> None:
        """Replace the T.38 attributes of ``m`` (any spelling) with ours."""
        names = {n.lower() for n in self.ATTRIBUTES.values()}
        m.attributes = [a for a in m.attributes if a.name.lower() not in names]
        m.attributes += self.to_attributes()

    def answer(self, local: T38Params) -> T38Params:
        """The answer to this offer from an end that can do ``local`` (Annex D)."""
        ec = min(self.error_correction, local.error_correction, key=lambda e: e.rank)
        return replace(
            self,
            version=min(self.version, local.version),
            max_bit_rate=_min(self.max_bit_rate, local.max_bit_rate),
            max_buffer=_min(self.max_buffer, local.max_buffer),
            max_datagram=_min(self.max_datagram, local.max_datagram),
            error_correction=ec,
            fill_bit_removal=self.fill_bit_removal and local.fill_bit_removal,
            transcoding_mmr=self.transcoding_mmr and local.transcoding_mmr,
            transcoding_jbig=self.transcoding_jbig and local.transcoding_jbig,
        )


def _convert(field_name: str, name: str, value: str | None) -> object:
    if field_name == "rate_management":
        return _choice(name, value, RateManagement)
    if field_name == "error_correction":
        return _choice(name, value, ErrorCorrection)
    if field_name.startswith(("fill_", "transcoding_")):
        return _flag(name, value)
    number = _number(name, value)
    if field_name == "version" and number > 255:
        raise _refuse(f"a={name}:{number} is not a T.38 version")
    return number


def is_t38(m: MediaDescription) -> bool:
    """``m=image <port> udptl t38`` (RFC 3362 §3, T.38 Annex D)."""
    return (m.media.lower() == "image" and m.proto.lower() == "udptl"
            and any(f.lower() == "t38" for f in m.formats))
