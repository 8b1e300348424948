"""Codec registry, each codec's 20 ms frames through encoder and decoder, resampling."""

from __future__ import annotations

import pytest

from media import codecs
from media.codecs import G722, OPUS, PCMA, PCMU, AudioCodec, Resampler
from media.sdp import Codec

from .audio_support import dominant, mean_square, power_at, tone

FRAMES = 25  # half a second


def through(codec: AudioCodec, pcm_frames: list[bytes]) -> bytes:
    encoder, decoder = codec.encoder(), codec.decoder()
    return b"".join(decoder.decode(encoder.encode(frame)) for frame in pcm_frames)


def sine_frames(codec: AudioCodec, freq: float = 1000.0) -> list[bytes]:
    n = codec.frame_samples
    return [tone(codec.sample_rate, n, (freq,), start=k * n) for k in range(FRAMES)]


@pytest.mark.parametrize(
    ("sdp", "expected"),
    [
        (Codec("PCMU", 8000), PCMU),
        (Codec("pcma", 8000), PCMA),
        (Codec("G722", 8000), G722),
        (Codec("OPUS", 48000, 2), OPUS),
        (Codec("opus", 48000, 1), None),
        (Codec("G729", 8000), None),
    ],
)
def test_registry_finds_by_sdp_identity(sdp: Codec, expected: AudioCodec | None) -> None:
    assert codecs.find(sdp) is expected


def test_registry_register_adds_a_codec() -> None:
    l16 = AudioCodec("L16", 8000, 1, 8000, "pcm_s16be")
    try:
        assert codecs.register(l16) is l16
        assert codecs.find(Codec("L16", 8000)) is l16
    finally:
        codecs._REGISTRY.pop(l16.key)
    assert l16 not in codecs.registered()


@pytest.mark.parametrize(
    ("codec", "samples", "step", "payload_bytes"),
    [(PCMU, 160, 160, 160), (PCMA, 160, 160, 160), (G722, 320, 160, 160), (OPUS, 960, 960, None)],
)
def test_frame_geometry(codec: AudioCodec, samples: int, step: int,
                        payload_bytes: int | None) -> None:
    assert (codec.frame_samples, codec.frame_bytes, codec.timestamp_step) == (
        samples, 2 * samples, step)
    payload = codec.encoder().encode(sine_frames(codec)[0])
    if payload_bytes is None:
        assert 0 < len(payload) < 200  # 32 kbit/s Opus: about 80 bytes
    else:
        assert len(payload) == payload_bytes


@pytest.mark.parametrize("codec", [PCMU, PCMA, G722, OPUS], ids=lambda c: c.name)
def test_sine_survives_encode_decode(codec: AudioCodec) -> None:
    out = through(codec, sine_frames(codec))
    assert len(out) == FRAMES * codec.frame_bytes
    tail = out[-10 * codec.frame_bytes :]  # past the codec's start-up delay
    assert dominant(tail, codec.sample_rate) == 1000.0
    # most of the energy is still the tone: 8000 peak -> 32e6 mean square
    assert power_at(tail, codec.sample_rate, 1000.0) > 0.5 * 32e6
    assert mean_square(tail) < 1.5 * 32e6


def test_wrong_frame_size_is_refused() -> None:
    with pytest.raises(ValueError, match="320 bytes"):
        PCMU.encoder().encode(bytes(100))


def test_conceal_fades_the_last_frame_then_silence() -> None:
    decoder = PCMU.decoder()
    assert decoder.conceal() == bytes(320)  # nothing decoded yet
    frame = sine_frames(PCMU)[0]
    decoded = decoder.decode(PCMU.encoder().encode(frame))
    first, second, third = decoder.conceal(), decoder.conceal(), decoder.conceal()
    assert mean_square(first) == pytest.approx(mean_square(decoded) / 4, rel=0.05)
    assert mean_square(second) == pytest.approx(mean_square(decoded) / 16, rel=0.05)
    assert third == bytes(320)
    decoder.decode(PCMU.encoder().encode(frame))  # a packet again: the fade starts over
    assert mean_square(decoder.conceal()) > 0


@pytest.mark.parametrize(("src", "dst"), [(8000, 48000), (48000, 8000), (8000, 16000),
                                          (16000, 8000), (16000, 48000), (8000, 8000)])
def test_resampler_keeps_the_tone_and_the_rate(src: int, dst: int) -> None:
    resampler = Resampler(src, dst)
    n = src // 50
    out = b"".join(resampler.resample(tone(src, n, start=k * n)) for k in range(FRAMES))
    produced = len(out) // 2
    assert FRAMES * dst // 50 - dst // 100 <= produced <= FRAMES * dst // 50  # filter delay
    assert dominant(out[-dst // 10 :], dst) == 1000.0
    assert resampler.resample(b"") == b""
