"""Server transactions (RFC 3261 §17.2.1, §17.2.2, RFC 6026 §8.7) on a fake clock."""

from __future__ import annotations

import pytest

from switch.sip.builders import make_response
from switch.sip.events import (
    AckReceived,
    Send,
    TransactionStateError,
    TransactionTimeout,
    TransportError,
)
from switch.sip.server_invite import ServerInviteTransaction
from switch.sip.server_invite import State as SI
from switch.sip.server_noninvite import ServerNonInviteTransaction
from switch.sip.server_noninvite import State as SN
from switch.sip.timers import TimerConfig

from .test_transaction_support import UAC_TCP, UAC_UDP, fire_all, request, sent

TIMERS = TimerConfig()


def ist(dest=UAC_UDP, now: float = 0.0):  # type: ignore[no-untyped-def]
    req = request("INVITE")
    txn = ServerInviteTransaction(req, dest, TIMERS, handle=3, owner="leg-b")
    out = txn.start(now)
    return txn, req, out


def nist(dest=UAC_UDP):  # type: ignore[no-untyped-def]
    req = request("REGISTER", branch="z9hG4bK-reg")
    return ServerNonInviteTransaction(req, dest, TIMERS, handle=4), req


# -- INVITE server -----------------------------------------------------------


def test_100_trying_sent_at_once_without_to_tag() -> None:
    txn, req, out = ist()
    (trying,) = sent(out)
    assert trying.status == 100  # type: ignore[union-attr]
    assert trying.to.tag is None
    assert trying.call_id == req.call_id and trying.get("via") == req.get("via")
    assert txn.state is SI.PROCEEDING and txn.next_timer() is None


def test_retransmitted_invite_gets_last_response() -> None:
    txn, req, out = ist()
    trying = sent(out)[0]
    assert txn.receive_request(0.5) == [Send(trying, UAC_UDP)]
    ringing = make_response(req, 180, to_tag="b-1")
    assert txn.respond(ringing, 1.0) == [Send(ringing, UAC_UDP)]
    assert txn.receive_request(1.5) == [Send(ringing, UAC_UDP)]
    assert txn.to_tag == "b-1"


def test_timer_g_backoff_capped_at_t2_and_timer_h() -> None:
    txn, req, _ = ist()
    busy = make_response(req, 486, to_tag="b-1")
    assert txn.respond(busy, 0.0) == [Send(busy, UAC_UDP)]
    assert txn.state is SI.COMPLETED
    log = fire_all(txn)
    assert [t for t, _ in log] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5, 32.0]
    assert all(sent(out) == [busy] for _, out in log[:-1])
    assert log[-1][1] == [TransactionTimeout(3, "leg-b")]  # Timer H: no ACK
    assert txn.state is SI.TERMINATED


def test_ack_for_non_2xx_absorbed_then_timer_i() -> None:
    txn, req, _ = ist()
    busy = make_response(req, 486, to_tag="b-1")
    txn.respond(busy, 0.0)
    fire_all(txn, limit=1.5)
    ack = request("ACK", to_tag="b-1", cseq_method="ACK")
    assert txn.receive_ack(ack, UAC_UDP, 2.0) == []
    assert txn.state is SI.CONFIRMED
    assert txn.timer_g is None and txn.timer_h is None
    assert txn.next_timer() == 7.0  # Timer I = T4
    assert txn.receive_ack(ack, UAC_UDP, 3.0) == []
    assert txn.receive_request(3.0) == []
    assert txn.transport_error(3.0) == []
    assert fire_all(txn) == [(7.0, [])]
    assert txn.state is SI.TERMINATED


def test_retransmitted_invite_in_completed_gets_final_again() -> None:
    txn, req, _ = ist()
    busy = make_response(req, 486, to_tag="b-1")
    txn.respond(busy, 0.0)
    assert txn.receive_request(0.2) == [Send(busy, UAC_UDP)]


def test_tcp_no_timer_g_and_timer_i_zero() -> None:
    txn, req, _ = ist(UAC_TCP)
    txn.respond(make_response(req, 603, to_tag="b"), 0.0)
    assert txn.timer_g is None and txn.next_timer() == 32.0  # Timer H only
    ack = request("ACK", to_tag="b", cseq_method="ACK")
    assert txn.receive_ack(ack, UAC_TCP, 1.0) == []
    assert txn.state is SI.TERMINATED


def test_tcp_timer_h() -> None:
    txn, req, _ = ist(UAC_TCP)
    txn.respond(make_response(req, 603, to_tag="b"), 0.0)
    assert fire_all(txn) == [(32.0, [TransactionTimeout(3, "leg-b")])]


