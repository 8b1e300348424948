"""Durable state: location bindings, CDRs, the licence pool, bans, small key/value state.

``open_storage(url)`` picks a backend from the URL's scheme (a small registry,
so another backend is one entry); ``await storage.open()`` creates missing
tables and starts the binding flusher; ``await storage.close()`` flushes.

* ``sqlite+aiosqlite:///PATH`` - the default, one node; see ``sqlite_url``.
* ``postgresql+asyncpg://user:pass@host/db`` - several nodes sharing one pool.

A URL without a driver (``sqlite:///...``, ``postgresql://...``) gets the
asyncio driver above.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .base import BanRecord, BindingRecord, CdrRecord, LicenceHolding, Storage, StorageError
from .sql import DEFAULT_FLUSH_INTERVAL_S, SqlStorage

__all__ = [
    "BACKENDS",
    "DB_FILE",
    "BanRecord",
    "BindingRecord",
    "CdrRecord",
    "LicenceHolding",
    "SqlStorage",
    "Storage",
    "StorageError",
    "open_storage",
    "sqlite_url",
]

DB_FILE = "centrala.db"

StorageFactory = Callable[[str, float], Storage]


def _sql(url: str, flush_interval_s: float) -> Storage:
    return SqlStorage(url, flush_interval_s=flush_interval_s)


# backend name -> (asyncio driver, factory)
BACKENDS: dict[str, tuple[str, StorageFactory]] = {
    "sqlite": ("aiosqlite", _sql),
    "postgresql": ("asyncpg", _sql),
}


def sqlite_url(state_dir: Path) -> str:
    """The default database: ``<state_dir>/centrala.db``."""
    return f"sqlite+aiosqlite:///{(state_dir / DB_FILE).resolve()}"


def open_storage(url: str, *, flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> Storage:
    """A ``Storage`` for ``url`` (not yet opened: ``await storage.open()``)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"bad storage URL {url!r}: {exc}") from exc
    backend = "postgresql" if parsed.get_backend_name() == "postgres" else parsed.get_backend_name()
    if backend not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise ValueError(f"unsupported storage backend {backend!r} (known: {known})")
    default_driver, factory = BACKENDS[backend]
    driver = parsed.get_driver_name() if "+" in parsed.drivername else default_driver
    parsed = parsed.set(drivername=f"{backend}+{driver}")
    return factory(parsed.render_as_string(hide_password=False), flush_interval_s)
