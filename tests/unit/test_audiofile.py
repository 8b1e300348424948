"""Audio files for players: WAV and MP3 of any rate to telephone PCM, refusals, tones,
and the default music on hold."""

from __future__ import annotations

import fractions
import io
import struct
import wave
import zlib
from array import array
from pathlib import Path

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from media import audiofile, moh_default
from media.audiofile import (
    BEEP,
    BUSY,
    BUSY_NA,
    CODEC_RATES,
    RINGBACK,
    AudioFileError,
    AudioProblem,
    ToneSequence,
    ToneStep,
    load,
    tone,
)
from media.dtmf import InbandDetector
from tests.unit.audio_support import dominant, mean_square, power_at
from tests.unit.audio_support import tone as sine

SLICE_S = 0.2  # how much of a converted clip the frequency checks look at


def wav_bytes(rate: int, channels: int = 1, width: int = 2, seconds: float = 1.0,
              freqs: tuple[float, ...] = (1000.0,)) -> bytes:
    """A WAV of a sine per channel (``freqs[i]`` on channel i, the last one repeated)."""
    frames = int(rate * seconds)
    chans = [array("h", sine(rate, frames, (freqs[min(c, len(freqs) - 1)],)))
             for c in range(channels)]
    interleaved = array("h", [chans[c][i] for i in range(frames) for c in range(channels)])
    if width == 1:  # unsigned 8-bit
        data = bytes((s >> 8) + 128 for s in interleaved)
    else:
        data = interleaved.tobytes()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return out.getvalue()


