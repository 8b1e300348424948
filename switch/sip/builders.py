"""Messages the core writes itself: responses, ACK for non-2xx, CANCEL.

RFC 3261 §8.2.6 (responses), §17.1.1.3 (ACK inside an INVITE client
transaction) and §9.1 (CANCEL).  Values are copied as received, so a peer
finds its own Via, From, To and Call-ID byte for byte.
"""

from __future__ import annotations

from .errors import SipError
from .message import Field, Request, Response
from .randomness import token_hex


def new_tag() -> str:
    return token_hex(6)


def new_branch() -> str:
    """RFC 3261 §8.1.1.7: the magic cookie and a unique id."""
    return "z9hG4bK" + token_hex(8)


def new_call_id(host: str) -> str:
    return f"{token_hex(12)}@{host}"


def _has_to_tag(req: Request) -> bool:
    try:
        return req.to.tag is not None
    except SipError:  # a To we cannot parse is copied as it is
        return True


def make_response(
    req: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, object]] | None = None,
    body: bytes = b"",
) -> Response:
    """A response to ``req`` carrying its Via, From, To, Call-ID and CSeq."""
    fields: list[Field] = []
    for name, key, value in req.fields:
        if key in ("via", "from", "call-id", "cseq"):
            fields.append((name, key, value))
        elif key == "to":
            if to_tag and status > 100 and not _has_to_tag(req):
                value = f"{value};tag={to_tag}"
            fields.append((name, key, value))
        elif key == "timestamp" and status == 100:  # RFC 3261 §8.2.6.1
            fields.append((name, key, value))
    resp = Response(status, reason, fields)
    for extra_name, extra_value in headers or ():
        resp.add(extra_name, extra_value)
    resp.body = body
    return resp


def make_ack(invite: Request, response: Response) -> Request:
    """ACK for a non-2xx final response (RFC 3261 §17.1.1.3)."""
    fields: list[Field] = [("Via", "via", str(invite.top_via))]
    for name, key, value in invite.fields:
        if key in ("from", "call-id", "route", "max-forwards"):
            fields.append((name, key, value))
    to = response.get("to") or invite.get("to") or ""
    fields.append(("To", "to", to))
    fields.append(("CSeq", "cseq", f"{invite.cseq.seq} ACK"))
    ack = Request("ACK", invite.uri_text, fields)
    ack.body = b""
    return ack


def make_cancel(invite: Request, reason: str | None = None) -> Request:
    """CANCEL for a pending INVITE (RFC 3261 §9.1), with an RFC 3326 ``Reason``."""
    fields: list[Field] = [("Via", "via", str(invite.top_via))]
    for name, key, value in invite.fields:
        if key in ("from", "to", "call-id", "route", "max-forwards"):
            fields.append((name, key, value))
    fields.append(("CSeq", "cseq", f"{invite.cseq.seq} CANCEL"))
    if reason is not None:
        fields.append(("Reason", "reason", reason))
    cancel = Request("CANCEL", invite.uri_text, fields)
    cancel.body = b""
    return cancel
