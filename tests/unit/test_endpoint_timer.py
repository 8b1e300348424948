"""The endpoint arms the core's deadlines on a 10 ms grid: one wake-up per step."""

from __future__ import annotations

import asyncio

import pytest

from switch.transport.endpoint import TIMER_GRID_S, Endpoint, EndpointLimits


class FakeCore:
    """Deadlines in a heap, like the transaction layer; records each timer run."""

    def __init__(self, deadlines: list[float]) -> None:
        self.deadlines = sorted(deadlines)
        self.runs: list[tuple[float, int]] = []  # (now, deadlines handled)

    def next_timer(self) -> float | None:
        return self.deadlines[0] if self.deadlines else None

    def handle_timer(self, now: float) -> list[object]:
        due = [d for d in self.deadlines if d <= now]
        self.deadlines = [d for d in self.deadlines if d > now]
        self.runs.append((now, len(due)))
        return []


@pytest.mark.asyncio
async def test_deadlines_in_one_grid_step_share_one_wakeup() -> None:
    loop = asyncio.get_running_loop()
    base = loop.time() + 0.05
    # 20 deadlines inside one 10 ms step, then 5 more in a later step
    core = FakeCore([base + i * 0.0004 for i in range(20)] + [base + 0.1 + i * 0.001 for i in range(5)])
    endpoint = Endpoint(core, EndpointLimits())  # type: ignore[arg-type]
    endpoint.send_all([])  # arms the first deadline
    await asyncio.sleep(0.3)
    assert not core.deadlines, "every deadline handled"
    handled = [n for _, n in core.runs if n]
    assert sum(handled) == 25
    assert len(core.runs) <= 4, f"one wake-up per grid step, got {core.runs}"
    for now, n in core.runs:
        if n:  # never early: a run handles only deadlines already due
            assert now >= base - 1e-9


@pytest.mark.asyncio
async def test_armed_time_is_on_the_grid_and_late_by_less_than_a_step() -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.0123
    core = FakeCore([deadline])
    endpoint = Endpoint(core, EndpointLimits())  # type: ignore[arg-type]
    endpoint.send_all([])
    armed = endpoint._timer_at
    assert armed is not None
    assert deadline <= armed < deadline + TIMER_GRID_S
    assert abs(armed / TIMER_GRID_S - round(armed / TIMER_GRID_S)) < 1e-6
    await asyncio.sleep(0.05)
    assert core.runs and core.runs[0][1] == 1
