"""SRTP per leg (switch/b2bua/srtp_legs.py) and the relay hooks it uses.

* Through the Call with a fake relay (no sockets): what each leg's SDP says
  and which keys the bridge gets, for every ``encryption`` setting.
* The relay's SRTP hooks on real loopback sockets: an SRTP phone and a plain
  phone bridged both ways, RTP and RTCP (muxed and not), a player's packet
  rewritten before it is protected, DTLS/STUN datagrams handed to a raw
  handler and answered with ``send_raw``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dialplan.loader import ConfigError, load_config
from media.dtls import DtlsCertificate, DtlsRole, DtlsSession, DtlsState, Fingerprint
from media.ports import PortAllocator
from media.relay import MediaRelay, Rewriter, Transform
from media.rtp import RtcpReceiverReport, RtpPacket, read_seq_ts_ssrc
from media.sdes import CryptoAttribute, offer_crypto
from media.sdp import SdpError, SessionDescription
from media.srtp import SrtpContext, SrtpDirection, SrtpKeys, SrtpSide
from switch.b2bua.call import Attempt, CallState
from switch.b2bua.media import Leg
from switch.b2bua.srtp_legs import Encryption, SrtpLegs, srtp_transform
from tests.unit.test_anchor import B_SDP, FakeRelay, FakeStream, ack_from_a, anchored_call
from tests.unit.test_call import INVITE, PHONE1, SDP, reply, target
from tests.unit.test_relay import recv as recv_from
from tests.unit.test_relay import udp

HOST = "127.0.0.1"
LOW, HIGH = 31500, 31599
WAIT_S = 1.0

A_KEY = offer_crypto()[0]  # what phone A offers: AES_CM_128_HMAC_SHA1_80, tag 1
SAVP_SDP = SDP.replace(b"RTP/AVP 0", b"RTP/SAVP 0") + f"a=crypto:{A_KEY}\r\n".encode()
BEST_EFFORT_SDP = SDP + f"a=crypto:{A_KEY}\r\n".encode()  # RTP/AVP with a=crypto


# -- through the Call, fake relay -----------------------------------------------------------
@dataclass
class FakeSrtpStream(FakeStream):
    transforms: dict[str, Transform | None] = field(default_factory=dict)
    raw: dict[str, object] = field(default_factory=dict)

    def set_transform(self, side: str, transform: Transform | None) -> None:
        self.transforms[side] = transform

    def set_raw_handler(self, side: str, handler: object) -> None:
        self.raw[side] = handler

    def send_raw(self, side: str, data: bytes, addr: object = None) -> bool:
        return True


@dataclass
class FakeSrtpRelay(FakeRelay):
    def open(self, call_ref: object, mux_a: bool = False, mux_b: bool = False,
             udptl: bool = False) -> FakeStream:
        stream = FakeSrtpStream({"a": self.next_port, "b": self.next_port + 2}, udptl=udptl)
        self.next_port += 4
        self.streams.append(stream)
        return stream


def tenant(**encryption: str) -> dict[str, object]:
    """demo.test with extensions 100 (the caller) and 101, each with its setting."""
    return {"domain": "demo.test", "name": "Demo", "extensions": [
        {"number": n, "name": n, "password": "pw", **({"encryption": encryption[f"e{n}"]}
                                                      if f"e{n}" in encryption else {})}
        for n in ("100", "101")]}


def invite_with(body: bytes) -> bytes:
    head = INVITE.split(b"\r\n\r\n")[0].replace(f"Content-Length: {len(SDP)}".encode(),
                                                 f"Content-Length: {len(body)}".encode())
    return head + b"\r\n\r\n" + body


def crypto_lines(body: bytes) -> list[CryptoAttribute]:
    sd = SessionDescription.parse(body)
    return [CryptoAttribute.parse(v) for m in sd.media for v in m.attribute_values("crypto")]


def call_through(a_sdp: bytes, b_answer: bytes = B_SDP, **encryption: str
                 ) -> tuple[object, object, FakeSrtpRelay]:
    relay = FakeSrtpRelay()
    call, env, _ = anchored_call(invite_with(a_sdp), relay=relay, tenants=[tenant(**encryption)])
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    if env.requests:
        reply(env, 0, 200, "p1", b_answer)
        call.on_a_ack(ack_from_a(call), 0.1)
    return call, env, relay


def test_sdes_caller_plain_callee_each_leg_its_own_keys() -> None:
    call, env, relay = call_through(SAVP_SDP)
    offer_to_b = env.requests[0][0].body  # type: ignore[attr-defined]
    assert b"a=crypto" not in offer_to_b and b"m=audio" in offer_to_b
    assert SessionDescription.parse(offer_to_b).media[0].proto == "RTP/AVP"
    answer_to_a = env.responses[-1][1]  # type: ignore[attr-defined]
    assert answer_to_a.status == 200
    assert SessionDescription.parse(answer_to_a.body).media[0].proto == "RTP/SAVP"
    (ours,) = crypto_lines(answer_to_a.body)
    assert ours.tag == A_KEY.tag and ours.profile is A_KEY.profile
    assert ours.keys[0].master != A_KEY.keys[0].master  # Centrala's key, not A's
    session = call.media  # type: ignore[attr-defined]
    side_a = session.srtp.sides[(0, "a")]
    assert side_a.receive.keys == A_KEY.srtp_keys and side_a.send.keys == ours.srtp_keys
    assert (0, "b") not in session.srtp.sides
    (stream,) = relay.streams
    assert isinstance(stream, FakeSrtpStream)
    transform = stream.transforms["a"]
    assert transform is not None and stream.transforms["b"] is None
    protected = SrtpContext(A_KEY.srtp_keys, SrtpDirection.SEND).protect(rtp(1))
    assert protected is not None and transform.decode_rtp(memoryview(protected)) == rtp(1)
    assert call.state is CallState.ANSWERED  # type: ignore[attr-defined]


def test_best_effort_crypto_in_rtp_avp_is_answered_in_rtp_avp() -> None:
    _, env, _ = call_through(BEST_EFFORT_SDP)
    answer = env.responses[-1][1].body  # type: ignore[attr-defined]
    assert SessionDescription.parse(answer).media[0].proto == "RTP/AVP"
    assert len(crypto_lines(answer)) == 1 and b"a=crypto" not in env.requests[0][0].body  # type: ignore[attr-defined]


def test_plain_call_wires_nothing() -> None:
    _, env, relay = call_through(SDP)
    (stream,) = relay.streams
    assert isinstance(stream, FakeSrtpStream)
    assert stream.transforms == {}
    assert b"a=crypto" not in env.responses[-1][1].body  # type: ignore[attr-defined]


def b_answer_with(line: CryptoAttribute | None) -> bytes:
    body = B_SDP.replace(b"RTP/AVP 0", b"RTP/SAVP 0")
    return body + (f"a=crypto:{line}\r\n".encode() if line else b"")


def test_required_callee_is_offered_srtp_only_and_its_answer_keys_side_b() -> None:
    relay = FakeSrtpRelay()
    call, env, _ = anchored_call(relay=relay, tenants=[tenant(e101="required")])
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    offer = env.requests[0][0].body
    assert SessionDescription.parse(offer).media[0].proto == "RTP/SAVP"
    offered = crypto_lines(offer)
    assert len(offered) == 2 and {o.profile.sdes_name for o in offered} == {
        "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"}
    b_key = CryptoAttribute.generate(offered[1].tag, offered[1].profile)
    reply(env, 0, 200, "p1", b_answer_with(b_key))
    answer_to_a = env.responses[-1][1]
    assert answer_to_a.status == 200 and b"a=crypto" not in answer_to_a.body
    assert SessionDescription.parse(answer_to_a.body).media[0].proto == "RTP/AVP"
    side_b = call.media.srtp.sides[(0, "b")]  # type: ignore[attr-defined]
    assert side_b.receive.keys == b_key.srtp_keys and side_b.send.keys == offered[1].srtp_keys


def test_required_callee_answering_without_crypto_fails_the_fork() -> None:
    call, env, _ = anchored_call(relay=FakeSrtpRelay(), tenants=[tenant(e101="required")])
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    reply(env, 0, 200, "p1", b_answer_with(None))
    assert [r.method for r, _, _ in env.requests] == ["INVITE", "ACK", "BYE"] or [
        r.method for r, _, _ in env.requests] == ["INVITE", "BYE"]
    assert env.responses[-1][1].status >= 400 and call.state is CallState.ENDED


@pytest.mark.parametrize(("body", "encryption"), [
    (SDP, {"e100": "required"}),  # the caller must encrypt and offers plain RTP
    (SAVP_SDP, {"e100": "off"}),  # the caller may not and offers RTP/SAVP
    (SDP.replace(b"RTP/AVP 0", b"RTP/SAVP 0"), {}),  # RTP/SAVP without a usable a=crypto
    (SDP.replace(b"RTP/AVP 0", b"UDP/TLS/RTP/SAVP 0"), {}),  # DTLS-SRTP without a=fingerprint
])
def test_offers_the_callers_setting_refuses_get_488(body: bytes, encryption: dict[str, str]
                                                    ) -> None:
    call, env, relay = call_through(body, **encryption)
    assert env.requests == [] and env.responses[-1][1].status == 488  # type: ignore[attr-defined]
    assert call.state is CallState.ENDED and all(s.closed for s in relay.streams)  # type: ignore[attr-defined]


def test_encryption_off_ignores_best_effort_crypto() -> None:
    _, env, relay = call_through(BEST_EFFORT_SDP, e100="off")
    assert b"a=crypto" not in env.responses[-1][1].body  # type: ignore[attr-defined]
    assert relay.streams[0].transforms == {}  # type: ignore[attr-defined]


def test_reinvite_towards_an_srtp_caller_stays_srtp_and_release_forgets_keys() -> None:
    call, env, _ = call_through(SAVP_SDP)
    legs = call.media.srtp  # type: ignore[attr-defined]
    b_leg = call.winner.media  # type: ignore[attr-defined]
    a_leg = call.a_media  # type: ignore[attr-defined]
    keyed = legs.offer(b_leg, a_leg, SessionDescription.parse(B_SDP)).media[0]
    assert keyed.proto == "RTP/SAVP" and len(keyed.attribute_values("crypto")) == 2
    call.media.release()  # type: ignore[attr-defined]
    assert legs.sides == {} and legs._pending == {}


def test_same_keys_again_keep_the_contexts() -> None:
    legs = SrtpLegs("c", lambda leg: Encryption.OPTIONAL)
    a, b = Leg("a", PHONE1), Leg("b", PHONE1, "101", 1)
    legs.offer(a, b, SessionDescription.parse(SAVP_SDP))
    legs.answer(b, SessionDescription.parse(B_SDP))  # a 183
    first = legs.sides[(0, "a")]
    legs.answer(b, SessionDescription.parse(B_SDP))  # the 200 for the same offer
    assert legs.sides[(0, "a")] is first
    with pytest.raises(SdpError):
        legs.answer(Leg("b", PHONE1, "102", 2), SessionDescription.parse(B_SDP))


def test_encryption_defaults_and_bad_values_with_file_and_line(tmp_path: Path) -> None:
    main, tenant_file = tmp_path / "centrala.yaml", tmp_path / "tenants" / "t.yaml"
    tenant_file.parent.mkdir()
    main.write_text("listen: [udp:127.0.0.1:5060]\n")
    tenant_file.write_text(
        "domain: t.test\nname: T\nextensions:\n  - {number: 100, name: A, password: pw}\n"
        "trunks:\n  - {name: carrier, host: 192.0.2.9}\n")
    config = load_config(tmp_path, env={})
    assert config.tenants[0].extensions[0].encryption == "optional"
    assert config.tenants[0].trunks[0].encryption == "off"
    tenant_file.write_text(
        "domain: t.test\nname: T\nextensions:\n"
        "  - {number: 100, name: A, password: pw, encryption: always}\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, env={})
    (issue,) = err.value.issues
    assert issue.file == tenant_file and issue.line == 4, str(issue)
    assert "extensions[0].encryption" in issue.message, str(issue)


# -- the relay hooks on loopback ----------------------------------------------------------
async def recv(sock: socket.socket) -> bytes:
    return (await recv_from(sock))[0]


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for s in made:
        s.close()


@pytest.fixture
async def relay() -> AsyncIterator[MediaRelay]:
    engine = MediaRelay(PortAllocator(LOW, HIGH, HOST))
    yield engine
    engine.close()
    assert engine.ports_in_use() == 0


def rtp(seq: int, pt: int = 0, ssrc: int = 0x1111) -> bytes:
    return bytes(RtpPacket(pt, 0, seq, seq * 160, ssrc, payload=bytes([seq & 0xFF]) * 160))


KEY_A = SrtpKeys(A_KEY.profile, bytes(range(30)))  # phone A's sending key
KEY_US = SrtpKeys(A_KEY.profile, bytes(range(30, 60)))  # ours towards A


@dataclass
class Bridged:
    """Phone a speaks SRTP (KEY_A; it decrypts with KEY_US), phone b plain RTP."""

    stream: object
    a: socket.socket
    b: socket.socket
    to_a: tuple[str, int]
    to_b: tuple[str, int]
    phone_send: SrtpContext = field(default_factory=lambda: SrtpContext(KEY_A, SrtpDirection.SEND))
    phone_recv: SrtpContext = field(
        default_factory=lambda: SrtpContext(KEY_US, SrtpDirection.RECEIVE))


def bridged(relay: MediaRelay, sockets: list[socket.socket], mux_a: bool = False) -> Bridged:
    stream = relay.open("c", mux_a=mux_a)
    a, b = udp(), udp()
    sockets += [a, b]
    stream.set_remote("a", a.getsockname(), a.getsockname() if mux_a else None)
    stream.set_remote("b", b.getsockname())
    stream.set_transform("a", srtp_transform(SrtpSide.of(KEY_A, KEY_US)))
    return Bridged(stream, a, b, (HOST, stream.local("a")[1]), (HOST, stream.local("b")[1]))


async def test_srtp_side_bridged_to_a_plain_side_both_ways(
    relay: MediaRelay, sockets: list[socket.socket]
) -> None:
    c = bridged(relay, sockets)
    stream = c.stream
    stream.set_pt_map("a", {0: 8})  # type: ignore[attr-defined]
    protected = c.phone_send.protect(rtp(1))
    assert protected is not None
    c.a.sendto(protected, c.to_a)
    got = await recv(c.b)
    assert got == rtp(1, pt=8)  # decrypted, then the PT map applied
    c.b.sendto(rtp(2, ssrc=0x2222), c.to_b)
    got = await recv(c.a)
    assert got != rtp(2, ssrc=0x2222) and c.phone_recv.unprotect(got) == rtp(2, ssrc=0x2222)
    c.a.sendto(b"\x80\x00" + protected[2:], c.to_a)  # tampered: dropped by the bridge
    c.a.sendto(c.phone_send.protect(rtp(3)) or b"", c.to_a)
    assert await recv(c.b) == rtp(3, pt=8)


async def test_watchers_and_taps_see_plain_rtp_and_tapped_packets_are_protected(
    relay: MediaRelay, sockets: list[socket.socket]
) -> None:
    c = bridged(relay, sockets)
    stream = c.stream
    seen: list[bytes] = []
    stream.set_watcher("a", lambda p: seen.append(bytes(p)))  # type: ignore[attr-defined]
    stream.set_tap("b", lambda p: stream.forward("b", bytearray(p)))  # type: ignore[attr-defined]
    stream.set_pt_map("b", {0: 8})  # type: ignore[attr-defined]
    c.a.sendto(c.phone_send.protect(rtp(5)) or b"", c.to_a)
    assert await recv(c.b) == rtp(5) and seen == [rtp(5)]  # recording/DTMF see plain RTP
    c.b.sendto(rtp(6, ssrc=0x2222), c.to_b)  # through a tap (transcoding), then protected
    assert c.phone_recv.unprotect(await recv(c.a)) == rtp(6, pt=8, ssrc=0x2222)


async def test_player_packets_are_rewritten_then_protected(
    relay: MediaRelay, sockets: list[socket.socket]
) -> None:
    c = bridged(relay, sockets)
    c.stream.set_rewriter("a", Rewriter(0xABCD))  # type: ignore[attr-defined]
    assert c.stream.send("a", bytearray(rtp(7, ssrc=0x5555)))  # type: ignore[attr-defined]
    plain = c.phone_recv.unprotect(await recv(c.a))
    assert plain is not None and read_seq_ts_ssrc(plain)[2] == 0xABCD


@pytest.mark.parametrize("mux", [False, True])
async def test_srtcp_is_bridged_muxed_or_not(relay: MediaRelay, sockets: list[socket.socket],
                                             mux: bool) -> None:
    c = bridged(relay, sockets, mux_a=mux)
    report = bytes(RtcpReceiverReport(0x1111))
    protected = c.phone_send.protect_rtcp(report)
    assert protected is not None
    rtcp_port = c.to_a[1] if mux else c.stream.local("a")[2]  # type: ignore[attr-defined]
    c.a.sendto(protected, (HOST, rtcp_port))
    b_rtcp = udp()
    sockets.append(b_rtcp)
    c.stream.set_remote("b", c.b.getsockname(), b_rtcp.getsockname())  # type: ignore[attr-defined]
    c.a.sendto(c.phone_send.protect_rtcp(report) or b"", (HOST, rtcp_port))
    assert await recv(b_rtcp) == report
    b_report = bytes(RtcpReceiverReport(0x2222))
    c.b.sendto(b_report, (HOST, c.stream.local("b")[2]))  # type: ignore[attr-defined]
    a_rtcp = c.a if mux else None
    if a_rtcp is None:
        a_rtcp = udp()
        sockets.append(a_rtcp)
        c.stream.set_remote("a", c.a.getsockname(), a_rtcp.getsockname())  # type: ignore[attr-defined]
        c.b.sendto(b_report, (HOST, c.stream.local("b")[2]))  # type: ignore[attr-defined]
    got = await recv(a_rtcp)
    assert got != b_report and c.phone_recv.unprotect_rtcp(got) == b_report


@pytest.mark.parametrize("mux", [False, True])
async def test_rtcp_tap_takes_rtcp_and_send_rtcp_sends_it(
    relay: MediaRelay, sockets: list[socket.socket], mux: bool
) -> None:
    stream = relay.open("c", mux_a=mux)
    a, b, a_rtcp, b_rtcp = udp(), udp(), udp(), udp()
    sockets += [a, b, a_rtcp, b_rtcp]
    stream.set_remote("a", a.getsockname(), a.getsockname() if mux else a_rtcp.getsockname())
    stream.set_remote("b", b.getsockname(), b_rtcp.getsockname())
    taken: list[bytes] = []
    stream.set_rtcp_tap("a", lambda p: taken.append(bytes(p)))
    report = bytes(RtcpReceiverReport(0x1111))
    (a if mux else a_rtcp).sendto(report, (HOST, stream.local("a")[2]))
    a.sendto(rtp(1), (HOST, stream.local("a")[1]))  # RTP still relayed, after the RTCP
    assert await recv(b) == rtp(1) and taken == [report]
    assert stream.send_rtcp("b", report) and await recv(b_rtcp) == report


async def test_dtls_and_stun_reach_the_raw_handler_and_send_raw_answers(
    relay: MediaRelay, sockets: list[socket.socket]
) -> None:
    stream = relay.open("c")
    peer = udp()
    sockets.append(peer)
    stream.set_remote("a", peer.getsockname())
    seen: list[tuple[bytes, tuple[object, ...]]] = []
    stream.set_raw_handler("a", lambda data, addr: seen.append((bytes(data), addr)))
    to_a = (HOST, stream.local("a")[1])
    hello = bytes([22, 0xFE, 0xFD]) + bytes(20)  # a DTLS handshake record's start
    peer.sendto(hello, to_a)
    peer.sendto(b"\x00\x01" + bytes(18), to_a)  # a STUN binding request
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(WAIT_S):
        while len(seen) < 2:
            await asyncio.sleep(0.001)
    assert [d for d, _ in seen] == [hello, b"\x00\x01" + bytes(18)]
    assert seen[0][1] == peer.getsockname() and stream.counters("a").dropped == 0
    assert stream.send_raw("a", b"\x16reply", seen[0][1])
    assert await recv(peer) == b"\x16reply"
    stream.set_raw_handler("a", None)
    peer.sendto(hello, to_a)
    async with asyncio.timeout(WAIT_S):
        while stream.counters("a").dropped == 0:
            await asyncio.sleep(0.001)
    assert loop is asyncio.get_running_loop() and len(seen) == 2


async def test_unwired_stream_relays_plain_again(relay: MediaRelay,
                                                 sockets: list[socket.socket]) -> None:
    c = bridged(relay, sockets)
    c.stream.set_transform("a", None)  # type: ignore[attr-defined]
    c.a.sendto(rtp(4), c.to_a)
    assert await recv(c.b) == rtp(4)


# -- DTLS-SRTP on loopback: a DtlsSession plays the phone -------------------------------------
def dtls_offer(phone_cert: DtlsCertificate, rtp_port: int, setup: str = "actpass") -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
            f"a=fingerprint:{phone_cert.fingerprint()}\r\n"
            f"m=audio {rtp_port} UDP/TLS/RTP/SAVP 0\r\na=setup:{setup}\r\na=rtcp-mux\r\n").encode()


async def pump(phone: DtlsSession, sock: socket.socket, relay_addr: tuple[str, int],
               done: Callable[[], bool]) -> None:
    """Answer every DTLS datagram the switch sends until ``done()``."""
    async with asyncio.timeout(3 * WAIT_S):
        while not done():
            try:
                data = await recv(sock)
            except TimeoutError:
                continue
            for out in phone.receive(data):
                sock.sendto(out, relay_addr)


@dataclass
class DtlsCall:
    """Phone a offers DTLS-SRTP (``phone`` plays its side of the handshake, with
    ``presented``, its own certificate or another), phone b is plain."""

    legs: SrtpLegs
    stream: object
    phone: DtlsSession
    phone_a: socket.socket
    phone_b: socket.socket
    to_a: tuple[str, int]
    answer: SessionDescription
    offer_to_b: SessionDescription


def dtls_call(relay: MediaRelay, sockets: list[socket.socket],
              presented: DtlsCertificate | None = None) -> DtlsCall:
    phone_cert, phone_a, phone_b = DtlsCertificate.generate(), udp(), udp()
    sockets += [phone_a, phone_b]
    legs = SrtpLegs("c", lambda leg: Encryption.OPTIONAL)
    a, b = Leg("a", PHONE1), Leg("b", PHONE1, "101", 1)
    offer = SessionDescription.parse(dtls_offer(phone_cert, phone_a.getsockname()[1]))
    to_b = legs.offer(a, b, offer)
    answer = legs.answer(b, SessionDescription.parse(B_SDP))
    (ours,) = answer.media[0].attribute_values("fingerprint")
    assert ours == str(legs.certificate.fingerprint()) != str(phone_cert.fingerprint())
    stream = relay.open("c", mux_a=True)
    stream.set_remote("a", phone_a.getsockname())
    stream.set_remote("b", phone_b.getsockname())
    phone = DtlsSession(presented or phone_cert, DtlsRole.SERVER, [Fingerprint.parse(ours)])
    legs.wire({0: stream})
    return DtlsCall(legs, stream, phone, phone_a, phone_b, (HOST, stream.local("a")[1]),
                    answer, to_b)


async def test_dtls_srtp_caller_bridged_to_a_plain_callee(
    relay: MediaRelay, sockets: list[socket.socket]
) -> None:
    c = dtls_call(relay, sockets)
    assert c.offer_to_b.media[0].proto == "RTP/AVP"
    assert not c.offer_to_b.media[0].has_attribute("fingerprint")
    assert not c.offer_to_b.has_attribute("fingerprint")
    assert c.answer.media[0].attribute("setup") == "active"
    legs, phone = c.legs, c.phone
    link = legs.links[(0, "a")]
    assert link.timer is not None  # the ClientHello is out and its retransmission armed
    c.phone_a.sendto(rtp(1), c.to_a)  # plain RTP before the keys: dropped, not relayed
    await pump(phone, c.phone_a, c.to_a, lambda: (0, "a") in legs.sides)
    assert phone.state is DtlsState.CONNECTED and link.timer is None

    phone_send, phone_recv = phone.srtp_keys()
    protected = SrtpContext(phone_send, SrtpDirection.SEND).protect(rtp(2))
    assert protected is not None
    c.phone_a.sendto(protected, c.to_a)
    assert await recv(c.phone_b) == rtp(2)
    c.phone_b.sendto(rtp(3, ssrc=0x2222), (HOST, c.stream.local("b")[1]))  # type: ignore[attr-defined]
    got = await recv(c.phone_a)
    assert SrtpContext(phone_recv, SrtpDirection.RECEIVE).unprotect(got) == rtp(3, ssrc=0x2222)

    legs.release()  # close_notify to the phone, no timer left
    assert legs.links == {} and link.timer is None and link.session.state is DtlsState.CLOSED
    phone.receive(await recv(c.phone_a))
    assert phone.state is DtlsState.CLOSED


async def test_dtls_with_the_wrong_fingerprint_relays_nothing(
    relay: MediaRelay, sockets: list[socket.socket]
) -> None:
    c = dtls_call(relay, sockets, presented=DtlsCertificate.generate())
    link = c.legs.links[(0, "a")]
    await pump(c.phone, c.phone_a, c.to_a, lambda: link.session.state is DtlsState.FAILED)
    assert (0, "a") not in c.legs.sides and "a=fingerprint" in (link.session.failure or "")
    c.legs.release()


def test_dtls_offer_to_a_leg_with_encryption_off_or_without_fingerprint_is_488() -> None:
    cert = DtlsCertificate.generate()
    a, b = Leg("a", PHONE1), Leg("b", PHONE1, "101", 1)
    off = SrtpLegs("c", lambda leg: Encryption.OFF)
    with pytest.raises(SdpError) as err:
        off.offer(a, b, SessionDescription.parse(dtls_offer(cert, 4000)))
    assert err.value.status == 488
    on = SrtpLegs("c", lambda leg: Encryption.OPTIONAL)
    no_fingerprint = dtls_offer(cert, 4000).replace(
        f"a=fingerprint:{cert.fingerprint()}\r\n".encode(), b"")
    with pytest.raises(SdpError):
        on.offer(a, b, SessionDescription.parse(no_fingerprint))
    with pytest.raises(SdpError):
        on.offer(a, b, SessionDescription.parse(dtls_offer(cert, 4000, "holdconn")))


async def test_dtls_reoffers_either_way_keep_the_association() -> None:
    cert = DtlsCertificate.generate()
    legs = SrtpLegs("c", lambda leg: Encryption.OPTIONAL)
    a, b = Leg("a", PHONE1), Leg("b", PHONE1, "101", 1)
    stream = FakeSrtpStream({"a": 40000, "b": 40002})
    offer = SessionDescription.parse(dtls_offer(cert, 4000))
    legs.offer(a, b, offer)
    legs.answer(b, SessionDescription.parse(B_SDP))
    legs.wire({0: stream})
    link = legs.links[(0, "a")]
    assert stream.raw["a"] is not None and stream.transforms["a"] is not None  # DROP_ALL
    assert stream.transforms["b"] is None

    legs.offer(a, b, offer)  # a session refresh from the DTLS phone
    again = legs.answer(b, SessionDescription.parse(B_SDP))
    assert again.media[0].attribute("setup") == "active" and legs.links[(0, "a")] is link

    to_a = legs.offer(b, a, SessionDescription.parse(B_SDP)).media[0]  # a re-INVITE from b
    assert to_a.proto == "UDP/TLS/RTP/SAVP" and to_a.attribute("setup") == "actpass"
    assert to_a.attribute("fingerprint") == str(legs.certificate.fingerprint())
    answer_from_a = dtls_offer(cert, 4000, "passive")  # a keeps being the DTLS server
    back_to_b = legs.answer(a, SessionDescription.parse(answer_from_a))
    assert legs.links[(0, "a")] is link and not back_to_b.media[0].has_attribute("fingerprint")
    legs.release()
    assert link.session.state is DtlsState.CLOSED and stream.raw["a"] is None


def test_sdes_reoffer_keeps_our_key_and_sending_context() -> None:
    legs = SrtpLegs("c", lambda leg: Encryption.OPTIONAL)
    a, b = Leg("a", PHONE1), Leg("b", PHONE1, "101", 1)

    def exchange(body: bytes) -> str:
        legs.offer(a, b, SessionDescription.parse(body))
        answer = legs.answer(b, SessionDescription.parse(B_SDP))
        (line,) = answer.media[0].attribute_values("crypto")
        return line

    first = exchange(SAVP_SDP)
    side = legs.sides[(0, "a")]
    assert exchange(SAVP_SDP) == first and legs.sides[(0, "a")] is side  # a session refresh
    new_key = CryptoAttribute.generate(1, A_KEY.profile)
    rekeyed = SDP.replace(b"RTP/AVP 0", b"RTP/SAVP 0") + f"a=crypto:{new_key}\r\n".encode()
    assert exchange(rekeyed) == first  # the phone re-keys, we do not
    now = legs.sides[(0, "a")]
    assert now.send is side.send and now.receive is not side.receive
    assert now.receive.keys == new_key.srtp_keys
