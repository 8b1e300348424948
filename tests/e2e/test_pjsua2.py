"""A real softphone (pjsua2, pjsip 2.14.1) registers with the real process.

Default configuration: the 401 carries two challenges, SHA-256 first and MD5
second (RFC 8760 §2.4); the phone answers the one it supports.  Each phone
runs in its own child process (tests/e2e/pjsua.py), bound to its own loopback
address, so libpj's process-wide state never leaks between tests.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Centrala, centrala_bin
from tests.e2e.pjsua import Softphone

DOMAIN = "demo.centrala.test"
WAIT_S = 10.0


def registrations(c: Centrala) -> list[list[str]]:
    """``centrala registrations`` of the running process, one row per contact."""
    cmd = [str(centrala_bin()), "registrations", "-c", str(c.config_dir),
           "--state", str(c.state_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT_S)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines() if line.strip()]


def rows_of(c: Centrala, aor: str) -> list[list[str]]:
    return [row for row in registrations(c) if row[0] == aor]


def wait_rows(c: Centrala, aor: str, want_empty: bool) -> list[list[str]]:
    """The AOR's rows once they are (non-)empty; bounded wait."""
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = rows_of(c, aor)
        if bool(rows) != want_empty or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def challenges_and_answer(log: str) -> tuple[list[str], str | None]:
    """The algorithms of the first 401's challenges, in order, and the one answered."""
    offered = re.findall(r"^WWW-Authenticate: Digest .*?algorithm=([\w-]+)", log, re.M | re.I)
    answered = re.search(r"^Authorization: Digest .*?algorithm=([\w-]+)", log, re.M | re.I)
    return offered[:2], answered.group(1) if answered else None


def challenges_of(phone: Softphone) -> tuple[list[str], str | None]:
    """As ``challenges_and_answer``, once pjsip's log file has been written out."""
    deadline = time.monotonic() + WAIT_S
    while True:
        offered, answered = challenges_and_answer(phone.log_path.read_text(errors="replace"))
        if (len(offered) == 2 and answered) or time.monotonic() > deadline:
            return offered, answered
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("transport", "bind"), [("udp", "127.0.0.2"), ("tcp", "127.0.0.3")]
)
def test_softphone_registers_and_unregisters(
    centrala: Centrala, tmp_path: Path, transport: str, bind: str
) -> None:
    aor = f"100@{DOMAIN}"
    phone = Softphone.start(
        user="100", password="demo-pass-100", domain=DOMAIN, server=centrala.target,
        transport=transport, bind=bind, log_path=tmp_path / f"pjsip-{transport}.log",
    )
    with phone:
        phone.next_event("started")
        reg = phone.wait_reg()
        assert reg["code"] == 200 and reg["active"], phone.report()
        assert 0 < reg["expiration"] <= 300, reg

        offered, answered = challenges_of(phone)
        assert offered == ["SHA-256", "MD5"], phone.report()
        assert answered in ("SHA-256", "MD5"), phone.report()

        rows = wait_rows(centrala, aor, want_empty=False)
        assert len(rows) == 1, (rows, centrala.log_tail())
        _, uri, expires, source, state = rows[0]
        assert source.startswith(f"{transport}:{bind}:"), rows
        assert uri.startswith(f"sip:100@{bind}:"), rows
        if transport == "tcp":  # RFC 3261 §19.1.4: URI parameters compare case-insensitively
            assert "transport=tcp" in uri.lower(), rows
        else:
            assert "transport=" not in uri.lower() or "transport=udp" in uri.lower(), rows
        assert 0 < int(expires.rstrip("s")) <= 300 and state == "ok", rows

        unreg = phone.unregister()
        assert unreg["code"] == 200 and not unreg["active"], phone.report()
        assert wait_rows(centrala, aor, want_empty=True) == [], centrala.log_tail()
    centrala.assert_alive()


def test_softphone_with_a_wrong_password_is_refused(centrala: Centrala, tmp_path: Path) -> None:
    phone = Softphone.start(
        user="101", password="not-the-password", domain=DOMAIN, server=centrala.target,
        transport="udp", bind="127.0.0.4", log_path=tmp_path / "pjsip-wrong.log",
    )
    with phone:
        phone.next_event("started")
        reg = phone.wait_reg()
        assert reg["code"] in (401, 403) and not reg["active"], phone.report()
    assert rows_of(centrala, f"101@{DOMAIN}") == []
    assert "SECURITY" in centrala.log_text()
