"""A pjsua2 softphone (PyPI ``pjsua2-pybind11``) in a child process, for e2e tests.

    with Softphone.start(user="100", password="demo-pass-100", domain=DOMAIN,
                         server=centrala.target, transport="udp") as phone:
        reg = phone.wait_reg()        # the first final onRegState
        assert reg["code"] == 200 and reg["active"]
        unreg = phone.unregister()    # REGISTER with Expires: 0

Calls (one at a time per phone): ``phone.call("sip:104@" + DOMAIN)``,
``answer(code)``, ``hangup(code)``, ``hold()``, ``unhold()``; the child
emits ``{"event": "call", "state": "CONFIRMED", "code": 200, ...}`` on every
onCallState, ``media`` on onCallMediaState (status ACTIVE / LOCAL_HOLD /
REMOTE_HOLD and direction), ``offer`` with the ``a=`` direction of every SDP
offer received (onCallRxOffer), ``tsx`` when an INVITE transaction gets its
final response, and ``incoming`` for a new call.  An incoming call is
answered 180 at once (``ring=False``: left at 100 Trying) and, with
``auto_answer=CODE``, answered with CODE right after.  ``wait_call(state)``
waits for a call state.  A command that libpj refuses is reported as
``{"event": "error", "cmd": ..., "error": ...}``.

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
PJSUA_CALL_UNHOLD = 1  # pjsua_call_flag in pjsua.h; pjsua2-pybind11 0.1a3 does not export it


# -- parent side -------------------------------------------------------------------------
@dataclass
class Softphone:
    proc: subprocess.Popen[str]
    log_path: Path
    events: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    seen: list[dict[str, Any]] = field(default_factory=list)  # every event, in order
    _pos: int = 0  # waits without ``since`` look after this index of ``seen``

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
        ring: bool = True,
        auto_answer: int | None = None,
    ) -> Softphone:
        cmd = [
            sys.executable, "-m", "tests.e2e.pjsua", "--user", user, "--password", password,
            "--domain", domain, "--server", server, "--transport", transport, "--bind", bind,
            "--expires", str(expires), "--log", str(log_path),
        ]
        if not ring:
            cmd.append("--no-ring")
        if auto_answer is not None:
            cmd += ["--auto-answer", str(auto_answer)]
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

    def _pull(self, timeout: float) -> bool:
        """Move one event from the reader into ``seen``; False on timeout."""
        try:
            ev = self.events.get(timeout=timeout) if timeout > 0 else self.events.get_nowait()
        except queue.Empty:
            return False
        self.seen.append(ev)
        if ev.get("event") == "fatal":
            raise AssertionError(f"pjsua2 child failed: {ev}\n{self.report()}")
        return True

    def mark(self) -> int:
        """A position in the event history: ``wait_for(..., since=mark)`` looks at
        what came after it (take it before the command whose effects you await)."""
        while self._pull(0):
            pass
        return len(self.seen)

    def wait_for(
        self, kind: str, timeout: float = DEFAULT_TIMEOUT_S, since: int | None = None,
        **match: Any,
    ) -> dict[str, Any]:
        """The first ``kind`` event whose fields equal ``match``, looking from ``since``
        (a ``mark()``) or else after the last event a wait returned; bounded wait."""
        deadline = time.monotonic() + timeout
        i = self._pos if since is None else since
        while True:
            while i < len(self.seen):
                ev = self.seen[i]
                i += 1
                if ev.get("event") == kind and all(ev.get(k) == v for k, v in match.items()):
                    self._pos = max(self._pos, i)
                    return ev
            if not self._pull(deadline - time.monotonic()) and time.monotonic() >= deadline:
                what = f"{kind!r} event" + (f" with {match}" if match else "")
                raise AssertionError(f"no {what} within {timeout:.0f}s\n{self.report()}")

    def next_event(self, kind: str, timeout: float = DEFAULT_TIMEOUT_S) -> dict[str, Any]:
        """The next ``kind`` event after the last one a wait returned."""
        return self.wait_for(kind, timeout)

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

    def wait_call(
        self, state: str, timeout: float = DEFAULT_TIMEOUT_S, since: int | None = None
    ) -> dict[str, Any]:
        """The next onCallState reaching ``state`` (CALLING, INCOMING, EARLY,
        CONNECTING, CONFIRMED, DISCONNECTED)."""
        return self.wait_for("call", timeout, since, state=state)

    def call(self, uri: str) -> None:
        self.command(f"call {uri}")

    def answer(self, code: int = 200) -> None:
        self.command(f"answer {code}")

    def hangup(self, code: int | None = None) -> None:
        self.command("hangup" if code is None else f"hangup {code}")

    def hold(self) -> None:
        self.command("hold")

    def unhold(self) -> None:
        self.command("unhold")

    def seen_of(self, kind: str, since: int = 0) -> list[dict[str, Any]]:
        """The ``kind`` events received so far (from ``since``, a ``mark()``)."""
        self.mark()
        return [e for e in self.seen[since:] if e.get("event") == kind]

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
_EMIT_LOCK = threading.Lock()  # libpj's worker thread and the command loop both emit


def _emit(**fields: Any) -> None:
    line = json.dumps(fields)
    with _EMIT_LOCK:
        print(line, flush=True)


class _Quiet:
    """When libpj's worker thread last ran one of our callbacks.

    The worker thread runs callbacks holding the dialog's mutex and then needs
    the GIL; this binding keeps the GIL while the command loop is inside a
    pjsua call, which then waits for that mutex: a deadlock that pjsua breaks
    after 2 s with PJ_ETIMEDOUT ("Timed-out trying to acquire dialog mutex").
    So a command waits until the worker has been out of callbacks for a short
    while, and one that still times out is tried again.
    """

    QUIET_S = 0.05

    def __init__(self) -> None:
        self.busy = 0
        self.last = 0.0

    def __call__(self, fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            self.busy += 1
            self.last = time.monotonic()
            try:
                return fn(*a, **kw)
            finally:
                self.busy -= 1
                self.last = time.monotonic()

        wrapper.__name__ = fn.__name__
        return wrapper

    def wait(self, limit: float = 1.0) -> None:
        end = time.monotonic() + limit
        while time.monotonic() < end and (
            self.busy or time.monotonic() - self.last < self.QUIET_S
        ):
            time.sleep(0.01)


def _sdp_direction(sdp: str) -> str:
    """The first ``a=sendrecv|sendonly|recvonly|inactive`` of an SDP (sendrecv if none)."""
    for line in sdp.splitlines():
        attr = line.strip()
        if attr in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
            return attr[2:]
    return "sendrecv"


def _child(args: argparse.Namespace) -> int:
    import pjsua2 as pj

    quiet = _Quiet()
    calls: list[Any] = []  # every Call object stays referenced (pybind11 would free it)
    current: list[Any] = []  # the phone's one call, if any

    class PhoneCall(pj.Call):  # type: ignore[misc]
        @quiet
        def onCallState(self, prm: Any) -> None:  # noqa: N802
            info = self.info
            _emit(
                event="call", state=info.state.name, code=int(info.lastStatusCode),
                reason=info.lastReason, role=info.role.name, call_id=info.callIdString,
                remote=info.remoteUri,
            )

        @quiet
        def onCallMediaState(self, prm: Any) -> None:  # noqa: N802
            for media in self.info.media:
                if media.type == pj.MediaType.AUDIO:
                    _emit(event="media", status=media.status.name, dir=media.dir.name)

        @quiet
        def onCallRxOffer(self, prm: Any) -> None:  # noqa: N802
            _emit(event="offer", direction=_sdp_direction(prm.offer.wholeSdp))

        @quiet
        def onCallTsxState(self, prm: Any) -> None:  # noqa: N802
            e = prm.e
            if e.type != pj.EventId.TSX_STATE:
                return
            tsx = e.body.tsxState.tsx
            code = int(tsx.statusCode)
            if tsx.method == "INVITE" and code >= 200 and tsx.state in (
                pj.TsxState.COMPLETED, pj.TsxState.TERMINATED
            ):
                _emit(event="tsx", method=tsx.method, role=tsx.role.name, code=code,
                      state=tsx.state.name)

    def op(code: int | None = None, flag: int = 0) -> Any:
        prm = pj.CallOpParam(True)
        if code is not None:
            prm.statusCode = pj.StatusCode(code)
        if flag:
            prm.opt.flag = flag
        return prm

    class Phone(pj.Account):  # type: ignore[misc]
        @quiet
        def onIncomingCall(self, prm: Any) -> None:  # noqa: N802
            call = PhoneCall(self, prm.callId)
            calls.append(call)
            current[:] = [call]
            info = call.info
            _emit(event="incoming", call_id=info.callIdString, remote=info.remoteUri,
                  local=info.localUri)
            if args.ring:
                call.answer(op(180))
            if args.auto_answer is not None:
                call.answer(op(args.auto_answer))

        @quiet
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

    def _command(cmd: str, arg: str) -> bool:
        if cmd == "unregister":
            phone.setRegistration(False)
        elif cmd == "call":
            call = PhoneCall(phone)
            calls.append(call)
            current[:] = [call]
            call.makeCall(arg, op())
        elif not current:
            return False
        elif cmd == "answer":
            current[0].answer(op(int(arg or 200)))
        elif cmd == "hangup":
            current[0].hangup(op(int(arg) if arg else None))
        elif cmd == "hold":
            current[0].setHold(op())
        elif cmd == "unhold":  # the binding exports no PJSUA_CALL_UNHOLD
            current[0].reinvite(op(flag=PJSUA_CALL_UNHOLD))
        else:
            return False
        return True

    deadline = time.monotonic() + 120  # a forgotten child never outlives its test by much
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "quit":
            break
        for attempt in range(3):
            quiet.wait()
            try:
                if not _command(cmd, arg):
                    _emit(event="error", cmd=cmd, error="unknown command or no call")
                break
            except Exception as exc:  # pj.Error: report, keep the phone running
                if "PJ_ETIMEDOUT" in repr(exc) and attempt < 2:
                    _emit(event="retry", cmd=cmd, error=repr(exc))
                    continue  # the dialog-mutex deadlock above, broken by pjsua: again
                _emit(event="error", cmd=cmd, error=repr(exc))
                break
        if time.monotonic() > deadline:
            break
    for call in calls:  # a call left up would block the teardown
        try:
            if call.active:  # a property in this binding
                call.hangup(op())
        except Exception:  # noqa: BLE001 (already gone)
            pass
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
    parser.add_argument("--no-ring", dest="ring", action="store_false",
                        help="leave incoming calls at 100 Trying (no automatic 180)")
    parser.add_argument("--auto-answer", type=int, default=None, metavar="CODE",
                        help="answer incoming calls with CODE (e.g. 200 or 486) at once")
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
