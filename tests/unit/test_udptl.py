"""UDPTL packets (T.38 §9.1) and T.38 SDP parameters (Annex D): round trips,
bounds, fuzzing, negotiation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.sdp import NOT_ACCEPTABLE_HERE, SdpError, SessionDescription
from media.udptl import (
    MAX_FEC_ENTRIES,
    MAX_PACKET_SIZE,
    MAX_REDUNDANCY,
    ErrorCorrection,
    FecInfo,
    RateManagement,
    T38Params,
    UdptlError,
    UdptlPacket,
    is_t38,
)

# T30_INDICATOR CNG (IFP 0x00 0x01 in aligned PER) with two redundant copies, as
# Asterisk sends it: seq 2, primary, 0x00 = secondary-ifp-packets, count 2.
CNG_REDUNDANT = bytes.fromhex("0002" "020001" "00" "02" "020001" "020001")
# FEC as spandsp writes it: 0x80, span as a one-octet integer, then the entries.
HDLC_FEC = bytes.fromhex("0010" "03c01a42" "80" "0103" "02" "02aabb" "01cc")


def test_round_trip_redundancy() -> None:
    packet = UdptlPacket.parse(CNG_REDUNDANT)
    assert packet == UdptlPacket(2, b"\x00\x01", (b"\x00\x01", b"\x00\x01"))
    assert bytes(packet) == CNG_REDUNDANT


def test_round_trip_fec() -> None:
    packet = UdptlPacket.parse(HDLC_FEC)
    assert packet == UdptlPacket(16, b"\xc0\x1a\x42", fec=FecInfo(3, (b"\xaa\xbb", b"\xcc")))
    assert bytes(packet) == HDLC_FEC


def test_no_error_recovery_and_long_ifp() -> None:
    packet = UdptlPacket(0xFFFF, bytes(range(256)) * 2)
    data = bytes(packet)
    assert data[:5] == b"\xff\xff\x82\x00\x00"  # 512 as a two-octet length
    assert data[-2:] == b"\x00\x00" and UdptlPacket.parse(data) == packet


def test_bounded_redundancy_and_fec() -> None:
    ifp = b"\x00\x01"
    assert UdptlPacket.parse(bytes(UdptlPacket(1, ifp, (ifp,) * MAX_REDUNDANCY))).secondary
    too_many = bytes.fromhex("0001020001") + b"\x00" + bytes([MAX_REDUNDANCY + 1]) + (
        b"\x02\x00\x01" * (MAX_REDUNDANCY + 1))
    fec = bytes.fromhex("0001020001") + b"\x80\x01\x03" + bytes([MAX_FEC_ENTRIES + 1]) + (
        b"\x01\xaa" * (MAX_FEC_ENTRIES + 1))
    for data in (too_many, fec):
        with pytest.raises(UdptlError):
            UdptlPacket.parse(data)
    with pytest.raises(UdptlError):
        UdptlPacket(1, ifp, (ifp,) * (MAX_REDUNDANCY + 1))


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02\x00", "truncated primary"),
        (b"\x00\x01\x02\x00\x01", "no error recovery"),
        (b"\x00\x01\x00\x00\x00", "zero-length primary (X.691 §10.1 needs one octet)"),
        (b"\x00\x01\x80\x02\x00\x01\x00\x00", "non-minimal length"),
        (b"\x00\x01\xc1\x00\x00\x00\x00", "fragmented length"),
        (b"\x00\x01\x02\x00\x01\x01\x00", "unknown recovery octet"),
        (b"\x00\x01\x02\x00\x01\x00", "no secondary count"),
        (b"\x00\x01\x02\x00\x01\x00\x01\x05\x00", "truncated secondary"),
        (b"\x00\x01\x02\x00\x01\x00\x00\x00", "trailing byte"),
        (b"\x00\x01\x02\x00\x01\x80\x02\x00\x03\x00", "two-octet FEC span"),
        (b"\x00\x01\x02\x00\x01\x80\x01", "truncated FEC"),
        (b"\x00\x01\x02\x00\x01" + b"\x00\x7f" + b"\x01\x00" * 127, "128 secondaries"),
        (b"\x00\x01" + b"\x85\xd8" + bytes(1496) + b"\x00\x00", "1502 bytes"),
    ],
)
def test_malformed(data: bytes, why: str) -> None:
    with pytest.raises(UdptlError):
        UdptlPacket.parse(data)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seq": -1, "primary": b"x"},
        {"seq": 65536, "primary": b"x"},
        {"seq": 1, "primary": b""},
        {"seq": 1, "primary": bytes(16384)},
        {"seq": 1, "primary": b"x", "secondary": (b"y",), "fec": FecInfo(1, (b"z",))},
        {"seq": 1, "primary": b"x", "fec": FecInfo(128, ())},
        {"seq": 1, "primary": b"x", "fec": FecInfo(1, (b"",))},
    ],
)
def test_packets_that_cannot_exist(kwargs: dict[str, object]) -> None:
    with pytest.raises(UdptlError):
        UdptlPacket(**kwargs)  # type: ignore[arg-type]


def test_a_packet_too_big_to_send() -> None:
    with pytest.raises(UdptlError):
        bytes(UdptlPacket(1, bytes(1000), (bytes(1000),)))


IFPS = st.binary(min_size=1, max_size=300)
PACKETS = st.one_of(
    st.builds(UdptlPacket, st.integers(0, 0xFFFF), IFPS,
              st.lists(IFPS, max_size=4).map(tuple)),
    st.builds(lambda seq, primary, span, data: UdptlPacket(seq, primary, fec=FecInfo(span, data)),
              st.integers(0, 0xFFFF), IFPS, st.integers(0, 127),
              st.lists(IFPS, max_size=4).map(tuple)),
)


@given(PACKETS)
def test_every_packet_round_trips(packet: UdptlPacket) -> None:
    try:
        data = bytes(packet)
    except UdptlError:  # over MAX_PACKET_SIZE
        return
    assert len(data) <= MAX_PACKET_SIZE
    assert UdptlPacket.parse(data) == packet and bytes(UdptlPacket.parse(data)) == data


@given(st.binary(max_size=1600))
def test_fuzz_only_udptl_errors(data: bytes) -> None:
    try:
        packet = UdptlPacket.parse(data)
    except UdptlError:
        return
    assert bytes(packet) == data


@given(PACKETS, st.data())
def test_fuzz_mutated_packets(packet: UdptlPacket, draw: st.DataObject) -> None:
    try:
        data = bytearray(bytes(packet))
    except UdptlError:
        return
    at = draw.draw(st.integers(0, len(data) - 1))
    data[at] = draw.draw(st.integers(0, 255))
    cut = draw.draw(st.integers(0, len(data)))
    try:
        parsed = UdptlPacket.parse(bytes(data[:cut]))
    except UdptlError:
        return
    assert bytes(parsed) == bytes(data[:cut])


# -- T.38 SDP -----------------------------------------------------------------------------
# A re-INVITE's SDP from an ATA switching to fax (Asterisk-style attributes).
T38_SDP = (
    "v=0\r\no=- 1 2 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
    "m=image 4000 udptl t38\r\n"
    "a=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\na=T38FaxRateManagement:transferredTCF\r\n"
    "a=T38FaxMaxBuffer:1800\r\na=T38FaxMaxDatagram:400\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n"
    "a=T38FaxFillBitRemoval\r\n"
).encode()


def image(attributes: str, port: int = 4000, head: str = "image {port} udptl t38") -> bytes:
    return (
        "v=0\r\no=- 1 2 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
        f"m={head.format(port=port)}\r\n{attributes}"
    ).encode()


def params_of(sdp: bytes) -> T38Params:
    return T38Params.from_media(SessionDescription.parse(sdp).media[0])


def test_params_from_an_ata() -> None:
    params = params_of(T38_SDP)
    assert params == T38Params(
        version=0, max_bit_rate=14400, rate_management=RateManagement.TRANSFERRED_TCF,
        max_buffer=1800, max_datagram=400, error_correction=ErrorCorrection.REDUNDANCY,
        fill_bit_removal=True,
    )
    m = SessionDescription.parse(T38_SDP).media[0]
    assert [str(a) for a in params.to_attributes()] == [str(a) for a in m.attributes]


def test_params_case_insensitive_flags_and_duplicates() -> None:
    params = params_of(image(
        "a=t38faxversion:3\r\na=T38FaxVersion:1\r\na=T38FaxRateManagement:LOCALTCF\r\n"
        "a=T38FaxUdpEC:T38UDPFEC\r\na=T38FaxFillBitRemoval:0\r\na=T38FaxTranscodingMMR:1\r\n"
        "a=T38FaxTranscodingJBIG\r\na=T38VendorInfo:0 0 0\r\n"
    ))
    assert (params.version, params.rate_management, params.error_correction) == (
        3, RateManagement.LOCAL_TCF, ErrorCorrection.FEC)
    assert (params.fill_bit_removal, params.transcoding_mmr, params.transcoding_jbig) == (
        False, True, True)
    assert [str(a) for a in params.to_attributes()] == [
        "T38FaxVersion:3", "T38FaxRateManagement:localTCF", "T38FaxUdpEC:t38UDPFEC",
        "T38FaxTranscodingMMR", "T38FaxTranscodingJBIG",
    ]


def test_defaults_and_port_zero() -> None:
    params = params_of(image("", port=0))  # CVE-2019-15297: m=image 0 must not crash
    assert params == T38Params()
    assert [str(a) for a in params.to_attributes()] == [
        "T38FaxVersion:0", "T38FaxRateManagement:transferredTCF",
    ]


@pytest.mark.parametrize(
    "attributes",
    [
        "a=T38FaxVersion:x\r\n",
        "a=T38FaxVersion\r\n",
        "a=T38FaxVersion:256\r\n",
        "a=T38MaxBitRate:-14400\r\n",
        "a=T38FaxMaxBuffer:99999999999\r\n",
        "a=T38FaxMaxDatagram:4294967296\r\n",
        "a=T38FaxRateManagement:" + "A" * 900 + "\r\n",  # CVE-2007-2293
        "a=T38FaxUdpEC:t38UDPSomething\r\n",
        "a=T38FaxUdpEC\r\n",
        "a=T38FaxFillBitRemoval:yes\r\n",
    ],
)
def test_malformed_params_are_488(attributes: str) -> None:
    with pytest.raises(SdpError) as info:
        params_of(image(attributes))
    assert info.value.status == NOT_ACCEPTABLE_HERE


@pytest.mark.parametrize("head", ["audio {port} RTP/AVP 0", "image {port} udptl jpeg",
                                  "image {port} tcp t38"])
def test_not_t38_is_488(head: str) -> None:
    m = SessionDescription.parse(image("", head=head)).media[0]
    assert not is_t38(m)
    with pytest.raises(SdpError):
        T38Params.from_media(m)


def test_is_t38_ignores_case() -> None:
    assert is_t38(SessionDescription.parse(image("", head="image {port} UDPTL T38")).media[0])


@given(st.lists(st.sampled_from([
    "T38FaxVersion", "T38MaxBitRate", "T38FaxRateManagement", "T38FaxMaxBuffer",
    "T38FaxMaxDatagram", "T38FaxUdpEC", "T38FaxFillBitRemoval", "T38FaxTranscodingJBIG",
]), max_size=6), st.lists(st.text(st.characters(min_codepoint=33, max_codepoint=126),
                                  max_size=12), min_size=6, max_size=6))
def test_fuzz_params_only_sdp_errors(names: list[str], values: list[str]) -> None:
    pairs = zip(names, values, strict=False)
    attributes = "".join(f"a={n}:{v}\r\n" if v else f"a={n}\r\n" for n, v in pairs)
    try:
        params = params_of(image(attributes))
    except SdpError as exc:
        assert exc.status in (400, NOT_ACCEPTABLE_HERE)
        return
    m = SessionDescription.parse(image("")).media[0]
    params.apply_to(m)
    assert T38Params.from_media(m) == params


# -- negotiation ----------------------------------------------------------------------------
def test_answer_takes_the_lower_and_the_common() -> None:
    offer = T38Params(version=3, max_bit_rate=33600, max_buffer=2000, max_datagram=1400,
                      error_correction=ErrorCorrection.FEC, fill_bit_removal=True,
                      transcoding_mmr=True)
    local = T38Params(version=0, max_bit_rate=14400, max_buffer=1800, max_datagram=400,
                      error_correction=ErrorCorrection.REDUNDANCY, fill_bit_removal=False,
                      transcoding_mmr=True, rate_management=RateManagement.LOCAL_TCF)
    assert offer.answer(local) == T38Params(
        version=0, max_bit_rate=14400, rate_management=RateManagement.TRANSFERRED_TCF,
        max_buffer=1800, max_datagram=400, error_correction=ErrorCorrection.REDUNDANCY,
        fill_bit_removal=False, transcoding_mmr=True, transcoding_jbig=False,
    )


@pytest.mark.parametrize(("offered", "local", "answered"), [
    (ErrorCorrection.FEC, ErrorCorrection.FEC, ErrorCorrection.FEC),
    (ErrorCorrection.FEC, ErrorCorrection.REDUNDANCY, ErrorCorrection.REDUNDANCY),
    (ErrorCorrection.REDUNDANCY, ErrorCorrection.FEC, ErrorCorrection.REDUNDANCY),
    (ErrorCorrection.REDUNDANCY, ErrorCorrection.NONE, ErrorCorrection.NONE),
    (ErrorCorrection.NONE, ErrorCorrection.FEC, ErrorCorrection.NONE),
])
def test_error_correction_choice(offered: ErrorCorrection, local: ErrorCorrection,
                                 answered: ErrorCorrection) -> None:
    answer = T38Params(error_correction=offered).answer(T38Params(error_correction=local))
    assert answer.error_correction is answered


def test_absent_limits_take_the_other_side() -> None:
    answer = T38Params(max_datagram=400).answer(T38Params(max_bit_rate=9600))
    assert (answer.max_datagram, answer.max_bit_rate, answer.max_buffer) == (400, 9600, None)


def test_apply_to_replaces_every_spelling() -> None:
    m = SessionDescription.parse(image("a=t38faxversion:1\r\na=T38FaxMaxDatagram:72\r\n"
                                       "a=T38VendorInfo:0 0 0\r\n")).media[0]
    T38Params(version=0, max_datagram=400).apply_to(m)
    assert [str(a) for a in m.attributes] == [
        "T38VendorInfo:0 0 0", "T38FaxVersion:0", "T38FaxRateManagement:transferredTCF",
        "T38FaxMaxDatagram:400",
    ]
