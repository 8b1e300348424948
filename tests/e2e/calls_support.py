"""Helpers for the call end-to-end tests (``test_calls.py``).

* :func:`call_config`: a config copy SIPp can call through (MD5 only, no
  qualify, no rate limit), with the demo tenant edited in place (forwards,
  trunk ports and trust, routes) through :func:`edit_tenant`;
* :func:`register` / :class:`Phone`: register an extension from a UDP port
  (a raw digest client), then a SIPp *server* scenario on that same port
  answers the calls to it (BENCH gotcha: a SIPp client cannot take a new
  Call-ID, so registration and answering are two runs on one port);
* :class:`Background`: a SIPp run in a thread (the callee while the caller runs);
* :func:`dial`: an extension calls a number (407, digest MD5) with one of the
  ``call_uac*.xml`` scenarios; :func:`trunk_call`: a carrier on a trunk's
  address delivers a call to a DID;
* :func:`cdrs`: the CDR table, read-only, waiting for the rows to be flushed;
* :func:`route`: ``centrala route`` parsed, to compare with what a call did;
* :func:`invites` / :func:`cancels`: the requests a SIPp UAS received.

Every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.e2e.conftest import Centrala
from tests.e2e.registrar_support import cli, header_values, received_messages, wait_for
from tests.e2e.sipdevice import SipDevice
from tests.e2e.sipp import SCENARIO_DIR, SippResult, free_port, run_sipp

DOMAIN = "demo.centrala.test"
TRUNK_IP = "127.0.0.2"  # the demo trunks' address: calls from it are the carrier's
SIPP_TIMEOUT_S = 12.0  # one call, its pauses included; a stuck SIPp is killed then

# (auth username, password) of the demo extensions
CREDENTIALS = {
    "100": ("100", "demo-pass-100"),
    "101": ("101", "demo-pass-101"),
    "102": ("carol", "demo-pass-102"),
    "103": ("103", os.environ.get("CENTRALA_DEMO_PW") or "demo-pass-103"),
    "104": ("104", "demo-pass-104"),
}

CALL_SETTINGS: dict[str, Any] = {
    "security": {"digest_algorithms": ["MD5"]},  # SIPp: MD5, first challenge only
    "registrar": {"qualify_interval_s": 0},  # an OPTIONS would break a SIPp UAS scenario
    "limits": {"requests_per_second": 100000.0, "request_burst": 100000},
}


# --------------------------------------------------------------------------- configuration


def call_config(config_copy: Callable[..., Path], **overrides: Any) -> Path:
    """A copy of config/ SIPp can call through, with ``overrides`` merged too."""
    settings: dict[str, Any] = {k: dict(v) for k, v in CALL_SETTINGS.items()}
    for key, value in overrides.items():
        settings[key] = {**settings.get(key, {}), **value} if isinstance(value, dict) else value
    return config_copy(**settings)


def edit_tenant(config_dir: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """Load tenants/demo.yaml of a config copy, let ``edit`` change it, save it."""
    path = config_dir / "tenants" / "demo.yaml"
    yaml = YAML()
    data = yaml.load(path)
    edit(data)
    yaml.dump(data, path)


def extension(data: dict[str, Any], number: str) -> dict[str, Any]:
    return next(e for e in data["extensions"] if str(e["number"]) == number)


def trunk(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in data["trunks"] if t["name"] == name)


def move_trunks_to_free_ports(data: dict[str, Any]) -> dict[str, int]:
    """Give every trunk a free port on 127.0.0.2 (parallel runs must not collide)."""
    ports = {}
    for t in data["trunks"]:
        port = free_port(TRUNK_IP)
        while port in ports.values():
            port = free_port(TRUNK_IP)
        t["port"] = ports[t["name"]] = port
    return ports


# --------------------------------------------------------------------------- phones


@dataclass(frozen=True)
class Phone:
    """A registered contact of ``number``: SIPp UAS scenarios run on host:port."""

    number: str
    host: str
    port: int


def register(c: Centrala, number: str, host: str = "127.0.0.1") -> Phone:
    """Register ``number`` from a fresh UDP port on ``host``; that port is then free
    for the SIPp UAS that answers the calls (bound to it by :meth:`Background.uas`)."""
    user, secret = CREDENTIALS[number]
    device = SipDevice((c.host, c.udp_port), user, secret, host=host)
    try:
        answer = device.register(expires=300)
    finally:
        device.close()
    assert answer.startswith("SIP/2.0 200"), f"REGISTER of {number} failed:\n{answer}"
    return Phone(number, device.host, device.port)


class Silent:
    """A registered phone that never answers: a bare socket on its port that keeps
    whatever reaches it, to show that nothing did."""

    def __init__(self, phone: Phone) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((phone.host, phone.port))
        self.sock.setblocking(False)

    def received(self) -> list[str]:
        out = []
        with contextlib.suppress(BlockingIOError):
            while True:
                out.append(self.sock.recv(65535).decode(errors="replace"))
        return out

    def close(self) -> None:
        self.sock.close()


class Background:
    """One SIPp run in a thread: ``start`` returns at once, ``result`` waits (bounded)."""

    def __init__(self, run: Callable[[], SippResult], workdir: Path) -> None:
        self.workdir = workdir
        self._result: SippResult | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(run,), daemon=True)
        self._thread.start()

    def _run(self, run: Callable[[], SippResult]) -> None:
        try:
            self._result = run()
        except BaseException as exc:  # reported by result()
            self._error = exc

    @classmethod
    def uas(
        cls,
        phone: Phone,
        scenario: str,
        workdir: Path,
        *,
        calls: int = 1,
        pause_ms: int = 0,
        status: int | None = None,
        timeout_s: float = SIPP_TIMEOUT_S,
    ) -> Background:
        """A SIPp server scenario on the phone's address; returns once it listens."""
        path = scenario_file(scenario, workdir, status)
        job = cls(
            lambda: run_sipp(
                path, None, calls=calls, timeout_s=timeout_s, workdir=workdir,
                local_port=phone.port, trace_msg=True,
                extra=["-i", phone.host, "-d", str(pause_ms)],
            ),
            workdir,
        )
        listening = wait_for(lambda: udp_bound(phone.host, phone.port), 5.0, 0.02)
        assert listening, f"SIPp did not bind {phone.host}:{phone.port}\n{job.result(5).report()}"
        return job

    def result(self, timeout: float = SIPP_TIMEOUT_S + 20) -> SippResult:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"SIPp still running after {timeout:.0f}s"
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def received_text(self) -> str:
        """What SIPp traced so far (while it runs)."""
        path = self.workdir / "sipp-messages.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_received(self, pattern: str, timeout: float = 5.0) -> bool:
        """Wait until a message matching ``pattern`` (regex, multiline) was received."""
        regex = re.compile(pattern, re.MULTILINE)
        return wait_for(
            lambda: any(regex.search(m) for m in received_messages(self.received_text())),
            timeout, 0.05,
        )


