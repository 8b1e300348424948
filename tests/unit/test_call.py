"""The B2BUA call across legs, driven without sockets: a fake switch around it."""

from __future__ import annotations

from dataclasses import dataclass, field

from switch.b2bua.call import ELSEWHERE, Attempt, Call, CallState, Outcome, Target
from switch.sip.address import Address
from switch.sip.builders import make_response
from switch.sip.dialog import DialogId
from switch.sip.events import ResponseReceived, Send, TransactionTimeout
from switch.sip.headers import Via
from switch.sip.message import Request, Response, parse_message
from switch.sip.timers import TimerConfig

A = Address("udp", "10.0.0.1", 5060)
PHONE1 = Address("udp", "10.0.0.11", 5060)
PHONE2 = Address("udp", "10.0.0.12", 5060)
SDP = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

INVITE = (
    "INVITE sip:101@demo.test SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKa1;rport=5060;received=10.0.0.1\r\n"
    "Max-Forwards: 70\r\nFrom: <sip:100@demo.test>;tag=caller\r\nTo: <sip:101@demo.test>\r\n"
    "Call-ID: a-call\r\nCSeq: 2 INVITE\r\nContact: <sip:100@10.0.0.1:5060>\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n\r\n"
).encode() + SDP


@dataclass
class Timer:
    when: float
    callback: object
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeEnv:
    """Records what the call does; the test plays the network and the clock."""

    timers: TimerConfig = TimerConfig()
    clock: float = 0.0
    responses: list[tuple[int, Response]] = field(default_factory=list)
    requests: list[tuple[Request, Address, object]] = field(default_factory=list)
    cancels: list[tuple[int, str | None]] = field(default_factory=list)
    scheduled: list[Timer] = field(default_factory=list)
    sent: list[object] = field(default_factory=list)
    dialogs: dict[DialogId, tuple[Call, str]] = field(default_factory=dict)
    over: list[Call] = field(default_factory=list)
    answers: list[Call] = field(default_factory=list)

    def respond(self, handle: int, resp: Response, now: float) -> list[object]:
        self.responses.append((handle, resp))
        return []

    def send_request(self, req: Request, dest: Address, now: float, owner: object):  # type: ignore[no-untyped-def]
        self.requests.append((req, dest, owner))
        return len(self.requests), []

    def cancel(self, handle: int, now: float, reason: str | None) -> list[object]:
        self.cancels.append((handle, reason))
        return []

    def via(self, dest: Address) -> Via:
        return Via("UDP", "192.0.2.1", 5060, (("branch", "z9hG4bKx"), ("rport", None)))

    def contact(self, dest: Address) -> str:
        return "<sip:centrala@192.0.2.1:5060>"

    def call_at(self, when: float, callback):  # type: ignore[no-untyped-def]
        timer = Timer(when, callback)
        self.scheduled.append(timer)
        return timer

    def send(self, outputs: list[object]) -> None:
        self.sent.extend(outputs)

    def now(self) -> float:
        return self.clock

    def index(self, dialog_id: DialogId, call: Call, side: str) -> None:
        self.dialogs[dialog_id] = (call, side)

    def unindex(self, dialog_id: DialogId) -> None:
        self.dialogs.pop(dialog_id, None)

    def answered(self, call: Call) -> None:
        self.answers.append(call)

    def ended(self, call: Call) -> None:
        self.over.append(call)

    def fire(self, until: float) -> None:
        """Run the timers due by ``until``, in time order."""
        while True:
            due = sorted((t for t in self.scheduled if not t.cancelled and t.when <= until),
                         key=lambda t: t.when)
            if not due:
                return
            timer = due[0]
            timer.cancelled = True
            self.clock = timer.when
            timer.callback()  # type: ignore[operator]


class Plan:
    def __init__(self, *steps: Attempt | Outcome) -> None:
        self.steps = list(steps)
        self.seen: list[Outcome] = []

    def next(self, call: Call, attempt: Attempt, outcome: Outcome) -> Attempt | Outcome:
        self.seen.append(outcome)
        return self.steps.pop(0) if self.steps else outcome


