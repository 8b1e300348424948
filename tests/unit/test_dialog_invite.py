"""2xx and reliable-1xx retransmission (RFC 3261 §13.3.1.4, RFC 3262 §3) on a fake clock."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from switch.sip.address import Address
from switch.sip.dialog import Dialog
from switch.sip.dialog_invite import (
    TRANSITIONS,
    AckTimeout,
    InviteSessionUAS,
    PrackTimeout,
    ReliableProvisionalUAS,
    RetransmitInput,
    RetransmitState,
)
from switch.sip.events import AckReceived, RequestReceived, Send
from switch.sip.message import Request
from switch.sip.timers import TimerConfig
from switch.sip.transaction_layer import TransactionLayer

from .dialog_support import (
    ALICE_VIA,
    BOB_CONTACT,
    answer,
    invite_as_received,
    invite_as_sent,
    sent,
    wire,
)
from .test_transaction_support import fire_all, of_type

ALICE = Address("udp", "192.0.2.10", 5060)
BOB = Address("udp", "198.51.100.20", 5062)
RETRANSMITS = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]


DEFAULT = TimerConfig()


def session(now: float = 0.0, timers: TimerConfig = DEFAULT) -> InviteSessionUAS:
    ok = answer(invite_as_received(), 200)
    return InviteSessionUAS(ok, ALICE, now, timers, owner="leg-a")


def test_2xx_retransmitted_t1_doubling_to_t2_then_ack_timeout() -> None:
    s = session()
    log = fire_all(s)
    assert [t for t, _ in log] == [*RETRANSMITS, 32.0]
    assert all(sent(out) == [s.response] for _, out in log[:-1])
    assert all(o.dest == ALICE for _, out in log[:-1] for o in of_type(out, Send))
    assert log[-1][1] == [AckTimeout(314159, "leg-a")]  # §13.3.1.4: the TU sends BYE
    assert s.state is RetransmitState.TIMED_OUT and s.next_timer() is None
    s.ack_received()  # too late: absorbed
    assert s.state is RetransmitState.TIMED_OUT


def test_instants_are_relative_to_the_start_and_follow_the_config() -> None:
    s = session(now=100.0, timers=TimerConfig(t1=0.2, t2=1.0))
    expected = [0.2, 0.6, 1.4, *(2.4 + k for k in range(11)), 12.8]  # T2 cap = 1 s
    assert [round(t - 100, 6) for t, _ in fire_all(s)] == [round(t, 6) for t in expected]


def test_ack_stops_retransmission() -> None:
    s = session()
    assert [t for t, _ in fire_all(s, limit=3.5)] == [0.5, 1.5, 3.5]
    assert s.ack_received()
    assert s.state is RetransmitState.ACKNOWLEDGED and s.next_timer() is None
    assert s.handle_timer(100.0) == []
    assert s.ack_received()  # ACK retransmissions absorbed


def test_ack_for_another_invite_does_not_stop_it() -> None:
    s = session()
    other = invite_as_received(cseq=7)
    ack = Request("ACK", "sip:bob@198.51.100.20:5062", list(other.fields))
    ack.set("CSeq", "7 ACK")
    assert not s.ack_received(ack)
    assert s.next_timer() == 0.5


def test_stop_and_late_timer_call() -> None:
    s = session()
    (only,) = sent(s.handle_timer(10.0))
    assert only is s.response and s.next_timer() == 11.0  # no burst after a stall
    s.stop()
    assert s.state is RetransmitState.STOPPED and s.next_timer() is None


def test_reliable_provisional_gives_prack_timeout() -> None:
    ringing = answer(invite_as_received(), 180, headers=(("Require", "100rel"), ("RSeq", 17)))
    r = ReliableProvisionalUAS(ringing, 17, ALICE, 0.0, owner="leg-a")
    log = fire_all(r)
    assert [t for t, _ in log] == [*RETRANSMITS, 32.0]
    assert log[-1][1] == [PrackTimeout(17, 314159, "leg-a")]


@given(st.lists(st.sampled_from(["ack", "stop", "timer"]), max_size=30))
def test_every_step_follows_the_table(steps: list[str]) -> None:
    s = session()
    for step in steps:
        before = s.state
        if step == "timer":
            at = s.next_timer()
            if at is None:
                continue
            s.handle_timer(at)
        elif step == "ack":
            s.ack_received()
        else:
            s.stop()
        if before is not s.state:
            assert any(k[0] is before and v[1] is s.state for k, v in TRANSITIONS.items())
        if s.state is not RetransmitState.RETRANSMITTING:
            assert s.next_timer() is None
    for state in RetransmitState:  # TU inputs are accepted in every state
        for inp in (RetransmitInput.ACKNOWLEDGED, RetransmitInput.STOP):
            assert (state, inp) in TRANSITIONS


def test_end_to_end_2xx_ack_through_the_transaction_layers() -> None:
    """Alice's dialog ACKs Bob's 2xx; the retransmitted 2xx gets the same ACK."""
    uas_layer, uac_layer = TransactionLayer(), TransactionLayer()
    invite = invite_as_sent()
    _, out = uac_layer.send_request(invite, BOB, 0.0)
    received = wire(sent(out)[0])
    assert isinstance(received, Request)
    (ev,) = of_type(uas_layer.receive_request(received, ALICE, ALICE, 0.0), RequestReceived)
    ok = answer(received, 200, record_route=None)
    bob = Dialog.from_uas(received, ok, BOB_CONTACT)
    (sent_ok,) = sent(uas_layer.respond(ev.handle, ok, 0.0))
    keeper = InviteSessionUAS(ok, ALICE, 0.0)

    alice_ok = wire(sent_ok)
    uac_out = uac_layer.receive_response(alice_ok, BOB, 0.01)  # type: ignore[arg-type]
    assert [o.response.status for o in uac_out if hasattr(o, "response")] == [200]
    alice = Dialog.from_uac(invite, alice_ok)  # type: ignore[arg-type]
    ack = alice.ack_for_2xx(invite.cseq.seq, ALICE_VIA)

    # The ACK is lost; Bob's keeper retransmits, Alice answers with the same ACK.
    (again,) = sent(keeper.handle_timer(0.5))
    retrans = wire(again)
    uac_layer.receive_response(retrans, BOB, 0.51)  # type: ignore[arg-type]
    outcome = alice.receive_response(retrans)  # type: ignore[arg-type]
    assert outcome.retransmission and outcome.ack is ack

    (got,) = of_type(uas_layer.receive_request(wire(ack), ALICE, ALICE, 0.52), AckReceived)  # type: ignore[arg-type]
    assert bob.receive_request(got.request).ok
    assert keeper.ack_received(got.request)
    assert keeper.next_timer() is None
