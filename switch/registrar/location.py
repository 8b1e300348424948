"""The location service: where each address-of-record can be reached now.

Theory of operation
-------------------
Bindings live in memory, keyed by ``(tenant, user)`` and, within an AOR, by a
binding key: the RFC 5626 ``+sip.instance`` and ``reg-id`` when the device
sends them (so a rebooted phone replaces its own flow), else the contact URI
(RFC 3261 §10.3 step 7).  A heap of expiry times lets ``expire(now)`` remove
what is due without scanning.  Times are wall-clock epoch seconds, because
bindings are persisted and survive a restart.  Every change is reported to
listeners (``on_change``) so that storage and licences follow; this object
does no I/O.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..sip.address import Address

AorKey = tuple[str, str]  # (tenant domain, user)


class Binding:
    """One registered contact of an AOR.  Slotted: 100,000 of them must fit."""

    __slots__ = (
        "key", "contact", "uri", "expires_at", "q", "call_id", "cseq", "source",
        "path", "instance", "reg_id", "user_agent", "updated_at", "reachable", "failures",
    )

    def __init__(
        self,
        key: str,
        contact: str,
        uri: str,
        expires_at: float,
        call_id: str,
        cseq: int,
        source: Address,
        *,
        q: float | None = None,
        path: tuple[str, ...] = (),
        instance: str | None = None,
        reg_id: int | None = None,
        user_agent: str | None = None,
        updated_at: float = 0.0,
    ) -> None:
        self.key = key
        self.contact = contact
        self.uri = uri
        self.expires_at = expires_at
        self.q = q
        self.call_id = call_id
        self.cseq = cseq
        self.source = source
        self.path = path
        self.instance = instance
        self.reg_id = reg_id
        self.user_agent = user_agent
        self.updated_at = updated_at
        self.reachable = True
        self.failures = 0

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires_at - now + 0.5))

    def __repr__(self) -> str:
        return f"<Binding {self.uri} until {self.expires_at:.0f} via {self.source}>"


@dataclass(frozen=True, slots=True)
class BindingChange:
    """What changed in one AOR: the listeners' view (storage, licences, MWI...)."""

    aor: AorKey
    added_or_updated: tuple[Binding, ...]
    removed: tuple[Binding, ...]
    first: bool  # the AOR had no binding before
    last: bool  # the AOR has no binding now

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(
        self,
        aor: AorKey,
        added_or_updated: tuple[Binding, ...],
        removed: tuple[Binding, ...],
        first: bool,
        last: bool,
    ) -> None:
        self.aor = aor  # type: ignore[misc]
        self.added_or_updated = added_or_updated  # type: ignore[misc]
        self.removed = removed  # type: ignore[misc]
        self.first = first  # type: ignore[misc]
        self.last = last  # type: ignore[misc]


Listener = Callable[[BindingChange], None]


class Location:
    def __init__(self) -> None:
        self._aors: dict[AorKey, dict[str, Binding]] = {}
        self._heap: list[tuple[float, str, str, str]] = []
        self._count = 0
        self.listeners: list[Listener] = []

    # -- reading ---------------------------------------------------------------
    def bindings(self, aor: AorKey) -> list[Binding]:
        return list(self._aors.get(aor, {}).values())

    def binding(self, aor: AorKey, key: str) -> Binding | None:
        return self._aors.get(aor, {}).get(key)

    def has(self, aor: AorKey) -> bool:
        return aor in self._aors

    def __len__(self) -> int:
        return self._count

    def aors(self) -> Iterator[tuple[AorKey, dict[str, Binding]]]:
        return iter(self._aors.items())

    def reachable(self, aor: AorKey) -> bool:
        """Any binding not marked unreachable by qualify (RFC 3261 has no such notion:
        this is the PBX's "monitor this extension" option)."""
        return any(b.reachable for b in self._aors.get(aor, {}).values())

    # -- writing ---------------------------------------------------------------
    def apply(self, aor: AorKey, upserts: list[Binding], removals: list[str]) -> BindingChange:
        """Add/refresh ``upserts`` and drop the keys in ``removals``, atomically."""
        current = self._aors.get(aor)
        first = not current
        table = current if current is not None else {}
        removed = tuple(b for k in removals if (b := table.pop(k, None)) is not None)
        self._count -= len(removed)
        for binding in upserts:
            if binding.key not in table:
                self._count += 1
            table[binding.key] = binding
            heapq.heappush(self._heap, (binding.expires_at, aor[0], aor[1], binding.key))
        if len(self._heap) > 2 * self._count + 1024:
            self._compact()
        if table:
            self._aors[aor] = table
        else:
            self._aors.pop(aor, None)
        change = BindingChange(aor, tuple(upserts), removed, first and bool(table), not table)
        if upserts or removed:
            self._notify(change)
        return change

    def restore(self, aor: AorKey, binding: Binding) -> None:
        """Put back a persisted binding at start-up (listeners are told too)."""
        self.apply(aor, [binding], [])

    def expire(self, now: float) -> list[BindingChange]:
        """Remove every binding whose time has come (RFC 3261 §10.3 step 8)."""
        due: dict[AorKey, list[str]] = {}
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires_at, tenant, user, key = heapq.heappop(heap)
            binding = self._aors.get((tenant, user), {}).get(key)
            if binding is not None and binding.expires_at <= now:
                due.setdefault((tenant, user), []).append(key)
        return [self.apply(aor, [], keys) for aor, keys in due.items()]

    def next_expiry(self) -> float | None:
        heap = self._heap
        while heap:
            expires_at, tenant, user, key = heap[0]
            binding = self._aors.get((tenant, user), {}).get(key)
            if binding is not None and binding.expires_at == expires_at:
                return expires_at
            heapq.heappop(heap)  # stale: refreshed or removed since
        return None

    def _compact(self) -> None:
        """Drop the heap entries of refreshed bindings (refreshes push new ones)."""
        self._heap = [
            (b.expires_at, tenant, user, b.key)
            for (tenant, user), table in self._aors.items()
            for b in table.values()
        ]
        heapq.heapify(self._heap)

    def _notify(self, change: BindingChange) -> None:
        for listener in self.listeners:
            listener(change)
