"""Recording one leg, or both legs, of a relayed call to a WAV file.

Theory of operation
-------------------
* ``RecordingMix`` (sans-IO) places each leg's audio on a common timeline in
  samples at the file's rate, counted from the start of the recording.  One
  ``_Track`` per leg (channel 0 is the left one: the caller in a two-leg
  recording, channel 1 the callee) decodes the leg's codec, resamples to the
  file's rate and appends.  Within one RTP stream the RTP timestamps place
  the audio, so jitter neither shifts nor gaps it, and lost packets or
  silence suppression become silence of the timestamps' length.  The arrival
  time anchors a stream: at its first packet, on a new SSRC, and whenever
  the timestamps and the arrival time disagree by more than ``max_skew_s``
  (a timestamp jump, a hold that stopped the clock, clock drift); the audio
  then goes where the arrival time says, silence filling the gap.  A
  reordered packet goes back into its place while that part of the timeline
  is still in memory (``latency_s``; exact for G.711, a stateful decoder
  glitches as a phone's would); packets later than that, packets not of the
  leg's payload type (telephone-event, comfort noise) and malformed ones are
  dropped; so is audio arriving faster than real time by more than ``max_skew_s``,
  which bounds the memory a peer can take.  ``set_leg`` changes a leg's codec
  mid-recording (a re-INVITE): its timeline goes on, the next packet
  re-anchors on its arrival time.  ``pull(now)`` hands out the
  interleaved PCM older than ``latency_s``, padding a silent leg, so both
  channels stay aligned by arrival time and little is held in memory.
* ``WavWriter`` writes a canonical 44-byte WAV header whose RIFF and data
  sizes say "unknown" (0xFFFFFFFF, as streamed WAV does), then the PCM,
  flushed to the operating system at every write; ``close()`` writes the
  true sizes.  After a crash (the process killed mid-call) the file holds
  everything flushed, that is all but the last ``latency_s + flush_s``; a
  reader sees a valid WAV of unknown length: FFmpeg and sox read it to the
  end of the file, Python's ``wave`` opens it and ``readframes`` returns what
  is there, though ``getnframes()`` reports the huge count of the header.
  ``repair_wav()`` writes the true sizes into such a file (run it over the
  recordings left open when the switch starts).  Nothing is fsync'ed: a power
  cut may lose what the OS had not written yet.
* ``Recorder`` is the asyncio adapter: a ``RelayStream.set_watcher`` per
  recorded side copies each packet with its arrival time into a bounded
  queue (the relay callback stays a copy and an append); one ``loop.call_at``
  every ``flush_s`` decodes the queue into the mix and writes what is ready.
  ``set_legs`` follows a codec change of the call, ``stop()`` writes the rest up
  to now and finalises the file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from av.error import FFmpegError

from .codecs import FRAME_MS, SAMPLE_BYTES, Resampler
from .rtp import RtpFormatError, RtpPacket
from .transcode import LegCodec

if TYPE_CHECKING:
    from collections.abc import Callable

    from .relay import Side

log = logging.getLogger("centrala.media")

WAV_HEADER_SIZE = 44
UNKNOWN_SIZE = 0xFFFFFFFF  # RIFF and data sizes until the file is closed
MAX_QUEUED = 1000  # packets waiting for the next flush, at most (10 s of a call at 50 pps a leg)
FRAME_S = FRAME_MS / 1000
_TS_HALF = 1 << 31


# -- the timeline ------------------------------------------------------------------------
class _Track:
    """One leg's audio on the timeline: samples from ``base`` on, not yet pulled."""

    def __init__(self, leg: LegCodec, rate: int, max_skew: int) -> None:
        self.leg, self.max_skew = leg, max_skew
        self.ratio = rate / leg.codec.clock_rate  # timeline samples per RTP timestamp unit
        self.frame = round(leg.codec.timestamp_step * self.ratio)
        self.decoder = leg.codec.decoder()
        self.resampler = Resampler(leg.codec.sample_rate, rate)
        self.buf = bytearray()
        self.base = 0  # timeline position of buf[0]
        self.ssrc: int | None = None
        self.seq = 0  # the newest sequence number placed
        self.next_ts = 0  # the timestamp that would follow the newest audio placed...
        self.next_pos = 0  # ...and where on the timeline it would go
        self.dropped = 0

    @property
    def end(self) -> int:
        return self.base + len(self.buf) // SAMPLE_BYTES

    def push(self, data: bytes, arrival: int) -> None:
        """One RTP packet of the leg, which ended arriving at timeline position ``arrival``."""
        try:
            packet = RtpPacket.parse(data)
        except RtpFormatError:
            packet = None
        if packet is None or packet.payload_type != self.leg.payload_type or \
                self.end > arrival + self.max_skew:  # faster than real time
            self.dropped += 1
            return
        start, newest = self._place(packet, arrival - self.frame)
        if start < self.base:  # late, and its place already pulled
            self.dropped += 1
            return
        pcm = self._decode(packet.payload)
        out = self.resampler.resample(pcm)
        self._put(start, out)
        if newest:
            codec = self.leg.codec
            self.seq = packet.sequence_number
            self.next_ts = (packet.timestamp + len(pcm) // SAMPLE_BYTES * codec.clock_rate
                            // codec.sample_rate) & 0xFFFFFFFF
            self.next_pos = start + len(out) // SAMPLE_BYTES

    def _place(self, packet: RtpPacket, by_arrival: int) -> tuple[int, bool]:
        """Where the packet's audio starts on the timeline, and whether it is the
        newest of its stream (a reordered or repeated one goes back into its place)."""
        delta = (packet.timestamp - self.next_ts + _TS_HALF) % (1 << 32) - _TS_HALF
        by_timestamp = self.next_pos + round(delta * self.ratio)
        if packet.ssrc == self.ssrc and (self.seq - packet.sequence_number) % 65536 < 0x8000:
            return by_timestamp, False
        if packet.ssrc != self.ssrc or abs(by_timestamp - by_arrival) > self.max_skew:
            self.ssrc = packet.ssrc  # (re)anchor on the arrival time
            return max(by_arrival, self.end), True
        return by_timestamp, True

    def _put(self, start: int, pcm: bytes) -> None:
        """Write ``pcm`` at timeline position ``start`` (not before ``base``)."""
        self.pad_to(start)
        offset = (start - self.base) * SAMPLE_BYTES
        self.buf[offset : offset + len(pcm)] = pcm

    def _decode(self, payload: bytes) -> bytes:
        try:
            return self.decoder.decode(payload) or self.decoder.conceal()
        except FFmpegError:
            return self.decoder.conceal()

    def pad_to(self, position: int) -> None:
        if position > self.end:
            self.buf += bytes((position - self.end) * SAMPLE_BYTES)

    def take(self, upto: int) -> bytes:
        """The samples before ``upto`` (silence where there is no audio); they leave."""
        self.pad_to(upto)
        size = (upto - self.base) * SAMPLE_BYTES
        out = bytes(self.buf[:size])
        del self.buf[:size]
        self.base = upto
        return out


class RecordingMix:
    """One or two legs on a common timeline, handed out as interleaved PCM (sans-IO)."""

    def __init__(self, legs: Sequence[LegCodec], *, start: float, rate: int | None = None,
                 latency_s: float = 0.5, max_skew_s: float = 0.3) -> None:
        if len(legs) not in (1, 2):
            raise ValueError(f"a recording has one or two legs, not {len(legs)}")
        if max_skew_s + FRAME_S >= latency_s:  # else audio placed by timestamp may be too late
            raise ValueError("latency_s must exceed max_skew_s by more than a frame")
        self.rate = rate or default_rate(legs)
        self.start, self.latency = start, round(latency_s * self.rate)
        self.tracks = [_Track(leg, self.rate, round(max_skew_s * self.rate)) for leg in legs]
        self.position = 0  # what has been pulled

    @property
    def channels(self) -> int:
        return len(self.tracks)

    def set_leg(self, channel: int, leg: LegCodec) -> None:
        """The leg on ``channel`` now sends ``leg`` (a re-INVITE changed its codec):
        what is on its timeline stays, the next packet is placed by its arrival."""
        old = self.tracks[channel]
        if old.leg == leg:
            return
        new = _Track(leg, self.rate, old.max_skew)
        new.buf, new.base, new.dropped = old.buf, old.base, old.dropped
        self.tracks[channel] = new

    def push(self, channel: int, packet: bytes, now: float) -> None:
        """A packet of the leg on ``channel``, arrived at ``now``."""
        self.tracks[channel].push(packet, self._at(now))

    def pull(self, now: float) -> bytes:
        """The PCM older than the latency, interleaved when stereo."""
        return self._take(self._at(now) - self.latency)

    def finish(self, now: float) -> bytes:
        """Everything left, up to ``now`` or the end of the longest track."""
        return self._take(max([self._at(now)] + [t.end for t in self.tracks]))

    def _at(self, now: float) -> int:
        return round((now - self.start) * self.rate)

    def _take(self, upto: int) -> bytes:
        if upto <= self.position:
            return b""
        self.position = upto
        channels = [array("h", t.take(upto)) for t in self.tracks]
        if len(channels) == 1:
            return channels[0].tobytes()
        out = array("h", bytes(len(channels[0]) * 2 * SAMPLE_BYTES))
        out[0::2], out[1::2] = channels
        return out.tobytes()


def default_rate(legs: Sequence[LegCodec]) -> int:
    """8 kHz when every leg is narrowband, 16 kHz otherwise (Opus's 48 kHz is not kept)."""
    return 8000 if all(leg.codec.sample_rate <= 8000 for leg in legs) else 16000


# -- the file ----------------------------------------------------------------------------
def wav_header(rate: int, channels: int, data_bytes: int | None) -> bytes:
    """A canonical 16-bit PCM WAV header; ``None``: sizes unknown (streaming)."""
    block = channels * SAMPLE_BYTES
    riff = UNKNOWN_SIZE if data_bytes is None else 36 + data_bytes
    data = UNKNOWN_SIZE if data_bytes is None else data_bytes
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff, b"WAVE", b"fmt ", 16, 1,
                       channels, rate, rate * block, block, 16, b"data", data)


