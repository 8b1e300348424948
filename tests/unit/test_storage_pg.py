"""Storage on a real, throwaway PostgreSQL cluster (the multi-node deployment).

The cluster is created with ``initdb`` in a temporary directory and started on
a free loopback port for this module only (~1.5 s).  ``make test`` installs
the PostgreSQL server (Debian ``postgresql``, binaries on PATH or under
``/usr/lib/postgresql/*/bin``) and ``asyncpg``; without them the tests fail,
they never skip.  As root, the cluster runs as the ``postgres`` user
(``initdb`` refuses root).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from switch.storage import Storage, open_storage

from .test_storage import NOW, binding

import asyncpg  # noqa: F401  - the driver the postgresql URL needs

_db_numbers = itertools.count()


def _pg_bin(name: str) -> Path | None:
    found = shutil.which(name)
    if found:
        return Path(found)
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return candidates[-1] if candidates else None


def _as_cluster_owner() -> tuple[list[str], str | None]:
    """The command prefix that runs PostgreSQL tools, and the user owning the cluster."""
    if os.geteuid() != 0:
        return [], None
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.fail("running as root without runuser: cannot start PostgreSQL")
    try:
        subprocess.run(["id", "postgres"], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        pytest.fail("running as root and no 'postgres' user: run `make test` (Debian postgresql)")
    return [runuser, "-u", "postgres", "--"], "postgres"


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}", pytrace=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    """``host:port`` of a fresh cluster with a trusted superuser ``centrala``."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) missing: run `make test`")
    prefix, owner = _as_cluster_owner()
    root = Path(tempfile.mkdtemp(prefix="centrala-pg-"))
    if owner is not None:
        shutil.chown(root, owner)
    data, port = root / "data", _free_port()
    run = [*prefix, str(initdb), "-D", str(data), "-U", "centrala", "--auth=trust", "--no-sync"]
    _run(run)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [*prefix, str(pg_ctl), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w"]
    _run([*start, "start"])
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop = [*prefix, str(pg_ctl), "-D", str(data), "-m", "immediate", "-w", "stop"]
        subprocess.run(stop, check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def pg_url(pg_server: str) -> str:
    """A new, empty database for each test."""
    name = f"t{os.getpid()}_{next(_db_numbers)}"
    conn = await asyncpg.connect(f"postgresql://centrala@{pg_server}/postgres")
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return f"postgresql+asyncpg://centrala@{pg_server}/{name}"


async def _opened(url: str) -> Storage:
    store = open_storage(url, flush_interval_s=0.02)
    await store.open()
    return store


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[tuple[Storage, Storage]]:
    """Two nodes of a cluster opening the same (empty) database at once."""
    n1, n2 = await asyncio.gather(_opened(pg_url), _opened(pg_url))
    yield n1, n2
    await asyncio.gather(n1.close(), n2.close())


async def test_bindings_round_trip_coalesce_and_expire(nodes: tuple[Storage, Storage]) -> None:
    n1, n2 = nodes
    for cseq in range(1, 501):
        n1.put_binding(binding(cseq=cseq, reg_id=1, instance='"<urn:uuid:1>"'))
    n1.put_binding(binding("sip:dead@192.0.2.9", expires_at=NOW - 1))
    n1.put_binding(binding("sip:gone@192.0.2.8"))
    n1.delete_binding("acme", "alice", "sip:gone@192.0.2.8")
    await asyncio.sleep(0.2)  # the background flusher, not close(), commits
    assert await n2.load_bindings(NOW) == [binding(cseq=500, reg_id=1, instance='"<urn:uuid:1>"')]
    assert await n2.delete_expired(NOW + 7200) == 1


async def test_licence_pool_shared_by_two_nodes(nodes: tuple[Storage, Storage]) -> None:
    n1, n2 = nodes
    results = await asyncio.gather(
        *(
            node.acquire_licence("acme", "port", f"{name}-dev{i}", name, limit=10)
            for i in range(25)
            for node, name in ((n1, "n1"), (n2, "n2"))
        )
    )
    assert results.count(True) == 10
    holders = await n1.licence_holders("acme")
    assert len(holders) == 10
    mine = next(h for h in holders if h.node == "n1")
    assert await n1.acquire_licence("acme", "port", mine.holder, "n1", limit=10)  # idempotent
    assert not await n2.acquire_licence("acme", "port", "late", "n2", limit=10)
    await n2.release_licence("acme", "port", mine.holder)
    assert await n2.acquire_licence("acme", "port", "late", "n2", limit=10)
    from_n1 = sum(h.node == "n1" for h in await n2.licence_holders())
    assert await n2.release_node("n1") == from_n1
    assert all(h.node == "n2" for h in await n1.licence_holders("acme"))


async def test_fifty_concurrent_acquires_on_one_node(nodes: tuple[Storage, Storage]) -> None:
    n1, _ = nodes
    results = await asyncio.gather(
        *(n1.acquire_licence("acme", "port", f"dev{i}", "n1", limit=10) for i in range(50))
    )
    assert results.count(True) == 10


async def test_bans_and_values(nodes: tuple[Storage, Storage]) -> None:
    n1, n2 = nodes
    await n1.save_ban("203.0.113.9", NOW, NOW + 60, 10, "digest failures")
    await n1.save_ban("203.0.113.9", NOW, NOW + 90, 11, "digest failures")
    assert [(b.ip, b.failures) for b in await n2.load_bans(NOW)] == [("203.0.113.9", 11)]
    assert await n2.load_bans(NOW + 90) == []
    assert await n2.delete_ban("203.0.113.9") and not await n2.delete_ban("203.0.113.9")
    await n1.set_value("nonce-secret", "x")
    await n2.set_value("nonce-secret", "y")
    assert await n1.get_value("nonce-secret") == "y"
    assert await n1.get_value("missing") is None
