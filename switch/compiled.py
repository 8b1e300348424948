"""Which parts of the switch run as mypyc-compiled C, and whether that build is stale.

``setup.py`` compiles the SIP hot path; an extension module shadows the
``.py`` beside it, so after an edit the old compiled code would keep running
until the package is reinstalled.  ``stale_extensions()`` names those; the
test suite refuses to start on them and ``centrala run`` warns.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def extensions(root: Path = PACKAGE_DIR) -> list[tuple[Path, Path]]:
    """(extension, source) pairs of the compiled modules under ``root``."""
    pairs = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for ext in root.rglob("*" + suffix):
            source = ext.with_name(ext.name[: -len(suffix)] + ".py")
            if source.exists():
                pairs.append((ext, source))
    return sorted(pairs)


def stale_extensions(root: Path = PACKAGE_DIR) -> list[Path]:
    """Sources edited after their extension was built."""
    return [src for ext, src in extensions(root) if src.stat().st_mtime > ext.stat().st_mtime]


def describe(root: Path = PACKAGE_DIR) -> str:
    count = len(extensions(root))
    return f"{count} modules compiled with mypyc" if count else "pure Python"
