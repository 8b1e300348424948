"""Hypothesis: in-dialog requests keep the dialog's identity; CSeq rules hold; the
dialog only moves along its table and raises only ``DialogError``."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switch.sip.dialog import TRANSITIONS, Dialog, DialogError, DialogState
from switch.sip.message import Request

from .dialog_support import (
    ALICE_VIA,
    BOB_CONTACT,
    BOB_VIA,
    answer,
    in_dialog_request,
    invite_as_received,
    invite_as_sent,
    wire,
)

METHODS = ["INFO", "OPTIONS", "INVITE", "UPDATE", "NOTIFY", "MESSAGE", "REFER", "PRACK"]
CONTACTS = st.integers(min_value=1, max_value=254).map(lambda n: f"<sip:bob@203.0.113.{n}>")


def confirmed(uac: bool) -> Dialog:
    if uac:
        invite = invite_as_sent()
        return Dialog.from_uac(invite, answer(invite, 200))
    invite = invite_as_received()
    return Dialog.from_uas(invite, answer(invite, 200), BOB_CONTACT)


@settings(max_examples=150)
@given(
    st.booleans(),
    st.lists(
        st.tuples(st.sampled_from(METHODS), st.sampled_from([200, 486, 491]), CONTACTS), max_size=25
    ),
)
def test_requests_carry_dialog_identity_and_increasing_cseq(
    uac: bool, script: list[tuple[str, int, str]]
) -> None:
    dialog = confirmed(uac)
    via = ALICE_VIA if uac else BOB_VIA
    peer_tag = "1928301774" if not uac else "a6c85cf"
    last_seq = dialog.local_seq
    branches: set[str] = set()
    for method, status, contact in script:
        target = str(dialog.remote_target)
        req = wire(dialog.new_request(method, via))
        assert isinstance(req, Request)
        assert req.call_id == dialog.id.call_id
        assert req.from_.tag == dialog.id.local_tag and req.to.tag == peer_tag
        assert req.cseq.method == method
        assert last_seq is None or req.cseq.seq == last_seq + 1
        last_seq = req.cseq.seq
        assert req.uri_text == target
        assert req.get_all("route") == [str(r) for r in dialog.route_set]
        assert req.top_via.branch not in branches
        branches.add(req.top_via.branch or "")
        # The peer answers; a 2xx to a target refresh moves the remote target.
        dialog.receive_response(
            answer(req, status, to_tag=peer_tag, contact=contact, record_route=None)
        )
        if status == 200 and method in ("INVITE", "UPDATE", "NOTIFY"):
            assert str(dialog.remote_target) == contact.strip("<>")
        else:
            assert str(dialog.remote_target) == target
        assert not dialog.pending_outgoing_invite  # every final response clears it
    assert dialog.state is DialogState.CONFIRMED


@given(st.lists(st.integers(min_value=0, max_value=2**32 - 1), max_size=30))
def test_remote_cseq_accepts_exactly_the_non_decreasing(seqs: list[int]) -> None:
    dialog = confirmed(uac=True)  # remote sequence starts empty
    highest: int | None = None
    for seq in seqs:
        req = in_dialog_request("INFO", seq, from_tag="a6c85cf", to_tag="1928301774")
        check = dialog.receive_request(req)
        if highest is not None and seq < highest:
            assert check.status == 500
        else:
            assert check.ok
            highest = seq
        assert dialog.remote_seq == highest


OPS = st.sampled_from(
    [
        "send INVITE",
        "send UPDATE",
        "send BYE",
        "recv INVITE",
        "recv UPDATE",
        "recv BYE",
        "answer 200",
        "answer 481",
        "answer 408",
        "respond 200",
        "respond 500",
        "terminate",
        "timeout",
    ]
)


@settings(max_examples=200)
@given(st.booleans(), st.sampled_from([180, 200]), st.lists(OPS, max_size=25))
def test_random_operations_follow_the_table(uac: bool, first: int, ops: list[str]) -> None:
    invite = invite_as_sent() if uac else invite_as_received()
    resp = answer(invite, first)
    dialog = Dialog.from_uac(invite, resp) if uac else Dialog.from_uas(invite, resp, BOB_CONTACT)
    via = ALICE_VIA if uac else BOB_VIA
    peer_tag = "a6c85cf" if uac else "1928301774"
    our_tag = dialog.id.local_tag
    remote = 10**6
    sent: list[Request] = []
    received: list[Request] = []
    allowed = {(k[0], v[1]) for k, v in TRANSITIONS.items()}
    for op in ops:
        before = dialog.state
        verb, _, arg = op.partition(" ")
        try:
            if verb == "send":
                sent.append(dialog.new_request(arg, via))
            elif verb == "recv":
                remote += 1
                req = in_dialog_request(arg, remote, from_tag=peer_tag, to_tag=our_tag)
                if dialog.receive_request(req).ok and arg != "BYE":
                    received.append(req)
            elif verb == "answer" and sent:
                dialog.receive_response(
                    answer(sent.pop(0), int(arg), to_tag=peer_tag, record_route=None)
                )
            elif verb == "respond" and received:
                dialog.send_response(
                    answer(received.pop(0), int(arg), to_tag=our_tag, record_route=None)
                )
            elif verb == "terminate":
                dialog.terminate()
            elif verb == "timeout" and sent:
                dialog.request_timed_out(sent.pop(0))
        except DialogError:
            assert verb == "send"  # only the TU's own requests can be refused
        assert before is dialog.state or (before, dialog.state) in allowed
        if dialog.state is DialogState.TERMINATED:
            assert not dialog.pending_outgoing_invite and not dialog.pending_incoming_invite
        if before is DialogState.TERMINATED:
            assert dialog.state is DialogState.TERMINATED
