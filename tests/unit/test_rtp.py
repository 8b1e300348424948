"""RTP/RTCP wire types (round trips, errors) and the in-place helpers of the relay."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media import rtp
from media.rtp import (
    RtcpBye,
    RtcpPacket,
    RtcpReceiverReport,
    RtcpReportBlock,
    RtcpSenderReport,
    RtpFormatError,
    RtpPacket,
    parse_rtcp,
    serialize_rtcp,
)

# A G.711 packet as a desk phone sends it: V=2, PT 0, marker, seq 4660, ts 160, SSRC.
PCMU = bytes.fromhex("80801234000000a0deadbeef") + b"\xff" * 160


def test_rtp_round_trip_plain() -> None:
    packet = RtpPacket.parse(PCMU)
    assert (packet.payload_type, packet.marker, packet.sequence_number) == (0, 1, 0x1234)
    assert (packet.timestamp, packet.ssrc) == (0xA0, 0xDEADBEEF)
    assert packet.payload == b"\xff" * 160 and packet.csrc == [] and packet.padding == b""
    assert bytes(packet) == PCMU


def test_rtp_round_trip_csrc_extension_padding() -> None:
    packet = RtpPacket(
        payload_type=111, marker=0, sequence_number=65535, timestamp=2**32 - 1, ssrc=7,
        csrc=[1, 2], extension_profile=0xBEDE, extension=b"\x10\xaa\x00\x00",
        payload=b"opus", padding=b"\x00\x00\x03",
    )
    data = bytes(packet)
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    assert RtpPacket.parse(data) == packet
    assert bytes(RtpPacket.parse(data)) == data


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (PCMU[:11], "too short"),
        (b"\x40" + PCMU[1:], "version"),
        (b"\x82" + PCMU[1:12], "CSRC"),
        (b"\x90" + PCMU[1:12] + b"\xbe\xde\x00\x05", "extension"),
        (b"\xa0" + PCMU[1:-1] + b"\xff", "padding"),
    ],
)
def test_rtp_malformed(data: bytes, why: str) -> None:
    with pytest.raises(RtpFormatError):
        RtpPacket.parse(data)


@given(st.binary(max_size=80))
def test_rtp_parse_raises_or_round_trips(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpFormatError:
        return
    assert bytes(packet) == data


@given(
    st.integers(0, 127), st.integers(0, 1), st.integers(0, 0xFFFF), st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1), st.lists(st.integers(0, 2**32 - 1), max_size=15),
    st.binary(max_size=40),
)
def test_rtp_serialize_parse(pt: int, m: int, seq: int, ts: int, ssrc: int, csrc: list[int],
                             payload: bytes) -> None:
    packet = RtpPacket(pt, m, seq, ts, ssrc, csrc, payload=payload)
    assert RtpPacket.parse(bytes(packet)) == packet


def test_rtcp_compound_round_trip() -> None:
    block = RtcpReportBlock(ssrc=9, fraction_lost=12, packets_lost=-3, highest_sequence=70000,
                            jitter=40, lsr=0x11223344, dlsr=655)
    sdes = RtcpPacket(rtp.RTCP_SDES, 1, struct.pack("!I", 5) + b"\x01\x04abcd\x00\x00")
    packets = [
        RtcpSenderReport(5, 0x1122334455667788, 160, 50, 8000, [block]),
        RtcpReceiverReport(5, [block, block]),
        sdes,
        RtcpBye([5], b"hung up"),
    ]
    data = serialize_rtcp(packets)  # type: ignore[arg-type]
    assert parse_rtcp(data) == packets
    assert serialize_rtcp(parse_rtcp(data)) == data
    assert rtp.is_rtcp(data, len(data)) and not rtp.is_rtp(data, len(data))


def test_rtcp_padded_packet_kept_verbatim() -> None:
    body = struct.pack("!I", 5) + b"\x00\x00\x00\x04"  # RR, no blocks, 4 bytes of padding
    data = bytes([0xA0, rtp.RTCP_RR]) + struct.pack("!H", 2) + body
    (packet,) = parse_rtcp(data)
    assert isinstance(packet, RtcpPacket) and packet.padding == b"\x00\x00\x00\x04"
    assert bytes(packet) == data


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80\xc8", b"\x40\xc9\x00\x01" + b"\x00" * 4, b"\x81\xc9\x00\x01" + b"\x00" * 4,
     b"\x80\xc9\x00\x05" + b"\x00" * 4],
)
def test_rtcp_malformed(data: bytes) -> None:
    with pytest.raises(RtpFormatError):
        parse_rtcp(data)


@given(st.binary(max_size=120))
def test_rtcp_parse_raises_or_round_trips(data: bytes) -> None:
    try:
        packets = parse_rtcp(data)
    except RtpFormatError:
        return
    assert serialize_rtcp(packets) == data


def test_in_place_helpers() -> None:
    buf = bytearray(PCMU)
    assert rtp.is_rtp(buf, len(buf)) and not rtp.is_rtcp(buf, len(buf))
    assert not rtp.is_rtp(buf, 11) and not rtp.is_rtp(b"\x00" * 20, 20)
    assert rtp.payload_type(buf) == 0
    rtp.set_payload_type(buf, 8)
    assert buf[1] == 0x88  # marker kept
    assert rtp.read_seq_ts_ssrc(buf) == (0x1234, 0xA0, 0xDEADBEEF)
    rtp.write_seq_ts_ssrc(buf, 1, 2, 3)
    assert (rtp.sequence_number(buf), rtp.timestamp(buf), rtp.ssrc(buf)) == (1, 2, 3)
    view = memoryview(buf)
    rtp.set_payload_type(view, 0)
    assert RtpPacket.parse(bytes(buf)).payload_type == 0
