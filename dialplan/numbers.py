"""Telephone numbers: E.164 normalisation, per-trunk formats, money.

E.164 numbers are kept as ``+`` and up to 15 digits (``+48221234567``).  A
tenant's numbering plan (country code, national and international prefixes)
turns what a user dials into E.164, and E.164 into what a trunk expects.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal, Protocol

__all__ = [
    "CallClass",
    "NumberFormat",
    "Numbering",
    "call_class_of",
    "format_for_trunk",
    "money",
    "normalise_e164",
    "to_e164",
]

NumberFormat = Literal["e164", "national", "international"]
CallClass = Literal["national", "international", "emergency"]

_E164 = re.compile(r"\+?([1-9][0-9]{0,14})")


class Numbering(Protocol):
    """The numbering plan of a tenant (``TenantSettings``)."""

    @property
    def country_code(self) -> str | None: ...
    @property
    def national_prefix(self) -> str: ...
    @property
    def international_prefix(self) -> str: ...


def normalise_e164(text: str) -> str:
    """``+48 22 123-45-67`` or ``48221234567`` -> ``+48221234567``; ``ValueError`` if not E.164."""
    compact = re.sub(r"[\s().-]", "", text)
    match = _E164.fullmatch(compact)
    if match is None:
        raise ValueError(f"{text!r} is not an E.164 number (+ and up to 15 digits, no leading 0)")
    return "+" + match.group(1)


def to_e164(number: str, plan: Numbering) -> str | None:
    """What ``number`` (after a route's strip/prepend) is in E.164, if anything.

    ``+…`` is already E.164; the international prefix is followed by one; the
    national prefix (or, if there is none, any number) by a national number.
    Anything else (``112``, service numbers) is a short number: ``None``.
    """
    if number.startswith("+"):
        return _checked("+" + number[1:])
    intl, national = plan.international_prefix, plan.national_prefix
    if intl and number.startswith(intl):
        return _checked("+" + number[len(intl) :])
    if plan.country_code is None:
        return None
    if national and number.startswith(national):
        return _checked(f"+{plan.country_code}{number[len(national) :]}")
    if not national:
        return _checked(f"+{plan.country_code}{number}")
    return None


def _checked(candidate: str) -> str | None:
    return candidate if _E164.fullmatch(candidate) else None


def call_class_of(e164: str, plan: Numbering) -> CallClass:
    """National if the number is in the tenant's country, else international."""
    inside = plan.country_code is not None and e164.startswith("+" + plan.country_code)
    return "national" if inside else "international"


def format_for_trunk(e164: str, fmt: NumberFormat, plan: Numbering) -> str:
    """``+48221234567`` as a trunk wants it: e164, national (``0221234567``) or
    international (``0048221234567``).  A foreign number sent to a national-format
    trunk goes in international form, the only way to express it."""
    digits = e164[1:]
    if fmt == "e164":
        return e164
    cc = plan.country_code
    if fmt == "national" and cc is not None and digits.startswith(cc):
        return plan.national_prefix + digits[len(cc) :]
    return plan.international_prefix + digits


def money(amount: Decimal) -> str:
    """``Decimal("1.2")`` -> ``1.20``: at least two decimals, more if given."""
    whole, _, fraction = f"{amount.normalize():f}".partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"
