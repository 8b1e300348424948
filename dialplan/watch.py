"""Cheap change detection for the configuration directory.

The running switch polls :meth:`ConfigFingerprint.of` (about once a second) and
reloads with :func:`dialplan.loader.load_config` when the fingerprint differs
from the last one.  A fingerprint is the sorted ``(relative path, mtime_ns,
size)`` of every regular file under the directory, skipping dotfiles and dot
directories (editor swap files, ``.git``); it reads no file contents.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

FileStamp = tuple[str, int, int]  # (posix path relative to the config dir, mtime_ns, size)


@dataclass(frozen=True, slots=True)
class ConfigFingerprint:
    """Snapshot of the config directory's files; compare two with ``==``."""

    files: tuple[FileStamp, ...]

    @classmethod
    def of(cls, config_dir: Path) -> ConfigFingerprint:
        """Fingerprint ``config_dir`` now; a missing directory has no files."""
        return cls(tuple(sorted(_stamps(config_dir))))


def _stamps(config_dir: Path) -> list[FileStamp]:
    """Stamp every visible regular file; files vanishing mid-walk are skipped."""
    stamps: list[FileStamp] = []
    for folder, subdirs, names in os.walk(config_dir):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        for name in names:
            if name.startswith("."):
                continue
            path = Path(folder, name)
            try:
                st = path.stat()
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                rel = path.relative_to(config_dir).as_posix()
                stamps.append((rel, st.st_mtime_ns, st.st_size))
    return stamps