def mp3_bytes(rate: int = 44100, seconds: float = 1.0, freq: float = 1000.0) -> bytes:
    """A stereo MP3 made with PyAV's encoder (LAME), a sine on both channels."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=rate)
        stream.layout = "stereo"
        stream.format = "s16p"
        pcm, size = sine(rate, int(rate * seconds), (freq,)), 1152
        for pts in range(0, len(pcm) // 2, size):
            chunk = pcm[pts * 2 : (pts + size) * 2].ljust(size * 2, b"\0")
            frame = av.AudioFrame(format="s16p", layout="stereo", samples=size)
            frame.planes[0].update(chunk)
            frame.planes[1].update(chunk)
            frame.sample_rate, frame.pts = rate, pts
            frame.time_base = fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def middle(pcm: bytes, rate: int) -> bytes:
    """``SLICE_S`` from the middle of the clip (away from filter edges)."""
    n = int(rate * SLICE_S) * 2
    start = (len(pcm) // 2 - n // 2) & ~1
    return pcm[start : start + n]


def refused(source: bytes | str | Path, max_duration_s: float = 60.0) -> AudioFileError:
    with pytest.raises(AudioFileError) as info:
        load(source, max_duration_s=max_duration_s)
    return info.value


# -- loading and converting ----------------------------------------------------------------
@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_wav_any_rate_converts_to_every_codec_rate(rate: int) -> None:
    clip = load(wav_bytes(rate), rates=CODEC_RATES)
    assert clip.info.format_name == "wav" and clip.info.codec_name == "pcm_s16le"
    assert (clip.info.sample_rate, clip.info.channels) == (rate, 1)
    assert clip.duration_s == pytest.approx(1.0)
    assert set(CODEC_RATES) <= set(clip.rates())
    for target in CODEC_RATES:
        pcm = clip.pcm(target)
        assert abs(len(pcm) // 2 - target) <= target // 100  # one second, give or take 1 %
        assert dominant(middle(pcm, target), target) == 1000.0


def test_conversion_is_done_once_per_rate() -> None:
    clip = load(wav_bytes(44100, seconds=0.2))
    assert clip.rates() == (44100,)
    first = clip.pcm(8000)
    assert clip.pcm(8000) is first and clip.rates() == (8000, 44100)


def test_stereo_is_mixed_down() -> None:
    clip = load(wav_bytes(16000, channels=2, freqs=(500.0, 1000.0)))
    assert clip.info.channels == 2
    pcm = middle(clip.pcm(8000), 8000)
    left, right = power_at(pcm, 8000, 500.0), power_at(pcm, 8000, 1000.0)
    assert left > 1e5 and right > 1e5 and 0.5 < left / right < 2
    assert power_at(pcm, 8000, 2000.0) < left / 100


def test_8_bit_wav() -> None:
    clip = load(wav_bytes(11025, width=1))
    assert clip.info.codec_name == "pcm_u8"
    pcm = middle(clip.pcm(8000), 8000)
    assert dominant(pcm, 8000) == 1000.0
    assert mean_square(pcm) == pytest.approx(8000**2 / 2, rel=0.1)  # the level survives


def test_mp3() -> None:
    clip = load(mp3_bytes(44100), rates=CODEC_RATES)
    assert clip.info.format_name == "mp3" and clip.info.channels == 2
    assert clip.duration_s == pytest.approx(1.0, abs=0.1)  # plus the encoder's padding
    for target in CODEC_RATES:
        assert dominant(middle(clip.pcm(target), target), target) == 1000.0


def test_a_path_or_bytes(tmp_path: Path) -> None:
    path = tmp_path / "moh.wav"
    path.write_bytes(wav_bytes(8000, seconds=0.1))
    assert load(path).pcm(8000) == load(str(path)).pcm(8000) == load(path.read_bytes()).pcm(8000)


# -- refusals ---------------------------------------------------------------------------------
def png_bytes() -> bytes:
    """A 1x1 PNG: a file FFmpeg opens, with a video stream and no audio."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0\0")) + chunk(b"IEND", b""))


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def test_refusals_say_why(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    good = wav_bytes(8000, seconds=0.5)
    cases: list[tuple[bytes | Path, AudioProblem]] = [
        (b"", AudioProblem.EMPTY),
        (empty, AudioProblem.EMPTY),
        (wav_bytes(8000, seconds=0), AudioProblem.EMPTY),  # a header and no samples
        (b"Hold music, please.\n" * 50, AudioProblem.NOT_AUDIO),
        (bytes(range(256)) * 8, AudioProblem.NOT_AUDIO),
        (good[:30], AudioProblem.NOT_AUDIO),  # the header cut short
        (png_bytes(), AudioProblem.NOT_AUDIO),
        (patched(good, 22, "<H", 0), AudioProblem.NO_CHANNELS),
        (patched(good, 20, "<H", 2), AudioProblem.DECODE_ERROR),  # "MS ADPCM" over PCM bytes
        (tmp_path / "missing.wav", AudioProblem.UNREADABLE),
        (tmp_path, AudioProblem.UNREADABLE),  # a directory
    ]
    for source, problem in cases:
        error = refused(source)
        assert error.problem is problem, (source if isinstance(source, Path) else source[:40],
                                          error)
        assert str(error).startswith(problem.value + ": ") and error.detail
    assert "no audio stream" in refused(png_bytes()).detail


def test_too_long_by_the_header_and_while_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    long = wav_bytes(8000, seconds=2.0)
    error = refused(long, max_duration_s=1.5)
    assert error.problem is AudioProblem.TOO_LONG and "2.0 s" in error.detail
    assert load(long, max_duration_s=2.0).duration_s == pytest.approx(2.0)
    monkeypatch.setattr(audiofile, "_declared_seconds", lambda *_: 0.0)  # a header that lies
    assert refused(long, max_duration_s=1.5).problem is AudioProblem.TOO_LONG
    assert refused(mp3_bytes(seconds=2.0), max_duration_s=1.0).problem is AudioProblem.TOO_LONG


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_only_audio_file_error_escapes(data: st.DataObject) -> None:
    """Uploads are untrusted: damaged WAVs and MP3s load or are refused, nothing else."""
    good = data.draw(st.sampled_from([WAV_SAMPLE, MP3_SAMPLE]))
    damaged = bytearray(good[: data.draw(st.integers(0, len(good)))])
    for _ in range(data.draw(st.integers(0, 8))):
        if damaged:
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    try:
        load(bytes(damaged), max_duration_s=5.0)
    except AudioFileError:
        pass


WAV_SAMPLE = wav_bytes(8000, channels=2, seconds=0.1)
MP3_SAMPLE = mp3_bytes(seconds=0.2)


# -- tones ---------------------------------------------------------------------------------
def test_tone() -> None:
    pcm = tone((1000.0,), 100, 8000)
    assert len(pcm) == 800 * 2 and dominant(pcm, 8000) == 1000.0
    assert mean_square(pcm) == pytest.approx((0.2 * 32767) ** 2 / 2, rel=0.1)  # less the ramps
    samples = array("h", pcm)
    assert abs(samples[0]) < 300 and abs(samples[-1]) < 300  # ramped: no click
    assert tone((), 20, 16000) == bytes(640)


def test_tone_sequences() -> None:
    steps = ToneSequence((ToneStep((500.0,), 100), ToneStep((), 50), ToneStep((1000.0,), 100)))
    pcm = steps.pcm(8000)
    assert len(pcm) == 250 * 8 * 2 and steps.pcm(8000) is pcm  # made once per rate
    assert dominant(pcm[:1600], 8000) == 500.0 and pcm[1600:2400] == bytes(800)
    assert dominant(pcm[2400:], 8000) == 1000.0
    ring = RINGBACK.pcm(8000)
    assert len(ring) == 5 * 8000 * 2 and ring[8000 * 2 :] == bytes(4 * 8000 * 2)
    assert dominant(ring[:8000], 8000, (350.0, 425.0, 440.0, 480.0)) == 425.0
    assert len(BUSY.pcm(16000)) == 16000 * 2 and len(BEEP.pcm(48000)) == 48000 // 4 * 2
    busy = BUSY_NA.pcm(8000)[:4000 * 2]
    assert power_at(busy, 8000, 480.0) > 1e6 and power_at(busy, 8000, 620.0) > 1e6


# -- the default music on hold --------------------------------------------------------------
def test_default_music_on_hold_ships_and_loads() -> None:
    assert moh_default.ASSET.is_file() and moh_default.ASSET.stat().st_size < 500_000
    clip = load(moh_default.ASSET, rates=CODEC_RATES)
    assert (clip.info.sample_rate, clip.info.channels) == (8000, 1)
    assert 20.0 <= clip.duration_s <= 30.0
    assert InbandDetector(8000).feed(clip.pcm(8000)) == []  # holding music never dials
    pyproject = (Path(moh_default.__file__).parents[1] / "pyproject.toml").read_text()
    assert '[tool.setuptools.package-data]\nmedia = ["assets/*.wav"]' in pyproject


def test_default_music_on_hold_is_what_the_generator_makes() -> None:
    """The shipped file is the script's output (to one step, for other platforms' libm)."""
    with wave.open(str(moh_default.ASSET)) as f:
        shipped = array("h", f.readframes(f.getnframes()))
    made = array("h", moh_default.render())
    assert len(made) == len(shipped)
    assert max(abs(a - b) for a, b in zip(made, shipped, strict=True)) <= 1
    # the loop has no seam: the end leads into the start as smoothly as anywhere else
    assert abs(made[0] - made[-1]) < 2 * max(abs(made[i + 1] - made[i]) for i in range(8000))
