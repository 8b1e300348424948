"""Registration of trunks to their providers: Centrala as a registering UA.

Theory of operation
-------------------
Every trunk with ``register: true`` has a ``TrunkLine``: REGISTER to the
provider with its credentials (digest challenges answered with
``auth.client``), refreshed before the granted time runs out (at half of
it, RFC 3261 §10.2.4 leaves the margin to the client), retried with an
exponential back-off after a failure (30 s doubling to 10 min).  A
registered trunk holds one floating port licence (innovaphone's model: a
trunk is a port), freed when the registration is lost.  ``status()`` feeds
``centrala trunks``.  Timers go through the injected ``call_at``; no clock
or socket is read here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from dialplan.schema import Config, Trunk

from .auth.client import authorization, pick_challenge
from .b2bua.call_env import Cancellable
from .b2bua.plan import trunk_address
from .registrar.licensing import PortLicenceGate
from .sip.address import Address
from .sip.builders import new_branch, new_call_id, new_tag
from .sip.core import SipCore
from .sip.errors import SipError
from .sip.events import Output, ResponseReceived, TransactionTimeout, TransportError
from .sip.grammar import parse_uint
from .sip.message import Request, Response, new_request

log = logging.getLogger("centrala.trunks")

REGISTER_EXPIRES = 3600
BACKOFF_FIRST_S = 30.0
BACKOFF_MAX_S = 600.0


class LineState(Enum):
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(slots=True)
class TrunkLine:
    tenant: str
    trunk: Trunk
    call_id: str
    tag: str
    cseq: int = 0
    state: LineState = LineState.REGISTERING
    expires_at: float | None = None
    last_status: int | None = None
    last_error: str = ""
    backoff: float = BACKOFF_FIRST_S
    auth_tries: int = 0
    licensed: bool = False
    timer: Cancellable | None = field(default=None, repr=False)

    @property
    def holder(self) -> str:
        return f"trunk:{self.trunk.name}"


class TrunkRegistrar:
    def __init__(
        self,
        core: SipCore,
        gate: PortLicenceGate,
        *,
        local_address: Callable[[Address], tuple[str, str, int]],
        call_at: Callable[[float, Callable[[], None]], Cancellable],
        send: Callable[[list[Output]], None],
        now: Callable[[], float],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        user_agent: str = "Centrala",
    ) -> None:
        self.core = core
        self.gate = gate
        self._local_address = local_address
        self._call_at = call_at
        self._send = send
        self._now = now
        self._spawn = spawn
        self.user_agent = user_agent
        self.lines: dict[tuple[str, str], TrunkLine] = {}

    # -- configuration ---------------------------------------------------------------
    def apply(self, config: Config) -> None:
        """Start lines for new registering trunks, stop the ones that went away."""
        wanted = {
            (t.domain, tr.name): (t.domain, tr)
            for t in config.tenants
            for tr in t.trunks
            if tr.register
        }
        for key in list(self.lines):
            if key not in wanted:
                self._stop(self.lines.pop(key))
        for key, (tenant, trunk) in wanted.items():
            line = self.lines.get(key)
            if line is None or line.trunk != trunk:
                if line is not None:
                    self._stop(line)
                line = TrunkLine(tenant, trunk, new_call_id("trunk"), new_tag())
                self.lines[key] = line
                self._schedule(line, self._now())

    def stop_all(self) -> None:
        for line in self.lines.values():
            self._stop(line)

    def _stop(self, line: TrunkLine) -> None:
        if line.timer is not None:
            line.timer.cancel()
        line.state = LineState.STOPPED
        self._release(line)

    # -- registering -------------------------------------------------------------------
    def _schedule(self, line: TrunkLine, when: float) -> None:
        if line.timer is not None:
            line.timer.cancel()
        line.timer = self._call_at(when, lambda: self._send(self._register(line, None)))

    def _register(self, line: TrunkLine, auth: tuple[str, str] | None) -> list[Output]:
        if line.state is LineState.STOPPED:
            return []
        trunk = line.trunk
        dest = trunk_address(trunk)
        transport, host, port = self._local_address(dest)
        sent_by = f"[{host}]" if ":" in host else host
        line.cseq += 1
        user = trunk.username or "centrala"
        uri = f"sip:{trunk.host}:{trunk.port}"
        headers: list[tuple[str, object]] = [
            ("Via", f"SIP/2.0/{transport.upper()} {sent_by}:{port};branch={new_branch()};rport"),
            ("Max-Forwards", 70),
            ("From", f"<sip:{user}@{trunk.host}>;tag={line.tag}"),
            ("To", f"<sip:{user}@{trunk.host}>"),
            ("Call-ID", line.call_id),
            ("CSeq", f"{line.cseq} REGISTER"),
            ("Contact", f"<sip:{user}@{sent_by}:{port}>"),
            ("Expires", REGISTER_EXPIRES),
            ("User-Agent", self.user_agent),
        ]
        if auth is not None:
            headers.append(auth)
        req = new_request("REGISTER", uri, headers)
        owner = _LineOwner(self, line, req)
        _, outputs = self.core.send_request(req, dest, self._now(), owner)
        return outputs

    def on_response(self, line: TrunkLine, req: Request, resp: Response) -> list[Output]:
        line.last_status = resp.status
        if resp.status < 200:
            return []
        if 200 <= resp.status < 300:
            return self._registered(line, resp)
        if resp.status in (401, 407) and line.auth_tries < 2 and line.trunk.password is not None:
            picked = pick_challenge(resp)
            if picked is not None:
                header, challenge = picked
                if line.auth_tries == 0 or challenge.stale:
                    line.auth_tries += 1
                    value = authorization(
                        challenge, "REGISTER", req.uri_text, line.trunk.username or "",
                        line.trunk.password.get_secret_value(),
                    )
                    return self._register(line, (header, value))
        self._failed(line, f"{resp.status} {resp.reason}")
        return []

    def _registered(self, line: TrunkLine, resp: Response) -> list[Output]:
        granted = _granted_expiry(resp, REGISTER_EXPIRES)
        now = self._now()
        line.state, line.auth_tries, line.backoff = LineState.REGISTERED, 0, BACKOFF_FIRST_S
        line.expires_at, line.last_error = now + granted, ""
        if not line.licensed:
            line.licensed = True
            self._spawn(self._take_licence(line))
        log.info("trunk %s registered at %s for %ss", line.trunk.name, line.trunk.host, granted)
        self._schedule(line, now + max(granted / 2, 1.0))
        return []

    async def _take_licence(self, line: TrunkLine) -> None:
        refused = await self.gate.acquire(line.tenant, line.holder)
        if refused is not None:
            log.warning("trunk %s registered without a port licence: %s", line.trunk.name, refused)
            line.licensed = False

    def on_failure(self, line: TrunkLine, why: str) -> None:
        self._failed(line, why)

    def _failed(self, line: TrunkLine, why: str) -> None:
        if line.state is LineState.STOPPED:
            return
        line.state, line.last_error, line.auth_tries = LineState.FAILED, why, 0
        line.expires_at = None
        self._release(line)
        log.warning("trunk %s registration failed (%s); retry in %.0fs",
                    line.trunk.name, why, line.backoff)
        self._schedule(line, self._now() + line.backoff)
        line.backoff = min(line.backoff * 2, BACKOFF_MAX_S)

    def _release(self, line: TrunkLine) -> None:
        if line.licensed:
            line.licensed = False
            self._spawn(self.gate.release(line.tenant, line.holder))

    # -- status --------------------------------------------------------------------------
    def status(self) -> list[dict[str, object]]:
        now = self._now()
        return [
            {
                "tenant": line.tenant, "trunk": line.trunk.name, "state": line.state.value,
                "host": f"{line.trunk.host}:{line.trunk.port}",
                "expires_in": None if line.expires_at is None else int(line.expires_at - now),
                "last_status": line.last_status, "error": line.last_error,
                "licensed": line.licensed,
            }
            for line in self.lines.values()
        ]


class _LineOwner:
    """Transaction events of one REGISTER of a line."""

    __slots__ = ("registrar", "line", "request")

    def __init__(self, registrar: TrunkRegistrar, line: TrunkLine, request: Request) -> None:
        self.registrar, self.line, self.request = registrar, line, request

    def __call__(self, event: object, now: float) -> list[Output]:
        if isinstance(event, ResponseReceived):
            return self.registrar.on_response(self.line, self.request, event.response)
        if isinstance(event, (TransactionTimeout, TransportError)):
            self.registrar.on_failure(self.line, "no answer" if isinstance(
                event, TransactionTimeout) else "transport error")
        return []


def _granted_expiry(resp: Response, asked: int) -> int:
    """The time the registrar granted: our Contact's expires, else Expires."""
    try:
        contact = resp.contact
        for addr in contact.addresses if contact is not None else ():
            value = addr.param("expires")
            if value:
                return parse_uint(value, "expires", 2**32 - 1)
        header = resp.get("expires")
        if header is not None:
            return parse_uint(header, "Expires", 2**32 - 1)
    except SipError:
        pass
    return asked
