"""The dialog layer (RFC 3261 §12, §13.2.2.4, §14, §15) on real-looking messages."""

from __future__ import annotations

import random

import pytest

from switch.sip.dialog import (
    TRANSITIONS,
    Dialog,
    DialogError,
    DialogId,
    DialogInput,
    DialogState,
)
from switch.sip.errors import MalformedMessage
from switch.sip.headers import NameAddr
from switch.sip.message import Request
from switch.sip.uri import parse_uri

from .dialog_support import (
    ALICE_CONTACT,
    ALICE_VIA,
    BOB_CONTACT,
    BOB_VIA,
    CALL_ID,
    P1,
    P2,
    SDP,
    answer,
    in_dialog_request,
    invite_as_received,
    invite_as_sent,
    wire,
)

ALICE_FROM = '"Alice Liddell" <sip:alice@example.com>;tag=1928301774'
BOB_TO = "Bob <sip:bob@example.net>;tag=a6c85cf"


def uac_dialog(status: int = 200, **kw: object) -> tuple[Dialog, Request]:
    invite = invite_as_sent()
    return Dialog.from_uac(invite, answer(invite, status, **kw)), invite  # type: ignore[arg-type]


def uas_dialog(status: int = 200) -> tuple[Dialog, Request]:
    invite = invite_as_received()
    dialog = Dialog.from_uas(invite, answer(invite, status), BOB_CONTACT)
    return dialog, invite


def routes(req: Request) -> list[str]:
    return req.get_all("route")


# -- creation (§12.1) ----------------------------------------------------------


def test_uas_dialog_keeps_record_route_order() -> None:
    dialog, _ = uas_dialog(180)
    assert dialog.id == DialogId(CALL_ID, "a6c85cf", "1928301774")
    assert dialog.state is DialogState.EARLY and not dialog.is_uac
    assert [str(r) for r in dialog.route_set] == [P2, P1]  # §12.1.1: as received
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060;transport=udp"
    assert str(dialog.remote_uri) == ALICE_FROM
    assert str(dialog.local_uri) == BOB_TO
    assert str(dialog.local_contact) == BOB_CONTACT
    assert dialog.remote_seq == 314159 and dialog.local_seq is None
    assert dialog.secure is False
    assert dialog.pending_incoming_invite  # the INVITE is not answered yet


def test_uas_dialog_confirmed_by_2xx_sent() -> None:
    dialog, invite = uas_dialog(180)
    dialog.send_response(answer(invite, 200))
    assert dialog.state is DialogState.CONFIRMED
    assert not dialog.pending_incoming_invite


def test_uac_dialog_reverses_record_route() -> None:
    dialog, _ = uac_dialog(180)
    assert dialog.id == DialogId(CALL_ID, "1928301774", "a6c85cf")
    assert dialog.state is DialogState.EARLY and dialog.is_uac
    assert [str(r) for r in dialog.route_set] == [P1, P2]  # §12.1.2: reversed
    assert str(dialog.remote_target) == "sip:bob@198.51.100.20:5062"
    assert str(dialog.local_uri) == ALICE_FROM
    assert str(dialog.remote_uri) == BOB_TO
    assert str(dialog.local_contact) == ALICE_CONTACT
    assert dialog.local_seq == 314159 and dialog.remote_seq is None
    assert dialog.pending_outgoing_invite


def test_secure_flag_needs_tls_and_sips() -> None:
    invite = invite_as_received(ruri="sips:bob@example.net")
    resp = answer(invite, 200)
    assert Dialog.from_uas(invite, resp, BOB_CONTACT, tls=True).secure
    assert not Dialog.from_uas(invite, resp, BOB_CONTACT, tls=False).secure
    plain = invite_as_received()
    assert not Dialog.from_uas(plain, answer(plain, 200), BOB_CONTACT, tls=True).secure


def test_no_dialog_without_to_tag_or_from_100_or_failure() -> None:
    invite = invite_as_sent()
    with pytest.raises(DialogError):
        Dialog.from_uac(invite, answer(invite, 100, to_tag=None))  # type: ignore[arg-type]
    with pytest.raises(DialogError):
        Dialog.from_uac(invite, answer(invite, 486))
    with pytest.raises(MalformedMessage):  # §12.1.2: a 2xx must carry Contact
        Dialog.from_uac(invite, answer(invite, 200, contact=None))


