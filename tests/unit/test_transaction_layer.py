"""TransactionLayer: matching (RFC 3261 §17.1.3, §17.2.3), CANCEL (§9), heap, tables."""

from __future__ import annotations

import pytest

from switch.sip.address import Address
from switch.sip.builders import make_response
from switch.sip.client_invite import ClientInviteTransaction
from switch.sip.events import (
    AckReceived,
    CancelReceived,
    DuplicateTransaction,
    NoSuchTransaction,
    RequestReceived,
    ResponseReceived,
    Send,
    StartCancel,
    StrayResponse,
    TransactionError,
    TransactionTimeout,
    TransportError,
)
from switch.sip.message import Request, Response
from switch.sip.server_invite import State as SI
from switch.sip.transaction_layer import TransactionLayer

from .test_transaction_support import (
    UAC_UDP,
    UAS_TCP,
    UAS_UDP,
    fire_all,
    of_type,
    request,
    response,
    sent,
)


def new_invite(layer: TransactionLayer, req: Request | None = None, now: float = 0.0):  # type: ignore[no-untyped-def]
    req = req or request("INVITE")
    out = layer.receive_request(req, UAC_UDP, UAC_UDP, now)
    (ev,) = of_type(out, RequestReceived)
    return ev.handle, req, out


# -- server side: requests, retransmissions, ACK ------------------------------


def test_new_invite_gets_100_and_one_request_received() -> None:
    layer = TransactionLayer()
    handle, req, out = new_invite(layer)
    assert [type(o) for o in out] == [Send, RequestReceived]
    assert out[1] == RequestReceived(handle, req, UAC_UDP)
    again = layer.receive_request(request("INVITE"), UAC_UDP, UAC_UDP, 0.5)
    assert again == [out[0]]  # the same 100 Trying, no second RequestReceived
    assert len(layer) == 1


def test_non_invite_retransmission_answered_from_last_response() -> None:
    layer = TransactionLayer()
    req = request("OPTIONS", branch="z9hG4bK-o")
    (ev,) = layer.receive_request(req, UAC_UDP, UAC_UDP, 0.0)
    assert isinstance(ev, RequestReceived)
    assert layer.receive_request(req, UAC_UDP, UAC_UDP, 0.1) == []  # Trying: discarded
    ok = make_response(req, 200, to_tag="x")
    assert layer.respond(ev.handle, ok, 0.2) == [Send(ok, UAC_UDP)]
    assert layer.receive_request(req, UAC_UDP, UAC_UDP, 0.3) == [Send(ok, UAC_UDP)]
    fire_all(layer)
    assert len(layer) == 0


def test_ack_for_non_2xx_absorbed() -> None:
    layer = TransactionLayer()
    handle, req, _ = new_invite(layer)
    layer.respond(handle, make_response(req, 486, to_tag="b"), 0.1)
    ack = request("ACK", to_tag="b", cseq_method="ACK")  # same branch as the INVITE
    assert layer.receive_request(ack, UAC_UDP, UAC_UDP, 0.2) == []
    txn = layer.transaction(handle)
    assert txn is not None and txn.state is SI.CONFIRMED
    fire_all(layer)
    assert len(layer) == 0


def test_ack_for_2xx_passed_up_with_and_without_matching_branch() -> None:
    layer = TransactionLayer()
    handle, req, _ = new_invite(layer)
    layer.bind(handle, "leg-b")
    layer.respond(handle, make_response(req, 200, to_tag="b"), 0.1)
    assert layer.receive_request(request("INVITE"), UAC_UDP, UAC_UDP, 0.2) == []  # absorbed
    own = request("ACK", branch="z9hG4bK-ack-new", to_tag="b", cseq_method="ACK")
    assert layer.receive_request(own, UAC_UDP, UAC_UDP, 0.3) == [AckReceived(own, UAC_UDP)]
    same = request("ACK", to_tag="b", cseq_method="ACK")
    assert layer.receive_request(same, UAC_UDP, UAC_UDP, 0.3) == [
        AckReceived(same, UAC_UDP, handle, "leg-b")
    ]


def test_same_branch_other_sent_by_is_another_transaction() -> None:
    layer = TransactionLayer()
    new_invite(layer)
    other = request("INVITE", via_host="203.0.113.9:5060")
    out = layer.receive_request(other, UAC_UDP, UAC_UDP, 0.1)
    assert of_type(out, RequestReceived)
    assert layer.counts().server_invite == 2


def test_sent_by_host_compared_case_insensitively() -> None:
    layer = TransactionLayer()
    new_invite(layer, request("INVITE", via_host="PC33.Example.com"))
    out = layer.receive_request(
        request("INVITE", via_host="pc33.example.com"), UAC_UDP, UAC_UDP, 0.1
    )
    assert not of_type(out, RequestReceived)


