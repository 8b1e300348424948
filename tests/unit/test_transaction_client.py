"""Client transactions (RFC 3261 §17.1.1, §17.1.2, RFC 6026 §8.4) on a fake clock."""

from __future__ import annotations

import pytest

from switch.sip.client_invite import ClientInviteTransaction
from switch.sip.client_invite import State as CI
from switch.sip.client_noninvite import ClientNonInviteTransaction
from switch.sip.client_noninvite import State as CN
from switch.sip.events import (
    ResponseReceived,
    Send,
    StartCancel,
    TransactionTimeout,
    TransportError,
)
from switch.sip.message import Request
from switch.sip.timers import TimerConfig

from .test_transaction_support import UAS_TCP, UAS_UDP, fire_all, of_type, request, response, sent

TIMERS = TimerConfig()


def invite_txn(dest=UAS_UDP, req: Request | None = None, now: float = 0.0, **kw):  # type: ignore[no-untyped-def]
    req = req or request("INVITE", **kw)
    txn = ClientInviteTransaction(req, dest, TIMERS, handle=5, owner="leg-a")
    out = txn.start(now)
    assert sent(out) == [req]
    return txn, req


def nict(dest=UAS_UDP, method: str = "OPTIONS", now: float = 0.0):  # type: ignore[no-untyped-def]
    req = request(method, branch="z9hG4bK-opt-1")
    txn = ClientNonInviteTransaction(req, dest, TIMERS, handle=9, owner="reg")
    assert sent(txn.start(now)) == [req]
    return txn, req


# -- INVITE: Timers A and B -------------------------------------------------


def test_invite_timer_a_doubles_and_timer_b_times_out_over_udp() -> None:
    txn, req = invite_txn()
    log = fire_all(txn)
    assert [t for t, _ in log] == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 32.0]
    for _, out in log[:-1]:
        assert sent(out) == [req]
    assert log[-1][1] == [TransactionTimeout(5, "leg-a")]
    assert txn.state is CI.TERMINATED and txn.next_timer() is None


def test_invite_over_tcp_no_retransmission_timer_b_only() -> None:
    txn, _ = invite_txn(UAS_TCP)
    assert txn.timer_a is None
    log = fire_all(txn)
    assert log == [(32.0, [TransactionTimeout(5, "leg-a")])]


def test_invite_timer_a_starts_from_creation_time() -> None:
    txn, _ = invite_txn(now=1000.0)
    assert [t for t, _ in fire_all(txn)][:3] == [1000.5, 1001.5, 1003.5]


def test_invite_transport_error_in_calling() -> None:
    txn, _ = invite_txn()
    assert txn.transport_error(0.1) == [TransportError(5, UAS_UDP, "leg-a")]
    assert txn.state is CI.TERMINATED and txn.next_timer() is None


# -- INVITE: responses ----------------------------------------------------------


def test_provisional_stops_retransmission_and_timer_b() -> None:
    txn, req = invite_txn()
    fire_all(txn, limit=0.5)  # one retransmission
    ringing = response(req, 180)
    assert txn.receive_response(ringing, 0.7) == [ResponseReceived(5, ringing, "leg-a")]
    assert txn.state is CI.PROCEEDING
    assert txn.timer_a is None and txn.timer_b is None
    assert txn.next_timer() == pytest.approx(0.7 + 181.0)  # only the Timer C guard


def test_provisional_in_proceeding_passed_up_and_restarts_timer_c() -> None:
    txn, req = invite_txn()
    txn.receive_response(response(req, 100), 0.1)
    assert txn.timer_c == pytest.approx(181.1)
    txn.receive_response(response(req, 100), 50.0)  # 100 does not restart (§16.7)
    assert txn.timer_c == pytest.approx(181.1)
    r183 = response(req, 183)
    assert txn.receive_response(r183, 100.0) == [ResponseReceived(5, r183, "leg-a")]
    assert txn.timer_c == 281.0


def test_timer_c_cancels_then_times_out() -> None:
    txn, req = invite_txn()
    txn.receive_response(response(req, 180), 1.0)
    log = fire_all(txn)
    assert [t for t, _ in log] == [182.0, 214.0]
    (start,) = log[0][1]
    assert isinstance(start, StartCancel) and start.cancel.method == "CANCEL"
    assert log[1][1] == [TransactionTimeout(5, "leg-a")]


