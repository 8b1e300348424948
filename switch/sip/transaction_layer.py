"""The transaction layer: matching, tables and one timer heap (RFC 3261 §17).

Theory of operation
-------------------
``TransactionLayer`` owns the four kinds of transaction (``client_invite``,
``client_noninvite``, ``server_invite``, ``server_noninvite``) and routes
messages to them.  It is sans-IO: every method takes ``now`` and returns
outputs (``events.Send`` and TU events) in order.

Matching:

* Responses (§17.1.3): the top Via branch and the CSeq method.  A response
  matching nothing is a ``StrayResponse``.
* Requests (§17.2.3): branch + sent-by + method, the ACK counting as INVITE.
  A branch without the ``z9hG4bK`` cookie falls back to RFC 2543 matching:
  Request-URI, From tag, Call-ID, CSeq number, top Via and method in the key,
  then the To tag checked against the request that created the transaction
  (or, for an ACK, against the To tag of the response it sent).
* ACK: absorbed by an INVITE server transaction in Completed/Confirmed (the
  ACK for a non-2xx); passed up as ``AckReceived`` when it matches none (the
  ACK for a 2xx is a transaction of its own) or matches one in Accepted.
* CANCEL (§9.2): a non-INVITE server transaction of its own, so that its
  retransmissions are absorbed, answered by the layer itself: 200 when it
  matches an INVITE server transaction (same key, method INVITE), 481
  otherwise.  ``CancelReceived`` names the INVITE only if that one has no
  final response yet; the TU then answers it 487.
* ``cancel(handle)`` asks a client INVITE transaction for a CANCEL (§9.1);
  the CANCEL runs as a silent non-INVITE client transaction whose responses
  and timeout never reach the TU (they say nothing about the INVITE).

Timers: each transaction keeps its own deadlines; the layer keeps one heap of
``(deadline, seq, transaction)`` with lazy deletion.  A transaction's
``heap_deadline`` is the deadline of its one live heap entry; any other entry
for it is stale and skipped when popped.  Terminated transactions leave every
table at once.
"""

from __future__ import annotations

import heapq
import logging
from dataclasses import dataclass

from .address import Address
from .builders import make_response, new_tag
from .client_invite import ClientInviteTransaction
from .client_noninvite import ClientNonInviteTransaction
from .events import (
    AckReceived,
    CancelReceived,
    DuplicateTransaction,
    Handle,
    NoSuchTransaction,
    Output,
    RequestReceived,
    Send,
    StartCancel,
    StrayResponse,
    TransactionError,
)
from .message import Request, Response
from .server_invite import ServerInviteTransaction
from .server_noninvite import ServerNonInviteTransaction
from .timers import DEFAULT_TIMERS, TimerConfig

logger = logging.getLogger(__name__)

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7

ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
Transaction = ClientTransaction | ServerTransaction
ServerKey = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class TransactionCounts:
    """Live transactions by kind, for metrics and leak checks."""

    client_invite: int
    client_noninvite: int
    server_invite: int
    server_noninvite: int
    heap: int  # timer heap entries, stale ones included


def server_key(req: Request, method: str) -> ServerKey:
    """RFC 3261 §17.2.3 key of ``req`` for a transaction of ``method``."""
    via = req.top_via
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return ("3261", branch, via.host.lower(), via.port, method)
    # RFC 2543 (§17.2.3, second half); the To tag is checked after lookup.
    return ("2543", req.uri_text, req.from_.tag, req.call_id, req.cseq.seq, str(via), method)