def test_1xx_without_contact_then_2xx_sets_target() -> None:
    dialog, invite = uac_dialog(180, contact=None)
    assert str(dialog.remote_target) == "sip:bob@example.net"  # provisional guess
    dialog.receive_response(answer(invite, 200))
    assert str(dialog.remote_target) == "sip:bob@198.51.100.20:5062"


# -- requests within the dialog (§12.2.1.1) -----------------------------------


def test_uac_bye_headers_exact() -> None:
    dialog, _ = uac_dialog()
    bye = wire(dialog.new_request("BYE", ALICE_VIA))
    assert isinstance(bye, Request)
    assert bye.method == "BYE"
    assert bye.uri_text == "sip:bob@198.51.100.20:5062"  # loose routing: remote target
    assert routes(bye) == [P1, P2]
    assert bye.get("from") == ALICE_FROM
    assert bye.get("to") == BOB_TO
    assert bye.call_id == CALL_ID
    assert bye.get("cseq") == "314160 BYE"
    assert bye.max_forwards == 70
    via = bye.top_via
    assert (via.transport, via.host, via.port) == ("UDP", "192.0.2.10", 5060)
    assert via.rport == "" and via.branch and via.branch.startswith("z9hG4bK")
    assert not bye.has("contact")  # not a target refresh request
    assert bye.get("content-length") == "0"


def test_reinvite_has_contact_body_and_fresh_branch() -> None:
    dialog, _ = uac_dialog()
    first = dialog.new_request("INFO", ALICE_VIA)
    reinvite = dialog.new_request("INVITE", ALICE_VIA, body=SDP, content_type="application/sdp")
    assert reinvite.get("contact") == ALICE_CONTACT  # §12.2.1.1: target refresh
    assert reinvite.get("content-type") == "application/sdp"
    assert reinvite.body == SDP and reinvite.get("content-length") == str(len(SDP))
    assert reinvite.cseq.seq == first.cseq.seq + 1 == 314161
    assert reinvite.top_via.branch != first.top_via.branch


def test_uas_request_uses_route_set_in_order_and_fresh_cseq() -> None:
    dialog, _ = uas_dialog()
    bye = dialog.new_request("BYE", BOB_VIA, extra_headers=[("Reason", "Q.850;cause=16")])
    assert bye.uri_text == "sip:alice@192.0.2.10:5060;transport=udp"
    assert routes(bye) == [P2, P1]
    assert bye.get("from") == BOB_TO and bye.get("to") == ALICE_FROM
    assert bye.get("reason") == "Q.850;cause=16"
    assert dialog.local_seq == bye.cseq.seq and 0 < bye.cseq.seq < 2**31  # §8.1.1.5
    assert dialog.new_request("INFO", BOB_VIA).cseq.seq == bye.cseq.seq + 1


def test_strict_router_becomes_request_uri() -> None:
    strict = "<sip:p1.example.com;maddr=10.0.0.1>"
    dialog, _ = uac_dialog(record_route=(P2, strict))
    req = dialog.new_request("INFO", ALICE_VIA)
    assert req.uri_text == "sip:p1.example.com;maddr=10.0.0.1"  # §12.2.1.1 strict
    assert routes(req) == [P2, BOB_CONTACT]  # the rest, then the remote target


def test_no_route_set_means_no_route_header() -> None:
    dialog, _ = uac_dialog(record_route=None)
    req = dialog.new_request("OPTIONS", ALICE_VIA)
    assert req.uri_text == "sip:bob@198.51.100.20:5062" and routes(req) == []


def test_ack_and_cancel_and_callee_early_bye_refused() -> None:
    dialog, _ = uac_dialog()
    for method in ("ACK", "CANCEL"):
        with pytest.raises(DialogError):
            dialog.new_request(method, ALICE_VIA)
    early, _ = uas_dialog(180)
    with pytest.raises(DialogError):  # §15: the callee must not BYE an early dialog
        early.new_request("BYE", BOB_VIA)


# -- ACK for 2xx (§13.2.2.4) -----------------------------------------------------