def test_failure_acked_inside_transaction_udp() -> None:
    txn, req = invite_txn()
    busy = response(req, 486)
    out = txn.receive_response(busy, 2.0)
    assert len(out) == 2
    ack = out[0].message  # type: ignore[union-attr]
    assert isinstance(out[0], Send) and out[0].dest == UAS_UDP
    assert out[1] == ResponseReceived(5, busy, "leg-a")
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert txn.state is CI.COMPLETED
    assert txn.next_timer() == 34.0  # Timer D = 32 s
    # retransmitted final: the same ACK again, nothing for the TU
    again = txn.receive_response(response(req, 486), 3.0)
    assert again == [Send(ack, UAS_UDP)]
    assert txn.receive_response(response(req, 180), 3.1) == []
    assert fire_all(txn) == [(34.0, [])]
    assert txn.state is CI.TERMINATED


def test_failure_over_tcp_terminates_at_once_timer_d_zero() -> None:
    txn, req = invite_txn(UAS_TCP)
    out = txn.receive_response(response(req, 503), 2.0)
    assert [type(o) for o in out] == [Send, ResponseReceived]
    assert txn.state is CI.TERMINATED and txn.next_timer() is None


def test_ack_headers_rfc3261_17_1_1_3() -> None:
    req = request(
        "INVITE",
        extra_vias=("SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK-lower",),
        routes=("<sip:proxy.example.com;lr>",),
        cseq=42,
    )
    txn, _ = invite_txn(req=req)
    resp = response(req, 404, to_tag="uas-tag")
    ack = sent(txn.receive_response(resp, 0.1))[0]
    assert isinstance(ack, Request)
    assert ack.uri_text == req.uri_text
    assert ack.call_id == req.call_id
    assert ack.get("from") == req.get("from")
    assert ack.to.tag == "uas-tag" and ack.get("to") == resp.get("to")
    assert str(ack.cseq) == "42 ACK"
    assert [str(v) for v in ack.via] == [str(req.top_via)]
    assert ack.get_all("route") == req.get_all("route")
    assert ack.body == b""


def test_2xx_goes_to_accepted_and_every_2xx_is_passed_up() -> None:
    txn, req = invite_txn()
    ok = response(req, 200)
    assert txn.receive_response(ok, 1.0) == [ResponseReceived(5, ok, "leg-a")]
    assert txn.state is CI.ACCEPTED
    assert txn.next_timer() == 33.0  # Timer M
    ok2 = response(req, 200, to_tag="fork-2")
    assert txn.receive_response(ok2, 2.0) == [ResponseReceived(5, ok2, "leg-a")]
    assert txn.receive_response(response(req, 486), 2.0) == []
    assert txn.receive_response(response(req, 180), 2.0) == []
    assert txn.transport_error(2.0) == []
    assert fire_all(txn) == [(33.0, [])]
    assert txn.state is CI.TERMINATED


def test_2xx_over_tcp_also_waits_timer_m() -> None:
    txn, req = invite_txn(UAS_TCP)
    txn.receive_response(response(req, 200), 1.0)
    assert txn.next_timer() == 33.0


# -- INVITE: CANCEL (RFC 3261 §9.1) --------------------------------------------


def test_cancel_before_provisional_is_deferred() -> None:
    txn, req = invite_txn()
    assert txn.cancel(0.2) == []
    assert txn.state is CI.CALLING and not txn.cancel_sent
    assert txn.next_timer() == 0.5  # still retransmitting
    ringing = response(req, 180)
    out = txn.receive_response(ringing, 1.0)
    assert out[0] == ResponseReceived(5, ringing, "leg-a")
    assert isinstance(out[1], StartCancel) and out[1].handle == 5
    assert txn.cancel_sent and txn.timer_c is None
    assert txn.next_timer() == 33.0  # 64*T1 for a final after the CANCEL
    assert txn.cancel(1.5) == []  # idempotent