# -- CANCEL (RFC 3261 §9.2) -----------------------------------------------------


def test_cancel_for_pending_invite() -> None:
    layer = TransactionLayer()
    handle, req, _ = new_invite(layer)
    layer.bind(handle, "leg-b")
    layer.respond(handle, make_response(req, 180, to_tag="b-tag"), 0.1)
    cancel = request("CANCEL", cseq_method="CANCEL")  # same branch, method CANCEL
    out = layer.receive_request(cancel, UAC_UDP, UAC_UDP, 0.2)
    (ok,) = sent(out)
    assert isinstance(ok, Response) and ok.status == 200
    assert ok.cseq.method == "CANCEL" and ok.to.tag == "b-tag"  # same To tag as the INVITE's
    assert out[1] == CancelReceived(cancel, handle, UAC_UDP, "leg-b")
    # retransmitted CANCEL: the same 200, no second event
    assert layer.receive_request(cancel, UAC_UDP, UAC_UDP, 0.3) == [Send(ok, UAC_UDP)]
    # the TU answers the INVITE 487, the UAC ACKs it
    layer.respond(handle, make_response(req, 487, to_tag="b-tag"), 0.4)
    ack = request("ACK", to_tag="b-tag", cseq_method="ACK")
    assert layer.receive_request(ack, UAC_UDP, UAC_UDP, 0.5) == []
    fire_all(layer)
    assert len(layer) == 0


def test_cancel_for_unknown_transaction_gets_481() -> None:
    layer = TransactionLayer()
    cancel = request("CANCEL", branch="z9hG4bK-nothing", cseq_method="CANCEL")
    out = layer.receive_request(cancel, UAC_UDP, UAC_UDP, 0.0)
    (resp,) = sent(out)
    assert resp.status == 481 and resp.to.tag  # type: ignore[union-attr]
    assert out[1] == CancelReceived(cancel, None, UAC_UDP)


def test_cancel_after_final_is_answered_200_without_effect() -> None:
    layer = TransactionLayer()
    handle, req, _ = new_invite(layer)
    layer.respond(handle, make_response(req, 200, to_tag="b"), 0.1)
    cancel = request("CANCEL", cseq_method="CANCEL")
    out = layer.receive_request(cancel, UAC_UDP, UAC_UDP, 0.2)
    assert sent(out)[0].status == 200  # type: ignore[union-attr]
    assert out[1] == CancelReceived(cancel, None, UAC_UDP)


# -- RFC 2543 fallback matching (§17.2.3) --------------------------------------


@pytest.mark.parametrize("branch", [None, "old-2543-branch"])
def test_rfc2543_invite_retransmission_ack_and_cancel(branch: str | None) -> None:
    layer = TransactionLayer()
    handle, req, _ = new_invite(layer, request("INVITE", branch=branch))
    assert layer.receive_request(request("INVITE", branch=branch), UAC_UDP, UAC_UDP, 0.1) != []
    assert len(layer) == 1
    # a different CSeq is a different transaction
    other = layer.receive_request(request("INVITE", branch=branch, cseq=2), UAC_UDP, UAC_UDP, 0.1)
    assert of_type(other, RequestReceived)
    # CANCEL: same fields, method CANCEL
    cancel = request("CANCEL", branch=branch, cseq_method="CANCEL")
    out = layer.receive_request(cancel, UAC_UDP, UAC_UDP, 0.2)
    assert sent(out)[0].status == 200  # type: ignore[union-attr]
    assert out[1].invite_handle == handle  # type: ignore[union-attr]
    layer.respond(handle, make_response(req, 487, to_tag="uas"), 0.3)
    # an ACK whose To tag is not that of the response is not ours
    wrong = request("ACK", branch=branch, to_tag="other", cseq_method="ACK")
    assert layer.receive_request(wrong, UAC_UDP, UAC_UDP, 0.4) == [AckReceived(wrong, UAC_UDP)]
    ack = request("ACK", branch=branch, to_tag="uas", cseq_method="ACK")
    assert layer.receive_request(ack, UAC_UDP, UAC_UDP, 0.5) == []
    txn = layer.transaction(handle)
    assert txn is not None and txn.state is SI.CONFIRMED


def test_rfc2543_request_uri_and_from_tag_are_part_of_the_key() -> None:
    layer = TransactionLayer()
    new_invite(layer, request("INVITE", branch=None))
    out1 = layer.receive_request(
        request("INVITE", branch=None, uri="sip:carol@198.51.100.7"), UAC_UDP, UAC_UDP, 0.1
    )
    out2 = layer.receive_request(
        request("INVITE", branch=None, from_tag="zz"), UAC_UDP, UAC_UDP, 0.1
    )
    assert of_type(out1, RequestReceived) and of_type(out2, RequestReceived)


