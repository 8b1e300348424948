"""A pjsua2 softphone (PyPI ``pjsua2-pybind11``) in a child process, for e2e tests.

    with Softphone.start(user="100", password="demo-pass-100", domain=DOMAIN,
                         server=centrala.target, transport="udp") as phone:
        reg = phone.wait_reg()        # the first final onRegState
        assert reg["code"] == 200 and reg["active"]
        unreg = phone.unregister()    # REGISTER with Expires: 0

libpj keeps process-wide state (one ``Endpoint`` per process, its own worker
thread, signal-unsafe teardown), so each phone is a child process running
``python -m tests.e2e.pjsua ...``.  It speaks JSON lines: the child prints
``{"event": "reg", "code": ..., ...}`` on every onRegState and obeys the
commands ``unregister`` and ``quit`` read from stdin.  Every wait is bounded.

PEERS.md gotchas applied: ``uaConfig.threadCnt = 1`` (its worker thread runs
the callbacks; this build has no ``libHandleEvents``), ``setNullDev()``,
enums are classes, ``account.info`` is a property, and the UA binds to its own
loopback address with ``TransportConfig.boundAddress``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TIMEOUT_S = 10.0


# -- parent side -------------------------------------------------------------------------
@dataclass
class Softphone:
    proc: subprocess.Popen[str]
    log_path: Path
    events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    seen: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        *,
        user: str,
        password: str,
        domain: str,
        server: str,
        transport: str,
        bind: str = "127.0.0.2",
        expires: int = 300,
        log_path: Path,
    ) -> Softphone:
        cmd = [
            sys.executable, "-m", "tests.e2e.pjsua", "--user", user, "--password", password,
            "--domain", domain, "--server", server, "--transport", transport, "--bind", bind,
            "--expires", str(expires), "--log", str(log_path),
        ]
        proc = subprocess.Popen(
            cmd, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, bufsize=1,
        )
        phone = cls(proc, log_path)
        threading.Thread(target=phone._read, daemon=True).start()
        return phone

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                try:
                    self.events.put(json.loads(line))
                    continue
                except ValueError:
                    pass
            self.events.put({"event": "output", "line": line})

    def next_event(self, kind: str, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(ev)
            if ev.get("event") == kind:
                return ev
            if ev.get("event") == "fatal":
                raise AssertionError(f"pjsua2 child failed: {ev}\n{self.report()}")
        raise AssertionError(f"no {kind!r} event within {timeout:.0f}s\n{self.report()}")

    def wait_reg(self, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The next final registration state (provisional ones are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next_event("reg", max(0.1, deadline - time.monotonic()))
            if ev["code"] >= 200 or time.monotonic() >= deadline:
                return ev

    def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def unregister(self, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        self.command("unregister")
        return self.wait_reg(timeout)

    def report(self) -> str:
        seen = "\n".join(json.dumps(e) for e in self.seen)
        log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return f"--- events ---\n{seen}\n--- pjsip log {self.log_path} (tail) ---\n{log[-6000:]}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(DEFAULT_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Softphone:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- child side --------------------------------------------------------------------------
def _emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def _child(args: argparse.Namespace) -> int:
    import pjsua2 as pj

    class Phone(pj.Account):  # type: ignore[misc]
        def onRegState(self, prm: Any) -> None:  # noqa: N802 (pjsua2's name)
            info = self.info
            _emit(
                event="reg", code=int(prm.code), reason=prm.reason,
                expiration=int(prm.expiration), active=bool(info.regIsActive),
                status=int(info.regStatus), expires=int(info.regExpiresSec),
            )

    ep = pj.Endpoint()
    ep.libCreate()
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 1
    cfg.uaConfig.mainThreadOnly = False
    cfg.logConfig.level = 5
    cfg.logConfig.consoleLevel = 0
    cfg.logConfig.filename = args.log
    cfg.medConfig.noVad = True
    ep.libInit(cfg)
    ep.audDevManager.setNullDev()
    tcfg = pj.TransportConfig()
    tcfg.boundAddress = args.bind
    tcfg.publicAddress = args.bind
    tcfg.port = 0
    kind = pj.TransportType.TCP if args.transport == "tcp" else pj.TransportType.UDP
    tid = ep.transportCreate(kind, tcfg)
    ep.libStart()

    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{args.user}@{args.domain}"
    acfg.regConfig.registrarUri = f"sip:{args.domain}"
    acfg.regConfig.timeoutSec = args.expires
    acfg.regConfig.retryIntervalSec = 0  # no automatic retry: the test sees every outcome
    acfg.sipConfig.proxies.append(f"sip:{args.server};transport={args.transport};lr")
    acfg.sipConfig.transportId = tid
    acfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", args.user, 0, args.password))
    phone = Phone()
    phone.create(acfg)
    _emit(event="started", transport=args.transport, bind=args.bind)
    deadline = time.monotonic() + 120  # a forgotten child never outlives its test by much
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "unregister":
            phone.setRegistration(False)
        elif cmd == "quit":
            break
        if time.monotonic() > deadline:
            break
    # pjsua2's teardown of a live account can block; shut it down explicitly
    phone.shutdown()
    ep.libDestroy()
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description="one pjsua2 softphone, driven over stdin")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--server", required=True, help="host:port of the registrar")
    parser.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    parser.add_argument("--bind", default="127.0.0.2")
    parser.add_argument("--expires", type=int, default=300)
    parser.add_argument("--log", default=os.devnull)
    args = parser.parse_args()
    try:
        code = _child(args)
    except Exception as exc:  # report to the parent instead of dying silently
        _emit(event="fatal", error=repr(exc))
        code = 1
    sys.stdout.flush()
    os._exit(code)  # skip libpj's atexit handlers (they may run on a dead endpoint)


if __name__ == "__main__":
    main()
