"""Audio for players: uploaded files (WAV, MP3) and generated tones as telephone PCM.

Theory of operation
-------------------
Everything a ``media.player.Player`` plays is a ``PcmSource``: something that
gives 16-bit signed little-endian mono PCM at the rate a codec codes (8 kHz
for PCMU/PCMA, 16 kHz for G.722, 48 kHz for Opus; ``media.codecs``).

* ``load()`` decodes a file once with PyAV (FFmpeg: WAV of any rate, 8- or
  16-bit, mono or stereo, MP3, and whatever else FFmpeg reads), mixes it down
  to mono 16-bit at the file's own rate, and returns an ``AudioClip``.
  ``AudioClip.pcm(rate)`` converts it to a rate the first time it is asked
  and keeps the result, so a music-on-hold file is converted once per rate,
  not once per held call; ``load(..., rates=CODEC_RATES)`` converts up front,
  so an upload is refused at once if any conversion fails.  Decoding takes
  CPU time in proportion to the file (about a second for ten minutes of
  MP3): call ``load()`` from a worker thread (``asyncio.to_thread``).
* A file that cannot be played is refused with ``AudioFileError``, whose
  ``problem`` says why (``AudioProblem``): empty, not audio, no channels,
  too long (``max_duration_s``, checked against the header and again while
  decoding, since headers lie), unreadable, or a decoder error.  No other
  exception leaves ``load()``: uploads are untrusted input.
* ``tone()`` synthesises sines, and a ``ToneSequence`` of ``ToneStep``s
  (frequencies, or none for silence, and a length) is a ``PcmSource`` for
  call-progress tones: ``RINGBACK``, ``BUSY`` (ITU-T E.180 425 Hz family),
  their North American forms (ATIS-0300011), and ``BEEP``.  Tone steps ramp
  in and out over a few milliseconds so that cadences do not click.
"""

from __future__ import annotations

import enum
import functools
import io
import math
import os
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

import av
from av import AudioResampler

from .codecs import G722, OPUS, PCMU, SAMPLE_BYTES, _frame, _pcm

CODEC_RATES = (PCMU.sample_rate, G722.sample_rate, OPUS.sample_rate)  # 8, 16 and 48 kHz
DEFAULT_MAX_DURATION_S = 600.0  # ten minutes of music on hold or a prompt
_RAMP_MS = 5  # tone steps fade in and out over this


class PcmSource(Protocol):
    """Audio a player can play: mono 16-bit PCM at any rate asked."""

    def pcm(self, rate: int) -> bytes: ...


# -- refusals -----------------------------------------------------------------------------
class AudioProblem(enum.Enum):
    EMPTY = "empty"  # no bytes, or no samples in the audio stream
    NOT_AUDIO = "not audio"  # not a format FFmpeg knows, or no audio stream in it
    NO_CHANNELS = "no channels"
    TOO_LONG = "too long"
    UNREADABLE = "unreadable"  # the file could not be read
    DECODE_ERROR = "decoder error"


