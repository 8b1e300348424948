"""SDP wire type: real-world samples, exact round trips, bounds, corpora, fuzzing."""

from __future__ import annotations

import importlib.util
import tarfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media.sdp import (
    MAX_FORMATS,
    MAX_LINE_LENGTH,
    MAX_LINES,
    MAX_MEDIA,
    MAX_SIZE,
    Attribute,
    Bandwidth,
    Codec,
    Connection,
    Direction,
    Fmtp,
    Line,
    MediaDescription,
    Origin,
    Rtcp,
    RtpMap,
    SdpError,
    SessionDescription,
)
from tests.conftest import locate_shared_dir


def crlf(text: str) -> bytes:
    """A sample written one line per source line, sent with CRLF line ends."""
    return "".join(f"{line}\r\n" for line in text.strip().splitlines()).encode("ascii")


POLYCOM = crlf("""
v=0
o=- 1672935478 1672935478 IN IP4 192.168.1.50
s=Polycom IP Phone
c=IN IP4 192.168.1.50
t=0 0
a=sendrecv
m=audio 2222 RTP/AVP 9 102 0 8 18 127
a=rtpmap:9 G722/8000
a=rtpmap:102 G7221/16000
a=fmtp:102 bitrate=32000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:127 telephone-event/8000
""")

YEALINK = crlf("""
v=0
o=- 20010 20010 IN IP4 10.0.0.23
s=SDP data
c=IN IP4 10.0.0.23
t=0 0
m=audio 11800 RTP/AVP 0 8 18 9 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:9 G722/8000
a=fmtp:101 0-15
a=rtpmap:101 telephone-event/8000
a=ptime:20
a=sendrecv
""")

CISCO = crlf("""
v=0
o=CiscoSystemsSIP-GW-UserAgent 4125 8213 IN IP4 172.16.0.5
s=SIP Call
c=IN IP4 172.16.0.5
t=0 0
m=audio 17562 RTP/AVP 0 101 19
c=IN IP4 172.16.0.5
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=rtpmap:19 CN/8000
a=ptime:20
""")

LINPHONE = crlf("""
v=0
o=alice 3185 1430 IN IP4 192.168.0.12
s=Talk
c=IN IP4 192.168.0.12
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 98 0 8 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 SILK/16000
a=rtpmap:98 speex/16000
a=fmtp:98 vbr=on
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 5000
a=rtcp-fb:* ccm tmmbr
m=video 9078 RTP/AVP 96 97
a=rtpmap:96 VP8/90000
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F
a=rtcp-fb:* trr-int 5000
a=rtcp-fb:96 nack pli
""")

PJSIP = crlf("""
v=0
o=- 3893567423 3893567424 IN IP4 192.168.56.1
s=pjmedia
b=AS:117
t=0 0
a=X-nat:0
m=audio 4000 RTP/AVP 96 9 8 0 101 102
c=IN IP4 192.168.56.1
b=TIAS:96000
a=rtcp:4001 IN IP4 192.168.56.1
a=sendrecv
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/48000
a=fmtp:101 0-16
a=rtpmap:102 telephone-event/8000
a=fmtp:102 0-16
a=ssrc:1187264370 cname:7a8e1e2b3c
""")

BARESIP = crlf("""
v=0
o=- 1417093469 4080187395 IN IP4 10.0.0.7
s=-
c=IN IP4 10.0.0.7
t=0 0
a=tool:baresip 1.1.0
m=audio 10148 RTP/AVP 111 9 0 8 101
b=AS:96
a=rtpmap:111 opus/48000/2
a=fmtp:111 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-mux
a=sendrecv
a=label:1
a=rtcp-rsize
a=ptime:20
""")