# -- client side -----------------------------------------------------------------


def test_send_request_and_match_responses() -> None:
    layer = TransactionLayer()
    req = request("INVITE", branch="z9hG4bK-c1")
    handle, out = layer.send_request(req, UAS_UDP, 0.0, owner="leg-a")
    assert out == [Send(req, UAS_UDP)]
    ringing = response(req, 180)
    assert layer.receive_response(ringing, UAS_UDP, 0.1) == [
        ResponseReceived(handle, ringing, "leg-a")
    ]
    # same branch, other CSeq method: not this transaction
    stray = response(request("INVITE", branch="z9hG4bK-c1", cseq_method="BYE"), 200)
    assert layer.receive_response(stray, UAS_UDP, 0.1) == [StrayResponse(stray, UAS_UDP)]
    unknown = response(request("INVITE", branch="z9hG4bK-zz"), 200)
    assert layer.receive_response(unknown, UAS_UDP, 0.1) == [StrayResponse(unknown, UAS_UDP)]


def test_non_2xx_acked_by_layer_and_2xx_after_timer_m_is_stray() -> None:
    layer = TransactionLayer()
    req = request("INVITE", branch="z9hG4bK-c2")
    layer.send_request(req, UAS_UDP, 0.0)
    out = layer.receive_response(response(req, 404), UAS_UDP, 0.1)
    assert sent(out)[0].method == "ACK"  # type: ignore[union-attr]
    fire_all(layer)
    assert len(layer) == 0
    req2 = request("INVITE", branch="z9hG4bK-c3")
    layer.send_request(req2, UAS_UDP, 100.0)
    layer.receive_response(response(req2, 200), UAS_UDP, 100.1)
    fire_all(layer)  # Timer M
    late = response(req2, 200)
    assert layer.receive_response(late, UAS_UDP, 200.0) == [StrayResponse(late, UAS_UDP)]


def test_cancel_before_provisional_waits_for_one() -> None:
    layer = TransactionLayer()
    req = request("INVITE", branch="z9hG4bK-c4")
    handle, _ = layer.send_request(req, UAS_UDP, 0.0, owner="leg-a")
    assert layer.cancel(handle, 0.1) == []
    out = layer.receive_response(response(req, 100, to_tag=None), UAS_UDP, 0.2)
    assert not of_type(out, StartCancel)
    (cancel,) = sent(out)
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
    assert cancel.top_via.branch == "z9hG4bK-c4"
    assert layer.counts().client_noninvite == 1
    # the 200 to the CANCEL is not the TU's business
    assert layer.receive_response(response(cancel, 200), UAS_UDP, 0.3) == []
    # the 487 is, and gets ACKed
    out = layer.receive_response(response(req, 487), UAS_UDP, 0.4)
    assert [type(o) for o in out] == [Send, ResponseReceived]
    fire_all(layer)
    assert len(layer) == 0


def test_cancel_after_provisional_sent_now_and_retransmitted_silently() -> None:
    layer = TransactionLayer()
    req = request("INVITE", branch="z9hG4bK-c5")
    handle, _ = layer.send_request(req, UAS_UDP, 0.0, owner="leg-a")
    layer.receive_response(response(req, 180), UAS_UDP, 0.2)
    out = layer.cancel(handle, 1.0)
    (cancel,) = sent(out)
    assert out == [Send(cancel, UAS_UDP)]
    log = fire_all(layer)
    # CANCEL retransmitted (Timer E) and finally times out without a word to the TU,
    # then the INVITE itself times out 64*T1 after the CANCEL (§9.1)
    assert sent(log[0][1]) == [cancel] and log[0][0] == 1.5
    events = [o for _, out in log for o in out if not isinstance(o, Send)]
    assert events == [TransactionTimeout(handle, "leg-a")]
    assert log[-1][0] == 33.0
    assert len(layer) == 0


def test_cancel_after_final_or_unknown_handle_does_nothing() -> None:
    layer = TransactionLayer()
    req = request("INVITE", branch="z9hG4bK-c6")
    handle, _ = layer.send_request(req, UAS_TCP, 0.0)
    layer.receive_response(response(req, 486), UAS_TCP, 0.1)
    assert layer.cancel(handle, 0.2) == []
    assert layer.cancel(12345, 0.2) == []


def test_cancel_of_a_non_invite_is_refused() -> None:
    layer = TransactionLayer()
    handle, _ = layer.send_request(request("OPTIONS", branch="z9hG4bK-o"), UAS_UDP, 0.0)
    with pytest.raises(TransactionError):
        layer.cancel(handle, 0.1)


