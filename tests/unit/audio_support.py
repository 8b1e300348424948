"""Test audio: generated tones and noise as 16-bit PCM, and a Goertzel spectrum probe."""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Iterable, Sequence


def tone(rate: int, samples: int, freqs: Iterable[float] = (1000.0,), amplitude: float = 8000.0,
         start: int = 0) -> bytes:
    """Sines of ``freqs`` (each at ``amplitude``) from sample ``start`` on, as PCM."""
    fs = list(freqs)
    return array("h", [
        int(sum(amplitude * math.sin(2 * math.pi * f * (start + i) / rate) for f in fs))
        for i in range(samples)
    ]).tobytes()


def mix(*pcms: bytes) -> bytes:
    """The sum of equally long PCM signals."""
    return array("h", [sum(x) for x in zip(*(array("h", p) for p in pcms), strict=True)]).tobytes()


def noise(samples: int, sigma: float = 3000.0, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    return array("h", [max(-32768, min(32767, int(rnd.gauss(0, sigma))))
                       for _ in range(samples)]).tobytes()


def power_at(pcm: bytes, rate: int, freq: float) -> float:
    """|X(freq)|^2 of the PCM (Goertzel), normalised so a sine alone scores its mean square."""
    samples = array("h", pcm)
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return 2 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / len(samples) ** 2


def dominant(pcm: bytes, rate: int, candidates: Sequence[float] = (
        250.0, 500.0, 750.0, 1000.0, 1250.0, 1500.0, 2000.0, 3000.0)) -> float:
    """The candidate frequency with the most power in the PCM."""
    return max(candidates, key=lambda f: power_at(pcm, rate, f))


def mean_square(pcm: bytes) -> float:
    samples = array("h", pcm)
    return sum(x * x for x in samples) / len(samples)
