"""Recording: the timeline with a fake clock (alignment, gaps, jitter, drops), the WAV file
(header fixed on close, readable after a kill), and a loopback call recorded while relayed."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import wave
from array import array
from pathlib import Path

import pytest

from media.audiofile import load
from media.codecs import G722, OPUS, PCMA, PCMU
from media.ports import PortAllocator
from media.recorder import (
    UNKNOWN_SIZE,
    WAV_HEADER_SIZE,
    Recorder,
    RecordingMix,
    WavWriter,
    repair_wav,
    wav_header,
)
from media.relay import MediaRelay
from media.rtp import RtpPacket
from media.transcode import LegCodec
from tests.unit.audio_support import dominant, mean_square
from tests.unit.audio_support import tone as sine

ULAW, ALAW = LegCodec(PCMU, 0), LegCodec(PCMA, 8)
HOST = "127.0.0.1"
LOW, HIGH = 32200, 32299  # apart from the other tests' ranges
FRAME = 160  # samples of 20 ms at 8 kHz
ROOT = Path(__file__).parents[2]


def rtp(leg: LegCodec, freq: float, frames: int, *, ssrc: int = 0x5151, seq: int = 1000,
        ts: int = 80_000) -> list[bytes]:
    """``frames`` consecutive 20 ms packets of a sine in ``leg``'s codec."""
    codec, encoder = leg.codec, leg.codec.encoder()
    pcm = sine(codec.sample_rate, codec.frame_samples * frames, (freq,))
    return [bytes(RtpPacket(leg.payload_type, int(i == 0), (seq + i) & 0xFFFF,
                            (ts + i * codec.timestamp_step) & 0xFFFFFFFF, ssrc,
                            payload=encoder.encode(pcm[i * codec.frame_bytes:
                                                       (i + 1) * codec.frame_bytes])))
            for i in range(frames)]


def channel(pcm: bytes, index: int, channels: int = 2) -> bytes:
    return array("h", pcm)[index::channels].tobytes()


def loud_blocks(pcm: bytes, block: int = FRAME) -> list[bool]:
    """Per 20 ms block (at 8 kHz): is there sound?"""
    return [mean_square(pcm[i : i + block * 2]) > 1e5 for i in range(0, len(pcm), block * 2)]


def record(mix: RecordingMix, arrivals: list[tuple[float, int, bytes]], end: float) -> bytes:
    """Feed (arrival, channel, packet) in time order, pulling every 0.1 s, then finish."""
    out, pulled = bytearray(), 0.0
    for now, ch, packet in sorted(arrivals, key=lambda a: a[0]):
        while pulled + 0.1 <= now:
            pulled += 0.1
            out += mix.pull(pulled)
        mix.push(ch, packet, now)
    return bytes(out + mix.finish(end))


def sent_at(packets: list[bytes], ch: int, start: float,
            delays: list[float] | None = None) -> list[tuple[float, int, bytes]]:
    """Packet i leaves at start + 20 ms * i and has arrived at the end of its frame."""
    return [(start + 0.02 * (i + 1) + (delays[i] if delays else 0.0), ch, p)
            for i, p in enumerate(packets)]


# -- the timeline ---------------------------------------------------------------------------
def test_two_legs_are_aligned_left_caller_right_callee() -> None:
    mix = RecordingMix([ULAW, ALAW], start=100.0)
    assert (mix.rate, mix.channels) == (8000, 2)
    caller = sent_at(rtp(ULAW, 1000.0, 50), 0, 100.0)  # 0 .. 1 s
    callee = sent_at(rtp(ALAW, 500.0, 25, ssrc=0x7777), 1, 100.5)  # answers at 0.5 s
    pcm = record(mix, caller + callee, 101.0)
    assert len(pcm) == 8000 * 2 * 2  # one second of stereo
    left, right = channel(pcm, 0), channel(pcm, 1)
    assert loud_blocks(left)[1:] == [True] * 49  # the codec's first frame may start soft
    assert loud_blocks(right) == [False] * 25 + [True] * 25  # to the frame
    assert dominant(left[4000:8000], 8000) == 1000.0
    assert dominant(right[10000:14000], 8000) == 500.0


def test_gaps_are_filled_with_silence_and_nothing_shifts() -> None:
    packets = rtp(ULAW, 1000.0, 50)
    lost = packets[:10] + packets[11:20] + packets[35:]  # one lost, then 0.3 s unsent (VAD)
    arrivals = [a for a in sent_at(packets, 0, 0.0) if a[2] in lost]
    left = record(RecordingMix([ULAW], start=0.0), arrivals, 1.0)
    assert len(left) == 8000 * 2
    blocks = loud_blocks(left)
    assert blocks[10] is False and blocks[20:35] == [False] * 15
    assert blocks[11:20] == [True] * 9 and blocks[35:] == [True] * 15