def target(dest: Address, label: str = "101", **kw: object) -> Target:
    return Target(f"sip:101@{dest.host}", "<sip:101@demo.test>", dest, label,
                  '"Alice" <sip:100@demo.test>', **kw)  # type: ignore[arg-type]


def new_call(*steps: Attempt | Outcome) -> tuple[Call, FakeEnv, Plan]:
    env, plan = FakeEnv(), Plan(*steps)
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    return Call(env, plan, req, 1, A, 0.0), env, plan  # type: ignore[arg-type]


def reply(env: FakeEnv, index: int, status: int, tag: str, body: bytes = b"") -> list[object]:
    req, dest, leg = env.requests[index]
    resp = make_response(req, status, to_tag=tag)
    resp.add("Contact", f"<sip:101@{dest.host}:5060>")
    if body:
        resp.add("Content-Type", "application/sdp")
    resp.body = body
    resp = parse_message(bytes(resp))  # as it would arrive
    return leg(ResponseReceived(index + 1, resp, leg), env.clock)  # type: ignore[operator]


def test_fork_first_answer_wins_and_the_other_is_cancelled_elsewhere() -> None:
    call, env, _ = new_call()
    call.start(Attempt((target(PHONE1), target(PHONE2)), 20, "extension"), 0.0)
    invites = [r for r, _, _ in env.requests]
    assert [r.method for r in invites] == ["INVITE", "INVITE"]
    assert all(r.body == SDP and r.call_id != "a-call" for r in invites)
    assert invites[0].max_forwards == 69 and invites[0].from_.display == '"Alice"'
    reply(env, 0, 180, "p1")
    assert [(s, r.status) for s, r in env.responses] == [(1, 180)]
    out = reply(env, 1, 200, "p2", SDP)
    acks = [o.message for o in out if isinstance(o, Send)]
    assert [a.method for a in acks] == ["ACK"] and acks[0].cseq.seq == 1
    assert env.cancels == [(1, ELSEWHERE)]  # the first phone's INVITE, with the Reason
    (_, final) = env.responses[-1]
    assert final.status == 200 and final.body == SDP and final.to.tag == call.a_tag
    assert call.state is CallState.ANSWERED and call.record.callee == "101"
    assert env.answers == [call]  # the callee is busy now (call waiting off)


def test_a_2xx_is_retransmitted_until_the_ack() -> None:
    call, env, _ = new_call()
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    reply(env, 0, 200, "p1", SDP)
    env.fire(until=1.6)  # T1 = 0.5: at 0.5 and 1.5
    resent = [o.message for o in env.sent if isinstance(o, Send)]
    assert len(resent) == 2 and all(m.status == 200 for m in resent)  # type: ignore[union-attr]
    ack = INVITE.replace(b"INVITE sip:101@demo.test", b"ACK sip:centrala@192.0.2.1")
    ack = ack.replace(b"2 INVITE", b"2 ACK").replace(
        b"To: <sip:101@demo.test>", f"To: <sip:101@demo.test>;tag={call.a_tag}".encode())
    call.on_a_ack(parse_message(ack), 1.7)  # type: ignore[arg-type]
    env.fire(until=40.0)
    assert len([o for o in env.sent if isinstance(o, Send)]) == 2
    assert call.state is CallState.ANSWERED  # no ACK timeout: the call lives


def test_no_ack_ends_the_call_with_bye_both_ways() -> None:
    call, env, _ = new_call()
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    reply(env, 0, 200, "p1", SDP)
    env.fire(until=33.0)
    assert call.state is CallState.ENDED and env.over == [call]
    byes = [r for r, _, _ in env.requests if r.method == "BYE"]
    assert len(byes) == 2 and not env.dialogs  # every dialog left the index


