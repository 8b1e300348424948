"""The real ``centrala`` process on loopback, for end-to-end tests.

``centrala`` starts one process with the repository's ``config/``;
``start_centrala(config_dir=..., extra_args=...)`` starts more or others.
Each gets free ports (UDP+TCP on ``udp_port``, TLS on ``udp_port + 1``),
this test process's own block of RTP ports (``rtp_ports``: parallel runs do
not share one), a fresh state directory under ``tmp_path`` and a log file, and is ready once
it answers an OPTIONS over UDP. At teardown each one still running gets
SIGTERM and must exit 0 with no ``Traceback`` in its log.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO_ROOT
from tests.e2e.sipp import LOCAL_IP, free_port, sipp_path

DEFAULT_CONFIG = REPO_ROOT / "config"
READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 80
RTP_BLOCK = 200  # RTP ports per test process, in the default range 20000-29999


def rtp_ports() -> str:
    """This test process's RTP range for centrala (``media.rtp_ports``), by its pid:
    $CENTRALA_RTP_PORTS if set.  Ports busy anyway are skipped by the switch."""
    low = 20000 + (os.getpid() % (10000 // RTP_BLOCK)) * RTP_BLOCK
    return os.environ.get("CENTRALA_RTP_PORTS") or f"{low}-{low + RTP_BLOCK - 1}"


def centrala_bin() -> Path:
    """``centrala`` next to this interpreter (``$CENTRALA_BIN`` overrides)."""
    override = os.environ.get("CENTRALA_BIN")
    path = Path(override) if override else Path(sys.executable).with_name("centrala")
    if not path.exists():
        pytest.fail(
            f"{path} not found: run `make test` (it installs the package into .venv)", pytrace=False
        )
    return path


def options_probe(host: str, port: int, transport: str = "udp", timeout: float = 1.0) -> str | None:
    """Send one OPTIONS; return the status line of the first final response, or None."""
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.settimeout(timeout)
        try:
            s.bind((LOCAL_IP, 0))
            if transport != "udp":
                s.connect((host, port))
            branch = uuid.uuid4().hex
            request = (
                f"OPTIONS sip:probe@{host}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/{transport.upper()} {LOCAL_IP}:{s.getsockname()[1]}"
                f";rport;branch=z9hG4bK{branch}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{LOCAL_IP}>;tag={branch[:10]}\r\n"
                f"To: <sip:probe@{host}:{port}>\r\n"
                f"Call-ID: {branch}@{LOCAL_IP}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
            if transport == "udp":
                s.sendto(request, (host, port))
            else:
                s.sendall(request)
            return _first_final_status(s, time.monotonic() + timeout)
        except OSError:
            return None


def _first_final_status(s: socket.socket, deadline: float) -> str | None:
    buf = b""
    while (left := deadline - time.monotonic()) > 0:
        s.settimeout(left)
        chunk = s.recv(65535)
        if not chunk:
            return None
        buf += chunk
        # skip provisional responses; enough for a probe that sends no body
        while b"\r\n\r\n" in buf:
            head, _, buf = buf.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = status.split(" ", 2)
            if len(parts) >= 2 and parts[0] == "SIP/2.0" and not parts[1].startswith("1"):
                return status
    return None


@dataclass
class Centrala:
    proc: subprocess.Popen[bytes]
    host: str
    udp_port: int
    config_dir: Path
    state_dir: Path
    log_path: Path
    stopped: bool = False

    @property
    def tcp_port(self) -> int:
        return self.udp_port

    @property
    def tls_port(self) -> int:
        return self.udp_port + 1

    @property
    def target(self) -> str:
        """``host:port`` for SIPp (UDP and TCP share the port)."""
        return f"{self.host}:{self.udp_port}"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        tail = "\n".join(self.log_text().splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    def probe(self, transport: str = "udp", timeout: float = 1.0) -> str | None:
        port = self.udp_port if transport in ("udp", "tcp") else self.tls_port
        return options_probe(self.host, port, transport, timeout)

    def assert_alive(self) -> None:
        """The process runs and still answers OPTIONS over UDP and TCP with 200."""
        assert self.proc.poll() is None, (
            f"centrala exited {self.proc.returncode}\n{self.log_tail()}"
        )
        for transport in ("udp", "tcp"):
            status = self.probe(transport, timeout=2.0)
            assert status is not None and status.startswith("SIP/2.0 200"), (
                f"OPTIONS over {transport} got {status!r}\n{self.log_tail()}"
            )

    def stop(self) -> list[str]:
        """SIGTERM, wait; return the problems found (empty when it stopped cleanly)."""
        problems = []
        self.stopped = True
        if self.proc.poll() is not None:
            problems.append(f"centrala had already exited with code {self.proc.returncode}")
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append(f"centrala still running {STOP_TIMEOUT_S:.0f}s after SIGTERM")
            if self.proc.returncode != 0:
                problems.append(f"centrala exited with code {self.proc.returncode} on SIGTERM")
        if "Traceback" in self.log_text():
            problems.append("a Traceback is in centrala's log")
        return problems


def _launch(config_dir: Path, run_dir: Path, extra_args: Sequence[str]) -> Centrala:
    state_dir = run_dir / "state"
    state_dir.mkdir(parents=True)
    log_path = run_dir / "centrala.log"
    port = free_port(LOCAL_IP, span=2)
    cmd = [
        str(centrala_bin()),
        "run",
        "-c",
        str(config_dir),
        "--state",
        str(state_dir),
        "-l",
        f"udp:{LOCAL_IP}:{port}",
        "-l",
        f"tcp:{LOCAL_IP}:{port}",
        "-l",
        f"tls:{LOCAL_IP}:{port + 1}",
        *extra_args,
    ]
    with open(log_path, "ab") as log:
        log.write(f"$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=run_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "CENTRALA_RTP_PORTS": rtp_ports()},
        )
    return Centrala(
        proc=proc,
        host=LOCAL_IP,
        udp_port=port,
        config_dir=config_dir,
        state_dir=state_dir,
        log_path=log_path,
    )


def _wait_ready(c: Centrala) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and c.proc.poll() is None:
        status = c.probe("udp", timeout=0.3)
        if status is not None and status.startswith("SIP/2.0 200"):
            return True
        time.sleep(0.1)
    return False


def _start_ready(config_dir: Path, run_dir: Path, extra_args: Sequence[str]) -> Centrala:
    """Start and wait until it answers; retry when the free port was taken meanwhile."""
    for attempt in range(3):
        c = _launch(config_dir, run_dir / f"try{attempt}", extra_args)
        if _wait_ready(c):
            return c
        c.stop()
        if "Address already in use" not in c.log_text():
            break
    pytest.fail(
        f"centrala did not answer OPTIONS over UDP on {c.target} within "
        f"{READY_TIMEOUT_S:.0f}s (exit code {c.proc.returncode})\n{c.log_tail()}",
        pytrace=False,
    )


def _merge(into: dict[str, Any], overrides: dict[str, Any]) -> None:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@pytest.fixture
def config_copy(tmp_path: Path) -> Callable[..., Path]:
    """``config_copy(limits={...})``: the repository's config/ copied under tmp_path,
    with centrala.yaml's settings deep-merged with the given ones."""
    made: list[Path] = []

    def make(source: Path = DEFAULT_CONFIG, **overrides: Any) -> Path:
        dst = tmp_path / f"config{len(made)}"
        shutil.copytree(source, dst)
        yaml = YAML()
        settings = yaml.load(dst / "centrala.yaml") or {}
        _merge(settings, overrides)
        yaml.dump(settings, dst / "centrala.yaml")
        made.append(dst)
        return dst

    return make


@pytest.fixture(scope="session")
def sipp() -> str:
    """The sipp binary; the tests fail, not skip, when it is missing."""
    return sipp_path()


@pytest.fixture
def start_centrala(tmp_path: Path) -> Iterator[Callable[..., Centrala]]:
    started: list[Centrala] = []

    def start(config_dir: Path = DEFAULT_CONFIG, extra_args: Sequence[str] = ()) -> Centrala:
        c = _start_ready(Path(config_dir), tmp_path / f"centrala{len(started)}", extra_args)
        started.append(c)
        return c

    yield start
    reports = []
    for c in started:
        if not c.stopped and (problems := c.stop()):
            reports.append("; ".join(problems) + "\n" + c.log_tail())
    if reports:
        pytest.fail("\n\n".join(reports), pytrace=False)


@pytest.fixture
def centrala(start_centrala: Callable[..., Centrala]) -> Centrala:
    return start_centrala()