def udp_bound(host: str, port: int) -> bool:
    """Whether some process has bound UDP host:port (read from /proc: binding a probe
    socket to find out could take the port from the SIPp that is starting)."""
    want = f"{socket.inet_aton(host)[::-1].hex().upper()}:{port:04X}"
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return False
    return any(line.split()[1] in (want, f"00000000:{port:04X}") for line in lines)


def scenario_file(name: str, workdir: Path, status: int | None = None) -> Path:
    """A scenario of tests/e2e/scenarios; ``@STATUS@`` templates get ``status``."""
    path = SCENARIO_DIR / name
    text = path.read_text()
    if "@STATUS@" not in text:
        assert status is None, f"{name} takes no status"
        return path
    assert status is not None, f"{name} needs a status"
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / f"{path.stem}_{status}.xml"
    out.write_text(text.replace("@STATUS@", str(status)))
    return out


# --------------------------------------------------------------------------- callers


def dial(
    c: Centrala,
    caller: str,
    dialed: str,
    workdir: Path,
    *,
    scenario: str = "call_uac.xml",
    status: int | None = None,
    pause_ms: int = 300,
    timeout_s: float = SIPP_TIMEOUT_S,
) -> SippResult:
    """Extension ``caller`` dials ``dialed`` (digest MD5 after a 407)."""
    user, secret = CREDENTIALS[caller]
    workdir.mkdir(parents=True, exist_ok=True)
    inf = workdir / "caller.csv"
    inf.write_text(
        f"SEQUENTIAL\n{caller};[authentication username={user} password={secret}];{dialed}\n"
    )
    return run_sipp(
        scenario_file(scenario, workdir, status), c.target, timeout_s=timeout_s,
        workdir=workdir, trace_msg=True,
        extra=["-inf", str(inf), "-auth_uri", f"{dialed}@{DOMAIN}", "-d", str(pause_ms)],
    )


