"""The dialog: state, sequence numbers, routing and in-dialog requests (RFC 3261 §12).

Theory of operation
-------------------
A ``Dialog`` is the peer-to-peer relationship one INVITE creates between two
user agents; it sits above the transaction layer and below the call (B2BUA
leg) logic.  It is sans-IO and never sends anything: the TU feeds it the
messages that belong to it and asks it to *build* the requests it sends.

* Creation (§12.1): ``Dialog.from_uas(invite, response, local_contact)`` when
  we send a 1xx with a To tag or a 2xx; ``Dialog.from_uac(invite, response)``
  when a 1xx with a To tag or a 2xx arrives.  Forking gives the UAC one early
  dialog per To tag: the TU keeps them apart by ``DialogId``.
* Lifecycle: ``DialogState`` moves through ``TRANSITIONS`` (early ->
  confirmed -> terminated) on the responses to the INVITE (received by a UAC,
  sent by a UAS), BYE, a 481/408 or timeout (§12.2.1.2), or the TU's word.
* Requests out (§12.2.1.1): ``new_request`` fills Request-URI, Route,
  From/To with tags, Call-ID, CSeq (local sequence + 1), Contact for target
  refresh requests, Max-Forwards and a Via with a new branch.
  ``ack_for_2xx`` (§13.2.2.4) reuses the INVITE's CSeq number and is
  remembered, so that every retransmitted 2xx is answered with the same ACK.
* Requests in (§12.2.2): ``receive_request`` checks the remote CSeq (lower:
  500), applies glare rules (§14.1/§14.2, RFC 3311 §5.2) and returns a
  ``DialogCheck``; the TU answers with its status when it is not ``ok``.
* Target refresh: a 2xx to our re-INVITE/UPDATE updates ``remote_target``
  from its Contact; for an incoming re-INVITE/UPDATE the new Contact is
  applied when we *send* the 2xx (``send_response``; RFC 6141 §3.2 refines
  §12.2.2: a failed refresh changes nothing).

Glare bookkeeping: the dialog keeps the INVITE and UPDATE transactions in
progress in each direction (the initial INVITE too, so that a re-INVITE
cannot cross it); ``pending_outgoing_invite`` / ``pending_incoming_invite``
tell whether there is one.  An UPDATE only
collides with re-INVITEs/UPDATEs, not with the initial INVITE: offers inside
an early dialog follow the SDP offer/answer state, which the call layer owns.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import Enum

from .builders import new_branch
from .errors import LocalError, MalformedMessage, SipError
from .grammar import remove_param
from .headers import CSeq, NameAddr, Via
from .message import Message, Request, Response, new_request
from .uri import SipUri, Uri

logger = logging.getLogger(__name__)

MAX_FORWARDS = 70  # RFC 3261 §8.1.1.6
MAX_CSEQ = 2**32 - 1  # RFC 3261 §8.1.1.5
# Methods whose Contact replaces the remote target (§12.2, RFC 3311, RFC 6665).
TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY"})
# Methods we send with our Contact: target refreshes, and REFER (RFC 3515 §2.1).
CONTACT_METHODS = TARGET_REFRESH_METHODS | {"REFER"}
# Methods that carry session offers and so can collide (§14.1, RFC 3311 §5.2).
SESSION_METHODS = frozenset({"INVITE", "UPDATE"})
_ACKS_KEPT = 4  # ACKs remembered per dialog for 2xx retransmissions (bounded, STYLE 9)
_SYSTEM_RNG = random.SystemRandom()


class DialogError(LocalError):
    """The TU asked the dialog for something the RFC forbids (or misrouted a message)."""

    status = 500


@dataclass(frozen=True, slots=True)
class DialogId:
    """RFC 3261 §12: Call-ID, local tag and remote tag (None for an RFC 2543 peer)."""

    call_id: str
    local_tag: str
    remote_tag: str | None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, call_id: str, local_tag: str, remote_tag: str | None) -> None:
        self.call_id = call_id  # type: ignore[misc]
        self.local_tag = local_tag  # type: ignore[misc]
        self.remote_tag = remote_tag  # type: ignore[misc]

    @classmethod
    def of_request(cls, req: Request) -> DialogId | None:
        """The id, seen by us, of the dialog a received request belongs to (None:
        no To tag, so it is not in a dialog)."""
        local = req.to.tag
        return None if local is None else cls(req.call_id, local, req.from_.tag)

    @classmethod
    def of_response(cls, resp: Response) -> DialogId | None:
        """The id, seen by us (the UAC), of the dialog a received response belongs to."""
        local, remote = resp.from_.tag, resp.to.tag
        if local is None or remote is None:
            return None
        return cls(resp.call_id, local, remote)

    def __str__(self) -> str:
        return f"{self.call_id};local={self.local_tag};remote={self.remote_tag}"


@dataclass(frozen=True, slots=True)
class DialogCheck:
    """What ``receive_request`` decided: accept (``status is None``) or answer ``status``.

    ``retry_after`` (seconds) goes into a ``Retry-After`` header (§14.2 500s).
    For ACK a non-ok check means "discard": an ACK is never answered.
    """

    status: int | None = None
    reason: str | None = None
    retry_after: int | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(
        self, status: int | None = None, reason: str | None = None, retry_after: int | None = None,
    ) -> None:
        self.status = status  # type: ignore[misc]
        self.reason = reason  # type: ignore[misc]
        self.retry_after = retry_after  # type: ignore[misc]

    @property
    def ok(self) -> bool:
        return self.status is None

    @property
    def headers(self) -> list[tuple[str, object]]:
        return [] if self.retry_after is None else [("Retry-After", self.retry_after)]


ACCEPT = DialogCheck()


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    """What ``receive_response`` found.

    ``retransmission``: a 2xx to an INVITE already answered with 2xx (its SDP
    must not be processed again).  ``ack``: the ACK already built for it by
    ``ack_for_2xx``; the TU re-sends it (RFC 3261 §13.2.2.4).
    """

    retransmission: bool = False
    ack: Request | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, retransmission: bool = False, ack: Request | None = None) -> None:
        self.retransmission = retransmission  # type: ignore[misc]
        self.ack = ack  # type: ignore[misc]


class DialogState(Enum):
    EARLY = "Early"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class DialogInput(Enum):
    PROVISIONAL = "1xx to the INVITE"
    SUCCESS = "2xx to the INVITE"
    FAILURE = "non-2xx final to the INVITE"
    BYE = "BYE received"
    BYE_ANSWERED = "2xx to our BYE"
    FATAL = "481/408/timeout on an in-dialog request"
    TERMINATE = "terminated by the TU"


class DialogAction(Enum):
    NONE = "none"
    IGNORE = "ignore"
    REFRESH_EARLY = "take the remote target of a 1xx"
    ESTABLISH = "take route set and remote target of the 2xx"


S, I, A = DialogState, DialogInput, DialogAction

# (state, input) -> (action, next state); complete: every pair has a key.
TRANSITIONS: dict[tuple[DialogState, DialogInput], tuple[DialogAction, DialogState]] = {
    # RFC 3261 §12.1, §13.2.2.4: a 1xx keeps, a 2xx confirms, a failure ends an early dialog
    (S.EARLY, I.PROVISIONAL): (A.REFRESH_EARLY, S.EARLY),
    (S.EARLY, I.SUCCESS): (A.ESTABLISH, S.CONFIRMED),
    (S.EARLY, I.FAILURE): (A.NONE, S.TERMINATED),
    (S.EARLY, I.BYE): (A.NONE, S.TERMINATED),  # §15: the caller may BYE an early dialog
    (S.EARLY, I.BYE_ANSWERED): (A.NONE, S.TERMINATED),
    (S.EARLY, I.FATAL): (A.NONE, S.TERMINATED),  # §12.2.1.2
    (S.EARLY, I.TERMINATE): (A.NONE, S.TERMINATED),
    (S.CONFIRMED, I.PROVISIONAL): (A.IGNORE, S.CONFIRMED),  # overtaken by the 2xx
    (S.CONFIRMED, I.SUCCESS): (A.IGNORE, S.CONFIRMED),
    (S.CONFIRMED, I.FAILURE): (A.IGNORE, S.CONFIRMED),
    (S.CONFIRMED, I.BYE): (A.NONE, S.TERMINATED),  # §15.1.2
    (S.CONFIRMED, I.BYE_ANSWERED): (A.NONE, S.TERMINATED),  # §15.1.1
    (S.CONFIRMED, I.FATAL): (A.NONE, S.TERMINATED),  # §12.2.1.2
    (S.CONFIRMED, I.TERMINATE): (A.NONE, S.TERMINATED),
    **{(S.TERMINATED, i): (A.IGNORE, S.TERMINATED) for i in DialogInput},
}
del S, I, A


def _first_contact_uri(msg: Message) -> Uri | None:
    contact = msg.contact
    if contact is None or contact.star or not contact.addresses:
        return None
    return contact.addresses[0].uri


def _first_contact(msg: Message) -> NameAddr | None:
    contact = msg.contact
    if contact is None or contact.star or not contact.addresses:
        return None
    return contact.addresses[0]


class Dialog:
    """One dialog, UAC or UAS side; see the module docstring."""

    __slots__ = (
        "_acks",
        "_answered_invite",
        "_incoming",
        "_outgoing",
        "id",
        "invite_cseq",
        "is_uac",
        "local_contact",
        "local_seq",
        "local_uri",
        "remote_seq",
        "remote_target",
        "remote_uri",
        "route_set",
        "secure",
        "state",
    )

    def __init__(
        self,
        id: DialogId,
        *,
        is_uac: bool,
        state: DialogState,
        local_uri: NameAddr,
        remote_uri: NameAddr,
        remote_target: Uri,
        route_set: Iterable[NameAddr],
        local_contact: NameAddr,
        local_seq: int | None,
        remote_seq: int | None,
        invite_cseq: int,
        secure: bool = False,
    ) -> None:
        self.id = id
        self.is_uac = is_uac  # the UAC generated the Call-ID (§14.1 glare timer)
        self.state = state
        self.local_uri = local_uri
        self.remote_uri = remote_uri
        self.remote_target = remote_target
        self.route_set: tuple[NameAddr, ...] = tuple(route_set)
        self.local_contact = local_contact
        self.local_seq = local_seq
        self.remote_seq = remote_seq
        self.invite_cseq = invite_cseq
        self.secure = secure
        # INVITE/UPDATE transactions in progress, by CSeq number: outgoing ones
        # until their final response, incoming ones until we send ours (with
        # the Contact to apply if that is a 2xx).
        self._outgoing: dict[int, str] = {}
        self._incoming: dict[int, tuple[str, Uri | None]] = {}
        self._answered_invite = 0  # highest INVITE CSeq answered with a 2xx
        self._acks: dict[int, Request] = {}

    # -- construction (RFC 3261 §12.1) -----------------------------------------
    @classmethod
    def from_uas(
        cls,
        invite: Request,
        response: Response,
        local_contact: NameAddr | str,
        *,
        tls: bool = False,
    ) -> Dialog:
        """RFC 3261 §12.1.1: the dialog a 1xx-with-tag or 2xx we send creates.

        ``tls``: the INVITE arrived over TLS (with a SIPS Request-URI: secure).
        """
        status = response.status
        local_tag = response.to.tag
        if not 100 < status < 300 or local_tag is None:
            raise DialogError("Only a 101-299 response with a To tag creates a dialog")
        target = _first_contact_uri(invite)
        if target is None:  # §12.1.1: the remote target is the INVITE's Contact
            raise MalformedMessage("Missing Contact header")
        if isinstance(local_contact, str):
            local_contact = NameAddr.parse(local_contact, "Contact").validate()
        seq = invite.cseq.seq
        dialog = cls(
            DialogId(invite.call_id, local_tag, invite.from_.tag),
            is_uac=False,
            state=DialogState.EARLY,
            local_uri=response.to,
            remote_uri=invite.from_,
            remote_target=target,
            route_set=invite.name_addrs("record-route"),  # §12.1.1: in order
            local_contact=local_contact,
            local_seq=None,  # §12.1.1: empty until our first request
            remote_seq=seq,
            invite_cseq=seq,
            secure=tls and _is_sips(invite.uri),
        )
        dialog._incoming[seq] = ("INVITE", None)
        dialog.send_response(response)
        return dialog

    @classmethod
    def from_uac(cls, invite: Request, response: Response, *, tls: bool = False) -> Dialog:
        """RFC 3261 §12.1.2: the dialog a received 1xx-with-tag or 2xx creates.

        One per To tag: each fork answering the INVITE gets its own dialog.
        """
        status = response.status
        remote_tag = response.to.tag
        if not 100 < status < 300 or remote_tag is None:
            raise DialogError("Only a 101-299 response with a To tag creates a dialog")
        local_tag = invite.from_.tag
        local_contact = _first_contact(invite)
        if local_tag is None or local_contact is None:
            raise DialogError("Our INVITE lacks a From tag or a Contact")
        target = _first_contact_uri(response)
        if target is None:
            if status >= 200:  # §12.1.2: the remote target is the 2xx's Contact
                raise MalformedMessage("Missing Contact header")
            target = invite.uri  # a 1xx without Contact: wait for the 2xx's
        seq = invite.cseq.seq
        dialog = cls(
            DialogId(invite.call_id, local_tag, remote_tag),
            is_uac=True,
            state=DialogState.EARLY,
            local_uri=invite.from_,
            remote_uri=response.to,
            remote_target=target,
            route_set=reversed(response.name_addrs("record-route")),  # §12.1.2: reversed
            local_contact=local_contact,
            local_seq=seq,
            remote_seq=None,  # §12.1.2: empty until the peer's first request
            invite_cseq=seq,
            secure=tls and _is_sips(invite.uri),
        )
        dialog._outgoing[seq] = "INVITE"
        dialog.receive_response(response)
        return dialog

    # -- queries ---------------------------------------------------------------
    @property
    def pending_outgoing_invite(self) -> bool:
        """An INVITE or UPDATE we sent has no final response yet (§14.1)."""
        return bool(self._outgoing)

    @property
    def pending_incoming_invite(self) -> bool:
        """An INVITE or UPDATE we received is not answered yet (§14.2)."""
        return bool(self._incoming)

    @property
    def pending_outgoing(self) -> tuple[CSeq, ...]:
        return tuple(CSeq(n, m) for n, m in self._outgoing.items())

    @property
    def pending_incoming(self) -> tuple[CSeq, ...]:
        return tuple(CSeq(n, m) for n, (m, _) in self._incoming.items())

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED

    def glare_retry_delay(self, rng: random.Random | None = None) -> float:
        """RFC 3261 §14.1: how long to wait before retrying after a 491, in 10 ms
        units: 2.1-4 s for the Call-ID's owner (the dialog's UAC), else 0-2 s."""
        rng = rng or _SYSTEM_RNG
        if self.is_uac:
            return rng.randint(210, 400) / 100
        return rng.randint(0, 200) / 100

    # -- requests we send (RFC 3261 §12.2.1.1) -----------------------------------
    def new_request(
        self,
        method: str,
        via: Via,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, object]] = (),
    ) -> Request:
        """A request within the dialog; ``via`` is a template (sent-by, transport,
        ``rport``...) whose branch is replaced by a new one.

        ACK for a 2xx comes from ``ack_for_2xx``, CANCEL from ``builders.make_cancel``.
        """
        method = method.upper()
        if method in ("ACK", "CANCEL"):
            raise DialogError(f"{method} is not built by new_request")
        if self.state is DialogState.TERMINATED:
            raise DialogError(f"{method} in a terminated dialog")
        if method == "BYE" and self.state is DialogState.EARLY and not self.is_uac:
            raise DialogError("The callee must not send BYE on an early dialog (§15)")
        if method in SESSION_METHODS:
            self._check_can_offer(method)
        seq = self._next_local_seq()
        req = self._build(
            method, seq, via, body, content_type, extra_headers, method in CONTACT_METHODS
        )
        if method in SESSION_METHODS:
            self._outgoing[seq] = method
        return req

    def ack_for_2xx(
        self,
        invite_cseq: int,
        via: Via,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        extra_headers: Iterable[tuple[str, object]] = (),
    ) -> Request:
        """RFC 3261 §13.2.2.4: the ACK for a 2xx, built like any in-dialog request
        but with the INVITE's CSeq number; credentials of the INVITE go in
        ``extra_headers``.  Sent outside any transaction, and remembered for
        the 2xx's retransmissions (``receive_response`` hands it back).  Every
        2xx is ACKed, even one reaching a dialog the TU already terminated
        (a late fork): the TU then sends BYE from a fresh ``from_uac`` dialog."""
        if invite_cseq > self._answered_invite:
            raise DialogError(f"No 2xx to INVITE {invite_cseq} to acknowledge")
        ack = self._build("ACK", invite_cseq, via, body, content_type, extra_headers, False)
        self._acks[invite_cseq] = ack
        while len(self._acks) > _ACKS_KEPT:
            del self._acks[min(self._acks)]
        return ack

    def last_ack(self, invite_cseq: int) -> Request | None:
        return self._acks.get(invite_cseq)

    def _check_can_offer(self, method: str) -> None:
        """RFC 3261 §14.1: no re-INVITE while an INVITE is in progress either way."""
        for pending in (*self.pending_outgoing, *self.pending_incoming):
            if self._collides(method, pending):
                raise DialogError(f"{method} while {pending} is in progress")

    def _next_local_seq(self) -> int:
        if self.local_seq is None:  # §12.2.1.1 / §8.1.1.5: fresh, below 2**31
            self.local_seq = secrets.randbelow(2**31 - 1)
        if self.local_seq >= MAX_CSEQ:
            raise DialogError("CSeq space exhausted")
        self.local_seq += 1
        return self.local_seq

    def _request_target(self) -> tuple[str, tuple[NameAddr, ...]]:
        """RFC 3261 §12.2.1.1: the Request-URI and Route set of a request."""
        routes = self.route_set
        if not routes:
            return str(self.remote_target), ()
        first = routes[0].uri
        if isinstance(first, SipUri) and first.param("lr") is not None:
            return str(self.remote_target), routes  # loose routing
        # Strict router: it becomes the Request-URI (less what a Request-URI may
        # not carry, §19.1.1) and the remote target the last Route.
        if isinstance(first, SipUri):
            first = replace(first, headers=None, params=remove_param(first.params, "method"))
        return str(first), (*routes[1:], NameAddr(self.remote_target))

    def _build(
        self,
        method: str,
        seq: int,
        via: Via,
        body: bytes,
        content_type: str | None,
        extra_headers: Iterable[tuple[str, object]],
        with_contact: bool,
    ) -> Request:
        ruri, routes = self._request_target()
        headers: list[tuple[str, object]] = [
            ("Via", via.with_param("branch", new_branch())),
            ("Max-Forwards", MAX_FORWARDS),
        ]
        headers += [("Route", r) for r in routes]
        headers += [
            ("From", self.local_uri),
            ("To", self.remote_uri),
            ("Call-ID", self.id.call_id),
            ("CSeq", CSeq(seq, method)),
        ]
        if with_contact:  # §12.2.1.1: MUST in target refresh requests
            headers.append(("Contact", self.local_contact))
        headers += list(extra_headers)
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        headers.append(("Content-Length", len(body)))
        return new_request(method, ruri, headers, body)

    # -- requests we receive (RFC 3261 §12.2.2) -----------------------------------
    def receive_request(self, req: Request, rng: random.Random | None = None) -> DialogCheck:
        """Check a request the TU routed to this dialog; update remote CSeq and state."""
        if not self._matches_request(req):
            return DialogCheck(481, "Call/Transaction Does Not Exist")
        method = req.method
        if self.state is DialogState.TERMINATED:
            return DialogCheck(481, "Call/Transaction Does Not Exist")
        if method in ("ACK", "CANCEL"):  # they carry the INVITE's CSeq number
            return ACCEPT
        seq = req.cseq.seq
        if self.remote_seq is not None and seq < self.remote_seq:
            return DialogCheck(500, "Out of order")  # §12.2.2
        self.remote_seq = seq
        if method in SESSION_METHODS:
            check = self._glare(method, rng)
            if not check.ok:
                return check
            self._incoming[seq] = (method, self._contact_or_none(req))
        elif method == "BYE":
            self._feed(DialogInput.BYE)
        return ACCEPT

    def _glare(self, method: str, rng: random.Random | None) -> DialogCheck:
        if any(self._collides(method, p) for p in self.pending_incoming):
            # §14.2, RFC 3311 §5.2: still answering the previous one
            delay = (rng or _SYSTEM_RNG).randint(0, 10)
            return DialogCheck(500, "Server Internal Error", retry_after=delay)
        if any(self._collides(method, p) for p in self.pending_outgoing):
            return DialogCheck(491, "Request Pending")  # §14.1, §14.2, RFC 3311 §5.2
        return ACCEPT

    def _collides(self, method: str, pending: CSeq) -> bool:
        """An UPDATE does not collide with the initial INVITE (see module docstring)."""
        initial = pending.method == "INVITE" and pending.seq == self.invite_cseq
        return not (method == "UPDATE" and initial)

    def _matches_request(self, req: Request) -> bool:
        try:
            return (
                req.call_id == self.id.call_id
                and req.to.tag == self.id.local_tag
                and req.from_.tag == self.id.remote_tag
            )
        except SipError:
            return False

    # -- responses we send (UAS side) ----------------------------------------------
    def send_response(self, response: Response) -> None:
        """Tell the dialog about a response the TU sends to an in-dialog request."""
        cseq = response.cseq
        status = response.status
        if cseq.method == "INVITE" and cseq.seq == self.invite_cseq and not self.is_uac:
            self._feed(_classify(status))
        pending = self._incoming.get(cseq.seq)
        if status < 200 or pending is None or pending[0] != cseq.method:
            return
        del self._incoming[cseq.seq]
        if status < 300:
            if cseq.method == "INVITE":
                self._answered_invite = max(self._answered_invite, cseq.seq)
            if pending[1] is not None:
                self._set_target(pending[1])  # RFC 6141 §3.2

    # -- responses we receive (UAC side) ---------------------------------------------
    def receive_response(self, response: Response) -> ResponseOutcome:
        """A response to a request we sent in this dialog (§12.1.2, §12.2.1.2)."""
        if DialogId.of_response(response) != self.id:
            raise DialogError(f"Response for another dialog routed to {self.id}")
        cseq, status = response.cseq, response.status
        method = cseq.method
        if method == "INVITE" and 200 <= status < 300 and cseq.seq <= self._answered_invite:
            return ResponseOutcome(True, self._acks.get(cseq.seq))  # §13.2.2.4
        if method == "INVITE" and cseq.seq == self.invite_cseq and self.is_uac:
            self._feed(_classify(status), response)
        elif method in TARGET_REFRESH_METHODS and 200 <= status < 300:
            self._refresh_target(response)  # §12.2.1.2
        if status >= 200 and self._outgoing.get(cseq.seq) == method:
            del self._outgoing[cseq.seq]
        if method == "INVITE" and 200 <= status < 300:
            self._answered_invite = max(self._answered_invite, cseq.seq)
        if method == "BYE" and 200 <= status < 300:
            self._feed(DialogInput.BYE_ANSWERED)
        elif status in (408, 481):
            self._feed(DialogInput.FATAL)  # §12.2.1.2
        return ResponseOutcome()

    def request_timed_out(self, request: Request) -> None:
        """A client transaction of this dialog timed out: as a 408 (§12.2.1.2)."""
        self._outgoing.pop(request.cseq.seq, None)
        self._feed(DialogInput.FATAL)

    def terminate(self) -> None:
        """The TU ends the dialog (ACK timeout, BYE sent and given up, early fork...)."""
        self._feed(DialogInput.TERMINATE)

    # -- machinery -----------------------------------------------------------------
    def _feed(self, inp: DialogInput, response: Response | None = None) -> None:
        action, next_state = TRANSITIONS[(self.state, inp)]
        if action is DialogAction.REFRESH_EARLY and self.is_uac and response is not None:
            self._refresh_target(response)
        elif action is DialogAction.ESTABLISH and self.is_uac and response is not None:
            # §12.1.2: the 2xx's Record-Route replaces the early route set
            self.route_set = tuple(reversed(response.name_addrs("record-route")))
            self.remote_uri = response.to
            self._refresh_target(response)
        self._set_state(next_state, inp)

    def _set_state(self, new: DialogState, inp: DialogInput) -> None:
        old = self.state
        if new is old:
            return
        logger.debug(
            "[%s] dialog %s %s: %s -> %s (%s)",
            self.id.call_id,
            "UAC" if self.is_uac else "UAS",
            self.id.local_tag,
            old.value,
            new.value,
            inp.value,
        )
        self.state = new
        if new is DialogState.TERMINATED:
            self._incoming.clear()
            self._outgoing.clear()

    def _contact_or_none(self, msg: Message) -> Uri | None:
        try:
            return _first_contact_uri(msg)
        except SipError:
            logger.info("[%s] unparseable Contact; remote target kept", self.id.call_id)
            return None

    def _refresh_target(self, msg: Message) -> None:
        target = self._contact_or_none(msg)
        if target is not None:
            self._set_target(target)

    def _set_target(self, target: Uri) -> None:
        if target != self.remote_target:
            logger.debug("[%s] remote target -> %s", self.id.call_id, target)
        self.remote_target = target

    def __repr__(self) -> str:
        return f"<Dialog {self.id} {self.state.value}>"


def _classify(status: int) -> DialogInput:
    if status < 200:
        return DialogInput.PROVISIONAL
    return DialogInput.SUCCESS if status < 300 else DialogInput.FAILURE


def _is_sips(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.scheme == "sips"


__all__ = [
    "ACCEPT",
    "CONTACT_METHODS",
    "SESSION_METHODS",
    "TARGET_REFRESH_METHODS",
    "TRANSITIONS",
    "Dialog",
    "DialogAction",
    "DialogCheck",
    "DialogError",
    "DialogId",
    "DialogInput",
    "DialogState",
    "ResponseOutcome",
]
