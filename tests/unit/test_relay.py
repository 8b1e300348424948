"""Port allocation, the media relay on real loopback sockets, and the SSRC/seq/ts rewriter.

No sleeps to prove that nothing arrived: a packet that must be dropped is
sent just before one that must pass, on the same relay socket, so if the
first were relayed it would be received first.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import uvloop

from media.ports import PortAllocator, PortsExhausted
from media.relay import DROP_ALL, MediaRelay, RelayStream, Rewriter
from media.rtp import RtcpReceiverReport, RtpPacket, read_seq_ts_ssrc
from media.udptl import FecInfo, UdptlPacket

HOST = "127.0.0.1"
OTHER_IP = "127.0.0.2"  # another host as far as the relay can tell
LOW, HIGH = 31200, 31399
PHONE_LOW, PHONE_HIGH = 31400, 31499  # phones that need an even/odd pair of their own
WAIT_S = 1.0  # bound on every wait for a packet that must arrive


def rtp_packet(seq: int, pt: int = 0, ssrc: int = 0x1111, ts: int | None = None,
               marker: int = 0) -> bytes:
    ts = seq * 160 if ts is None else ts
    return bytes(RtpPacket(pt, marker, seq, ts, ssrc, payload=bytes([seq & 0xFF]) * 160))


RTCP = bytes(RtcpReceiverReport(0x1111))


def udp(host: str = HOST, family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind((host, 0))
    return sock


async def recv(sock: socket.socket) -> tuple[bytes, tuple[str, int]]:
    """The next datagram on ``sock`` (``loop.sock_recvfrom`` is missing from uvloop)."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[tuple[bytes, tuple[str, int]]] = loop.create_future()

    def readable() -> None:
        if not got.done():
            try:
                got.set_result(sock.recvfrom(2048))
            except BlockingIOError:
                pass

    loop.add_reader(sock.fileno(), readable)
    try:
        return await asyncio.wait_for(got, WAIT_S)
    finally:
        loop.remove_reader(sock.fileno())


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await asyncio.sleep(0.001)


def port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for s in made:
        s.close()


@pytest.fixture
def new_socket(sockets: list[socket.socket]) -> Callable[..., socket.socket]:
    def make(host: str = HOST, family: int = socket.AF_INET) -> socket.socket:
        sockets.append(udp(host, family))
        return sockets[-1]
    return make


@pytest.fixture
async def relay() -> AsyncIterator[MediaRelay]:
    engine = MediaRelay(PortAllocator(LOW, HIGH, HOST), relatch_silence_s=0.05)
    yield engine
    engine.close()
    assert engine.ports_in_use() == 0  # the port-leak check, after every test


class Call:
    """A stream with a phone on each side whose SDP addresses are set."""

    def __init__(self, stream: RelayStream, a: socket.socket, b: socket.socket) -> None:
        self.stream, self.a, self.b = stream, a, b
        self.to_a = (HOST, stream.local("a")[1])  # where phone a sends
        self.to_b = (HOST, stream.local("b")[1])
        stream.set_remote("a", a.getsockname())
        stream.set_remote("b", b.getsockname())


@pytest.fixture
def call(relay: MediaRelay, new_socket: Callable[..., socket.socket]) -> Call:
    return Call(relay.open("call-1"), new_socket(), new_socket())


# -- allocator -------------------------------------------------------------------------
def test_allocator_even_odd_and_mux() -> None:
    ports = PortAllocator(LOW + 1, LOW + 10, HOST)  # an odd low is rounded up
    pair = ports.allocate()
    assert pair.port % 2 == 0 and pair.rtcp_port == pair.port + 1
    assert pair.rtp.getsockname()[1] == pair.port and pair.rtcp is not None
    assert pair.rtcp.getsockname()[1] == pair.port + 1
    assert not pair.rtp.getblocking()
    assert pair.rtp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0
    mux = ports.allocate(mux=True)
    assert mux.rtcp is None and mux.rtcp_port == mux.port and mux.port != pair.port
    assert ports.in_use() == 3
    for p in (pair, mux, pair):  # release is idempotent
        ports.release(p)
    assert ports.in_use() == 0


