"""The registrar as a transaction user: REGISTER in, 200/401/403/423 out.

Glue between the sans-IO ``Registrar`` and what needs the outside world:
the port-licence pool (a storage round trip, so the first registration of an
AOR is answered from a task), bans and security logs, and persistence of
every binding change (write-behind, never awaited on the hot path).
Refreshes and re-registrations of an AOR that already holds its licence are
answered synchronously.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ..auth.bans import Ban, BanList, log_auth_failure
from ..sip.builders import make_response, new_tag
from ..sip.events import Output, RequestReceived
from ..sip.core import SipCore
from ..sip.message import Response
from .location import BindingChange
from .registrar import Headers, Plan, Registrar, Reject

log = logging.getLogger("centrala.registrar")

Spawn = Callable[[Coroutine[Any, Any, None]], None]


class LicenceGate(Protocol):
    """Floating port licences: one per AOR with at least one binding."""

    async def acquire(self, tenant: str, holder: str) -> str | None:
        """``None`` when granted, else the reason it is not."""

    async def release(self, tenant: str, holder: str) -> None: ...


def holder_of(aor: tuple[str, str]) -> str:
    return f"ext:{aor[1]}"


class RegistrarService:
    def __init__(
        self,
        core: SipCore,
        registrar: Registrar,
        licences: LicenceGate,
        bans: BanList,
        *,
        spawn: Spawn,
        send: Callable[[list[Output]], None],
        clock: Callable[[], float],
        server_name: str,
        on_ban: Callable[[Ban], None],
    ) -> None:
        self.core = core
        self.registrar = registrar
        self.licences = licences
        self.bans = bans
        self.spawn = spawn
        self.send = send  # raw outputs produced outside an event (after an await)
        self.clock = clock
        self.server_name = server_name
        self.on_ban = on_ban
        registrar.location.listeners.append(self._on_change)

    def on_register(self, event: RequestReceived, now: float) -> list[Output]:
        wall = self.clock()
        outcome = self.registrar.process(event.request, event.source, wall)
        if isinstance(outcome, Reject):
            self._note_failure(event, outcome, wall)
            return self._answer(event, outcome.status, outcome.reason, outcome.headers, now)
        if outcome.first:
            self.spawn(self._register_with_licence(event, outcome))
            return []
        return self._answer(event, 200, None, self.registrar.commit(outcome, wall), now)

    async def _register_with_licence(self, event: RequestReceived, plan: Plan) -> None:
        sub = plan.subscriber
        refused = await self.licences.acquire(sub.tenant, holder_of(sub.aor))
        now = asyncio.get_running_loop().time()
        if refused is not None:
            log.warning("REGISTER %s@%s refused: %s", sub.number, sub.tenant, refused)
            warning = f'399 {self.server_name} "{refused}"'
            self.send(self._answer(event, 403, refused, [("Warning", warning)], now))
            return
        headers = self.registrar.commit(plan, self.clock())
        self.send(self._answer(event, 200, None, headers, now))

    def _note_failure(self, event: RequestReceived, reject: Reject, wall: float) -> None:
        result = reject.auth_failure
        if result is None:
            return
        src = event.source
        realm = reject.realm or "-"
        log_auth_failure(src.host, src.port, result.username, realm, "REGISTER", result.reason)
        user = f"{result.username}@{realm}" if result.username else None
        ban = self.bans.record_failure(src.host, user, wall)
        if ban is not None:
            self.on_ban(ban)

    def _answer(
        self, event: RequestReceived, status: int, reason: str | None, headers: Headers, now: float
    ) -> list[Output]:
        resp: Response = make_response(
            event.request, status, reason, to_tag=new_tag(),
            headers=[("Server", self.server_name), *headers],
        )
        return self.core.respond(event.handle, resp, now)

    # -- licences follow the bindings -------------------------------------------------
    def _on_change(self, change: BindingChange) -> None:
        if change.last:
            self.spawn(self.licences.release(change.aor[0], holder_of(change.aor)))
