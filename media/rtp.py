"""RTP and RTCP on the wire (RFC 3550), and the in-place helpers of the relay.

Theory of operation
-------------------
Two layers, as in aiortc's ``rtp.py``:

* wire types: one dataclass per packet with ``parse()`` and ``__bytes__``
  that round-trip exactly (padding and header extensions are kept verbatim).
  They are for tests, the player and RTCP statistics, never for relayed
  packets;
* helpers that read or rewrite one header field of a packet held in a
  ``bytearray``/``memoryview`` without building any object, for the media hot
  path (STYLE rule 12).

RTP and RTCP sharing one port (RFC 5761 §4) are told apart by the second
byte: 192..223 is RTCP (packet types 200..207 and the reserved range), which
no dynamic or static RTP payload type with the marker bit can collide with
once payload types 64..95 are avoided, as §4 requires.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
RTP_HEADER_SIZE = 12  # RFC 3550 §5.1: the fixed header
RTCP_HEADER_SIZE = 8  # header + the sender's SSRC, the smallest useful packet
VERSION_MASK, VERSION_BITS = 0xC0, RTP_VERSION << 6
RTCP_MUX_FIRST, RTCP_MUX_LAST = 192, 223  # RFC 5761 §4: second byte of an RTCP packet

# RFC 3550 §12.1 RTCP packet types
RTCP_SR, RTCP_RR, RTCP_SDES, RTCP_BYE, RTCP_APP = 200, 201, 202, 203, 204

_SEQ = struct.Struct("!H")
_U32 = struct.Struct("!I")
_SEQ_TS_SSRC = struct.Struct("!HII")  # at offset 2
_HEADER = struct.Struct("!BBHII")
_RTCP_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IQIII")  # SSRC, NTP, RTP timestamp, packets, octets
_REPORT_BLOCK = struct.Struct("!IIIIII")


class RtpFormatError(ValueError):
    """Bytes that are not a well-formed RTP or RTCP packet."""


# -- in-place helpers (hot path) -------------------------------------------------------
def is_rtp(buf: bytes | bytearray | memoryview, n: int) -> bool:
    """Version 2, at least a fixed header, and not RTCP sharing the port."""
    return (
        n >= RTP_HEADER_SIZE
        and buf[0] & VERSION_MASK == VERSION_BITS
        and not RTCP_MUX_FIRST <= buf[1] <= RTCP_MUX_LAST
    )


def is_rtcp(buf: bytes | bytearray | memoryview, n: int) -> bool:
    """Version 2, at least header + SSRC, and an RTCP packet type (RFC 5761 §4)."""
    return (
        n >= RTCP_HEADER_SIZE
        and buf[0] & VERSION_MASK == VERSION_BITS
        and RTCP_MUX_FIRST <= buf[1] <= RTCP_MUX_LAST
    )


def payload_type(buf: bytes | bytearray | memoryview) -> int:
    return buf[1] & 0x7F


def set_payload_type(buf: bytearray | memoryview, pt: int) -> None:
    """Rewrite the payload type, keeping the marker bit."""
    buf[1] = (buf[1] & 0x80) | pt


def sequence_number(buf: bytes | bytearray | memoryview) -> int:
    return int(_SEQ.unpack_from(buf, 2)[0])


def timestamp(buf: bytes | bytearray | memoryview) -> int:
    return int(_U32.unpack_from(buf, 4)[0])


def ssrc(buf: bytes | bytearray | memoryview) -> int:
    return int(_U32.unpack_from(buf, 8)[0])


def read_seq_ts_ssrc(buf: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """(sequence number, timestamp, SSRC) in one call."""
    return _SEQ_TS_SSRC.unpack_from(buf, 2)  # type: ignore[return-value]


def write_seq_ts_ssrc(buf: bytearray | memoryview, seq: int, ts: int, source: int) -> None:
    _SEQ_TS_SSRC.pack_into(buf, 2, seq, ts, source)


# -- RTP -------------------------------------------------------------------------------
@dataclass
class RtpPacket:
    """RFC 3550 §5.1.  ``extension`` is the header extension's data (without its
    4-byte header) when ``extension_profile`` is not None; ``padding`` the
    padding bytes verbatim, its last byte being their count."""

    payload_type: int = 0
    marker: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""
    payload: bytes = b""
    padding: bytes = b""

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        if len(data) < RTP_HEADER_SIZE:
            raise RtpFormatError(f"RTP packet of {len(data)} bytes is too short")
        first, second, seq, ts, source = _HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpFormatError(f"RTP version {first >> 6}")
        pos = RTP_HEADER_SIZE + 4 * (first & 0x0F)
        if len(data) < pos:
            raise RtpFormatError("RTP CSRC list truncated")
        csrc = [_U32.unpack_from(data, off)[0] for off in range(RTP_HEADER_SIZE, pos, 4)]
        profile, extension = None, b""
        if first & 0x10:
            if len(data) < pos + 4:
                raise RtpFormatError("RTP header extension truncated")
            profile, words = struct.unpack_from("!HH", data, pos)
            extension = data[pos + 4 : pos + 4 + 4 * words]
            pos += 4 + 4 * words
            if len(extension) != 4 * words:
                raise RtpFormatError("RTP header extension truncated")
        end, padding = _strip_padding(data, first, pos)
        return cls(
            payload_type=second & 0x7F, marker=second >> 7, sequence_number=seq,
            timestamp=ts, ssrc=source, csrc=csrc, extension_profile=profile,
            extension=extension, payload=data[pos:end], padding=padding,
        )

    def __bytes__(self) -> bytes:
        if len(self.extension) % 4:
            raise RtpFormatError("RTP header extension is not a whole number of words")
        first = (
            VERSION_BITS | (0x20 if self.padding else 0)
            | (0x10 if self.extension_profile is not None else 0) | len(self.csrc)
        )
        out = bytearray(_HEADER.pack(
            first, (self.marker << 7) | self.payload_type, self.sequence_number,
            self.timestamp, self.ssrc,
        ))
        for source in self.csrc:
            out += _U32.pack(source)
        if self.extension_profile is not None:
            out += struct.pack("!HH", self.extension_profile, len(self.extension) // 4)
            out += self.extension
        return bytes(out + self.payload + self.padding)


def _strip_padding(data: bytes, first: int, start: int) -> tuple[int, bytes]:
    """(end of the payload, padding bytes) of a packet with P bit in ``first``."""
    if not first & 0x20:
        return len(data), b""
    count = data[-1] if len(data) > start else 0
    if count == 0 or count > len(data) - start:
        raise RtpFormatError("bad padding length")
    return len(data) - count, data[-count:]


# -- RTCP ------------------------------------------------------------------------------
@dataclass
class RtcpReportBlock:
    """RFC 3550 §6.4.1: one reception report."""

    ssrc: int
    fraction_lost: int
    packets_lost: int  # cumulative, signed 24 bits
    highest_sequence: int  # extended highest sequence number received
    jitter: int
    lsr: int
    dlsr: int

    @classmethod
    def parse(cls, data: bytes, pos: int = 0) -> RtcpReportBlock:
        source, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, pos)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        return cls(source, lost >> 24, cumulative, highest, jitter, lsr, dlsr)

    def __bytes__(self) -> bytes:
        lost = (self.fraction_lost << 24) | (self.packets_lost & 0xFFFFFF)
        return _REPORT_BLOCK.pack(
            self.ssrc, lost, self.highest_sequence, self.jitter, self.lsr, self.dlsr
        )


def _header(packet_type: int, count: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise RtpFormatError("RTCP body is not a whole number of words")
    return _RTCP_HEADER.pack(VERSION_BITS | count, packet_type, len(body) // 4) + body


def _reports(data: bytes, pos: int, count: int) -> tuple[list[RtcpReportBlock], int]:
    end = pos + count * _REPORT_BLOCK.size
    if len(data) < end:
        raise RtpFormatError("RTCP report blocks truncated")
    blocks = [RtcpReportBlock.parse(data, p) for p in range(pos, end, _REPORT_BLOCK.size)]
    return blocks, end


@dataclass
class RtcpSenderReport:
    """RFC 3550 §6.4.1 (SR, PT 200); ``extension`` is profile-specific data kept verbatim."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: list[RtcpReportBlock] = field(default_factory=list)
    extension: bytes = b""

    @classmethod
    def parse(cls, count: int, body: bytes) -> RtcpSenderReport:
        if len(body) < _SENDER_INFO.size:
            raise RtpFormatError("RTCP SR truncated")
        source, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
        reports, end = _reports(body, _SENDER_INFO.size, count)
        return cls(source, ntp, rtp_ts, packets, octets, reports, body[end:])

    def __bytes__(self) -> bytes:
        body = _SENDER_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count,
            self.octet_count,
        )
        body += b"".join(bytes(r) for r in self.reports) + self.extension
        return _header(RTCP_SR, len(self.reports), body)