class WavWriter:
    """A WAV file that stays readable if the process dies before ``close()``."""

    def __init__(self, path: str | os.PathLike[str], rate: int, channels: int) -> None:
        self.path, self.rate, self.channels = path, rate, channels
        self.data_bytes = 0
        self._file = open(path, "xb")  # "x": never overwrite; closed by close()
        self._write(wav_header(rate, channels, None))

    def write(self, pcm: bytes) -> None:
        if pcm:
            self._write(pcm)
            self.data_bytes += len(pcm)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()  # to the OS: a killed process loses nothing written

    def close(self) -> None:
        """Write the true sizes and close; safe to call again."""
        if self._file.closed:
            return
        try:
            self._file.seek(0)
            self._file.write(wav_header(self.rate, self.channels, self.data_bytes))
        finally:
            self._file.close()


def repair_wav(path: str | os.PathLike[str]) -> int:
    """Give a ``WavWriter`` file left open by a crash its true sizes (a trailing
    partial frame is cut off); returns its frames.  ``ValueError`` for another file."""
    with open(path, "r+b") as f:
        header = f.read(WAV_HEADER_SIZE)
        if len(header) < WAV_HEADER_SIZE or header[:4] != b"RIFF" or header[8:16] != b"WAVEfmt " \
                or header[36:40] != b"data":
            raise ValueError(f"{os.fspath(path)} is not a canonical PCM WAV file")
        channels, rate = struct.unpack_from("<HI", header, 22)
        block = struct.unpack_from("<H", header, 32)[0] or 1
        data = (f.seek(0, os.SEEK_END) - WAV_HEADER_SIZE) // block * block
        f.truncate(WAV_HEADER_SIZE + data)
        f.seek(0)
        f.write(wav_header(rate, channels, data))
    return data // block


