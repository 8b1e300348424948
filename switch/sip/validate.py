"""Checks a received message must pass before the transaction layer sees it.

RFC 3261 §8.2 and §18.1.2, with the handling RFC 4475 expects for each of its
torture messages.  Each check raises a ``SipError`` whose status and reason
name the problem; the caller answers it (requests) or drops it (responses).
Parsing the mandatory headers here also warms the message's typed caches, so
transaction matching afterwards costs nothing.
"""

from __future__ import annotations

from .errors import MalformedMessage, SipError, UnparseableMessage, VersionNotSupported
from .headers import SINGLE_HEADERS, canonical_name
from .message import SIP_VERSION, Request, Response
from .uri import SipUri

# RFC 3261 §27.4 and the methods of its extensions.
KNOWN_METHODS = frozenset(
    {
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "UPDATE",
        "INFO", "REFER", "SUBSCRIBE", "NOTIFY", "MESSAGE", "PUBLISH",
    }
)

_MANDATORY = ("via", "from", "to", "call-id", "cseq")


def _check_common(msg: Request | Response) -> None:
    if msg.defects:
        raise MalformedMessage(msg.defects[0])
    seen: dict[str, int] = {}
    for _, key, _ in msg.fields:
        if key in SINGLE_HEADERS:
            seen[key] = seen.get(key, 0) + 1
    for key in _MANDATORY:
        if key != "via" and key not in seen:
            raise MalformedMessage(f"Missing {canonical_name(key)} header")
    for key, n in seen.items():
        if n > 1 and key != "content-length":
            raise MalformedMessage(f"Multiple {canonical_name(key)} headers")
    if not msg.via:
        raise MalformedMessage("Missing Via header")
    msg.from_.validate(), msg.to.validate(), msg.call_id  # noqa: B018 - parse and cache


def validate_request(req: Request, known_methods: frozenset[str] = KNOWN_METHODS) -> None:
    """Raise the ``SipError`` to answer if ``req`` is not acceptable."""
    if req.version.upper() != SIP_VERSION:
        raise VersionNotSupported("Version Not Supported")
    _check_common(req)
    cseq = req.cseq
    if cseq.method != req.method:
        if req.method not in known_methods:
            raise SipError("Not Implemented", 501)
        raise MalformedMessage("CSeq method does not match Request-Line")
    branch = req.top_via.branch
    if branch is not None and branch.lower() == "z9hg4bk":  # RFC 4475 §3.2.1
        raise MalformedMessage("Malformed Via branch")
    req.max_forwards  # noqa: B018
    uri = req.uri
    if isinstance(uri, SipUri) and uri.headers is not None:
        raise MalformedMessage("Headers not allowed in Request-URI")
    if req.has("contact"):
        req.contact  # noqa: B018
    for name in ("route", "record-route"):
        if req.has(name):
            req.name_addrs(name)


def validate_response(resp: Response) -> None:
    """Raise ``UnparseableMessage`` if ``resp`` must be dropped (RFC 4475 §3.1.2.5)."""
    try:
        if resp.version.upper() != SIP_VERSION:
            raise MalformedMessage("Version Not Supported")
        _check_common(resp)
        resp.cseq  # noqa: B018
    except SipError as exc:
        raise UnparseableMessage(exc.reason) from None
