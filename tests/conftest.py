"""Fixtures shared by every test layer: where the repository and the shared corpora are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Never test old compiled code: an extension shadows its edited source."""
    from switch.compiled import stale_extensions

    stale = stale_extensions()
    if stale:
        names = ", ".join(str(p.relative_to(REPO_ROOT)) for p in stale)
        pytest.exit(f"compiled modules older than their sources ({names}): run `make test`, "
                    "which rebuilds them", returncode=3)


def locate_shared_dir() -> Path:
    """The shared test material: ``$CENTRALA_SHARED``, else ``<repo>/../shared``."""
    env = os.environ.get("CENTRALA_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = locate_shared_dir()
    if not (path / "sip-corpora").is_dir():
        pytest.fail(
            f"shared test material not found at {path} (no sip-corpora/ inside): "
            "check it out beside the repository as ../shared or set CENTRALA_SHARED",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def sip_corpora(shared_dir: Path) -> Path:
    return shared_dir / "sip-corpora"
