"""Call recording: which calls are recorded, where the files go, and the recorder of one call.

Theory of operation
-------------------
* ``RecordingRules`` (from the configuration) says whether a call is recorded:
  every call of a tenant with ``recording: true``, and every call in which an
  extension with ``recording: true`` is a party (the caller, or the callee
  that answered).  The loader has already refused a configuration whose
  recorded users exceed the tenant's PBX-Recording licences.
* Files live under the state directory, one directory per tenant, so no
  tenant's files are ever in another's: ``recordings/<tenant>/<YYYY-MM-DD>/
  <call-ref>.wav`` (the UTC date the call was answered; the call reference is
  random).  The CDR keeps that path, relative to the state directory.
* ``CallRecording`` follows one call's first audio stream: it starts a
  ``media.recorder.Recorder`` (caller on the left channel, the callee on the
  right) once both legs' codecs are known, tells it when a re-INVITE changes
  them (transcoding, another codec), and stops it, finalising the WAV, when
  the call's media is released, whatever ended the call.  Hold changes
  nothing: the recorder records what each party sends.
* A recording being written has a marker ``recordings/.open/<call-ref>``
  naming its file.  ``repair_open`` runs at switch start: each marker left by
  a crash gets its WAV header fixed (``repair_wav``) and goes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Protocol

from dialplan.schema import Config
from media.recorder import Recorder, Recording, repair_wav
from media.transcode import LegCodec

from .media import Side

log = logging.getLogger("centrala.media")

__all__ = ["CallRecording", "RecordingRules", "recording_path", "repair_open"]

RECORDINGS_DIR = "recordings"
OPEN_DIR = ".open"  # markers of recordings being written, under RECORDINGS_DIR
DIR_MODE = 0o750
Watcher = Callable[[memoryview], None]


# -- which calls --------------------------------------------------------------------------
class RecordingRules:
    """Which calls of which tenants are recorded (a value built from a configuration)."""

    def __init__(self, config: Config) -> None:
        self.tenants = frozenset(t.domain for t in config.tenants if t.recording)
        self.extensions = frozenset((t.domain, e.number) for t in config.tenants
                                    for e in t.extensions if e.recording)

    def applies(self, tenant: str, parties: Iterable[str | None]) -> bool:
        """Is a call of ``tenant`` between ``parties`` (extension numbers, trunk
        labels, None for a caller the switch cannot name) recorded?"""
        return tenant in self.tenants or any(
            (tenant, p) in self.extensions for p in parties if p)


# -- where --------------------------------------------------------------------------------
def recording_path(tenant: str, call_ref: str, answered: float) -> PurePosixPath:
    """The file of a call's recording, relative to the state directory; ``answered``
    is in epoch seconds."""
    day = datetime.fromtimestamp(answered, timezone.utc).strftime("%Y-%m-%d")
    return PurePosixPath(RECORDINGS_DIR, _safe(tenant), day, f"{_safe(call_ref)}.wav")


def _safe(name: str) -> str:
    """A single path component: no separator, no dot-only name."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", name.lower())
    return cleaned if cleaned.strip(".") else "_" + cleaned


def _marker(state_dir: Path, call_ref: str) -> Path:
    return state_dir / RECORDINGS_DIR / OPEN_DIR / _safe(call_ref)


def repair_open(state_dir: Path) -> list[Path]:
    """Fix the WAV header of every recording a crash left open; the files fixed."""
    folder = state_dir / RECORDINGS_DIR / OPEN_DIR
    fixed: list[Path] = []
    if not folder.is_dir():
        return fixed
    for marker in sorted(folder.iterdir()):
        try:
            relative = marker.read_text().strip()
            path = state_dir / relative
            if relative and ".." not in PurePosixPath(relative).parts and path.exists():
                frames = repair_wav(path)
                fixed.append(path)
                log.warning("recording %s was left open (crash): repaired, %d frames kept",
                            relative, frames)
        except (OSError, ValueError) as exc:
            log.error("recording marker %s: cannot repair: %s", marker.name, exc)
        marker.unlink(missing_ok=True)
    return fixed


# -- one call -----------------------------------------------------------------------------
class WatchedStream(Protocol):
    """The stream a call records, as its features share it (``CallFeatures.watched``)."""

    @property
    def closed(self) -> bool: ...
    def set_watcher(self, from_side: Side, watcher: Watcher | None) -> None: ...


class CallRecording:
    """The recording of one call to ``state_dir / relative``."""

    def __init__(self, state_dir: Path, relative: PurePosixPath, call_ref: str,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.state_dir, self.relative, self.call_ref, self.loop = \
            state_dir, relative, call_ref, loop
        self.recorder: Recorder | None = None
        self.stream: object | None = None  # the relay stream recorded (identity only)
        self.result: Recording | None = None
        self.failed = False  # the file could not be made
        self.closed = False  # the call's media is released: never start

    @property
    def path(self) -> Path:
        return self.state_dir / self.relative

    @property
    def started(self) -> bool:
        return self.recorder is not None

    def follow(self, stream: object, watched: WatchedStream, a: LegCodec, b: LegCodec) -> None:
        """The call's first audio stream has these codecs now (side a: the caller)."""
        if self.failed or self.closed:
            return
        if self.recorder is None:
            self._start(stream, watched, (a, b))
        elif stream is self.stream:
            if (a, b) != tuple(leg for _, leg in self.recorder.sides):
                log.info("[%s] recording follows %s / %s", self.call_ref, a.codec.name,
                         b.codec.name)
                self.recorder.set_legs((a, b))

    def _start(self, stream: object, watched: WatchedStream, legs: Sequence[LegCodec]) -> None:
        path = self.path
        try:
            path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            marker = _marker(self.state_dir, self.call_ref)
            marker.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            marker.write_text(f"{self.relative}\n")
            recorder = Recorder(watched, path, (("a", legs[0]), ("b", legs[1])), loop=self.loop)
            recorder.start()
        except OSError as exc:
            self.failed = True
            log.error("[%s] cannot record to %s: %s", self.call_ref, path, exc.strerror or exc)
            _marker(self.state_dir, self.call_ref).unlink(missing_ok=True)
            return
        self.recorder, self.stream = recorder, stream
        log.info("[%s] recording to %s (%s / %s)", self.call_ref, self.relative,
                 legs[0].codec.name, legs[1].codec.name)

    def dropped(self, stream: object) -> None:
        """``stream`` was closed by a re-offer: if it is the one recorded, stop."""
        if stream is self.stream:
            self.stop()

    def stop(self) -> Recording | None:
        """Finalise the file (idempotent); None if nothing was recorded."""
        if self.closed:
            return self.result
        self.closed = True
        if self.recorder is None:
            if not self.failed:
                log.warning("[%s] not recorded: no audio stream in a codec the switch "
                            "decodes was answered", self.call_ref)
            return None
        self.result = self.recorder.stop()
        _marker(self.state_dir, self.call_ref).unlink(missing_ok=True)
        log.info("[%s] recording %s: %.1f s, %d packet(s) not recorded%s", self.call_ref,
                 self.relative, self.result.duration_s, self.result.dropped,
                 f", stopped early: {self.result.error}" if self.result.error else "")
        return self.result

    def file(self) -> PurePosixPath | None:
        """The recording's path relative to the state directory, once it exists."""
        return self.relative if self.recorder is not None and os.path.exists(self.path) else None