def test_ack_for_2xx_headers() -> None:
    dialog, invite = uac_dialog()
    ack = wire(dialog.ack_for_2xx(314159, ALICE_VIA, body=SDP, content_type="application/sdp"))
    assert isinstance(ack, Request) and ack.method == "ACK"
    assert ack.get("cseq") == "314159 ACK"  # the INVITE's number, method ACK
    assert ack.uri_text == "sip:bob@198.51.100.20:5062"
    assert routes(ack) == [P1, P2]
    assert ack.get("from") == ALICE_FROM and ack.get("to") == BOB_TO
    assert ack.top_via.branch != invite.top_via.branch  # its own transaction
    assert ack.body == SDP
    assert dialog.local_seq == 314159  # ACK does not consume a CSeq


def test_ack_for_retransmitted_2xx_is_the_same_ack() -> None:
    invite = invite_as_sent()
    ok = answer(invite, 200)
    dialog = Dialog.from_uac(invite, ok)
    ack = dialog.ack_for_2xx(314159, ALICE_VIA)
    again = dialog.receive_response(wire(ok))  # type: ignore[arg-type]
    assert again.retransmission and again.ack is ack


def test_ack_only_after_a_2xx() -> None:
    dialog, _ = uac_dialog(183)
    with pytest.raises(DialogError):
        dialog.ack_for_2xx(314159, ALICE_VIA)


def test_late_2xx_on_a_terminated_fork_is_still_acked() -> None:
    dialog, invite = uac_dialog(180)
    dialog.terminate()
    outcome = dialog.receive_response(answer(invite, 200))
    assert not outcome.retransmission and dialog.state is DialogState.TERMINATED
    ack = dialog.ack_for_2xx(314159, ALICE_VIA)
    assert ack.get("cseq") == "314159 ACK"
    assert dialog.receive_response(answer(invite, 200)).ack is ack


def test_refer_carries_contact_but_its_2xx_refreshes_nothing() -> None:
    dialog, _ = uac_dialog()
    refer = dialog.new_request("REFER", ALICE_VIA, extra_headers=[("Refer-To", "<sip:carol@x>")])
    assert refer.get("contact") == ALICE_CONTACT  # RFC 3515 §2.1
    dialog.receive_response(answer(refer, 202, contact="<sip:bob@203.0.113.1>", record_route=None))
    assert str(dialog.remote_target) == "sip:bob@198.51.100.20:5062"


def test_reinvite_2xx_retransmission_gets_its_ack() -> None:
    dialog, _ = uac_dialog()
    reinvite = dialog.new_request("INVITE", ALICE_VIA, body=SDP)
    ok = answer(reinvite, 200, record_route=None)
    assert not dialog.receive_response(ok).retransmission
    ack = dialog.ack_for_2xx(reinvite.cseq.seq, ALICE_VIA)
    outcome = dialog.receive_response(wire(ok))  # type: ignore[arg-type]
    assert outcome.retransmission and outcome.ack is ack


# -- requests received (§12.2.2) --------------------------------------------------


def test_remote_cseq_lower_is_500_out_of_order() -> None:
    dialog, _ = uas_dialog()
    assert dialog.receive_request(in_dialog_request("INFO", 314161)).ok
    assert dialog.remote_seq == 314161
    check = dialog.receive_request(in_dialog_request("INFO", 314160))
    assert (check.status, check.reason) == (500, "Out of order")
    assert dialog.remote_seq == 314161
    assert dialog.receive_request(in_dialog_request("INFO", 314170)).ok  # gaps are fine
    assert dialog.receive_request(in_dialog_request("ACK", 314159)).ok  # ACK exempt


def test_uac_remote_seq_starts_empty() -> None:
    dialog, _ = uac_dialog()
    bye = in_dialog_request("BYE", 1, from_tag="a6c85cf", to_tag="1928301774")
    assert dialog.receive_request(bye).ok  # any number is in order the first time
    assert dialog.remote_seq == 1 and dialog.state is DialogState.TERMINATED


def test_request_for_another_dialog_is_481() -> None:
    dialog, _ = uas_dialog()
    assert dialog.receive_request(in_dialog_request("INFO", 314160, to_tag="x")).status == 481
    assert dialog.receive_request(in_dialog_request("INFO", 314160, call_id="other")).status == 481