def test_allocator_exhaustion_is_a_clear_error() -> None:
    ports = PortAllocator(LOW, LOW + 3, HOST)  # two slots
    held = [ports.allocate(), ports.allocate(mux=True)]
    with pytest.raises(PortsExhausted, match=f"{LOW}-{LOW + 3}") as info:
        ports.allocate()
    assert info.value.status == 503
    ports.release(held[0])
    again = ports.allocate()
    assert again.port == LOW
    for p in (again, held[1]):
        ports.release(p)
    assert ports.in_use() == 0


def test_allocator_skips_ports_taken_by_others(new_socket: Callable[..., socket.socket]
                                               ) -> None:
    taken_rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken_rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        taken_rtp.bind((HOST, LOW))  # the first slot's RTP port
        taken_rtcp.bind((HOST, LOW + 3))  # the second slot's RTCP port
        ports = PortAllocator(LOW, LOW + 7, HOST)
        pair = ports.allocate()
        assert pair.port == LOW + 4
        assert ports.in_use() == 2  # nothing half-bound is left behind
        ports.release(pair)
    finally:
        taken_rtp.close()
        taken_rtcp.close()


def test_allocator_rejects_empty_range() -> None:
    with pytest.raises(ValueError):
        PortAllocator(LOW + 1, LOW + 2, HOST)


def test_allocator_round_robin() -> None:
    ports = PortAllocator(LOW, LOW + 7, HOST)
    first = ports.allocate()
    ports.release(first)
    second = ports.allocate()
    assert second.port == first.port + 2  # a just-freed port is not reused at once
    ports.release(second)


# -- relay -----------------------------------------------------------------------------
async def test_relays_both_directions(call: Call) -> None:
    call.a.sendto(rtp_packet(1), call.to_a)
    data, source = await recv(call.b)
    assert data == rtp_packet(1) and source == (HOST, call.stream.local("b")[1])
    call.b.sendto(rtp_packet(2, ssrc=2), call.to_b)
    data, source = await recv(call.a)
    assert data == rtp_packet(2, ssrc=2) and source == call.to_a
    counters = call.stream.counters("a")
    assert (counters.packets_in, counters.bytes_in, counters.packets_out) == (1, 172, 1)
    assert counters.dropped == 0
    assert call.stream.latched("a")[0] == call.a.getsockname()


async def test_local_addresses(relay: MediaRelay) -> None:
    stream = relay.open("c", mux_b=True)
    ip, rtp_port, rtcp_port = stream.local("a")
    assert ip == HOST and rtp_port % 2 == 0 and rtcp_port == rtp_port + 1
    assert stream.local("b")[1] == stream.local("b")[2]
    assert relay.ports_in_use() == 3
    assert relay.streams("c") == [stream]


async def test_latches_to_the_nat_port(call: Call, new_socket: Callable[..., socket.socket]
                                       ) -> None:
    behind_nat = new_socket()  # same IP as the SDP says, another port
    behind_nat.sendto(rtp_packet(1), call.to_a)
    await recv(call.b)
    call.b.sendto(rtp_packet(2), call.to_b)
    data, _ = await recv(behind_nat)
    assert data == rtp_packet(2)
    assert call.stream.latched("a")[0] == behind_nat.getsockname()


