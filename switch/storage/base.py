"""The storage interface: records and the ``Storage`` protocol.

One interface, two deployments: SQLite for a single node (the default) and
PostgreSQL when several Centrala nodes form a cluster.  Four things are kept:

* **Location bindings** (RFC 3261 §10).  The registrar's in-memory table is
  the source of truth at runtime; storage only makes it durable.  Writes are
  *write-behind*: ``put_binding`` / ``delete_binding`` are synchronous, O(1)
  and never await; a background flusher commits the coalesced changes (last
  write per ``(tenant, user, key)`` wins) in one transaction every
  ``flush_interval_s``.  ``load_bindings`` reloads them after a restart.
* **Licence pool**: floating port licences counted per tenant and kind.
  ``acquire_licence`` is atomic.  On PostgreSQL the pool is shared by every
  node of the cluster (a locked row per pool); SQLite serves one node, whose
  pool is counted in memory and persisted with the next flush.
* **Bans** from brute-force protection, readable by ``centrala bans`` whether
  or not the switch runs.
* **Small key/value state** such as the digest nonce secret.

Times are epoch seconds (``time.time()``), because they must survive a
restart and be comparable between nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class StorageError(Exception):
    """Storage could not do what was asked (e.g. the final flush failed)."""


@dataclass(frozen=True, slots=True)
class BindingRecord:
    """One registered contact of an address-of-record (RFC 3261 §10.3)."""

    tenant: str
    user: str  # the AOR user part
    key: str  # "+sip.instance"+reg-id when present (RFC 5626 §6), else the contact URI
    contact: str  # the full Contact value, parameters included
    expires_at: float  # epoch seconds
    q: float | None
    call_id: str
    cseq: int
    path: tuple[str, ...]  # RFC 3327 Path values, in order
    source: str  # e.g. "udp:203.0.113.5:5060"
    instance: str | None
    reg_id: int | None
    user_agent: str | None
    updated_at: float
    node: str  # the node that accepted the REGISTER


@dataclass(frozen=True, slots=True)
class LicenceHolding:
    """A licence of ``kind`` held by ``holder`` (e.g. a registered device)."""

    tenant: str
    kind: str
    holder: str
    node: str
    since: float


@dataclass(frozen=True, slots=True)
class BanRecord:
    """A source address banned until ``until`` after ``failures`` failures."""

    ip: str
    since: float
    until: float
    failures: int
    reason: str


@dataclass(frozen=True, slots=True)
class CdrRecord:
    """One call detail record: a call with its legs, written when the call ends.

    Times are epoch seconds; ``answer`` is None for unanswered calls.  ``legs``
    is a JSON text: one object per leg (callee, trunk, status, times).  Money
    is a decimal string (no float rounding in billing).
    """

    call_ref: str  # the switch's own id of the call (not a SIP Call-ID)
    tenant: str
    direction: str  # internal | outbound | inbound
    caller: str
    callee: str  # who finally answered, or the last target tried
    dialed: str
    trunk: str | None
    start: float
    answer: float | None
    end: float
    billed_s: int
    disposition: str  # answered | busy | no_answer | cancelled | failed | refused
    hangup_cause: int  # SIP status that ended it (200 for a normal BYE)
    hangup_side: str  # caller | callee | system
    cost: str | None
    legs: str = "[]"
    recording: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end - self.start


class Storage(Protocol):
    """What the switch needs from durable storage."""

    # -- lifecycle --------------------------------------------------------
    async def open(self) -> None:
        """Connect, create missing tables and start the binding flusher."""

    async def close(self) -> None:
        """Flush pending binding changes, then release the database.

        Raises ``StorageError`` if that final flush fails.
        """

    # -- location bindings (write-behind) ---------------------------------
    def put_binding(self, rec: BindingRecord) -> None:
        """Queue an insert-or-replace of ``rec``; O(1), never blocks."""

    def delete_binding(self, tenant: str, user: str, key: str) -> None:
        """Queue the removal of one binding; O(1), never blocks."""

    async def flush(self) -> None:
        """Commit every queued binding change now (one transaction)."""

    async def load_bindings(self, now: float, node: str | None = None) -> list[BindingRecord]:
        """Delete expired bindings, return the rest (of ``node`` if given)."""

    async def delete_expired(self, now: float) -> int:
        """Delete expired bindings and bans; return how many rows went."""

    # -- licence pool -------------------------------------------------------
    async def acquire_licence(
        self, tenant: str, kind: str, holder: str, node: str, limit: int
    ) -> bool:
        """Atomically take a ``kind`` licence of ``tenant`` for ``holder``.

        True if ``holder`` already holds one (idempotent) or if fewer than
        ``limit`` holders (all nodes) hold one; False when the pool is full.
        """

    async def release_licence(self, tenant: str, kind: str, holder: str) -> None:
        """Give back ``holder``'s ``kind`` licence, if it holds one."""

    async def licence_holders(self, tenant: str | None = None) -> list[LicenceHolding]:
        """Every holding, or only those of ``tenant``."""

    async def release_node(self, node: str) -> int:
        """Drop every licence ``node`` holds (start-up after a crash)."""

    # -- bans ---------------------------------------------------------------
    async def save_ban(
        self, ip: str, since: float, until: float, failures: int, reason: str
    ) -> None:
        """Insert or replace the ban of ``ip``."""

    async def delete_ban(self, ip: str) -> bool:
        """Lift the ban of ``ip``; False if there was none."""

    async def load_bans(self, now: float) -> list[BanRecord]:
        """Bans still in force at ``now``."""

    # -- call detail records (write-behind) -----------------------------------
    def put_cdr(self, rec: CdrRecord) -> None:
        """Queue a CDR; committed with the next flush (within a second)."""

    async def load_cdrs(
        self, tenant: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[CdrRecord]:
        """CDRs, oldest first, of ``tenant`` and/or ended after ``since``."""

    # -- small key/value state ----------------------------------------------
    async def get_value(self, key: str) -> str | None: ...

    async def set_value(self, key: str, value: str) -> None: ...