@dataclass
class RtcpReceiverReport:
    """RFC 3550 §6.4.2 (RR, PT 201)."""

    ssrc: int
    reports: list[RtcpReportBlock] = field(default_factory=list)
    extension: bytes = b""

    @classmethod
    def parse(cls, count: int, body: bytes) -> RtcpReceiverReport:
        if len(body) < 4:
            raise RtpFormatError("RTCP RR truncated")
        reports, end = _reports(body, 4, count)
        return cls(_U32.unpack_from(body)[0], reports, body[end:])

    def __bytes__(self) -> bytes:
        body = _U32.pack(self.ssrc) + b"".join(bytes(r) for r in self.reports)
        return _header(RTCP_RR, len(self.reports), body + self.extension)


@dataclass
class RtcpBye:
    """RFC 3550 §6.6 (BYE, PT 203); ``reason`` is raw bytes, as on the wire."""

    sources: list[int] = field(default_factory=list)
    reason: bytes | None = None

    @classmethod
    def parse(cls, count: int, body: bytes) -> RtcpBye:
        end = 4 * count
        if len(body) < end:
            raise RtpFormatError("RTCP BYE truncated")
        sources = [_U32.unpack_from(body, off)[0] for off in range(0, end, 4)]
        reason = None
        if len(body) > end:
            size = body[end]
            reason = body[end + 1 : end + 1 + size]
            if len(reason) != size:
                raise RtpFormatError("RTCP BYE reason truncated")
        return cls(sources, reason)

    def __bytes__(self) -> bytes:
        body = b"".join(_U32.pack(s) for s in self.sources)
        if self.reason is not None:
            text = bytes([len(self.reason)]) + self.reason
            body += text + b"\x00" * (-len(text) % 4)
        return _header(RTCP_BYE, len(self.sources), body)


