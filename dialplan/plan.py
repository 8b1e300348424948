"""Dialplan settings of a tenant: numbering, feature codes, rates, routes, DIDs.

These models are fields of :class:`dialplan.schema.Tenant` and
:class:`dialplan.schema.Extension`; cross-references between them (trunks,
extensions, DIDs, prefixes) are checked by :mod:`dialplan.checks`.  The
routing engine (:mod:`dialplan.routing`) reads nothing else.

Targets are written ``kind:argument`` in YAML (``extension:101``,
``group:600``, ``voicemail``, ``external:0048221234567``...) and parsed into a
:class:`Target`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from dialplan.base import Digits, Model, Name, Secret, scalar_to_str
from dialplan.numbers import NumberFormat, normalise_e164
from dialplan.patterns import check_pattern

__all__ = [
    "E164",
    "FORWARD_REASONS",
    "RESTRICTED",
    "Credit",
    "DialString",
    "ExtensionPermission",
    "ForwardReason",
    "ForwardRule",
    "Forwarding",
    "InboundDid",
    "InternalCallerId",
    "NumberFormat",
    "OutboundRoute",
    "Permission",
    "Rate",
    "Target",
    "TenantSettings",
]

Permission = Literal["internal", "national", "international"]
ExtensionPermission = Literal["internal", "national", "international", "tenant"]
ForwardReason = Literal["unconditional", "busy", "no_answer", "unavailable"]
FORWARD_REASONS: tuple[ForwardReason, ...] = ("unconditional", "busy", "no_answer", "unavailable")
TargetKind = Literal["extension", "group", "voicemail", "external", "announcement"]

RESTRICTED = "restricted"
"""``external_caller_id: restricted``: withhold the number (``Privacy: id``)."""


def _check_code(value: str) -> str:
    if not re.fullmatch(r"[0-9*#]{1,8}", value):
        raise ValueError(f"{value!r}: a feature code is 1 to 8 of 0-9, * and #")
    return value


def _check_dial(value: str) -> str:
    if not re.fullmatch(r"\+?[0-9*#]{1,24}", value):
        raise ValueError(f"{value!r}: expected a dialable number (digits, * and #, optional +)")
    return value


def _check_prepend(value: str) -> str:
    return value if value == "" else _check_dial(value)


def _check_pin(value: Any) -> Any:
    secret = value.get_secret_value()
    if not re.fullmatch(r"[0-9]{4,12}", secret):
        raise ValueError("a PIN is 4 to 12 digits")
    return value


def _check_caller_id(value: str) -> str:
    return RESTRICTED if value.strip().lower() == RESTRICTED else normalise_e164(value)


FeaturePrefix = Annotated[str, BeforeValidator(scalar_to_str), AfterValidator(_check_code)]
DialString = Annotated[str, BeforeValidator(scalar_to_str), AfterValidator(_check_dial)]
E164 = Annotated[str, BeforeValidator(scalar_to_str), AfterValidator(normalise_e164)]
Money = Annotated[Decimal, Field(ge=0, decimal_places=6)]
SpeedDialKey = Annotated[str, BeforeValidator(scalar_to_str)]


# --------------------------------------------------------------------------- targets


class Target(Model):
    """Where a call goes: ``kind`` and its argument (``None`` for own voicemail)."""

    kind: TargetKind
    value: str | None = None

    def __str__(self) -> str:
        return self.kind if self.value is None else f"{self.kind}:{self.value}"


_Rule = Callable[[str], str]


def _digits(value: str) -> str:
    if not re.fullmatch(r"[0-9]{1,15}", value):
        raise ValueError("expected digits")
    return value


def _name(value: str) -> str:
    if not value.strip():
        raise ValueError("expected a name")
    return value.strip()


def _target_parser(rules: dict[str, _Rule | None], example: str) -> Callable[[Any], Any]:
    """A before-validator turning ``kind:arg`` into ``{kind, value}`` per ``rules``.

    ``rules[kind]`` checks the argument; ``None`` means the kind takes none.
    """

    def parse(data: Any) -> Any:
        if not isinstance(data, str):
            return data
        kind, sep, arg = data.strip().partition(":")
        if kind not in rules:
            raise ValueError(f"{data!r}: unknown target; expected {example}")
        rule = rules[kind]
        if rule is None:
            if sep:
                raise ValueError(f"{data!r}: {kind} takes no argument")
            return {"kind": kind}
        try:
            return {"kind": kind, "value": rule(arg.strip())}
        except ValueError as exc:
            raise ValueError(f"{data!r}: {exc}; expected {example}") from None

    return parse


_FORWARD_EXAMPLE = "extension:101, group:600, voicemail or external:0048221234567"
_INBOUND_EXAMPLE = "extension:100, group:600, voicemail:100 or announcement:closed"

ForwardTarget = Annotated[
    Target,
    BeforeValidator(
        _target_parser(
            {"extension": _digits, "group": _digits, "voicemail": None, "external": _check_dial},
            _FORWARD_EXAMPLE,
        )
    ),
]
InboundTarget = Annotated[
    Target,
    BeforeValidator(
        _target_parser(
            {"extension": _digits, "group": _digits, "voicemail": _digits, "announcement": _name},
            _INBOUND_EXAMPLE,
        )
    ),
]


# --------------------------------------------------------------------------- tenant settings


class TenantSettings(Model):
    """Numbering plan, feature codes and defaults of one tenant.

    Feature codes are prefixes dialled before an argument (``*8101`` intercoms
    101); none may be a prefix of another or of an extension or group number.
    Set one to ``null`` to disable the feature.
    """

    extension_length: int | None = Field(
        default=None, ge=1, le=15,
        description="If set, every extension and group number must have this many digits.")
    intercom_prefix: FeaturePrefix | None = Field(
        default="*8", description="Prefix + extension: call it with auto-answer (intercom).")
    speed_dial_prefix: FeaturePrefix | None = Field(
        default="*9", description="Prefix + speed-dial slot (speed_dial_length digits).")
    speed_dial_length: int = Field(
        default=2, ge=1, le=4, description="Digits of a speed-dial slot.")
    speed_dials: dict[SpeedDialKey, DialString] = Field(
        default_factory=dict,
        description='Slot -> number, e.g. {"01": "0048221234567"}; quote slots with a leading 0.')
    park_prefix: FeaturePrefix | None = Field(
        default="*70", description="Park the current call (optionally + slot digits).")
    retrieve_prefix: FeaturePrefix | None = Field(
        default="*71", description="Prefix + slot: take back a parked call.")
    pickup_prefix: FeaturePrefix | None = Field(
        default="*60", description="Pick up a call ringing in one of your groups.")
    directed_pickup_prefix: FeaturePrefix | None = Field(
        default="**", description="Prefix + extension: pick up the call ringing there.")
    permission: Permission = Field(
        default="national",
        description="Default permission of the tenant's extensions: internal, national "
        "or international calls.")
    country_code: Digits | None = Field(
        default=None, description="Country calling code without + (48 for Poland); "
        "needed for outbound routes.")
    national_prefix: Annotated[str, BeforeValidator(scalar_to_str)] = Field(
        default="0", pattern=r"^[0-9]{0,3}$",
        description="Trunk prefix before national numbers ('' if the country has none).")
    international_prefix: Annotated[str, BeforeValidator(scalar_to_str)] = Field(
        default="00", pattern=r"^[0-9]{1,4}$", description="Prefix before international numbers.")
    currency: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217 currency of rates (PLN).")
    external_caller_id: E164 | None = Field(
        default=None, description="Number shown outside when an extension sets none; "
        "one of the tenant's DIDs. Default: the DID routed to the extension, else the "
        "first DID.")

    def feature_prefixes(self) -> dict[str, str]:
        """Enabled feature codes: ``{setting name: prefix}``."""
        named = {
            "intercom_prefix": self.intercom_prefix,
            "speed_dial_prefix": self.speed_dial_prefix,
            "park_prefix": self.park_prefix,
            "retrieve_prefix": self.retrieve_prefix,
            "pickup_prefix": self.pickup_prefix,
            "directed_pickup_prefix": self.directed_pickup_prefix,
        }
        return {name: prefix for name, prefix in named.items() if prefix is not None}


class Rate(Model):
    """Price of calls to numbers starting with ``prefix`` (longest prefix wins)."""

    prefix: Annotated[str, BeforeValidator(scalar_to_str)] = Field(
        pattern=r"^(\+|00)?[1-9][0-9]{0,14}$",
        description="E.164 prefix: 48, +48 or 0048 (all mean the same).")
    per_minute: Money = Field(description="Price per minute, in settings.currency.")
    name: str = Field(default="", description="Description, e.g. 'Poland mobile'.")

    @property
    def e164_prefix(self) -> str:
        """``+48`` whichever way it was written."""
        digits = self.prefix.removeprefix("+")
        return "+" + digits.removeprefix("00")


class Credit(Model):
    """Prepaid or credit limit; the balance is runtime state, not configuration."""

    limit: Money = Field(description="Calls are refused once the balance reaches -limit.")


class OutboundRoute(Model):
    """One outbound rule: numbers matching ``match`` go out over ``trunks``."""

    name: Name = Field(description="Unique route name, shown in traces.")
    match: Annotated[str, BeforeValidator(scalar_to_str), AfterValidator(check_pattern)] = Field(
        description="_0[1-9]XXXXXXXX (X 0-9, Z 1-9, N 2-9, [1-5], . one or more, ! zero or "
        "more), re:^...$ (Python regex) or a literal number.")
    strip: int = Field(default=0, ge=0, le=20, description="Digits removed from the front.")
    prepend: Annotated[str, BeforeValidator(scalar_to_str), AfterValidator(_check_prepend)] = (
        Field(default="", description="Added to the front after stripping (+48, 0...)."))
    trunks: list[Name] = Field(min_length=1, description="Trunk names, in failover order.")
    permission: Literal["national", "international"] | None = Field(
        default=None, description="What the call counts as; default: derived from the number.")
    emergency: bool = Field(
        default=False, description="Emergency route: never refused for permission, price, "
        "PIN or credit.")
    caller_id: E164 | None = Field(
        default=None, description="Number presented on this route instead of the "
        "extension's; one of the tenant's DIDs.")

    @model_validator(mode="after")
    def _no_duplicate_trunks(self) -> Self:
        if len(set(self.trunks)) != len(self.trunks):
            raise ValueError("a trunk is listed twice in trunks")
        return self


class InboundDid(Model):
    """A public number of the tenant and where calls to it go."""

    did: E164 = Field(description="E.164 number (+48221234567); unique across all tenants.")
    to: InboundTarget = Field(description=_INBOUND_EXAMPLE + ".")


# --------------------------------------------------------------------------- extensions


class InternalCallerId(Model):
    """What other extensions see instead of the real number and name."""

    number: Digits | None = Field(default=None, description="Number shown internally.")
    name: str | None = Field(default=None, min_length=1, description="Name shown internally.")


class ForwardRule(Model):
    """Forward to ``to``; written ``{to: TARGET}`` or just ``TARGET``."""

    to: ForwardTarget = Field(description=_FORWARD_EXAMPLE + ".")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        return {"to": data} if isinstance(data, str) else data


class Forwarding(Model):
    """Call forwarding of one extension."""

    unconditional: ForwardRule | None = Field(default=None, description="Always forward.")
    busy: ForwardRule | None = Field(default=None, description="Forward when busy.")
    no_answer: ForwardRule | None = Field(
        default=None, description="Forward after no_answer_after_s of ringing.")
    unavailable: ForwardRule | None = Field(
        default=None, description="Forward when no phone is registered.")
    no_answer_after_s: int | None = Field(
        default=None, ge=1, le=600, description="Ringing before no_answer; default ring_time_s.")
    return_after_s: int | None = Field(
        default=None, ge=1, le=600,
        description="If the forward target does not answer within this, go to fallback.")
    fallback: Literal["voicemail", "hangup"] | None = Field(
        default=None, description="After return_after_s: voicemail or hangup; default "
        "voicemail if the extension has it, else hangup.")

    def rule(self, reason: ForwardReason) -> ForwardRule | None:
        """The rule for ``reason``, if one is set."""
        match reason:
            case "unconditional":
                return self.unconditional
            case "busy":
                return self.busy
            case "no_answer":
                return self.no_answer
            case "unavailable":
                return self.unavailable


CallerIdSetting = Annotated[str, BeforeValidator(scalar_to_str), AfterValidator(_check_caller_id)]
Pin = Annotated[Secret, AfterValidator(_check_pin)]
