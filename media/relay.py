"""RTP anchoring: the media relay between the two legs of a call.

Theory of operation
-------------------
``MediaRelay`` (one per switch) owns the ``PortAllocator`` and opens one
``RelayStream`` per m-line of a call.  A stream has two sides, "a" and "b",
each with its own local RTP socket (and RTCP socket, unless that side uses
rtcp-mux).  What arrives on side a's sockets leaves from side b's sockets
towards b's remote, and back.

The hot path is one synchronous callback per readable socket, registered with
``loop.add_reader`` (STYLE rule 12; measured against a datagram transport in
``bench/media.py``): ``recvfrom_into`` a buffer shared by the whole relay,
check the first byte, compare the source with the latched address, rewrite
the payload type (and SSRC/seq/timestamp when a ``Rewriter`` is set) in
place, ``sendto``, count.  A payload type the receiving side did not
negotiate is dropped (``set_pt_map``).  No awaits, no logging, no object built per packet
beyond what the socket calls return.  Opening a stream is synchronous, so
the B2BUA can do it while it writes an SDP.

Latching (symmetric RTP, RFC 4961; "comedia"): ``set_remote`` gives the
address from the SDP.  Until a side has sent, packets for it go to that
address.  The first packet from the SDP's IP, from any port (NAT), latches
the side's real address, separately for RTP and RTCP; from then on replies
go there.  Packets from any other IP are dropped, so nobody can inject media
into, or draw media out of, a call by guessing its ports (RTP bleed,
CVE-2017-14099).  A latched side re-latches only when ``set_remote`` brings
a different address, or when a new port of the same IP keeps sending while
the latched one stays silent for ``relatch_silence_s`` (a NAT rebinding):
the first packet of the newcomer starts the clock, and the switch happens on
its first packet after that time if the latched source sent nothing since.
The clock is read only on that slow path.

SRTP (``switch/b2bua/srtp_legs.py``) is a ``Transform`` per side, below
everything else: what arrives from an SRTP side is decoded (unprotected)
first, so watchers (recording, DTMF), taps (transcoding), the payload-type
map and rewriters all see plain RTP; what is sent to an SRTP side is encoded
(protected) last, after its rewriter (rewriting after encryption would break
the authentication tag), whether it is relayed, sent by a player (``send``)
or by a tap (``forward`` applies the payload-type map first).  The plain hot
path does not pay for it: a stream with a transform on either side has its
sockets watched by the ``*_secure`` variants of the callbacks instead.
Other hooks: an RTCP tap (``set_rtcp_tap``) takes a side's RTCP, muxed or
not, sent on with ``send_rtcp``; datagrams that are not RTP (DTLS, STUN: RFC
7983) go to a side's raw handler instead of being dropped, and ``send_raw``
answers from that side's RTP socket.

UDPTL (T.38 fax, ``RelayStream.udptl``): a stream opened with ``udptl=True``
binds one port per side (no RTCP) and watches it with ``on_udptl``: the
datagram is relayed as it is (sequence number, primary and redundant IFPs
untouched: no RTP check, payload-type map, rewriter, tap or transform), with
the same latching and anti-bleed rules and the same hold.  The RTP callbacks
do not know it exists, so the RTP hot path pays nothing for it.

Counters per side (``SideCounters``) are plain integers on the side, read by
CDR/QoS code when it wants them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from .ports import PortAllocator, PortPair
from .rtp import (
    RTCP_HEADER_SIZE,
    RTCP_MUX_FIRST,
    RTCP_MUX_LAST,
    RTP_HEADER_SIZE,
    is_rtcp,
    is_rtp,
    read_seq_ts_ssrc,
    write_seq_ts_ssrc,
)

log = logging.getLogger("centrala.media")

Side = Literal["a", "b"]
Addr = tuple[str, int]
RawHandler = Callable[[memoryview, tuple[object, ...]], None]  # (datagram, source address)
Coder = Callable[[memoryview], bytes | None]  # e.g. SRTP (un)protect; None drops the packet


@dataclass(frozen=True, slots=True)
class Transform:
    """How one side's packets are decoded on arrival and encoded on departure (SRTP)."""

    decode_rtp: Coder
    decode_rtcp: Coder
    encode_rtp: Coder
    encode_rtcp: Coder