def test_jitter_neither_gaps_nor_shifts_the_audio() -> None:
    packets = rtp(ULAW, 1000.0, 50)
    delays = [0.0] * 10 + [0.06, 0.04, 0.02] + [0.0] * 15 + [0.1, 0.08, 0.06, 0.04, 0.02]
    delays += [0.0] * (50 - len(delays))  # two stalls released in bursts
    smooth = record(RecordingMix([ULAW], start=0.0), sent_at(packets, 0, 0.0), 1.2)
    jittered = record(RecordingMix([ULAW], start=0.0), sent_at(packets, 0, 0.0, delays), 1.2)
    assert jittered == smooth and loud_blocks(smooth)[1:50] == [True] * 49


def test_a_new_stream_or_a_frozen_clock_is_placed_by_arrival() -> None:
    first = rtp(ULAW, 1000.0, 10)
    after_hold = rtp(ULAW, 1000.0, 10, seq=1010, ts=80_000 + 1600)  # timestamps did not advance
    other = rtp(ULAW, 1000.0, 10, ssrc=0x9999, seq=7, ts=5)  # a new SSRC (a transfer)
    arrivals = sent_at(first, 0, 0.0) + sent_at(after_hold, 0, 1.0) + sent_at(other, 0, 2.0)
    blocks = loud_blocks(record(RecordingMix([ULAW], start=0.0), arrivals, 2.2))
    assert [i for i, loud in enumerate(blocks) if loud] == \
        list(range(0, 10)) + list(range(50, 60)) + list(range(100, 110))


def test_reordered_late_foreign_malformed_and_too_fast_packets() -> None:
    mix = RecordingMix([ULAW], start=0.0, max_skew_s=0.1, latency_s=0.15)
    packets = rtp(ULAW, 1000.0, 40)
    for i in (0, 1, 2, 3, 4, 6, 5, 7, 8, 9):  # 5 comes after 6: it goes back into its place
        mix.push(0, packets[i], 0.02 * (i + 1))
    in_order = RecordingMix([ULAW], start=0.0)
    for i in range(10):
        in_order.push(0, packets[i], 0.02 * (i + 1))
    assert mix.tracks[0].buf == in_order.tracks[0].buf and mix.tracks[0].dropped == 0
    assert len(mix.pull(0.2)) == 400 * 2 and mix.tracks[0].base == 400  # up to 0.05 s
    mix.push(0, packets[1], 0.2)  # a duplicate whose place is already pulled
    mix.push(0, packets[7], 0.2)  # one still in memory: written again, in place
    mix.push(0, bytes(RtpPacket(101, 0, 1, 80_000, 0x5151, payload=bytes(4))), 0.2)  # an event
    mix.push(0, b"\x80\x00", 0.2)
    for i in range(10, 40):  # 30 frames at once: only max_skew ahead of the clock is kept
        mix.push(0, packets[i], 0.2)
    track = mix.tracks[0]
    assert track.dropped == 3 + (30 - 6)
    assert track.end == 16 * FRAME  # 10 in time, 6 ahead (0.1 s of skew)
    with pytest.raises(ValueError):
        RecordingMix([ULAW], start=0.0, latency_s=0.3, max_skew_s=0.3)


def test_wideband_legs_record_at_16_khz() -> None:
    g722, opus = LegCodec(G722, 9), LegCodec(OPUS, 111)
    mix = RecordingMix([g722, opus], start=0.0)
    assert mix.rate == 16000
    arrivals = sent_at(rtp(g722, 1000.0, 25), 0, 0.0) + sent_at(rtp(opus, 500.0, 25), 1, 0.0)
    pcm = record(mix, arrivals, 0.5)
    assert len(pcm) == 16000 // 2 * 2 * 2
    left, right = channel(pcm, 0), channel(pcm, 1)
    assert dominant(left[6400:12800], 16000) == 1000.0
    assert dominant(right[6400:12800], 16000) == 500.0
    assert RecordingMix([ULAW], start=0.0, rate=48000).rate == 48000
    with pytest.raises(ValueError):
        RecordingMix([], start=0.0)


# -- the file ----------------------------------------------------------------------------------
def test_wav_writer_fixes_the_header_on_close(tmp_path: Path) -> None:
    path = tmp_path / "call.wav"
    writer = WavWriter(path, 8000, 2)
    assert path.read_bytes() == wav_header(8000, 2, None)  # there at once, length unknown
    writer.write(bytes(range(256)) * 4)
    assert path.stat().st_size == WAV_HEADER_SIZE + 1024  # flushed: a kill keeps it
    writer.close()
    writer.close()
    with wave.open(str(path)) as f:
        assert (f.getnchannels(), f.getframerate(), f.getsampwidth()) == (2, 8000, 2)
        assert f.getnframes() == 256 and f.readframes(256) == bytes(range(256)) * 4
    with pytest.raises(FileExistsError):  # a recording is never overwritten
        WavWriter(path, 8000, 1)


