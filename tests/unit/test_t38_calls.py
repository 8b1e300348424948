"""T.38 fax in anchored calls (switch/b2bua/anchor.py, call.py) driven through the Call
with the fake relay of test_anchor: the audio m-line becomes ``m=image udptl t38`` in a
re-INVITE and back, a refused fax re-INVITE leaves the call on its audio, and session
refreshes during the fax keep the image stream.  One test runs the real relay to count
ports across the kind changes."""

from __future__ import annotations

import asyncio

import pytest

from media.ports import PortAllocator
from media.relay import MediaRelay
from switch.b2bua.call import Attempt, Call, CallState
from switch.sip.builders import make_response
from switch.sip.events import ResponseReceived
from switch.sip.message import Response, parse_message
from tests.unit.test_anchor import (
    B_SDP,
    FakeEnv,
    FakeRelay,
    ack_from_a,
    anchored_call,
    answered_call,
    in_dialog,
    sdp,
)
from tests.unit.test_call import PHONE1, SDP, reply, target

T38_A = (b"v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
         b"m=image 4010 udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:14400\r\n"
         b"a=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxBuffer:1800\r\n"
         b"a=T38FaxMaxDatagram:400\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n"
         b"a=T38FaxFillBitRemoval\r\n")
T38_B = (b"v=0\r\no=- 7 8 IN IP4 10.0.0.11\r\ns=-\r\nc=IN IP4 10.0.0.11\r\nt=0 0\r\n"
         b"m=image 5010 udptl t38\r\na=T38FaxVersion:0\r\na=T38MaxBitRate:9600\r\n"
         b"a=T38FaxRateManagement:transferredTCF\r\na=T38FaxMaxBuffer:200\r\n"
         b"a=T38FaxMaxDatagram:180\r\na=T38FaxUdpEC:t38UDPRedundancy\r\n")


def answer_relayed(env: FakeEnv, status: int, body: bytes = b"", at: float = 5.1) -> Response:
    """The other leg's final response to the request the call relayed last; what the
    sender got back."""
    relayed, _, owner = env.requests[-1]
    resp = make_response(relayed, status)
    if body:
        resp.add("Content-Type", "application/sdp")
    resp.body = body
    owner(ResponseReceived(len(env.requests), parse_message(bytes(resp)), owner), at)  # type: ignore[operator]
    return env.responses[-1][1]


def fax_call() -> tuple[Call, FakeEnv, FakeRelay]:
    """An answered PCMU call whose caller switched it to T.38, accepted by the callee."""
    call, env, relay = answered_call()
    call.on_request("a", in_dialog(call, "INVITE", T38_A), 11, 5.0)
    assert answer_relayed(env, 200, T38_B).status == 200
    return call, env, relay


def test_a_fax_reinvite_swaps_the_audio_stream_for_udptl_at_the_answer() -> None:
    call, env, relay = answered_call()
    (audio,) = relay.streams
    call.on_request("a", in_dialog(call, "INVITE", T38_A), 11, 5.0)
    offer = sdp(env.requests[-1][0].body)
    fax = relay.streams[1]
    assert fax.udptl and not audio.closed  # staged: audio goes on until the answer
    m = offer.media[0]
    assert (m.media, m.port, m.formats) == ("image", fax.ports["b"], ["t38"])
    assert m.attribute("T38FaxMaxDatagram") == "400" and m.has_attribute("T38FaxFillBitRemoval")
    answer = answer_relayed(env, 200, T38_B)
    assert answer.status == 200 and audio.closed == 1 and not fax.closed
    back = sdp(answer.body).media[0]
    assert (back.media, back.port) == ("image", fax.ports["a"])
    assert back.attribute("T38MaxBitRate") == "9600"
    assert fax.remotes == {"a": ("10.0.0.1", 4010), "b": ("10.0.0.11", 5010)}
    assert fax.pt_maps == {"a": {}, "b": {}} and fax.held == {"a": False, "b": False}
    assert call.sdp_sent["a"] == answer.body


