"""Music on hold, transcoding and DTMF conversion of anchored calls
(switch/b2bua/media_features.py), driven through the Call with a relay without
sockets; players and pumps run on a real event loop for a few frames.  Also the
``moh:`` setting of the configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dialplan.loader import ConfigError, load_config
from media.audiofile import AudioClip
from media.dtmf import TelephoneEvent
from media.offer_answer import LegPrefs
from media.relay import Rewriter
from media.rtp import RtpPacket
from media.sdp import SessionDescription
from switch.b2bua.anchor import AnchorHook, fax_safe
from switch.b2bua.call import Attempt, Call
from switch.b2bua.media_features import DEFAULT_MOH, MOH_LIBRARY, MediaFeatures, widen_offer
from switch.sip.address import Address
from switch.sip.builders import make_response
from switch.sip.events import ResponseReceived
from switch.sip.message import Request, parse_message
from tests.unit.test_anchor import FakeStream, ack_from_a, config, in_dialog, local_address
from tests.unit.test_call import INVITE, PHONE1, FakeEnv, Plan, reply, target

A_SDP = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
B_OPUS = (b"v=0\r\no=- 7 7 IN IP4 10.0.0.11\r\ns=-\r\nc=IN IP4 10.0.0.11\r\nt=0 0\r\n"
          b"m=audio 5000 RTP/AVP 111 101\r\na=rtpmap:111 opus/48000/2\r\n"
          b"a=rtpmap:101 telephone-event/48000\r\n")
B_PCMU = (b"v=0\r\no=- 7 7 IN IP4 10.0.0.11\r\ns=-\r\nc=IN IP4 10.0.0.11\r\nt=0 0\r\n"
          b"m=audio 5000 RTP/AVP 0\r\n")


# -- a relay stream without sockets ---------------------------------------------------------
@dataclass
class FeatureFakeStream(FakeStream):
    closed: bool = False  # type: ignore[assignment]
    sent: list[tuple[str, bytes]] = field(default_factory=list)
    taps: dict[str, object] = field(default_factory=dict)
    rewriters: dict[str, Rewriter | None] = field(default_factory=dict)
    watchers: dict[str, Callable[[memoryview], None] | None] = field(default_factory=dict)

    def send(self, side: str, packet: bytearray) -> bool:
        self.sent.append((side, bytes(packet)))
        return True

    def set_tap(self, from_side: str, tap: object) -> None:
        self.taps[from_side] = tap

    def set_rewriter(self, side: str, rewriter: Rewriter | None) -> None:
        self.rewriters[side] = rewriter

    def set_watcher(self, from_side: str, watcher: Callable[[memoryview], None] | None) -> None:
        self.watchers[from_side] = watcher

    def close(self) -> None:
        self.closed = True


@dataclass
class FeatureRelay:
    streams: list[FeatureFakeStream] = field(default_factory=list)
    closed_calls: list[Hashable] = field(default_factory=list)

    def open(self, call_ref: Hashable, mux_a: bool = False, mux_b: bool = False,
             udptl: bool = False) -> FeatureFakeStream:
        port = 40000 + 4 * len(self.streams)
        stream = FeatureFakeStream({"a": port, "b": port + 2}, udptl=udptl)
        self.streams.append(stream)
        return stream

    def close_call(self, call_ref: Hashable) -> None:
        self.closed_calls.append(call_ref)
        for stream in self.streams:
            stream.close()


TENANT = {"domain": "demo.test", "name": "Demo", "extensions": [
    {"number": "100", "name": "A", "password": "pw", "codecs": ["PCMU"]},
    {"number": "101", "name": "B", "password": "pw", "codecs": ["opus"]},
]}


def feature_call(loop: asyncio.AbstractEventLoop, tenants: list[object] | None = None,
                 a_sdp: bytes = A_SDP) -> tuple[Call, FakeEnv, FeatureRelay]:
    relay = FeatureRelay()
    cfg = config(tenants if tenants is not None else [TENANT])
    hook = AnchorHook(relay, cfg, local_address, MediaFeatures(cfg, loop))  # type: ignore[arg-type]
    env = FakeEnv()
    head = INVITE.split(b"Content-Length:")[0]
    req = parse_message(head + f"Content-Length: {len(a_sdp)}\r\n\r\n".encode() + a_sdp)
    assert isinstance(req, Request)
    call = Call(env, Plan(), req, 1, Address("udp", "10.0.0.1", 5060), 0.0)  # type: ignore[arg-type]
    call.media = hook.session(call.ref, "demo.test", "100")
    call.media.digits_to(call.on_media_digit)
    return call, env, relay


def answer_call(call: Call, env: FakeEnv, b_sdp: bytes) -> SessionDescription:
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    reply(env, 0, 200, "p1", b_sdp)
    call.on_a_ack(ack_from_a(call), 0.1)
    ok = [r for _, r in env.responses if r.status == 200][-1]
    return SessionDescription.parse(ok.body)


def reinvite(call: Call, env: FakeEnv, body: bytes, answer: bytes, cseq: int) -> None:
    call.on_request("a", in_dialog(call, "INVITE", body, cseq=cseq), 10 + cseq, 5.0)
    relayed, _, owner = env.requests[-1]
    ok = make_response(relayed, 200)
    ok.add("Content-Type", "application/sdp")
    ok.body = answer
    owner(ResponseReceived(cseq, parse_message(bytes(ok)), owner), 5.1)  # type: ignore[operator]


# -- fax-safe audio ------------------------------------------------------------------------------
A_FAX = (b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 111 9 8 0 13 101\r\na=rtpmap:111 opus/48000/2\r\n"
         b"a=rtpmap:13 CN/8000\r\na=rtpmap:101 telephone-event/8000\r\n")


def fax_tenant(fax: str, b_codecs: list[str]) -> dict[str, object]:
    return {"domain": "demo.test", "name": "Demo", "extensions": [
        {"number": n, "name": n, "password": "pw", "fax": n == fax,
         **({"codecs": b_codecs} if n == "101" else {})} for n in ("100", "101")]}


@pytest.mark.parametrize("fax", ["100", "101"])
def test_a_fax_call_offers_only_g711_without_comfort_noise_and_is_not_transcoded(
    fax: str
) -> None:
    """A fax extension on either side: both legs share PCMU, so only G.711 (and digits)
    is offered and the relay copies packets as they are: no transcoder, hence no jitter
    buffer; CN is never offered."""
    loop = asyncio.new_event_loop()
    try:
        tenant = fax_tenant(fax, ["opus", "G722", "PCMU", "CN"])
        call, env, relay = feature_call(loop, [tenant], A_FAX)
        call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
        offer = SessionDescription.parse(env.requests[0][0].body).media[0]
        assert [str(offer.codec(pt)) for pt in offer.payload_types] == [
            "PCMU/8000", "telephone-event/8000"]
        reply(env, 0, 200, "p1", B_PCMU)
        call.on_a_ack(ack_from_a(call), 0.1)
        (stream,) = relay.streams
        assert stream.taps == {} and stream.pt_maps == {"a": {0: 0}, "b": {0: 0}}
        assert call.media.features is not None  # type: ignore[attr-defined]
        assert call.media.features._streams[0].pump is None  # type: ignore[attr-defined]
        call.hangup(1.0, "caller", 200)
    finally:
        loop.close()


def test_without_a_fax_extension_the_offer_keeps_every_codec_and_cn() -> None:
    loop = asyncio.new_event_loop()
    try:
        call, env, _ = feature_call(loop, [fax_tenant("", ["opus", "G722", "PCMU", "CN"])], A_FAX)
        call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
        offer = SessionDescription.parse(env.requests[0][0].body).media[0]
        assert [offer.codec(pt).name for pt in offer.payload_types] == [  # type: ignore[union-attr]
            "opus", "G722", "PCMU", "CN", "telephone-event"]
        call.hangup(1.0, "caller", 200)
    finally:
        loop.close()


def test_fax_safe_without_common_g711_only_drops_cn() -> None:
    a, b = LegPrefs.of("opus", "PCMU", "CN"), LegPrefs.of("opus", "G722", "CN")
    common = LegPrefs.of("opus", "CN")
    assert fax_safe(a, b, common) == (LegPrefs.of("opus", "PCMU"), LegPrefs.of("opus", "G722"),
                                      LegPrefs.of("opus"))
    common = LegPrefs.of("opus", "PCMA", "CN", "telephone-event")
    assert fax_safe(a, common, common)[2] == LegPrefs.of("PCMA", "telephone-event")


# -- transcoding in the SDP -------------------------------------------------------------------
def test_widen_adds_the_receivers_transcodable_codecs_only_when_nothing_is_common() -> None:
    offer = SessionDescription.parse(A_SDP)
    a, b = LegPrefs.of("PCMU", "telephone-event"), LegPrefs.of("G722", "opus", "telephone-event")
    common = LegPrefs.of("telephone-event")
    widened, added = widen_offer(offer, a, b, common)
    m = widened.media[0]
    assert m.payload_types == [0, 101, 9, 96, 97] and added == {0: frozenset({9, 96, 97})}
    assert str(m.codec(96)) == "opus/48000/2" and str(m.codec(9)) == "G722/8000"
    assert str(m.codec(97)) == "telephone-event/48000"  # digits at opus's clock too
    assert SessionDescription.parse(A_SDP).media[0].payload_types == [0, 101]  # not changed
    assert widen_offer(offer, a, a, LegPrefs.of("PCMU"))[1] == {}  # PCMU in common: relayed
    assert widen_offer(offer, LegPrefs.of("G729"), b, common)[1] == {}  # nothing to decode


def test_a_call_without_a_common_codec_is_transcoded_and_released() -> None:
    loop = asyncio.new_event_loop()
    try:
        call, env, relay = feature_call(loop)
        offer_to_b = SessionDescription.parse(env.requests[0][0].body) if env.requests else None
        assert offer_to_b is None  # nothing sent before start
        answer = answer_call(call, env, B_OPUS)
        offer_to_b = SessionDescription.parse(env.requests[0][0].body)
        assert [str(offer_to_b.media[0].codec(pt)) for pt in offer_to_b.media[0].payload_types] \
            == ["telephone-event/8000", "opus/48000/2", "telephone-event/48000"]
        m = answer.media[0]
        assert m.payload_types == [0, 101], bytes(answer)  # A hears its own codecs
        assert str(m.codec(101)) == "telephone-event/8000"
        (stream,) = relay.streams
        assert stream.taps["a"] is not None and stream.taps["b"] is not None  # the pump taps
        call.on_request("a", in_dialog(call, "BYE", b"", cseq=9), 30, 9.0)
        assert stream.taps == {"a": None, "b": None} and stream.closed
    finally:
        loop.close()


def test_a_common_codec_is_relayed_untouched() -> None:
    loop = asyncio.new_event_loop()
    try:
        tenant = {**TENANT, "extensions": [{**e, "codecs": ["PCMU", "opus"]}
                                           for e in TENANT["extensions"]]}  # type: ignore[attr-defined]
        call, env, relay = feature_call(loop, [tenant])
        answer_call(call, env, B_PCMU)
        (stream,) = relay.streams
        assert stream.taps == {}
    finally:
        loop.close()


# -- music on hold ----------------------------------------------------------------------------
async def _hold_and_resume() -> tuple[FeatureFakeStream, list[tuple[str, bytes]], Call]:
    loop = asyncio.get_running_loop()
    tenant = {**TENANT, "extensions": [{**e, "codecs": ["PCMU"]} for e in TENANT["extensions"]]}  # type: ignore[attr-defined]
    call, env, relay = feature_call(loop, [tenant])
    answer_call(call, env, B_PCMU)
    (stream,) = relay.streams
    hold = A_SDP.replace(b"t=0 0", b"t=0 0\r\na=sendonly")
    reinvite(call, env, hold, B_PCMU.replace(b"t=0 0", b"t=0 0\r\na=recvonly"), 4)
    assert stream.held["b"] and isinstance(stream.rewriters.get("b"), Rewriter)
    await asyncio.sleep(0.15)
    during = list(stream.sent)
    reinvite(call, env, A_SDP, B_PCMU, 5)
    assert not stream.held["b"]
    stream.sent.clear()
    await asyncio.sleep(0.1)
    return stream, during, call


def test_hold_plays_moh_to_the_held_party_and_resume_stops_it() -> None:
    stream, during, call = asyncio.run(_hold_and_resume())
    assert len(during) >= 5 and {side for side, _ in during} == {"b"}
    packets = [RtpPacket.parse(data) for _, data in during]
    assert {p.payload_type for p in packets} == {0} and all(len(p.payload) == 160 for p in packets)
    assert any(any(b not in (0xFF, 0x7F) for b in p.payload) for p in packets)  # not silence
    assert stream.sent == []  # resumed: no more music
    assert stream.rewriters["b"] is not None  # kept: relayed audio continues the stream


def test_moh_clips_are_decoded_once_per_file() -> None:
    clip = MOH_LIBRARY.get(DEFAULT_MOH)
    assert isinstance(clip, AudioClip) and MOH_LIBRARY.get(DEFAULT_MOH) is clip
    assert set(clip.rates()) >= {8000, 16000, 48000}


# -- DTMF -------------------------------------------------------------------------------------
async def _info_to_b() -> tuple[FeatureFakeStream, list[object]]:
    loop = asyncio.get_running_loop()
    tenant = {**TENANT, "extensions": [{**e, "codecs": ["PCMU"]} for e in TENANT["extensions"]]}  # type: ignore[attr-defined]
    call, env, relay = feature_call(loop, [tenant])
    answer_call(call, env, B_PCMU.replace(b" 0\r\n", b" 0 101\r\n") +
                b"a=rtpmap:101 telephone-event/8000\r\n")
    (stream,) = relay.streams
    raw = bytes(in_dialog(call, "INFO", b"Signal=5\r\nDuration=160\r\n", cseq=6))
    info = parse_message(raw.replace(b"application/sdp", b"application/dtmf-relay"))
    assert isinstance(info, Request)
    before = len(env.requests)
    call.on_request("a", info, 40, 6.0)
    await asyncio.sleep(0.35)
    return stream, [env.responses[-1][1].status, len(env.requests) - before]


def test_info_becomes_rfc4733_toward_a_leg_with_telephone_event() -> None:
    stream, (status, relayed) = asyncio.run(_info_to_b())
    assert status == 200 and relayed == 0  # answered here, not relayed
    packets = [RtpPacket.parse(data) for side, data in stream.sent if side == "b"]
    assert packets and {p.payload_type for p in packets} == {101}
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert {e.event for e in events} == {5} and events[-1].end and packets[0].marker
    assert len({p.timestamp for p in packets}) == 1


def test_rfc4733_from_a_leg_becomes_info_toward_a_leg_without() -> None:
    loop = asyncio.new_event_loop()
    try:
        tenant = {**TENANT, "extensions": [{**e, "codecs": ["PCMU"]} for e in TENANT["extensions"]]}  # type: ignore[attr-defined]
        call, env, relay = feature_call(loop, [tenant])
        answer_call(call, env, B_PCMU)  # B: no telephone-event
        (stream,) = relay.streams
        watch = stream.watchers["a"]
        assert watch is not None
        before = len(env.requests)
        for end in (False, True):
            pkt = RtpPacket(payload_type=101, sequence_number=1, timestamp=800, ssrc=7,
                            payload=bytes(TelephoneEvent(7, end, 10, 800)))
            watch(memoryview(bytes(pkt)))
        (info,) = [r for r, _, _ in env.requests[before:]]
        assert info.method == "INFO" and info.get("content-type") == "application/dtmf-relay"
        assert info.body == b"Signal=7\r\nDuration=100\r\n"
    finally:
        loop.close()


# -- configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize(("content", "reason"), [
    (None, "unreadable"), (b"this is not audio at all" * 10, "not audio"), (b"", "empty")])
def test_a_bad_moh_file_is_refused_with_file_line_and_reason(
    tmp_path: Path, content: bytes | None, reason: str
) -> None:
    (tmp_path / "centrala.yaml").write_text("listen: [udp:127.0.0.1:5060]\n")
    tenant = tmp_path / "tenants" / "t.yaml"
    tenant.parent.mkdir()
    tenant.write_text("domain: t.test\nname: T\nmoh: music/hold.wav\n")
    if content is not None:
        (tmp_path / "music").mkdir()
        (tmp_path / "music" / "hold.wav").write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, env={})
    (issue,) = err.value.issues
    assert issue.file == tenant and issue.line == 3, str(issue)
    assert "moh: music/hold.wav" in issue.message and reason in issue.message, str(issue)


def test_a_good_moh_file_is_resolved_and_cached(tmp_path: Path) -> None:
    (tmp_path / "centrala.yaml").write_text("listen: [udp:127.0.0.1:5060]\n")
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "t.yaml").write_text("domain: t.test\nname: T\nmoh: hold.wav\n")
    (tmp_path / "hold.wav").write_bytes(DEFAULT_MOH.read_bytes())
    cfg = load_config(tmp_path, env={})
    tenant = cfg.tenant_by_domain("t.test")
    assert tenant is not None and tenant.moh == (tmp_path / "hold.wav").resolve()
    assert MOH_LIBRARY.cached(tenant.moh) is not None