def test_cancel_after_provisional_is_sent_at_once() -> None:
    req = request("INVITE", routes=("<sip:p.example.com;lr>",), cseq=3)
    txn, _ = invite_txn(req=req)
    txn.receive_response(response(req, 183), 0.3)
    (start,) = txn.cancel(5.0)
    assert isinstance(start, StartCancel)
    cancel = start.cancel
    assert cancel.method == "CANCEL" and cancel.uri_text == req.uri_text
    assert str(cancel.cseq) == "3 CANCEL"
    for name in ("from", "to", "call-id"):
        assert cancel.get(name) == req.get(name)
    assert [str(v) for v in cancel.via] == [str(req.top_via)]
    assert cancel.get_all("route") == req.get_all("route")
    # the 487 then completes the INVITE normally
    out = txn.receive_response(response(req, 487), 6.0)
    assert [type(o) for o in out] == [Send, ResponseReceived]


def test_cancel_after_final_does_nothing() -> None:
    txn, req = invite_txn()
    txn.receive_response(response(req, 486), 0.1)
    assert txn.cancel(0.2) == []
    txn2, req2 = invite_txn()
    txn2.receive_response(response(req2, 200), 0.1)
    assert txn2.cancel(0.2) == []


def test_timer_b_after_cancel_times_out_without_final() -> None:
    txn, req = invite_txn()
    txn.receive_response(response(req, 180), 0.1)
    txn.cancel(10.0)
    assert fire_all(txn) == [(42.0, [TransactionTimeout(5, "leg-a")])]


# -- non-INVITE: Timers E, F, K -----------------------------------------------


def test_nict_timer_e_backoff_to_t2_and_timer_f() -> None:
    txn, req = nict()
    log = fire_all(txn)
    times = [t for t, _ in log]
    assert times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    assert all(sent(out) == [req] for _, out in log[:-1])
    assert log[-1][1] == [TransactionTimeout(9, "reg")]
    assert txn.state is CN.TERMINATED


def test_nict_proceeding_retransmits_every_t2() -> None:
    txn, req = nict()
    fire_all(txn, limit=0.5)
    trying = response(req, 100)
    assert txn.receive_response(trying, 0.6) == [ResponseReceived(9, trying, "reg")]
    assert txn.state is CN.PROCEEDING
    times = [t for t, _ in fire_all(txn)]
    # Timer E keeps its deadline (1.5), then re-arms with T2 each time
    assert times == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5, 32.0]


def test_nict_over_tcp_only_timer_f() -> None:
    txn, _ = nict(UAS_TCP)
    assert fire_all(txn) == [(32.0, [TransactionTimeout(9, "reg")])]


def test_nict_final_then_timer_k_absorbs_retransmissions() -> None:
    txn, req = nict()
    ok = response(req, 200)
    assert txn.receive_response(ok, 1.0) == [ResponseReceived(9, ok, "reg")]
    assert txn.state is CN.COMPLETED and txn.next_timer() == 6.0  # Timer K = T4
    assert txn.receive_response(response(req, 200), 2.0) == []
    assert txn.receive_response(response(req, 180), 2.0) == []
    assert txn.transport_error(2.0) == []
    assert fire_all(txn) == [(6.0, [])]
    assert txn.state is CN.TERMINATED


def test_nict_final_over_tcp_terminates_at_once() -> None:
    txn, req = nict(UAS_TCP)
    out = txn.receive_response(response(req, 404), 1.0)
    assert of_type(out, ResponseReceived) and txn.state is CN.TERMINATED


def test_nict_final_in_proceeding() -> None:
    txn, req = nict()
    txn.receive_response(response(req, 100), 0.1)
    txn.receive_response(response(req, 500), 0.2)
    assert txn.state is CN.COMPLETED


@pytest.mark.parametrize("provisional", [False, True])
def test_nict_transport_error(provisional: bool) -> None:
    txn, req = nict()
    if provisional:
        txn.receive_response(response(req, 100), 0.1)
    assert txn.transport_error(0.2) == [TransportError(9, UAS_UDP, "reg")]
    assert txn.state is CN.TERMINATED


def test_late_calls_fire_timers_in_deadline_order() -> None:
    txn, _ = nict()
    out = txn.handle_timer(100.0)  # adapter woke up very late
    assert out[-1] == TransactionTimeout(9, "reg")
    assert txn.state is CN.TERMINATED


def test_state_changes_are_logged_old_to_new(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="switch.sip.client_invite")
    txn, req = invite_txn()
    txn.receive_response(response(req, 180), 0.1)
    assert "[call-1@192.0.2.1] INVITE client 5: Calling -> Proceeding" in caplog.text
