"""Session timers (RFC 4028): parsing, negotiation, refresh and expiry instants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from switch.sip.dialog_session_timer import (
    Refresher,
    SessionExpires,
    SessionTimer,
    min_se_of,
    session_expires_of,
    supports_timer,
    uac_from_2xx,
    uac_request_headers,
    uac_retry_interval,
    uas_negotiate,
)
from switch.sip.errors import MalformedMessage
from switch.sip.message import Request

from .dialog_support import answer, invite_as_received, invite_as_sent


def invite_with(*headers: tuple[str, object], supported: bool = True) -> Request:
    req = invite_as_received()
    if not supported:
        req.remove("Supported")
    for name, value in headers:
        req.add(name, value)
    return req


def test_parse_session_expires_and_min_se() -> None:
    assert SessionExpires.parse("1800") == SessionExpires(1800)
    assert SessionExpires.parse("1800 ; refresher=UAS") == SessionExpires(1800, Refresher.UAS)
    assert str(SessionExpires(4000, Refresher.UAC)) == "4000;refresher=uac"
    req = invite_with(("x", "1800;refresher=uac"), ("Min-SE", "120;foo=bar"))  # compact form
    assert session_expires_of(req) == SessionExpires(1800, Refresher.UAC)
    assert min_se_of(req) == 120
    assert session_expires_of(invite_as_received()) is None
    for bad in ("", "0", "abc", "90;refresher=proxy"):
        with pytest.raises(MalformedMessage):
            SessionExpires.parse(bad)


def test_timer_instants() -> None:
    t = SessionTimer(1800, Refresher.UAC, we_refresh=True)
    assert t.refresh_after == 900 and t.expire_after == 1800 - 32
    assert t.deadline(1000.0) == 1900.0
    short = SessionTimer(90, Refresher.UAS, we_refresh=False)
    assert short.expire_after == 60.0  # 90 - min(32, 30)
    assert short.deadline(0.0) == 60.0


def test_uas_422_below_min_se() -> None:
    decision = uas_negotiate(invite_with(("Session-Expires", "60")))
    assert decision.status == 422 and decision.headers == (("Min-SE", "90"),)
    decision = uas_negotiate(invite_with(("Session-Expires", "300")), min_se=600)
    assert decision.status == 422 and decision.headers == (("Min-SE", "600"),)
    assert uas_negotiate(invite_with(("Session-Expires", "90"))).status is None


def test_uas_keeps_requested_refresher() -> None:
    d = uas_negotiate(invite_with(("Session-Expires", "1800;refresher=uas")))
    assert d.timer == SessionTimer(1800, Refresher.UAS, we_refresh=True)
    assert d.headers == (("Session-Expires", "1800;refresher=uas"),)
    d = uas_negotiate(invite_with(("Session-Expires", "1800;refresher=uac")))
    assert d.timer == SessionTimer(1800, Refresher.UAC, we_refresh=False)
    assert ("Require", "timer") in d.headers  # §9: the UAC must refresh


def test_uas_refreshes_for_a_uac_without_the_extension() -> None:
    d = uas_negotiate(invite_with(("Session-Expires", "1800"), supported=False))
    assert d.timer is not None and d.timer.refresher is Refresher.UAS and d.timer.we_refresh
    assert ("Require", "timer") not in d.headers


def test_uas_reduces_interval_but_not_below_min_se() -> None:
    req = invite_with(("Session-Expires", "7200"), ("Min-SE", "1200"))
    d = uas_negotiate(req, local_interval=600)
    assert d.timer is not None and d.timer.interval == 1200
    d = uas_negotiate(invite_with(("Session-Expires", "7200")), local_interval=600)
    assert d.timer is not None and d.timer.interval == 600


def test_uas_without_session_expires() -> None:
    assert uas_negotiate(invite_as_received()).timer is None
    d = uas_negotiate(invite_as_received(), local_interval=1800, prefer=Refresher.UAS)
    assert d.timer == SessionTimer(1800, Refresher.UAS, True)
    with pytest.raises(ValueError):
        uas_negotiate(invite_as_received(), min_se=30)  # below the RFC floor


def test_uac_side() -> None:
    headers = uac_request_headers(1800, 90)
    assert headers == [("Supported", "timer"), ("Session-Expires", "1800"), ("Min-SE", "90")]
    invite = invite_as_sent()
    assert supports_timer(invite)
    too_small = answer(invite, 422, headers=(("Min-SE", "3600"),))
    assert uac_retry_interval(too_small, 1800) == 3600  # §7.3: retry with its Min-SE
    assert uac_retry_interval(answer(invite, 422), 1800) is None
    assert uac_retry_interval(answer(invite, 422, headers=(("Min-SE", "900"),)), 1800) is None
    ok = answer(invite, 200, headers=(("Session-Expires", "1800;refresher=uac"),))
    assert uac_from_2xx(ok) == SessionTimer(1800, Refresher.UAC, we_refresh=True)
    ok = answer(invite, 200, headers=(("Session-Expires", "1800;refresher=uas"),))
    assert uac_from_2xx(ok) == SessionTimer(1800, Refresher.UAS, we_refresh=False)
    assert uac_from_2xx(answer(invite, 200)) is None  # §7.2: no expiration


@given(st.integers(min_value=90, max_value=2**20))
def test_refresh_comes_before_expiry(interval: int) -> None:
    t = SessionTimer(interval, Refresher.UAC, True)
    assert 0 < t.refresh_after < t.expire_after < interval
    assert interval - t.expire_after == pytest.approx(min(32, interval / 3))


@given(st.integers(min_value=1, max_value=10_000), st.integers(min_value=90, max_value=5000))
def test_negotiated_interval_never_below_min_se(requested: int, min_se: int) -> None:
    d = uas_negotiate(invite_with(("Session-Expires", requested)), min_se=min_se)
    if requested < min_se:
        assert d.status == 422 and d.timer is None
    else:
        assert d.timer is not None and d.timer.interval == requested >= min_se
