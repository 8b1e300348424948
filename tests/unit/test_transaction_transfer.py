"""A client layer and a server layer talking through a fake network.

``Network`` carries every ``Send`` across (serialised and parsed again, as on
the wire), can drop chosen messages, and advances one fake clock to the
earliest deadline of either side.  Scripted TUs answer on the server side.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from switch.sip.builders import make_response
from switch.sip.events import (
    AckReceived,
    CancelReceived,
    Output,
    RequestReceived,
    ResponseReceived,
    Send,
    TransactionTimeout,
)
from switch.sip.message import Request, Response, parse_message
from switch.sip.timers import earliest
from switch.sip.transaction_layer import TransactionLayer

from .test_transaction_support import UAC_UDP, UAS_UDP, request

Drop = Callable[[Request | Response, int], bool]  # (message, how many such sent so far)


def label(msg: Request | Response) -> str:
    return msg.method if isinstance(msg, Request) else f"{msg.status}/{msg.cseq.method}"


class Network:
    def __init__(self, drop: Callable[[Request | Response, int], bool] | None = None) -> None:
        self.uac = TransactionLayer()
        self.uas = TransactionLayer()
        self.now = 0.0
        self.drop = drop or (lambda msg, n: False)
        self.queue: deque[tuple[str, Request | Response]] = deque()
        self.wire: list[tuple[float, str, str]] = []  # (time, "uac"/"uas", label), delivered only
        self.seen: dict[str, int] = {}
        self.uac_events: list[Output] = []
        self.uas_events: list[Output] = []
        self.uas_tu: Callable[[Network, Output], None] = lambda net, ev: None
        self.uac_tu: Callable[[Network, Output], None] = lambda net, ev: None

    def post(self, side: str, outputs: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, Send):
                key = f"{side}:{label(o.message)}"
                n = self.seen.get(key, 0)
                self.seen[key] = n + 1
                if not self.drop(o.message, n):
                    self.queue.append((side, o.message))
            elif side == "uac":
                self.uac_events.append(o)
                self.uac_tu(self, o)
            else:
                self.uas_events.append(o)
                self.uas_tu(self, o)

    def deliver(self) -> None:
        while self.queue:
            side, msg = self.queue.popleft()
            self.wire.append((self.now, side, label(msg)))
            m = parse_message(bytes(msg))
            if side == "uac" and isinstance(m, Request):
                self.post("uas", self.uas.receive_request(m, UAC_UDP, UAC_UDP, self.now))
            elif side == "uas" and isinstance(m, Response):
                self.post("uac", self.uac.receive_response(m, UAS_UDP, self.now))
            else:  # pragma: no cover - the scenarios send nothing else
                raise AssertionError(f"unexpected {side} {m!r}")

    def run(self, until: float = 1000.0) -> None:
        self.deliver()
        while True:
            t = earliest(self.uac.next_timer(), self.uas.next_timer())
            if t is None or t > until:
                return
            self.now = t
            self.post("uac", self.uac.handle_timer(t))
            self.post("uas", self.uas.handle_timer(t))
            self.deliver()

    def send(self, req: Request, owner: object = "leg-a") -> int:
        handle, out = self.uac.send_request(req, UAS_UDP, self.now, owner)
        self.post("uac", out)
        return handle

    def respond(self, handle: int, resp: Response) -> None:
        self.post("uas", self.uas.respond(handle, resp, self.now))

    def delivered(self, side: str, what: str) -> list[float]:
        return [t for t, s, lbl in self.wire if s == side and lbl == what]

    def assert_idle(self) -> None:
        assert len(self.uac) == 0 and len(self.uas) == 0
        assert self.uac.next_timer() is None and self.uas.next_timer() is None


def answer(status: int, to_tag: str = "uas-1") -> Callable[[Network, Output], None]:
    def tu(net: Network, ev: Output) -> None:
        if isinstance(ev, RequestReceived):
            net.respond(ev.handle, make_response(ev.request, status, to_tag=to_tag))

    return tu


def statuses(events: list[Output]) -> list[int]:
    return [e.response.status for e in events if isinstance(e, ResponseReceived)]


def test_lossless_invite_rejected() -> None:
    net = Network()
    net.uas_tu = answer(486)
    net.send(request("INVITE", branch="z9hG4bK-x1"))
    net.run()
    assert statuses(net.uac_events) == [100, 486]
    assert [type(e) for e in net.uas_events] == [RequestReceived]  # the ACK is absorbed
    assert net.delivered("uac", "INVITE") == [0.0]
    assert net.delivered("uac", "ACK") == [0.0]
    net.assert_idle()


def test_lost_invites_are_retransmitted_on_timer_a() -> None:
    net = Network(drop=lambda m, n: label(m) == "INVITE" and n < 3)
    net.uas_tu = answer(404)
    net.send(request("INVITE", branch="z9hG4bK-x2"))
    net.run()
    assert net.delivered("uac", "INVITE") == [3.5]  # sent at 0, 0.5, 1.5 were lost
    assert [type(e) for e in net.uas_events] == [RequestReceived]
    assert statuses(net.uac_events) == [100, 404]
    net.assert_idle()


def test_lost_final_is_retransmitted_on_timer_g() -> None:
    net = Network(drop=lambda m, n: label(m) == "486/INVITE" and n < 2)
    net.uas_tu = answer(486)
    net.send(request("INVITE", branch="z9hG4bK-x3"))
    net.run()
    assert net.delivered("uas", "486/INVITE") == [1.5]
    assert net.delivered("uac", "ACK") == [1.5]
    assert statuses(net.uac_events) == [100, 486]
    assert not [e for e in net.uas_events if isinstance(e, TransactionTimeout)]
    net.assert_idle()


def test_lost_ack_is_resent_for_the_retransmitted_final() -> None:
    net = Network(drop=lambda m, n: label(m) == "ACK" and n < 1)
    net.uas_tu = answer(600)
    net.send(request("INVITE", branch="z9hG4bK-x4"))
    net.run()
    assert net.delivered("uas", "600/INVITE") == [0.0, 0.5]
    assert net.delivered("uac", "ACK") == [0.5]
    assert statuses(net.uac_events) == [100, 600]  # the retransmission is not passed up
    net.assert_idle()


def test_ack_never_arrives_timer_h() -> None:
    net = Network(drop=lambda m, n: label(m) == "ACK")
    net.uas_tu = answer(486)
    net.send(request("INVITE", branch="z9hG4bK-x5"))
    net.run()
    assert [type(e) for e in net.uas_events] == [RequestReceived, TransactionTimeout]
    net.assert_idle()


def test_all_invites_lost_timer_b() -> None:
    net = Network(drop=lambda m, n: True)
    handle = net.send(request("INVITE", branch="z9hG4bK-x6"))
    net.run()
    assert net.uac_events == [TransactionTimeout(handle, "leg-a")]
    assert net.seen["uac:INVITE"] == 7  # first send + 6 retransmissions
    net.assert_idle()


def test_non_invite_with_lost_request_and_lost_response() -> None:
    def drop(m: Request | Response, n: int) -> bool:
        return (label(m) == "OPTIONS" and n < 2) or (label(m) == "200/OPTIONS" and n < 1)

    net = Network(drop=drop)
    net.uas_tu = answer(200)
    net.send(request("OPTIONS", branch="z9hG4bK-x7"))
    net.run()
    # OPTIONS at 0 and 0.5 lost; at 1.5 answered (200 lost); at 3.5 answered from Completed
    assert net.delivered("uac", "OPTIONS") == [1.5, 3.5]
    assert net.delivered("uas", "200/OPTIONS") == [3.5]
    assert [type(e) for e in net.uas_events] == [RequestReceived]
    assert statuses(net.uac_events) == [200]
    net.assert_idle()


def test_cancel_with_lost_cancel() -> None:
    net = Network(drop=lambda m, n: label(m) == "CANCEL" and n < 1)
    invite = request("INVITE", branch="z9hG4bK-x8")

    def uas_tu(net: Network, ev: Output) -> None:
        if isinstance(ev, RequestReceived):
            net.respond(ev.handle, make_response(ev.request, 180, to_tag="uas-1"))
        elif isinstance(ev, CancelReceived) and ev.invite_handle is not None:
            net.respond(ev.invite_handle, make_response(invite, 487, to_tag="uas-1"))

    def uac_tu(net: Network, ev: Output) -> None:
        if isinstance(ev, ResponseReceived) and ev.response.status == 180:
            net.post("uac", net.uac.cancel(ev.handle, net.now))

    net.uas_tu, net.uac_tu = uas_tu, uac_tu
    handle = net.send(invite)
    net.run()
    assert net.delivered("uac", "CANCEL") == [0.5]  # Timer E retransmission
    assert statuses(net.uac_events) == [100, 180, 487]
    cancels = [e for e in net.uas_events if isinstance(e, CancelReceived)]
    assert len(cancels) == 1 and cancels[0].invite_handle is not None
    assert net.delivered("uas", "200/CANCEL") == [0.5]
    assert all(getattr(e, "handle", handle) == handle for e in net.uac_events)
    net.assert_idle()


def test_2xx_accepted_both_sides_and_2xx_ack_reaches_the_uas_tu() -> None:
    net = Network(drop=lambda m, n: label(m) == "200/INVITE" and n < 1)
    invite = request("INVITE", branch="z9hG4bK-x9")
    ok_holder: list[Response] = []

    def uas_tu(net: Network, ev: Output) -> None:
        if isinstance(ev, RequestReceived):
            ok = make_response(ev.request, 200, to_tag="uas-1")
            ok_holder.append(ok)
            net.respond(ev.handle, ok)

    def uac_tu(net: Network, ev: Output) -> None:
        if isinstance(ev, ResponseReceived) and ev.response.status == 200:
            # the dialog layer ACKs every 2xx itself, in a new transaction
            ack = request("ACK", branch="z9hG4bK-x9-ack", to_tag="uas-1", cseq_method="ACK")
            net.queue.append(("uac", ack))

    net.uas_tu, net.uac_tu = uas_tu, uac_tu
    net.send(invite)
    net.deliver()
    assert statuses(net.uac_events) == [100]  # the 200 was lost
    # the UAS core retransmits its 2xx (its own timer, RFC 3261 §13.3.1.4)
    net.now = 0.5
    net.respond(1, ok_holder[0])
    net.run()
    assert statuses(net.uac_events) == [100, 200]
    acks = [e for e in net.uas_events if isinstance(e, AckReceived)]
    assert len(acks) == 1 and acks[0].handle is None
    net.assert_idle()
