"""Helpers shared by the end-to-end media tests: tones, their analysis, SDP peeks and
the switch's RTP port count.

* ``write_tone`` makes a mono 8 kHz WAV of one frequency; ``dominant_frequency``
  finds the strongest frequency of the loudest second of a recording (Goertzel,
  one DFT bin per 20 Hz step), with its RMS.
* ``sdp_port``/``sdp_line``/``body`` read SIP and SDP text as the peers logged it.
* ``status``/``ports_released`` ask ``centrala status`` whether any RTP port is
  still allocated; ``registered`` whether a phone is in the registrar.
"""

from __future__ import annotations

import json
import math
import re
import struct
import wave
from pathlib import Path

from tests.e2e.calls_support import DOMAIN
from tests.e2e.conftest import Centrala, rtp_ports
from tests.e2e.registrar_support import cli, wait_for

RATE = 8000


# --------------------------------------------------------------------------- audio


def write_tone(path: Path, freq: float, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"".join(
            struct.pack("<h", round(12000 * math.sin(2 * math.pi * freq * i / RATE)))
            for i in range(int(RATE * seconds))))
    return path


def _goertzel(samples: list[int], rate: int, freq: float) -> float:
    """Power of ``freq`` in ``samples`` (one DFT bin, Goertzel's recurrence)."""
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return s1 * s1 + s2 * s2 - k * s1 * s2


def dominant_frequency(path: Path) -> tuple[float, float]:
    """(dominant frequency in 100..3900 Hz, RMS) of the loudest second of a mono WAV."""
    with wave.open(str(path)) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    samples = list(struct.unpack(f"<{len(frames) // 2}h", frames))
    seconds = [samples[i:i + rate] for i in range(0, max(len(samples) - rate + 1, 1), rate)]
    loudest = max(seconds, key=lambda s: sum(x * x for x in s))
    rms = math.sqrt(sum(x * x for x in loudest) / max(len(loudest), 1))
    window = loudest[: rate // 2]
    best = max(range(100, 3901, 20), key=lambda f: _goertzel(window, rate, f))
    return float(best), rms


# --------------------------------------------------------------------------- the switch


def status(c: Centrala) -> dict[str, int]:
    out = cli("status", "-c", str(c.config_dir), "--state", str(c.state_dir))
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def ports_released(c: Centrala) -> bool:
    return wait_for(lambda: status(c)["rtp_ports_in_use"] == 0, 5.0)


def rtp_range() -> range:
    low, high = map(int, rtp_ports().split("-"))
    return range(low, high + 1)


def registered(c: Centrala, number: str) -> bool:
    out = cli("registrations", "-c", str(c.config_dir), "--state", str(c.state_dir))
    return f"{number}@{DOMAIN}" in out.stdout


# --------------------------------------------------------------------------- SIP and SDP text


def sdp_port(sdp: str) -> int:
    m = re.search(r"^m=audio (\d+) ", sdp, re.MULTILINE)
    assert m, sdp
    return int(m.group(1))


def sdp_line(sdp: str, kind: str) -> str:
    m = re.search(rf"^{kind}=(.*?)\s*$", sdp, re.MULTILINE)
    assert m, sdp
    return m.group(1)


def body(message: str) -> str:
    return re.split(r"\r?\n\r?\n", message, maxsplit=1)[1]
