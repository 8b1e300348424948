"""Reliable provisional responses: RSeq/RAck bookkeeping (RFC 3262).

Theory of operation
-------------------
UAC side, ``PrackUAC`` (one per early dialog: each fork numbers its own
responses).  ``receive_provisional(resp)`` classifies a 1xx to the INVITE:

* not reliable (no ``Require: 100rel``, or a 100): ``UNRELIABLE``;
* the first reliable one initialises the expected RSeq; then RSeq = last + 1
  is ``NEW``: the TU answers it with ``build_prack`` (``RAck: rseq cseq
  method``, RFC 3262 §7.2) inside the dialog;
* RSeq <= last is a ``RETRANSMISSION`` (our PRACK's own transaction takes
  care of a lost PRACK), RSeq > last + 1 is ``OUT_OF_ORDER``: both must not be
  acknowledged nor processed (§4); a reliable 1xx without a usable RSeq is
  ``INVALID`` and dropped too.

UAS side, ``PrackUAS`` (one per INVITE server transaction).  ``send_reliable``
stamps ``Require: 100rel`` and ``RSeq`` (the first value random in
1..2**31-1, then +1, §3) on a 1xx and starts its ``ReliableProvisionalUAS``
retransmitter (T1 doubling to T2, 64*T1 then ``PrackTimeout``).  Only one
reliable 1xx is outstanding at a time (§3 demands it for the first; we keep
to it for all, which is always allowed).  ``receive_prack`` matches the RAck
to that 1xx: 200 and the retransmission stops, else 481 (§3).  ``final_sent``
stops it when the INVITE gets its final response.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from enum import Enum

from .address import Address
from .dialog import Dialog
from .dialog_invite import ReliableProvisionalUAS, SessionOutput
from .errors import LocalError, MalformedMessage, SipError
from .grammar import TOKEN_CHARS, parse_uint
from .headers import Via, parse_token_list
from .message import Message, Request, Response
from .timers import DEFAULT_TIMERS, TimerConfig

logger = logging.getLogger(__name__)

OPTION_TAG = "100rel"  # RFC 3262 §3
MAX_RSEQ = 2**32 - 1  # RFC 3262 §7.1
_SYSTEM_RNG = random.SystemRandom()


class PrackError(LocalError):
    """A TU misuse: a second reliable 1xx outstanding, a 100 sent reliably..."""

    status = 500


def has_option(msg: Message, header: str, tag: str = OPTION_TAG) -> bool:
    """Whether option ``tag`` is listed in ``header`` (Require, Supported...)."""
    return tag.lower() in (t.lower() for t in parse_token_list(msg.get_all(header)))


def supports_100rel(invite: Request) -> bool:
    """The UAC accepts reliable provisionals (Supported or Require, §3)."""
    return has_option(invite, "supported") or has_option(invite, "require")


def is_reliable(resp: Response) -> bool:
    """A 101-199 that requires 100rel (RFC 3262 §3; a 100 is never reliable)."""
    return 100 < resp.status < 200 and has_option(resp, "require")


def rseq_of(resp: Response) -> int:
    """The RSeq value, 1..2**32-1 (RFC 3262 §7.1); MalformedMessage if unusable."""
    value = resp.get("rseq")
    if value is None:
        raise MalformedMessage("Missing RSeq header")
    rseq = parse_uint(value, "RSeq", MAX_RSEQ)
    if rseq == 0:
        raise MalformedMessage("RSeq out of range")
    return rseq


@dataclass(frozen=True, slots=True)
class RAck:
    """``RAck: 776656 1 INVITE`` (RFC 3262 §7.2): response number, CSeq number, method."""

    rseq: int
    cseq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> RAck:
        parts = text.split()
        if len(parts) != 3 or not all(c in TOKEN_CHARS for c in parts[2]):
            raise MalformedMessage("Malformed RAck header")
        return cls(
            parse_uint(parts[0], "RAck response-num", MAX_RSEQ),
            parse_uint(parts[1], "RAck CSeq-num", 2**32 - 1),
            parts[2],
        )

    @classmethod
    def of(cls, resp: Response) -> RAck:
        """The RAck acknowledging reliable 1xx ``resp``."""
        cseq = resp.cseq
        return cls(rseq_of(resp), cseq.seq, cseq.method)

    def __str__(self) -> str:
        return f"{self.rseq} {self.cseq} {self.method}"


class ProvisionalVerdict(Enum):
    UNRELIABLE = "unreliable"
    NEW = "new"  # acknowledge it with a PRACK and process it
    RETRANSMISSION = "retransmission"  # drop
    OUT_OF_ORDER = "out of order"  # drop; the UAS retransmits it later
    INVALID = "invalid"  # reliable without a usable RSeq: drop


@dataclass(frozen=True, slots=True)
class PrackDecision:
    verdict: ProvisionalVerdict
    rack: RAck | None = None  # set for NEW

    @property
    def needs_prack(self) -> bool:
        return self.verdict is ProvisionalVerdict.NEW


class PrackUAC:
    """RFC 3262 §4: the UAC's view of the reliable 1xx of one early dialog."""

    __slots__ = ("last_rseq",)

    def __init__(self) -> None:
        self.last_rseq: int | None = None  # most recent in-order RSeq

    def receive_provisional(self, resp: Response) -> PrackDecision:
        if not is_reliable(resp):
            return PrackDecision(ProvisionalVerdict.UNRELIABLE)
        try:
            rack = RAck.of(resp)
        except SipError:
            return PrackDecision(ProvisionalVerdict.INVALID)
        last = self.last_rseq
        if last is not None and rack.rseq <= last:
            return PrackDecision(ProvisionalVerdict.RETRANSMISSION)
        if last is not None and rack.rseq != last + 1:
            return PrackDecision(ProvisionalVerdict.OUT_OF_ORDER)
        self.last_rseq = rack.rseq
        return PrackDecision(ProvisionalVerdict.NEW, rack)

    @staticmethod
    def build_prack(
        dialog: Dialog,
        rack: RAck,
        via: Via,
        *,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """RFC 3262 §7.2: the PRACK, a request of the (early) dialog."""
        return dialog.new_request(
            "PRACK", via, body=body, content_type=content_type, extra_headers=[("RAck", rack)]
        )


class PrackUAS:
    """RFC 3262 §3: reliable 1xx to one INVITE, sent to ``dest``."""

    __slots__ = ("_next_rseq", "dest", "owner", "pending", "timers")

    def __init__(
        self,
        dest: Address,
        timers: TimerConfig = DEFAULT_TIMERS,
        *,
        initial_rseq: int | None = None,
        rng: random.Random | None = None,
        owner: object = None,
    ) -> None:
        if initial_rseq is None:  # §3: between 1 and 2**31 - 1
            initial_rseq = (rng or _SYSTEM_RNG).randint(1, 2**31 - 1)
        self._next_rseq = initial_rseq
        self.dest = dest
        self.timers = timers
        self.owner = owner
        self.pending: ReliableProvisionalUAS | None = None

    def next_rseq(self) -> int:
        """The RSeq for the next reliable 1xx (each one +1, §3)."""
        rseq = self._next_rseq
        self._next_rseq += 1
        return rseq

    def send_reliable(self, resp: Response, now: float) -> Response:
        """Make 1xx ``resp`` reliable and start retransmitting it; the caller sends
        it (the first time) through the INVITE server transaction."""
        if not 100 < resp.status < 200:
            raise PrackError(f"{resp.status} cannot be sent reliably")
        if self.pending is not None and not self.pending.done:
            raise PrackError("A reliable provisional response is still unacknowledged")
        rseq = self.next_rseq()
        if not has_option(resp, "require"):
            resp.add("Require", OPTION_TAG)
        resp.set("RSeq", rseq)
        self.pending = ReliableProvisionalUAS(resp, rseq, self.dest, now, self.timers, self.owner)
        return resp

    def receive_prack(self, prack: Request) -> int:
        """The status to answer a PRACK with: 200 if it acknowledges the
        outstanding reliable 1xx (whose retransmission stops), else 481 (§3)."""
        pending = self.pending
        try:
            rack = RAck.parse(prack.get("rack") or "")
        except SipError:
            return 481 if prack.has("rack") else 400
        if pending is None or pending.done or rack != RAck.of(pending.response):
            return 481
        pending.prack_received()
        return 200

    def final_sent(self) -> None:
        """The INVITE got its final response: no more 1xx retransmissions."""
        if self.pending is not None:
            self.pending.stop()

    @property
    def unacknowledged(self) -> bool:
        return self.pending is not None and not self.pending.done

    def unacknowledged_with_body(self) -> bool:
        """§3: a 2xx must wait for the PRACK of a reliable 1xx carrying SDP."""
        return self.unacknowledged and bool(self.pending and self.pending.response.body)

    def next_timer(self) -> float | None:
        return None if self.pending is None else self.pending.next_timer()

    def handle_timer(self, now: float) -> list[SessionOutput]:
        return [] if self.pending is None else self.pending.handle_timer(now)


__all__ = [
    "OPTION_TAG",
    "PrackDecision",
    "PrackError",
    "PrackUAC",
    "PrackUAS",
    "ProvisionalVerdict",
    "RAck",
    "has_option",
    "is_reliable",
    "rseq_of",
    "supports_100rel",
]
