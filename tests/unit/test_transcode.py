"""Transcoding frame by frame: audio across codecs, our own RTP stream, events bypassing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from media.codecs import G722, OPUS, PCMA, PCMU, AudioCodec
from media.dtmf import TelephoneEvent, digit_packets
from media.jitter import JitterBuffer
from media.rtp import RtpPacket
from media.transcode import LegCodec, TranscodedStream, Transcoder, TranscodingPump

from .audio_support import dominant, power_at, tone

FRAME = 0.02
ULAW = LegCodec(PCMU, 0, 101)
OPUS_LEG = LegCodec(OPUS, 111, 100)


def leg(codec: AudioCodec, pt: int | None = None, event: int | None = 101) -> LegCodec:
    return LegCodec(codec, pt if pt is not None else (codec.static_pt or 96), event)


class Phone:
    """One party: encodes a 1 kHz tone into RTP and decodes what it receives."""

    def __init__(self, leg: LegCodec, ssrc: int) -> None:
        self.leg, self.ssrc = leg, ssrc
        self.encoder, self.decoder = leg.codec.encoder(), leg.codec.decoder()
        self.sent = 0
        self.heard = b""
        self.received: list[RtpPacket] = []

    def packet(self, freq: float = 1000.0) -> bytes:
        codec, k = self.leg.codec, self.sent
        pcm = tone(codec.sample_rate, codec.frame_samples, (freq,), start=k * codec.frame_samples)
        self.sent += 1
        return bytes(RtpPacket(payload_type=self.leg.payload_type, sequence_number=k & 0xFFFF,
                               timestamp=k * codec.timestamp_step, ssrc=self.ssrc,
                               payload=self.encoder.encode(pcm)))

    def receive(self, data: bytearray) -> None:
        packet = RtpPacket.parse(bytes(data))
        self.received.append(packet)
        if packet.payload_type == self.leg.payload_type:
            self.heard += self.decoder.decode(packet.payload)


def talk(a: Phone, b: Phone, frames: int, freq_a: float = 1000.0,
         freq_b: float = 1000.0) -> TranscodedStream:
    stream = TranscodedStream(a.leg, b.leg)
    for k in range(frames):
        now = k * FRAME
        assert stream.push("a", a.packet(freq_a), now) is None
        assert stream.push("b", b.packet(freq_b), now) is None
        for side, packet in stream.tick(now):
            (a if side == "a" else b).receive(packet)
    return stream


@pytest.mark.parametrize(("codec_a", "codec_b"), [(PCMU, OPUS), (PCMA, G722), (OPUS, G722)],
                         ids=["PCMU-opus", "PCMA-G722", "opus-G722"])
def test_a_tone_crosses_both_ways(codec_a: AudioCodec, codec_b: AudioCodec) -> None:
    a, b = Phone(leg(codec_a), 1), Phone(leg(codec_b), 2)
    talk(a, b, 50, freq_a=1000.0, freq_b=500.0)
    for phone, freq, other in ((b, 1000.0, 500.0), (a, 500.0, 1000.0)):
        codec = phone.leg.codec
        tail = phone.heard[-15 * codec.frame_bytes :]
        assert len(phone.received) == 48  # 3 frames of jitter buffer, less the first
        assert dominant(tail, codec.sample_rate) == freq
        assert power_at(tail, codec.sample_rate, freq) > 0.3 * 32e6  # 8000 peak: 32e6
        assert power_at(tail, codec.sample_rate, other) < 0.01 * 32e6


def test_output_is_our_own_continuous_stream() -> None:
    t = Transcoder(ULAW, OPUS_LEG, ssrc=0xCAFE, seq=65534, timestamp=2**32 - 960,
                   jitter=JitterBuffer(1, adaptive=False))
    src = Phone(ULAW, 77)
    packets = []
    for k in range(4):
        t.push(src.packet(), k * FRAME)
        packets.append(RtpPacket.parse(bytes(t.tick(k * FRAME) or b"")))
    assert [p.sequence_number for p in packets] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in packets] == [2**32 - 960, 0, 960, 1920]
    assert {p.ssrc for p in packets} == {0xCAFE} and {p.payload_type for p in packets} == {111}
    assert [p.marker for p in packets] == [1, 0, 0, 0]
    assert t.ssrc == 0xCAFE and t.stats.packets_out == 4


def test_silence_sends_nothing_but_time_goes_on() -> None:
    t = Transcoder(ULAW, OPUS_LEG, ssrc=1, seq=0, timestamp=0,
                   jitter=JitterBuffer(1, adaptive=False))
    src = Phone(ULAW, 5)
    t.push(src.packet(), 0.0)
    first = RtpPacket.parse(bytes(t.tick(0.0) or b""))
    assert t.tick(0.02) is not None  # underrun: one frame concealed
    assert [t.tick(0.02 * k) for k in range(2, 10)] == [None] * 8
    src.sent = 10
    t.push(src.packet(), 0.2)
    resumed = RtpPacket.parse(bytes(t.tick(0.2) or b""))
    assert resumed.marker == 1 and first.marker == 1
    assert resumed.timestamp - first.timestamp == 10 * 960  # ten ticks: time, not packets


def test_loss_is_concealed_and_the_stream_stays_continuous() -> None:
    t = Transcoder(ULAW, OPUS_LEG, ssrc=1, seq=0, timestamp=0,
                   jitter=JitterBuffer(2, adaptive=False))
    src = Phone(ULAW, 5)
    out = []
    for k in range(10):
        packet = src.packet()
        if k != 5:
            t.push(packet, k * FRAME)
        out.append(t.tick(k * FRAME))
    sent = [RtpPacket.parse(bytes(p)) for p in out if p is not None]
    assert t.stats.concealed == 1 and t.jitter.stats.gaps == 1
    assert [p.sequence_number for p in sent] == list(range(len(sent))) and len(sent) == 9


def test_telephone_events_bypass_with_mapped_type_clock_and_position() -> None:
    t = Transcoder(ULAW, OPUS_LEG, ssrc=9, seq=100, timestamp=48000,
                   jitter=JitterBuffer(1, adaptive=False))
    src = Phone(ULAW, 5)
    for k in range(3):
        t.push(src.packet(), k * FRAME)
        t.tick(k * FRAME)
    out = []
    for i, p in enumerate(digit_packets("7")):
        data = RtpPacket(payload_type=101, marker=int(p.marker), sequence_number=50 + i,
                         timestamp=4000, ssrc=5, payload=bytes(p.event))
        out.append(RtpPacket.parse(bytes(t.push(bytes(data), 0.1) or b"")))
    assert {p.payload_type for p in out} == {100}
    assert {p.timestamp for p in out} == {48000 + 3 * 960}  # where the audio stands
    assert [p.sequence_number for p in out] == list(range(103, 108))
    events = [TelephoneEvent.parse(p.payload) for p in out]
    assert [e.duration for e in events] == [2400, 4800, 4800, 4800, 4800]  # 8 kHz -> 48 kHz
    assert [e.end for e in events] == [False, False, True, True, True]
    assert [p.marker for p in out] == [1, 0, 0, 0, 0] and t.stats.events == 5


@pytest.mark.parametrize(
    "data",
    [
        b"\x80\x0d\x00\x01" + bytes(8) + b"\x40",  # comfort noise (PT 13)
        b"\x80\x08\x00\x01" + bytes(8) + bytes(160),  # a payload type not negotiated
        b"\x80\x65\x00\x01" + bytes(8) + b"\x01\x02",  # telephone-event of 2 bytes
        b"\x80\x00\x00",  # not RTP
    ],
    ids=["CN", "unknown-PT", "short-event", "malformed"],
)
def test_what_cannot_be_transcoded_is_dropped(data: bytes) -> None:
    t = Transcoder(ULAW, OPUS_LEG)
    assert t.push(data, 0.0) is None
    assert t.stats.dropped == 1 and len(t.jitter) == 0


def test_events_to_a_leg_without_telephone_event_are_dropped() -> None:
    t = Transcoder(ULAW, leg(OPUS, 111, event=None))
    data = RtpPacket(payload_type=101, payload=bytes(TelephoneEvent(1)))
    assert t.push(bytes(data), 0.0) is None and t.stats.dropped == 1


def test_a_corrupt_payload_is_concealed() -> None:
    t = Transcoder(leg(OPUS, 111), ULAW, jitter=JitterBuffer(1, adaptive=False))
    t.push(bytes(RtpPacket(payload_type=111, payload=b"\xff\xff\xff")), 0.0)
    packet = t.tick(0.0)
    assert packet is not None and len(RtpPacket.parse(bytes(packet)).payload) == 160
    assert t.stats.concealed == 1


def test_source_restart_resets_the_jitter_buffer() -> None:
    stream = TranscodedStream(ULAW, OPUS_LEG)
    a1, a2 = Phone(ULAW, 1), Phone(ULAW, 2)
    for k in range(5):
        stream.push("a", a1.packet(), k * FRAME)
        stream.tick(k * FRAME)
    a2.sent = 3000
    stream.push("a", a2.packet(), 0.1)
    assert stream.to["b"].jitter.stats.resets == 1


# -- the adapter ------------------------------------------------------------------------
class FakeLoop:
    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], None]) -> FakeHandle:
        handle = FakeHandle(when, callback)
        self.timers.append((when, handle.run))
        return handle


class FakeHandle:
    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def run(self) -> None:
        if not self.cancelled:
            self.callback()

    def cancel(self) -> None:
        self.cancelled = True


class FakeRelayStream:
    def __init__(self) -> None:
        self.closed = False
        self.taps: dict[str, Callable[[memoryview], None] | None] = {}
        self.sent: list[tuple[str, RtpPacket]] = []

    def set_tap(self, from_side: str, tap: Callable[[memoryview], None] | None) -> None:
        self.taps[from_side] = tap

    def send(self, side: str, packet: bytearray) -> bool:
        self.sent.append((side, RtpPacket.parse(bytes(packet))))
        return True


def test_pump_taps_both_sides_and_ticks_every_20_ms() -> None:
    loop, relay = FakeLoop(), FakeRelayStream()
    pump = TranscodingPump(relay, TranscodedStream(ULAW, OPUS_LEG, jitter_target=1),
                           loop)  # type: ignore[arg-type]
    pump.start()
    a, b = Phone(ULAW, 1), Phone(OPUS_LEG, 2)
    for _ in range(5):
        when, fire = loop.timers.pop(0)
        assert when == pytest.approx(loop.now + FRAME)
        loop.now = when
        for side, phone in (("a", a), ("b", b)):
            tap = relay.taps[side]
            assert tap is not None
            tap(memoryview(phone.packet()))
        fire()
    assert [side for side, _ in relay.sent] == ["b", "a"] * 5
    assert {p.payload_type for side, p in relay.sent if side == "b"} == {111}
    event = RtpPacket(payload_type=101, timestamp=9, payload=bytes(TelephoneEvent(3, True)))
    tap = relay.taps["a"]
    assert tap is not None
    tap(memoryview(bytes(event)))
    assert relay.sent[-1][0] == "b" and relay.sent[-1][1].payload_type == 100  # b's number
    loop.now += 1.0  # the loop stalled: the next tick is re-based, no burst
    loop.timers.pop(0)[1]()
    assert loop.timers[-1][0] == pytest.approx(loop.now + FRAME)
    pump.stop()
    assert relay.taps == {"a": None, "b": None}
    loop.timers.pop(0)[1]()  # cancelled: nothing happens
    pump.stop()


def test_pump_stops_with_a_closed_stream() -> None:
    loop, relay = FakeLoop(), FakeRelayStream()
    pump = TranscodingPump(relay, TranscodedStream(ULAW, OPUS_LEG), loop)  # type: ignore[arg-type]
    pump.start()
    relay.closed = True
    loop.timers.pop(0)[1]()
    assert loop.timers == [] and relay.sent == []
    pump.stop()
