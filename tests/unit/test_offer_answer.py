"""RFC 3264 offer/answer through a media-anchoring B2BUA: pure functions, no sockets."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media.offer_answer import (
    DEFAULT_PREFS,
    Anchor,
    CodecPref,
    LegOrigin,
    LegPrefs,
    OfferState,
    StreamPlan,
    anchor_answer,
    anchor_offer,
    is_hold,
)
from media.sdp import Codec, Connection, Direction, Fmtp, Rtcp, SdpError, SessionDescription
from tests.unit.test_sdp import (
    BARESIP,
    IPV6,
    LINPHONE,
    PJSIP,
    POLYCOM,
    SAMPLES,
    WEBRTC,
    YEALINK,
    crlf,
    mutated_samples,
)

SWITCH_X = "198.51.100.10"  # the anchor's address facing the offerer
SWITCH_Y = "203.0.113.20"  # ...and facing the answerer
ORIGIN_X = LegOrigin(1111, SWITCH_X)
ORIGIN_Y = LegOrigin(2222, SWITCH_Y)


def anchors(address: str, base: int, count: int = 2) -> dict[int, Anchor]:
    return {i: Anchor(address, base + 2 * i) for i in range(count)}


def offer(data: bytes, prefs: LegPrefs = DEFAULT_PREFS) -> tuple[SessionDescription, OfferState]:
    return anchor_offer(SessionDescription.parse(data), anchors(SWITCH_Y, 40000), prefs, ORIGIN_Y)


def answer(state: OfferState, data: bytes) -> tuple[SessionDescription, list[StreamPlan]]:
    sd, plans, _ = anchor_answer(
        SessionDescription.parse(data), state, anchors(SWITCH_X, 30000), ORIGIN_X
    )
    return sd, plans


def reparsed(sd: SessionDescription) -> SessionDescription:
    """What the peer will read: the bytes sent, parsed again."""
    again = SessionDescription.parse(bytes(sd))
    assert bytes(again) == bytes(sd) and b"\r\n" in bytes(sd)
    return again


# A Yealink-like answerer on leg Y: G722 and telephone-event, numbered as offered.
ANSWER_G722 = crlf("""
v=0
o=- 5 5 IN IP4 10.20.0.9
s=SDP data
c=IN IP4 10.20.0.9
t=0 0
m=audio 12000 RTP/AVP 9 101
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
""")


# -- the offer ------------------------------------------------------------------------------
def test_offer_is_anchored() -> None:
    relayed, state = offer(YEALINK)
    sd = reparsed(relayed)
    assert sd.origin.username == "-" and sd.origin.sess_id == 2222
    assert sd.origin.address == SWITCH_Y and sd.connection == Connection(SWITCH_Y)
    m = sd.media[0]
    assert (m.port, m.connection, m.rtcp) == (40000, None, Rtcp(40001))
    assert m.payload_types == [0, 8, 9, 101]  # offerer's order, G729 refused
    assert m.fmtp(18) is None and m.fmtp(101) is not None and m.ptime == 20
    assert m.direction is Direction.SENDRECV and not m.rtcp_mux
    assert state.anchors == {0: Anchor(SWITCH_Y, 40000)} and state.origin.sess_version == 0


def test_prefs_match_names_case_insensitively_and_numbers_when_given() -> None:
    opus = Codec("OPUS", 48000, 2)
    assert CodecPref.parse("opus").accepts(opus) and CodecPref.parse("Opus/48000/2").accepts(opus)
    assert not CodecPref.parse("opus/48000/1").accepts(opus)
    assert not CodecPref.parse("telephone-event/8000").accepts(Codec("telephone-event", 48000))
    assert not DEFAULT_PREFS.accepts(None)


def test_offerer_order_is_kept_and_unknown_dynamic_types_dropped() -> None:
    relayed, _ = offer(LINPHONE, LegPrefs.of("PCMU", "speex", "opus", "telephone-event"))
    audio = relayed.media[0]
    assert audio.payload_types == [96, 98, 0, 101, 99, 100]
    assert audio.attribute_values("rtcp-fb") == ["* trr-int 5000", "* ccm tmmbr"]
    assert audio.fmtp(98) is not None and audio.rtpmap(97) is None


def test_video_without_video_prefs_is_disabled() -> None:
    relayed, state = offer(LINPHONE)
    audio, video = reparsed(relayed).media
    assert audio.port == 40000 and video.port == 0 and video.attributes == []
    assert video.formats == ["96", "97"] and state.anchors.keys() == {0}
    back, plans = answer(state, LINPHONE_ANSWER_AUDIO_ONLY)
    assert [m.port for m in back.media] == [30000, 0] and back.media[1].media == "video"
    assert plans[1] == StreamPlan(1, "video", rejected=True)
    assert not plans[0].rejected


LINPHONE_ANSWER_AUDIO_ONLY = crlf("""
v=0
o=bob 1 1 IN IP4 10.20.0.5
s=Talk
c=IN IP4 10.20.0.5
t=0 0
m=audio 7078 RTP/AVP 96 101
a=rtpmap:96 opus/48000/2
a=rtpmap:101 telephone-event/48000
m=video 0 RTP/AVP 96
""")


def test_video_with_video_prefs_is_relayed() -> None:
    relayed, _ = offer(LINPHONE, LegPrefs.of("opus", "H264", "telephone-event"))
    assert [m.payload_types for m in relayed.media] == [[96, 101, 99, 100], [97]]
    assert relayed.media[1].port == 40002
    assert relayed.media[1].attribute_values("rtcp-fb") == ["* trr-int 5000"]


def test_stream_with_only_auxiliary_codecs_is_disabled() -> None:
    relayed, _ = offer(LINPHONE, LegPrefs.of("G722", "PCMU", "telephone-event"))
    assert relayed.media[0].payload_types == [0, 101, 99, 100]
    relayed, _ = offer(LINPHONE.replace(b"RTP/AVP 96 97 98 0 8", b"RTP/AVP 96 97 98 8"),
                       LegPrefs.of("G722", "PCMU", "telephone-event", "H264"))
    assert relayed.media[0].port == 0 and relayed.media[1].port != 0


def test_nothing_acceptable_is_488() -> None:
    with pytest.raises(SdpError) as info:
        offer(YEALINK, LegPrefs.of("G729x", "telephone-event"))
    assert info.value.status == 488
    with pytest.raises(SdpError) as info:
        anchor_offer(SessionDescription.parse(YEALINK), {}, DEFAULT_PREFS, ORIGIN_Y)
    assert info.value.status == 488


def test_port_zero_and_non_rtp_streams_stay_disabled_t38_is_anchored() -> None:
    data = (YEALINK + b"m=video 0 RTP/AVP 31\r\nm=image 9000 udptl t38\r\na=T38FaxVersion:0\r\n"
            b"m=application 9002 udp bfcp\r\n")
    relayed, state = anchor_offer(
        SessionDescription.parse(data), anchors(SWITCH_Y, 40000, 4), DEFAULT_PREFS, ORIGIN_Y
    )
    assert [(m.media, m.port) for m in reparsed(relayed).media] == [
        ("audio", 40000), ("video", 0), ("image", 40004), ("application", 0),
    ]
    assert relayed.media[2].formats == ["t38"] and state.anchors.keys() == {0, 2}


# -- T.38 (RFC 3362, T.38 Annex D) ----------------------------------------------------------
T38_OFFER = crlf("""v=0
o=fax 10 11 IN IP4 192.0.2.10
s=-
c=IN IP4 192.0.2.10
t=0 0
m=image 6000 udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
a=T38FaxMaxBuffer:1800
a=T38FaxMaxDatagram:400
a=T38FaxUdpEC:t38UDPRedundancy
a=T38FaxFillBitRemoval
a=ptime:20
""")
T38_ANSWER = crlf("""v=0
o=gw 20 21 IN IP4 192.0.2.20
s=-
c=IN IP4 192.0.2.20
t=0 0
m=image 7000 udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:9600
a=T38FaxRateManagement:transferredTCF
a=T38FaxMaxBuffer:200
a=T38FaxMaxDatagram:180
a=T38FaxUdpEC:t38UDPRedundancy
""")
T38_ATTRIBUTES = ["T38FaxVersion", "T38MaxBitRate", "T38FaxRateManagement", "T38FaxMaxBuffer",
                  "T38FaxMaxDatagram", "T38FaxUdpEC"]


def test_a_t38_offer_is_anchored_with_its_attributes_as_offered() -> None:
    relayed, state = offer(T38_OFFER)
    m = reparsed(relayed).media[0]
    assert (m.media, m.port, m.proto, m.formats) == ("image", 40000, "udptl", ["t38"])
    assert relayed.connection == Connection.of(SWITCH_Y) and m.connection is None
    assert [str(a) for a in m.attributes] == [
        "T38FaxVersion:0", "T38MaxBitRate:14400", "T38FaxRateManagement:transferredTCF",
        "T38FaxMaxBuffer:1800", "T38FaxMaxDatagram:400", "T38FaxUdpEC:t38UDPRedundancy",
        "T38FaxFillBitRemoval", "ptime:20",
    ]
    assert m.rtcp is None and not m.rtcp_mux and m.direction is None
    assert state.anchors == {0: Anchor(SWITCH_Y, 40000)}


def test_a_t38_answer_is_anchored_back_and_planned_as_udptl() -> None:
    _, state = offer(T38_OFFER)
    sd, plans = answer(state, T38_ANSWER)
    m = reparsed(sd).media[0]
    assert (m.media, m.port, m.formats) == ("image", 30000, ["t38"])
    assert [a.name for a in m.attributes] == T38_ATTRIBUTES
    assert m.attribute("T38FaxMaxDatagram") == "180"  # the answerer's, as it wrote it
    (plan,) = plans
    assert plan.udptl and not plan.rejected and plan.codec is None
    assert plan.x is not None and plan.y is not None
    assert (plan.x.rtp, plan.y.rtp) == (("192.0.2.10", 6000), ("192.0.2.20", 7000))
    assert plan.x.rtcp == plan.x.rtp and plan.x.payload_type == -1
    assert (plan.x_to_y, plan.y_to_x) == ({}, {})


def test_a_t38_stream_refused_by_the_answerer_is_a_rejected_plan() -> None:
    _, state = offer(T38_OFFER)
    sd, plans = answer(state, T38_ANSWER.replace(b"image 7000", b"image 0"))
    assert sd.media[0].port == 0 and plans[0].rejected and plans[0].udptl


@pytest.mark.parametrize("good, bad", [
    (b"T38FaxVersion:0", b"T38FaxVersion:x"), (b"UdpEC:t38UDPRedundancy", b"UdpEC:t38UDPMagic"),
    (b"T38FaxMaxDatagram:400", b"T38FaxMaxDatagram:-1"),
])
def test_a_t38_offer_with_broken_attributes_is_488(good: bytes, bad: bytes) -> None:
    with pytest.raises(SdpError) as info:
        offer(T38_OFFER.replace(good, bad))
    assert info.value.status == 488


def test_audio_to_image_and_back_at_the_same_index() -> None:
    """A fax re-offer replaces the audio m-line (T.38 Annex D), and a later re-offer
    brings audio back: each is anchored on its own terms."""
    audio, _ = offer(YEALINK)
    assert audio.media[0].media == "audio"
    image, state = offer(T38_OFFER)
    assert image.media[0].media == "image" and image.media[0].port == 40000
    with pytest.raises(SdpError):  # an answer of the old kind does not fit the offer
        answer(state, YEALINK)
    back, state = offer(YEALINK)
    assert back.media[0].media == "audio" and back.media[0].payload_types


def test_duplicate_payload_types_in_offer_are_relayed_once() -> None:
    relayed, _ = offer(YEALINK.replace(b"RTP/AVP 0 8 18 9 101", b"RTP/AVP 0 0 8 18 9 101 8"))
    assert relayed.media[0].formats == ["0", "8", "9", "101"]


def test_ice_and_bundle_are_dropped_dtls_lines_kept() -> None:
    relayed, _ = offer(WEBRTC)
    sd = reparsed(relayed)
    m = sd.media[0]
    names = {a.name for a in m.attributes} | {a.name for a in sd.attributes}
    assert not names & {"candidate", "ice-ufrag", "ice-pwd", "ice-options", "group"}
    assert {"fingerprint", "setup", "mid", "msid", "extmap-allow-mixed"} <= names
    assert m.proto == "UDP/TLS/RTP/SAVPF" and m.rtcp_mux and m.rtcp == Rtcp(40001)
    assert m.payload_types == [111, 9, 0, 8, 110, 126]


def test_ipv6_anchor_and_ipv6_offerer() -> None:
    origin = LegOrigin(9, "2001:db8::20")
    relayed, _ = anchor_offer(
        SessionDescription.parse(YEALINK), {0: Anchor("2001:db8::20", 40000)}, DEFAULT_PREFS,
        origin,
    )
    sd = reparsed(relayed)
    assert sd.connection == Connection("2001:db8::20", "IN", "IP6")
    assert sd.origin.addrtype == "IP6"
    _, state = offer(IPV6)
    _, plans = answer(state, ANSWER_G722.replace(b"RTP/AVP 9 101", b"RTP/AVP 8 101")
                         .replace(b"a=rtpmap:9 G722", b"a=rtpmap:8 PCMA"))
    assert plans[0].x is not None and plans[0].x.rtp == ("2001:db8::10", 30000)


@pytest.mark.parametrize(
    ("old", "new", "status"),
    [
        (b"c=IN IP4 10.0.0.23", b"c=IN IP4 phone.example.com", 488),
        (b"c=IN IP4 10.0.0.23", b"c=IN IP4 239.1.1.1/127", 488),
        (b"c=IN IP4 10.0.0.23", b"c=IN IP6 10.0.0.23", 488),
        (b"c=IN IP4 10.0.0.23", b"c=ATM NSAP 10.0.0.23", 488),
        (b"c=IN IP4 10.0.0.23\r\n", b"", 400),
    ],
)
def test_unusable_connection_addresses(old: bytes, new: bytes, status: int) -> None:
    with pytest.raises(SdpError) as info:
        offer(YEALINK.replace(old, new))
    assert info.value.status == status


# -- origin (RFC 3264 §8) ---------------------------------------------------------------------
def test_origin_version_goes_up_only_when_the_sdp_changes() -> None:
    offer_x = SessionDescription.parse(YEALINK)
    first, state1 = anchor_offer(offer_x, anchors(SWITCH_Y, 40000), DEFAULT_PREFS, ORIGIN_Y)
    again, state2 = anchor_offer(offer_x, anchors(SWITCH_Y, 40000), DEFAULT_PREFS, state1.origin)
    assert bytes(again) == bytes(first) and state2.origin.sess_version == 0
    held = SessionDescription.parse(YEALINK.replace(b"a=sendrecv", b"a=sendonly"))
    third, state3 = anchor_offer(held, anchors(SWITCH_Y, 40000), DEFAULT_PREFS, state2.origin)
    assert third.origin.sess_version == 1 and third.origin.sess_id == 2222
    assert state3.origin.sess_version == 1


def test_each_leg_has_its_own_origin() -> None:
    relayed, state = offer(YEALINK)
    back, _, origin_x = anchor_answer(
        SessionDescription.parse(ANSWER_G722), state, anchors(SWITCH_X, 30000), ORIGIN_X
    )
    assert (relayed.origin.sess_id, back.origin.sess_id) == (2222, 1111)
    assert back.origin.address == SWITCH_X and origin_x.last == bytes(back)


# -- the answer ---------------------------------------------------------------------------------
def test_answer_is_anchored_for_the_offerer() -> None:
    _, state = offer(YEALINK)
    back, plans = answer(state, ANSWER_G722)
    sd = reparsed(back)
    m = sd.media[0]
    assert sd.connection == Connection(SWITCH_X) and (m.port, m.rtcp) == (30000, Rtcp(30001))
    assert m.payload_types == [9, 101] and m.direction is Direction.SENDRECV
    assert m.fmtp(101) is not None and m.ptime == 20
    plan = plans[0]
    assert plan.codec == Codec("G722", 8000) and not plan.rejected
    assert plan.x is not None and plan.y is not None
    assert (plan.x.rtp, plan.x.rtcp) == (("10.0.0.23", 11800), ("10.0.0.23", 11801))
    assert (plan.y.rtp, plan.y.rtcp) == (("10.20.0.9", 12000), ("10.20.0.9", 12001))
    assert plan.x.anchor == Anchor(SWITCH_X, 30000) and plan.y.anchor == Anchor(SWITCH_Y, 40000)
    assert (plan.x.payload_type, plan.y.payload_type) == (9, 9)
    assert (plan.x.telephone_event, plan.y.telephone_event) == (101, 101)
    assert plan.x_to_y == {9: 9, 101: 101} and plan.y_to_x == {9: 9, 101: 101}
    assert plan.x.ptime == 20 and plan.y.ptime == 20


# baresip offers opus 111 and telephone-event 101; this answerer numbers them 96 and 100.
RENUMBERED_ANSWER = crlf("""
v=0
o=- 77 77 IN IP4 10.20.0.30
s=-
c=IN IP4 10.20.0.30
t=0 0
m=audio 16000 RTP/AVP 96 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:100 telephone-event/8000
a=fmtp:100 0-16
a=rtcp-fb:96 nack
""")


def test_renumbered_dynamic_payload_types_are_mapped_back() -> None:
    _, state = offer(BARESIP)
    back, plans = answer(state, RENUMBERED_ANSWER)
    m = reparsed(back).media[0]
    assert m.payload_types == [111, 101]
    assert m.codec(111) == Codec("opus", 48000, 2) and m.codec(101) == Codec("telephone-event", 8000)
    assert m.fmtp(111) == Fmtp("111", "useinbandfec=1")
    assert m.attribute_values("rtcp-fb") == ["111 nack"]
    plan = plans[0]
    assert plan.x_to_y == {111: 96, 101: 100}
    assert plan.y_to_x == {111: 111, 101: 101, 96: 111, 100: 101}
    assert plan.x is not None and plan.y is not None
    assert (plan.x.payload_type, plan.y.payload_type) == (111, 96)
    assert (plan.x.telephone_event, plan.y.telephone_event) == (101, 100)


def test_swapped_numbers_keep_the_offer_numbering_for_what_y_sends() -> None:
    _, state = offer(BARESIP)
    swapped = (RENUMBERED_ANSWER.replace(b"RTP/AVP 96 100", b"RTP/AVP 101 111")
               .replace(b":96 ", b":101 ").replace(b":100 ", b":111 "))
    back, plans = answer(state, swapped)
    m = back.media[0]
    assert m.payload_types == [111, 101] and m.codec(111) == Codec("opus", 48000, 2)
    assert plans[0].x_to_y == {111: 101, 101: 111}
    assert plans[0].y_to_x == {111: 111, 101: 101}  # §5.1: Y sends with the offer's numbers


def test_answer_codec_not_offered_is_dropped_and_none_left_rejects() -> None:
    _, state = offer(YEALINK)
    data = ANSWER_G722.replace(b"RTP/AVP 9 101", b"RTP/AVP 3 9 101")
    back, _ = answer(state, data)
    assert back.media[0].payload_types == [9, 101]
    only_gsm = ANSWER_G722.replace(b"RTP/AVP 9 101", b"RTP/AVP 3 101")
    back, plans = answer(state, only_gsm)
    assert back.media[0].port == 0 and plans[0].rejected


def test_duplicate_codecs_map_deterministically() -> None:
    two_opus = BARESIP.replace(b"RTP/AVP 111", b"RTP/AVP 111 112").replace(
        b"a=rtpmap:9 ", b"a=rtpmap:112 opus/48000/2\r\na=fmtp:112 stereo=0\r\na=rtpmap:9 ")
    _, state = offer(two_opus)
    assert state.relayed.media[0].payload_types[:2] == [111, 112]
    same_number = RENUMBERED_ANSWER.replace(b"96", b"112")
    assert answer(state, same_number)[1][0].x_to_y == {112: 112, 101: 100}
    both = RENUMBERED_ANSWER.replace(b"RTP/AVP 96 100", b"RTP/AVP 96 97 98 100").replace(
        b"a=rtpmap:100", b"a=rtpmap:97 opus/48000/2\r\na=rtpmap:98 OPUS/48000/2\r\na=rtpmap:100")
    back, plans = answer(state, both)
    assert plans[0].x_to_y == {111: 96, 112: 97, 101: 100}
    assert back.media[0].payload_types == [111, 112, 101]


@pytest.mark.parametrize(
    "answer_data",
    [
        ANSWER_G722 + b"m=video 0 RTP/AVP 31\r\n",
        ANSWER_G722.replace(b"m=audio", b"m=video"),
        ANSWER_G722[: ANSWER_G722.index(b"m=")],
    ],
)
def test_answer_with_other_m_lines_is_refused(answer_data: bytes) -> None:
    _, state = offer(YEALINK)
    with pytest.raises(SdpError) as info:
        answer(state, answer_data)
    assert info.value.status == 488


def test_rejected_answer_stream_and_missing_anchor() -> None:
    _, state = offer(YEALINK)
    back, plans = answer(state, ANSWER_G722.replace(b"m=audio 12000", b"m=audio 0"))
    assert back.media[0].port == 0 and plans[0].rejected and not is_hold(back)
    back, plans, _ = anchor_answer(SessionDescription.parse(ANSWER_G722), state, {}, ORIGIN_X)
    assert back.media[0].port == 0 and plans[0].rejected


# -- RTCP (RFC 3605, RFC 5761) -----------------------------------------------------------------
def test_rtcp_mux_on_both_legs() -> None:
    relayed, state = offer(BARESIP)
    assert relayed.media[0].rtcp_mux and relayed.media[0].rtcp == Rtcp(40001)  # fallback port
    back, plans = answer(state, RENUMBERED_ANSWER.replace(b"a=rtcp-fb", b"a=rtcp-mux\r\na=rtcp-fb"))
    m = back.media[0]
    assert m.rtcp_mux and m.rtcp == Rtcp(30000)
    plan = plans[0]
    assert plan.x is not None and plan.y is not None
    assert plan.x.rtcp_mux and plan.x.rtcp == plan.x.rtp == ("10.0.0.7", 10148)
    assert plan.y.rtcp_mux and plan.y.rtcp == plan.y.rtp


def test_rtcp_mux_refused_by_answerer() -> None:
    _, state = offer(BARESIP)
    _, plans = answer(state, RENUMBERED_ANSWER)
    assert plans[0].x is not None and plans[0].y is not None
    assert plans[0].x.rtcp_mux and not plans[0].y.rtcp_mux
    assert plans[0].y.rtcp == ("10.20.0.30", 16001)


def test_answerer_mux_without_our_offer_is_ignored() -> None:
    _, state = offer(YEALINK)
    _, plans = answer(state, ANSWER_G722.replace(b"a=ptime", b"a=rtcp-mux\r\na=ptime"))
    assert plans[0].y is not None and not plans[0].y.rtcp_mux
    assert plans[0].y.rtcp == ("10.20.0.9", 12001)


def test_rtcp_attribute_with_address() -> None:
    _, state = offer(PJSIP.replace(b"a=rtcp:4001 IN IP4 192.168.56.1",
                                   b"a=rtcp:5001 IN IP4 192.168.56.99"))
    back, plans = answer(state, ANSWER_G722)
    assert plans[0].x is not None and plans[0].x.rtcp == ("192.168.56.99", 5001)
    assert back.media[0].rtcp == Rtcp(30001)
    _, state = offer(YEALINK)
    _, plans = answer(state, ANSWER_G722.replace(b"a=ptime", b"a=rtcp:13001\r\na=ptime"))
    assert plans[0].y is not None and plans[0].y.rtcp == ("10.20.0.9", 13001)


def test_anchor_with_explicit_rtcp_port() -> None:
    relayed, _ = anchor_offer(SessionDescription.parse(YEALINK),
                              {0: Anchor(SWITCH_Y, 40000, 40007)}, DEFAULT_PREFS, ORIGIN_Y)
    assert relayed.media[0].rtcp == Rtcp(40007)


# -- hold (RFC 3264 §8.4, RFC 6337 §5) ----------------------------------------------------------------
def test_sendonly_offer_is_hold_and_the_answer_mirrors() -> None:
    relayed, state = offer(YEALINK.replace(b"a=sendrecv", b"a=sendonly"))
    assert is_hold(relayed) and relayed.media[0].direction is Direction.SENDONLY
    back, plans = answer(state, ANSWER_G722.replace(b"a=sendrecv", b"a=recvonly"))
    assert back.media[0].direction is Direction.RECVONLY and not is_hold(back)
    plan = plans[0]
    assert plan.x is not None and plan.y is not None
    assert plan.x.holds_peer and plan.x.direction is Direction.SENDONLY
    assert not plan.y.holds_peer and plan.y.direction is Direction.RECVONLY


def test_legacy_hold_address_becomes_an_explicit_direction() -> None:
    data = YEALINK.replace(b"c=IN IP4 10.0.0.23", b"c=IN IP4 0.0.0.0")
    assert is_hold(SessionDescription.parse(data))
    relayed, state = offer(data)
    sd = reparsed(relayed)
    assert sd.connection == Connection(SWITCH_Y) and sd.media[0].direction is Direction.SENDONLY
    assert is_hold(sd)
    _, plans = answer(state, ANSWER_G722.replace(b"a=sendrecv", b"a=recvonly"))
    assert plans[0].x is not None and plans[0].x.holds_peer
    assert plans[0].x.rtp == ("0.0.0.0", 11800)


def test_inactive_both_ways() -> None:
    relayed, state = offer(YEALINK.replace(b"a=sendrecv", b"a=inactive"))
    assert is_hold(relayed) and relayed.media[0].direction is Direction.INACTIVE
    back, plans = answer(state, ANSWER_G722.replace(b"a=sendrecv", b"a=inactive"))
    assert is_hold(back) and plans[0].y is not None and plans[0].y.holds_peer


def test_is_hold_needs_every_active_stream_held() -> None:
    audio_held = POLYCOM.replace(b"a=rtpmap:9 ", b"a=sendonly\r\na=rtpmap:9 ")
    assert is_hold(SessionDescription.parse(audio_held))
    with_video = audio_held + b"m=video 5000 RTP/AVP 31\r\n"
    assert not is_hold(SessionDescription.parse(with_video))
    assert not is_hold(SessionDescription.parse(YEALINK.replace(b"11800", b"0")))


# -- properties ----------------------------------------------------------------------------------------
PREF_NAMES = ["PCMU", "PCMA", "G722", "G729", "opus", "telephone-event", "H264", "VP8", "speex"]


@given(st.sampled_from(sorted(SAMPLES)), st.sets(st.sampled_from(PREF_NAMES)))
@settings(max_examples=150)
def test_relayed_offer_keeps_m_lines_and_offerer_order(name: str, prefs: set[str]) -> None:
    original = SessionDescription.parse(SAMPLES[name])
    try:
        relayed, state = anchor_offer(original, anchors(SWITCH_Y, 40000, 4),
                                      LegPrefs.of(*sorted(prefs)), ORIGIN_Y)
    except SdpError as e:
        assert e.status == 488
        return
    assert [m.media for m in relayed.media] == [m.media for m in original.media]
    for before, after in zip(original.media, relayed.media, strict=True):
        kept = [pt for pt in before.payload_types if pt in after.payload_types]
        assert after.port == 0 or kept == after.payload_types
    echo, plans, _ = anchor_answer(reparsed(relayed), state, anchors(SWITCH_X, 30000, 4),
                                   ORIGIN_X)
    assert len(echo.media) == len(original.media) == len(plans)
    for before, after, plan in zip(original.media, echo.media, plans, strict=True):
        assert set(after.payload_types) <= set(before.payload_types)
        assert plan.rejected == (after.port == 0)


@given(mutated_samples())
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_offers_and_answers_only_raise_sdp_error(data: bytes) -> None:
    try:
        sd = SessionDescription.parse(data)
        _, state = anchor_offer(sd, anchors(SWITCH_Y, 40000, 16), DEFAULT_PREFS, ORIGIN_Y)
        is_hold(sd)
        anchor_answer(sd, state, anchors(SWITCH_X, 30000, 16), ORIGIN_X)
    except SdpError as e:
        assert e.status in (400, 488, 513)
