"""The player: the pacing clock and the playout with a fake clock, the asyncio adapter
with a fake stream, and one loopback call where a phone hears a 1 kHz tone."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from media.audiofile import ToneSequence, ToneStep
from media.codecs import G722, PCMU
from media.player import EARLY_S, EndReason, PlayEnd, Player, PlayoutClock, Playout
from media.ports import PortAllocator
from media.relay import MediaRelay, Rewriter, Side
from media.rtp import RtpPacket
from media.transcode import LegCodec
from tests.unit.audio_support import dominant
from tests.unit.audio_support import tone as sine

ULAW = LegCodec(PCMU, 0)
HOST = "127.0.0.1"
LOW, HIGH = 32100, 32199  # apart from the other tests' ranges


def parse(packets: list[bytearray]) -> list[RtpPacket]:
    return [RtpPacket.parse(bytes(p)) for p in packets]


def run(playout: Playout, until: float, step: float = 0.02, start: float = 0.0) -> list[RtpPacket]:
    """Tick the playout every ``step`` from ``start`` up to ``until`` (excluded)."""
    out: list[bytearray] = []
    n = 0
    while start + n * step < until - 1e-9:
        out += playout.frames_due(start + n * step)
        n += 1
    return parse(out)


def exact_ulaw_pcm(samples: int) -> tuple[bytes, bytes]:
    """(mu-law bytes, their PCM): PCM that PCMU encodes back to exactly those bytes."""
    law = bytes((i * 37) % 256 for i in range(samples)).replace(b"\x7f", b"\xff")  # one zero
    return law, PCMU.decoder().decode(law)


# -- the clock ----------------------------------------------------------------------------
def test_clock_gives_50_frames_a_second_however_often_it_is_asked() -> None:
    for poll in (0.02, 0.007, 0.013, 0.0199):
        clock = PlayoutClock(start=10.0)
        slots: list[int] = []
        t = 10.0
        while t < 11.0 - EARLY_S:  # slot 50 is due from 11.0 - EARLY_S on
            slots += clock.frames_due(t)
            t += poll
        assert slots == list(range(50)) and clock.skipped == 0, poll
        assert clock.next_due() == pytest.approx(11.0)


def test_clock_catches_up_without_bursting() -> None:
    clock = PlayoutClock(start=0.0, max_burst=3)
    assert list(clock.frames_due(0.0)) == [0]
    assert list(clock.frames_due(0.05)) == [1, 2]  # 2.5 frames late: both sent
    assert list(clock.frames_due(0.25)) == [10, 11, 12]  # 10 due: the last 3 go
    assert clock.skipped == 7 and clock.next_due() == pytest.approx(0.26)
    assert list(clock.frames_due(0.251)) == []  # nothing twice
    assert list(clock.frames_due(0.26 - EARLY_S)) == [13]  # on time again, or nearly
    with pytest.raises(ValueError):
        PlayoutClock(0.0, max_burst=0)


# -- the playout ----------------------------------------------------------------------------
def test_playout_once_is_one_stream_of_50_packets_a_second() -> None:
    pcm = sine(8000, 8000)  # one second
    playout = Playout(pcm, ULAW, start=0.0, ssrc=0x1234, seq=65530, timestamp=0xFFFFFF00)
    packets = run(playout, 1.0)
    assert len(packets) == 50 and playout.ended is None
    assert {p.ssrc for p in packets} == {0x1234} and {p.payload_type for p in packets} == {0}
    assert [p.sequence_number for p in packets] == [(65530 + i) % 65536 for i in range(50)]
    assert [p.timestamp for p in packets] == [(0xFFFFFF00 + 160 * i) % 2**32 for i in range(50)]
    assert [p.marker for p in packets] == [1] + [0] * 49  # RFC 3551 §4.1
    assert all(len(p.payload) == 160 for p in packets)
    assert playout.frames_due(1.0) == [] and playout.ended == PlayEnd(EndReason.FINISHED, 50)


def test_playout_pads_the_last_frame_and_ends_when_its_sound_is_over() -> None:
    law, pcm = exact_ulaw_pcm(200)  # 25 ms: a frame and a quarter
    playout = Playout(pcm, ULAW, start=0.0)
    packets = run(playout, 0.04)
    assert [p.payload for p in packets] == [law[:160], law[160:] + b"\xff" * 120]  # 0xFF: silence
    assert playout.ended is None
    assert playout.frames_due(0.04) == [] and playout.ended is not None
    assert playout.ended.reason is EndReason.FINISHED


def test_playout_loops_without_a_gap() -> None:
    law, pcm = exact_ulaw_pcm(240)  # 30 ms: loops mid-frame
    playout = Playout(pcm, ULAW, start=0.0, repeat=True)
    packets = run(playout, 1.0)
    assert len(packets) == 50 and playout.ended is None
    assert b"".join(p.payload for p in packets) == (law * 34)[: 50 * 160]
    short = Playout(exact_ulaw_pcm(40)[1], ULAW, start=0.0, repeat=True)  # shorter than a frame
    assert run(short, 0.02)[0].payload == exact_ulaw_pcm(40)[0] * 4
    assert Playout(b"", ULAW, start=0.0, repeat=True).ended == PlayEnd(EndReason.FINISHED, 0)


def test_late_wake_up_reads_as_a_pause_and_loses_no_audio() -> None:
    law, pcm = exact_ulaw_pcm(160 * 10)
    playout = Playout(pcm, ULAW, start=0.0, max_burst=3, seq=0, timestamp=0)
    first = parse(playout.frames_due(0.0))
    late = parse(playout.frames_due(0.2))  # slots 1..10 due: 8, 9, 10 sent
    assert [p.timestamp for p in first + late] == [0, 160 * 8, 160 * 9, 160 * 10]
    assert [p.sequence_number for p in first + late] == [0, 1, 2, 3]
    assert [p.marker for p in first + late] == [1, 1, 0, 0]  # the pause starts a talkspurt
    assert b"".join(p.payload for p in first + late) == law[: 4 * 160]  # the audio goes on


def test_stop_and_stop_on_a_digit() -> None:
    playout = Playout(sine(8000, 8000), ULAW, start=0.0, repeat=True)
    run(playout, 0.1)
    playout.stop()
    assert playout.ended == PlayEnd(EndReason.STOPPED, 5)
    assert playout.frames_due(0.5) == [] and not playout.digit("1")
    playout.stop()
    assert playout.ended.reason is EndReason.STOPPED

    prompt = Playout(sine(8000, 8000), ULAW, start=0.0, stop_digits="#*")
    run(prompt, 0.06)
    assert not prompt.digit("5") and not prompt.digit("") and prompt.ended is None
    assert prompt.digit("#") and prompt.ended == PlayEnd(EndReason.DIGIT, 3, "#")
    music = Playout(sine(8000, 8000), ULAW, start=0.0)  # by default no key stops it
    assert not music.digit("1") and music.ended is None


def test_wideband_leg_gets_g722_at_its_clock() -> None:
    playout = Playout(sine(16000, 16000), LegCodec(G722, 9), start=0.0, timestamp=0)
    packets = run(playout, 0.1)
    assert [p.timestamp for p in packets] == [160 * i for i in range(5)]  # RFC 3551 §4.5.2
    assert all(len(p.payload) == 160 and p.payload_type == 9 for p in packets)


def test_relay_music_relay_is_one_stream_through_the_side_rewriter() -> None:
    """What the phone receives: the other party, then music, then the party again."""
    now = [0.0]
    rewriter = Rewriter(ssrc=0xCAFE, clock=lambda: now[0])
    out: list[RtpPacket] = []

    def send(packet: bytes | bytearray) -> None:
        buf = bytearray(packet)
        rewriter.rewrite(buf)
        out.append(RtpPacket.parse(bytes(buf)))

    for i in range(10):  # relayed from the other party
        now[0] = i * 0.02
        send(bytes(RtpPacket(0, 0, 5000 + i, 777 + 160 * i, 0xAAAA, payload=bytes(160))))
    playout = Playout(sine(8000, 8000), ULAW, start=0.3, repeat=True)  # hold, 100 ms later
    for i in range(25):
        now[0] = 0.3 + i * 0.02
        for packet in playout.frames_due(now[0]):
            send(packet)
    for i in range(5):  # resumed
        now[0] = 0.9 + i * 0.02
        send(bytes(RtpPacket(0, 0, 5010 + i, 777 + 160 * (10 + i), 0xAAAA, payload=bytes(160))))
    assert {p.ssrc for p in out} == {0xCAFE} and len(out) == 40
    assert [p.sequence_number for p in out] == [5000 + i for i in range(40)]
    steps = [(b.timestamp - a.timestamp) % 2**32 for a, b in zip(out, out[1:], strict=False)]
    assert steps[:9] == [160] * 9 and steps[10:34] == [160] * 24 and steps[35:] == [160] * 4
    assert steps[9] == 160 * 6 and steps[34] == 160 * 6  # each pause as long as it was
    assert [i for i, p in enumerate(out) if p.marker] == [10, 35]


# -- the adapter ------------------------------------------------------------------------------
class FakeStream:
    def __init__(self) -> None:
        self.closed = False
        self.sent: list[tuple[Side, bytearray]] = []

    def send(self, side: Side, packet: bytearray) -> bool:
        self.sent.append((side, packet))
        return True


BEEP_100MS = ToneSequence((ToneStep((1000.0,), 100),))


async def test_player_reports_its_end_once() -> None:
    stream, ends = FakeStream(), list[PlayEnd]()
    player = Player(stream, "b", ULAW, BEEP_100MS, on_done=ends.append)
    player.start()
    end = await asyncio.wait_for(player.wait(), 2.0)
    assert end == PlayEnd(EndReason.FINISHED, 5) and ends == [end] and player.ended == end
    assert [side for side, _ in stream.sent] == ["b"] * 5
    player.stop()
    assert ends == [end]


async def test_player_stops_on_a_digit_or_when_the_stream_closes() -> None:
    stream, ends = FakeStream(), list[PlayEnd]()
    prompt = Player(stream, "a", ULAW, BEEP_100MS, repeat=True, stop_digits="0123456789",
                    on_done=ends.append)
    assert not prompt.digit("1")  # not started
    prompt.start()
    assert not prompt.digit("#") and prompt.digit("7")
    assert ends == [PlayEnd(EndReason.DIGIT, 1, "7")]

    music = Player(stream, "a", ULAW, BEEP_100MS, repeat=True)
    music.start()
    stream.closed = True
    end = await asyncio.wait_for(music.wait(), 2.0)
    assert end.reason is EndReason.CLOSED

    never = Player(stream, "a", ULAW, BEEP_100MS)
    never.stop()
    never.start()  # stopped before it started: it stays stopped
    assert never.ended == PlayEnd(EndReason.STOPPED, 0) and never.core is None


# -- on loopback: a phone hears the tone --------------------------------------------------------
@pytest.fixture
async def relay() -> AsyncIterator[MediaRelay]:
    engine = MediaRelay(PortAllocator(LOW, HIGH, HOST))
    yield engine
    engine.close()
    assert engine.ports_in_use() == 0


async def test_phone_hears_a_1khz_tone_in_pcmu(relay: MediaRelay) -> None:
    loop = asyncio.get_running_loop()
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind((HOST, 0))
    phone.setblocking(False)
    stream = relay.open("call-moh")
    stream.set_remote("a", phone.getsockname())
    stream.hold("a", True)  # the other party put the phone on hold
    received: list[RtpPacket] = []
    enough = loop.create_future()

    def readable() -> None:
        received.append(RtpPacket.parse(phone.recv(2048)))
        if len(received) == 25 and not enough.done():
            enough.set_result(loop.time())

    loop.add_reader(phone.fileno(), readable)
    tone = ToneSequence((ToneStep((1000.0,), 1000),))
    player = Player(stream, "a", ULAW, tone, repeat=True)
    try:
        started = loop.time()
        player.start()
        done_at = await asyncio.wait_for(enough, 3.0)
    finally:
        player.stop()
        loop.remove_reader(phone.fileno())
        phone.close()
    assert done_at - started >= 0.45  # paced: frame 25 is due at 0.48 s, never sent early
    assert [p.sequence_number - received[0].sequence_number for p in received[:25]] == \
        list(range(25))
    assert {p.payload_type for p in received} == {0}
    decoder = PCMU.decoder()
    pcm = b"".join(decoder.decode(p.payload) for p in received[:25])
    assert dominant(pcm, 8000) == 1000.0
    assert stream.counters("a").packets_out >= 25