def test_repair_wav(tmp_path: Path) -> None:
    path = tmp_path / "crashed.wav"
    path.write_bytes(wav_header(8000, 2, None) + bytes(4 * 100 + 3))  # a partial frame at the end
    with wave.open(str(path)) as f:
        assert f.getnframes() == UNKNOWN_SIZE // 4  # what the header claims
        assert len(f.readframes(10**6)) == 403  # what is there
    assert repair_wav(path) == 100
    with wave.open(str(path)) as f:
        assert f.getnframes() == 100
    (tmp_path / "other.bin").write_bytes(b"RIFX" + bytes(60))
    with pytest.raises(ValueError):
        repair_wav(tmp_path / "other.bin")


CRASHING = """
import asyncio, sys
from media.recorder import Recorder
from media.transcode import LegCodec
from media.codecs import PCMU, PCMA
from tests.unit.test_recorder import rtp

class Stream:
    closed = False
    watchers = {}
    def set_watcher(self, side, watcher):
        self.watchers[side] = watcher

async def main():
    stream = Stream()
    recorder = Recorder(stream, sys.argv[1], [("a", LegCodec(PCMU, 0)), ("b", LegCodec(PCMA, 8))],
                        flush_s=0.05)
    caller, callee = rtp(LegCodec(PCMU, 0), 1000.0, 500), rtp(LegCodec(PCMA, 8), 500.0, 500)
    recorder.start()  # the packets are ready: the first one is on time
    for i in range(500):
        await asyncio.sleep(0.02)
        stream.watchers["a"](memoryview(caller[i]))
        stream.watchers["b"](memoryview(callee[i]))
        if i == 60:
            print("recording", flush=True)

asyncio.run(main())
"""


def test_a_killed_recording_is_still_a_wav_file(tmp_path: Path) -> None:
    path = tmp_path / "abrupt.wav"
    proc = subprocess.Popen([sys.executable, "-c", CRASHING, str(path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "recording\n"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with wave.open(str(path)) as f:  # as a crash left it
        assert (f.getnchannels(), f.getframerate(), f.getsampwidth()) == (2, 8000, 2)
        pcm = f.readframes(10**7)
    assert len(pcm) >= 0.5 * 8000 * 4  # over a second was spoken; all but the last ~0.5 s kept
    assert dominant(channel(pcm, 0)[:4000], 8000) == 1000.0
    assert dominant(channel(pcm, 1)[:4000], 8000) == 500.0
    assert load(path).info.channels == 2  # FFmpeg reads it to its end too
    frames = repair_wav(path)
    with wave.open(str(path)) as f:
        assert f.getnframes() == frames >= 4000 and f.readframes(frames) == pcm[: frames * 4]


# -- on loopback: recorded while relayed -----------------------------------------------------------
async def test_a_relayed_call_is_recorded_in_stereo(tmp_path: Path) -> None:
    relay = MediaRelay(PortAllocator(LOW, HIGH, HOST))
    phones = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    heard: list[bytes] = []
    loop = asyncio.get_running_loop()
    try:
        for phone in phones:
            phone.bind((HOST, 0))
            phone.setblocking(False)
        stream = relay.open("call-rec")
        stream.set_remote("a", phones[0].getsockname())
        stream.set_remote("b", phones[1].getsockname())
        loop.add_reader(phones[1].fileno(), lambda: heard.append(phones[1].recv(2048)))
        recorder = Recorder(stream, tmp_path / "call.wav", [("a", ULAW), ("b", ULAW)],
                            flush_s=0.05)
        recorder.start()
        caller, callee = rtp(ULAW, 1000.0, 25), rtp(ULAW, 500.0, 25, ssrc=0x6666)
        for i in range(25):
            phones[0].sendto(caller[i], (HOST, stream.local("a")[1]))
            phones[1].sendto(callee[i], (HOST, stream.local("b")[1]))
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)
        result = recorder.stop()
        assert recorder.stop() is result
    finally:
        loop.remove_reader(phones[1].fileno())
        for phone in phones:
            phone.close()
        relay.close()
    assert relay.ports_in_use() == 0
    assert len(heard) == 25 and heard[3] == caller[3]  # the watcher left relaying alone
    assert (result.channels, result.rate, result.error) == (2, 8000, None)
    assert result.dropped == 0 and 0.45 <= result.duration_s <= 1.5
    with wave.open(result.path) as f:
        assert f.getnchannels() == 2 and f.getnframes() == result.frames
        pcm = f.readframes(result.frames)
    left, right = channel(pcm, 0), channel(pcm, 1)
    assert dominant(left[800:3200], 8000) == 1000.0 and dominant(right[800:3200], 8000) == 500.0
    assert sum(loud_blocks(left)) >= 20 and sum(loud_blocks(right)) >= 20
