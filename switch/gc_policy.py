"""Garbage collection paced for a switch: young collections only, survivors frozen.

Theory of operation
-------------------
CPython's cyclic collector stops the event loop for as long as it takes to
traverse the generation it collects.  A switch under load keeps a large,
slowly renewed set of live objects: every call's transactions linger 64*T1
(32 s) after it ends, so at a few hundred calls per second most objects
survive their first collection, are promoted, and the collections of the
older generations traverse hundreds of thousands of them: measured 50-110 ms
(generation 1) and 700-850 ms (generation 2) pauses at 250 calls/s, long
enough for the UDP receive buffer to overflow and for every transaction timer
to fire late at once.  Yet those collections free nothing: an ended call
holds no reference cycle (``tests/unit/test_call_lifetime.py``), so reference
counting frees it.

So ``GcPolicy`` lets only the young generation be traversed:

* ``install()`` collects once, freezes what exists (configuration, code,
  caches: ``gc.freeze()``) and hooks the end of every collection.
* After each collection the survivors are frozen as well: they leave the
  generations and no later automatic collection traverses them again.  A
  collection therefore only ever sees what was allocated since the previous
  one (``young_threshold`` container objects, a few milliseconds).  Frozen
  objects are still freed by reference counting the moment they die.
* What this gives up: a reference cycle that is still alive at the first
  collection after its birth and becomes garbage later is not freed by the
  young collections.  ``tick(now)`` (called once a second) runs a full
  collection of everything (``gc.unfreeze()``, ``gc.collect()``, freeze
  again), at most once per ``min_full_interval_s``, when the process has
  grown since the last one (resident memory) and the switch is quiet: no
  young collection for ``quiet_ticks`` ticks, so the pause (hundreds of
  milliseconds with a large heap, long enough for T1 retransmissions to fire)
  falls between bursts of traffic.  Under sustained load it waits until the
  process has grown ``growth`` times: leaked cycles cost at most that much
  memory.  Resident memory is the measure because it is cheap to read:
  ``gc.get_freeze_count()`` walks the whole frozen list (50 ms for 700,000
  objects).

``counters`` counts the collections; each full one is logged.
"""

from __future__ import annotations

import gc
import logging
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("centrala.gc")

FLOOR_BYTES = 64 * 1024 * 1024  # below this, growth alone never triggers a full collection


def resident_bytes() -> int:
    """This process's resident set size (from /proc; elsewhere its peak)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class GcStats:
    young_collections: int = 0
    full_collections: int = 0
    full_collected: int = 0  # objects the full collections freed (leaked cycles)
    last_full_ms: float = 0.0


class GcPolicy:
    def __init__(self, young_threshold: int = 10_000, growth: float = 4.0,
                 min_full_interval_s: float = 60.0, quiet_ticks: int = 5,
                 quiet_growth: float = 1.25,
                 size: Callable[[], int] = resident_bytes) -> None:
        self.young_threshold = young_threshold
        self.growth = growth
        self.quiet_ticks = quiet_ticks
        self.quiet_growth = quiet_growth
        self._quiet = 0  # ticks in a row without a young collection
        self._young_seen = 0
        self.min_full_interval_s = min_full_interval_s
        self.size = size
        self.baseline = FLOOR_BYTES
        self.last_full = float("-inf")
        self.counters = GcStats()
        self._saved: tuple[int, int, int] | None = None

    def install(self) -> None:
        self._saved = gc.get_threshold()
        gc.collect()
        gc.freeze()
        self.baseline = max(self.size(), FLOOR_BYTES)
        gc.set_threshold(self.young_threshold, 10, 10)
        gc.callbacks.append(self._after_collection)

    def uninstall(self) -> None:
        """Back to CPython's own collector (tests)."""
        if self._after_collection in gc.callbacks:
            gc.callbacks.remove(self._after_collection)
        gc.unfreeze()
        if self._saved is not None:
            gc.set_threshold(*self._saved)

    def _after_collection(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            self.counters.young_collections += 1
            gc.freeze()  # the survivors are not traversed again

    def tick(self, now: float) -> bool:
        """A full collection if the process has grown (a little while quiet, a
        lot under load) and none ran recently; True if one ran."""
        young = self.counters.young_collections
        self._quiet = self._quiet + 1 if young == self._young_seen else 0
        self._young_seen = young
        if now - self.last_full < self.min_full_interval_s:
            return False
        size = self.size()
        quiet = self._quiet >= self.quiet_ticks and size >= self.quiet_growth * self.baseline
        if not quiet and size < self.growth * self.baseline:
            return False
        self.full(now)
        return True

    def full(self, now: float) -> int:
        """Collect everything, frozen or not; then freeze the survivors again."""
        start = time.perf_counter()
        before = gc.get_freeze_count()
        installed = self._after_collection in gc.callbacks
        if installed:
            gc.callbacks.remove(self._after_collection)
        gc.unfreeze()
        try:
            collected = gc.collect()
        finally:
            if installed:
                gc.callbacks.append(self._after_collection)
                gc.freeze()
        elapsed = (time.perf_counter() - start) * 1000
        self.baseline = max(self.size(), FLOOR_BYTES)
        self.last_full = now
        c = self.counters
        c.full_collections += 1
        c.full_collected += collected
        c.last_full_ms = elapsed
        log.info("full garbage collection: %d objects frozen before, %d freed, %.0f ms",
                 before, collected, elapsed)
        return collected


__all__ = ["GcPolicy", "GcStats"]
