"""The RFC 4475 corpus of the shared material, for module-level parametrisation."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import locate_shared_dir


def rfc4475() -> Path:
    path = locate_shared_dir() / "sip-corpora" / "rfc4475"
    if not path.is_dir():
        raise RuntimeError(f"RFC 4475 corpus not found at {path}: set CENTRALA_SHARED")
    return path
