"""The sans-IO SIP endpoint: transport-level checks below the transaction layer.

Theory of operation
-------------------
``SipCore.receive(data, source, now)`` takes one datagram or one framed
stream message and returns outputs for the adapter (``Send``).  On the way it
parses, validates (answering a bad request statelessly with the status its
error carries, RFC 3261 §8.2 and RFC 4475), stamps ``received``/``rport``
(RFC 3261 §18.2.1, RFC 3581), computes where responses go (§18.2.2) and hands
the request to the transaction layer.  Transaction-user events go to the
``TransactionUser`` given at construction, whose answers come back through
``respond()``.  Responses that are malformed or match no transaction are
dropped (RFC 3261 §18.1.2, RFC 4475 §3.1.2.5).  Nothing here reads a clock
or touches a socket; nothing a peer sends can raise out of ``receive``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from collections.abc import Sequence
from typing import Protocol

from .address import Address
from .builders import make_response, new_tag
from .errors import SipError, UnparseableMessage
from .events import Handle, Output, Send
from .message import Request, Response, parse_message
from .routing import response_destination, stamp_via
from .timers import TimerConfig
from .transaction_layer import TransactionLayer
from .validate import KNOWN_METHODS, validate_request, validate_response

log = logging.getLogger("centrala.sip")

class TransactionUser(Protocol):
    """The layer above transactions (dispatcher, registrar, B2BUA)."""

    def on_event(self, event: object, now: float) -> Sequence[object]: ...


@dataclass(slots=True)
class CoreStats:
    """Counters an operator (and the leak checks of the tests) can read."""

    received: int = 0
    requests: int = 0
    responses: int = 0
    keepalives: int = 0
    unparseable: int = 0
    rejected: int = 0
    responses_dropped: int = 0
    sent: int = 0
    by_status: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CoreSettings:
    max_message_bytes: int = 65536
    max_headers: int = 100
    max_line_bytes: int = 8192
    timers: TimerConfig = TimerConfig()


class SipCore:
    def __init__(self, settings: CoreSettings, tu: TransactionUser | None = None) -> None:
        self.settings = settings
        self.transactions = TransactionLayer(settings.timers)
        self.tu = tu
        self.stats = CoreStats()

    # -- input ---------------------------------------------------------------
    def receive(self, data: bytes, source: Address, now: float) -> list[Send]:
        self.stats.received += 1
        if not data.strip(b"\r\n\t "):
            self.stats.keepalives += 1  # CRLF keep-alive on UDP (RFC 5626 §3.5.1)
            return []
        try:
            msg = parse_message(
                data,
                max_headers=self.settings.max_headers,
                max_line_bytes=self.settings.max_line_bytes,
            )
        except UnparseableMessage as exc:
            self.stats.unparseable += 1
            log.debug("dropped unparseable message from %s: %s", source, exc.reason)
            return []
        if isinstance(msg, Response):
            return self._receive_response(msg, source, now)
        if len(data) > self.settings.max_message_bytes:
            return self.reject(msg, source, SipError("Message Too Large", 513))
        return self._receive_request(msg, source, now)

    def _receive_request(self, req: Request, source: Address, now: float) -> list[Send]:
        self.stats.requests += 1
        try:
            validate_request(req, KNOWN_METHODS)
            via = stamp_via(req, source)
        except SipError as exc:
            return self.reject(req, source, exc)
        dest = response_destination(via, source)
        outputs = self.transactions.receive_request(req, source, dest, now)
        return self.dispatch(outputs, now)

    def _receive_response(self, resp: Response, source: Address, now: float) -> list[Send]:
        self.stats.responses += 1
        try:
            validate_response(resp)
        except SipError as exc:
            self.stats.responses_dropped += 1
            log.debug("dropped malformed response from %s: %s", source, exc.reason)
            return []
        return self.dispatch(self.transactions.receive_response(resp, source, now), now)

    def reject(self, req: Request, source: Address, exc: SipError) -> list[Send]:
        """Answer a request that never reaches a transaction, statelessly."""
        self.stats.rejected += 1
        log.info("rejected %s from %s: %s %s", req.method, source, exc.status, exc.reason)
        if exc.status is None or req.method == "ACK":
            return []
        dest = self._stateless_destination(req, source)
        if dest is None:
            return []
        resp = make_response(req, exc.status, exc.reason, to_tag=new_tag())
        return [self._count(Send(resp, dest))]

    def _stateless_destination(self, req: Request, source: Address) -> Address | None:
        if source.reliable:
            return source  # the connection it came on, whatever its Via says
        try:
            return response_destination(req.top_via, source)
        except SipError:
            return None  # no usable Via over UDP: nowhere to answer

    # -- from the transaction user --------------------------------------------
    # These return raw outputs: a transaction user returns them from on_event(),
    # and code running outside an event passes them through dispatch().
    def respond(self, handle: Handle, resp: Response, now: float) -> list[Output]:
        return self.transactions.respond(handle, resp, now)

    def send_request(
        self, req: Request, dest: Address, now: float, owner: object = None
    ) -> tuple[Handle, list[Output]]:
        return self.transactions.send_request(req, dest, now, owner)

    # -- timers ------------------------------------------------------------------
    def next_timer(self) -> float | None:
        return self.transactions.next_timer()

    def handle_timer(self, now: float) -> list[Send]:
        return self.dispatch(self.transactions.handle_timer(now), now)

    def transport_error(self, dest: Address, now: float) -> list[Send]:
        return self.dispatch(self.transactions.transport_error(dest, now), now)

    # -- plumbing ------------------------------------------------------------------
    def dispatch(self, outputs: Sequence[object], now: float) -> list[Send]:
        """Run transaction-user events through the TU until only sends remain."""
        sends: list[Send] = []
        pending = list(outputs)
        while pending:
            out = pending.pop(0)
            if isinstance(out, Send):
                sends.append(self._count(out))
            elif self.tu is not None:
                pending.extend(self.tu.on_event(out, now))
        return sends

    def _count(self, send: Send) -> Send:
        self.stats.sent += 1
        if isinstance(send.message, Response):
            status = send.message.status
            self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
        return send