class AudioFileError(ValueError):
    """A file that cannot be played; ``problem`` is the reason, the message the detail."""

    def __init__(self, problem: AudioProblem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem, self.detail = problem, detail


# -- files --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What the file was, before conversion."""

    format_name: str  # FFmpeg's container name: "wav", "mp3", ...
    codec_name: str  # FFmpeg's decoder: "pcm_s16le", "pcm_u8", "mp3float", ...
    sample_rate: int
    channels: int


class AudioClip:
    """A decoded file: mono 16-bit PCM at its own rate, converted to other rates on demand."""

    def __init__(self, pcm: bytes, rate: int, info: AudioInfo) -> None:
        self.rate, self.info = rate, info
        self._by_rate = {rate: pcm}

    @property
    def duration_s(self) -> float:
        return len(self._by_rate[self.rate]) / SAMPLE_BYTES / self.rate

    def pcm(self, rate: int) -> bytes:
        """The clip at ``rate``, converted the first time and kept."""
        pcm = self._by_rate.get(rate)
        if pcm is None:
            pcm = self._by_rate[rate] = resample_pcm(self._by_rate[self.rate], self.rate, rate)
        return pcm

    def rates(self) -> tuple[int, ...]:
        """The rates held now."""
        return tuple(sorted(self._by_rate))


def load(source: str | os.PathLike[str] | bytes, *,
         max_duration_s: float = DEFAULT_MAX_DURATION_S,
         rates: Iterable[int] = ()) -> AudioClip:
    """Decode a file (a path, or the bytes of an upload) into an ``AudioClip`` and
    convert it to ``rates`` now; ``AudioFileError`` and nothing else if it will not do."""
    data = _read(source)
    if not data:
        raise AudioFileError(AudioProblem.EMPTY, "the file has no bytes")
    try:
        clip = _decode(data, max_duration_s)
        for rate in rates:
            clip.pcm(rate)
    except AudioFileError:
        raise
    except Exception as exc:  # untrusted input: FFmpeg's and PyAV's errors vary
        raise AudioFileError(AudioProblem.DECODE_ERROR, f"{type(exc).__name__}: {exc}") from exc
    return clip


def _read(source: str | os.PathLike[str] | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        with open(source, "rb") as f:
            return f.read()
    except OSError as exc:
        raise AudioFileError(AudioProblem.UNREADABLE, f"{exc.strerror}: {source}") from exc


def _decode(data: bytes, max_duration_s: float) -> AudioClip:
    try:
        container = av.open(io.BytesIO(data), "r")
    except av.error.FFmpegError as exc:
        raise AudioFileError(AudioProblem.NOT_AUDIO, "FFmpeg knows no format in it") from exc
    with container:
        if not container.streams.audio:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise AudioFileError(AudioProblem.NOT_AUDIO,
                                 f"{container.format.name} with no audio stream (streams: {kinds})")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        info = AudioInfo(container.format.name, ctx.name, ctx.sample_rate, ctx.channels)
        if info.channels <= 0:
            raise AudioFileError(AudioProblem.NO_CHANNELS, f"the {info.codec_name} stream has none")
        if info.sample_rate <= 0:
            raise AudioFileError(AudioProblem.DECODE_ERROR, "the audio stream has no sample rate")
        _check_length(_declared_seconds(container, stream), max_duration_s)
        pcm = _mono_pcm(container.decode(stream), info.sample_rate, max_duration_s)
    if not pcm:
        raise AudioFileError(AudioProblem.EMPTY, f"the {info.codec_name} stream has no samples")
    return AudioClip(pcm, info.sample_rate, info)


def _declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float:
    """The length the headers announce, 0 if they do not say."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def _check_length(seconds: float, max_duration_s: float) -> None:
    if seconds > max_duration_s:
        raise AudioFileError(AudioProblem.TOO_LONG,
                             f"{seconds:.1f} s, more than the {max_duration_s:g} s allowed")


def _mono_pcm(frames: Iterator[av.AudioFrame], rate: int, max_duration_s: float) -> bytes:
    """Every frame mixed down to mono s16 at ``rate``, stopping once past the limit."""
    mixdown = AudioResampler(format="s16", layout="mono", rate=rate)
    out = bytearray()
    limit = int(max_duration_s * rate) * SAMPLE_BYTES
    for frame in frames:
        frame.pts = None  # the resampler needs no timing, and some files' is broken
        out += _frames_pcm(mixdown.resample(frame))
        if len(out) > limit:
            _check_length(len(out) / SAMPLE_BYTES / rate, max_duration_s)
    out += _frames_pcm(mixdown.resample(None))
    return bytes(out)


def _frames_pcm(frames: Iterable[av.AudioFrame]) -> bytes:
    return b"".join(_pcm(f) for f in frames)


def resample_pcm(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Mono 16-bit PCM from one rate to another, in one go (the filter flushed)."""
    if src_rate == dst_rate or not pcm:
        return pcm
    resampler = AudioResampler(format="s16", layout="mono", rate=dst_rate)
    return (_frames_pcm(resampler.resample(_frame(pcm, src_rate, None)))
            + _frames_pcm(resampler.resample(None)))


# -- tones --------------------------------------------------------------------------------
def tone(freqs: Iterable[float], ms: int, rate: int, level: float = 0.2) -> bytes:
    """``ms`` of the sum of sines at ``freqs``, each at ``level`` of full scale, ramped
    in and out; no frequencies is silence."""
    samples = rate * ms // 1000
    fs = tuple(freqs)
    if not fs:
        return bytes(samples * SAMPLE_BYTES)
    amplitude = level * 32767
    steps = [2 * math.pi * f / rate for f in fs]
    ramp = max(1, min(rate * _RAMP_MS // 1000, samples // 2))
    out = array("h", bytes(samples * SAMPLE_BYTES))
    for i in range(samples):
        gain = min(1.0, (i + 1) / ramp, (samples - i) / ramp)
        out[i] = int(gain * amplitude * sum(math.sin(w * i) for w in steps))
    return out.tobytes()


@dataclass(frozen=True, slots=True)
class ToneStep:
    """One step of a cadence: ``freqs`` together for ``ms`` (none: silence)."""

    freqs: tuple[float, ...]
    ms: int


@dataclass(frozen=True, slots=True)
class ToneSequence:
    """A cadence, played once or looped by a player; its PCM is made once per rate."""

    steps: tuple[ToneStep, ...]
    level: float = 0.2

    def pcm(self, rate: int) -> bytes:
        return _sequence_pcm(self, rate)


@functools.lru_cache(maxsize=64)
def _sequence_pcm(sequence: ToneSequence, rate: int) -> bytes:
    return b"".join(tone(s.freqs, s.ms, rate, sequence.level) for s in sequence.steps)


def _cadence(freqs: tuple[float, ...], on_ms: int, off_ms: int) -> ToneSequence:
    return ToneSequence((ToneStep(freqs, on_ms), ToneStep((), off_ms)))


RINGBACK = _cadence((425.0,), 1000, 4000)  # ITU-T E.180: most of Europe
BUSY = _cadence((425.0,), 500, 500)
RINGBACK_NA = _cadence((440.0, 480.0), 2000, 4000)  # North America
BUSY_NA = _cadence((480.0, 620.0), 500, 500)
BEEP = ToneSequence((ToneStep((1000.0,), 250),))  # "record after the tone"
