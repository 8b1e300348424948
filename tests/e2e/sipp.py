"""Run SIPp (Debian ``sip-tester``) at a loopback target, always bounded.

    res = run_sipp("options_uac.xml", centrala.target, transport="t1", calls=20, rate=50)
    assert res.returncode == 0, res.report()

SIPp exits 0 only when every call succeeded. Each run works in its own
directory (``workdir``, or a temporary one) holding SIPp's error log, final
statistics (CSV) and, for small runs, the message trace; ``report()`` puts
them into the assertion message.
"""

from __future__ import annotations

import csv
import math
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SCENARIO_DIR = Path(__file__).with_name("scenarios")
LOCAL_IP = "127.0.0.1"
BUFF_SIZE = 4194304  # BENCH-NOTES.md: smaller UDP buffers drop packets under load
TRACE_MSG_MAX_CALLS = 100  # trace every message for runs up to this many calls
INSTALL_HINT = "run `make test`: it installs the Debian package sip-tester (sipp) when missing"


def sipp_path() -> str:
    """The sipp binary; a missing one fails the test (never skips it)."""
    path = shutil.which("sipp")
    if path is None:
        pytest.fail(f"SIPp is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def _port_free(host: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = LOCAL_IP, *, span: int = 1) -> int:
    """A port P with UDP and TCP P .. P+span-1 all free on host (bind-to-0 trick)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port + span <= 65536 and all(_port_free(host, p) for p in range(port, port + span)):
            return port
    raise RuntimeError(f"no {span} free consecutive UDP+TCP ports on {host}")


@dataclass(frozen=True)
class SippResult:
    cmd: list[str] = field(repr=False)
    returncode: int
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)
    stats: dict[str, str] = field(default_factory=dict, repr=False)
    errors: str = field(default="", repr=False)  # -trace_err: unexpected messages, failed checks
    messages: str = field(default="", repr=False)  # -trace_msg, for small runs only

    def count(self, column: str) -> int:
        """A cumulative counter from the final statistics, e.g. ``SuccessfulCall``."""
        value = self.stats.get(f"{column}(C)", "0")
        return int(value) if value.isdigit() else 0

    @property
    def successful(self) -> int:
        return self.count("SuccessfulCall")

    @property
    def failed(self) -> int:
        return self.count("FailedCall")

    def report(self, tail_chars: int = 6000) -> str:
        parts = [
            f"sipp exited {self.returncode}: {' '.join(self.cmd)}",
            f"calls: {self.successful} successful, {self.failed} failed",
            f"--- stderr ---\n{self.stderr[-tail_chars:]}",
            f"--- error log (head) ---\n{_one_event_a_line(self.errors)[:tail_chars]}",
        ]
        if self.messages:
            parts.append(f"--- message trace (tail) ---\n{self.messages[-tail_chars:]}")
        return "\n".join(parts)


def _scenario_args(scenario: Path | str) -> list[str]:
    if isinstance(scenario, str) and not scenario.endswith(".xml"):
        return ["-sn", scenario]  # SIPp's built-in scenarios: uac, uas, ...
    path = Path(scenario)
    if not path.is_absolute() and not path.exists():
        path = SCENARIO_DIR / path
    return ["-sf", str(path)]


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _final_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


def run_sipp(
    scenario: Path | str,
    target: str | None,
    *,
    transport: str = "u1",
    calls: int = 1,
    rate: float = 10.0,
    timeout_s: float = 30.0,
    extra: Sequence[str] = (),
    workdir: Path | None = None,
    local_port: int | None = None,
    trace_msg: bool | None = None,
) -> SippResult:
    """Run one bounded SIPp job; ``target`` is ``host:port`` (None for a UAS)."""
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="sipp-") as tmp:
            return run_sipp(
                scenario,
                target,
                transport=transport,
                calls=calls,
                rate=rate,
                timeout_s=timeout_s,
                extra=extra,
                workdir=Path(tmp),
                local_port=local_port,
                trace_msg=trace_msg,
            )
    workdir.mkdir(parents=True, exist_ok=True)
    if trace_msg is None:
        trace_msg = calls <= TRACE_MSG_MAX_CALLS
    files = {name: workdir / f"sipp-{name}" for name in ("errors.log", "stats.csv", "messages.log")}
    cmd = [
        sipp_path(),
        *([target] if target else []),
        *_scenario_args(scenario),
        "-t",
        transport,
        "-i",
        LOCAL_IP,
        "-p",
        str(local_port or free_port()),
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-timeout",
        f"{math.ceil(timeout_s)}s",
        "-timeout_error",
        "-buff_size",
        str(BUFF_SIZE),
        "-nostdin",
        "-trace_err",
        "-error_file",
        str(files["errors.log"]),
        "-trace_stat",
        "-stf",
        str(files["stats.csv"]),
        "-fd",
        "1",
        *(["-trace_msg", "-message_file", str(files["messages.log"])] if trace_msg else []),
        *extra,
    ]
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s + 15,
        )
        returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode = -1
        stdout = _text(exc.stdout)
        stderr = _text(exc.stderr) + f"\n[killed: still running {timeout_s + 15:.0f}s after start]"
    return SippResult(
        cmd=cmd,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        stats=_final_stats(files["stats.csv"]),
        errors=_read(files["errors.log"]),
        messages=_read(files["messages.log"]),
    )


def _one_event_a_line(log: str) -> str:
    """SIPp 3.6 writes error-log events without a newline between them."""
    return re.sub(r"(?<!\n)(\d{4}-\d\d-\d\d\t\d\d:)", r"\n\1", log)


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""
