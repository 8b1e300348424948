"""Shared fixtures for the transaction tests: messages, addresses, output filters.

Also checks a few properties of the fixtures themselves, so that the other
test files can rely on them.
"""

from __future__ import annotations

from typing import TypeVar

from switch.sip.address import Address
from switch.sip.builders import make_response
from switch.sip.events import Output, Send
from switch.sip.message import Request, Response, parse_message

T = TypeVar("T")

UAC_UDP = Address("udp", "192.0.2.1", 5060)
UAS_UDP = Address("udp", "198.51.100.7", 5060)
UAC_TCP = Address("tcp", "192.0.2.1", 5060, conn_id=11)
UAS_TCP = Address("tcp", "198.51.100.7", 5060, conn_id=12)


def request(
    method: str = "INVITE",
    *,
    branch: str | None = "z9hG4bK-inv-1",
    via_host: str = "192.0.2.1:5060",
    transport: str = "UDP",
    call_id: str = "call-1@192.0.2.1",
    cseq: int = 1,
    cseq_method: str | None = None,
    from_tag: str = "ft-1",
    to_tag: str | None = None,
    uri: str = "sip:bob@198.51.100.7",
    extra_vias: tuple[str, ...] = (),
    routes: tuple[str, ...] = (),
) -> Request:
    """A request as it would arrive from the wire (parsed from bytes)."""
    branch_param = f";branch={branch}" if branch is not None else ""
    to = "<sip:bob@example.com>" + (f";tag={to_tag}" if to_tag else "")
    lines = [f"{method} {uri} SIP/2.0", f"Via: SIP/2.0/{transport} {via_host}{branch_param}"]
    lines += [f"Via: {v}" for v in extra_vias]
    lines += [f"Route: {r}" for r in routes]
    lines += [
        "Max-Forwards: 70",
        f"From: Alice <sip:alice@example.com>;tag={from_tag}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        "Contact: <sip:alice@192.0.2.1>",
        "Content-Length: 0",
    ]
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int, to_tag: str | None = "tt-1") -> Response:
    """A response to ``req`` as the peer would send it (parsed from bytes)."""
    msg = parse_message(bytes(make_response(req, status, to_tag=to_tag)))
    assert isinstance(msg, Response)
    return msg


def wire(msg: Request | Response) -> Request | Response:
    """``msg`` after a trip through the network: serialised, parsed again."""
    return parse_message(bytes(msg))


def of_type(outputs: list[Output], cls: type[T]) -> list[T]:
    return [o for o in outputs if isinstance(o, cls)]


def sent(outputs: list[Output]) -> list[Request | Response]:
    return [o.message for o in outputs if isinstance(o, Send)]


def fire_all(
    obj: object, limit: float = 1e9, max_steps: int = 10_000
) -> list[tuple[float, list[Output]]]:
    """Fire ``obj``'s timers one deadline at a time; returns (instant, outputs)."""
    log: list[tuple[float, list[Output]]] = []
    for _ in range(max_steps):
        t = obj.next_timer()  # type: ignore[attr-defined]
        if t is None or t > limit:
            return log
        log.append((t, obj.handle_timer(t)))  # type: ignore[attr-defined]
    raise AssertionError("timers never settle")


def test_request_fixture_round_trips() -> None:
    req = request("OPTIONS", branch="z9hG4bKx", cseq=7)
    assert req.method == "OPTIONS"
    assert req.top_via.branch == "z9hG4bKx"
    assert req.cseq.seq == 7 and req.cseq.method == "OPTIONS"
    assert bytes(wire(req)) == bytes(req)


def test_response_fixture_carries_to_tag() -> None:
    resp = response(request(), 486)
    assert resp.status == 486 and resp.to.tag == "tt-1"
    assert response(request(), 100, to_tag="x").to.tag is None
