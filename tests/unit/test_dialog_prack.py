"""Reliable provisional responses: RSeq/RAck (RFC 3262) on a fake clock."""

from __future__ import annotations

import random

import pytest

from switch.sip.address import Address
from switch.sip.dialog import Dialog
from switch.sip.dialog_invite import PrackTimeout
from switch.sip.dialog_prack import (
    PrackError,
    PrackUAC,
    PrackUAS,
    ProvisionalVerdict,
    RAck,
    is_reliable,
    supports_100rel,
)
from switch.sip.errors import MalformedMessage
from switch.sip.message import Request, Response

from .dialog_support import (
    ALICE_VIA,
    BOB_CONTACT,
    SDP,
    answer,
    in_dialog_request,
    invite_as_received,
    invite_as_sent,
    sent,
    wire,
)
from .test_transaction_support import fire_all

ALICE = Address("udp", "192.0.2.10", 5060)
V = ProvisionalVerdict


def reliable(rseq: int | None, status: int = 183, to_tag: str = "a6c85cf") -> Response:
    headers: tuple[tuple[str, object], ...] = (("Require", "100rel"),)
    if rseq is not None:
        headers += (("RSeq", rseq),)
    return answer(invite_as_sent(), status, to_tag, headers=headers)


# -- UAC side (§4, §7.2) -----------------------------------------------------------


def test_prack_for_reliable_1xx() -> None:
    invite = invite_as_sent()
    first = reliable(988789)
    dialog = Dialog.from_uac(invite, first)
    uac = PrackUAC()
    decision = uac.receive_provisional(first)
    assert decision.verdict is V.NEW and decision.needs_prack
    assert decision.rack == RAck(988789, 314159, "INVITE")
    assert decision.rack is not None
    prack = wire(PrackUAC.build_prack(dialog, decision.rack, ALICE_VIA, body=SDP))
    assert isinstance(prack, Request) and prack.method == "PRACK"
    assert prack.get("rack") == "988789 314159 INVITE"
    assert prack.cseq.seq == 314160 and prack.cseq.method == "PRACK"  # a new CSeq
    assert prack.get("to") == "Bob <sip:bob@example.net>;tag=a6c85cf"
    assert prack.body == SDP


def test_retransmission_and_out_of_order_are_ignored() -> None:
    uac = PrackUAC()
    assert uac.receive_provisional(reliable(10)).verdict is V.NEW
    assert uac.receive_provisional(reliable(10)).verdict is V.RETRANSMISSION  # same RSeq
    assert uac.receive_provisional(reliable(12)).verdict is V.OUT_OF_ORDER  # 11 is missing
    assert uac.last_rseq == 10
    assert uac.receive_provisional(reliable(11, 180)).verdict is V.NEW
    assert uac.receive_provisional(reliable(12)).verdict is V.NEW  # now in order
    assert uac.receive_provisional(reliable(11)).verdict is V.RETRANSMISSION  # older


def test_unreliable_and_invalid_provisionals() -> None:
    uac = PrackUAC()
    assert uac.receive_provisional(answer(invite_as_sent(), 180)).verdict is V.UNRELIABLE
    assert not is_reliable(reliable(5, status=100))  # a 100 is never reliable
    assert uac.receive_provisional(reliable(None)).verdict is V.INVALID  # no RSeq
    assert uac.receive_provisional(reliable(0)).verdict is V.INVALID
    assert uac.last_rseq is None


def test_forks_number_independently() -> None:
    a, b = PrackUAC(), PrackUAC()
    assert a.receive_provisional(reliable(100, to_tag="fork-a")).verdict is V.NEW
    assert b.receive_provisional(reliable(7, to_tag="fork-b")).verdict is V.NEW


def test_rack_parse_round_trip_and_errors() -> None:
    assert RAck.parse("776656 1 INVITE") == RAck(776656, 1, "INVITE")
    assert str(RAck.parse("  776656   1  INVITE ")) == "776656 1 INVITE"
    for bad in ("", "1 INVITE", "x 1 INVITE", "1 2 IN<VITE", "1 2 3 4"):
        with pytest.raises(MalformedMessage):
            RAck.parse(bad)


# -- UAS side (§3) ------------------------------------------------------------------


def prack_for(rseq: int, cseq: int = 314159, method: str = "INVITE") -> Request:
    req = in_dialog_request("PRACK", 314160)
    req.set("RAck", f"{rseq} {cseq} {method}")
    return req


def test_uas_rseq_first_random_then_plus_one() -> None:
    uas = PrackUAS(ALICE, rng=random.Random(1))
    first = uas.next_rseq()
    assert 1 <= first <= 2**31 - 1 and uas.next_rseq() == first + 1
    assert supports_100rel(invite_as_received())


def test_uas_reliable_1xx_retransmitted_until_prack() -> None:
    invite = invite_as_received()
    uas = PrackUAS(ALICE, initial_rseq=500, owner="leg-a")
    ringing = uas.send_reliable(answer(invite, 180), now=0.0)
    assert ringing.get("require") == "100rel" and ringing.get("rseq") == "500"
    assert Dialog.from_uas(invite, ringing, BOB_CONTACT).state.value == "Early"
    assert [t for t, _ in fire_all(uas, limit=1.5)] == [0.5, 1.5]
    assert sent(uas.handle_timer(3.5)) == [ringing]
    with pytest.raises(PrackError):  # §3: one unacknowledged reliable 1xx at a time
        uas.send_reliable(answer(invite, 183), now=3.6)
    assert uas.receive_prack(prack_for(499)) == 481  # matches nothing unacknowledged
    assert uas.receive_prack(prack_for(500, cseq=1)) == 481
    assert uas.receive_prack(prack_for(500)) == 200
    assert uas.next_timer() is None and not uas.unacknowledged
    assert uas.receive_prack(prack_for(500)) == 481  # already acknowledged
    second = uas.send_reliable(answer(invite, 183), now=4.0)
    assert second.get("rseq") == "501"


def test_uas_prack_timeout_and_final_response() -> None:
    invite = invite_as_received()
    uas = PrackUAS(ALICE, initial_rseq=1, owner="leg-a")
    uas.send_reliable(answer(invite, 183, body=SDP), now=0.0)
    assert uas.unacknowledged_with_body()  # §3: no 2xx before its PRACK
    log = fire_all(uas)
    assert log[-1] == (32.0, [PrackTimeout(1, 314159, "leg-a")])
    uas2 = PrackUAS(ALICE, initial_rseq=1)
    uas2.send_reliable(answer(invite, 180), now=0.0)
    uas2.final_sent()
    assert uas2.next_timer() is None


def test_uas_rejects_bad_prack_and_non_1xx() -> None:
    uas = PrackUAS(ALICE, initial_rseq=1)
    bare = in_dialog_request("PRACK", 314160)
    assert uas.receive_prack(bare) == 400  # no RAck at all
    with pytest.raises(PrackError):
        uas.send_reliable(answer(invite_as_received(), 200), now=0.0)
