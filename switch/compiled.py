"""Which parts of the switch run as mypyc-compiled C, and whether that build is stale.

``setup.py`` compiles the SIP hot path; an extension module shadows the
``.py`` beside it, so after an edit the old compiled code would keep running
until the package is reinstalled.  ``stale_extensions()`` names those; the
test suite refuses to start on them and ``centrala run`` warns.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path

# The packages setup.py compiles modules of.
PACKAGE_DIRS = tuple(Path(__file__).resolve().parent.parent / name for name in ("switch", "media"))


def extensions(roots: tuple[Path, ...] = PACKAGE_DIRS) -> list[tuple[Path, Path]]:
    """(extension, source) pairs of the compiled modules under ``roots``."""
    pairs = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for root in roots:
            for ext in root.rglob("*" + suffix):
                source = ext.with_name(ext.name[: -len(suffix)] + ".py")
                if source.exists():
                    pairs.append((ext, source))
    return sorted(pairs)


def stale_extensions(roots: tuple[Path, ...] = PACKAGE_DIRS) -> list[Path]:
    """Sources edited after their extension was built."""
    return [src for ext, src in extensions(roots) if src.stat().st_mtime > ext.stat().st_mtime]


def describe(roots: tuple[Path, ...] = PACKAGE_DIRS) -> str:
    count = len(extensions(roots))
    return f"{count} modules compiled with mypyc" if count else "pure Python"
