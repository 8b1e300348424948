"""switch/gc_policy.py: collections traverse only young objects; leaked cycles are
still freed, by a full collection once the frozen set has grown enough."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from switch.gc_policy import FLOOR_BYTES, GcPolicy, resident_bytes


class Node:
    def __init__(self) -> None:
        self.other: object = self


@pytest.fixture
def policy() -> Iterator[GcPolicy]:
    saved = gc.get_threshold()
    p = GcPolicy(young_threshold=700, min_full_interval_s=60.0)
    p.install()
    try:
        yield p
    finally:
        p.uninstall()
        assert gc.get_threshold() == saved
        assert gc.get_freeze_count() == 0


def test_survivors_of_a_collection_are_frozen(policy: GcPolicy) -> None:
    frozen = gc.get_freeze_count()
    kept = [[i] for i in range(5000)]  # lists: tracked by the collector
    gc.collect(0)
    assert gc.get_freeze_count() >= frozen + 5000
    assert gc.get_count()[0] < 100  # the young generation is empty again
    assert policy.counters.young_collections >= 1
    del kept


def test_frozen_objects_still_die_by_reference_counting(policy: GcPolicy) -> None:
    kept = [[i] for i in range(5000)]
    gc.collect(0)
    frozen = gc.get_freeze_count()
    del kept
    assert gc.get_freeze_count() <= frozen - 5000


def test_a_young_cycle_is_collected_but_one_frozen_alive_waits_for_a_full_collection(
    policy: GcPolicy,
) -> None:
    young = Node()
    del young
    assert gc.collect(0) >= 1  # garbage before its first collection: freed there
    old = Node()
    gc.collect(0)  # alive at the collection: frozen
    del old
    assert gc.collect() == 0  # frozen: not even a full automatic collection sees it
    assert policy.full(now=0.0) >= 1
    assert policy.counters.full_collections == 1 and policy.counters.full_collected >= 1


def test_tick_runs_a_full_collection_when_quiet_or_grown_a_lot(policy: GcPolicy) -> None:
    size = [FLOOR_BYTES]
    policy.size = lambda: size[0]
    policy.baseline = FLOOR_BYTES

    def busy_tick(now: float) -> bool:
        policy.counters.young_collections += 1  # as if traffic made one this second
        return policy.tick(now)

    assert not busy_tick(1000.0)  # no growth
    size[0] = 2 * FLOOR_BYTES
    assert not busy_tick(1001.0)  # grown, but busy: wait
    assert not any(policy.tick(1002.0 + i) for i in range(policy.quiet_ticks - 1))
    assert policy.tick(1010.0)  # quiet long enough
    assert policy.last_full == 1010.0 and policy.baseline == 2 * FLOOR_BYTES
    size[0] = int(policy.growth * 2 * FLOOR_BYTES)
    assert not busy_tick(1030.0)  # grown a lot, but the last full one is too recent
    assert busy_tick(1070.0)  # grown a lot: even under load
    assert policy.counters.full_collections == 2
    assert policy.baseline == int(policy.growth * 2 * FLOOR_BYTES)
    for i in range(10):  # quiet, not grown: nothing to do
        assert not policy.tick(2000.0 + i)


def test_the_default_measure_is_the_resident_set() -> None:
    assert 1024 * 1024 < resident_bytes() < 64 * 1024**3