def test_bye_from_the_caller_ends_the_callee_leg() -> None:
    call, env, _ = new_call()
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    reply(env, 0, 200, "p1", SDP)
    bye = INVITE.split(b"Content-Type")[0].replace(b"INVITE sip:101@demo.test", b"BYE sip:centrala@192.0.2.1")
    bye = bye.replace(b"2 INVITE", b"3 BYE").replace(b"branch=z9hG4bKa1", b"branch=z9hG4bKb1")
    bye = bye.replace(b"To: <sip:101@demo.test>", f"To: <sip:101@demo.test>;tag={call.a_tag}".encode())
    call.on_request("a", parse_message(bye + b"Content-Length: 0\r\n\r\n"), 7, 5.0)  # type: ignore[arg-type]
    assert (7, 200) in [(h, r.status) for h, r in env.responses]
    (bye_b, dest, _) = env.requests[-1]
    assert bye_b.method == "BYE" and dest == PHONE1 and bye_b.to.tag == "p1"
    assert call.state is CallState.ENDED and call.record.side == "caller"
    assert call.record.disposition == "answered"


def test_all_busy_asks_the_plan_and_the_caller_gets_486() -> None:
    call, env, plan = new_call()
    call.start(Attempt((target(PHONE1), target(PHONE2)), 20, "extension"), 0.0)
    reply(env, 0, 486, "p1")
    assert env.responses == []  # the other phone still rings
    reply(env, 1, 486, "p2")
    assert plan.seen == [Outcome("busy", 486)]
    assert env.responses[-1][1].status == 486 and call.record.disposition == "busy"


def test_ring_timeout_cancels_and_forwards_to_the_next_attempt() -> None:
    forward = Attempt((target(PHONE2, "102"),), 10, "extension")
    call, env, plan = new_call(forward)
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    env.fire(until=20.0)
    assert plan.seen == [Outcome("no_answer", 480, "No answer")]
    assert env.cancels == [(1, None)]
    assert env.requests[-1][1] == PHONE2  # the forward target rings now
    env.fire(until=31.0)  # and does not answer either: the plan has no more steps
    assert env.responses[-1][1].status == 480 and call.state is CallState.ENDED


def test_caller_cancel_gets_487_and_cancels_the_forks() -> None:
    call, env, _ = new_call()
    call.start(Attempt((target(PHONE1), target(PHONE2)), 20, "extension"), 0.0)
    reply(env, 0, 180, "p1")
    call.on_a_cancel(2.0)
    assert sorted(h for h, _ in env.cancels) == [1, 2]
    assert env.responses[-1][1].status == 487 and call.record.disposition == "cancelled"
    assert call.record.side == "caller" and env.over == [call]


def test_a_challenging_trunk_gets_the_invite_again_with_credentials() -> None:
    call, env, _ = new_call()
    trunk = Address("udp", "192.0.2.50", 5060)
    call.start(Attempt((target(trunk, "trunk:carrier", credentials=("t1", "pw")),), None, "trunk"), 0.0)
    req, _, leg = env.requests[0]
    challenge = make_response(req, 407, to_tag="c1")
    challenge.add("Proxy-Authenticate", 'Digest realm="carrier", nonce="n1", qop="auth"')
    leg(ResponseReceived(1, parse_message(bytes(challenge)), leg), 0.1)  # type: ignore[operator]
    retry, dest, _ = env.requests[1]
    assert retry.method == "INVITE" and dest == trunk and retry.cseq.seq == req.cseq.seq + 1
    assert retry.call_id == req.call_id and retry.from_.tag == req.from_.tag
    assert retry.get("Proxy-Authorization", ).startswith('Digest username="t1"')  # type: ignore[union-attr]
    assert retry.top_via.branch != req.top_via.branch
    assert env.responses == []  # the caller hears nothing of it


def test_b_legs_carry_the_call_reference_for_loop_detection() -> None:
    call, env, _ = new_call()
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    (invite, _, _) = env.requests[0]
    assert invite.call_id.rpartition("@")[2] == call.ref


# -- session timers per leg (RFC 4028) ---------------------------------------------