class TransactionLayer:
    """All client and server transactions of one SIP endpoint."""

    __slots__ = (
        "_by_dest",
        "_by_handle",
        "_client",
        "_heap",
        "_next_handle",
        "_seq",
        "_server",
        "timers",
    )

    def __init__(self, timers: TimerConfig = DEFAULT_TIMERS) -> None:
        self.timers = timers
        self._client: dict[tuple[str | None, str], ClientTransaction] = {}
        self._server: dict[ServerKey, ServerTransaction] = {}
        self._by_handle: dict[Handle, Transaction] = {}
        self._by_dest: dict[Address, dict[Transaction, None]] = {}
        self._heap: list[tuple[float, int, Transaction]] = []
        self._seq = 0
        self._next_handle = 1

    # -- client side -------------------------------------------------------
    def send_request(
        self, request: Request, dest: Address, now: float, owner: object = None
    ) -> tuple[Handle, list[Output]]:
        """Start a client transaction for ``request`` (its top Via carries the branch)."""
        if request.method == "ACK":
            raise TransactionError("ACK is not sent in a client transaction")
        branch = request.top_via.branch
        if not branch:
            raise TransactionError("request has no Via branch")
        return self._start_client(request, dest, now, owner, silent=False)

    def cancel(self, handle: Handle, now: float, reason: str | None = None) -> list[Output]:
        """CANCEL the INVITE of ``handle`` (RFC 3261 §9.1), with ``reason`` as its
        RFC 3326 Reason header if given.

        Sent at once if a provisional response has arrived, else when the
        first one does; nothing if a final response has (or the transaction
        is gone).
        """
        txn = self._by_handle.get(handle)
        if txn is None:
            return []
        if not isinstance(txn, ClientInviteTransaction):
            raise TransactionError("only a client INVITE transaction can be cancelled")
        txn.cancel_reason = reason
        return self._after(txn, txn.cancel(now), now)

    def receive_response(self, response: Response, source: Address, now: float) -> list[Output]:
        """Route a response to its client transaction (RFC 3261 §17.1.3).

        Expects a response that passed ``validate_response``; an unusable Via
        or CSeq raises ``MalformedMessage`` (the adapter drops it).
        """
        txn = self._client.get((response.top_via.branch, response.cseq.method))
        if txn is None:
            return [StrayResponse(response, source)]
        return self._after(txn, txn.receive_response(response, now), now)

    # -- server side -------------------------------------------------------
    def receive_request(
        self, request: Request, source: Address, response_dest: Address, now: float
    ) -> list[Output]:
        """Route a request; ``response_dest`` is where its responses go (§18.2.2).

        Expects a request that passed ``validate_request``; an unusable Via,
        From, Call-ID or CSeq raises ``MalformedMessage`` (the adapter answers 400).
        """
        if request.method == "ACK":
            return self._receive_ack(request, source, now)
        key = server_key(request, request.method)
        txn = self._server.get(key)
        if txn is not None and _tags_match(txn, request):
            return self._after(txn, txn.receive_request(now), now)  # retransmission
        if request.method == "CANCEL":
            return self._receive_cancel(request, key, source, response_dest, now)
        txn = self._new_server(request, key, response_dest)
        out = txn.start(now)
        out.append(RequestReceived(txn.handle, request, source))
        return self._after(txn, out, now)

    def respond(self, handle: Handle, response: Response, now: float) -> list[Output]:
        """The TU answers server transaction ``handle``."""
        txn = self._by_handle.get(handle)
        if txn is None or isinstance(txn, (ClientInviteTransaction, ClientNonInviteTransaction)):
            raise NoSuchTransaction(f"no server transaction {handle}")
        return self._after(txn, txn.respond(response, now), now)

    def bind(self, handle: Handle, owner: object) -> None:
        """Attach the TU's ``owner`` to a server transaction (given back in events)."""
        txn = self._by_handle.get(handle)
        if txn is None:
            raise NoSuchTransaction(f"no transaction {handle}")
        txn.owner = owner

    # -- both ----------------------------------------------------------------
    def transport_error(self, dest: Address, now: float) -> list[Output]:
        """The transport failed towards ``dest``: every transaction using it hears."""
        out: list[Output] = []
        for txn in list(self._by_dest.get(dest, ())):
            out.extend(self._after(txn, txn.transport_error(now), now))
        return out

    def next_timer(self) -> float | None:
        heap = self._heap
        while heap and heap[0][2].heap_deadline != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> list[Output]:
        out: list[Output] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, txn = heapq.heappop(heap)
            if txn.heap_deadline != deadline:
                continue  # stale entry
            txn.heap_deadline = None
            out.extend(self._after(txn, txn.handle_timer(now), now))
        return out

    def transaction(self, handle: Handle) -> Transaction | None:
        """The live transaction behind ``handle`` (for inspection)."""
        return self._by_handle.get(handle)

    def __len__(self) -> int:
        return len(self._by_handle)

    def in_flight(self) -> int:
        """Transactions still waiting for a final response (graceful shutdown
        waits for these, not for the Completed ones absorbing retransmissions)."""
        return sum(1 for txn in self._by_handle.values() if txn.state.value in _OPEN_STATES)

    def counts(self) -> TransactionCounts:
        kinds = [0, 0, 0, 0]
        for txn in self._by_handle.values():
            kinds[(0 if txn.is_client else 2) + (0 if txn.is_invite else 1)] += 1
        ci, cn, si, sn = kinds
        return TransactionCounts(ci, cn, si, sn, len(self._heap))

    # -- internals -----------------------------------------------------------
    def _new_handle(self) -> Handle:
        handle = self._next_handle
        self._next_handle += 1
        return handle

    def _start_client(
        self, request: Request, dest: Address, now: float, owner: object, silent: bool
    ) -> tuple[Handle, list[Output]]:
        key = (request.top_via.branch, request.cseq.method)
        if key in self._client:
            raise DuplicateTransaction(f"branch {key[0]} {key[1]} already in use")
        handle = self._new_handle()
        txn: ClientTransaction
        if request.method == "INVITE":
            txn = ClientInviteTransaction(request, dest, self.timers, handle, owner)
        else:
            txn = ClientNonInviteTransaction(request, dest, self.timers, handle, owner, silent)
        self._client[key] = txn
        self._register(txn)
        return handle, self._after(txn, txn.start(now), now)

    def _new_server(self, request: Request, key: ServerKey, dest: Address) -> ServerTransaction:
        handle = self._new_handle()
        txn: ServerTransaction
        if request.method == "INVITE":
            txn = ServerInviteTransaction(request, dest, self.timers, handle)
        else:
            txn = ServerNonInviteTransaction(request, dest, self.timers, handle)
        txn.key = key
        self._server[key] = txn
        self._register(txn)
        return txn

    def _register(self, txn: Transaction) -> None:
        self._by_handle[txn.handle] = txn
        self._by_dest.setdefault(txn.dest, {})[txn] = None

    def _receive_ack(self, ack: Request, source: Address, now: float) -> list[Output]:
        txn = self._server.get(server_key(ack, "INVITE"))
        if not isinstance(txn, ServerInviteTransaction) or not _tags_match(txn, ack):
            return [AckReceived(ack, source)]  # RFC 3261 §17.2.3: ACK for a 2xx
        return self._after(txn, txn.receive_ack(ack, source, now), now)

    def _receive_cancel(
        self, cancel: Request, key: ServerKey, source: Address, dest: Address, now: float
    ) -> list[Output]:
        """RFC 3261 §9.2: answer the CANCEL here, tell the TU which INVITE it hits."""
        invite = self._server.get(server_key(cancel, "INVITE"))
        if isinstance(invite, ServerInviteTransaction) and _tags_match(invite, cancel):
            response = make_response(cancel, 200, to_tag=invite.to_tag or new_tag())
            target = invite.handle if invite.pending_final else None
            owner = invite.owner
        else:
            response = make_response(cancel, 481, to_tag=new_tag())
            target, owner = None, None
        txn = self._new_server(cancel, key, dest)
        out = txn.respond(response, now)
        out.append(CancelReceived(cancel, target, source, owner))
        return self._after(txn, out, now)

    def _after(self, txn: Transaction, out: list[Output], now: float) -> list[Output]:
        """Expand internal outputs, then reschedule or retire ``txn``."""
        if any(type(o) is StartCancel for o in out):
            out = self._expand_cancels(out, now)
        if isinstance(txn, ClientNonInviteTransaction) and txn.silent:
            out = [o for o in out if type(o) is Send]
        if txn.terminated:
            self._remove(txn)
        else:
            self._schedule(txn)
        return out

    def _expand_cancels(self, out: list[Output], now: float) -> list[Output]:
        expanded: list[Output] = []
        for o in out:
            if type(o) is not StartCancel:
                expanded.append(o)
                continue
            assert isinstance(o, StartCancel)
            invite = self._by_handle.get(o.handle)
            dest = invite.dest if invite is not None else None
            if dest is None or (o.cancel.top_via.branch, "CANCEL") in self._client:
                continue
            _, sent = self._start_client(o.cancel, dest, now, None, silent=True)
            expanded.extend(sent)
        return expanded

    def _schedule(self, txn: Transaction) -> None:
        deadline = txn.next_timer()
        if deadline is not None and deadline != txn.heap_deadline:
            heapq.heappush(self._heap, (deadline, self._seq, txn))
            self._seq += 1
            if len(self._heap) > 64 + 4 * len(self._by_handle):
                self._compact()
        txn.heap_deadline = deadline

    def _compact(self) -> None:
        """Drop stale heap entries once they outnumber live ones."""
        self._heap = [e for e in self._heap if e[2].heap_deadline == e[0]]
        heapq.heapify(self._heap)

    def _remove(self, txn: Transaction) -> None:
        txn.heap_deadline = None
        if self._by_handle.pop(txn.handle, None) is None:
            return
        if isinstance(txn, (ClientInviteTransaction, ClientNonInviteTransaction)):
            key = (txn.request.top_via.branch, txn.request.cseq.method)
            if self._client.get(key) is txn:
                del self._client[key]
        elif self._server.get(txn.key) is txn:
            del self._server[txn.key]
        users = self._by_dest.get(txn.dest)
        if users is not None:
            users.pop(txn, None)
            if not users:
                del self._by_dest[txn.dest]


_OPEN_STATES = frozenset({"Calling", "Trying", "Proceeding"})


def _tags_match(txn: ServerTransaction, req: Request) -> bool:
    """RFC 2543 matching also compares To tags (§17.2.3); RFC 3261 keys need not."""
    if txn.key[0] != "2543":
        return True
    if req.method == "ACK":
        return isinstance(txn, ServerInviteTransaction) and req.to.tag == txn.to_tag
    return req.to.tag == txn.request.to.tag


__all__ = ["MAGIC_COOKIE", "TransactionCounts", "TransactionLayer", "server_key"]
