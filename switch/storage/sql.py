"""``Storage`` on SQLAlchemy Core (asyncio): SQLite by default, PostgreSQL for a cluster.

Theory of operation
-------------------
*Bindings* are write-behind.  ``put_binding`` / ``delete_binding`` only store
the change in ``_pending``, a dict keyed by ``(tenant, user, key)`` (so it
never holds more than one entry per binding, however hot) and set an event.
The flusher task waits for that event, sleeps ``flush_interval_s`` to gather
more changes, swaps the dict out and commits it in ONE transaction.  A failed
flush puts its changes back under any newer ones, is logged, and is retried
at the next interval; ``flush()`` and ``close()`` raise instead.  Flushes are
serialised by ``_flush_lock`` so an older batch can never commit after a
newer one.  With the default 0.2 s interval a binding acknowledged more than
one second ago is committed unless the database itself is failing (which is
logged).  SQLite runs in WAL with ``synchronous=NORMAL``: a commit survives a
crash of the process; only a power loss may lose the last commits.

*Writes are serialised per dialect*:

* SQLite: every write transaction starts with ``BEGIN IMMEDIATE``, taking the
  database write lock up front (no lock upgrade, so no ``SQLITE_BUSY`` in the
  middle of a transaction); other processes or ``Storage`` objects on the
  same file wait up to ``busy_timeout``.  Inside one process an
  ``asyncio.Lock`` queues the writers first, so they do not spin in SQLite's
  busy handler.  Reads use a plain deferred ``BEGIN`` (WAL readers never block).
* PostgreSQL: ``acquire_licence`` upserts, then locks with
  ``SELECT ... FOR UPDATE``, the ``licence_pools`` row of ``(tenant, kind)``;
  concurrent acquirers of the same pool (any node) queue on that row lock.
  At READ COMMITTED each later statement takes a new snapshot, so the count
  that follows the lock sees every holding committed before it.  Schema
  creation is serialised by ``pg_advisory_xact_lock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Double,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .base import BanRecord, BindingRecord, CdrRecord, LicenceHolding, StorageError
from .pool import LocalPool

log = logging.getLogger("centrala.storage")

DEFAULT_FLUSH_INTERVAL_S = 0.2
SQLITE_BUSY_TIMEOUT_MS = 10_000
_WRITE_OPTION = "centrala_write"  # execution option: this transaction writes
_SCHEMA_LOCK_KEY = 0x63656E74  # pg_advisory_xact_lock key for create_all ("cent")
_FAILURE_LOG_EVERY_S = 30.0

metadata = MetaData()

bindings = Table(
    "location_bindings",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("aor_user", String(255), primary_key=True),
    Column("binding_key", Text, primary_key=True),
    Column("contact", Text, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
    Column("q", Double),
    Column("call_id", Text, nullable=False),
    Column("cseq", BigInteger, nullable=False),
    Column("path", JSON, nullable=False),
    Column("source", String(255), nullable=False),
    Column("instance", Text),
    Column("reg_id", Integer),
    Column("user_agent", Text),
    Column("updated_at", Double, nullable=False),
    Column("node", String(255), nullable=False, index=True),
)

licence_pools = Table(  # one lock row per pool (PostgreSQL SELECT ... FOR UPDATE)
    "licence_pools",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("kind", String(64), primary_key=True),
)

licences = Table(
    "licence_holdings",
    metadata,
    Column("tenant", String(255), primary_key=True),
    Column("kind", String(64), primary_key=True),
    Column("holder", String(255), primary_key=True),
    Column("node", String(255), nullable=False, index=True),
    Column("since", Double, nullable=False),
)

bans = Table(
    "bans",
    metadata,
    Column("ip", String(64), primary_key=True),
    Column("since", Double, nullable=False),
    Column("until", Double, nullable=False, index=True),
    Column("failures", Integer, nullable=False),
    Column("reason", Text, nullable=False),
)

kv = Table(
    "kv_state",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
)

cdrs = Table(
    "cdrs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("call_ref", String(64), nullable=False, index=True),
    Column("tenant", String(255), nullable=False, index=True),
    Column("direction", String(16), nullable=False),
    Column("caller", String(255), nullable=False),
    Column("callee", String(255), nullable=False),
    Column("dialed", String(255), nullable=False),
    Column("trunk", String(255)),
    Column("start", Double, nullable=False),
    Column("answer", Double),
    Column("end", Double, nullable=False, index=True),
    Column("billed_s", Integer, nullable=False),
    Column("disposition", String(16), nullable=False),
    Column("hangup_cause", Integer, nullable=False),
    Column("hangup_side", String(16), nullable=False),
    Column("cost", String(32)),
    Column("legs", Text, nullable=False),
    Column("recording", Text),
)

_BindingId = tuple[str, str, str]
_Insert = Callable[[Table], Any]  # sqlite.insert or postgresql.insert


def _binding_row(rec: BindingRecord) -> dict[str, Any]:
    return {
        "tenant": rec.tenant,
        "aor_user": rec.user,
        "binding_key": rec.key,
        "contact": rec.contact,
        "expires_at": rec.expires_at,
        "q": rec.q,
        "call_id": rec.call_id,
        "cseq": rec.cseq,
        "path": list(rec.path),
        "source": rec.source,
        "instance": rec.instance,
        "reg_id": rec.reg_id,
        "user_agent": rec.user_agent,
        "updated_at": rec.updated_at,
        "node": rec.node,
    }


def _binding_of(row: Any) -> BindingRecord:
    return BindingRecord(
        tenant=row.tenant,
        user=row.aor_user,
        key=row.binding_key,
        contact=row.contact,
        expires_at=row.expires_at,
        q=row.q,
        call_id=row.call_id,
        cseq=row.cseq,
        path=tuple(row.path),
        source=row.source,
        instance=row.instance,
        reg_id=row.reg_id,
        user_agent=row.user_agent,
        updated_at=row.updated_at,
        node=row.node,
    )


_CDR_FIELDS = tuple(f for f in CdrRecord.__dataclass_fields__)


def _cdr_row(rec: CdrRecord) -> dict[str, Any]:
    return {name: getattr(rec, name) for name in _CDR_FIELDS}


def _cdr_of(row: Any) -> CdrRecord:
    return CdrRecord(**{name: getattr(row, name) for name in _CDR_FIELDS})


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    """Pragmas on connect; SQLAlchemy (not sqlite3) emits BEGIN / BEGIN IMMEDIATE."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let _on_begin emit BEGIN
        cursor = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class SqlStorage:
    """``Storage`` on an SQLAlchemy async engine (``sqlite+aiosqlite`` or ``postgresql+asyncpg``)."""

    def __init__(self, url: str, *, flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> None:
        self.url = make_url(url)
        self.flush_interval_s = flush_interval_s
        self._sqlite = self.url.get_backend_name() == "sqlite"
        self._insert: _Insert = sqlite.insert if self._sqlite else postgresql.insert
        self._engine: AsyncEngine | None = None
        self._writer: AsyncEngine | None = None
        self._write_lock = asyncio.Lock()  # SQLite only: one writer per process
        self._pending: dict[_BindingId, BindingRecord | None] = {}
        self._cdrs: list[CdrRecord] = []
        self._pool = LocalPool() if self._sqlite else None  # SQLite: one node's pool
        self._dirty = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._failures = 0
        self._failure_logged_at = 0.0

    # -- lifecycle ------------------------------------------------------------
    async def open(self) -> None:
        if self._engine is not None:
            return
        if self._sqlite:
            await self._make_sqlite_dir()
        engine = create_async_engine(self.url, pool_pre_ping=not self._sqlite)
        if self._sqlite:
            _install_sqlite_hooks(engine)
        self._engine = engine
        self._writer = engine.execution_options(**{_WRITE_OPTION: True})
        try:
            await self._create_tables()
        except Exception as exc:
            self._engine = self._writer = None
            await engine.dispose()
            shown = self.url.render_as_string(hide_password=True)
            raise StorageError(f"cannot open storage {shown}: {exc}") from exc
        if self._pool is not None:
            self._pool.load(await self._db_licence_holders(None))
        self._flusher = asyncio.create_task(self._flush_loop(), name="storage-flusher")
        log.info("storage open: %s", self.url.render_as_string(hide_password=True))

    async def close(self) -> None:
        if self._engine is None:
            return
        if self._flusher is not None:
            async with self._flush_lock:  # never cancel it in the middle of a commit
                self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        try:
            await self.flush()
        except Exception as exc:
            lost = len(self._pending)
            raise StorageError(f"final flush failed; {lost} binding changes lost") from exc
        finally:
            engine, self._engine, self._writer = self._engine, None, None
            await engine.dispose()

    async def _create_tables(self) -> None:
        async with self._write() as conn:
            if not self._sqlite:  # nodes starting together must not race on CREATE TABLE
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK_KEY}
                )
            await conn.run_sync(metadata.create_all)

    async def _make_sqlite_dir(self) -> None:
        database = self.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            await asyncio.to_thread(Path(database).parent.mkdir, parents=True, exist_ok=True)

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: BEGIN IMMEDIATE under the process lock on SQLite."""
        if self._writer is None:
            raise StorageError("storage is not open")
        serial = self._write_lock if self._sqlite else contextlib.nullcontext()
        async with serial, self._writer.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        if self._engine is None:
            raise StorageError("storage is not open")
        async with self._engine.connect() as conn:
            yield conn

    # -- bindings: write-behind ----------------------------------------------
    def put_binding(self, rec: BindingRecord) -> None:
        self._pending[(rec.tenant, rec.user, rec.key)] = rec
        self._dirty.set()

    def delete_binding(self, tenant: str, user: str, key: str) -> None:
        self._pending[(tenant, user, key)] = None
        self._dirty.set()

    def put_cdr(self, rec: CdrRecord) -> None:
        self._cdrs.append(rec)
        self._dirty.set()

    @property
    def pending(self) -> int:
        """Binding changes, CDRs and licence changes queued and not yet committed."""
        pool = len(self._pool.changes) if self._pool is not None else 0
        return len(self._pending) + len(self._cdrs) + pool

    async def flush(self) -> None:
        async with self._flush_lock:
            batch, self._pending = self._pending, {}
            records, self._cdrs = self._cdrs, []
            held: dict[tuple[str, str, str], LicenceHolding | None] = {}
            if self._pool is not None:
                held, self._pool.changes = self._pool.changes, {}
            if not batch and not records and not held:
                return
            try:
                async with self._write() as conn:
                    await self._write_batch(conn, batch)
                    if records:
                        await conn.execute(insert(cdrs), [_cdr_row(r) for r in records])
                    await self._write_holdings(conn, held)
            except BaseException:
                for ident, change in batch.items():  # newer changes win
                    self._pending.setdefault(ident, change)
                self._cdrs[:0] = records
                if self._pool is not None:
                    for ident, holding in held.items():
                        self._pool.changes.setdefault(ident, holding)
                raise

    async def _write_holdings(
        self, conn: AsyncConnection, held: dict[tuple[str, str, str], LicenceHolding | None]
    ) -> None:
        """The pool's changes in two statements, however many holders changed."""
        if not held:
            return
        await conn.execute(
            delete(licences).where(
                licences.c.tenant == bindparam("t"),
                licences.c.kind == bindparam("k"),
                licences.c.holder == bindparam("h"),
            ),
            [{"t": t, "k": k, "h": h} for t, k, h in held],
        )
        rows = [
            {"tenant": h.tenant, "kind": h.kind, "holder": h.holder, "node": h.node,
             "since": h.since}
            for h in held.values()
            if h is not None
        ]
        if rows:
            await conn.execute(insert(licences), rows)

    async def load_cdrs(
        self, tenant: str | None = None, since: float | None = None, limit: int = 1000
    ) -> list[CdrRecord]:
        query = select(cdrs).order_by(cdrs.c.end, cdrs.c.id).limit(limit)
        if tenant is not None:
            query = query.where(cdrs.c.tenant == tenant)
        if since is not None:
            query = query.where(cdrs.c.end >= since)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_cdr_of(row) for row in rows]

    async def _write_batch(
        self, conn: AsyncConnection, batch: dict[_BindingId, BindingRecord | None]
    ) -> None:
        rows = [_binding_row(rec) for rec in batch.values() if rec is not None]
        gone = [{"t": t, "u": u, "k": k} for (t, u, k), rec in batch.items() if rec is None]
        if rows:
            stmt = self._insert(bindings)
            keys = ("tenant", "aor_user", "binding_key")
            stmt = stmt.on_conflict_do_update(
                index_elements=list(keys),
                set_={name: stmt.excluded[name] for name in rows[0] if name not in keys},
            )
            await conn.execute(stmt, rows)
        if gone:
            await conn.execute(
                delete(bindings).where(
                    bindings.c.tenant == bindparam("t"),
                    bindings.c.aor_user == bindparam("u"),
                    bindings.c.binding_key == bindparam("k"),
                ),
                gone,
            )

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self.flush_interval_s)
            self._dirty.clear()
            try:
                await self.flush()
            except Exception as exc:  # noqa: BLE001 - the flusher must survive anything
                self._dirty.set()  # retry at the next interval
                self._log_failure(exc)
            else:
                if self._failures:
                    log.warning("binding flush recovered after %d failures", self._failures)
                    self._failures = 0

    def _log_failure(self, exc: Exception) -> None:
        self._failures += 1
        now = time.monotonic()
        if self._failures == 1 or now - self._failure_logged_at >= _FAILURE_LOG_EVERY_S:
            self._failure_logged_at = now
            log.error(
                "binding flush failed (%d in a row, %d changes pending); retrying",
                self._failures,
                len(self._pending),
                exc_info=exc,
            )

    async def load_bindings(self, now: float, node: str | None = None) -> list[BindingRecord]:
        query = select(bindings).where(bindings.c.expires_at > now)
        if node is not None:
            query = query.where(bindings.c.node == node)
        async with self._write() as conn:
            await conn.execute(delete(bindings).where(bindings.c.expires_at <= now))
            result = await conn.execute(query)
            return [_binding_of(row) for row in result]

    async def delete_expired(self, now: float) -> int:
        async with self._write() as conn:
            gone = await conn.execute(delete(bindings).where(bindings.c.expires_at <= now))
            lifted = await conn.execute(delete(bans).where(bans.c.until <= now))
            return gone.rowcount + lifted.rowcount

    # -- licence pool -------------------------------------------------------
    async def acquire_licence(
        self, tenant: str, kind: str, holder: str, node: str, limit: int
    ) -> bool:
        if self._pool is not None:
            taken = self._pool.acquire(tenant, kind, holder, node, limit, time.time())
            self._dirty.set()
            return taken
        async with self._write() as conn:
            await self._lock_pool(conn, tenant, kind)
            mine = and_(
                licences.c.tenant == tenant, licences.c.kind == kind, licences.c.holder == holder
            )
            # FOR UPDATE: a concurrent release (or release_node) of this holding
            # is either seen committed (row gone) or waits for us (PostgreSQL).
            held_by = await conn.scalar(select(licences.c.node).where(mine).with_for_update())
            if held_by is not None:
                if held_by != node:  # the holder moved: its new node answers for it
                    await conn.execute(update(licences).where(mine).values(node=node))
                return True
            used = await conn.scalar(
                select(func.count())
                .select_from(licences)
                .where(licences.c.tenant == tenant, licences.c.kind == kind)
            )
            if (used or 0) >= limit:
                return False
            await conn.execute(
                licences.insert().values(
                    tenant=tenant, kind=kind, holder=holder, node=node, since=time.time()
                )
            )
            return True

    async def _lock_pool(self, conn: AsyncConnection, tenant: str, kind: str) -> None:
        """Serialise acquirers of one pool: row lock on PostgreSQL (no-op on SQLite,
        whose BEGIN IMMEDIATE already holds the database write lock)."""
        if self._sqlite:
            return
        await conn.execute(
            self._insert(licence_pools).values(tenant=tenant, kind=kind).on_conflict_do_nothing()
        )
        await conn.execute(
            select(licence_pools.c.tenant)
            .where(licence_pools.c.tenant == tenant, licence_pools.c.kind == kind)
            .with_for_update()
        )

    async def release_licence(self, tenant: str, kind: str, holder: str) -> None:
        if self._pool is not None:
            self._pool.release(tenant, kind, holder)
            self._dirty.set()
            return
        async with self._write() as conn:
            await conn.execute(
                delete(licences).where(
                    licences.c.tenant == tenant,
                    licences.c.kind == kind,
                    licences.c.holder == holder,
                )
            )

    async def licence_holders(self, tenant: str | None = None) -> list[LicenceHolding]:
        if self._pool is not None:
            return self._pool.holders(tenant)
        return await self._db_licence_holders(tenant)

    async def _db_licence_holders(self, tenant: str | None) -> list[LicenceHolding]:
        query = select(licences).order_by(licences.c.tenant, licences.c.kind, licences.c.since)
        if tenant is not None:
            query = query.where(licences.c.tenant == tenant)
        async with self._read() as conn:
            result = await conn.execute(query)
            return [LicenceHolding(r.tenant, r.kind, r.holder, r.node, r.since) for r in result]

    async def release_node(self, node: str) -> int:
        if self._pool is not None:
            released = self._pool.release_node(node)
            await self.flush()
            return released
        async with self._write() as conn:
            result = await conn.execute(delete(licences).where(licences.c.node == node))
            return result.rowcount

    # -- bans -----------------------------------------------------------------
    async def save_ban(
        self, ip: str, since: float, until: float, failures: int, reason: str
    ) -> None:
        values = {"since": since, "until": until, "failures": failures, "reason": reason}
        stmt = self._insert(bans).values(ip=ip, **values)
        async with self._write() as conn:
            await conn.execute(stmt.on_conflict_do_update(index_elements=["ip"], set_=values))

    async def delete_ban(self, ip: str) -> bool:
        async with self._write() as conn:
            result = await conn.execute(delete(bans).where(bans.c.ip == ip))
            return result.rowcount > 0

    async def load_bans(self, now: float) -> list[BanRecord]:
        query = select(bans).where(bans.c.until > now).order_by(bans.c.since, bans.c.ip)
        async with self._read() as conn:
            result = await conn.execute(query)
            return [BanRecord(r.ip, r.since, r.until, r.failures, r.reason) for r in result]

    # -- key/value ------------------------------------------------------------
    async def get_value(self, key: str) -> str | None:
        async with self._read() as conn:
            value: str | None = await conn.scalar(select(kv.c.value).where(kv.c.key == key))
            return value

    async def set_value(self, key: str, value: str) -> None:
        stmt = self._insert(kv).values(key=key, value=value)
        async with self._write() as conn:
            await conn.execute(
                stmt.on_conflict_do_update(index_elements=["key"], set_={"value": value})
            )
