"""Registrations over time: qualify marks silent devices, expiry frees licences,
a crash loses no acknowledged binding."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable

from tests.e2e.conftest import Centrala, centrala_bin
from tests.e2e.sipdevice import SipDevice

FAST = {
    "timers": {"t1_ms": 50, "t2_ms": 400, "t4_ms": 500},  # Timer F = 3.2 s
    "registrar": {"qualify_interval_s": 1, "qualify_failures": 2, "min_expires": 1,
                  "default_expires": 60},
}


def cli(*args: str) -> str:
    out = subprocess.run([str(centrala_bin()), *args], capture_output=True, text=True,
                         timeout=30, check=True)
    return out.stdout


def registrations(c: Centrala, state: Path | None = None) -> list[list[str]]:
    state = state or c.state_dir
    text = cli("registrations", "-c", str(c.config_dir), "--state", str(state))
    return [line.split("\t") for line in text.splitlines() if line]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what}")


def test_qualify_marks_a_silent_device_unreachable_and_back(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path]
) -> None:
    c = start_centrala(config_copy(**FAST))
    phone = SipDevice((c.host, c.udp_port), "100", "demo-pass-100")
    try:
        assert phone.register().startswith("SIP/2.0 200")
        assert phone.answer_options(2) == 2  # qualified once a second, and answered
        assert registrations(c)[0][4] == "ok"
        # silence: two timed-out OPTIONS (Timer F 3.2 s each) make it unreachable
        wait_until(lambda: registrations(c)[0][4] == "UNREACHABLE", 12, "marked unreachable")
        assert "unreachable at sip:100@" in c.log_text()
        phone.drain()  # the probes sent while it was silent are stale
        assert phone.answer_options(2) == 2
        assert registrations(c)[0][4] == "ok"
    finally:
        phone.close()


def test_expiry_removes_the_binding_and_frees_the_licence(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path]
) -> None:
    c = start_centrala(config_copy(**FAST))
    phone = SipDevice((c.host, c.udp_port), "101", "demo-pass-101")
    try:
        assert "expires=2" in phone.register(expires=2)
        licences = cli("licences", "-c", str(c.config_dir), "--state", str(c.state_dir))
        assert any(line.split()[:1] == ["PBX-Port"] and line.split()[-1] == "1"
                   for line in licences.splitlines()), licences
        wait_until(lambda: registrations(c) == [], 5, "binding expired")
        wait_until(
            lambda: any(line.split()[:1] == ["PBX-Port"] and line.split()[-1] in ("-", "0")
                        for line in cli("licences", "-c", str(c.config_dir), "--state",
                                        str(c.state_dir)).splitlines()),
            5, "licence freed")
    finally:
        phone.close()


def test_a_crash_loses_no_binding_acknowledged_a_second_before(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path]
) -> None:
    config = config_copy()
    first = start_centrala(config)
    phone = SipDevice((first.host, first.udp_port), "104", "demo-pass-104")
    try:
        assert phone.register(expires=600).startswith("SIP/2.0 200")
    finally:
        phone.close()
    time.sleep(1.0)
    first.proc.kill()  # SIGKILL: no flush, no goodbye
    first.proc.wait()
    first.stopped = True
    second = start_centrala(config, extra_args=["--state", str(first.state_dir)])
    (row,) = registrations(second, first.state_dir)
    assert row[0] == "104@demo.centrala.test" and int(row[2].rstrip("s")) > 590