@dataclass
class RtcpPacket:
    """Any other RTCP packet (SDES, APP, feedback, XR), or one with padding: kept verbatim."""

    packet_type: int
    count: int  # the 5-bit RC/SC/FMT field
    body: bytes = b""
    padding: bytes = b""

    def __bytes__(self) -> bytes:
        data = bytearray(_header(self.packet_type, self.count, self.body + self.padding))
        if self.padding:
            data[0] |= 0x20
        return bytes(data)


AnyRtcp = RtcpSenderReport | RtcpReceiverReport | RtcpBye | RtcpPacket
_TYPED: dict[int, type[RtcpSenderReport | RtcpReceiverReport | RtcpBye]] = {
    RTCP_SR: RtcpSenderReport, RTCP_RR: RtcpReceiverReport, RTCP_BYE: RtcpBye,
}


def parse_rtcp(data: bytes) -> list[AnyRtcp]:
    """Every packet of a compound RTCP packet (RFC 3550 §6.1), in order."""
    packets: list[AnyRtcp] = []
    pos = 0
    while pos < len(data):
        if len(data) - pos < 4:
            raise RtpFormatError("RTCP header truncated")
        first, packet_type, words = _RTCP_HEADER.unpack_from(data, pos)
        if first >> 6 != RTP_VERSION:
            raise RtpFormatError(f"RTCP version {first >> 6}")
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RtpFormatError("RTCP packet truncated")
        chunk, count = data[pos:end], first & 0x1F
        typed = _TYPED.get(packet_type)
        packet: AnyRtcp | None = None
        if typed is not None and not first & 0x20:
            packet = typed.parse(count, chunk[4:])
        if packet is None or bytes(packet) != chunk:  # padded or not canonical: verbatim
            body_end, padding = _strip_padding(chunk, first, 4)
            packet = RtcpPacket(packet_type, count, chunk[4:body_end], padding)
        packets.append(packet)
        pos = end
    if not packets:
        raise RtpFormatError("empty RTCP packet")
    return packets


def serialize_rtcp(packets: list[AnyRtcp]) -> bytes:
    return b"".join(bytes(p) for p in packets)
