"""The licence pool of a single node (SQLite): counted in memory, persisted behind.

With SQLite the switch is one node, so the pool needs no database lock: the
event loop already serialises acquirers, and a first registration is answered
without waiting for a disk write.  Holdings are persisted with the next flush
so that ``centrala licences`` (another process) can read them; after a crash
they are rebuilt from the restored bindings anyway.  A cluster uses
PostgreSQL, where the pool is a locked row (see ``sql.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import LicenceHolding

PoolKey = tuple[str, str]  # (tenant, kind)
HoldingId = tuple[str, str, str]  # (tenant, kind, holder)


class LocalPool:
    def __init__(self) -> None:
        self._held: dict[PoolKey, dict[str, LicenceHolding]] = {}
        self.changes: dict[HoldingId, LicenceHolding | None] = {}  # to persist

    def load(self, holdings: Iterable[LicenceHolding]) -> None:
        for h in holdings:
            self._held.setdefault((h.tenant, h.kind), {})[h.holder] = h

    def acquire(
        self, tenant: str, kind: str, holder: str, node: str, limit: int, now: float
    ) -> bool:
        pool = self._held.setdefault((tenant, kind), {})
        held = pool.get(holder)
        if held is not None:
            if held.node != node:
                self._set(pool, LicenceHolding(tenant, kind, holder, node, held.since))
            return True
        if len(pool) >= limit:
            return False
        self._set(pool, LicenceHolding(tenant, kind, holder, node, now))
        return True

    def release(self, tenant: str, kind: str, holder: str) -> None:
        pool = self._held.get((tenant, kind), {})
        if pool.pop(holder, None) is not None:
            self.changes[(tenant, kind, holder)] = None

    def release_node(self, node: str) -> int:
        gone = [h for pool in self._held.values() for h in pool.values() if h.node == node]
        for h in gone:
            self.release(h.tenant, h.kind, h.holder)
        return len(gone)

    def holders(self, tenant: str | None = None) -> list[LicenceHolding]:
        found = [
            h
            for (t, _), pool in self._held.items()
            if tenant is None or t == tenant
            for h in pool.values()
        ]
        return sorted(found, key=lambda h: (h.tenant, h.kind, h.since))

    def _set(self, pool: dict[str, LicenceHolding], holding: LicenceHolding) -> None:
        pool[holding.holder] = holding
        self.changes[(holding.tenant, holding.kind, holding.holder)] = holding