WEBRTC = crlf("""
v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS stream1
m=audio 54400 UDP/TLS/RTP/SAVPF 111 63 9 0 8 110 126
c=IN IP4 203.0.113.7
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:842163049 1 udp 1677729535 203.0.113.7 54400 typ srflx raddr 192.168.1.20 rport 54400
a=candidate:1467250027 1 udp 2122260223 192.168.1.20 54400 typ host generation 0
a=ice-ufrag:EsAw
a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1
a=ice-options:trickle
a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:stream1 track1
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6
""")

IPV6 = crlf("""
v=0
o=- 1 1 IN IP6 2001:db8::10
s=-
c=IN IP6 2001:db8::10
t=0 0
m=audio 30000 RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=sendrecv
""")

SRTP_CRYPTO = crlf("""
v=0
o=- 7 7 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
m=audio 20000 RTP/SAVP 0 8 101
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32
a=rtpmap:101 telephone-event/8000
""")

SAMPLES = {
    "polycom": POLYCOM, "yealink": YEALINK, "cisco": CISCO, "linphone": LINPHONE,
    "pjsip": PJSIP, "baresip": BARESIP, "webrtc": WEBRTC, "ipv6": IPV6, "srtp": SRTP_CRYPTO,
}


def exercise(sd: SessionDescription) -> None:
    """Every typed view of ``sd``: may raise SdpError, nothing else."""
    bytes(sd)
    _ = sd.direction
    for i, m in enumerate(sd.media):
        sd.connection_of(i)
        sd.direction_of(i)
        for pt in m.payload_types:
            m.rtpmap(pt)
            m.fmtp(pt)
        _ = (m.ptime, m.maxptime, m.rtcp, m.rtcp_mux, m.direction, bytes(m))


# -- real-world samples -----------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_round_trip_exactly(name: str) -> None:
    data = SAMPLES[name]
    sd = SessionDescription.parse(data)
    assert bytes(sd) == data
    assert SessionDescription.parse(bytes(sd)) == sd
    exercise(sd)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_copy_is_independent_and_keeps_the_exact_bytes(name: str) -> None:
    data = SAMPLES[name].replace(b"\r\n", b"\n")  # not canonical: exact bytes must survive
    sd = SessionDescription.parse(data)
    copy = sd.copy()
    assert copy == sd and bytes(copy) == data
    copy.media[0].port += 2
    copy.media[0].remove_attributes("rtpmap")
    copy.attributes.append(Attribute("tool", "copy"))
    assert bytes(sd) == data and sd == SessionDescription.parse(data)
    assert bytes(copy) == bytes(SessionDescription.parse(bytes(copy)))  # a consistent copy
    assert bytes(copy) != data


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_lf_only_and_missing_last_line_end(name: str) -> None:
    lf = SAMPLES[name].replace(b"\r\n", b"\n")
    for data in (lf, lf[:-1], SAMPLES[name][:-2], SAMPLES[name][:-1]):
        sd = SessionDescription.parse(data)
        assert bytes(sd) == data
        assert sd == SessionDescription.parse(SAMPLES[name])


def test_modified_lf_only_input_is_written_with_crlf() -> None:
    sd = SessionDescription.parse(YEALINK.replace(b"\r\n", b"\n")[:-1])
    sd.connection = Connection.of("198.51.100.1")
    out = bytes(sd)
    assert out == YEALINK.replace(b"10.0.0.23\r\nt=", b"198.51.100.1\r\nt=")
    assert out.count(b"\r\n") == out.count(b"\n") == len(YEALINK.splitlines())


def test_session_level_fields() -> None:
    sd = SessionDescription.parse(PJSIP)
    assert sd.origin == Origin("-", 3893567423, 3893567424, "192.168.56.1")
    assert sd.session_name == "pjmedia" and sd.connection is None
    assert sd.bandwidths == [Bandwidth("AS", 117)]
    assert sd.attributes == [Attribute("X-nat", "0")] and sd.extra == [Line("t", "0 0")]
    assert sd.connection_of(0) == Connection("192.168.56.1")