def answered(invite: bytes = INVITE, b_headers: tuple[tuple[str, str], ...] = ()) -> tuple[Call, FakeEnv]:
    env, plan = FakeEnv(), Plan()
    req = parse_message(invite)
    call = Call(env, plan, req, 1, A, 0.0)  # type: ignore[arg-type, arg-type]
    call.start(Attempt((target(PHONE1),), 20, "extension"), 0.0)
    sent, _, leg = env.requests[0]
    assert sent.get("Session-Expires") == "1800" and "timer" in (sent.get("Supported") or "")
    resp = make_response(sent, 200, to_tag="p1")
    resp.add("Contact", "<sip:101@10.0.0.11:5060>")
    for name, value in b_headers:
        resp.add(name, value)
    resp.add("Content-Type", "application/sdp")
    resp.body = SDP
    leg(ResponseReceived(1, parse_message(bytes(resp)), leg), 0.0)  # type: ignore[operator]
    ack = INVITE.replace(b"INVITE sip:101@demo.test", b"ACK sip:centrala@192.0.2.1")
    ack = ack.replace(b"2 INVITE", b"2 ACK").replace(
        b"To: <sip:101@demo.test>", f"To: <sip:101@demo.test>;tag={call.a_tag}".encode())
    call.on_a_ack(parse_message(ack), 0.1)  # type: ignore[arg-type]
    return call, env


def test_we_refresh_the_b_leg_when_it_makes_us_the_refresher() -> None:
    call, env = answered(b_headers=(("Session-Expires", "120;refresher=uac"),
                                    ("Allow", "INVITE, ACK, BYE, UPDATE")))
    env.fire(until=59.0)
    assert [r.method for r, _, _ in env.requests] == ["INVITE"]
    env.fire(until=60.0)  # half of 120 s
    (update, dest, _) = env.requests[-1]
    assert update.method == "UPDATE" and dest == PHONE1 and update.body == b""
    assert update.get("Session-Expires") == "120;refresher=uac"
    assert call.state is CallState.ANSWERED


def test_a_peer_without_update_is_refreshed_by_reinvite_with_the_same_sdp() -> None:
    call, env = answered(b_headers=(("Session-Expires", "120;refresher=uac"),))
    env.fire(until=60.0)
    (reinvite, _, _) = env.requests[-1]
    assert reinvite.method == "INVITE" and reinvite.body == SDP and reinvite.to.tag == "p1"


def test_a_caller_that_must_refresh_and_does_not_loses_the_call() -> None:
    invite = INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 70\r\nSupported: timer\r\n"
                            b"Session-Expires: 90;refresher=uac")
    call, env = answered(invite)
    (_, ok) = env.responses[-1]
    assert ok.status == 200 and ok.get("Session-Expires") == "90;refresher=uac"
    assert "timer" in (ok.get("Require") or "")
    env.fire(until=59.0)  # 90 - min(32, 30) = 60 s
    assert call.state is CallState.ANSWERED
    env.fire(until=60.0)
    assert call.state is CallState.ENDED and call.record.cause == 408
    assert sorted(r.method for r, _, _ in env.requests if r.method == "BYE") == ["BYE", "BYE"]


