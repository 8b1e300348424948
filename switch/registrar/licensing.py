"""Floating port licences taken and freed as AORs gain and lose bindings.

One licence per extension (or trunk) with at least one registered device,
whatever the number of devices (innovaphone's floating PBX-Port model).  The
count lives in storage, so that nodes sharing a database share the pool;
operations on one holder are serialised here, so a release racing a new
registration of the same extension cannot leave it registered unlicensed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..storage.base import Storage

log = logging.getLogger("centrala.licence")

PORT = "PBX-Port"

# tenant -> (licences this node may use, reason they are invalid or None)
PortLimit = Callable[[str], tuple[int, str | None]]


class PortLicenceGate:
    def __init__(self, storage: Storage, node: str, limit_of: PortLimit) -> None:
        self.storage = storage
        self.node = node
        self.limit_of = limit_of
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def acquire(self, tenant: str, holder: str) -> str | None:
        """``None`` when ``holder`` has (or now takes) a licence, else why not."""
        async with self._lock(tenant, holder):
            limit, invalid = self.limit_of(tenant)
            if invalid is not None:
                return invalid
            if await self.storage.acquire_licence(tenant, PORT, holder, self.node, limit):
                return None
            return f"No port licence is free ({limit} in use)"

    async def release(self, tenant: str, holder: str) -> None:
        async with self._lock(tenant, holder):
            await self.storage.release_licence(tenant, PORT, holder)

    def _lock(self, tenant: str, holder: str) -> "_HolderLock":
        return _HolderLock(self._locks, (tenant, holder))


class _HolderLock:
    """An ``asyncio.Lock`` per holder, dropped when nobody uses it any more."""

    __slots__ = ("locks", "key", "lock")

    def __init__(self, locks: dict[tuple[str, str], asyncio.Lock], key: tuple[str, str]) -> None:
        self.locks = locks
        self.key = key
        self.lock = locks.setdefault(key, asyncio.Lock())

    async def __aenter__(self) -> None:
        await self.lock.acquire()

    async def __aexit__(self, *exc: object) -> None:
        self.lock.release()
        if not self.lock.locked() and not getattr(self.lock, "_waiters", None):
            self.locks.pop(self.key, None)