def test_back_to_audio_after_the_fax() -> None:
    call, env, relay = fax_call()
    fax = relay.streams[1]
    audio_again = B_SDP.replace(b"7 7", b"7 9")
    call.on_request("b", in_dialog(call, "INVITE", audio_again, side="b"), 21, 6.0)
    offer = sdp(env.requests[-1][0].body)
    audio = relay.streams[2]
    assert offer.media[0].media == "audio" and offer.media[0].port == audio.ports["a"]
    assert not audio.udptl and not fax.closed
    answer = answer_relayed(env, 200, SDP, at=6.1)
    assert answer.status == 200 and sdp(answer.body).media[0].media == "audio"
    assert fax.closed == 1 and audio.remotes == {"a": ("10.0.0.1", 4000), "b": ("10.0.0.11", 5000)}
    assert audio.pt_maps == {"a": {0: 0}, "b": {0: 0}}
    assert [s.closed for s in relay.streams] == [1, 1, 0]  # one live stream, nothing leaked


@pytest.mark.parametrize("status", [488, 415, 606])
def test_a_refused_fax_reinvite_is_488_and_the_audio_goes_on(status: int) -> None:
    call, env, relay = answered_call()
    (audio,) = relay.streams
    before = dict(call.sdp_sent)
    held, remotes = dict(audio.held), dict(audio.remotes)
    call.on_request("a", in_dialog(call, "INVITE", T38_A), 11, 5.0)
    answer = answer_relayed(env, status)
    assert env.responses[-1][0] == 11 and answer.status == 488 and not answer.body
    assert relay.streams[1].closed == 1  # the staged UDPTL stream is gone
    assert not audio.closed and audio.held == held and audio.remotes == remotes
    assert call.sdp_sent == before and call.state is CallState.ANSWERED
    call.on_request("b", in_dialog(call, "INVITE", b"", side="b"), 21, 6.0)  # offerless
    assert sdp(env.responses[-1][1].body).media[0].media == "audio"


def test_other_failures_of_a_reoffer_are_relayed_as_they_are() -> None:
    call, env, relay = answered_call()
    call.on_request("a", in_dialog(call, "INVITE", T38_A), 11, 5.0)
    assert answer_relayed(env, 491).status == 491
    assert relay.streams[1].closed == 1 and not relay.streams[0].closed


def test_session_refreshes_during_the_fax_keep_the_image_stream() -> None:
    call, env, relay = fax_call()
    fax = relay.streams[1]
    latch = dict(fax.remotes)
    call.on_request("a", in_dialog(call, "UPDATE", b"", cseq=4), 12, 65.0)  # RFC 4028 refresh
    assert env.responses[-1][1].status == 200
    call.on_request("b", in_dialog(call, "INVITE", b"", side="b"), 22, 66.0)
    refresh = sdp(env.responses[-1][1].body)
    assert refresh.media[0].media == "image" and refresh.media[0].port == fax.ports["b"]
    requests = len(env.requests)
    call.on_request("a", in_dialog(call, "INVITE", T38_A, cseq=5), 13, 67.0)  # the same SDP
    assert len(env.requests) == requests + 1
    offer = sdp(env.requests[-1][0].body)
    assert offer.media[0].port == fax.ports["b"]  # the same port, not a new stream
    assert answer_relayed(env, 200, T38_B, at=67.1).status == 200
    assert len(relay.streams) == 2 and not fax.closed and fax.remotes == latch
    assert call.state is CallState.ANSWERED


def test_kind_changes_leak_no_port_on_the_real_relay() -> None:
    loop = asyncio.new_event_loop()
    try:
        relay = MediaRelay(PortAllocator(31700, 31799, "127.0.0.1"), loop=loop)
        call, env, _ = anchored_call(relay=relay)
        call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
        reply(env, 0, 200, "p1", B_SDP)
        call.on_a_ack(ack_from_a(call), 0.1)
        assert relay.ports_in_use() == 4  # RTP and RTCP on each side
        call.on_request("a", in_dialog(call, "INVITE", T38_A), 11, 5.0)
        assert relay.ports_in_use() == 6  # + one UDPTL port per side, staged
        answer_relayed(env, 488)
        assert relay.ports_in_use() == 4
        call.on_request("a", in_dialog(call, "INVITE", T38_A, cseq=4), 12, 6.0)
        answer_relayed(env, 200, T38_B, at=6.1)
        assert relay.ports_in_use() == 2  # the audio stream is gone
        call.on_request("a", in_dialog(call, "INVITE", SDP, cseq=5), 13, 7.0)
        answer_relayed(env, 200, B_SDP.replace(b"7 7", b"7 9"), at=7.1)
        assert relay.ports_in_use() == 4
        call.hangup(8.0, "caller", 200)
        assert relay.ports_in_use() == 0
    finally:
        loop.close()