def test_a_refresh_update_is_answered_locally_and_restarts_the_timer() -> None:
    invite = INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 70\r\nSupported: timer\r\n"
                            b"Session-Expires: 90;refresher=uac")
    call, env = answered(invite)
    update = (
        "UPDATE sip:centrala@192.0.2.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKu1\r\nMax-Forwards: 70\r\n"
        f"From: <sip:100@demo.test>;tag=caller\r\nTo: <sip:101@demo.test>;tag={call.a_tag}\r\n"
        "Call-ID: a-call\r\nCSeq: 3 UPDATE\r\nContact: <sip:100@10.0.0.1:5060>\r\n"
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    requests_before = len(env.requests)
    call.on_request("a", parse_message(update), 9, 50.0)  # type: ignore[arg-type]
    assert env.responses[-1][0] == 9 and env.responses[-1][1].status == 200
    assert len(env.requests) == requests_before  # not relayed to the other leg
    env.fire(until=105.0)  # the deadline moved to 50 + 60
    assert call.state is CallState.ANSWERED
    env.fire(until=110.0)
    assert call.state is CallState.ENDED


def test_a_relayed_reinvite_keeps_each_legs_session_timer() -> None:
    invite = INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 70\r\nSupported: timer\r\n"
                            b"Session-Expires: 1800;refresher=uac")
    call, env = answered(invite, b_headers=(("Session-Expires", "1800;refresher=uas"),))
    reinvite = (
        "INVITE sip:centrala@192.0.2.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKr1\r\nMax-Forwards: 70\r\n"
        f"From: <sip:100@demo.test>;tag=caller\r\nTo: <sip:101@demo.test>;tag={call.a_tag}\r\n"
        "Call-ID: a-call\r\nCSeq: 3 INVITE\r\nContact: <sip:100@10.0.0.1:5060>\r\n"
        "Supported: timer\r\nSession-Expires: 1800;refresher=uac\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(SDP)}\r\n\r\n"
    ).encode() + SDP.replace(b"t=0 0", b"t=0 0\r\na=sendonly")
    call.on_request("a", parse_message(reinvite), 11, 100.0)  # type: ignore[arg-type]
    relayed, _, owner = env.requests[-1]
    assert relayed.method == "INVITE" and b"sendonly" in relayed.body
    assert relayed.get("Session-Expires") == "1800;refresher=uas"  # B refreshes, as before
    ok = make_response(relayed, 200)
    ok.add("Session-Expires", "1800;refresher=uas")
    ok.add("Content-Type", "application/sdp")
    ok.body = SDP
    owner(ResponseReceived(2, parse_message(bytes(ok)), owner), 100.5)  # type: ignore[operator]
    handle, answer = env.responses[-1]
    assert handle == 11 and answer.status == 200
    assert answer.get("Session-Expires") == "1800;refresher=uac"  # A still refreshes: it says so


def test_a_retransmitted_2xx_to_a_relayed_reinvite_is_only_acked_again() -> None:
    call, env = answered()
    reinvite = (
        "INVITE sip:centrala@192.0.2.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKr2\r\nMax-Forwards: 70\r\n"
        f"From: <sip:100@demo.test>;tag=caller\r\nTo: <sip:101@demo.test>;tag={call.a_tag}\r\n"
        "Call-ID: a-call\r\nCSeq: 3 INVITE\r\nContact: <sip:100@10.0.0.1:5060>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(SDP)}\r\n\r\n"
    ).encode() + SDP
    call.on_request("a", parse_message(reinvite), 11, 100.0)  # type: ignore[arg-type]
    relayed, _, owner = env.requests[-1]
    ok = make_response(relayed, 200)
    ok.add("Content-Type", "application/sdp")
    ok.body = SDP
    for when in (100.5, 101.0):  # the second 200: B never got our ACK (RFC 6026 §8.4)
        out = owner(ResponseReceived(2, parse_message(bytes(ok)), owner), when)  # type: ignore[operator]
        assert [o.message.method for o in out if isinstance(o, Send)] == ["ACK"]
    assert [(h, r.status) for h, r in env.responses if h == 11] == [(11, 200)]  # answered once
    owner(TransactionTimeout(2, owner), 140.0)  # type: ignore[operator]
    assert [(h, r.status) for h, r in env.responses if h == 11] == [(11, 200)]


def test_an_ended_call_is_freed_without_the_cyclic_gc() -> None:
    """Ended calls must not wait for a full GC pass (it stalls the loop ~1 s)."""
    import gc
    import weakref

    gc.disable()
    try:
        call, env = answered(b_headers=(("Session-Expires", "120;refresher=uac"),))
        call.hangup(5.0, "caller", 200)
        ref = weakref.ref(call)
        env.requests.clear()  # the fake keeps owners (legs) the real layer drops
        env.scheduled.clear()
        env.over.clear()
        env.answers.clear()
        del call
        assert ref() is None
    finally:
        gc.enable()
