"""Transport-level handling of a received request's top Via.

RFC 3261 §18.2.1 (``received``), RFC 3581 (``rport``) and §18.2.2 (where the
responses go).  Pure functions: the core calls them for every request.
"""

from __future__ import annotations

from .address import Address
from .headers import Via
from .message import Request
from .uri import DEFAULT_PORTS


def stamp_via(req: Request, source: Address) -> Via:
    """Add ``received``/``rport`` to the top Via, as the server transport must.

    Returns the new top Via; the request's header is rewritten only when it
    actually changes, so an unmodified request keeps its original bytes.
    """
    via = req.top_via
    stamped = via
    if via.rport is not None:  # RFC 3581 §4: fill in rport, always add received
        stamped = stamped.with_param("rport", str(source.port))
        stamped = stamped.with_param("received", source.host)
    elif via.host.strip("[]") != source.host or via.received is not None:
        stamped = stamped.with_param("received", source.host)  # RFC 3261 §18.2.1
    if stamped is not via:
        req.replace_top_via(stamped)
    return stamped


def response_destination(via: Via, source: Address) -> Address:
    """Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4)."""
    if source.reliable:
        return source  # back over the connection the request came on
    # The source address always wins over what the Via claims: it is where
    # ``received`` points after stamp_via(), and it cannot be spoofed into
    # sending answers to a third party.
    if via.rport is not None:
        return Address(source.transport, source.host, source.port)
    port = via.port or DEFAULT_PORTS["sips" if via.transport == "TLS" else "sip"]
    return Address(source.transport, source.host, port)
