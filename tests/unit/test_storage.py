"""Storage on real SQLite files: write-behind bindings, crash durability, licence pool,
bans and key/value state.  No mocks; each test gets its own database in ``tmp_path``."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switch.storage import (
    BindingRecord,
    CdrRecord,
    SqlStorage,
    Storage,
    StorageError,
    open_storage,
    sqlite_url,
)

FLUSH_S = 0.02
NOW = 1_700_000_000.0


def binding(key: str = "sip:alice@198.51.100.7:5060", **changes: object) -> BindingRecord:
    rec = BindingRecord(
        tenant="acme",
        user="alice",
        key=key,
        contact=f"<{key}>;expires=3600",
        expires_at=NOW + 3600,
        q=0.5,
        call_id="c1@host",
        cseq=1,
        path=("<sip:edge1.example.net;lr>", "<sip:edge2.example.net;lr>"),
        source="udp:198.51.100.7:5060",
        instance=None,
        reg_id=None,
        user_agent="Phone/1.0",
        updated_at=NOW,
        node="n1",
    )
    return dataclasses.replace(rec, **changes)  # type: ignore[arg-type]


async def opened(path: Path, flush_s: float = FLUSH_S) -> Storage:
    store = open_storage(sqlite_url(path), flush_interval_s=flush_s)
    await store.open()
    return store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Storage]:
    s = await opened(tmp_path)
    yield s
    await s.close()


def rows(path: Path, table: str) -> int:
    with sqlite3.connect(path / "centrala.db") as db:
        count: int = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


# -- factory ------------------------------------------------------------------


def test_factory_picks_async_drivers(tmp_path: Path) -> None:
    assert sqlite_url(tmp_path) == f"sqlite+aiosqlite:///{tmp_path.resolve()}/centrala.db"
    s = open_storage(f"sqlite:///{tmp_path}/x.db")
    assert isinstance(s, SqlStorage) and s.url.drivername == "sqlite+aiosqlite"
    pg = open_storage("postgres://u:p@db.example.net/centrala")
    assert isinstance(pg, SqlStorage) and pg.url.drivername == "postgresql+asyncpg"
    with pytest.raises(ValueError, match="unsupported storage backend"):
        open_storage("mysql://u@h/db")


async def test_open_creates_directory_and_wal(tmp_path: Path) -> None:
    s = await opened(tmp_path / "state" / "deep")
    await s.close()
    db = tmp_path / "state" / "deep" / "centrala.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_open_failure_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "centrala.db").mkdir()  # a directory where the database file should be
    s = open_storage(sqlite_url(tmp_path))
    with pytest.raises(StorageError, match="cannot open storage"):
        await s.open()
    await s.close()  # nothing to close: harmless


# -- bindings -------------------------------------------------------------------


async def test_write_behind_round_trip(store: Storage) -> None:
    rec = binding(instance='"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"', reg_id=1)
    store.put_binding(rec)
    await store.flush()
    assert await store.load_bindings(NOW) == [rec]


async def test_put_does_not_write_until_flushed(tmp_path: Path) -> None:
    s = await opened(tmp_path, flush_s=60.0)
    s.put_binding(binding())
    assert rows(tmp_path, "location_bindings") == 0
    await s.close()  # close flushes
    assert rows(tmp_path, "location_bindings") == 1


async def test_background_flusher_commits_within_interval(store: Storage, tmp_path: Path) -> None:
    store.put_binding(binding())
    await asyncio.sleep(FLUSH_S * 10)
    assert rows(tmp_path, "location_bindings") == 1


async def test_coalescing_last_write_wins(store: Storage, tmp_path: Path) -> None:
    for cseq in range(1, 1001):
        store.put_binding(binding(cseq=cseq))
    assert isinstance(store, SqlStorage) and store.pending == 1
    await store.flush()
    assert rows(tmp_path, "location_bindings") == 1
    [got] = await store.load_bindings(NOW)
    assert got.cseq == 1000


async def test_delete_binding(store: Storage) -> None:
    keep, drop = binding("sip:a@192.0.2.1"), binding("sip:b@192.0.2.2")
    store.put_binding(keep)
    store.put_binding(drop)
    await store.flush()
    store.delete_binding("acme", "alice", drop.key)
    await store.flush()
    assert await store.load_bindings(NOW) == [keep]


async def test_put_then_delete_before_flush_leaves_nothing(store: Storage) -> None:
    store.put_binding(binding())
    store.delete_binding("acme", "alice", binding().key)
    await store.flush()
    assert await store.load_bindings(NOW) == []


async def test_reload_after_reopen_returns_only_unexpired(tmp_path: Path) -> None:
    s = await opened(tmp_path)
    live = binding("sip:live@192.0.2.1", expires_at=NOW + 60)
    s.put_binding(live)
    s.put_binding(binding("sip:dead@192.0.2.2", expires_at=NOW - 1))
    s.put_binding(binding("sip:other@192.0.2.3", node="n2", user="bob"))
    await s.close()

    s = await opened(tmp_path)
    try:
        assert await s.load_bindings(NOW, node="n1") == [live]
        assert rows(tmp_path, "location_bindings") == 2  # the expired one was deleted
        assert await s.delete_expired(NOW + 120) == 1
        assert [b.user for b in await s.load_bindings(NOW + 120)] == ["bob"]
    finally:
        await s.close()


async def test_crash_loses_nothing_older_than_the_flush_interval(tmp_path: Path) -> None:
    crashed = await opened(tmp_path)
    try:
        crashed.put_binding(binding())
        await asyncio.sleep(FLUSH_S * 10)
        # the first node "crashes": no flush, no close; a second one opens the file
        survivor = await opened(tmp_path)
        try:
            assert await survivor.load_bindings(NOW) == [binding()]
        finally:
            await survivor.close()
    finally:
        await crashed.close()


CRASHING_CHILD = """
import asyncio, os, sys
from switch.storage import BindingRecord, open_storage

