"""Configuration through the real CLI and process: check, hot reload, reload command."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable

from tests.e2e.conftest import Centrala, centrala_bin

DEMO_TENANT = "tenants/demo.yaml"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(centrala_bin()), *args], capture_output=True, text=True, timeout=30, check=False
    )


def wait_for_log(c: Centrala, text: str, after: int, timeout: float = 10.0) -> str:
    """The log past offset ``after`` once it contains ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tail = c.log_text()[after:]
        if text in tail:
            return tail
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged within {timeout}s\n{c.log_tail()}")


def test_check_accepts_the_demo_and_reports_file_and_line(
    config_copy: Callable[..., Path],
) -> None:
    good = cli("check", "-c", "config")
    assert good.returncode == 0, good.stderr
    bad = config_copy()
    tenant = bad / DEMO_TENANT
    tenant.write_text(tenant.read_text() + "\nbogus_key: 1\n")
    (bad / "centrala.yaml").write_text(
        (bad / "centrala.yaml").read_text().replace("t1_ms: 500", "t1_ms: fast")
    )
    out = cli("check", "-c", str(bad))
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert any(f"{tenant}:" in line and "bogus_key" in line for line in lines), out.stderr
    assert any("centrala.yaml:" in line and "t1_ms" in line for line in lines), out.stderr
    # file:line:column: reason
    line_no = len(tenant.read_text().splitlines())
    assert any(line.startswith(f"{tenant}:{line_no}:") for line in lines), out.stderr


def test_hot_reload_applies_good_and_refuses_bad_config(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path]
) -> None:
    config = config_copy()
    c = start_centrala(config)
    tenant = config / DEMO_TENANT
    original = tenant.read_text()

    mark = len(c.log_text())
    tenant.write_text(original.replace("name: Demo Ltd", "name: Demo Renamed Ltd"))
    wait_for_log(c, "configuration reloaded", mark)

    mark = len(c.log_text())
    tenant.write_text(original + "\nextensions_typo: []\n")
    tail = wait_for_log(c, "configuration refused", mark)
    assert f"{tenant}:" in tail and "extensions_typo" in tail
    c.assert_alive()  # the last good configuration is still serving

    mark = len(c.log_text())
    tenant.write_text(original)
    wait_for_log(c, "configuration reloaded", mark)


def test_reload_command_signals_the_running_switch(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path]
) -> None:
    config = config_copy()
    c = start_centrala(config)
    mark = len(c.log_text())
    out = cli("reload", "-c", str(config), "--state", str(c.state_dir))
    assert out.returncode == 0, out.stderr
    wait_for_log(c, "configuration reloaded", mark)
    c.stop()
    out = cli("reload", "-c", str(config), "--state", str(c.state_dir))
    assert out.returncode == 1 and "not running" in out.stderr
