"""Media anchoring of calls (switch/b2bua/anchor.py) driven through the Call, no sockets:
a fake relay records what the session asks of it; one test runs the real relay on
loopback to check that the ports come back.  Also the ``media`` configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dialplan.loader import ConfigError, load_config
from dialplan.schema import Config
from media.ports import PortAllocator
from media.relay import MediaRelay
from media.sdp import SessionDescription
from switch.b2bua.anchor import AnchorHook, behind_nat
from switch.b2bua.call import Attempt, Call, CallState
from switch.b2bua.media import Leg
from switch.sip.address import Address
from switch.sip.builders import make_response
from switch.sip.events import ResponseReceived, Send
from switch.sip.message import Request, parse_message
from tests.unit.test_call import INVITE, PHONE1, PHONE2, SDP, FakeEnv, Plan, reply, target

SWITCH_IP = "192.0.2.1"  # FakeEnv's Via/Contact address: what the anchor faces everyone with
B_SDP = (b"v=0\r\no=- 7 7 IN IP4 10.0.0.11\r\ns=-\r\nc=IN IP4 10.0.0.11\r\nt=0 0\r\n"
         b"m=audio 5000 RTP/AVP 0\r\n")


# -- a relay without sockets -----------------------------------------------------------------
@dataclass
class FakeStream:
    ports: dict[str, int]
    remotes: dict[str, tuple[str, int]] = field(default_factory=dict)
    sources: dict[str, str | None] = field(default_factory=dict)
    pt_maps: dict[str, dict[int, int]] = field(default_factory=dict)
    held: dict[str, bool] = field(default_factory=lambda: {"a": False, "b": False})
    closed: int = 0
    udptl: bool = False

    def local(self, side: str) -> tuple[str, int, int]:
        return "unused", self.ports[side], self.ports[side] + 1

    def set_remote(self, side: str, rtp_addr: tuple[str, int],
                   rtcp_addr: tuple[str, int] | None = None, *,
                   source_ip: str | None = None) -> None:
        self.remotes[side] = rtp_addr
        self.sources[side] = source_ip

    def set_pt_map(self, from_side: str, mapping: Mapping[int, int]) -> None:
        self.pt_maps[from_side] = dict(mapping)

    def hold(self, side: str, on: bool) -> None:
        self.held[side] = on

    def close(self) -> None:
        self.closed += 1


@dataclass
class FakeRelay:
    streams: list[FakeStream] = field(default_factory=list)
    closed_calls: list[Hashable] = field(default_factory=list)
    next_port: int = 40000

    def open(self, call_ref: Hashable, mux_a: bool = False, mux_b: bool = False,
             udptl: bool = False) -> FakeStream:
        stream = FakeStream({"a": self.next_port, "b": self.next_port + 2}, udptl=udptl)
        self.next_port += 4
        self.streams.append(stream)
        return stream

    def close_call(self, call_ref: Hashable) -> None:
        self.closed_calls.append(call_ref)


def config(tenants: list[object] | None = None, **media: object) -> Config:
    return Config.model_validate(
        {"listen": ["udp:127.0.0.1:5060"], "media": media, "tenants": tenants or []})


def local_address(dest: Address) -> tuple[str, str, int]:
    return "udp", SWITCH_IP, 5060


CALLER_PHONE = Address("udp", "10.0.0.1", 5060)


def anchored_call(invite: bytes = INVITE, relay: object = None,
                  tenants: list[object] | None = None,
                  source: Address = CALLER_PHONE, **media: object
                  ) -> tuple[Call, FakeEnv, FakeRelay]:
    relay = relay or FakeRelay()
    hook = AnchorHook(relay, config(tenants, **media), local_address)  # type: ignore[arg-type]
    env = FakeEnv()
    req = parse_message(invite)
    assert isinstance(req, Request)
    call = Call(env, Plan(), req, 1, source, 0.0)  # type: ignore[arg-type]
    call.media = hook.session(call.ref, "demo.test", "100")
    return call, env, relay  # type: ignore[return-value]


def in_dialog(call: Call, method: str, body: bytes, cseq: int = 3, side: str = "a") -> Request:
    """A re-INVITE/UPDATE from the caller (side a) or the callee (side b)."""
    if side == "a":
        frm, to = "<sip:100@demo.test>;tag=caller", f"<sip:101@demo.test>;tag={call.a_tag}"
        call_id = "a-call"
    else:
        leg = call.winner
        assert leg is not None and leg.dialog is not None
        frm = f"<sip:101@demo.test>;tag={leg.dialog.id.remote_tag}"
        to = f"<sip:100@demo.test>;tag={leg.dialog.id.local_tag}"
        call_id = leg.dialog.id.call_id
    head = (
        f"{method} sip:centrala@192.0.2.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKr{cseq}{side}\r\nMax-Forwards: 70\r\n"
        f"From: {frm}\r\nTo: {to}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n"
        "Contact: <sip:x@10.0.0.9:5060>\r\n"
    )
    if body:
        head += "Content-Type: application/sdp\r\n"
    req = parse_message(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert isinstance(req, Request)
    return req


def ack_from_a(call: Call, body: bytes = b"") -> Request:
    ack = INVITE.split(b"Content-Type")[0]
    ack = ack.replace(b"INVITE sip:101@demo.test", b"ACK sip:centrala@192.0.2.1")
    ack = ack.replace(b"2 INVITE", b"2 ACK").replace(
        b"To: <sip:101@demo.test>", f"To: <sip:101@demo.test>;tag={call.a_tag}".encode())
    if body:
        ack += b"Content-Type: application/sdp\r\n"
    req = parse_message(ack + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    assert isinstance(req, Request)
    return req


def sdp(body: bytes) -> SessionDescription:
    return SessionDescription.parse(body)


def answered_call(**media: object) -> tuple[Call, FakeEnv, FakeRelay]:
    call, env, relay = anchored_call(**media)
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    reply(env, 0, 200, "p1", B_SDP)
    call.on_a_ack(ack_from_a(call), 0.1)
    return call, env, relay


# -- the INVITE offer and its answer ---------------------------------------------------------
def test_the_offer_to_b_names_the_switch_and_the_answer_to_a_too() -> None:
    call, env, relay = answered_call()
    (stream,) = relay.streams
    offer = sdp(env.requests[0][0].body)
    assert offer.connection is not None and offer.connection.address == SWITCH_IP
    assert offer.origin.address == SWITCH_IP and offer.origin.username == "-"
    assert offer.media[0].port == stream.ports["b"] and offer.media[0].payload_types == [0]
    answer = sdp(env.responses[-1][1].body)
    assert env.responses[-1][1].status == 200
    assert answer.connection is not None and answer.connection.address == SWITCH_IP
    assert answer.media[0].port == stream.ports["a"]
    assert stream.remotes == {"a": ("10.0.0.1", 4000), "b": ("10.0.0.11", 5000)}
    assert stream.pt_maps == {"a": {0: 0}, "b": {0: 0}} and stream.held == {"a": False, "b": False}
    assert call.sdp_sent == {"a": env.responses[-1][1].body, "b": env.requests[0][0].body}


def test_forks_share_one_b_side_and_the_last_answer_sets_it() -> None:
    call, env, relay = anchored_call()
    call.start(Attempt((target(PHONE1), target(PHONE2)), 20, "extension"), 0.0)
    (stream,) = relay.streams  # one stream: both forks got the same B ports
    offers = [sdp(r.body) for r, _, _ in env.requests]
    assert {o.media[0].port for o in offers} == {stream.ports["b"]}
    assert offers[0].origin.sess_id != offers[1].origin.sess_id  # one o= per leg
    early = B_SDP.replace(b"5000", b"5100")
    reply(env, 0, 183, "p1", early)
    assert env.responses[-1][1].status == 183 and sdp(env.responses[-1][1].body).media[0].port == stream.ports["a"]
    assert stream.remotes["b"] == ("10.0.0.11", 5100)
    reply(env, 1, 200, "p2", B_SDP.replace(b"10.0.0.11", b"10.0.0.12"))
    assert stream.remotes["b"] == ("10.0.0.12", 5000)  # the winner's
    assert env.cancels == [(1, 'SIP;cause=200;text="Call completed elsewhere"')]
    assert call.winner is not None and call.winner.media.fork == 2


@pytest.mark.parametrize("end", ["bye", "cancel", "busy", "ring_timeout", "no_ack", "max_duration"])
def test_ports_are_released_once_however_the_call_ends(end: str) -> None:
    call, env, relay = anchored_call()
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    if end in ("bye", "no_ack", "max_duration"):
        reply(env, 0, 200, "p1", B_SDP)
    if end == "bye":
        call.on_request("a", in_dialog(call, "BYE", b""), 7, 5.0)
    elif end == "cancel":
        call.on_a_cancel(1.0)
    elif end == "busy":
        reply(env, 0, 486, "p1")
    elif end == "ring_timeout":
        env.fire(until=21.0)
    elif end == "no_ack":
        env.fire(until=33.0)
    else:
        call.arm_max_duration(100.0)
        call.on_a_ack(ack_from_a(call), 0.1)
        env.fire(until=101.0)
    assert call.state is CallState.ENDED
    assert relay.closed_calls == [call.ref]
    call.hangup(200.0, "system", 500)  # a late hangup releases nothing twice
    assert relay.closed_calls == [call.ref]


def test_an_exception_in_a_handler_ends_the_call_and_frees_its_ports() -> None:
    call, env, relay = answered_call()

    def broken(*args: object) -> object:
        raise RuntimeError("bug")

    call.media.offer = broken  # type: ignore[method-assign]
    reinvite = in_dialog(call, "INVITE", SDP)
    out = call.guarded(lambda: call.on_request("a", reinvite, 9, 5.0), 5.0)
    assert out == [] and call.state is CallState.ENDED and call.record.cause == 500
    assert relay.closed_calls == [call.ref]
    assert sorted(r.method for r, _, _ in env.requests if r.method == "BYE") == ["BYE", "BYE"]


def test_a_timer_that_raises_ends_the_call() -> None:
    call, env, relay = anchored_call()
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    call.arm("bug", 1.0, lambda: 1 / 0)  # type: ignore[arg-type, return-value]
    env.fire(until=1.0)
    assert call.state is CallState.ENDED and env.responses[-1][1].status == 500
    assert relay.closed_calls == [call.ref] and env.cancels == [(1, None)]


# -- refused SDP ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "status"), [
    (b"v=0\r\no=broken\r\n", 400),  # not SDP
    (SDP.replace(b"RTP/AVP 0", b"RTP/AVP 18").replace(b"t=0 0", b"t=0 0\r\na=rtpmap:18 G729/8000"),
     488),  # no codec the tenant allows
    (SDP.replace(b"IN IP4 10.0.0.1\r\nt=", b"IN IP4 224.0.0.1\r\nt="), 488),  # multicast
])
def test_a_bad_offer_is_refused_to_the_caller_and_nothing_rings(body: bytes, status: int) -> None:
    invite = INVITE.split(b"\r\n\r\n")[0].replace(f"Content-Length: {len(SDP)}".encode(),
                                                   f"Content-Length: {len(body)}".encode())
    call, env, relay = anchored_call(invite + b"\r\n\r\n" + body)
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    assert env.requests == [] and env.responses[-1][1].status == status
    assert call.state is CallState.ENDED and relay.closed_calls == [call.ref]
    assert all(s.closed for s in relay.streams)  # a stream opened for a refused offer is closed


def test_a_fork_whose_extension_shares_no_codec_is_skipped() -> None:
    tenant = {"domain": "demo.test", "name": "Demo", "extensions": [
        {"number": "102", "name": "DECT", "password": "pw", "codecs": ["PCMA"]}]}
    call, env, _ = anchored_call(codecs=["PCMU"], tenants=[tenant])
    call.start(Attempt((target(PHONE1, "102"), target(PHONE2, "101")), 20, "extension"), 0.0)
    assert [dest for _, dest, _ in env.requests] == [PHONE2]
    assert call.state is CallState.RINGING


def test_bad_sdp_in_the_2xx_fails_that_fork_with_502() -> None:
    call, env, relay = anchored_call()
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    out = reply(env, 0, 200, "p1", b"v=0\r\nm=video 0 RTP/AVP 0\r\n")
    assert [o.message.method for o in out if isinstance(o, Send)] == ["ACK"]  # type: ignore[attr-defined]
    assert [r.method for r, _, _ in env.requests] == ["INVITE", "BYE"]
    assert env.responses[-1][1].status == 502 and relay.closed_calls == [call.ref]


def test_bad_sdp_in_a_183_is_not_relayed() -> None:
    call, env, _ = anchored_call()
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    reply(env, 0, 183, "p1", b"garbage")
    assert env.responses[-1][1].status == 180 and env.responses[-1][1].body == b""


# -- re-INVITE, UPDATE, hold ------------------------------------------------------------------------
def test_hold_and_resume_from_the_caller() -> None:
    call, env, relay = answered_call()
    (stream,) = relay.streams
    first = sdp(env.requests[0][0].body)
    hold = SDP.replace(b"t=0 0", b"t=0 0\r\na=sendonly")
    call.on_request("a", in_dialog(call, "INVITE", hold), 11, 5.0)
    relayed, _, owner = env.requests[-1]
    offer = sdp(relayed.body)
    assert offer.media[0].port == stream.ports["b"]  # the same ports again
    assert offer.origin.sess_id == first.origin.sess_id
    assert offer.origin.sess_version == first.origin.sess_version + 1
    assert offer.direction_of(0).value == "sendonly"
    ok = make_response(relayed, 200)
    ok.add("Content-Type", "application/sdp")
    ok.body = B_SDP.replace(b"t=0 0", b"t=0 0\r\na=recvonly")
    owner(ResponseReceived(2, parse_message(bytes(ok)), owner), 5.1)  # type: ignore[operator]
    handle, answer = env.responses[-1]
    assert handle == 11 and answer.status == 200 and sdp(answer.body).direction_of(0).value == "recvonly"
    assert stream.held == {"a": True, "b": True}  # B is held; A sends only
    call.on_request("a", in_dialog(call, "INVITE", SDP, cseq=4), 12, 6.0)
    relayed, _, owner = env.requests[-1]
    assert sdp(relayed.body).origin.sess_version == first.origin.sess_version + 2
    ok = make_response(relayed, 200)
    ok.add("Content-Type", "application/sdp")
    ok.body = B_SDP
    owner(ResponseReceived(3, parse_message(bytes(ok)), owner), 6.1)  # type: ignore[operator]
    assert stream.held == {"a": False, "b": False}


def test_a_legacy_hold_from_the_callee_keeps_the_latch() -> None:
    call, env, relay = answered_call()
    (stream,) = relay.streams
    hold = B_SDP.replace(b"c=IN IP4 10.0.0.11", b"c=IN IP4 0.0.0.0")
    call.on_request("b", in_dialog(call, "INVITE", hold, side="b"), 21, 5.0)
    relayed, dest, owner = env.requests[-1]
    assert dest == Address("udp", "10.0.0.1", 5060)  # to the caller
    offer = sdp(relayed.body)
    assert offer.connection is not None and offer.connection.address == SWITCH_IP
    assert offer.media[0].port == stream.ports["a"] and offer.direction_of(0).value == "sendonly"
    ok = make_response(relayed, 200)
    ok.add("Content-Type", "application/sdp")
    ok.body = SDP.replace(b"t=0 0", b"t=0 0\r\na=recvonly")
    owner(ResponseReceived(2, parse_message(bytes(ok)), owner), 5.1)  # type: ignore[operator]
    assert env.responses[-1][1].status == 200
    assert stream.remotes["b"] == ("10.0.0.11", 5000)  # not 0.0.0.0
    assert stream.held == {"a": True, "b": True}


def test_a_bad_reoffer_gets_488_and_is_not_relayed() -> None:
    call, env, _ = answered_call()
    before = len(env.requests)
    call.on_request("a", in_dialog(call, "UPDATE", b"v=0\r\nbad"), 13, 5.0)
    assert env.responses[-1][0] == 13 and env.responses[-1][1].status == 400
    assert len(env.requests) == before and call.state is CallState.ANSWERED


def test_a_stream_without_our_codecs_is_disabled_and_a_rejected_one_held() -> None:
    call, env, relay = answered_call()
    two = SDP + b"m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\nm=audio 4004 RTP/AVP 0\r\n"
    call.on_request("a", in_dialog(call, "INVITE", two), 11, 5.0)
    relayed, _, owner = env.requests[-1]
    offer = sdp(relayed.body)
    assert [m.port for m in offer.media] == [relay.streams[0].ports["b"], 0, relay.streams[2].ports["b"]]
    assert relay.streams[1].closed == 1  # H264 is no codec of ours: not relayed, ports freed
    ok = make_response(relayed, 200)
    ok.add("Content-Type", "application/sdp")
    ok.body = B_SDP + b"m=video 0 RTP/AVP 96\r\nm=audio 0 RTP/AVP 0\r\n"
    owner(ResponseReceived(2, parse_message(bytes(ok)), owner), 5.1)  # type: ignore[operator]
    answer = sdp(env.responses[-1][1].body)
    assert [m.port for m in answer.media] == [relay.streams[0].ports["a"], 0, 0]
    assert relay.streams[2].held == {"a": True, "b": True}
    assert relay.streams[0].held == {"a": False, "b": False}


def test_an_offerless_reinvite_is_answered_with_the_sdp_last_sent() -> None:
    call, env, _ = answered_call()
    before = len(env.requests)
    call.on_request("b", in_dialog(call, "INVITE", b"", side="b"), 14, 5.0)
    handle, resp = env.responses[-1]
    assert handle == 14 and resp.status == 200 and resp.body == call.sdp_sent["b"]
    assert len(env.requests) == before


# -- an INVITE without SDP --------------------------------------------------------------------------
def test_offerless_invite_offer_in_the_2xx_answer_in_the_ack() -> None:
    invite = INVITE.split(b"Content-Type")[0] + b"Content-Length: 0\r\n\r\n"
    call, env, relay = anchored_call(invite)
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    assert env.requests[0][0].body == b""
    out = reply(env, 0, 200, "p1", B_SDP)
    assert not [o for o in out if isinstance(o, Send)]  # B's ACK waits for A's answer
    (stream,) = relay.streams
    offer = sdp(env.responses[-1][1].body)
    assert offer.media[0].port == stream.ports["a"]
    out = call.on_a_ack(ack_from_a(call, SDP), 0.2)
    (ack,) = [o.message for o in out if isinstance(o, Send)]  # type: ignore[attr-defined]
    assert ack.method == "ACK" and sdp(ack.body).media[0].port == stream.ports["b"]
    assert stream.remotes == {"a": ("10.0.0.1", 4000), "b": ("10.0.0.11", 5000)}


# -- the real relay: ports come back ------------------------------------------------------------------
def test_real_relay_ports_in_use_return_to_zero() -> None:
    loop = asyncio.new_event_loop()
    try:
        relay = MediaRelay(PortAllocator(31600, 31699, "127.0.0.1"), loop=loop)
        call, env, _ = anchored_call(relay=relay)
        call.start(Attempt((target(PHONE1), target(PHONE2)), 20, "extension"), 0.0)
        assert relay.ports_in_use() == 4  # one stream: RTP+RTCP on each side
        reply(env, 0, 200, "p1", B_SDP)
        call.on_request("b", in_dialog(call, "INVITE", B_SDP.replace(b"t=0 0", b"t=0 0\r\na=sendonly"),
                                       side="b"), 5, 1.0)
        assert relay.ports_in_use() == 4  # the re-offer reused them
        call.hangup(2.0, "caller", 200)
        assert relay.ports_in_use() == 0
    finally:
        loop.close()


# -- configuration --------------------------------------------------------------------------------------
def test_media_defaults_and_codec_lists() -> None:
    c = config()
    assert c.media.anchor and c.media.rtp_ports == (20000, 29999) and c.media.advertise is None
    assert config(rtp_ports="30000-30099", codecs=["PCMU", "opus/48000/2"]).media.rtp_ports == (30000, 30099)
    hook = AnchorHook(FakeRelay(), config(codecs=["PCMU"]), local_address)  # type: ignore[arg-type]
    assert [p.name for p in hook.prefs("any", None).codecs] == ["PCMU", "telephone-event", "CN"]


def test_advertise_overrides_the_local_address() -> None:
    hook = AnchorHook(FakeRelay(), config(advertise="203.0.113.7"), local_address)  # type: ignore[arg-type]
    assert hook.address(PHONE1) == "203.0.113.7"
    unspecified = AnchorHook(FakeRelay(), config(), lambda d: ("udp", "0.0.0.0", 5060))  # type: ignore[arg-type]
    assert unspecified.address(Address("udp", "127.0.0.1", 5060)) == "127.0.0.1"


@pytest.mark.parametrize(("where", "text", "message"), [
    ("main", "media:\n  codecs: [PCMU, G7xx]\n", "media.codecs[1]: unknown codec 'G7xx'"),
    ("main", "media:\n  rtp_ports: 30000\n", "media.rtp_ports"),
    ("main", "media:\n  rtp_ports: 5000-4000\n", "need 1024 <= LOW < HIGH"),
    ("main", "media:\n  advertise: pbx.example\n", "is not an IP address"),
    ("tenant", "codecs: [opus/8000]\n", "codecs[0]: opus runs at 48000 Hz, not 8000"),
    ("tenant", "extensions:\n  - {number: 100, name: A, password: pw, codecs: [PCMU, XYZ]}\n",
     "extensions[0].codecs[1]: unknown codec 'XYZ'"),
])
def test_bad_media_settings_are_refused_with_file_and_line(
    tmp_path: Path, where: str, text: str, message: str
) -> None:
    main, tenant = tmp_path / "centrala.yaml", tmp_path / "tenants" / "t.yaml"
    tenant.parent.mkdir()
    main.write_text("listen: [udp:127.0.0.1:5060]\n" + (text if where == "main" else ""))
    tenant.write_text("domain: t.test\nname: T\n" + (text if where == "tenant" else ""))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, env={})
    (issue,) = err.value.issues
    last_line = 1 + text.count("\n") + (0 if where == "main" else 1)
    assert issue.file == (main if where == "main" else tenant), str(issue)
    assert issue.line == last_line and message in issue.message, str(issue)


def test_a_phone_behind_nat_is_latched_from_its_signalling_address() -> None:
    call, env, relay = answered_call()
    (stream,) = relay.streams
    assert stream.sources == {"a": None, "b": None}  # LAN phones: the SDP's address
    call, env, relay = anchored_call(source=Address("udp", "81.2.69.142", 41000))
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    reply(env, 0, 200, "p1", B_SDP)
    (stream,) = relay.streams
    assert stream.remotes["a"] == ("10.0.0.1", 4000)  # the SDP's private address...
    assert stream.sources == {"a": "81.2.69.142", "b": None}  # ...latched from the NAT's
    assert behind_nat("192.168.1.20", Address("udp", "81.2.69.142", 5060)) == "81.2.69.142"
    assert behind_nat("81.2.69.160", Address("udp", "81.2.69.142", 5060)) is None  # public SDP
    assert behind_nat("10.0.0.5", Address("udp", "10.0.0.1", 5060)) is None  # both private
    assert behind_nat("192.168.1.20", Address("tls", "trunk.example", 5061)) is None


def test_leg_is_hashable_per_fork() -> None:
    a = Leg("b", PHONE1, "101", 1)
    assert a != Leg("b", PHONE1, "101", 2) and len({a, Leg("b", PHONE1, "101", 1)}) == 1