def test_media_fields_and_typed_views() -> None:
    m = SessionDescription.parse(PJSIP).media[0]
    assert (m.media, m.port, m.port_count, m.proto) == ("audio", 4000, None, "RTP/AVP")
    assert m.payload_types == [96, 9, 8, 0, 101, 102]
    assert m.bandwidths == [Bandwidth("TIAS", 96000)]
    assert m.rtpmap(96) == RtpMap(96, Codec("opus", 48000, 2), explicit_channels=True)
    assert m.codec(101) == Codec("telephone-event", 48000)
    assert m.fmtp(96) == Fmtp("96", "useinbandfec=1") and m.fmtp(9) is None
    assert m.rtcp == Rtcp(4001, Connection("192.168.56.1")) and not m.rtcp_mux
    assert m.direction is Direction.SENDRECV
    assert m.attribute("ssrc") == "1187264370 cname:7a8e1e2b3c"


def test_static_payload_types_need_no_rtpmap() -> None:
    m = MediaDescription.parse(b"m=audio 5004 RTP/AVP 0 8 9 18 13 96\r\n")
    assert [str(m.codec(pt)) for pt in (0, 8, 9, 18, 13)] == [
        "PCMU/8000", "PCMA/8000", "G722/8000", "G729/8000", "CN/8000",
    ]
    assert m.codec(96) is None  # dynamic without a=rtpmap: unknown
    assert bytes(m) == b"m=audio 5004 RTP/AVP 0 8 9 18 13 96\r\n"


def test_ptime_maxptime_rtcp_mux() -> None:
    m = SessionDescription.parse(BARESIP).media[0]
    assert m.ptime == 20 and m.maxptime is None and m.rtcp_mux and m.rtcp is None
    assert m.attribute("rtcp-rsize") == "" and m.attribute("label") == "1"
    m.set_attribute("maxptime", "40")
    m.set_attribute("ptime", "30")
    assert (m.ptime, m.maxptime) == (30, 40)
    assert m.attribute_values("ptime") == ["30"]


def test_webrtc_lines_are_kept_verbatim() -> None:
    sd = SessionDescription.parse(WEBRTC)
    m = sd.media[0]
    assert m.proto == "UDP/TLS/RTP/SAVPF" and m.is_rtp
    assert m.attribute("setup") == "actpass"
    assert (m.attribute("fingerprint") or "").startswith("sha-256 D2:FA:0E")
    assert len(m.attribute_values("candidate")) == 2
    assert m.rtcp == Rtcp(9, Connection("0.0.0.0")) and m.rtcp_mux
    assert sd.attribute("msid-semantic") == " WMS stream1"
    assert SessionDescription.parse(SRTP_CRYPTO).media[0].attribute("crypto") == (
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:32"
    )


def test_ipv6_connection() -> None:
    sd = SessionDescription.parse(IPV6)
    assert sd.connection == Connection("2001:db8::10", "IN", "IP6")
    assert Connection.of("2001:db8::1") == Connection("2001:db8::1", "IN", "IP6")
    assert not sd.connection.is_hold


# -- direction and hold ----------------------------------------------------------------------
def with_lines(data: bytes, old: bytes, new: bytes) -> SessionDescription:
    assert old in data
    return SessionDescription.parse(data.replace(old, new, 1))


def test_media_direction_overrides_session_direction() -> None:
    sd = with_lines(POLYCOM, b"a=rtpmap:9 ", b"a=recvonly\r\na=rtpmap:9 ")
    assert sd.direction is Direction.SENDRECV and sd.media[0].direction is Direction.RECVONLY
    assert sd.direction_of(0) is Direction.RECVONLY
    assert SessionDescription.parse(CISCO).direction_of(0) is Direction.SENDRECV