async def main():
    s = open_storage(sys.argv[1], flush_interval_s=0.02)
    await s.open()
    s.put_binding(BindingRecord("acme", "alice", "k", "<sip:k>", 2e9, None, "c", 1, (),
                                "udp:192.0.2.1:5060", None, None, None, 1.0, "n1"))
    await asyncio.sleep(0.15)  # > 7 flush intervals
    s.put_binding(BindingRecord("acme", "alice", "late", "<sip:late>", 2e9, None, "c", 1, (),
                                "udp:192.0.2.1:5060", None, None, None, 1.0, "n1"))
    os._exit(0)  # no flush, no close, no atexit

asyncio.run(main())
"""


async def test_process_killed_without_close_keeps_flushed_bindings(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASHING_CHILD, sqlite_url(tmp_path), cwd=root
    )
    assert await child.wait() == 0
    s = await opened(tmp_path)
    try:
        assert [b.key for b in await s.load_bindings(time.time())] == ["k"]
    finally:
        await s.close()


async def test_failed_flush_is_logged_retried_and_surfaced_by_close(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    s = await opened(tmp_path)
    bad = binding(contact=None)  # violates NOT NULL: every flush of it fails
    s.put_binding(bad)
    with caplog.at_level(logging.ERROR, logger="centrala.storage"):
        await asyncio.sleep(FLUSH_S * 10)
    assert "binding flush failed" in caplog.text
    assert isinstance(s, SqlStorage)
    async with s._flush_lock:  # not in the middle of a retry
        assert s.pending == 1  # kept for the retry
    s.put_binding(binding())  # a newer change replaces the bad one: the retry succeeds
    await asyncio.sleep(FLUSH_S * 10)
    assert s.pending == 0 and rows(tmp_path, "location_bindings") == 1

    s.put_binding(bad)
    with pytest.raises(StorageError, match="final flush failed"):
        await s.close()


# -- licence pool -----------------------------------------------------------------


async def test_licence_limit_idempotence_and_release(store: Storage) -> None:
    assert await store.acquire_licence("acme", "port", "dev1", "n1", limit=2)
    assert await store.acquire_licence("acme", "port", "dev1", "n1", limit=2)  # idempotent
    assert await store.acquire_licence("acme", "port", "dev2", "n1", limit=2)
    assert not await store.acquire_licence("acme", "port", "dev3", "n1", limit=2)
    assert await store.acquire_licence("other", "port", "dev3", "n1", limit=2)  # per tenant
    assert await store.acquire_licence("acme", "video", "dev3", "n1", limit=2)  # per kind
    await store.release_licence("acme", "port", "dev1")
    assert await store.acquire_licence("acme", "port", "dev3", "n1", limit=2)
    held = await store.licence_holders("acme")
    assert sorted((h.kind, h.holder) for h in held) == [
        ("port", "dev2"),
        ("port", "dev3"),
        ("video", "dev3"),
    ]
    assert len(await store.licence_holders()) == 4


async def test_concurrent_acquires_respect_the_limit(store: Storage) -> None:
    results = await asyncio.gather(
        *(store.acquire_licence("acme", "port", f"dev{i}", "n1", limit=10) for i in range(50))
    )
    assert results.count(True) == 10
    assert len(await store.licence_holders("acme")) == 10


async def test_sqlite_pool_is_one_nodes_pool_persisted_behind(tmp_path: Path) -> None:
    """SQLite serves one node: the pool is counted in memory (no disk write before a
    first registration is answered) and persisted with the next flush, where another
    process (``centrala licences``) reads it."""
    node = await opened(tmp_path)
    try:
        results = [await node.acquire_licence("acme", "port", f"dev{i}", "n1", limit=10)
                   for i in range(15)]
        assert results.count(True) == 10
        assert isinstance(node, SqlStorage) and node.pending >= 10
        await node.flush()
        reader = await opened(tmp_path)
        try:
            assert len(await reader.licence_holders("acme")) == 10
        finally:
            await reader.close()
        await node.release_licence("acme", "port", "dev0")
        await node.flush()
        assert rows(tmp_path, "licence_holdings") == 9
    finally:
        await node.close()


async def test_reacquire_from_another_node_moves_the_holding(store: Storage) -> None:
    assert await store.acquire_licence("acme", "port", "dev1", "n1", limit=1)
    assert await store.acquire_licence("acme", "port", "dev1", "n2", limit=1)
    assert await store.release_node("n1") == 0
    [held] = await store.licence_holders()
    assert held.node == "n2" and held.holder == "dev1"


# -- bans ------------------------------------------------------------------------


async def test_bans_save_load_expire_delete(store: Storage) -> None:
    await store.save_ban("203.0.113.9", NOW, NOW + 600, 12, "digest failures")
    await store.save_ban("203.0.113.9", NOW, NOW + 900, 20, "digest failures")  # replaces
    await store.save_ban("2001:db8::1", NOW, NOW + 10, 5, "scanner")
    bans = await store.load_bans(NOW)
    assert sorted((b.ip, b.until, b.failures) for b in bans) == [
        ("2001:db8::1", NOW + 10, 5),
        ("203.0.113.9", NOW + 900, 20),
    ]
    assert [b.ip for b in await store.load_bans(NOW + 10)] == ["203.0.113.9"]
    assert await store.delete_ban("203.0.113.9")
    assert not await store.delete_ban("203.0.113.9")
    assert await store.load_bans(NOW) == [b for b in bans if b.ip == "2001:db8::1"]
    assert await store.delete_expired(NOW + 10) == 1
    assert await store.load_bans(NOW) == []


async def test_bans_are_visible_to_another_process_view(tmp_path: Path) -> None:
    s = await opened(tmp_path)
    await s.save_ban("198.51.100.1", NOW, NOW + 60, 3, "r")
    reader = await opened(tmp_path)  # e.g. `centrala bans` while the switch runs
    try:
        assert [b.ip for b in await reader.load_bans(NOW)] == ["198.51.100.1"]
    finally:
        await reader.close()
        await s.close()


# -- key/value ---------------------------------------------------------------------


async def test_key_value_survives_reopen(tmp_path: Path) -> None:
    s = await opened(tmp_path)
    assert await s.get_value("nonce-secret") is None
    await s.set_value("nonce-secret", "a" * 64)
    await s.set_value("nonce-secret", "b" * 64)
    await s.close()
    s = await opened(tmp_path)
    try:
        assert await s.get_value("nonce-secret") == "b" * 64
    finally:
        await s.close()


# -- call detail records ---------------------------------------------------------


def cdr(ref: str, end: float, tenant: str = "a.test") -> CdrRecord:
    return CdrRecord(
        call_ref=ref, tenant=tenant, direction="internal", caller="100", callee="101",
        dialed="101", trunk=None, start=end - 30, answer=end - 25, end=end, billed_s=25,
        disposition="answered", hangup_cause=200, hangup_side="caller", cost="0.0000",
        legs='[{"to": "101", "status": 200}]',
    )


async def test_a_cdr_keeps_its_recording_across_a_restart(tmp_path: Path) -> None:
    rec = dataclasses.replace(cdr("c1", NOW), recording="recordings/a.test/2026-11-23/c1.wav")
    store = open_storage(sqlite_url(tmp_path), flush_interval_s=0.05)
    await store.open()
    store.put_cdr(rec)
    store.put_cdr(cdr("c2", NOW + 1))
    await store.close()
    again = open_storage(sqlite_url(tmp_path))
    await again.open()
    try:
        assert [c.recording for c in await again.load_cdrs()] == [rec.recording, None]
    finally:
        await again.close()


async def test_cdrs_are_written_behind_and_filtered(tmp_path: Path) -> None:
    store = open_storage(sqlite_url(tmp_path), flush_interval_s=0.05)
    await store.open()
    try:
        store.put_cdr(cdr("c1", NOW))
        store.put_cdr(cdr("c2", NOW + 10, tenant="b.test"))
        assert store.pending == 2
        await asyncio.sleep(0.3)  # the flusher commits them without being asked
        assert store.pending == 0
        assert [c.call_ref for c in await store.load_cdrs()] == ["c1", "c2"]
        assert [c.call_ref for c in await store.load_cdrs(tenant="b.test")] == ["c2"]
        assert [c.call_ref for c in await store.load_cdrs(since=NOW + 5)] == ["c2"]
        (first,) = await store.load_cdrs(tenant="a.test")
        assert first == cdr("c1", NOW) and first.duration_s == 30
    finally:
        await store.close()