def test_target_refresh_by_reinvite_2xx_uac() -> None:
    dialog, _ = uac_dialog()
    reinvite = dialog.new_request("INVITE", ALICE_VIA, body=SDP)
    dialog.receive_response(answer(reinvite, 488, contact="<sip:bob@203.0.113.9>"))
    assert str(dialog.remote_target) == "sip:bob@198.51.100.20:5062"  # failure: unchanged
    reinvite = dialog.new_request("INVITE", ALICE_VIA, body=SDP)
    dialog.receive_response(answer(reinvite, 200, contact="<sip:bob@203.0.113.9:5070>"))
    assert dialog.remote_target == parse_uri("sip:bob@203.0.113.9:5070")
    assert dialog.new_request("BYE", ALICE_VIA).uri_text == "sip:bob@203.0.113.9:5070"
    assert [str(r) for r in dialog.route_set] == [P1, P2]  # a re-INVITE never changes it


def test_target_refresh_by_incoming_reinvite_applies_on_2xx() -> None:
    dialog, _ = uas_dialog()
    reinvite = in_dialog_request("INVITE", 314160, contact="<sip:alice@192.0.2.99>")
    assert dialog.receive_request(reinvite).ok
    assert str(dialog.remote_target) == "sip:alice@192.0.2.10:5060;transport=udp"
    dialog.send_response(answer(reinvite, 200, to_tag="a6c85cf", record_route=None))
    assert str(dialog.remote_target) == "sip:alice@192.0.2.99"
    update = in_dialog_request("UPDATE", 314161, contact="<sip:alice@192.0.2.77>")
    assert dialog.receive_request(update).ok
    dialog.send_response(answer(update, 491, record_route=None))
    assert str(dialog.remote_target) == "sip:alice@192.0.2.99"  # refused: unchanged


# -- lifecycle, forking ------------------------------------------------------------


def test_forking_two_early_dialogs_then_2xx_on_one() -> None:
    invite = invite_as_sent()
    first = Dialog.from_uac(invite, answer(invite, 180, to_tag="fork-a", record_route=(P1,)))
    second = Dialog.from_uac(
        invite, answer(invite, 180, to_tag="fork-b", contact="<sip:bob@203.0.113.5>")
    )
    assert first.id != second.id
    assert {first.id.remote_tag, second.id.remote_tag} == {"fork-a", "fork-b"}
    assert first.state is second.state is DialogState.EARLY
    ok = answer(invite, 200, to_tag="fork-b", contact="<sip:bob@203.0.113.5>", record_route=(P2,))
    assert DialogId.of_response(ok) == second.id
    with pytest.raises(DialogError):
        first.receive_response(ok)  # misrouted by the TU
    second.receive_response(ok)
    assert second.state is DialogState.CONFIRMED
    assert [str(r) for r in second.route_set] == [P2]  # §12.1.2: the 2xx's replaces it
    assert first.state is DialogState.EARLY
    first.terminate()  # the TU ends the losing fork
    assert first.state is DialogState.TERMINATED


def test_early_dialog_ends_on_failure() -> None:
    dialog, invite = uac_dialog(183)
    dialog.receive_response(answer(invite, 486))
    assert dialog.state is DialogState.TERMINATED


def test_bye_received_terminates_then_481() -> None:
    dialog, _ = uas_dialog()
    assert dialog.receive_request(in_dialog_request("BYE", 314160)).ok
    assert dialog.state is DialogState.TERMINATED
    assert dialog.receive_request(in_dialog_request("INFO", 314161)).status == 481
    with pytest.raises(DialogError):
        dialog.new_request("INFO", BOB_VIA)


def test_bye_2xx_and_481_and_timeout_terminate() -> None:
    dialog, _ = uac_dialog()
    bye = dialog.new_request("BYE", ALICE_VIA)
    dialog.receive_response(answer(bye, 401, record_route=None))
    assert dialog.state is DialogState.CONFIRMED  # a challenge: the TU retries
    dialog.receive_response(answer(bye, 200, record_route=None))
    assert dialog.state is DialogState.TERMINATED
    dialog, _ = uac_dialog()
    info = dialog.new_request("INFO", ALICE_VIA)
    dialog.receive_response(answer(info, 481, record_route=None))  # §12.2.1.2
    assert dialog.state is DialogState.TERMINATED
    dialog, _ = uac_dialog()
    dialog.request_timed_out(dialog.new_request("INVITE", ALICE_VIA))
    assert dialog.state is DialogState.TERMINATED and not dialog.pending_outgoing_invite