@pytest.mark.parametrize(
    ("attribute", "expected"),
    [
        (b"a=sendrecv", Direction.SENDONLY),
        (b"a=sendonly", Direction.SENDONLY),
        (b"a=recvonly", Direction.INACTIVE),
        (b"a=inactive", Direction.INACTIVE),
    ],
)
def test_legacy_hold_address_removes_receiving(attribute: bytes, expected: Direction) -> None:
    data = YEALINK.replace(b"10.0.0.23\r\nt=", b"0.0.0.0\r\nt=").replace(b"a=sendrecv", attribute)
    sd = SessionDescription.parse(data)
    assert sd.connection is not None and sd.connection.is_hold
    assert sd.direction_of(0) is expected


def test_inactive_stream() -> None:
    sd = SessionDescription.parse(YEALINK.replace(b"a=sendrecv", b"a=inactive"))
    assert sd.direction_of(0) is Direction.INACTIVE


def test_direction_mutator_keeps_one_attribute() -> None:
    sd = with_lines(YEALINK, b"a=ptime:20", b"a=sendonly\r\na=ptime:20")
    m = sd.media[0]
    assert m.direction is Direction.SENDONLY  # the first of duplicates wins
    m.set_direction(Direction.INACTIVE)
    assert m.attribute_values("inactive") == [""] and m.direction is Direction.INACTIVE
    assert sum(a.name in {"sendrecv", "sendonly"} for a in m.attributes) == 0
    assert Direction.of(sends=True, receives=False) is Direction.SENDONLY


# -- mutators ------------------------------------------------------------------------------
def test_rtpmap_fmtp_mutators() -> None:
    sd = SessionDescription.parse(YEALINK)
    m = sd.media[0]
    m.set_rtpmap(RtpMap(101, Codec("telephone-event", 8000)))
    m.set_fmtp(Fmtp("101", "0-16"))
    m.set_rtpmap(RtpMap(96, Codec("opus", 48000, 2)))
    assert m.fmtp(101) == Fmtp("101", "0-16") and m.codec(96) == Codec("opus", 48000, 2)
    assert "a=rtpmap:96 opus/48000/2\r\n" in bytes(sd).decode()
    m.remove_format("18")
    assert m.formats == ["0", "8", "9", "101"] and m.fmtp(18) is None and m.rtpmap(18) is not None
    assert b"G729" not in bytes(sd)


def test_renumber_rewrites_m_line_and_payload_attributes() -> None:
    m = SessionDescription.parse(LINPHONE).media[1]
    m.renumber({96: 100, 97: 96})
    assert m.formats == ["100", "96"]
    assert m.codec(100) == Codec("VP8", 90000) and m.codec(96) == Codec("H264", 90000)
    assert m.fmtp(96) == Fmtp("96", "profile-level-id=42801F")
    assert m.attribute_values("rtcp-fb") == ["* trr-int 5000", "100 nack pli"]


def test_rtcp_mutators() -> None:
    m = SessionDescription.parse(PJSIP).media[0]
    m.set_rtcp(Rtcp(6001))
    m.set_rtcp_mux(True)
    assert m.rtcp == Rtcp(6001) and m.rtcp_mux
    m.set_rtcp(None)
    m.set_rtcp_mux(False)
    assert m.rtcp is None and not m.rtcp_mux
    assert MediaDescription.parse(bytes(m)) == m


def test_unchanged_after_mutation_back_returns_original_bytes() -> None:
    data = BARESIP.replace(b"\r\n", b"\n")
    sd = SessionDescription.parse(data)
    sd.media[0].port = 1
    assert bytes(sd) != data
    sd.media[0].port = 10148
    assert bytes(sd) == data


# -- duplicates (FreeSWITCH GHSA-gjj5-79p2-9g3q) ---------------------------------------------------
def test_duplicate_payload_types_count_once() -> None:
    data = YEALINK.replace(b"RTP/AVP 0 8 18 9 101", b"RTP/AVP 0 0 8 18 9 101 8")
    sd = SessionDescription.parse(data)
    assert sd.media[0].payload_types == [0, 8, 18, 9, 101]
    assert bytes(sd) == data


