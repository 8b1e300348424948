"""Control commands the running switch answers (``centrala bans`` and friends)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .control import ControlServer

if TYPE_CHECKING:
    from .app import Switch


def register_commands(control: ControlServer, switch: "Switch") -> None:
    async def bans(_: dict[str, Any]) -> list[dict[str, Any]]:
        assert switch.registrar is not None
        return [
            {"ip": b.ip, "since": b.since, "until": b.until, "failures": b.failures,
             "reason": b.reason}
            for b in switch.registrar.bans.bans(time.time())
        ]

    async def unban(request: dict[str, Any]) -> bool:
        assert switch.registrar is not None
        return await switch.registrar.unban(str(request["ip"]))

    async def registrations(request: dict[str, Any]) -> list[dict[str, Any]]:
        assert switch.registrar is not None
        now = time.time()
        tenant = request.get("tenant")
        return [
            {
                "aor": f"{user}@{domain}",
                "contacts": [
                    {"uri": b.uri, "expires": b.remaining(now), "source": str(b.source),
                     "reachable": b.reachable, "user_agent": b.user_agent}
                    for b in table.values()
                ],
            }
            for (domain, user), table in switch.registrar.location.aors()
            if tenant is None or domain == tenant
        ]

    async def reload(_: dict[str, Any]) -> bool:
        return switch.reload()

    async def trunks(_: dict[str, Any]) -> list[dict[str, object]]:
        return switch.trunks.status() if switch.trunks is not None else []

    control.register("trunks", trunks)
    control.register("bans", bans)
    control.register("unban", unban)
    control.register("registrations", registrations)
    control.register("reload", reload)
