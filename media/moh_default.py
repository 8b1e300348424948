"""The default music on hold, synthesised here: no third-party recording.

Eight chords of three seconds, 8 kHz mono 16-bit (the rate of G.711), 24 s,
about 380 KB, rendered deterministically: a soft pad (sines with two weak
harmonics, slow attack and release), a bass note per chord and a bell-like
arpeggio on the chord tones.  The timeline is circular: what rings past the
end is added at the start, so a looping player has no seam.  All tones stay
under 1 kHz and the result is checked against the in-band DTMF detector
(tests/unit/test_audiofile.py), so holding music never dials a digit.

``python -m media.moh_default [PATH]`` writes it (by default to ``ASSET``,
the file shipped in the package).
"""

from __future__ import annotations

import math
import sys
import wave
from array import array
from pathlib import Path

ASSET = Path(__file__).with_name("assets") / "moh-default.wav"
RATE = 8000
CHORD_S = 3.0
PEAK = 0.5  # of full scale: -6 dBFS

# MIDI notes: (bass, pad voices); I-vi-IV-V then iii-vi-ii-V in C major.
PROGRESSION: tuple[tuple[int, tuple[int, ...]], ...] = (
    (36, (55, 60, 64, 71)),  # Cmaj7
    (45, (57, 60, 64, 67)),  # Am7
    (41, (57, 60, 64, 65)),  # Fmaj7
    (43, (55, 59, 62, 65)),  # G7
    (40, (55, 59, 62, 64)),  # Em7
    (45, (57, 60, 64, 67)),  # Am7
    (38, (53, 57, 60, 62)),  # Dm7
    (43, (55, 59, 62, 67)),  # G
)
ARPEGGIO = (0, 1, 2, 3, 2, 1, 2, 3)  # pad voice indices, an octave up, every half second


def midi_hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _add(out: list[float], start_s: float, length_s: float, freq: float, level: float,
         partials: tuple[float, ...], attack_s: float, decay_s: float | None) -> None:
    """Add one note to the circular timeline: sine partials (harmonic weights), a
    raised-cosine attack, then a sustain (``decay_s`` None) or an exponential decay,
    and a raised-cosine release over the note's last third."""
    n, first, count = len(out), round(start_s * RATE), round(length_s * RATE)
    w = 2 * math.pi * freq / RATE
    attack, release = round(attack_s * RATE), count // 3
    for i in range(count):
        env = 0.5 - 0.5 * math.cos(math.pi * i / attack) if i < attack else 1.0
        if decay_s is not None:
            env *= math.exp(-i / (decay_s * RATE))
        if i > count - release:
            env *= 0.5 + 0.5 * math.cos(math.pi * (i - (count - release)) / release)
        x = sum(a * math.sin(k * w * i) for k, a in enumerate(partials, 1))
        out[(first + i) % n] += level * env * x


def render() -> bytes:
    """The whole piece as 16-bit mono PCM at ``RATE``."""
    out = [0.0] * round(len(PROGRESSION) * CHORD_S * RATE)
    step = CHORD_S / len(ARPEGGIO)
    for index, (bass, voices) in enumerate(PROGRESSION):
        t = index * CHORD_S
        for note in voices:  # the pad rings into the next chord
            _add(out, t, CHORD_S * 1.5, midi_hz(note), 0.16, (1.0, 0.2, 0.06), 0.8, None)
        _add(out, t, CHORD_S * 1.2, midi_hz(bass), 0.35, (1.0, 0.3), 0.03, 1.6)
        for k, voice in enumerate(ARPEGGIO):
            _add(out, t + k * step, 1.5, midi_hz(voices[voice] + 12), 0.2, (1.0, 0.1), 0.01, 0.35)
    scale = PEAK * 32767 / max(abs(x) for x in out)
    return array("h", [round(x * scale) for x in out]).tobytes()


def write(path: Path = ASSET) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(RATE)
        f.writeframes(render())


def main(argv: list[str]) -> int:
    write(Path(argv[0]) if argv else ASSET)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