def _nothing(packet: memoryview) -> None:
    return None


DROP_ALL = Transform(_nothing, _nothing, _nothing, _nothing)  # e.g. until DTLS gives keys
MAX_DATAGRAM = 65535  # one receive buffer for the whole relay: nothing is ever truncated
NOT_NEGOTIATED: Final = 0xFF  # in a payload-type table: drop packets of that type


class Rewriter:
    """Makes what is sent to one side a single continuous RTP stream.

    When the source of the packets changes (another SSRC: a player takes
    over, then the relay resumes), sequence numbers go on from the last one
    sent, the timestamp jumps by the wall-clock time elapsed (so the
    receiver's jitter buffer sees a pause, not a leap) and the marker bit
    flags the new talkspurt; every packet carries ``ssrc``.  Between changes
    it adds two constant offsets.  The clock is read only on a change.
    """

    __slots__ = (
        "_base_time",
        "_base_ts",
        "_clock",
        "_last_seq",
        "_last_ts",
        "_seq_off",
        "_source",
        "_started",
        "_ts_off",
        "clock_rate",
        "min_step",
        "ssrc",
    )

    def __init__(
        self, ssrc: int, clock_rate: int = 8000, min_step: int = 160,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ssrc, self.clock_rate, self.min_step = ssrc, clock_rate, min_step
        self._clock = clock
        self._started = False
        self._source = -1  # no SSRC is -1: the next packet resyncs
        self._seq_off = self._ts_off = 0
        self._last_seq = self._last_ts = 0
        self._base_time = 0.0
        self._base_ts = 0

    def restart(self) -> None:
        """The next packet starts a new segment even if its SSRC is unchanged."""
        self._source = -1

    def rewrite(self, buf: bytearray | memoryview) -> None:
        """Rewrite SSRC, sequence number and timestamp of the packet in ``buf`` in place."""
        seq, ts, source = read_seq_ts_ssrc(buf)
        if source != self._source:
            self._resync(buf, seq, ts, source)
        self._last_seq = seq = (seq + self._seq_off) & 0xFFFF
        self._last_ts = ts = (ts + self._ts_off) & 0xFFFFFFFF
        write_seq_ts_ssrc(buf, seq, ts, self.ssrc)

    def _resync(self, buf: bytearray | memoryview, seq: int, ts: int, source: int) -> None:
        now = self._clock()
        if not self._started:  # the very first packet: pass its numbers through
            self._started = True
            out_seq, out_ts = seq, ts
        else:
            elapsed = round((now - self._base_time) * self.clock_rate)
            step = (self._base_ts + elapsed - self._last_ts) & 0xFFFFFFFF
            if step < self.min_step or step >= 0x80000000:  # too close, or behind
                step = self.min_step
            out_seq, out_ts = self._last_seq + 1, self._last_ts + step
            buf[1] |= 0x80  # RFC 3551 §4.1: marker on the first packet of a talkspurt
        self._seq_off = (out_seq - seq) & 0xFFFF
        self._ts_off = (out_ts - ts) & 0xFFFFFFFF
        self._source, self._base_time, self._base_ts = source, now, out_ts & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class SideCounters:
    """What one side sent us (in) and what we sent it (out)."""

    packets_in: int
    bytes_in: int
    rtcp_in: int
    packets_out: int
    bytes_out: int
    dropped: int  # received from this side and not relayed: not RTP, foreign source, no target


class _Side:
    """One side of a stream: its sockets, its remote, its latches, its counters."""

    __slots__ = (
        "buf",
        "bytes_in",
        "call_ref",
        "bytes_out",
        "cand_rtcp",
        "cand_rtp",
        "dropped",
        "expected_ip",
        "held",
        "mux",
        "name",
        "packets_out",
        "pair",
        "peer",
        "pt_table",
        "raw_handler",
        "rewriter",
        "rtcp_dst",
        "rtcp_in",
        "rtcp_recv",
        "rtcp_send",
        "rtcp_src",
        "rtcp_tap",
        "rtp_dst",
        "rtp_in",
        "rtp_recv",
        "rtp_send",
        "rtp_src",
        "sdp_rtcp",
        "relay",
        "sdp_rtp",
        "tap",
        "transform",
        "view",
        "watcher",
    )

    def __init__(self, relay: MediaRelay, call_ref: Hashable, name: Side, pair: PortPair) -> None:
        # No reference to the stream, and none to the peer once closed: an ended
        # call's streams are freed by reference counting, not by the cycle collector.
        self.relay, self.call_ref, self.name, self.pair = relay, call_ref, name, pair
        self.mux = pair.rtcp is None
        self.peer: _Side | None = None  # set by the stream while it is open
        self.buf, self.view = relay.buffer, relay.view
        self.rtp_recv, self.rtp_send = pair.rtp.recvfrom_into, pair.rtp.sendto
        rtcp = pair.rtp if pair.rtcp is None else pair.rtcp
        self.rtcp_recv, self.rtcp_send = rtcp.recvfrom_into, rtcp.sendto
        self.expected_ip: str | None = None
        self.sdp_rtp: Addr | None = None
        self.sdp_rtcp: Addr | None = None
        self.rtp_src: tuple[object, ...] | None = None  # latched: as recvfrom returned it
        self.rtcp_src: tuple[object, ...] | None = None
        self.rtp_dst: tuple[object, ...] | None = None  # where packets for this side go
        self.rtcp_dst: tuple[object, ...] | None = None
        self.held = False
        self.pt_table: bytes | None = None  # applied to packets *from* this side
        self.rewriter: Rewriter | None = None  # applied to packets sent *to* this side
        self.tap: Callable[[memoryview], None] | None = None  # set_tap: RTP from this side
        self.watcher: Callable[[memoryview], None] | None = None  # set_watcher: a copy of it
        self.rtcp_tap: Callable[[memoryview], None] | None = None  # set_rtcp_tap: RTCP from it
        self.raw_handler: RawHandler | None = None  # set_raw_handler: DTLS/STUN from it
        self.transform: Transform | None = None  # set_transform: SRTP of this side
        self.cand_rtp: tuple[float, int] | None = None  # re-latch candidate: (since, count)
        self.cand_rtcp: tuple[float, int] | None = None
        self.rtp_in = self.rtcp_in = self.bytes_in = 0
        self.packets_out = self.bytes_out = self.dropped = 0

    # -- hot path ----------------------------------------------------------------------
    def on_rtp(self) -> None:
        """The RTP socket is readable: relay one packet (or muxed RTCP) to the peer."""
        try:
            n, addr = self.rtp_recv(self.buf)
        except OSError:  # EAGAIN, or an ICMP error reported on the socket
            return
        buf = self.buf
        if n < RTCP_HEADER_SIZE or buf[0] & 0xC0 != 0x80 or (  # not version 2
            addr != self.rtp_src and not self.accept(addr, False)
        ):
            self.not_rtp(n, addr)
            return
        peer = self.peer
        if peer is None:
            return
        if RTCP_MUX_FIRST <= buf[1] <= RTCP_MUX_LAST:  # RFC 5761 §4: RTCP on the RTP port
            self.rtp_in += 1
            self.bytes_in += n
            if self.rtcp_tap is not None:  # the tap consumes it (set_rtcp_tap)
                self.rtcp_tap(self.view[:n])
                return
            peer.deliver(self, peer.rtcp_send, peer.rtcp_dst, n)
            return
        if n < RTP_HEADER_SIZE:
            self.dropped += 1
            return
        self.rtp_in += 1
        self.bytes_in += n
        if self.watcher is not None:  # recording: sees the packet as this side sent it
            self.watcher(self.view[:n])
        if peer.held:
            return
        if self.tap is not None:  # transcoding: the tap consumes the packet (set_tap)
            self.tap(self.view[:n])
            return
        table = self.pt_table
        if table is not None:
            b1 = buf[1]
            pt = table[b1 & 0x7F]
            if pt == NOT_NEGOTIATED:
                self.dropped += 1
                return
            buf[1] = (b1 & 0x80) | pt
        if peer.rewriter is not None:
            peer.rewriter.rewrite(buf)
        peer.deliver(self, peer.rtp_send, peer.rtp_dst, n)

    def on_udptl(self) -> None:
        """A UDPTL stream's socket is readable: relay one datagram as it is (T.38)."""
        try:
            n, addr = self.rtp_recv(self.buf)
        except OSError:
            return
        if not n or (addr != self.rtp_src and not self.accept(addr, False)):
            self.dropped += 1
            return
        self.rtp_in += 1
        self.bytes_in += n
        peer = self.peer
        if peer is None or peer.held:
            return
        peer.deliver(self, peer.rtp_send, peer.rtp_dst, n)

    def on_rtcp(self) -> None:
        """The RTCP socket (no mux) is readable: relay one compound packet to the peer."""
        n = self.receive_rtcp()
        if not n:
            return
        if self.rtcp_tap is not None:
            self.rtcp_tap(self.view[:n])
            return
        peer = self.peer
        if peer is not None:
            peer.deliver(self, peer.rtcp_send, peer.rtcp_dst, n)

    # -- the same with a transform on either side (SRTP): set_transform --------------------
    def on_rtp_secure(self) -> None:
        """``on_rtp`` for a stream with SRTP: decode what comes from this side into
        the shared buffer first, encode what goes to the peer last."""
        try:
            n, addr = self.rtp_recv(self.buf)
        except OSError:
            return
        buf, view = self.buf, self.view
        if n < RTCP_HEADER_SIZE or buf[0] & 0xC0 != 0x80 or (
            addr != self.rtp_src and not self.accept(addr, False)
        ):
            self.not_rtp(n, addr)
            return
        self.rtp_in += 1
        self.bytes_in += n
        if RTCP_MUX_FIRST <= buf[1] <= RTCP_MUX_LAST:
            self.relay_rtcp_secure(n)
            return
        transform = self.transform
        if n < RTP_HEADER_SIZE or (transform is not None and not (
            n := self.decode(transform.decode_rtp, n)
        )):
            self.dropped += 1
            return
        peer = self.peer
        if peer is None:
            return
        if self.watcher is not None:
            self.watcher(view[:n])
        if peer.held:
            return
        if self.tap is not None:
            self.tap(view[:n])
            return
        table = self.pt_table
        if table is not None:
            b1 = buf[1]
            pt = table[b1 & 0x7F]
            if pt == NOT_NEGOTIATED:
                self.dropped += 1
                return
            buf[1] = (b1 & 0x80) | pt
        if peer.rewriter is not None:
            peer.rewriter.rewrite(buf)
        peer.deliver_secure(self, False, n)

    def on_rtcp_secure(self) -> None:
        """``on_rtcp`` for a stream with SRTP."""
        n = self.receive_rtcp()
        if n:
            self.relay_rtcp_secure(n)

    def receive_rtcp(self) -> int:
        """Read one datagram from the RTCP socket into the shared buffer: its length
        if it is RTCP from the latched (or a latchable) source, else 0."""
        try:
            n, addr = self.rtcp_recv(self.buf)
        except OSError:
            return 0
        if not is_rtcp(self.buf, n) or (addr != self.rtcp_src and not self.accept(addr, True)):
            self.dropped += 1
            return 0
        self.rtcp_in += 1
        self.bytes_in += n
        return n

    def relay_rtcp_secure(self, n: int) -> None:
        transform = self.transform
        if transform is not None and not (n := self.decode(transform.decode_rtcp, n)):
            self.dropped += 1
            return
        if self.rtcp_tap is not None:
            self.rtcp_tap(self.view[:n])
            return
        peer = self.peer
        if peer is not None:
            peer.deliver_secure(self, True, n)

    def decode(self, coder: Coder, n: int) -> int:
        """Decode the first ``n`` bytes of the shared buffer in place; the new
        length, 0 when the coder refused the packet."""
        out = coder(self.view[:n])
        if out is None:
            return 0
        m = len(out)
        self.buf[:m] = out
        return m

    def deliver_secure(self, origin: _Side, rtcp: bool, n: int) -> None:
        """``deliver`` through this side's transform (its encoder), if it has one."""
        transform = self.transform
        send, dst = (self.rtcp_send, self.rtcp_dst) if rtcp else (self.rtp_send, self.rtp_dst)
        if transform is None:
            self.deliver(origin, send, dst, n)
            return
        out = (transform.encode_rtcp if rtcp else transform.encode_rtp)(self.view[:n])
        if out is None or dst is None:
            origin.dropped += 1
            return
        try:
            send(out, dst)
        except OSError:
            origin.dropped += 1
            return
        self.packets_out += 1
        self.bytes_out += len(out)

    def not_rtp(self, n: int, addr: tuple[object, ...]) -> None:
        """Off the hot path: a datagram that is not relayed.  Not RTP at all (DTLS,
        STUN, RFC 7983) goes to the raw handler when there is one; the handler
        checks the source itself.  Everything else is a drop."""
        if self.raw_handler is not None and n and self.buf[0] & 0xC0 != 0x80:
            self.raw_handler(self.view[:n], addr)
            return
        self.dropped += 1

    def deliver(self, origin: _Side, send: Callable[..., int], dst: tuple[object, ...] | None,
                n: int) -> None:
        """Send the first ``n`` bytes of the shared buffer to this side's RTP or RTCP
        address; a packet that cannot go counts as dropped by ``origin``."""
        if dst is None:
            origin.dropped += 1
            return
        try:
            send(self.view[:n], dst)
        except OSError:
            origin.dropped += 1
            return
        self.packets_out += 1
        self.bytes_out += n

    # -- latching (slow path) ----------------------------------------------------------
    def accept(self, addr: tuple[object, ...], rtcp: bool) -> bool:
        """A packet from an address other than the latched one: latch it, or not."""
        if addr[0] != self.expected_ip:
            return False  # another IP: never (RTP bleed)
        latched = self.rtcp_src if rtcp else self.rtp_src
        if latched is not None:
            count = self.rtcp_in if rtcp else self.rtp_in
            now = self.relay.loop.time()
            candidate = self.cand_rtcp if rtcp else self.cand_rtp
            if candidate is None or candidate[1] != count:  # first try, or the latched one spoke
                self._set_candidate(rtcp, (now, count))
                return False
            if now - candidate[0] < self.relay.relatch_silence_s:
                return False
        self._latch(addr, rtcp, relatch=latched is not None)
        return True

    def _set_candidate(self, rtcp: bool, value: tuple[float, int] | None) -> None:
        if rtcp:
            self.cand_rtcp = value
        else:
            self.cand_rtp = value

    def _latch(self, addr: tuple[object, ...], rtcp: bool, relatch: bool) -> None:
        self._set_candidate(rtcp, None)
        if rtcp:
            self.rtcp_src = self.rtcp_dst = addr
        else:
            self.rtp_src = self.rtp_dst = addr
            if self.mux:
                self.rtcp_dst = addr
            elif relatch:  # the NAT rebound: RTCP's mapping has moved too
                self.rtcp_src, self.rtcp_dst = None, self.sdp_rtcp
        log.debug("[%s] side %s %s %s to %s:%s", self.call_ref, self.name,
                  "RTCP" if rtcp else "RTP", "re-latched" if relatch else "latched",
                  addr[0], addr[1])

    def set_remote(self, rtp: Addr, rtcp: Addr | None, source_ip: str | None) -> None:
        rtcp = rtcp or (rtp if self.mux else (rtp[0], rtp[1] + 1))  # RFC 3605 default
        expected = _canonical_ip(source_ip or rtp[0])
        if (rtp, rtcp, expected) == (self.sdp_rtp, self.sdp_rtcp, self.expected_ip):
            return  # same SDP again (a session refresh): keep the latches
        self.expected_ip, self.sdp_rtp, self.sdp_rtcp = expected, rtp, rtcp
        self.rtp_src = self.rtcp_src = self.cand_rtp = self.cand_rtcp = None
        self.rtp_dst, self.rtcp_dst = rtp, (rtp if self.mux else rtcp)

    def detach(self) -> None:
        """The stream is closed: drop the peer and every callback (taps, watchers,
        handlers hold objects that hold the stream), so nothing of it is a cycle."""
        self.peer = None
        self.tap = self.watcher = self.rtcp_tap = None
        self.raw_handler = None
        self.transform = None

    def counters(self) -> SideCounters:
        return SideCounters(
            self.rtp_in + self.rtcp_in, self.bytes_in, self.rtcp_in,
            self.packets_out, self.bytes_out, self.dropped,
        )


def _canonical_ip(ip: str) -> str:
    """The textual form ``recvfrom`` reports, to compare sources with a plain ``==``."""
    return ipaddress.ip_address(ip).compressed


class RelayStream:
    """One relayed m-line: sides "a" and "b", each with its local ports."""

    def __init__(self, relay: MediaRelay, call_ref: Hashable, pair_a: PortPair,
                 pair_b: PortPair, udptl: bool = False) -> None:
        self.relay, self.call_ref = relay, call_ref
        self.udptl = udptl  # T.38: datagrams relayed as they are (on_udptl)
        self.closed = False
        self._fds: list[int] = []
        a, b = _Side(relay, call_ref, "a", pair_a), _Side(relay, call_ref, "b", pair_b)
        a.peer, b.peer = b, a
        self._sides = {"a": a, "b": b}

    def start(self) -> None:
        """Watch the sockets: from now on packets are relayed."""
        for side in self._sides.values():
            self._watch(side.pair.rtp.fileno(), side.on_udptl if self.udptl else side.on_rtp)
            if side.pair.rtcp is not None:
                self._watch(side.pair.rtcp.fileno(), side.on_rtcp)

    def _watch(self, fd: int, callback: Callable[[], None]) -> None:
        self.relay.loop.add_reader(fd, callback)
        self._fds.append(fd)

    def _rewatch(self) -> None:
        """Plain callbacks while neither side has a transform, secure ones otherwise
        (``add_reader`` replaces the callback of a watched descriptor); a UDPTL
        stream keeps ``on_udptl``."""
        if self.closed or self.udptl:
            return
        secure = any(side.transform is not None for side in self._sides.values())
        for side in self._sides.values():
            self.relay.loop.add_reader(side.pair.rtp.fileno(),
                                       side.on_rtp_secure if secure else side.on_rtp)
            if side.pair.rtcp is not None:
                self.relay.loop.add_reader(side.pair.rtcp.fileno(),
                                           side.on_rtcp_secure if secure else side.on_rtcp)

    def local(self, side: Side) -> tuple[str, int, int]:
        """(address to advertise, RTP port, RTCP port) of our end facing ``side``."""
        pair = self._sides[side].pair
        return self.relay.advertise, pair.port, pair.rtcp_port

    def set_remote(self, side: Side, rtp_addr: Addr, rtcp_addr: Addr | None = None, *,
                   source_ip: str | None = None) -> None:
        """The remote's address from its SDP (``rtcp_addr`` from a=rtcp, RFC 3605).

        Packets are accepted from ``source_ip`` (default: the SDP's IP), from any
        port.  A changed address drops the latches; the same one keeps them."""
        self._sides[side].set_remote(rtp_addr, rtcp_addr, source_ip)

    def set_pt_map(self, from_side: Side, mapping: Mapping[int, int]) -> None:
        """Rewrite the payload type of RTP packets coming from ``from_side``, and drop
        those of a type the mapping lacks: the other side did not negotiate it (RFC
        3264 §5.1), e.g. telephone-event toward a phone that gets INFO instead.  An
        empty mapping (nothing negotiated yet) relays every type unchanged."""
        if any(not (0 <= k < 128 and 0 <= v < 128) for k, v in mapping.items()):
            raise ValueError(f"payload types must be 0..127: {dict(mapping)}")
        table = bytes(mapping.get(pt, NOT_NEGOTIATED) for pt in range(128)) if mapping else None
        self._sides[from_side].pt_table = table

    def hold(self, side: Side, on: bool) -> None:
        """Stop (or resume) relaying RTP to ``side``; RTCP keeps flowing (RFC 3264 §8.4)."""
        self._sides[side].held = on

    def set_rewriter(self, side: Side, rewriter: Rewriter | None) -> None:
        """Make every RTP packet sent to ``side`` part of one continuous stream."""
        self._sides[side].rewriter = rewriter

    def set_tap(self, from_side: Side, tap: Callable[[memoryview], None] | None) -> None:
        """Hand RTP from ``from_side`` to ``tap`` instead of relaying it (transcoding,
        media/transcode.py); the view is of the shared buffer, valid during the call
        only.  Latching, counters, hold and RTCP are unchanged; None relays again."""
        self._sides[from_side].tap = tap

    def set_watcher(self, from_side: Side,
                    watcher: Callable[[memoryview], None] | None) -> None:
        """Show every RTP packet from ``from_side`` to ``watcher`` as that side sent
        it (payload type, SSRC, sequence number and timestamp untouched), before it
        is relayed, tapped or dropped for hold: a passive copy for recording
        (media/recorder.py).  The view is of the shared buffer, valid during the
        call only, and must not be written to.  None stops watching."""
        self._sides[from_side].watcher = watcher

    def send(self, side: Side, packet: bytearray) -> bool:
        """Send an RTP packet made here (a player) to ``side``, through its rewriter
        and then its transform (SRTP), held or not; False when the side has no
        address yet, the transform refused it or the send failed."""
        target = self._sides[side]
        if self.closed or target.rtp_dst is None or not is_rtp(packet, len(packet)):
            return False
        if target.rewriter is not None:
            target.rewriter.rewrite(packet)
        if target.transform is None:
            return self._send(target, target.rtp_send, target.rtp_dst, packet)
        out = target.transform.encode_rtp(memoryview(packet))
        return out is not None and self._send(target, target.rtp_send, target.rtp_dst, out)

    def forward(self, from_side: Side, packet: bytearray) -> bool:
        """Relay an RTP packet a tap took from ``from_side`` (after looking at or
        changing it) to the other side as the hot path would: ``from_side``'s
        payload-type map, then ``send`` (rewriter, transform); nothing while held."""
        source = self._sides[from_side]
        target = source.peer
        if target is None or target.held or len(packet) < RTP_HEADER_SIZE:
            return False
        table = source.pt_table
        if table is not None:
            b1 = packet[1]
            pt = table[b1 & 0x7F]
            if pt == NOT_NEGOTIATED:
                return False
            packet[1] = (b1 & 0x80) | pt
        return self.send(target.name, packet)

    def send_rtcp(self, side: Side, packet: bytes | bytearray) -> bool:
        """Send an RTCP packet to ``side``'s RTCP address, muxed or not, through its
        transform (SRTCP)."""
        target = self._sides[side]
        if self.closed or target.rtcp_dst is None:
            return False
        if target.transform is not None:
            out = target.transform.encode_rtcp(memoryview(packet))
            if out is None:
                return False
            packet = out
        return self._send(target, target.rtcp_send, target.rtcp_dst, packet)

    def send_raw(self, side: Side, data: bytes, addr: tuple[object, ...] | None = None) -> bool:
        """Send a datagram that is not RTP (DTLS, STUN) from ``side``'s RTP socket to
        ``addr``, default the side's RTP address."""
        target = self._sides[side]
        dst = addr or target.rtp_dst
        if self.closed or dst is None:
            return False
        return self._send(target, target.rtp_send, dst, data)

    @staticmethod
    def _send(target: _Side, send: Callable[..., int], dst: tuple[object, ...],
              packet: bytes | bytearray) -> bool:
        try:
            send(packet, dst)
        except OSError:
            return False
        target.packets_out += 1
        target.bytes_out += len(packet)
        return True

    def set_rtcp_tap(self, from_side: Side, tap: Callable[[memoryview], None] | None) -> None:
        """Hand RTCP from ``from_side`` (its RTCP socket, or muxed on its RTP socket)
        to ``tap``, decoded, instead of relaying it; send it on with ``send_rtcp``.
        The view is of the shared buffer, valid during the call only."""
        self._sides[from_side].rtcp_tap = tap

    def set_raw_handler(self, side: Side, handler: RawHandler | None) -> None:
        """Hand datagrams on ``side``'s RTP socket that are not RTP or RTCP (first
        byte outside 128..191: DTLS, STUN, RFC 7983 §7) to ``handler`` with their
        source address, unchecked, instead of dropping them."""
        self._sides[side].raw_handler = handler

    def set_transform(self, side: Side, transform: Transform | None) -> None:
        """Decode what ``side`` sends before anything else sees it and encode what
        is sent to it after everything else (SRTP: unprotect, protect); None makes
        the side plain again."""
        self._sides[side].transform = transform
        self._rewatch()

    def counters(self, side: Side) -> SideCounters:
        return self._sides[side].counters()

    def latched(self, side: Side) -> tuple[tuple[object, ...] | None, tuple[object, ...] | None]:
        """The (RTP, RTCP) source addresses ``side`` is latched to, if any."""
        s = self._sides[side]
        return s.rtp_src, s.rtcp_src

    def close(self) -> None:
        """Stop watching the sockets and free the ports; safe to call again."""
        if self.closed:
            return
        self.closed = True
        loop = self.relay.loop
        try:
            while self._fds:
                fd = self._fds.pop()
                if not loop.is_closed():
                    loop.remove_reader(fd)
        finally:
            for side in self._sides.values():
                self.relay.ports.release(side.pair)
                side.detach()


class MediaRelay:
    """The relay engine of a switch: opens streams, frees them by call."""

    def __init__(
        self,
        ports: PortAllocator,
        *,
        advertise: str | None = None,
        relatch_silence_s: float = 2.0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.ports = ports
        self.advertise = advertise or ports.host  # the address our SDP gives
        self.relatch_silence_s = relatch_silence_s
        self.loop = loop or asyncio.get_running_loop()
        self.buffer = bytearray(MAX_DATAGRAM)
        self.view = memoryview(self.buffer)
        self._calls: dict[Hashable, list[RelayStream]] = {}

    def open(self, call_ref: Hashable, mux_a: bool = False, mux_b: bool = False,
             udptl: bool = False) -> RelayStream:
        """A new stream of ``call_ref`` with fresh ports on both sides (``PortsExhausted``);
        ``udptl``: a T.38 stream, one port per side."""
        pair_a = self.ports.allocate(mux_a or udptl)
        try:
            pair_b = self.ports.allocate(mux_b or udptl)
        except BaseException:
            self.ports.release(pair_a)
            raise
        stream = RelayStream(self, call_ref, pair_a, pair_b, udptl)
        try:
            stream.start()
        except BaseException:
            stream.close()
            raise
        self._calls.setdefault(call_ref, []).append(stream)
        return stream

    def streams(self, call_ref: Hashable) -> list[RelayStream]:
        return list(self._calls.get(call_ref, ()))

    def close_call(self, call_ref: Hashable) -> None:
        """Close every stream of ``call_ref``; unknown or already closed calls are fine."""
        streams = self._calls.pop(call_ref, [])
        while streams:
            try:
                streams.pop().close()
            except Exception:  # never leave the other streams' ports behind
                log.exception("[%s] closing a media stream failed", call_ref)

    def close(self) -> None:
        """Close every call (switch shutdown)."""
        for call_ref in list(self._calls):
            self.close_call(call_ref)

    def ports_in_use(self) -> int:
        return self.ports.in_use()