# -- the adapter ---------------------------------------------------------------------------
class WatchedStream(Protocol):
    """What a recorder needs of ``media.relay.RelayStream``."""

    @property
    def closed(self) -> bool: ...

    def set_watcher(self, from_side: Side,
                    watcher: Callable[[memoryview], None] | None) -> None: ...


@dataclass(frozen=True, slots=True)
class Recording:
    """A finished recording."""

    path: str
    rate: int
    channels: int
    frames: int
    dropped: int  # packets not recorded: too late, not the leg's audio, too fast, queue full
    error: str | None = None  # why it stopped early (a write failed), if it did

    @property
    def duration_s(self) -> float:
        return self.frames / self.rate


class Recorder:
    """Records ``sides`` of a relay stream (one, or two: left then right) to ``path``."""

    def __init__(
        self, stream: WatchedStream, path: str | os.PathLike[str],
        sides: Sequence[tuple[Side, LegCodec]], *, rate: int | None = None,
        flush_s: float = 0.2, loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.stream, self.path, self.sides = stream, os.fspath(path), tuple(sides)
        self.flush_s = flush_s
        self.loop = loop or asyncio.get_running_loop()
        self.mix = RecordingMix([leg for _, leg in self.sides], start=0.0, rate=rate)
        self.result: Recording | None = None
        self._writer: WavWriter | None = None
        self._queue: list[tuple[float, int, bytes]] = []  # (arrival, channel, packet)
        self._overflow = 0
        self._handle: asyncio.TimerHandle | None = None
        self._error: str | None = None

    def start(self) -> None:
        """Create the file (``OSError`` if it exists or cannot be made) and listen."""
        self._writer = WavWriter(self.path, self.mix.rate, self.mix.channels)
        self.mix.start = self.loop.time()
        for channel, (side, _) in enumerate(self.sides):
            self.stream.set_watcher(side, self._watcher(channel))
        self._handle = self.loop.call_later(self.flush_s, self._flush)

    def set_legs(self, legs: Sequence[LegCodec]) -> None:
        """The sides' codecs changed (a re-INVITE): what is queued is decoded with the
        old ones first."""
        self._drain()
        for channel, leg in enumerate(legs):
            self.mix.set_leg(channel, leg)
        self.sides = tuple((side, leg) for (side, _), leg in zip(self.sides, legs, strict=True))

    def _watcher(self, channel: int) -> Callable[[memoryview], None]:
        queue, clock = self._queue, self.loop.time

        def watch(packet: memoryview) -> None:
            if len(queue) < MAX_QUEUED:
                queue.append((clock(), channel, bytes(packet)))
            else:
                self._overflow += 1
        return watch

    def _flush(self) -> None:
        self._handle = None
        if self.stream.closed:  # the call is gone: keep what we have
            self.stop()
            return
        self._drain()
        self._write(self.mix.pull(self.loop.time()))
        if self._error is None:
            self._handle = self.loop.call_later(self.flush_s, self._flush)

    def _drain(self) -> None:
        pending = self._queue[:]
        self._queue.clear()  # the same list: the watchers hold it
        for now, channel, packet in pending:
            self.mix.push(channel, packet, now)

    def _write(self, pcm: bytes) -> None:
        assert self._writer is not None
        if self._error is not None:
            return
        try:
            self._writer.write(pcm)
        except OSError as exc:  # a full disk: stop recording, keep the call and the file
            self._error = f"{exc.strerror or exc}"
            log.error("recording %s stopped: %s", self.path, self._error)
            self._unwatch()

    def _unwatch(self) -> None:
        if not self.stream.closed:
            for side, _ in self.sides:
                self.stream.set_watcher(side, None)

    def stop(self) -> Recording:
        """Write the rest, finalise the file and stop listening; safe to call again."""
        if self.result is not None:
            return self.result
        if self._writer is None:
            raise RuntimeError("the recorder was never started")
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._unwatch()
        self._drain()
        self._write(self.mix.finish(self.loop.time()))
        try:
            self._writer.close()
        except OSError as exc:
            self._error = self._error or f"{exc.strerror or exc}"
        block = self.mix.channels * SAMPLE_BYTES
        dropped = self._overflow + sum(t.dropped for t in self.mix.tracks)
        self.result = Recording(self.path, self.mix.rate, self.mix.channels,
                                self._writer.data_bytes // block, dropped, self._error)
        return self.result