def test_2xx_accepted_absorbs_invites_resends_2xx_passes_ack() -> None:
    txn, req, _ = ist()
    ok = make_response(req, 200, to_tag="b-1")
    assert txn.respond(ok, 1.0) == [Send(ok, UAC_UDP)]
    assert txn.state is SI.ACCEPTED and txn.next_timer() == 33.0  # Timer L
    assert txn.receive_request(1.5) == []  # RFC 6026: absorbed silently
    assert txn.respond(ok, 2.0) == [Send(ok, UAC_UDP)]  # TU retransmits its 2xx
    ack = request("ACK", to_tag="b-1", cseq_method="ACK")
    assert txn.receive_ack(ack, UAC_UDP, 2.5) == [AckReceived(ack, UAC_UDP, 3, "leg-b")]
    assert fire_all(txn) == [(33.0, [])]
    assert txn.state is SI.TERMINATED


def test_ack_in_proceeding_ignored() -> None:
    txn, _, _ = ist()
    assert txn.receive_ack(request("ACK", cseq_method="ACK"), UAC_UDP, 0.1) == []
    assert txn.state is SI.PROCEEDING


@pytest.mark.parametrize("status", [180, 486])
def test_tu_response_after_2xx_is_an_error(status: int) -> None:
    txn, req, _ = ist()
    txn.respond(make_response(req, 200, to_tag="b"), 0.0)
    with pytest.raises(TransactionStateError):
        txn.respond(make_response(req, status, to_tag="b"), 0.1)


@pytest.mark.parametrize("status", [180, 200, 486])
def test_tu_response_after_non_2xx_is_an_error(status: int) -> None:
    txn, req, _ = ist()
    txn.respond(make_response(req, 486, to_tag="b"), 0.0)
    with pytest.raises(TransactionStateError):
        txn.respond(make_response(req, status, to_tag="b"), 0.1)


def test_transport_error_reports_in_proceeding_and_completed() -> None:
    txn, _, _ = ist()
    assert txn.transport_error(0.1) == [TransportError(3, UAC_UDP, "leg-b")]
    assert txn.state is SI.TERMINATED
    txn2, req2, _ = ist()
    txn2.respond(make_response(req2, 486, to_tag="b"), 0.0)
    assert txn2.transport_error(0.1) == [TransportError(3, UAC_UDP, "leg-b")]
    assert txn2.state is SI.TERMINATED and txn2.next_timer() is None


# -- non-INVITE server -------------------------------------------------------


def test_nist_trying_discards_retransmissions() -> None:
    txn, _ = nist()
    assert txn.start(0.0) == []
    assert txn.receive_request(0.5) == []
    assert txn.state is SN.TRYING and txn.next_timer() is None
    assert txn.transport_error(0.6) == []


def test_nist_proceeding_and_completed_resend_last_response() -> None:
    txn, req = nist()
    trying = make_response(req, 100)
    assert txn.respond(trying, 0.1) == [Send(trying, UAC_UDP)]
    assert txn.state is SN.PROCEEDING
    assert txn.receive_request(0.5) == [Send(trying, UAC_UDP)]
    ok = make_response(req, 200, to_tag="r")
    assert txn.respond(ok, 1.0) == [Send(ok, UAC_UDP)]
    assert txn.state is SN.COMPLETED
    assert txn.receive_request(2.0) == [Send(ok, UAC_UDP)]
    assert fire_all(txn) == [(33.0, [])]  # Timer J = 64*T1
    assert txn.state is SN.TERMINATED


def test_nist_tcp_timer_j_zero() -> None:
    txn, req = nist(UAC_TCP)
    txn.respond(make_response(req, 200, to_tag="r"), 1.0)
    assert txn.state is SN.TERMINATED and txn.next_timer() is None


def test_nist_second_final_is_an_error() -> None:
    txn, req = nist()
    txn.respond(make_response(req, 200, to_tag="r"), 1.0)
    with pytest.raises(TransactionStateError):
        txn.respond(make_response(req, 200, to_tag="r"), 1.1)


def test_nist_transport_errors() -> None:
    txn, req = nist()
    txn.respond(make_response(req, 100), 0.1)
    assert txn.transport_error(0.2) == [TransportError(4, UAC_UDP, None)]
    assert txn.state is SN.TERMINATED
    txn2, req2 = nist()
    txn2.respond(make_response(req2, 200, to_tag="r"), 0.1)
    assert txn2.transport_error(0.2) == [TransportError(4, UAC_UDP, None)]
    assert txn2.state is SN.TERMINATED
