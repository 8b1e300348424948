"""Helpers shared by the benchmarks that drive real processes (see BENCH-NOTES.md).

CPU pinning (``taskset``), CPU time and RSS of a process tree read from
``/proc`` (per process, never per-CPU totals: this VM has steal time),
min/median/max, free loopback ports, and bounded SIPp runs with their final
statistics.
"""

from __future__ import annotations

import csv
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

LOCAL_IP = "127.0.0.1"
SIPP_BUFF_SIZE = 4194304  # BENCH-NOTES gotcha 1: smaller UDP buffers drop from ~8,000/s
CLK_TCK = os.sysconf("SC_CLK_TCK")


def summary(values: Sequence[float]) -> tuple[float, float, float]:
    """(min, median, max)."""
    ordered = sorted(values)
    return ordered[0], statistics.median(ordered), ordered[-1]


def taskset(cpu: int | None) -> list[str]:
    """The ``taskset -c CPU`` prefix, or nothing when not pinning or not available."""
    if cpu is None or shutil.which("taskset") is None:
        return []
    if cpu >= (os.cpu_count() or 1):
        return []
    return ["taskset", "-c", str(cpu)]


# -- /proc -----------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold blanks: split after the last ')'
    return text[text.rindex(")") + 2 :].split()


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (Kamailio forks its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def cpu_seconds(pid: int, tree: bool = True) -> float:
    """utime + stime of ``pid`` (and its descendants), in seconds."""
    total = 0
    for p in descendants(pid) if tree else [pid]:
        fields = _stat_fields(p)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (stat fields 14, 15)
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class CpuMeter:
    """CPU time of a process tree between ``start()`` and ``stop()``, as a share of one core."""

    def __init__(self, pid: int, tree: bool = True) -> None:
        self.pid, self.tree = pid, tree
        self.cpu0 = self.wall0 = 0.0
        self.cpu = self.wall = 0.0

    def start(self) -> None:
        self.cpu0, self.wall0 = cpu_seconds(self.pid, self.tree), time.monotonic()

    def stop(self) -> None:
        self.cpu = cpu_seconds(self.pid, self.tree) - self.cpu0
        self.wall = time.monotonic() - self.wall0

    @property
    def share(self) -> float:
        return self.cpu / self.wall if self.wall > 0 else 0.0


# -- sockets ---------------------------------------------------------------------------
def _port_free(host: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(host: str = LOCAL_IP, span: int = 1) -> int:
    """A port P with UDP and TCP P .. P+span-1 all free on ``host``."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port + span <= 65536 and all(_port_free(host, p) for p in range(port, port + span)):
            return port
    raise RuntimeError(f"no {span} free consecutive UDP+TCP ports on {host}")


def sip_probe(host: str, port: int, timeout: float = 0.5) -> str | None:
    """Send one OPTIONS over UDP; the status line of any final response, or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.bind((LOCAL_IP, 0))
        tag = f"{time.monotonic_ns():x}"
        request = (
            f"OPTIONS sip:probe@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOCAL_IP}:{s.getsockname()[1]};rport;branch=z9hG4bK{tag}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:probe@{LOCAL_IP}>;tag={tag}\r\n"
            f"To: <sip:probe@{host}>\r\nCall-ID: {tag}@probe\r\nCSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        try:
            s.sendto(request, (host, port))
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                s.settimeout(left)
                status = s.recv(65535).split(b"\r\n", 1)[0].decode("latin-1")
                if not status.startswith("SIP/2.0 1"):
                    return status
        except OSError:
            return None
    return None


def wait_sip_ready(proc: subprocess.Popen[bytes], host: str, port: int, timeout: float) -> bool:
    """True once the server answers an OPTIONS (any final status) within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if sip_probe(host, port) is not None:
            return True
        time.sleep(0.2)
    return False


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# -- SIPp ------------------------------------------------------------------------------
@dataclass(frozen=True)
class SippRun:
    rate: float
    calls: int
    returncode: int
    successful: int
    failed: int
    wall_s: float
    client_cpu_s: float  # SIPp's own CPU time: near wall_s means the client is the limit
    stats: dict[str, str]
    stderr: str

    @property
    def failure_ratio(self) -> float:
        done = self.successful + self.failed
        missing = max(0, self.calls - done)  # never finished: count as failed
        return (self.failed + missing) / self.calls if self.calls else 0.0

    @property
    def achieved(self) -> float:
        """Successful calls per second of the run."""
        return self.successful / self.wall_s if self.wall_s > 0 else 0.0


def _count(stats: dict[str, str], column: str) -> int:
    value = stats.get(f"{column}(C)", "0")
    return int(value) if value.isdigit() else 0


def run_sipp(
    target: str,
    scenario: Path,
    workdir: Path,
    *,
    calls: int,
    rate: float,
    transport: str = "u1",
    local_port: int | None = None,
    cpu: int | None = 0,
    extra: Sequence[str] = (),
    grace_s: float = 15.0,
) -> SippRun:
    """One bounded SIPp client run: ``calls`` at ``rate``/s, stopped after its duration + grace."""
    workdir.mkdir(parents=True, exist_ok=True)
    stats_file = workdir / f"stats-{time.monotonic_ns()}.csv"
    duration = calls / rate
    limit = max(1000, int(rate * 2))
    cmd = [
        *taskset(cpu),
        shutil.which("sipp") or "sipp",
        target,
        "-sf", str(scenario),
        "-t", transport,
        "-i", LOCAL_IP,
        "-p", str(local_port or free_port()),
        "-m", str(calls),
        "-r", str(rate),
        "-l", str(limit),
        "-buff_size", str(SIPP_BUFF_SIZE),
        "-recv_timeout", "5000",
        "-timeout", f"{int(duration + grace_s)}s",
        "-nostdin",
        "-trace_stat", "-stf", str(stats_file), "-fd", "1",
        *extra,
    ]
    start = time.monotonic()
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(
            cmd, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            errors="replace", timeout=duration + grace_s + 15, check=False,
        )
        returncode, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode, stderr = -1, str(exc.stderr or "") + "\n[killed: overran its time bound]"
    wall = time.monotonic() - start
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    stats = _final_stats(stats_file)
    return SippRun(
        rate, calls, returncode, _count(stats, "SuccessfulCall"), _count(stats, "FailedCall"),
        wall, client_cpu, stats, stderr[-2000:],
    )


def _final_stats(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = list(csv.reader(path.read_text(errors="replace").splitlines(), delimiter=";"))
    return dict(zip(rows[0], rows[-1], strict=False)) if len(rows) >= 2 else {}


class ServerProcess:
    """A server under test: started pinned to its core with its output in a log
    file, ready when it answers SIP OPTIONS, stopped cleanly."""

    name = "server"
    cpu = 1  # SIPp takes core 0
    ready_timeout_s = 60.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port(LOCAL_IP, span=2)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    @property
    def target(self) -> str:
        return f"{LOCAL_IP}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        return None

    def start(self, wrap: Sequence[str] = ()) -> None:
        cmd = [*taskset(self.cpu), *wrap, *self.command()]
        with open(self.log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=self.env())
        if not self.wait_ready():
            self.stop()
            raise RuntimeError(f"{self.name} did not start; see {self.log_path}:\n"
                               f"{self.log_tail()}")

    def wait_ready(self) -> bool:
        assert self.proc is not None
        return wait_sip_ready(self.proc, LOCAL_IP, self.port, self.ready_timeout_s)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def log_tail(self, limit: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-limit:] if self.log_path.exists() else ""


def centrala_bin() -> str:
    """The ``centrala`` of this interpreter's environment, else the one on PATH."""
    local = Path(sys.executable).with_name("centrala")
    return str(local) if local.exists() else (shutil.which("centrala") or "centrala")
