"""The sans-IO core with the real dispatcher: what each input gets back."""

from __future__ import annotations

import pytest

from switch.dispatch import Dispatcher
from switch.sip.address import Address
from switch.sip.core import CoreSettings, SipCore
from switch.sip.message import Response

from .test_rfc4475 import load


def answer_of(name: str, transport: str = "udp") -> int | None:
    """Status the whole core + dispatcher sends for a corpus message."""
    core = SipCore(CoreSettings())
    core.tu = Dispatcher(core, "test")
    source = Address(transport, "127.0.0.1", 5070, 1 if transport != "udp" else None)
    sends = core.receive(load(name), source, now=0.0)
    finals = [s.message.status for s in sends if isinstance(s.message, Response)]
    finals = [s for s in finals if s >= 200]
    return finals[-1] if finals else None


@pytest.mark.parametrize(
    "name,status",
    [
        ("unkscm", 416), ("novelsc", 416), ("bext01", 420), ("zeromf", 200),
        ("intmeth", 501), ("esc02", 501), ("badvers", 505), ("insuf", 400),
        ("mismatch02", 501), ("bcast", None), ("scalarlg", None), ("bigcode", None),
    ],
)
def test_core_answers(name: str, status: int | None) -> None:
    assert answer_of(name, "tcp") == status


def new_core() -> SipCore:
    core = SipCore(CoreSettings())
    core.tu = Dispatcher(core, "test")
    return core


UDP_PEER = Address("udp", "127.0.0.1", 5070)


def test_responses_to_test_net_vias_go_to_the_source() -> None:
    sends = new_core().receive(load("transports"), UDP_PEER, now=0.0)
    assert [s.message.status for s in sends] == [200]  # type: ignore[union-attr]
    assert sends[0].dest == Address("udp", "127.0.0.1", 5060)  # received=source, sent-by port
    assert sends[0].message.top_via.received == "127.0.0.1"


def test_bad_via_over_udp_is_dropped_but_answered_over_tcp() -> None:
    assert new_core().receive(load("badinv01"), UDP_PEER, now=0.0) == []
    tcp = Address("tcp", "127.0.0.1", 40000, 7)
    (send,) = new_core().receive(load("badinv01"), tcp, now=0.0)
    assert send.dest == tcp and send.message.status == 400  # type: ignore[union-attr]
    assert send.message.reason == "Empty value in Via header"  # type: ignore[union-attr]


def options(branch: str = "z9hG4bKopt1", via_extra: str = ";rport") -> bytes:
    return (
        f"OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.1.1.1:5062;branch={branch}{via_extra}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
        "Call-ID: opt1@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_options_answered_with_capabilities_and_rport() -> None:
    (send,) = new_core().receive(options(), UDP_PEER, now=0.0)
    resp = send.message
    assert isinstance(resp, Response) and resp.status == 200
    for name in ("Allow", "Accept", "Supported"):
        assert resp.has(name)
    assert "OPTIONS" in (resp.get("Allow") or "")
    assert resp.top_via.rport == "5070" and resp.top_via.received == "127.0.0.1"
    assert send.dest == UDP_PEER  # RFC 3581: back to the source port
    assert resp.to.tag


def test_retransmission_absorbed_and_answered_from_the_transaction() -> None:
    core = new_core()
    (first,) = core.receive(options(), UDP_PEER, now=0.0)
    (again,) = core.receive(options(), UDP_PEER, now=0.3)
    assert bytes(again.message) == bytes(first.message)
    assert core.stats.by_status == {200: 2}


def invite(branch: str = "z9hG4bKinv1") -> bytes:
    return (
        f"INVITE sip:999@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:999@127.0.0.1>\r\n"
        "Call-ID: inv1@x\r\nCSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:5070>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_invite_gets_trying_then_final_retransmitted_until_ack() -> None:
    core = new_core()
    sends = core.receive(invite(), UDP_PEER, now=0.0)
    assert [s.message.status for s in sends] == [100, 404]  # type: ignore[union-attr]
    deadline = core.next_timer()
    assert deadline == 0.5  # Timer G = T1
    (retrans,) = core.handle_timer(deadline)
    assert bytes(retrans.message) == bytes(sends[1].message)
    to_tag = sends[1].message.to.tag
    ack = invite().replace(b"INVITE sip", b"ACK sip").replace(b"1 INVITE", b"1 ACK")
    ack = ack.replace(b"To: <sip:999@127.0.0.1>", f"To: <sip:999@127.0.0.1>;tag={to_tag}".encode())
    assert core.receive(ack, UDP_PEER, now=0.7) == []
    assert core.handle_timer(1.6) == []  # confirmed: no more retransmissions


def test_cancel_gets_200_and_the_invite_487() -> None:
    core = new_core()
    core.tu.handlers["INVITE"] = lambda event, now: []  # a callee that keeps ringing
    core.receive(invite(), UDP_PEER, now=0.0)
    cancel = invite().replace(b"INVITE sip", b"CANCEL sip").replace(b"1 INVITE", b"1 CANCEL")
    sends = core.receive(cancel, UDP_PEER, now=1.0)
    got = sorted((s.message.cseq.method, s.message.status) for s in sends)  # type: ignore[union-attr]
    assert got == [("CANCEL", 200), ("INVITE", 487)]


def test_oversized_message_is_answered_513() -> None:
    core = SipCore(CoreSettings(max_message_bytes=2048))
    core.tu = Dispatcher(core, "test")
    big = options().replace(b"Content-Length: 0", b"X-Pad: " + b"a" * 3000 + b"\r\nContent-Length: 0")
    (send,) = core.receive(big, UDP_PEER, now=0.0)
    assert send.message.status == 513  # type: ignore[union-attr]


def test_unparseable_and_keepalives_are_dropped_and_counted() -> None:
    core = new_core()
    assert core.receive(b"\x00\xffgarbage", UDP_PEER, 0.0) == []
    assert core.receive(b"\r\n\r\n", UDP_PEER, 0.0) == []
    assert core.stats.unparseable == 1 and core.stats.keepalives == 1


def test_methods_without_a_feature() -> None:
    core = new_core()
    msg = options().replace(b"OPTIONS sip", b"SUBSCRIBE sip").replace(b"1 OPTIONS", b"1 SUBSCRIBE")
    (send,) = core.receive(msg, UDP_PEER, now=0.0)
    assert send.message.status == 405 and "OPTIONS" in send.message.get("Allow")  # type: ignore[union-attr,operator]
    msg = options(branch="z9hG4bKbye").replace(b"OPTIONS sip", b"BYE sip").replace(b"1 OPTIONS", b"1 BYE")
    (send,) = core.receive(msg, UDP_PEER, now=0.0)
    assert send.message.status == 481  # type: ignore[union-attr]


def test_a_handler_tripping_on_a_malformed_header_answers_its_status() -> None:
    from switch.sip.errors import SipError

    core = new_core()

    def handler(event, now):  # type: ignore[no-untyped-def]
        raise SipError("Malformed X-Thing header", 400)

    core.tu.handlers["OPTIONS"] = handler
    (send,) = core.receive(options(), UDP_PEER, now=0.0)
    assert (send.message.status, send.message.reason) == (400, "Malformed X-Thing header")  # type: ignore[union-attr]
    assert core.transactions.in_flight() == 0  # answered: nothing left hanging