async def test_packets_from_another_ip_are_dropped(
    call: Call, new_socket: Callable[..., socket.socket]
) -> None:
    intruder = new_socket(OTHER_IP)
    intruder.sendto(rtp_packet(66), call.to_a)  # before anything latched
    call.a.sendto(rtp_packet(1), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(1)
    intruder.sendto(rtp_packet(67), call.to_a)  # after
    call.a.sendto(rtp_packet(2), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(2)
    intruder.sendto(rtp_packet(68), call.to_b)  # nor does it draw media out of side b
    call.b.sendto(rtp_packet(3), call.to_b)
    data, _ = await recv(call.a)
    assert data == rtp_packet(3)
    assert call.stream.counters("a").dropped == 2 and call.stream.counters("b").dropped == 1
    assert call.stream.latched("b")[0] == call.b.getsockname()


async def test_relatches_only_after_silence(call: Call,
                                            new_socket: Callable[..., socket.socket]) -> None:
    rebound = new_socket()
    call.a.sendto(rtp_packet(1), call.to_a)
    await recv(call.b)
    rebound.sendto(rtp_packet(50), call.to_a)  # a newcomer while the latched one talks
    call.a.sendto(rtp_packet(2), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(2)
    rebound.sendto(rtp_packet(51), call.to_a)
    call.a.sendto(rtp_packet(3), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(3)
    await asyncio.sleep(0.06)  # the latched source stays silent > relatch_silence_s (0.05)
    rebound.sendto(rtp_packet(52), call.to_a)  # starts the clock: dropped
    await until(lambda: call.stream.counters("a").dropped == 3)
    await asyncio.sleep(0.06)
    rebound.sendto(rtp_packet(53), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(53)
    assert call.stream.latched("a")[0] == rebound.getsockname()


async def test_set_remote_with_a_new_address_relatches(
    call: Call, new_socket: Callable[..., socket.socket]
) -> None:
    call.a.sendto(rtp_packet(1), call.to_a)
    await recv(call.b)
    call.stream.set_remote("a", call.a.getsockname())  # the same SDP again: latch kept
    assert call.stream.latched("a")[0] == call.a.getsockname()
    moved = new_socket(OTHER_IP)
    call.stream.set_remote("a", moved.getsockname())  # a re-INVITE moved the phone
    assert call.stream.latched("a") == (None, None)
    call.b.sendto(rtp_packet(2), call.to_b)  # goes to the new SDP address before latching
    assert (await recv(moved))[0] == rtp_packet(2)
    call.a.sendto(rtp_packet(3), call.to_a)  # the old address is now foreign
    moved.sendto(rtp_packet(4), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(4)


async def test_source_ip_other_than_sdp(relay: MediaRelay,
                                        new_socket: Callable[..., socket.socket]) -> None:
    stream = relay.open("nat")
    phone, peer = new_socket(OTHER_IP), new_socket()
    stream.set_remote("a", ("192.168.1.20", 4000), source_ip=OTHER_IP)  # private SDP address
    stream.set_remote("b", peer.getsockname())
    phone.sendto(rtp_packet(1), (HOST, stream.local("a")[1]))
    assert (await recv(peer))[0] == rtp_packet(1)
    peer.sendto(rtp_packet(2), (HOST, stream.local("b")[1]))
    assert (await recv(phone))[0] == rtp_packet(2)


async def test_payload_type_rewritten(call: Call) -> None:
    call.stream.set_pt_map("a", {101: 96, 0: 0})
    call.a.sendto(rtp_packet(1, pt=101, marker=1), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(1, pt=96, marker=1)
    call.a.sendto(rtp_packet(2, pt=8), call.to_a)  # not negotiated by b: dropped
    call.a.sendto(rtp_packet(3, pt=0), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(3, pt=0)
    assert call.stream.counters("a").dropped == 1
    call.b.sendto(rtp_packet(4, pt=101), call.to_b)  # the map is per direction
    assert (await recv(call.a))[0] == rtp_packet(4, pt=101)
    with pytest.raises(ValueError):
        call.stream.set_pt_map("a", {200: 0})


async def test_hold_stops_relaying_to_the_held_side(call: Call) -> None:
    call.stream.hold("b", True)
    call.a.sendto(rtp_packet(1), call.to_a)
    await until(lambda: call.stream.counters("a").packets_in == 1)
    call.b.sendto(rtp_packet(2), call.to_b)  # the other direction still flows
    assert (await recv(call.a))[0] == rtp_packet(2)
    call.stream.hold("b", False)
    call.a.sendto(rtp_packet(3), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(3)  # packet 1 never came
    assert call.stream.counters("b").packets_out == 1


async def test_rtcp_relayed_and_latched_separately(
    call: Call, new_socket: Callable[..., socket.socket]
) -> None:
    phone_b = PortAllocator(PHONE_LOW, PHONE_HIGH, HOST).allocate()  # RTP p, RTCP p + 1
    assert phone_b.rtcp is not None
    try:
        call.stream.set_remote("b", phone_b.rtp.getsockname())  # no a=rtcp: RFC 3605 p + 1
        rtcp_a = new_socket()  # a's RTCP comes from a port unrelated to its RTP one (NAT)
        rtcp_a.sendto(RTCP, (HOST, call.stream.local("a")[2]))
        data, source = await recv(phone_b.rtcp)
        assert data == RTCP and source == (HOST, call.stream.local("b")[2])
        phone_b.rtcp.sendto(RTCP, (HOST, call.stream.local("b")[2]))
        assert (await recv(rtcp_a))[0] == RTCP  # back to where a's RTCP came from
        assert call.stream.latched("a") == (None, rtcp_a.getsockname())
        assert call.stream.counters("a").rtcp_in == 1
    finally:
        for sock in phone_b.sockets:
            sock.close()


async def test_rtcp_mux_on_one_side(relay: MediaRelay,
                                    new_socket: Callable[..., socket.socket]) -> None:
    stream = relay.open("mux", mux_a=True)
    a, b, b_rtcp = new_socket(), new_socket(), new_socket()
    stream.set_remote("a", a.getsockname())
    stream.set_remote("b", b.getsockname(), b_rtcp.getsockname())  # a=rtcp
    to_a, to_b = (HOST, stream.local("a")[1]), (HOST, stream.local("b")[1])
    a.sendto(RTCP, to_a)  # muxed RTCP from a goes to b's RTCP port
    data, source = await recv(b_rtcp)
    assert data == RTCP and source == (HOST, stream.local("b")[2])
    a.sendto(rtp_packet(1), to_a)
    assert (await recv(b))[0] == rtp_packet(1)
    b_rtcp.sendto(RTCP, (HOST, stream.local("b")[2]))  # and b's comes back on a's one port
    data, source = await recv(a)
    assert data == RTCP and source == to_a
    b.sendto(rtp_packet(2), to_b)
    assert (await recv(a))[0] == rtp_packet(2)


async def test_garbage_is_dropped(call: Call) -> None:
    for junk in (b"", b"\x80\x00\x00", b"\x00" * 172, b"\x40" + rtp_packet(1)[1:], b"hello"):
        call.a.sendto(junk, call.to_a)
    call.a.sendto(b"\x00" * 20, (HOST, call.stream.local("a")[2]))  # on the RTCP port too
    call.a.sendto(rtp_packet(1), (HOST, call.stream.local("a")[2]))
    call.a.sendto(rtp_packet(2), call.to_a)
    assert (await recv(call.b))[0] == rtp_packet(2)
    assert call.stream.counters("a").dropped == 7
    assert call.stream.latched("a") == (call.a.getsockname(), None)  # junk latched nothing


async def test_no_remote_yet_drops(relay: MediaRelay,
                                   new_socket: Callable[..., socket.socket]) -> None:
    stream = relay.open("early")
    a = new_socket()
    stream.set_remote("a", a.getsockname())
    a.sendto(rtp_packet(1), (HOST, stream.local("a")[1]))  # b's SDP is not known yet
    await until(lambda: stream.counters("a").dropped == 1)
    assert stream.counters("a").packets_in == 1


# -- UDPTL (T.38) ------------------------------------------------------------------------
def udptl_packet(seq: int) -> bytes:
    """A T.30 HDLC IFP with the two before it as redundancy, as spandsp sends them."""
    ifp = [bytes([0xC0 | (n % 8), n & 0xFF, 0x7E, 0x13]) for n in (seq, seq - 1, seq - 2)]
    return bytes(UdptlPacket(seq, ifp[0], tuple(i for i in ifp[1:] if i)))


async def test_udptl_relayed_as_it_is_with_one_port_per_side(
    relay: MediaRelay, new_socket: Callable[..., socket.socket]
) -> None:
    stream = relay.open("fax", udptl=True)
    assert stream.udptl and relay.ports_in_use() == 2  # no RTCP port on either side
    fax = Call(stream, new_socket(), new_socket())
    packets = [udptl_packet(7), bytes(UdptlPacket(8, b"\x04\x01", fec=FecInfo(3, (b"\xaa",)))),
               b"\x00\x09\x01\x80\x00"]  # redundancy, FEC; the first byte is no RTP version
    for packet in packets:
        fax.a.sendto(packet, fax.to_a)
        data, source = await recv(fax.b)
        assert data == packet and source == fax.to_b
    fax.b.sendto(udptl_packet(1), fax.to_b)
    assert (await recv(fax.a))[0] == udptl_packet(1)
    assert stream.counters("a").packets_in == 3 and stream.counters("b").packets_out == 3
    stream.set_pt_map("a", {0: 8})  # nothing RTP applies: the datagram is not touched
    fax.a.sendto(b"\x80\x00" + udptl_packet(9)[2:], fax.to_a)
    assert (await recv(fax.b))[0] == b"\x80\x00" + udptl_packet(9)[2:]


async def test_udptl_latches_and_drops_other_ips(
    relay: MediaRelay, new_socket: Callable[..., socket.socket]
) -> None:
    fax = Call(relay.open("fax", udptl=True), new_socket(), new_socket())
    intruder, behind_nat = new_socket(OTHER_IP), new_socket()
    intruder.sendto(udptl_packet(66), fax.to_a)
    behind_nat.sendto(udptl_packet(1), fax.to_a)  # the SDP's IP, another port: latched
    assert (await recv(fax.b))[0] == udptl_packet(1)
    fax.b.sendto(udptl_packet(2), fax.to_b)
    assert (await recv(behind_nat))[0] == udptl_packet(2)
    intruder.sendto(udptl_packet(67), fax.to_b)  # nor can it draw the fax out of side b
    fax.b.sendto(udptl_packet(3), fax.to_b)
    assert (await recv(behind_nat))[0] == udptl_packet(3)
    assert fax.stream.counters("a").dropped == 1 and fax.stream.counters("b").dropped == 1
    fax.stream.hold("b", True)
    behind_nat.sendto(udptl_packet(4), fax.to_a)
    await until(lambda: fax.stream.counters("a").packets_in == 2)
    fax.stream.hold("b", False)
    behind_nat.sendto(udptl_packet(5), fax.to_a)
    assert (await recv(fax.b))[0] == udptl_packet(5)  # 4 was held back, not queued


async def test_udptl_stream_ignores_a_transform(
    relay: MediaRelay, new_socket: Callable[..., socket.socket]
) -> None:
    """SRTP keys left on an m-line that became T.38 do not turn it back into RTP."""
    fax = Call(relay.open("fax", udptl=True), new_socket(), new_socket())
    fax.stream.set_transform("a", DROP_ALL)
    fax.a.sendto(udptl_packet(1), fax.to_a)
    assert (await recv(fax.b))[0] == udptl_packet(1)


# -- closing, the port-leak check ------------------------------------------------------
async def test_close_call_frees_every_port(relay: MediaRelay) -> None:
    relay.open("x")
    relay.open("x", mux_a=True, mux_b=True)
    other = relay.open("y")
    assert relay.ports_in_use() == 10
    relay.close_call("x")
    assert relay.ports_in_use() == 4
    relay.close_call("x")  # again
    relay.close_call("never-opened")
    other.close()  # a stream closed on its own, then its call
    relay.close_call("y")
    assert relay.ports_in_use() == 0


async def test_open_fails_cleanly_when_ports_run_out() -> None:
    relay = MediaRelay(PortAllocator(LOW, LOW + 5, HOST))  # three slots
    relay.open("first")
    with pytest.raises(PortsExhausted):
        relay.open("second")  # side a gets the last slot, side b none
    assert relay.ports_in_use() == 4
    relay.close_call("second")
    relay.close_call("first")
    assert relay.ports_in_use() == 0


async def test_open_fails_cleanly_when_watching_fails(
    relay: MediaRelay, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    real = relay.loop.add_reader

    def flaky(fd: int, callback: Callable[[], None]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("no more watchers")
        real(fd, callback)

    monkeypatch.setattr(relay.loop, "add_reader", flaky)
    with pytest.raises(OSError):
        relay.open("z")
    assert relay.ports_in_use() == 0
    monkeypatch.undo()
    relay.open("z")  # the fds were unwatched: they can be watched again


async def test_close_call_after_an_exception_in_the_call(relay: MediaRelay) -> None:
    stream = relay.open("boom")
    with pytest.raises(RuntimeError):
        try:
            stream.set_remote("a", (HOST, 4000))
            raise RuntimeError("the B2BUA failed half-way")
        finally:
            relay.close_call("boom")
    assert relay.ports_in_use() == 0
    assert stream.closed and not stream.send("a", bytearray(rtp_packet(1)))


# -- rewriter --------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rewritten(rw: Rewriter, packet: bytes) -> tuple[int, int, int, int]:
    buf = bytearray(packet)
    rw.rewrite(buf)
    seq, ts, ssrc = read_seq_ts_ssrc(buf)
    return seq, ts, ssrc, buf[1] >> 7


def test_rewriter_continuity_across_a_change_of_source() -> None:
    clock = FakeClock()
    rw = Rewriter(ssrc=0xCAFE, clock=clock)
    assert rewritten(rw, rtp_packet(1000, ssrc=1)) == (1000, 160000, 0xCAFE, 0)  # passthrough
    clock.now += 0.02
    assert rewritten(rw, rtp_packet(1001, ssrc=1)) == (1001, 160160, 0xCAFE, 0)
    clock.now += 0.5  # a player takes over 0.52 s after the first packet
    assert rewritten(rw, rtp_packet(7, ssrc=2, ts=99)) == (1002, 164160, 0xCAFE, 1)
    clock.now += 0.02
    assert rewritten(rw, rtp_packet(8, ssrc=2, ts=259)) == (1003, 164320, 0xCAFE, 0)
    clock.now += 1.0  # the relay resumes 1.02 s later; its own numbers moved on
    assert rewritten(rw, rtp_packet(1100, ssrc=1)) == (1004, 172320, 0xCAFE, 1)
    assert rewritten(rw, rtp_packet(1101, ssrc=1))[:2] == (1005, 172480)


def test_rewriter_wraps_and_keeps_a_minimum_step() -> None:
    clock = FakeClock()
    rw = Rewriter(ssrc=5, clock=clock)
    assert rewritten(rw, rtp_packet(65535, ssrc=1, ts=2**32 - 160))[:2] == (65535, 2**32 - 160)
    # a new source at once (no time elapsed): one frame on, wrapping both counters
    assert rewritten(rw, rtp_packet(3, ssrc=2, ts=0))[:2] == (0, 0)
    rw.restart()  # the same SSRC starting over
    assert rewritten(rw, rtp_packet(500, ssrc=2, ts=12345))[:2] == (1, 160)


async def test_player_and_relay_share_one_stream(call: Call) -> None:
    """Music on hold: the relay to b is held, a player sends, the relay resumes."""
    clock = FakeClock()
    call.stream.set_rewriter("b", Rewriter(ssrc=0xB0B, clock=clock))
    seen = []
    call.a.sendto(rtp_packet(10, ssrc=1), call.to_a)
    seen.append(read_seq_ts_ssrc((await recv(call.b))[0]))
    call.stream.hold("b", True)
    clock.now += 0.02
    assert call.stream.send("b", bytearray(rtp_packet(500, ssrc=77)))
    seen.append(read_seq_ts_ssrc((await recv(call.b))[0]))
    call.stream.hold("b", False)
    clock.now += 0.02
    call.a.sendto(rtp_packet(60, ssrc=1), call.to_a)
    seen.append(read_seq_ts_ssrc((await recv(call.b))[0]))
    assert seen == [(10, 1600, 0xB0B), (11, 1760, 0xB0B), (12, 1920, 0xB0B)]
    assert not call.stream.send("b", bytearray(b"not rtp"))


# -- other loops and families ----------------------------------------------------------
def test_relays_on_uvloop(new_socket: Callable[..., socket.socket]) -> None:
    async def scenario() -> None:
        relay = MediaRelay(PortAllocator(LOW, HIGH, HOST))
        call = Call(relay.open("uv"), new_socket(), new_socket())
        call.a.sendto(rtp_packet(1), call.to_a)
        assert (await recv(call.b))[0] == rtp_packet(1)
        call.b.sendto(rtp_packet(2), call.to_b)
        assert (await recv(call.a))[0] == rtp_packet(2)
        relay.close_call("uv")
        assert relay.ports_in_use() == 0

    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


async def test_ipv6(new_socket: Callable[..., socket.socket]) -> None:
    relay = MediaRelay(PortAllocator(LOW, HIGH, "::1"))
    stream = relay.open("v6")
    a, b = new_socket("::1", socket.AF_INET6), new_socket("::1", socket.AF_INET6)
    stream.set_remote("a", ("0:0::1", port(a)))  # any spelling of the address
    stream.set_remote("b", ("::1", port(b)))
    assert stream.local("a")[0] == "::1"
    a.sendto(rtp_packet(1), ("::1", stream.local("a")[1]))
    assert (await recv(b))[0] == rtp_packet(1)
    b.sendto(rtp_packet(2), ("::1", stream.local("b")[1]))
    assert (await recv(a))[0] == rtp_packet(2)
    relay.close_call("v6")
    assert relay.ports_in_use() == 0