def test_transition_table_is_complete_and_terminated_absorbs() -> None:
    for state in DialogState:
        for inp in DialogInput:
            assert (state, inp) in TRANSITIONS
    assert all(
        TRANSITIONS[(DialogState.TERMINATED, i)][1] is DialogState.TERMINATED for i in DialogInput
    )


# -- glare (§14.1, §14.2, RFC 3311 §5.2) -------------------------------------------


def test_reinvite_while_ours_pending_is_491() -> None:
    dialog, _ = uas_dialog()
    ours = dialog.new_request("INVITE", BOB_VIA, body=SDP)
    assert dialog.pending_outgoing_invite
    check = dialog.receive_request(in_dialog_request("INVITE", 314160))
    assert (check.status, check.reason) == (491, "Request Pending")
    assert not dialog.pending_incoming_invite
    dialog.receive_response(answer(ours, 491, to_tag="1928301774", record_route=None))
    assert not dialog.pending_outgoing_invite
    assert dialog.receive_request(in_dialog_request("INVITE", 314161)).ok  # retry after the timer
    assert dialog.pending_incoming_invite


def test_second_incoming_reinvite_is_500_with_retry_after() -> None:
    dialog, _ = uas_dialog()
    assert dialog.receive_request(in_dialog_request("INVITE", 314160)).ok
    check = dialog.receive_request(in_dialog_request("INVITE", 314161), random.Random(7))
    assert check.status == 500 and check.retry_after is not None
    assert 0 <= check.retry_after <= 10  # §14.2
    assert check.headers == [("Retry-After", check.retry_after)]
    with pytest.raises(DialogError):  # §14.1: ours must wait for theirs to finish
        dialog.new_request("UPDATE", BOB_VIA)


def test_reinvite_crossing_initial_invite() -> None:
    callee_side, _ = uac_dialog(180)  # we called; the callee re-INVITEs the early dialog
    reinvite = in_dialog_request("INVITE", 1, from_tag="a6c85cf", to_tag="1928301774")
    assert callee_side.receive_request(reinvite).status == 491
    early, _ = uas_dialog(180)  # they called; they re-INVITE before our final response
    assert early.receive_request(in_dialog_request("INVITE", 314160)).status == 500


def test_update_allowed_in_early_dialog() -> None:
    dialog, invite = uac_dialog(183)
    update = dialog.new_request("UPDATE", ALICE_VIA, body=SDP)
    assert dialog.pending_outgoing_invite
    dialog.receive_response(answer(update, 200, record_route=None))
    assert dialog.pending_outgoing_invite  # the initial INVITE still is
    dialog.receive_response(answer(invite, 200))
    assert not dialog.pending_outgoing_invite and dialog.state is DialogState.CONFIRMED
    early, _ = uas_dialog(183)
    assert early.receive_request(in_dialog_request("UPDATE", 314160)).ok


@pytest.mark.parametrize("seed", range(20))
def test_glare_retry_delay_ranges(seed: int) -> None:
    rng = random.Random(seed)
    owner, _ = uac_dialog()  # our INVITE: we own the Call-ID
    other, _ = uas_dialog()
    for _ in range(50):
        t = owner.glare_retry_delay(rng)
        assert 2.1 <= t <= 4.0 and round(t * 100) == pytest.approx(t * 100)
        u = other.glare_retry_delay(rng)
        assert 0.0 <= u <= 2.0 and round(u * 100) == pytest.approx(u * 100)


def test_dialog_id_helpers() -> None:
    invite = invite_as_received()
    assert DialogId.of_request(invite) is None  # no To tag: outside any dialog
    req = in_dialog_request("INFO", 1)
    assert DialogId.of_request(req) == DialogId(CALL_ID, "a6c85cf", "1928301774")
    assert DialogId.of_response(answer(invite_as_sent(), 100, to_tag=None)) is None  # type: ignore[arg-type]


def test_local_contact_given_as_text_or_name_addr() -> None:
    invite = invite_as_received()
    resp = answer(invite, 200)
    as_text = Dialog.from_uas(invite, resp, BOB_CONTACT)
    as_obj = Dialog.from_uas(invite, resp, NameAddr.parse(BOB_CONTACT))
    assert str(as_text.local_contact) == str(as_obj.local_contact) == BOB_CONTACT
