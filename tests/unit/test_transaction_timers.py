"""TimerConfig: RFC 3261 Table 4 values and back-off."""

from __future__ import annotations

import pytest

from switch.sip.timers import TimerConfig, earliest


def test_defaults_match_table_4() -> None:
    t = TimerConfig()
    assert (t.t1, t.t2, t.t4) == (0.5, 4.0, 5.0)
    assert t.timer_a == t.timer_e == t.timer_g == 0.5
    assert t.timer_b == t.timer_f == t.timer_h == t.timer_j == 32.0
    assert t.timer_l == t.timer_m == 32.0
    assert t.timer_d == 32.0
    assert t.timer_i == t.timer_k == 5.0


def test_transport_dependent_timers() -> None:
    t = TimerConfig()
    assert (t.d(False), t.d(True)) == (32.0, 0.0)
    assert (t.i(False), t.i(True)) == (5.0, 0.0)
    assert (t.j(False), t.j(True)) == (32.0, 0.0)
    assert (t.k(False), t.k(True)) == (5.0, 0.0)


def test_timer_d_is_at_least_32_seconds() -> None:
    assert TimerConfig(t1=0.1).timer_d == 32.0
    assert TimerConfig(t1=1.0, t2=4.0).timer_d == 64.0


def test_derived_from_t1() -> None:
    t = TimerConfig(t1=1.0, t2=8.0, t4=10.0)
    assert t.timer_b == t.timer_f == t.timer_h == t.timer_l == t.timer_m == 64.0
    assert t.timer_k == t.timer_i == 10.0


def test_backoff() -> None:
    t = TimerConfig()
    a, e = [0.5], [0.5]
    for _ in range(6):
        a.append(t.next_a(a[-1]))
        e.append(t.next_e(e[-1]))
    assert a == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]  # Timer A: no cap
    assert e == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]  # Timers E, G: capped at T2
    assert t.next_g(2.0) == 4.0 and t.next_g(4.0) == 4.0


def test_invalid_configs_rejected() -> None:
    with pytest.raises(ValueError):
        TimerConfig(t1=0)
    with pytest.raises(ValueError):
        TimerConfig(t1=5.0, t2=4.0)
    with pytest.raises(ValueError):
        TimerConfig(timer_c=0)


def test_frozen() -> None:
    with pytest.raises(AttributeError):
        TimerConfig().t1 = 1.0  # type: ignore[misc]


def test_earliest() -> None:
    assert earliest() is None
    assert earliest(None, None) is None
    assert earliest(None, 3.0, 1.0, None) == 1.0
