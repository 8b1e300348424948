"""Cross-reference checks of the dialplan settings of a tenant.

:func:`dialplan_problems` is part of :func:`dialplan.schema.tenant_problems`:
every reference (forward and inbound targets, route trunks, caller IDs) must
name something that exists, and feature codes must not shadow each other or
any number.  :func:`did_problems` runs across tenants with the domain check.
Each problem is ``(loc, message)`` with ``loc`` relative to the tenant (or to
the configuration for :func:`did_problems`).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import TYPE_CHECKING

from dialplan.base import Loc, Problem, duplicates, format_loc
from dialplan.plan import FORWARD_REASONS, RESTRICTED, Target

if TYPE_CHECKING:
    from dialplan.schema import Extension, Tenant

__all__ = ["dialplan_problems", "did_problems"]


def dialplan_problems(tenant: Tenant) -> list[Problem]:
    """Every dialplan problem of ``tenant``."""
    return (
        _prefix_problems(tenant)
        + _numbering_problems(tenant)
        + _extension_problems(tenant)
        + _inbound_problems(tenant)
        + _route_problems(tenant)
        + duplicates(
            ((("rates", i, "prefix"), r.e164_prefix) for i, r in enumerate(tenant.rates)),
            "rate prefix",
        )
    )


def did_problems(tenants: Sequence[Tenant]) -> list[Problem]:
    """DIDs routed by more than one tenant, located at the later one."""
    owner: dict[str, Tenant] = {}
    problems: list[Problem] = []
    for i, tenant in enumerate(tenants):
        for j, entry in enumerate(tenant.inbound):
            first = owner.setdefault(entry.did, tenant)
            if first is not tenant:
                problems.append((
                    ("tenants", i, "inbound", j, "did"),
                    (f"DID {entry.did!r} is already routed to tenant {first.name!r} "
                    f"({first.domain}); a DID reaches exactly one tenant"),
                ))
    return problems


# --------------------------------------------------------------------------- settings


def _numbers(tenant: Tenant) -> list[tuple[Loc, str]]:
    """Every extension and group number with its location."""
    found: list[tuple[Loc, str]] = [
        (("extensions", i, "number"), e.number) for i, e in enumerate(tenant.extensions)
    ]
    return found + [(("groups", i, "number"), g.number) for i, g in enumerate(tenant.groups)]


def _prefix_problems(tenant: Tenant) -> list[Problem]:
    """Feature codes must not be prefixes of each other or of any number."""
    prefixes = tenant.settings.feature_prefixes()
    problems: list[Problem] = []
    for (first, a), (second, b) in combinations(prefixes.items(), 2):
        if a.startswith(b) or b.startswith(a):
            problems.append((
                ("settings", second),
                (f"{b!r} conflicts with {first} {a!r}: one is a prefix of the other, "
                "so one feature could never be dialled"),
            ))
    for name, prefix in prefixes.items():
        problems += [
            (("settings", name), (f"{prefix!r} conflicts with number {number!r} at "
             f"{format_loc(loc)}: one is a prefix of the other"))
            for loc, number in _numbers(tenant)
            if number.startswith(prefix) or prefix.startswith(number)
        ]
    return problems


def _numbering_problems(tenant: Tenant) -> list[Problem]:
    """extension_length, speed-dial slots, country code, default caller ID."""
    settings = tenant.settings
    problems: list[Problem] = []
    if settings.extension_length is not None:
        problems += [
            (loc, (f"{number!r} is not {settings.extension_length} digits "
             "(settings.extension_length)"))
            for loc, number in _numbers(tenant)
            if len(number) != settings.extension_length
        ]
    length = settings.speed_dial_length
    problems += [
        (("settings", "speed_dials", slot),
         (f"speed-dial slot {slot!r} must be {length} digits (settings.speed_dial_length); "
         "quote slots with a leading 0"))
        for slot in settings.speed_dials
        if not (slot.isdigit() and len(slot) == length)
    ]
    if tenant.outbound_routes and settings.country_code is None:
        problems.append((
            ("outbound_routes",),
            "set settings.country_code: numbers are normalised to E.164 with it",
        ))
    if settings.external_caller_id is not None:
        problems += _caller_id_problem(tenant, ("settings", "external_caller_id"),
                                       settings.external_caller_id)
    return problems


def _caller_id_problem(tenant: Tenant, loc: Loc, number: str) -> list[Problem]:
    if number == RESTRICTED or number in {d.did for d in tenant.inbound}:
        return []
    return [(loc, f"{number!r} is not one of this tenant's DIDs (inbound)")]


# --------------------------------------------------------------------------- extensions


def has_voicemail(extension: Extension) -> bool:
    """Voicemail is enabled on its own or through the UC bundle."""
    return extension.voicemail or extension.uc


def _extension_problems(tenant: Tenant) -> list[Problem]:
    problems: list[Problem] = []
    for i, ext in enumerate(tenant.extensions):
        loc: Loc = ("extensions", i)
        if ext.external_caller_id is not None:
            problems += _caller_id_problem(tenant, (*loc, "external_caller_id"),
                                           ext.external_caller_id)
        if ext.max_price_per_minute is not None and not tenant.rates:
            problems.append(((*loc, "max_price_per_minute"),
                             ("a price cap needs rates: without them every outbound call "
                             "is refused")))
        problems += _forward_problems(tenant, ext, (*loc, "forward"))
    return problems


def _forward_problems(tenant: Tenant, ext: Extension, loc: Loc) -> list[Problem]:
    problems: list[Problem] = []
    for reason in FORWARD_REASONS:
        rule = ext.forward.rule(reason)
        if rule is None:
            continue
        at: Loc = (*loc, reason, "to")
        if rule.to.kind == "voicemail" and not has_voicemail(ext):
            problems.append((at, f"voicemail is not enabled for extension {ext.number}"))
        elif rule.to.kind == "extension" and rule.to.value == ext.number:
            problems.append((at, f"extension {ext.number} forwards to itself"))
        else:
            problems += _target_problems(tenant, rule.to, at)
    if ext.forward.fallback == "voicemail" and not has_voicemail(ext):
        problems.append(((*loc, "fallback"),
                         f"voicemail is not enabled for extension {ext.number}"))
    return problems


def _target_problems(tenant: Tenant, target: Target, loc: Loc) -> list[Problem]:
    """A dangling ``extension:``, ``group:`` or ``voicemail:N`` reference."""
    extensions = {e.number: e for e in tenant.extensions}
    if target.kind == "group" and target.value not in {g.number for g in tenant.groups}:
        return [(loc, f"dangling reference: no group {target.value!r} in this tenant")]
    if target.kind in ("extension", "voicemail") and target.value is not None:
        ext = extensions.get(target.value)
        if ext is None:
            return [(loc, f"dangling reference: no extension {target.value!r} in this tenant")]
        if target.kind == "voicemail" and not has_voicemail(ext):
            return [(loc, f"voicemail is not enabled for extension {target.value}")]
    return []


# --------------------------------------------------------------------------- inbound, routes


def _inbound_problems(tenant: Tenant) -> list[Problem]:
    problems = duplicates(
        ((("inbound", i, "did"), d.did) for i, d in enumerate(tenant.inbound)), "DID"
    )
    for i, entry in enumerate(tenant.inbound):
        problems += _target_problems(tenant, entry.to, ("inbound", i, "to"))
    return problems


def _route_problems(tenant: Tenant) -> list[Problem]:
    problems = duplicates(
        ((("outbound_routes", i, "name"), r.name) for i, r in enumerate(tenant.outbound_routes)),
        "route name",
    )
    trunks = {t.name for t in tenant.trunks}
    for i, route in enumerate(tenant.outbound_routes):
        problems += [
            (("outbound_routes", i, "trunks", j), (f"dangling reference: no trunk {name!r} "
             "in this tenant"))
            for j, name in enumerate(route.trunks)
            if name not in trunks
        ]
        if route.caller_id is not None:
            problems += _caller_id_problem(tenant, ("outbound_routes", i, "caller_id"),
                                           route.caller_id)
    return problems
