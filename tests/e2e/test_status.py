"""``centrala status``: the running switch's counters as JSON (what ``bench.soak`` watches)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

from tests.e2e.conftest import Centrala, centrala_bin
from tests.e2e.sipdevice import SipDevice

COUNTERS = {"pid", "calls", "calls_active", "transactions", "transactions_in_flight", "tasks",
            "bindings", "connections", "rtp_ports_in_use", "open_fds", "rss_bytes"}


def status(c: Centrala, *extra: str) -> dict[str, int]:
    out = subprocess.run(
        [str(centrala_bin()), "status", "-c", str(c.config_dir), "--state", str(c.state_dir),
         *extra],
        capture_output=True, text=True, timeout=30, check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_status_of_an_idle_switch(centrala: Centrala) -> None:
    idle = status(centrala, "--gc")
    assert set(idle) == COUNTERS
    assert idle["pid"] == centrala.proc.pid
    assert idle["calls"] == idle["calls_active"] == idle["bindings"] == 0
    assert idle["rtp_ports_in_use"] == 0
    assert idle["connections"] == 0
    assert idle["tasks"] >= 2  # at least the housekeeping loops
    assert idle["open_fds"] >= 4  # UDP, TCP and TLS listeners, the control socket
    assert idle["rss_bytes"] > 10 * 2**20


def test_status_follows_bindings_and_connections(centrala: Centrala) -> None:
    before = status(centrala)
    phone = SipDevice((centrala.host, centrala.udp_port), "100", "demo-pass-100")
    try:
        assert phone.register().startswith("SIP/2.0 200")
        assert status(centrala)["bindings"] == 1
        assert phone.register(expires=0).startswith("SIP/2.0 200")
        assert status(centrala)["bindings"] == 0
    finally:
        phone.close()
    with socket.create_connection((centrala.host, centrala.tcp_port), timeout=3):
        assert centrala.probe("udp") is not None  # the accept has been processed by now
        during = status(centrala)
        assert during["connections"] == 1
        assert during["open_fds"] == before["open_fds"] + 1


def test_status_without_a_running_switch(tmp_path: Path) -> None:
    out = subprocess.run(
        [str(centrala_bin()), "status", "-c", "config", "--state", str(tmp_path)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert out.returncode == 1
    assert "not running" in out.stderr
