"""What the dialplan decided for a call: frozen, slotted value objects.

:class:`dialplan.routing.Router` returns one :data:`Decision` per routing
question.  Every decision carries ``trace``, the steps the router took in
order, so ``centrala route`` can print exactly what the dialplan would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Literal

from dialplan.numbers import CallClass
from dialplan.plan import ForwardReason, Target

__all__ = [
    "ANONYMOUS_URI",
    "CallerId",
    "Decision",
    "Feature",
    "FeatureCode",
    "ForwardChain",
    "ForwardStep",
    "Refused",
    "ToAnnouncement",
    "ToExtension",
    "ToGroup",
    "ToTrunk",
    "ToVoicemail",
    "TrunkAttempt",
]

ANONYMOUS_URI = "sip:anonymous@anonymous.invalid"
"""From URI of a withheld identity (RFC 3323 §4.1.1.3)."""

Trace = tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerId:
    """The identity presented to the called party.

    ``restricted``: the From is ``"Anonymous" <sip:anonymous@anonymous.invalid>``
    with ``Privacy: id`` (RFC 3323); ``number`` is still the real identity, to be
    sent in P-Asserted-Identity only when ``assert_identity`` (internal calls
    and trusted trunks, RFC 3325).  ``number`` is ``None`` when the tenant has
    no number to show.
    """

    number: str | None
    name: str | None
    restricted: bool = False
    assert_identity: bool = False

    @property
    def from_name(self) -> str | None:
        """Display name of the From header."""
        return "Anonymous" if self.restricted else self.name

    def from_uri(self, host: str) -> str:
        """URI of the From header, anonymous if restricted."""
        if self.restricted or self.number is None:
            return ANONYMOUS_URI
        return f"sip:{self.number}@{host}"

    @property
    def privacy(self) -> str | None:
        """Value of the Privacy header, if one is needed (RFC 3323 §4.2)."""
        return "id" if self.restricted else None

    def pai_uri(self, host: str) -> str | None:
        """URI of P-Asserted-Identity, or ``None`` when it must not be sent."""
        if not self.assert_identity or self.number is None:
            return None
        suffix = ";user=phone" if self.number.startswith("+") else ""
        return f"sip:{self.number}@{host}{suffix}"


class Feature(Enum):
    """Feature codes dialled by users (prefixes in ``TenantSettings``)."""

    INTERCOM = "intercom"
    PARK = "park"
    RETRIEVE = "retrieve"
    PICKUP = "pickup"
    DIRECTED_PICKUP = "directed_pickup"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureCode:
    """A feature code: the call core runs ``feature`` with ``argument``."""

    tenant: str
    feature: Feature
    argument: str
    trace: Trace


@dataclass(frozen=True, slots=True, kw_only=True)
class ToExtension:
    """Ring an extension; ``forwarded_from`` lists extensions that forwarded here."""

    tenant: str
    number: str
    name: str
    ring_time_s: int
    caller_id: CallerId | None
    forwarded_from: tuple[str, ...] = ()
    trace: Trace


@dataclass(frozen=True, slots=True, kw_only=True)
class ToGroup:
    """Ring a hunt group."""

    tenant: str
    number: str
    name: str
    caller_id: CallerId | None
    forwarded_from: tuple[str, ...] = ()
    trace: Trace


@dataclass(frozen=True, slots=True, kw_only=True)
class TrunkAttempt:
    """One trunk of an outbound call: the number as it wants it, our identity to it."""

    trunk: str
    number_sent: str
    caller_id: CallerId


@dataclass(frozen=True, slots=True, kw_only=True)
class ToTrunk:
    """An outbound call: try ``attempts`` in order until one trunk takes it."""

    tenant: str
    route_name: str
    number_e164: str | None  # None for short numbers such as 112
    call_class: CallClass
    attempts: tuple[TrunkAttempt, ...]
    price_per_minute: Decimal | None = None
    rate_name: str | None = None
    currency: str | None = None
    pin_required: bool = False
    forwarded_from: tuple[str, ...] = ()
    trace: Trace

    @property
    def trunks(self) -> tuple[str, ...]:
        """Trunk names in failover order."""
        return tuple(a.trunk for a in self.attempts)

    @property
    def number_sent(self) -> str:
        """The number as sent to the first trunk."""
        return self.attempts[0].number_sent

    @property
    def caller_id(self) -> CallerId:
        """Our identity towards the first trunk."""
        return self.attempts[0].caller_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ToVoicemail:
    """Leave a message in ``mailbox`` (an extension number)."""

    tenant: str
    mailbox: str
    trace: Trace


@dataclass(frozen=True, slots=True, kw_only=True)
class ToAnnouncement:
    """Play announcement ``name``."""

    tenant: str
    name: str
    trace: Trace


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """Answer the call with ``status`` (403, 404, 482, 483) and ``reason``."""

    status: int
    reason: str
    tenant: str | None = None
    trace: Trace


Decision = (
    FeatureCode | ToExtension | ToGroup | ToTrunk | ToVoicemail | ToAnnouncement | Refused
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardStep:
    """One forward of ``extension`` for ``reason`` to ``target``.

    ``after_s`` is how long to ring first (no_answer only); if the target does
    not answer within ``return_after_s`` the call goes to ``fallback``.
    """

    extension: str
    reason: ForwardReason
    target: Target
    after_s: int | None
    return_after_s: int | None
    fallback: Literal["voicemail", "hangup"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardChain:
    """Forwards followed from one extension: the first for ``reason``, then
    each target extension's unconditional forward."""

    steps: tuple[ForwardStep, ...]
    trace: Trace