# -- API errors ---------------------------------------------------------------------


def test_api_errors() -> None:
    layer = TransactionLayer()
    req = request("INVITE", branch="z9hG4bK-dup")
    handle, _ = layer.send_request(req, UAS_UDP, 0.0)
    with pytest.raises(DuplicateTransaction):
        layer.send_request(request("INVITE", branch="z9hG4bK-dup"), UAS_UDP, 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(request("ACK", branch="z9hG4bK-a"), UAS_UDP, 0.0)
    with pytest.raises(TransactionError):
        layer.send_request(request("OPTIONS", branch=None), UAS_UDP, 0.0)
    with pytest.raises(NoSuchTransaction):
        layer.respond(handle, make_response(req, 200), 0.0)  # a client handle
    with pytest.raises(NoSuchTransaction):
        layer.respond(999, make_response(req, 200), 0.0)
    with pytest.raises(NoSuchTransaction):
        layer.bind(999, object())


# -- transport errors, timers, tables ---------------------------------------------


def test_transport_error_reaches_every_transaction_to_that_destination() -> None:
    layer = TransactionLayer()
    h1, _ = layer.send_request(request("INVITE", branch="z9hG4bK-t1"), UAS_UDP, 0.0, owner=1)
    h2, _ = layer.send_request(request("OPTIONS", branch="z9hG4bK-t2"), UAS_UDP, 0.0, owner=2)
    other = Address("udp", "203.0.113.5", 5060)
    h3, _ = layer.send_request(request("OPTIONS", branch="z9hG4bK-t3"), other, 0.0, owner=3)
    out = layer.transport_error(UAS_UDP, 0.1)
    assert out == [TransportError(h1, UAS_UDP, 1), TransportError(h2, UAS_UDP, 2)]
    assert len(layer) == 1 and layer.transaction(h3) is not None
    assert layer.transport_error(UAS_UDP, 0.2) == []


def test_server_transport_error() -> None:
    layer = TransactionLayer()
    handle, _, _ = new_invite(layer)
    assert layer.transport_error(UAC_UDP, 0.1) == [TransportError(handle, UAC_UDP, None)]
    assert len(layer) == 0


def test_next_timer_skips_stale_entries() -> None:
    layer = TransactionLayer()
    req = request("INVITE", branch="z9hG4bK-h1")
    layer.send_request(req, UAS_UDP, 0.0)
    assert layer.next_timer() == 0.5
    layer.receive_response(response(req, 180), UAS_UDP, 0.1)  # A and B stop
    assert layer.next_timer() == pytest.approx(181.1)  # Timer C guard only
    layer.receive_response(response(req, 200), UAS_UDP, 0.2)
    assert layer.next_timer() == 32.2  # Timer M
    assert layer.handle_timer(1.0) == []  # stale entries are dropped silently


def test_ten_thousand_transactions_all_terminate_and_leave_no_trace() -> None:
    layer = TransactionLayer()
    n = 10_000
    reqs = []
    for i in range(n):
        req = request("OPTIONS", branch=f"z9hG4bK-bulk-{i}", call_id=f"bulk-{i}")
        layer.send_request(req, UAS_UDP, i * 0.001)
        reqs.append(req)
    assert len(layer) == n
    for req in reqs[::2]:
        layer.receive_response(response(req, 200), UAS_UDP, 10.0)
    counts = layer.counts()
    assert counts.client_noninvite == n
    assert counts.heap <= 4 * n + 64
    fired = 0
    while (t := layer.next_timer()) is not None:
        out = layer.handle_timer(t)
        fired += len(of_type(out, TransactionTimeout))
    assert fired == n // 2
    assert len(layer) == 0 and layer.counts().heap == 0


def test_counts_by_kind() -> None:
    layer = TransactionLayer()
    layer.send_request(request("INVITE", branch="z9hG4bK-k1"), UAS_UDP, 0.0)
    layer.send_request(request("BYE", branch="z9hG4bK-k2"), UAS_UDP, 0.0)
    new_invite(layer)
    layer.receive_request(request("INFO", branch="z9hG4bK-k3"), UAC_UDP, UAC_UDP, 0.0)
    c = layer.counts()
    assert (c.client_invite, c.client_noninvite, c.server_invite, c.server_noninvite) == (
        1,
        1,
        1,
        1,
    )
    assert len(layer) == 4


def test_handles_are_ints_and_transactions_inspectable() -> None:
    layer = TransactionLayer()
    handle, _ = layer.send_request(request("INVITE", branch="z9hG4bK-i"), UAS_UDP, 0.0)
    assert isinstance(handle, int)
    assert isinstance(layer.transaction(handle), ClientInviteTransaction)
