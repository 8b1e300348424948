"""The transaction user at the top of the SIP core: routes requests by method.

Checks every element applies before any feature sees a request (RFC 3261
§8.2.1–§8.2.2: 416 for an unknown URI scheme, 420 for an unsupported
extension, 501/405 for methods, 483 when Max-Forwards is exhausted), answers
OPTIONS to the switch itself (§11), and hands other methods to the feature
registered for them (the registrar and the B2BUA of later issues).  With no
feature behind a method, it answers what an honest element would.
"""

from __future__ import annotations

import logging
from typing import Callable

from .sip.builders import make_response, new_tag
from .sip.core import KNOWN_METHODS, SipCore
from .sip.errors import SipError
from .sip.events import AckReceived, CancelReceived, Output, RequestReceived
from .sip.headers import parse_token_list
from .sip.message import Request, Response
from .sip.uri import AbsoluteUri

log = logging.getLogger("centrala.dispatch")

RequestHandler = Callable[[RequestReceived, float], list[Output]]

# Option tags this element implements (RFC 3261 §19.2); grows with the features.
SUPPORTED_OPTIONS: tuple[str, ...] = ()
ACCEPTED_BODIES = "application/sdp"
CORE_METHODS = ("ACK", "BYE", "CANCEL", "INVITE", "OPTIONS")


class Dispatcher:
    """Routes transaction-layer events to method handlers."""

    def __init__(self, core: SipCore, server_name: str) -> None:
        self.core = core
        self.server_name = server_name
        self.handlers: dict[str, RequestHandler] = {"OPTIONS": self._options}
        self.ack_handler: Callable[[AckReceived, float], list[Output]] | None = None
        self.cancel_handler: Callable[[CancelReceived, float], list[Output] | None] | None = None

    @property
    def allowed(self) -> str:
        """RFC 3261 §20.5: every method this element accepts (INVITE is always
        taken: the call layer answers it, with 404 while it has no route)."""
        return ", ".join(sorted({*CORE_METHODS, *self.handlers}))

    def register(self, method: str, handler: RequestHandler) -> None:
        self.handlers[method] = handler

    # -- TransactionUser ------------------------------------------------------
    def on_event(self, event: object, now: float) -> list[Output]:
        if isinstance(event, RequestReceived):  # first: it has no owner to look up
            return self._on_request(event, now)
        owner = getattr(event, "owner", None)
        if callable(owner):  # a client transaction's events go to whoever started it
            return owner(event, now)  # type: ignore[no-any-return]
        if isinstance(event, CancelReceived):
            if self.cancel_handler is not None:
                handled = self.cancel_handler(event, now)
                if handled is not None:
                    return handled
            return self._on_cancel(event, now)
        if isinstance(event, AckReceived) and self.ack_handler is not None:
            return self.ack_handler(event, now)
        return []  # stray responses and timeouts of nobody's transactions

    def _on_request(self, event: RequestReceived, now: float) -> list[Output]:
        req = event.request
        status, reason, extra = self._precheck(req)
        if status:
            return self.answer(event, status, reason, extra, now)
        handler = self.handlers.get(req.method)
        if handler is not None:
            try:
                return handler(event, now)
            except SipError as exc:  # a header parsed late proved malformed
                return self.answer(event, exc.status or 400, exc.reason, [], now)
        if req.method in ("BYE", "PRACK", "UPDATE", "INFO", "NOTIFY") or req.to.tag:
            return self.answer(event, 481, None, [], now)
        if req.method == "INVITE":
            return self.answer(event, 404, None, [], now)  # no call routing yet
        return self.answer(event, 405, None, [("Allow", self.allowed)], now)

    def _precheck(self, req: Request) -> tuple[int, str | None, list[tuple[str, object]]]:
        if req.method not in KNOWN_METHODS:
            return 501, None, [("Allow", self.allowed)]
        if isinstance(req.uri, AbsoluteUri):  # RFC 3261 §8.2.2.1
            return 416, None, []
        required = [t for t in parse_token_list(req.get_all("require")) if req.method != "CANCEL"]
        unsupported = [t for t in required if t not in SUPPORTED_OPTIONS]
        if unsupported:  # RFC 3261 §8.2.2.3
            return 420, None, [("Unsupported", ", ".join(unsupported))]
        if req.max_forwards == 0 and req.method != "OPTIONS":
            return 483, None, []  # RFC 3261 §16.3; OPTIONS is answered here (RFC 4475 §3.3.11)
        return 0, None, []

    def _options(self, event: RequestReceived, now: float) -> list[Output]:
        """RFC 3261 §11.2: what this element can do."""
        headers: list[tuple[str, object]] = [
            ("Allow", self.allowed),
            ("Accept", ACCEPTED_BODIES),
            ("Accept-Encoding", "identity"),
            ("Accept-Language", "en"),
            ("Supported", ", ".join(SUPPORTED_OPTIONS)),
        ]
        return self.answer(event, 200, None, headers, now)

    def _on_cancel(self, event: CancelReceived, now: float) -> list[Output]:
        """The layer answered the CANCEL itself; end the INVITE with 487 (§9.2)."""
        if event.invite_handle is None:
            return []
        txn = self.core.transactions.transaction(event.invite_handle)
        if txn is None:
            return []
        resp = make_response(txn.request, 487, to_tag=new_tag())
        return self.core.respond(event.invite_handle, resp, now)

    def answer(
        self,
        event: RequestReceived,
        status: int,
        reason: str | None,
        headers: list[tuple[str, object]],
        now: float,
    ) -> list[Output]:
        resp: Response = make_response(
            event.request, status, reason, to_tag=new_tag(),
            headers=[("Server", self.server_name), *headers],
        )
        return self.core.respond(event.handle, resp, now)
