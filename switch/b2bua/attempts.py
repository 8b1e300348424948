"""What a call tries and how a try ends: the vocabulary between a call and its plan.

A ``Call`` rings the ``Target``s of one ``Attempt`` at a time; when none
answers, ``classify`` reads the forks' final statuses as an ``Outcome`` and
the ``Plan`` (forwarding, failover) answers with the next attempt or the
final outcome.  ``disposition_of`` names a final status for the CDR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..sip.address import Address

if TYPE_CHECKING:
    from .call import Call


@dataclass(frozen=True, slots=True)
class Target:
    """One destination of an attempt: a registered device or a trunk."""

    uri: str  # Request-URI of the B INVITE
    to: str  # To header value
    dest: Address
    label: str  # for logs and the CDR: "101", "trunk:carrier"
    from_: str  # From header value (caller ID as this target sees it)
    extra_headers: tuple[tuple[str, object], ...] = ()
    credentials: tuple[str, str] | None = None  # (user, password) for a challenging trunk


@dataclass(frozen=True, slots=True)
class Attempt:
    targets: tuple[Target, ...]
    ring_time_s: float | None  # None: until a final response
    kind: str  # "extension", "trunk", ...: the plan reads outcomes by kind


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended without an answer."""

    reason: str  # busy | no_answer | unavailable | failed
    status: int
    phrase: str | None = None


class Plan(Protocol):
    """What to do when an attempt fails (forwarding, failover)."""

    def next(self, call: Call, attempt: Attempt, outcome: Outcome) -> Attempt | Outcome: ...


def classify(statuses: list[int]) -> Outcome:
    """How a set of fork failures reads (RFC 3261 §16.7 step 6, PBX-style)."""
    if not statuses:
        return Outcome("unavailable", 480)
    if any(s in (486, 600) for s in statuses):
        return Outcome("busy", 486)
    if all(s in (408, 480, 503) or s == 0 for s in statuses):
        return Outcome("unavailable", 480)
    if any(s == 603 for s in statuses):
        return Outcome("failed", 603)
    best = min(s for s in statuses if s >= 300)
    return Outcome("failed", best)


def disposition_of(status: int) -> str:
    if status == 487:
        return "cancelled"
    if status in (486, 600):
        return "busy"
    if status in (408, 480):
        return "no_answer"
    if status in (403, 404, 482, 483, 484, 488):
        return "refused"
    return "failed"
