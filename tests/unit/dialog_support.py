"""Fixtures for the dialog tests: an INVITE crossing two record-routing proxies.

Alice (192.0.2.10) calls Bob (198.51.100.20) through p1.example.com (Alice's
side) then p2.example.net (Bob's side).  Each proxy adds its Record-Route on
top, so both the INVITE Bob receives and Bob's responses list
``p2, p1``; Bob's route set is that order, Alice's is the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

from switch.sip.builders import make_response
from switch.sip.events import Send
from switch.sip.headers import Via
from switch.sip.message import Request, Response, parse_message

P1 = "<sip:p1.example.com;lr>"
P2 = "<sip:p2.example.net;lr;transport=tcp>"
ALICE_CONTACT = "<sip:alice@192.0.2.10:5060;transport=udp>"
BOB_CONTACT = "<sip:bob@198.51.100.20:5062>"
ALICE_VIA = Via("UDP", "192.0.2.10", 5060, (("rport", None),))
BOB_VIA = Via("UDP", "198.51.100.20", 5062)
CALL_ID = "a84b4c76e66710@pc33.example.com"

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"


def _parse(text: str, body: bytes = b"") -> Request | Response:
    head = "\r\n".join(text.strip().splitlines())
    return parse_message(f"{head}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)


def invite_as_sent(cseq: int = 314159, ruri: str = "sip:bob@example.net") -> Request:
    """Alice's INVITE as she sent it (no Record-Route yet)."""
    msg = _parse(
        f"""
INVITE {ruri} SIP/2.0
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
To: Bob <sip:bob@example.net>
From: "Alice Liddell" <sip:alice@example.com>;tag=1928301774
Call-ID: {CALL_ID}
CSeq: {cseq} INVITE
Contact: {ALICE_CONTACT}
Supported: 100rel, timer
Content-Type: application/sdp
""",
        SDP,
    )
    assert isinstance(msg, Request)
    return msg


def invite_as_received(cseq: int = 314159, ruri: str = "sip:bob@198.51.100.20:5062") -> Request:
    """The same INVITE as Bob receives it: two more Vias, two Record-Routes."""
    msg = _parse(
        f"""
INVITE {ruri} SIP/2.0
Via: SIP/2.0/TCP p2.example.net;branch=z9hG4bK2d4790.1
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK77ef4c2312983.1
Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK776asdhds;rport=5060;received=192.0.2.10
Max-Forwards: 68
Record-Route: {P2}
Record-Route: {P1}
To: Bob <sip:bob@example.net>
From: "Alice Liddell" <sip:alice@example.com>;tag=1928301774
Call-ID: {CALL_ID}
CSeq: {cseq} INVITE
Contact: {ALICE_CONTACT}
Supported: 100rel, timer
Content-Type: application/sdp
""",
        SDP,
    )
    assert isinstance(msg, Request)
    return msg


def answer(
    req: Request,
    status: int,
    to_tag: str = "a6c85cf",
    *,
    contact: str | None = BOB_CONTACT,
    record_route: tuple[str, ...] | None = (P2, P1),
    headers: tuple[tuple[str, object], ...] = (),
    body: bytes = b"",
) -> Response:
    """Bob's response as Alice receives it (serialised and parsed again)."""
    extra: list[tuple[str, object]] = [("Record-Route", r) for r in record_route or ()]
    if contact is not None:
        extra.append(("Contact", contact))
    extra += headers
    resp = make_response(req, status, to_tag=to_tag, headers=extra, body=body)
    msg = parse_message(bytes(resp))
    assert isinstance(msg, Response)
    return msg


def wire(msg: Request | Response) -> Request | Response:
    return parse_message(bytes(msg))


def in_dialog_request(
    method: str,
    cseq: int,
    *,
    from_tag: str = "1928301774",
    to_tag: str = "a6c85cf",
    contact: str | None = ALICE_CONTACT,
    call_id: str = CALL_ID,
) -> Request:
    """A request from Alice to Bob inside the dialog, as Bob receives it."""
    contact_line = f"Contact: {contact}\n" if contact else ""
    msg = _parse(
        f"""
{method} sip:bob@198.51.100.20:5062 SIP/2.0
Via: SIP/2.0/UDP p2.example.net;branch=z9hG4bK-{method}-{cseq}
Max-Forwards: 69
To: Bob <sip:bob@example.net>;tag={to_tag}
From: "Alice Liddell" <sip:alice@example.com>;tag={from_tag}
Call-ID: {call_id}
CSeq: {cseq} {method}
{contact_line}"""
    )
    assert isinstance(msg, Request)
    return msg


def sent(outputs: Sequence[object]) -> list[Request | Response]:
    """The messages of the ``Send`` outputs, in order."""
    return [o.message for o in outputs if isinstance(o, Send)]
