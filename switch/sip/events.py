"""What the transaction layer hands back: datagrams to send and events for the TU.

Theory of operation
-------------------
The transaction machines and ``TransactionLayer`` never perform I/O.  Every
input method returns a list of outputs, in the order they must be acted on:

* ``Send``: a message for the transport adapter.  The message object itself
  is kept (not bytes): ``bytes(msg)`` is cached inside the message, so a
  retransmission costs nothing and the adapter serialises once.
* Events for the transaction user (dialog layer / B2BUA legs), each carrying
  the transaction ``handle`` (a small int) and the ``owner`` object the TU
  passed in, so a response finds its leg without a lookup.

``StartCancel`` is internal: a client INVITE transaction emits it when a
CANCEL is due (RFC 3261 §9.1) and the layer turns it into a CANCEL client
transaction; it never reaches the TU.

Errors raised for *TU* mistakes (a response in a state that takes none, an
unknown handle) are ``TransactionError`` subclasses.  Network input never
raises them: everything a peer can send is in the transition tables.
"""

from __future__ import annotations

from dataclasses import dataclass

from .address import Address
from .errors import LocalError
from .message import Request, Response

Handle = int


@dataclass(frozen=True, slots=True)
class Send:
    """Hand ``message`` to the transport for ``dest``."""

    message: Request | Response
    dest: Address

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, message: Request | Response, dest: Address) -> None:
        self.message = message  # type: ignore[misc]
        self.dest = dest  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class RequestReceived:
    """A new request (not a retransmission, not ACK or CANCEL) for the TU."""

    handle: Handle
    request: Request
    source: Address

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, handle: Handle, request: Request, source: Address) -> None:
        self.handle = handle  # type: ignore[misc]
        self.request = request  # type: ignore[misc]
        self.source = source  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    """A response a client transaction passes up (RFC 3261 §17.1)."""

    handle: Handle
    response: Response
    owner: object | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, handle: Handle, response: Response, owner: object | None = None) -> None:
        self.handle = handle  # type: ignore[misc]
        self.response = response  # type: ignore[misc]
        self.owner = owner  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class AckReceived:
    """An ACK for the dialog layer: it matched no transaction (the ACK for a
    2xx is its own transaction, RFC 3261 §17.1.1.3) or matched an INVITE
    server transaction in Accepted (RFC 6026 §8.7); ``handle`` is then set."""

    request: Request
    source: Address
    handle: Handle | None = None
    owner: object | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(
        self,
        request: Request,
        source: Address,
        handle: Handle | None = None,
        owner: object | None = None,
    ) -> None:
        self.request = request  # type: ignore[misc]
        self.source = source  # type: ignore[misc]
        self.handle = handle  # type: ignore[misc]
        self.owner = owner  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class CancelReceived:
    """A CANCEL, already answered by the layer (RFC 3261 §9.2).

    ``invite_handle`` is the INVITE server transaction it cancels if that one
    is still waiting for a final response (the TU should answer it 487);
    ``None`` when the CANCEL had no effect (481, or a final was already sent).
    """

    request: Request
    invite_handle: Handle | None
    source: Address
    owner: object | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(
        self,
        request: Request,
        invite_handle: Handle | None,
        source: Address,
        owner: object | None = None,
    ) -> None:
        self.request = request  # type: ignore[misc]
        self.invite_handle = invite_handle  # type: ignore[misc]
        self.source = source  # type: ignore[misc]
        self.owner = owner  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class StrayResponse:
    """A response matching no client transaction (RFC 3261 §18.1.2)."""

    response: Response
    source: Address

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, response: Response, source: Address) -> None:
        self.response = response  # type: ignore[misc]
        self.source = source  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class TransactionTimeout:
    """Timer B, F or H fired (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1)."""

    handle: Handle
    owner: object | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, handle: Handle, owner: object | None = None) -> None:
        self.handle = handle  # type: ignore[misc]
        self.owner = owner  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class TransportError:
    """The transport could not deliver to ``dest`` (RFC 3261 §17.1.4, §17.2.4)."""

    handle: Handle
    dest: Address
    owner: object | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, handle: Handle, dest: Address, owner: object | None = None) -> None:
        self.handle = handle  # type: ignore[misc]
        self.dest = dest  # type: ignore[misc]
        self.owner = owner  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class StartCancel:
    """Internal: the client INVITE transaction ``handle`` wants ``cancel`` sent."""

    handle: Handle
    cancel: Request

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, handle: Handle, cancel: Request) -> None:
        self.handle = handle  # type: ignore[misc]
        self.cancel = cancel  # type: ignore[misc]


Event = (
    RequestReceived
    | ResponseReceived
    | AckReceived
    | CancelReceived
    | StrayResponse
    | TransactionTimeout
    | TransportError
)
Output = Send | Event | StartCancel


class TransactionError(LocalError):
    """A transaction-layer API misuse by the TU."""

    status = 500


class TransactionStateError(TransactionError):
    """The TU fed an input the current state does not accept (missing table key)."""


class NoSuchTransaction(TransactionError):
    """The handle names no live transaction (never existed, or terminated)."""


class DuplicateTransaction(TransactionError):
    """A client request reuses the branch of a live client transaction."""


__all__ = [
    "AckReceived",
    "CancelReceived",
    "DuplicateTransaction",
    "Event",
    "Handle",
    "NoSuchTransaction",
    "Output",
    "RequestReceived",
    "ResponseReceived",
    "Send",
    "StartCancel",
    "StrayResponse",
    "TransactionError",
    "TransactionStateError",
    "TransactionTimeout",
    "TransportError",
]