def test_conflicting_rtpmaps_first_wins() -> None:
    sd = with_lines(YEALINK, b"a=ptime:20", b"a=rtpmap:101 opus/48000/2\r\na=ptime:20")
    assert sd.media[0].codec(101) == Codec("telephone-event", 8000)  # rtpmap:101 comes first
    sd = with_lines(YEALINK, b"a=rtpmap:0 PCMU", b"a=rtpmap:0 PCMA/8000\r\na=rtpmap:0 PCMU")
    assert sd.media[0].codec(0) == Codec("PCMA", 8000)


def test_duplicate_codec_names_are_distinct_formats() -> None:
    sd = with_lines(BARESIP, b"RTP/AVP 111", b"RTP/AVP 112 111")
    sd = with_lines(bytes(sd), b"a=rtpmap:111", b"a=rtpmap:112 OPUS/48000/2\r\na=rtpmap:111")
    m = sd.media[0]
    assert m.payload_types[:2] == [112, 111]
    assert m.codec(112) == Codec("OPUS", 48000, 2) and m.codec(111) == Codec("opus", 48000, 2)
    assert Codec("OPUS", 48000, 2).key == Codec("opus", 48000, 2).key


# -- malformed input -----------------------------------------------------------------------------
def bad(status: int, data: bytes) -> tuple[int, bytes]:
    return status, data


