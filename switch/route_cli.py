"""``centrala route``: show exactly what the dialplan would do with one call.

``route_command`` loads the configuration, asks :class:`dialplan.routing.Router`
and prints the decision and every step that led to it, as stable
``key: value`` lines that operators and tests read.  From an extension it is an
internal call; from anything else to a DID, an inbound call from a trunk.
Exit status: 0 routed, 2 refused, 1 unusable configuration or arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import typer

from dialplan.decisions import (
    CallerId,
    Decision,
    FeatureCode,
    Refused,
    ToAnnouncement,
    ToExtension,
    ToGroup,
    ToTrunk,
    ToVoicemail,
)
from dialplan.loader import ConfigError, load_config
from dialplan.numbers import money, normalise_e164
from dialplan.routing import Router
from dialplan.schema import Config, Tenant

__all__ = ["EXIT_REFUSED", "EXIT_ROUTED", "EXIT_USAGE", "format_decision", "route_command"]

EXIT_ROUTED = 0
EXIT_USAGE = 1
EXIT_REFUSED = 2
_KEY_WIDTH = 11


def route_command(
    config_dir: Path,
    from_number: str,
    to: str,
    tenant: str | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Print the routing of a call from ``from_number`` to ``to``; the exit status."""
    try:
        config = load_config(config_dir, env=env)
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        typer.echo(f"{len(exc.issues)} error(s) in {config_dir}", err=True)
        return EXIT_USAGE
    chosen = _pick_tenant(config, from_number, to, tenant)
    if isinstance(chosen, str):
        typer.echo(chosen, err=True)
        return EXIT_USAGE
    router = Router(config)
    if chosen is None:
        _line("call", f"{from_number} -> {to} (inbound from a trunk)")
        decision = router.route_inbound(to)
    else:
        _line("call", f"{from_number} -> {to} (tenant {chosen.domain})")
        decision = router.route_internal(chosen.domain, from_number, to)
    for text in format_decision(decision):
        typer.echo(text)
    return EXIT_REFUSED if isinstance(decision, Refused) else EXIT_ROUTED


def _pick_tenant(
    config: Config, from_number: str, to: str, name: str | None
) -> Tenant | None | str:
    """The caller's tenant, ``None`` for an inbound call, or an error message."""
    if name is not None:
        tenant = config.tenant_by_domain(name)
        if tenant is None:
            return f"no tenant {name!r} (tenants: {', '.join(_domains(config)) or 'none'})"
        if _is_extension(tenant, from_number) or not _is_did(config, to):
            return tenant
        return None
    owners = [t for t in config.tenants if _is_extension(t, from_number)]
    if len(owners) == 1:
        return owners[0]
    if len(owners) > 1:
        return f"extension {from_number} exists in {', '.join(t.domain for t in owners)}; " \
            "choose one with --tenant"
    if _is_did(config, to):
        return None
    return f"{from_number} is no tenant's extension and {to} no DID; check --from/--tenant"


def _domains(config: Config) -> list[str]:
    return [t.domain for t in config.tenants]


def _is_extension(tenant: Tenant, number: str) -> bool:
    return any(e.number == number for e in tenant.extensions)


def _is_did(config: Config, number: str) -> bool:
    try:
        did = normalise_e164(number)
    except ValueError:
        return False
    return any(entry.did == did for t in config.tenants for entry in t.inbound)


def _line(key: str, value: str) -> None:
    typer.echo(_kv(key, value))


def _kv(key: str, value: str) -> str:
    label = f"{key}:" if key else ""
    return f"{label:<{_KEY_WIDTH}} {value}"


# --------------------------------------------------------------------------- formatting


def format_decision(decision: Decision) -> list[str]:
    """The decision as ``key: value`` lines, the steps numbered."""
    lines = ["steps:"] + [f"  {i}. {step}" for i, step in enumerate(decision.trace, 1)]
    return lines + [_kv(key, value) for key, value in _summary(decision)]


def _summary(decision: Decision) -> list[tuple[str, str]]:
    match decision:
        case Refused(status=status, reason=reason):
            return [("result", f"REFUSED {status} {reason}")]
        case FeatureCode(feature=feature, argument=argument):
            return [("result", f"FEATURE {feature.value}" + (f" {argument}" if argument else ""))]
        case ToExtension():
            return _to_extension(decision)
        case ToGroup():
            rows = [("result", f"ROUTED to group {decision.number} ({decision.name})")]
            return rows + _internal_rows(decision.caller_id, decision.forwarded_from)
        case ToVoicemail(mailbox=mailbox):
            return [("result", f"ROUTED to voicemail of {mailbox}")]
        case ToAnnouncement(name=name):
            return [("result", f"ROUTED to announcement {name!r}")]
        case ToTrunk():
            return _to_trunk(decision)


def _to_extension(decision: ToExtension) -> list[tuple[str, str]]:
    result = f"ROUTED to extension {decision.number} ({decision.name}), " \
        f"ring {decision.ring_time_s}s"
    return [("result", result)] + _internal_rows(decision.caller_id, decision.forwarded_from)


def _internal_rows(
    caller_id: CallerId | None, forwarded_from: tuple[str, ...]
) -> list[tuple[str, str]]:
    rows = []
    if forwarded_from:
        rows.append(("forwarded", "from " + " -> ".join(forwarded_from)))
    if caller_id is not None:
        rows.append(("caller ID", _shown(caller_id)))
    return rows


def _to_trunk(decision: ToTrunk) -> list[tuple[str, str]]:
    number = (f"{decision.number_e164} (E.164)" if decision.number_e164
              else f"{decision.number_sent} (short number)")
    rows = [
        ("result", f"ROUTED to trunk via route {decision.route_name!r}"),
        ("number", f"{number}, call class {decision.call_class}"),
    ]
    width = max(len(a.trunk) for a in decision.attempts)
    for i, attempt in enumerate(decision.attempts, 1):
        text = f"{i}. {attempt.trunk:<{width}} sends {attempt.number_sent}"
        rows.append(("trunks" if i == 1 else "", text))
    for i, attempt in enumerate(decision.attempts, 1):
        rows.append(("caller ID" if i == 1 else "", f"{i}. {_external(attempt.caller_id)}"))
    if decision.forwarded_from:
        rows.append(("forwarded", "from " + " -> ".join(decision.forwarded_from)))
    unit = f" {decision.currency}" if decision.currency else ""
    price = "no rate" if decision.price_per_minute is None else (
        f"{money(decision.price_per_minute)}{unit}/min ({decision.rate_name or 'unnamed rate'})")
    rows.append(("price", price))
    rows.append(("PIN", "required" if decision.pin_required else "not required"))
    return rows


def _shown(caller_id: CallerId) -> str:
    name = f' "{caller_id.name}"' if caller_id.name else ""
    return f"{caller_id.number or '(none)'}{name}"


def _external(caller_id: CallerId) -> str:
    if caller_id.restricted:
        text = f'restricted: From "Anonymous" <{caller_id.from_uri("")}>, Privacy: id'
        if caller_id.assert_identity and caller_id.number:
            text += f", P-Asserted-Identity {caller_id.number}"
        return text
    pai = "P-Asserted-Identity" if caller_id.assert_identity else "no P-Asserted-Identity"
    return f"{_shown(caller_id)}, {pai}"
