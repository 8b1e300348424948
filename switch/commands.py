"""Control commands the running switch answers (``centrala bans`` and friends)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from .control import ControlServer

if TYPE_CHECKING:
    from .app import Switch


def register_commands(control: ControlServer, switch: Switch) -> None:
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
        return await switch.reload()

    async def trunks(_: dict[str, Any]) -> list[dict[str, object]]:
        return switch.trunks.status() if switch.trunks is not None else []

    async def status(request: dict[str, Any]) -> dict[str, Any]:
        """Counters a soak test watches return to their baseline once traffic stops."""
        if request.get("gc"):
            switch.gc.full(asyncio.get_running_loop().time())
        core, calls, registrar = switch.core, switch.calls, switch.registrar
        return {
            "pid": os.getpid(),
            "calls": len(calls.calls) if calls is not None else 0,
            "calls_active": calls.active if calls is not None else 0,
            "transactions": len(core.transactions) if core is not None else 0,
            "transactions_in_flight": core.transactions.in_flight() if core is not None else 0,
            "tasks": len(asyncio.all_tasks()),
            "bindings": len(registrar.location) if registrar is not None else 0,
            "connections": switch.endpoint.connections if switch.endpoint is not None else 0,
            "rtp_ports_in_use": switch.relay.ports_in_use() if switch.relay is not None else 0,
            "open_fds": len(os.listdir("/proc/self/fd")),
            "rss_bytes": _rss_bytes(),
        }

    control.register("status", status)
    control.register("trunks", trunks)
    control.register("bans", bans)
    control.register("unban", unban)
    control.register("registrations", registrations)
    control.register("reload", reload)


def _rss_bytes() -> int:
    """This process's resident set size (VmRSS), 0 where /proc is not there."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