MALFORMED = {
    "empty": bad(400, b""),
    "no v=": bad(400, YEALINK[YEALINK.index(b"o=") :]),
    "v=1": bad(400, YEALINK.replace(b"v=0", b"v=1")),
    "two v=": bad(400, YEALINK.replace(b"s=SDP", b"v=0\r\ns=SDP")),
    "no o=": bad(400, YEALINK.replace(b"o=- 20010 20010 IN IP4 10.0.0.23\r\n", b"")),
    "two o=": bad(400, YEALINK.replace(b"s=SDP", b"o=- 1 1 IN IP4 1.1.1.1\r\ns=SDP")),
    "short o=": bad(400, YEALINK.replace(b"20010 20010", b"20010")),
    "o= version": bad(400, YEALINK.replace(b"20010 20010", b"20010 -1")),
    "two c=": bad(400, YEALINK.replace(b"t=0 0", b"c=IN IP4 1.1.1.1\r\nt=0 0")),
    "junk c=": bad(400, YEALINK.replace(b"c=IN IP4 10.0.0.23", b"c=IN IP4 %n%n%n")),
    "short c=": bad(400, YEALINK.replace(b"c=IN IP4 10.0.0.23", b"c=IN IP4")),
    "b= text": bad(400, YEALINK.replace(b"t=0 0", b"b=AS:lots\r\nt=0 0")),
    "NUL": bad(400, YEALINK.replace(b"SDP data", b"SDP\x00data")),
    "non-ASCII": bad(400, YEALINK.replace(b"SDP data", "Télé".encode())),
    "bare CR": bad(400, YEALINK.replace(b"a=ptime:20\r\n", b"a=ptime:20\ra=x\r\n")),
    "no type": bad(400, YEALINK + b"just text\r\n"),
    "upper type": bad(400, YEALINK + b"A=sendrecv\r\n"),
    "o= in media": bad(400, YEALINK + b"o=- 1 1 IN IP4 1.1.1.1\r\n"),
    "attribute name": bad(400, YEALINK + b"a=:value\r\n"),
    "m= port": bad(400, YEALINK.replace(b"11800", b"65536")),
    "m= port text": bad(400, YEALINK.replace(b"11800", b"port")),
    "m= zero ports": bad(400, YEALINK.replace(b"11800", b"11800/0")),
    "m= no formats": bad(400, YEALINK.replace(b"RTP/AVP 0 8 18 9 101", b"RTP/AVP")),
    "m= PT 128": bad(400, YEALINK.replace(b"RTP/AVP 0", b"RTP/AVP 128")),
    "m= PT -1": bad(400, YEALINK.replace(b"RTP/AVP 0", b"RTP/AVP -1")),
    "truncated rtpmap": bad(400, YEALINK.replace(b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:0")),
    "rtpmap no clock": bad(400, YEALINK.replace(b"a=rtpmap:0 PCMU/8000", b"a=rtpmap:0 PCMU")),
    "rtpmap clock 0": bad(400, YEALINK.replace(b"PCMU/8000", b"PCMU/0")),
    "rtpmap PT 255": bad(400, YEALINK.replace(b"a=rtpmap:0 PCMU", b"a=rtpmap:255 PCMU")),
    "truncated fmtp": bad(400, YEALINK.replace(b"a=fmtp:101 0-15", b"a=fmtp:")),
    "ptime text": bad(400, YEALINK.replace(b"a=ptime:20", b"a=ptime:abc")),
    "ptime zero": bad(400, YEALINK.replace(b"a=ptime:20", b"a=ptime:0")),
    "rtcp port": bad(400, PJSIP.replace(b"a=rtcp:4001", b"a=rtcp:99999")),
    "rtcp address": bad(400, PJSIP.replace(b"a=rtcp:4001 IN IP4", b"a=rtcp:4001 IN")),
    "long line": bad(400, YEALINK + b"a=T38FaxUdpEC:" + b"x" * MAX_LINE_LENGTH + b"\r\n"),
    "too big": bad(513, YEALINK + b"a=x\r\n" * (MAX_SIZE // 5)),
    "too many lines": bad(400, YEALINK + b"a=x\r\n" * MAX_LINES),
    "too many formats": bad(400, YEALINK.replace(b"101\r\n", b"101" + b" 0" * MAX_FORMATS + b"\r\n")),
    "too many media": bad(488, YEALINK + b"m=audio 0 RTP/AVP 0\r\n" * MAX_MEDIA),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_raises_sdp_error_with_status(name: str) -> None:
    status, data = MALFORMED[name]
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(data)
    assert info.value.status == status, info.value.reason


def test_tolerated_oddities() -> None:
    odd = YEALINK.replace(b"RTP/AVP 0 8 18 9 101", b"RTP/AVP  0 8 18 9 101 ") + b"\r\n\r\n"
    sd = SessionDescription.parse(odd)
    assert sd.media[0].payload_types == [0, 8, 18, 9, 101] and bytes(sd) == odd
    sd.media[0].port = 11802
    assert b"m=audio 11802 RTP/AVP 0 8 18 9 101\r\na=" in bytes(sd)
    no_t = SessionDescription.parse(YEALINK.replace(b"t=0 0\r\n", b"").replace(b"s=SDP data\r\n", b""))
    assert no_t.session_name == "-" and no_t.extra == []


def test_port_zero_and_image_streams() -> None:
    data = YEALINK + b"m=video 0 RTP/AVP 31\r\nm=image 0 udptl t38\r\na=T38FaxVersion:0\r\n"
    sd = SessionDescription.parse(data)
    video, image = sd.media[1:]
    assert video.port == 0 and video.payload_types == [31]
    assert image.port == 0 and not image.is_rtp and image.formats == ["t38"]
    assert image.payload_types == [] and image.attribute("T38FaxVersion") == "0"
    assert bytes(sd) == data


# -- corpora ---------------------------------------------------------------------------------------
def corpora() -> Path:
    return locate_shared_dir() / "sip-corpora"


def pjproject_sdp_seeds() -> list[Path]:
    """Every SDP of the pjproject fuzz seeds: the .sdp files and SIP seeds with an SDP body."""
    seeds = corpora() / "pjproject-fuzz-seeds"
    sdp = sorted(seeds.glob("**/*.sdp"))
    sip = [p for p in sorted(seeds.glob("**/*.sip")) if sip_body(p).startswith(b"v=")]
    return sdp + sip


def sip_body(path: Path) -> bytes:
    data = path.read_bytes()
    for sep in (b"\r\n\r\n", b"\n\n"):
        if sep in data:
            return data.split(sep, 1)[1]
    return b""


def seed_bytes(path: Path) -> bytes:
    return path.read_bytes() if path.suffix == ".sdp" else sip_body(path)


def parses_or_refuses(data: bytes) -> SessionDescription | None:
    """The corpus contract: an SdpError or a description that round-trips exactly."""
    try:
        sd = SessionDescription.parse(data)
    except SdpError as e:
        assert e.status in (400, 488, 513)
        return None
    assert bytes(sd) == data
    assert SessionDescription.parse(bytes(sd)) == sd
    exercise(sd)
    return sd


def test_pjproject_seeds_are_found() -> None:
    seeds = pjproject_sdp_seeds()
    assert len([p for p in seeds if p.suffix == ".sdp"]) >= 6, seeds


@pytest.mark.parametrize("path", pjproject_sdp_seeds(), ids=lambda p: p.name)
def test_pjproject_sdp_seeds(path: Path) -> None:
    parses_or_refuses(seed_bytes(path))


def protos_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "protos_expand", corpora() / "tools" / "protos_expand.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def protos_group_ranges() -> dict[str, tuple[int, int]]:
    """The sdp-* groups of PROTOS c07-sip and their case numbers, from groups.tsv."""
    rows = (corpora() / "protos-c07-sip" / "groups.tsv").read_text().splitlines()[1:]
    fields = (row.split("\t") for row in rows)
    return {f[0]: (int(f[1]), int(f[2])) for f in fields if f[0].startswith("sdp-")}


@cache
def protos_sdp_groups() -> dict[str, list[bytes]]:
    """The SDP body of every case of each sdp-* group, read from the tarball."""
    ranges = protos_group_ranges()
    out: dict[str, list[bytes]] = {group: [] for group in ranges}
    for number, invite in protos_invites(protos_tool(), min(a for a, _ in ranges.values())):
        for group, (first, last) in ranges.items():
            if first <= number <= last:
                out[group].append(invite.split(b"\r\n\r\n", 1)[1])
    return out


def protos_invites(tool: ModuleType, first: int) -> Iterator[tuple[int, bytes]]:
    args = SimpleNamespace(
        to="100@127.0.0.1", from_user="protos", from_host="127.0.0.1", lport=5061,
        teardown="CANCEL",
    )
    with tarfile.open(corpora() / "protos-c07-sip" / "cases.tar.xz") as tar:
        for member in tar:
            name = Path(member.name).name
            if member.isfile() and name.isdigit() and int(name) >= first:
                invite, _ = tool.split_case(tar.extractfile(member).read())  # type: ignore[union-attr]
                yield int(name), tool.expand(invite, int(name), args)


def test_protos_sdp_groups_found() -> None:
    groups = protos_sdp_groups()
    assert len(groups) == 23 and sum(len(bodies) for bodies in groups.values()) == 2100


@pytest.mark.parametrize("group", sorted(protos_group_ranges()))
def test_protos_sdp_group(group: str) -> None:
    bodies = protos_sdp_groups()[group]
    outcomes = [parses_or_refuses(body) for body in bodies]
    assert bodies and outcomes


# -- Hypothesis ------------------------------------------------------------------------------------
TOKEN = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.+_", min_size=1,
                max_size=12)
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
IP4 = st.ip_addresses(v=4).map(str)


@st.composite
def attributes(draw: st.DrawFn) -> Attribute:
    value = draw(st.none() | TEXT)
    return Attribute(draw(TOKEN), value)


@st.composite
def media_descriptions(draw: st.DrawFn) -> MediaDescription:
    pts = draw(st.lists(st.integers(0, 127), min_size=1, max_size=8))
    m = MediaDescription(
        draw(st.sampled_from(["audio", "video", "image", "application"])),
        draw(st.integers(0, 65535)),
        "RTP/AVP",
        [str(pt) for pt in pts],
        port_count=draw(st.none() | st.integers(1, 4)),
        connection=draw(st.none() | IP4.map(Connection.of)),
        bandwidths=draw(st.lists(st.builds(Bandwidth, TOKEN, st.integers(0, 10**6)), max_size=2)),
        attributes=[a for a in draw(st.lists(attributes(), max_size=4))
                    if a.name not in {"rtpmap", "fmtp", "rtcp", "ptime", "maxptime"}],
    )
    for pt in pts[: draw(st.integers(0, len(pts)))]:
        m.set_rtpmap(RtpMap(pt, draw(st.builds(Codec, TOKEN, st.integers(1, 96000),
                                               st.integers(1, 8)))))
    return m


@st.composite
def descriptions(draw: st.DrawFn) -> SessionDescription:
    return SessionDescription(
        Origin(draw(TOKEN), draw(st.integers(0, 2**63)), draw(st.integers(0, 2**63)), draw(IP4)),
        session_name=draw(TEXT),
        connection=draw(st.none() | IP4.map(Connection.of)),
        attributes=draw(st.lists(attributes(), max_size=4)),
        media=draw(st.lists(media_descriptions(), max_size=4)),
        extra=draw(st.lists(st.builds(Line, st.just("i"), TEXT), max_size=2)) + [Line("t", "0 0")],
    )


@given(descriptions())
def test_built_descriptions_round_trip(sd: SessionDescription) -> None:
    data = bytes(sd)
    again = SessionDescription.parse(data)
    assert again == sd and bytes(again) == data
    exercise(again)


@given(st.sampled_from(sorted(SAMPLES)), st.lists(st.sampled_from([b"\r\n", b"\n"]),
                                                  min_size=64, max_size=64), st.booleans())
def test_any_mix_of_line_ends_round_trips(name: str, ends: list[bytes], last: bool) -> None:
    lines = SAMPLES[name].split(b"\r\n")[:-1]
    data = b"".join(line + end for line, end in zip(lines, ends, strict=False))
    data = data if last else data.rstrip(b"\r\n")
    sd = SessionDescription.parse(data)
    assert bytes(sd) == data and sd == SessionDescription.parse(SAMPLES[name])


@given(st.binary(max_size=2048))
@settings(max_examples=300)
def test_arbitrary_bytes_only_raise_sdp_error(data: bytes) -> None:
    parses_or_refuses(data)
    parses_or_refuses(b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\n" + data)


@st.composite
def mutated_samples(draw: st.DrawFn) -> bytes:
    data = bytearray(SAMPLES[draw(st.sampled_from(sorted(SAMPLES)))])
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(st.binary(min_size=1, max_size=6) | st.sampled_from(
            [b" ", b"/", b":", b"\r", b"\n", b"=", b"0", b"m=audio 0 RTP/AVP 0\r\n", b"\x00"]))
        if action == "delete":
            del data[at : at + len(chunk)]
        elif action == "replace":
            data[at : at + len(chunk)] = chunk
        else:
            data[at:at] = chunk
    return bytes(data)


@given(mutated_samples())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_samples_parse_or_raise_sdp_error(data: bytes) -> None:
    parses_or_refuses(data)


def test_payload_types_with_leading_zeros_compare_as_numbers() -> None:
    m = MediaDescription.parse(b"m=audio 5004 RTP/AVP 08 096\r\na=rtpmap:096 opus/48000/2\r\n")
    assert m.payload_types == [8, 96] and m.codec(96) == Codec("opus", 48000, 2)
    m.renumber({96: 111})
    assert m.formats == ["08", "111"] and m.codec(111) == Codec("opus", 48000, 2)
    m.remove_format("8")
    assert m.formats == ["111"]
