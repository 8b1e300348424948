"""Call recording in the real switch, with real phones.

* Extension 101 records its calls (one PBX-Recording licence, from an authority
  of the test).  baresip 100 (playing 1 kHz) calls baresip 101 (playing 400 Hz);
  the call leaves a stereo WAV under the state directory's
  ``recordings/demo.centrala.test/<date>/``: 1 kHz dominant on the left channel
  (the caller), 400 Hz on the right (the callee); ``centrala cdr --csv`` names
  that file; no RTP port is left allocated.
* The tenant records every call (``recording: true`` at tenant level, one
  licence per extension).  The switch is killed (SIGKILL) mid-call: the WAV on
  disk says "size unknown" but holds both parties; the next start repairs its
  header (true sizes), and the audio is still there.
"""

from __future__ import annotations

import csv
import io
import shutil
import struct
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from media.recorder import UNKNOWN_SIZE, WAV_HEADER_SIZE
from tests.e2e.baresip import Baresip
from tests.e2e.calls_support import DOMAIN, call_config, edit_tenant, extension
from tests.e2e.conftest import Centrala
from tests.e2e.media_support import (
    dominant_frequency,
    ports_released,
    registered,
    status,
    write_tone,
)
from tests.e2e.registrar_support import Authority, cli, wait_for
from tests.e2e.test_media_features import call_between, phone

StartCentrala = Callable[..., Centrala]
ConfigCopy = Callable[..., Path]
CALLER_TONE, CALLEE_TONE = 1000.0, 400.0


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("authority"))


def recording_config(config_copy: ConfigCopy, authority: Authority, licences: int,
                     edit: Callable[[dict[str, Any]], None]) -> Path:
    """The call configuration with ``licences`` PBX-Recording licences (besides the
    demo's own) and the tenant changed by ``edit``."""
    config = call_config(config_copy)
    shutil.copy(authority.pub, config / "licences" / "test-authority.pub")
    authority.issue(config / "licences" / "recording.lic", f"PBX-Recording:{licences}")
    edit_tenant(config, edit)
    return config


def cdr_rows(c: Centrala) -> list[dict[str, str]]:
    out = cli("cdr", "-c", str(c.config_dir), "--state", str(c.state_dir), "--csv").stdout
    return list(csv.DictReader(io.StringIO(out)))


def assert_both_parties(path: Path, report: str) -> None:
    """Stereo, the caller's tone dominant on the left, the callee's on the right."""
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000), report
    for channel, tone in ((0, CALLER_TONE), (1, CALLEE_TONE)):
        freq, rms = dominant_frequency(path, channel)
        assert rms > 500 and abs(freq - tone) <= 40, (path, channel, freq, rms, report)


def test_an_extensions_call_is_recorded_in_stereo_and_named_by_its_cdr(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority,
    tmp_path: Path
) -> None:
    def edit(data: dict[str, Any]) -> None:
        extension(data, "101")["recording"] = True
    c = start_centrala(recording_config(config_copy, authority, 1, edit))
    caller, callee, report = call_between(
        c, tmp_path,
        {"source": write_tone(tmp_path / "1khz.wav", CALLER_TONE, 5), "seconds": 7},
        {"source": write_tone(tmp_path / "400hz.wav", CALLEE_TONE, 8), "seconds": 8})
    assert wait_for(lambda: any(r["recording"] for r in cdr_rows(c)), 5.0), report
    (row,) = [r for r in cdr_rows(c) if r["disposition"] == "answered"]
    assert (row["caller"], row["callee"]) == ("100", "101"), row
    relative = Path(row["recording"])
    assert relative.parts[:2] == ("recordings", DOMAIN), row
    assert relative.name == f"{row['call_ref']}.wav", row
    path = c.state_dir / relative
    with wave.open(str(path)) as w:  # finalised: the header has the true sizes
        assert w.getnframes() * 4 + WAV_HEADER_SIZE == path.stat().st_size
        assert w.getnframes() > 3 * 8000, report  # the call lasted ~5 s
    assert_both_parties(path, report)
    assert not list((c.state_dir / "recordings" / ".open").iterdir())
    text = cli("cdr", "-c", str(c.config_dir), "--state", str(c.state_dir)).stdout
    assert f"recording {relative}" in text, text
    assert ports_released(c), status(c)


def _header_sizes(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:WAV_HEADER_SIZE]
    return struct.unpack_from("<I", header, 4)[0], struct.unpack_from("<I", header, 40)[0]


def test_a_recording_survives_a_killed_switch_and_is_repaired_at_the_next_start(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority,
    tmp_path: Path
) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["recording"] = True  # every call of the tenant
    config = recording_config(config_copy, authority, 10, edit)
    first = start_centrala(config)
    callee = phone(tmp_path, "101", first, "127.0.0.4",
                   source=write_tone(tmp_path / "400hz.wav", CALLEE_TONE, 30), seconds=30)
    caller: Baresip | None = None
    folder = first.state_dir / "recordings" / DOMAIN
    try:
        assert wait_for(lambda: registered(first, "101"), 5.0), callee.report()
        caller = phone(tmp_path, "100", first, "127.0.0.3", dial=f"sip:101@{DOMAIN}",
                       source=write_tone(tmp_path / "1khz.wav", CALLER_TONE, 30), seconds=30)
        three_seconds = WAV_HEADER_SIZE + 3 * 8000 * 4
        assert wait_for(lambda: any(p.stat().st_size > three_seconds
                                    for p in folder.glob("*/*.wav")), 15.0), (
            caller.report() + first.log_tail())
        first.proc.kill()  # SIGKILL mid-call: no BYE, no CDR, no header fixed
        first.proc.wait()
        first.stopped = True
    finally:
        for p in (caller, callee):
            if p is not None:
                p.stop()
    (path,) = folder.glob("*/*.wav")
    assert _header_sizes(path) == (UNKNOWN_SIZE, UNKNOWN_SIZE)
    (marker,) = (first.state_dir / "recordings" / ".open").iterdir()
    assert marker.read_text().strip() == str(path.relative_to(first.state_dir))
    size = path.stat().st_size
    second = start_centrala(config, extra_args=["--state", str(first.state_dir)])
    assert wait_for(lambda: _header_sizes(path) != (UNKNOWN_SIZE, UNKNOWN_SIZE), 5.0), (
        second.log_tail())
    data = (size - WAV_HEADER_SIZE) // 4 * 4
    assert _header_sizes(path) == (36 + data, data)
    assert not marker.exists()
    assert "was left open (crash): repaired" in second.log_text()
    assert_both_parties(path, second.log_tail())
    time.sleep(0.2)
    second.assert_alive()
