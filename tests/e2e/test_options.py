"""OPTIONS and INVITE server transactions of the real process, driven by SIPp."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import Centrala
from tests.e2e.sipp import run_sipp

pytestmark = pytest.mark.usefixtures("sipp")  # fails, never skips, without SIPp

OPTIONS_CALLS = 20


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_options_answered_with_capabilities(
    centrala: Centrala, tmp_path: Path, transport: str
) -> None:
    res = run_sipp(
        "options_uac.xml",
        centrala.target,
        transport=transport,
        calls=OPTIONS_CALLS,
        rate=50,
        timeout_s=30,
        workdir=tmp_path,
    )
    assert res.returncode == 0, res.report()
    assert res.successful == OPTIONS_CALLS, res.report()


def test_retransmitted_options_gets_the_same_200(centrala: Centrala, tmp_path: Path) -> None:
    res = run_sipp(
        "options_retrans.xml",
        centrala.target,
        transport="u1",
        calls=5,
        rate=10,
        timeout_s=30,
        extra=["-nr"],
        workdir=tmp_path,
    )
    assert res.returncode == 0, res.report()
    assert res.successful == 5, res.report()


def test_invite_rejection_retransmitted_until_ack(centrala: Centrala, tmp_path: Path) -> None:
    res = run_sipp(
        "invite_rejected.xml",
        centrala.target,
        transport="u1",
        calls=3,
        rate=10,
        timeout_s=30,
        extra=["-nr"],
        workdir=tmp_path,
    )
    assert res.returncode == 0, res.report()
    assert res.successful == 3, res.report()
    centrala.assert_alive()


def test_sigterm_exits_cleanly(centrala: Centrala) -> None:
    centrala.assert_alive()
    problems = centrala.stop()
    assert not problems, "; ".join(problems) + "\n" + centrala.log_tail()
