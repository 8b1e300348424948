"""Jitter buffer: reordering, loss, duplicates, sequence wrap, SSRC change, bounds, adaptation.

The simulations tick once per frame with a fake clock: at tick ``t`` the
packets arriving then are put, then one ``get`` runs, as the transcoder's
20 ms timer does.  Packet ``i`` is sent at tick ``i``.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from media.jitter import Frame, Gap, JitterBuffer, JitterState

FRAME = 0.02
Out = Frame | Gap | None


def simulate(jb: JitterBuffer, first_seq: int, arrivals: dict[int, list[int]],
             ticks: int) -> list[Out]:
    """``arrivals[t]``: the packet numbers (0, 1, ...) put at tick ``t``, in that order."""
    out: list[Out] = []
    for t in range(ticks):
        for i in arrivals.get(t, []):
            jb.put((first_seq + i) % 65536, 160 * i, bytes([i % 256]), t * FRAME)
        out.append(jb.get(t * FRAME))
    return out


def schedule(delays: Iterable[int], lost: frozenset[int] = frozenset(),
             copies: dict[int, int] | None = None) -> dict[int, list[int]]:
    arrivals: dict[int, list[int]] = {}
    for i, delay in enumerate(delays):
        if i not in lost:
            for _ in range(1 + (copies or {}).get(i, 0)):
                arrivals.setdefault(i + delay, []).append(i)
    return arrivals


def frames(out: list[Out]) -> list[Frame]:
    return [o for o in out if isinstance(o, Frame)]


def test_in_order_stream_plays_after_target_frames() -> None:
    jb = JitterBuffer(3, adaptive=False)
    out = simulate(jb, 1000, schedule([0] * 10), 14)
    assert out[:2] == [None, None]  # buffering: 3 packets in at tick 2
    assert [f.seq for f in frames(out)] == list(range(1000, 1010))
    assert out[2] == Frame(1000, 0, b"\x00")
    assert isinstance(out[12], Gap) and out[13] is None  # the stream ended: underrun, then idle
    assert jb.state is JitterState.BUFFERING


def test_reorder_is_undone() -> None:
    jb = JitterBuffer(3, adaptive=False)
    arrivals = {0: [0], 1: [2], 2: [1, 3], 3: [5], 4: [4], 5: [6]}
    out = simulate(jb, 7, arrivals, 9)
    assert [f.seq for f in frames(out)] == list(range(7, 14))
    assert jb.stats.gaps == 0 and jb.stats.late == 0


def test_loss_gives_one_gap_at_its_place() -> None:
    jb = JitterBuffer(2, adaptive=False)
    out = simulate(jb, 0, schedule([0] * 8, lost=frozenset({3})), 9)
    played = [o for o in out if o is not None]
    assert played[:5] == [Frame(0, 0, b"\x00"), Frame(1, 160, b"\x01"), Frame(2, 320, b"\x02"),
                          Gap(3), Frame(4, 640, b"\x04")]


def test_duplicates_are_dropped_before_and_after_playing() -> None:
    jb = JitterBuffer(2, adaptive=False)
    assert jb.put(5, 0, b"a", 0.0) and not jb.put(5, 0, b"a", 0.0)
    jb.put(6, 160, b"b", 0.0)
    assert jb.get(0.0) == Frame(5, 0, b"a")
    assert not jb.put(5, 0, b"a", 0.02)  # already played: a duplicate, not a late packet
    assert (jb.stats.duplicates, jb.stats.late, jb.target) == (2, 0, 2)


def test_late_packet_is_dropped_and_raises_the_target() -> None:
    jb = JitterBuffer(2, adaptive=True, max_delay=3)
    for seq in (0, 2, 3):
        jb.put(seq, 0, b"", 0.0)
    assert jb.get(0.0) == Frame(0, 0, b"")
    assert jb.get(0.02) == Gap(1)
    assert not jb.put(1, 0, b"", 0.03)
    assert (jb.stats.late, jb.target) == (1, 3)
    jb.put(4, 0, b"", 0.04)
    assert not jb.put(1, 0, b"", 0.05)  # the target stops at max_delay
    assert jb.target == 3


def test_adaptive_target_decays_when_calm() -> None:
    jb = JitterBuffer(4, adaptive=True, min_delay=2, decay_frames=5)
    simulate(jb, 0, schedule([0] * 30), 30)
    assert jb.target == 2


def test_fixed_target_never_moves() -> None:
    jb = JitterBuffer(3, adaptive=False)
    simulate(jb, 0, {0: [0, 2, 3, 4], 5: [1]}, 8)
    assert jb.stats.late == 1 and jb.target == 3


def test_sequence_wrap() -> None:
    jb = JitterBuffer(2, adaptive=False)
    out = simulate(jb, 65533, schedule([0, 1, 0, 2, 0, 0, 0]), 10)
    assert [f.seq for f in frames(out)] == [65533, 65534, 65535, 0, 1, 2, 3]


def test_excess_is_skipped_down_to_twice_the_target() -> None:
    jb = JitterBuffer(2, adaptive=False)
    for seq in range(10):  # a burst after a stall
        jb.put(seq, 0, b"", 0.0)
    assert jb.get(0.0) == Frame(6, 0, b"")
    assert jb.stats.skipped == 6 and len(jb) == 3


def test_short_talkspurt_plays_after_the_target_delay() -> None:
    jb = JitterBuffer(3, adaptive=False)
    jb.put(1, 0, b"x", 1.0)
    assert jb.get(1.0) is None and jb.get(1.04) is None
    assert jb.get(1.06) == Frame(1, 0, b"x")


def test_ssrc_change_resets() -> None:
    jb = JitterBuffer(1, adaptive=False)
    jb.put(100, 0, b"a", 0.0, ssrc=1)
    assert jb.get(0.0) == Frame(100, 0, b"a")
    assert jb.put(7, 999, b"b", 0.02, ssrc=2)  # behind, but a new source
    assert jb.get(0.02) == Frame(7, 999, b"b")
    assert jb.stats.resets == 1


def test_a_single_jump_is_dropped_two_in_a_row_restart() -> None:
    jb = JitterBuffer(1, adaptive=False)
    jb.put(10, 0, b"", 0.0)
    assert jb.get(0.0) == Frame(10, 0, b"")
    assert not jb.put(30000, 0, b"", 0.0)  # a stray packet
    assert jb.put(11, 0, b"", 0.0)
    assert not jb.put(5000, 0, b"", 0.0)
    assert jb.put(5001, 0, b"", 0.0)  # the sender restarted (RFC 3550 A.1)
    assert jb.stats.resets == 1 and len(jb) == 1
    assert jb.get(0.02) == Frame(5001, 0, b"")


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(0)
    with pytest.raises(ValueError):
        JitterBuffer(5, max_delay=4)


# -- properties -------------------------------------------------------------------------
@st.composite
def network(draw: st.DrawFn) -> tuple[int, int, list[int], frozenset[int], dict[int, int]]:
    target = draw(st.integers(1, 5))
    n = draw(st.integers(1, 60))
    delays = draw(st.lists(st.integers(0, target - 1), min_size=n, max_size=n))
    lost = frozenset(draw(st.sets(st.integers(0, n - 1), max_size=n // 3)))
    copies = draw(st.dictionaries(st.integers(0, n - 1), st.integers(1, 2), max_size=n // 4))
    return target, draw(st.integers(0, 65535)), delays, lost, copies


@settings(max_examples=300, deadline=None)
@given(network())
@example((2, 0, [1, 0, 0, 0, 0, 0, 0, 0, 0], frozenset({1, 2, 3}), {}))  # float clock at start
def test_jitter_within_target_plays_every_packet_in_order(
    case: tuple[int, int, list[int], frozenset[int], dict[int, int]],
) -> None:
    """Delays below the target, any loss and duplication, any start (wrap included):
    every packet that arrived plays exactly once, in order; gaps only where one was lost."""
    target, first, delays, lost, copies = case
    jb = JitterBuffer(target, adaptive=False)
    out = simulate(jb, first, schedule(delays, lost, copies), len(delays) + 3 * target)
    arrived = [i for i in range(len(delays)) if i not in lost]
    assert [f.seq for f in frames(out)] == [(first + i) % 65536 for i in arrived]
    assert all(f.payload == bytes([(f.seq - first) % 65536 % 256]) for f in frames(out))
    gaps = {(o.seq - first) % 65536 for o in out if isinstance(o, Gap)}
    assert gaps <= lost | {len(delays)}  # or the underrun after the last packet
    assert (jb.stats.late, jb.stats.skipped) == (0, 0)
    assert jb.stats.duplicates == sum(c for i, c in copies.items() if i not in lost)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 65535), st.booleans(), st.integers(0, 3)),
                max_size=200))
def test_memory_is_bounded_and_output_ordered(ops: list[tuple[int, bool, int]]) -> None:
    """Whatever arrives (random numbers, SSRC changes), at most ``capacity`` packets are
    held and, between resets, frames come out in increasing sequence order."""
    jb = JitterBuffer(3, capacity=16, max_delay=8)
    last: int | None = None
    resets = 0
    for seq, tick, ssrc in ops:
        jb.put(seq, 0, b"", 0.0, ssrc=ssrc)
        assert len(jb) <= 16
        if jb.stats.resets != resets:
            resets, last = jb.stats.resets, None
        if tick:
            item = jb.get(1.0)
            if isinstance(item, Frame):
                if last is not None:
                    assert 0 < (item.seq - last) % 65536 < 16
                last = item.seq
