"""Third-party malformed and torture messages at the real process.

Replayed with the shared tool exactly as ``sip-corpora/README.md`` shows:
PROTOS c07-sip (4527 INVITEs), RFC 4475 and pjproject's fuzz seeds. The
process must neither crash nor hang: ``send_corpus.py`` probes with an
OPTIONS every ``PROBE_EVERY`` messages (exit 2: no answer), afterwards
OPTIONS over UDP and TCP still get 200, and at teardown SIGTERM exits 0
with no Traceback in the log (the ``centrala`` fixture).
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Centrala
from tests.e2e.sipp import free_port

UDP_MAX_PAYLOAD = 65507  # IPv4; the 81 larger PROTOS INVITEs go over TCP only
PROBE_EVERY = 25
PROTOS_UDP_RATE = 250  # messages/s
PROTOS_TCP_SAMPLE_EVERY = 10  # over TCP: every oversized INVITE plus every 10th other one
PROTOS_TCP_RATE = 100
DEADLINE_S = 240.0
# Everything here comes from one source address, 127.0.0.1: lift the per-source
# request limit of config/centrala.yaml well above the replay rates.
CORPUS_LIMITS = {"requests_per_second": 10000.0, "request_burst": 20000}


@dataclass(frozen=True)
class Replay:
    returncode: int
    stderr: str
    rows: list[list[str]]  # file, bytes, first response line ('-': none)

    def summary(self) -> str:
        unanswered = sum(1 for r in self.rows if r[2] == "-")
        return (
            f"send_corpus.py exited {self.returncode}; {len(self.rows)} sent, "
            f"{unanswered} unanswered\n--- stderr ---\n{self.stderr[-3000:]}"
        )


def replay(
    sip_corpora: Path,
    centrala: Centrala,
    paths: list[Path],
    out: Path,
    *,
    transport: str,
    glob: str = "*",
    rate: float = 100,
    wait: float = 0.3,
    lport: int = 0,
) -> Replay:
    tsv = out.with_suffix(".tsv")
    cmd = [
        sys.executable,
        str(sip_corpora / "tools" / "send_corpus.py"),
        *map(str, paths),
        "--host",
        centrala.host,
        "--port",
        str(centrala.udp_port),
        "--transport",
        transport,
        "--glob",
        glob,
        "--max",
        "10000",
        "--rate",
        str(rate),
        "--wait",
        str(wait),
        "--probe-every",
        str(PROBE_EVERY),
        "--deadline",
        str(DEADLINE_S),
        "--tsv",
        str(tsv),
    ]
    if lport:
        cmd += ["--lport", str(lport)]
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=DEADLINE_S + 60,
        )
        returncode, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        returncode, stderr = -1, f"{exc.stderr!r}\n[send_corpus.py killed after {exc.timeout}s]"
    rows = (
        [line.split("\t") for line in tsv.read_text(errors="replace").splitlines()[1:]]
        if tsv.exists()
        else []
    )
    return Replay(returncode, stderr, rows)


def assert_replayed(result: Replay, expected: int, centrala: Centrala) -> None:
    assert result.returncode == 0, result.summary() + "\n" + centrala.log_tail()
    assert "deadline reached" not in result.stderr, result.summary()
    assert len(result.rows) == expected, result.summary()
    centrala.assert_alive()


def link_files(files: list[Path], into: Path) -> Path:
    into.mkdir(parents=True)
    for f in files:
        (into / f.name).symlink_to(f)
    return into


@pytest.fixture
def centrala(start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path]) -> Centrala:
    return start_centrala(config_dir=config_copy(limits=CORPUS_LIMITS))


@pytest.fixture(scope="module")
def protos_cases(sip_corpora: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("protos")
    with tarfile.open(sip_corpora / "protos-c07-sip" / "cases.tar.xz") as tar:
        tar.extractall(root, filter="data")
    return root / "cases"


def expand_protos(sip_corpora: Path, cases: Path, out: Path, lport: int) -> list[Path]:
    """The PROTOS templates filled in, with Via sent-by 127.0.0.1:lport."""
    subprocess.run(
        [
            sys.executable,
            str(sip_corpora / "tools" / "protos_expand.py"),
            "--cases",
            str(cases),
            "--out",
            str(out),
            "--lport",
            str(lport),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    invites = sorted(out.glob("*.invite"))
    assert len(invites) == 4527, f"expanded {len(invites)} PROTOS cases, expected 4527"
    return invites


def test_protos_over_udp(
    centrala: Centrala, sip_corpora: Path, protos_cases: Path, tmp_path: Path
) -> None:
    lport = free_port()
    invites = expand_protos(sip_corpora, protos_cases, tmp_path / "expanded", lport)
    fitting = [f for f in invites if f.stat().st_size <= UDP_MAX_PAYLOAD]
    udp_dir = link_files(fitting, tmp_path / "udp")
    result = replay(
        sip_corpora,
        centrala,
        [udp_dir],
        tmp_path / "protos-udp",
        transport="udp",
        glob="*.invite",
        rate=PROTOS_UDP_RATE,
        wait=0.2,
        lport=lport,
    )
    assert_replayed(result, len(fitting), centrala)


def test_protos_over_tcp(
    centrala: Centrala, sip_corpora: Path, protos_cases: Path, tmp_path: Path
) -> None:
    invites = expand_protos(sip_corpora, protos_cases, tmp_path / "expanded", free_port())
    chosen = [
        f
        for i, f in enumerate(invites)
        if f.stat().st_size > UDP_MAX_PAYLOAD or i % PROTOS_TCP_SAMPLE_EVERY == 0
    ]
    tcp_dir = link_files(chosen, tmp_path / "tcp")
    result = replay(
        sip_corpora,
        centrala,
        [tcp_dir],
        tmp_path / "protos-tcp",
        transport="tcp",
        glob="*.invite",
        rate=PROTOS_TCP_RATE,
        wait=0.5,
    )
    assert_replayed(result, len(chosen), centrala)


@pytest.mark.parametrize("transport,wait", [("udp", 0.3), ("tcp", 1.0)])
def test_rfc4475_torture_messages(
    centrala: Centrala, sip_corpora: Path, tmp_path: Path, transport: str, wait: float
) -> None:
    corpus = sip_corpora / "rfc4475"
    result = replay(
        sip_corpora,
        centrala,
        [corpus],
        tmp_path / f"rfc4475-{transport}",
        transport=transport,
        glob="*.dat",
        rate=50,
        wait=wait,
    )
    assert_replayed(result, len(list(corpus.glob("*.dat"))), centrala)


def test_pjproject_sip_fuzz_seeds(centrala: Centrala, sip_corpora: Path, tmp_path: Path) -> None:
    seeds = sip_corpora / "pjproject-fuzz-seeds"
    dirs = [
        seeds / "fuzz-sip" / "fuzz-sip_seed_corpus",
        seeds / "fuzz-sip-dialog" / "fuzz-sip-dialog_seed_corpus",
    ]
    result = replay(
        sip_corpora,
        centrala,
        dirs,
        tmp_path / "pjproject",
        transport="udp",
        glob="*.sip",
        rate=50,
        wait=0.3,
    )
    assert_replayed(result, sum(len(list(d.glob("*.sip"))) for d in dirs), centrala)