def dial_in_background(c: Centrala, caller: str, dialed: str, workdir: Path,
                       **kwargs: Any) -> Background:
    return Background(lambda: dial(c, caller, dialed, workdir, **kwargs), workdir)


def trunk_call(
    c: Centrala, did: str, workdir: Path, *, caller_number: str = "+48600111222",
    pause_ms: int = 300,
) -> SippResult:
    """A carrier on the trunk address 127.0.0.2 delivers a call to ``did``."""
    workdir.mkdir(parents=True, exist_ok=True)
    inf = workdir / "trunk.csv"
    inf.write_text(f"SEQUENTIAL\n{did};{caller_number}\n")
    return run_sipp(
        "call_trunk_uac.xml", c.target, timeout_s=SIPP_TIMEOUT_S, workdir=workdir,
        trace_msg=True, extra=["-i", TRUNK_IP, "-inf", str(inf), "-d", str(pause_ms)],
    )


# --------------------------------------------------------------------------- what happened


def requests(res: SippResult | Background, method: str) -> list[str]:
    """The ``method`` requests a SIPp run received, in order."""
    text = res.received_text() if isinstance(res, Background) else res.messages
    return [m for m in received_messages(text) if m.startswith(f"{method} ")]


def invites(res: SippResult | Background) -> list[str]:
    return requests(res, "INVITE")


def cancels(res: SippResult | Background) -> list[str]:
    return requests(res, "CANCEL")


def responses(res: SippResult) -> list[int]:
    """Status codes a SIPp run received, in order."""
    return [int(m.split(" ", 2)[1]) for m in received_messages(res.messages)
            if m.startswith("SIP/2.0 ")]


def request_user(message: str) -> str:
    """The user part of a request's Request-URI."""
    uri = message.split(" ", 2)[1]
    m = re.match(r"sips?:([^@;>]+)@", uri)
    assert m, f"no user in Request-URI {uri!r}"
    return m.group(1)


def header(message: str, name: str) -> str | None:
    values = header_values(message, name)
    return values[0] if values else None


def cdrs(c: Centrala, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The CDRs (oldest first) once at least ``count`` were flushed (within ~1 s)."""
    db = c.state_dir / "centrala.db"
    rows: list[dict[str, Any]] = []

    def load() -> bool:
        nonlocal rows
        if not db.exists():
            return False
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0) as conn:
                conn.row_factory = sqlite3.Row
                rows = [dict(r) for r in conn.execute("SELECT * FROM cdrs ORDER BY id")]
        except sqlite3.OperationalError:
            return False  # table not created yet, or locked for a moment
        return len(rows) >= count

    wait_for(load, timeout, 0.1)
    assert len(rows) >= count, f"{len(rows)} CDRs after {timeout}s, expected {count}: {rows}"
    return rows


# --------------------------------------------------------------------------- centrala route


@dataclass(frozen=True)
class RouteAnswer:
    """``centrala route`` parsed: refused status, or trunks and numbers sent."""

    exit_code: int
    result: str
    refused_status: int | None
    trunks: list[tuple[str, str]]  # (trunk, number sent), failover order
    extension: str | None
    text: str


def route(config_dir: Path, caller: str, dialed: str) -> RouteAnswer:
    proc = cli("route", "-c", str(config_dir), "--from", caller, "--to", dialed, check=False)
    text = proc.stdout
    assert proc.returncode in (0, 2), (
        f"centrala route exited {proc.returncode}\n{text}{proc.stderr}")
    m = re.search(r"^result:\s+(.*)$", text, re.MULTILINE)
    assert m, f"no result line in:\n{text}"
    result = m.group(1)
    refused = re.match(r"REFUSED (\d{3})", result)
    ext = re.match(r"ROUTED to extension (\S+)", result)
    trunks = re.findall(r"^\s*(?:trunks:)?\s+\d+\.\s+(\S+)\s+sends\s+(\S+)\s*$", text, re.MULTILINE)
    return RouteAnswer(
        exit_code=proc.returncode,
        result=result,
        refused_status=int(refused.group(1)) if refused else None,
        trunks=[(t, n) for t, n in trunks],
        extension=ext.group(1) if ext else None,
        text=text,
    )


def reports(*runs: SippResult | None) -> str:
    return "\n\n".join(r.report() for r in runs if r is not None)

