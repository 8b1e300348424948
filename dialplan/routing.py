"""The routing engine: where a call goes, decided from configuration alone.

Theory of operation: :class:`Router` is built from a validated
:class:`~dialplan.schema.Config` (again on every reload).  It compiles every
outbound pattern and indexes each tenant's extensions, groups, rates and
trunks, and all DIDs across tenants.  Its methods are pure and sans-IO: they
read no clock, socket or runtime state, and answer with a
:data:`~dialplan.decisions.Decision` whose ``trace`` records each step.

An internal call (an extension dials something) is resolved in this order:

1. feature codes (intercom, park, retrieve, pickup, directed pickup, speed
   dial; a speed dial is expanded and routed like the number it holds);
2. an extension or group of the tenant, following unconditional forwards;
3. the outbound routes in order, first match: strip/prepend, normalise to
   E.164, classify (national/international/emergency), then check permission,
   the price cap (longest-prefix rate) and flag a PIN.  Emergency routes skip
   every check.

Anything else is refused with 404.  Forward chains are followed with loop
detection (482) and a hop limit (483).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dialplan.checks import has_voicemail
from dialplan.decisions import (
    CallerId,
    Decision,
    Feature,
    FeatureCode,
    ForwardChain,
    ForwardStep,
    Refused,
    ToAnnouncement,
    ToExtension,
    ToGroup,
    ToTrunk,
    ToVoicemail,
    TrunkAttempt,
)
from dialplan.numbers import (
    CallClass,
    call_class_of,
    format_for_trunk,
    money,
    normalise_e164,
    to_e164,
)
from dialplan.patterns import DialPattern, compile_pattern
from dialplan.plan import RESTRICTED, ForwardReason, InboundDid, OutboundRoute, Rate, Target
from dialplan.schema import Config, Extension, Group, Tenant, Trunk

__all__ = ["MAX_FORWARD_HOPS", "Router"]

MAX_FORWARD_HOPS = 5
_LEVELS = ("internal", "national", "international")


@dataclass(frozen=True, slots=True)
class _Route:
    route: OutboundRoute
    pattern: DialPattern


@dataclass(slots=True)
class _TenantIndex:
    """One tenant, indexed for routing."""

    tenant: Tenant
    extensions: dict[str, Extension] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    trunks: dict[str, Trunk] = field(default_factory=dict)
    rates: dict[str, Rate] = field(default_factory=dict)
    routes: list[_Route] = field(default_factory=list)
    features: list[tuple[str, Feature]] = field(default_factory=list)
    did_of_extension: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, tenant: Tenant) -> _TenantIndex:
        s = tenant.settings
        index = cls(tenant)
        index.extensions = {e.number: e for e in tenant.extensions}
        index.groups = {g.number: g for g in tenant.groups}
        index.trunks = {t.name: t for t in tenant.trunks}
        index.rates = {r.e164_prefix: r for r in tenant.rates}
        index.routes = [_Route(r, compile_pattern(r.match)) for r in tenant.outbound_routes]
        codes = [
            (s.intercom_prefix, Feature.INTERCOM),
            (s.park_prefix, Feature.PARK),
            (s.retrieve_prefix, Feature.RETRIEVE),
            (s.pickup_prefix, Feature.PICKUP),
            (s.directed_pickup_prefix, Feature.DIRECTED_PICKUP),
        ]
        index.features = [(prefix, feature) for prefix, feature in codes if prefix is not None]
        for entry in reversed(tenant.inbound):  # the first DID of an extension wins
            if entry.to.kind == "extension" and entry.to.value is not None:
                index.did_of_extension[entry.to.value] = entry.did
        return index

    @property
    def domain(self) -> str:
        return self.tenant.domain


class Router:
    """Routing decisions for one configuration; rebuild it on every reload."""

    def __init__(self, config: Config, *, max_forward_hops: int = MAX_FORWARD_HOPS) -> None:
        self._tenants = {t.domain: _TenantIndex.build(t) for t in config.tenants}
        self._dids: dict[str, tuple[_TenantIndex, InboundDid]] = {
            entry.did: (index, entry)
            for index in self._tenants.values()
            for entry in index.tenant.inbound
        }
        self._max_hops = max_forward_hops

    # ----------------------------------------------------------------- public API

    def route_internal(self, tenant_domain: str, caller_number: str, dialed: str) -> Decision:
        """What happens when extension ``caller_number`` dials ``dialed``."""
        found = self._caller(tenant_domain, caller_number)
        if isinstance(found, Refused):
            return found
        index, caller = found
        trace = [f"{caller.number} ({caller.name}) dials {dialed} in {index.domain}"]
        return self._dial(index, caller, dialed.strip(), trace, expand_speed_dial=True)

    def route_inbound(self, did_e164: str) -> Decision:
        """What happens to a call from a trunk to ``did_e164``."""
        try:
            did = normalise_e164(did_e164)
        except ValueError:
            return Refused(status=404, reason=f"{did_e164!r} is not an E.164 number",
                           trace=(f"{did_e164!r} is not an E.164 number",))
        trace = [f"inbound call to {did}"]
        hit = self._dids.get(did)
        if hit is None:
            trace.append("no tenant has this DID")
            return Refused(status=404, reason=f"DID {did} is not in service", trace=tuple(trace))
        index, entry = hit
        trace.append(f"DID {did} belongs to tenant {index.domain}: to {entry.to}")
        return self._resolve(index, entry.to, None, None, trace, ())

    def forward_plan(
        self, tenant_domain: str, extension_number: str, reason: ForwardReason
    ) -> ForwardStep | None:
        """The forward of an extension for ``reason``, if it has one."""
        index = self._tenants.get(tenant_domain.lower())
        ext = index.extensions.get(extension_number) if index else None
        return None if ext is None else _plan(ext, reason)

    def follow_forwards(
        self, tenant_domain: str, extension_number: str, reason: ForwardReason
    ) -> ForwardChain | Refused:
        """The forward for ``reason``, then each target's unconditional forward.

        A chain that comes back to an extension is refused with 482, one longer
        than the hop limit with 483.
        """
        found = self._caller(tenant_domain, extension_number)
        if isinstance(found, Refused):
            return found
        index, ext = found
        trace: list[str] = []
        return self._follow(index, ext, reason, trace)

    def caller_id(
        self,
        tenant_domain: str,
        extension_number: str,
        towards: Literal["internal", "trunk"],
        trunk: str | None = None,
    ) -> CallerId | None:
        """The identity of an extension towards other extensions or a trunk."""
        index = self._tenants.get(tenant_domain.lower())
        ext = index.extensions.get(extension_number) if index else None
        if index is None or ext is None:
            return None
        if towards == "internal":
            return _internal_caller_id(ext)
        target = index.trunks.get(trunk) if trunk is not None else None
        return _external_caller_id(index, ext, target, None)

    def rate_for(self, tenant_domain: str, number_e164: str) -> Rate | None:
        """The rate of the longest prefix matching ``number_e164``."""
        index = self._tenants.get(tenant_domain.lower())
        return None if index is None else _rate(index, number_e164)

    # ----------------------------------------------------------------- internal calls

    def _caller(self, domain: str, number: str) -> tuple[_TenantIndex, Extension] | Refused:
        index = self._tenants.get(domain.lower())
        if index is None:
            reason = f"no tenant {domain}"
            return Refused(status=404, reason=reason, trace=(reason,))
        ext = index.extensions.get(number)
        if ext is None:
            reason = f"{number} is not an extension of {index.domain}"
            return Refused(status=403, reason=reason, tenant=index.domain, trace=(reason,))
        return index, ext

    def _dial(
        self,
        index: _TenantIndex,
        caller: Extension,
        dialed: str,
        trace: list[str],
        *,
        expand_speed_dial: bool,
    ) -> Decision:
        s = index.tenant.settings
        if expand_speed_dial and s.speed_dial_prefix and dialed.startswith(s.speed_dial_prefix):
            return self._speed_dial(index, caller, dialed[len(s.speed_dial_prefix) :], trace)
        for prefix, feature in index.features:
            if dialed.startswith(prefix):
                return _feature(index, caller, feature, dialed[len(prefix) :], trace)
        if dialed in index.extensions:
            trace.append(f"{dialed} is extension {index.extensions[dialed].name!r}")
            return self._ring(index, index.extensions[dialed], _internal_caller_id(caller), trace)
        if dialed in index.groups:
            group = index.groups[dialed]
            trace.append(f"{dialed} is group {group.name!r} ({group.strategy})")
            return _to_group(index, group, caller, trace, ())
        return self._outbound(index, caller, dialed, trace, ())

    def _speed_dial(
        self, index: _TenantIndex, caller: Extension, slot: str, trace: list[str]
    ) -> Decision:
        number = index.tenant.settings.speed_dials.get(slot)
        if number is None:
            reason = f"speed dial {slot!r} is not set"
            trace.append(reason)
            return Refused(status=404, reason=reason, tenant=index.domain, trace=tuple(trace))
        trace.append(f"speed dial {slot} -> {number}")
        return self._dial(index, caller, number, trace, expand_speed_dial=False)

    # ----------------------------------------------------------------- forwarding

    def _follow(
        self, index: _TenantIndex, ext: Extension, reason: ForwardReason, trace: list[str]
    ) -> ForwardChain | Refused:
        steps: list[ForwardStep] = []
        visited = [ext.number]
        step = _plan(ext, reason)
        while step is not None:
            steps.append(step)
            trace.append(f"{step.extension} forwards ({step.reason}) to {step.target}")
            if len(steps) > self._max_hops:
                reason_text = f"too many forwards (more than {self._max_hops}) from {ext.number}"
                trace.append(reason_text)
                return Refused(status=483, reason=reason_text, tenant=index.domain,
                               trace=tuple(trace))
            if step.target.kind != "extension" or step.target.value is None:
                break
            if step.target.value in visited:
                loop = " -> ".join([*visited, step.target.value])
                trace.append(f"forwarding loop {loop}")
                return Refused(status=482, reason=f"forwarding loop {loop}",
                               tenant=index.domain, trace=tuple(trace))
            visited.append(step.target.value)
            step = _plan(index.extensions[step.target.value], "unconditional")
        return ForwardChain(steps=tuple(steps), trace=tuple(trace))

    def _ring(
        self, index: _TenantIndex, ext: Extension, shown: CallerId | None, trace: list[str]
    ) -> Decision:
        """Ring ``ext``, or wherever its unconditional forwards lead."""
        chain = self._follow(index, ext, "unconditional", trace)
        if isinstance(chain, Refused):
            return chain
        if not chain.steps:
            return _to_extension(index, ext, shown, trace, ())
        last = chain.steps[-1]
        via = tuple(step.extension for step in chain.steps)
        forwarder = index.extensions[last.extension]
        return self._resolve(index, last.target, forwarder, shown, trace, via)

    def _resolve(
        self,
        index: _TenantIndex,
        target: Target,
        forwarder: Extension | None,
        shown: CallerId | None,
        trace: list[str],
        via: tuple[str, ...],
    ) -> Decision:
        """Where ``target`` leads; ``forwarder`` owns ``voicemail`` and pays for ``external``."""
        value = target.value
        if target.kind == "extension" and value is not None:
            if via:
                return _to_extension(index, index.extensions[value], shown, trace, via)
            return self._ring(index, index.extensions[value], shown, trace)
        if target.kind == "group" and value is not None:
            return _to_group(index, index.groups[value], None, trace, via, shown)
        if target.kind == "announcement" and value is not None:
            return ToAnnouncement(tenant=index.domain, name=value, trace=tuple(trace))
        if target.kind == "external" and value is not None and forwarder is not None:
            trace.append(f"external forward: routed as if {forwarder.number} dialled {value}")
            return self._outbound(index, forwarder, value, trace, via)
        mailbox = value or (forwarder.number if forwarder else "")
        return ToVoicemail(tenant=index.domain, mailbox=mailbox, trace=tuple(trace))

    # ----------------------------------------------------------------- outbound

    def _outbound(
        self,
        index: _TenantIndex,
        caller: Extension,
        dialed: str,
        trace: list[str],
        via: tuple[str, ...],
    ) -> Decision:
        matched = next((r for r in index.routes if r.pattern.matches(dialed)), None)
        if matched is None:
            trace.append("no extension, group, feature code or outbound route matches")
            return Refused(status=404, reason=f"{dialed}: no such number", tenant=index.domain,
                           trace=tuple(trace))
        route = matched.route
        number = route.prepend + dialed[route.strip :]
        trace.append(f"route {route.name!r} matches {route.match}: strip {route.strip}, "
                     f"prepend {route.prepend!r} -> {number}")
        plan = index.tenant.settings
        e164 = to_e164(number, plan)
        call_class: CallClass = "emergency" if route.emergency else (
            route.permission or (call_class_of(e164, plan) if e164 else "national"))
        trace.append(f"E.164 {e164}, call class {call_class}" if e164 else
                     f"{number} is a short number (not E.164), call class {call_class}")
        rate = _rate(index, e164) if e164 else None
        if not route.emergency:
            refusal = _permission_refusal(index, caller, call_class, trace) or _price_refusal(
                index, caller, rate, e164 or number, trace)
            if refusal is not None:
                return refusal
        else:
            trace.append("emergency route: permission, price and PIN checks skipped")
        pin = caller.pin is not None and not route.emergency
        trace.append(f"PIN {'required' if pin else 'not required'}")
        attempts = tuple(
            TrunkAttempt(
                trunk=name,
                number_sent=number if e164 is None else format_for_trunk(
                    e164, index.trunks[name].number_format, plan),
                caller_id=_external_caller_id(index, caller, index.trunks[name], route),
            )
            for name in route.trunks
        )
        trace.append("trunks: " + ", ".join(f"{a.trunk} ({a.number_sent})" for a in attempts))
        return ToTrunk(
            tenant=index.domain, route_name=route.name, number_e164=e164, call_class=call_class,
            attempts=attempts, price_per_minute=rate.per_minute if rate else None,
            rate_name=rate.name if rate else None, currency=plan.currency, pin_required=pin, forwarded_from=via,
            trace=tuple(trace),
        )


# --------------------------------------------------------------------------- helpers


def _plan(ext: Extension, reason: ForwardReason) -> ForwardStep | None:
    rule = ext.forward.rule(reason)
    if rule is None:
        return None
    settings = ext.forward
    fallback = settings.fallback or ("voicemail" if has_voicemail(ext) else "hangup")
    after = (settings.no_answer_after_s or ext.ring_time_s) if reason == "no_answer" else None
    return ForwardStep(extension=ext.number, reason=reason, target=rule.to, after_s=after,
                       return_after_s=settings.return_after_s, fallback=fallback)


def _feature(
    index: _TenantIndex, caller: Extension, feature: Feature, argument: str, trace: list[str]
) -> Decision:
    trace.append(f"feature code {feature.value}" + (f" with {argument}" if argument else ""))
    problem = _feature_problem(index, caller, feature, argument)
    if problem is not None:
        trace.append(problem)
        return Refused(status=404, reason=problem, tenant=index.domain, trace=tuple(trace))
    return FeatureCode(tenant=index.domain, feature=feature, argument=argument,
                       trace=tuple(trace))


def _feature_problem(
    index: _TenantIndex, caller: Extension, feature: Feature, argument: str
) -> str | None:
    """Why ``argument`` does not suit ``feature``, or ``None``."""
    if feature in (Feature.INTERCOM, Feature.DIRECTED_PICKUP):
        if argument not in index.extensions or argument == caller.number:
            return f"{feature.value}: {argument or 'nothing'} is not another extension"
    elif feature == Feature.PICKUP:
        if argument and argument not in index.groups:
            return f"pickup: {argument} is not a group"
    elif argument and not argument.isdigit():
        return f"{feature.value}: slot {argument!r} is not digits"
    return None


def _to_extension(
    index: _TenantIndex,
    ext: Extension,
    shown: CallerId | None,
    trace: list[str],
    via: tuple[str, ...],
) -> ToExtension:
    trace.append(f"ring extension {ext.number} for {ext.ring_time_s}s")
    return ToExtension(tenant=index.domain, number=ext.number, name=ext.name,
                       ring_time_s=ext.ring_time_s, caller_id=shown, forwarded_from=via,
                       trace=tuple(trace))


def _to_group(
    index: _TenantIndex,
    group: Group,
    caller: Extension | None,
    trace: list[str],
    via: tuple[str, ...],
    shown: CallerId | None = None,
) -> ToGroup:
    if caller is not None:
        shown = _internal_caller_id(caller)
    if group.caller_id == "group":
        shown = CallerId(number=group.number, name=group.name, assert_identity=True)
    elif group.caller_id == "group_name_caller_number" and shown is not None:
        shown = CallerId(number=shown.number, name=group.name, assert_identity=True)
    trace.append(f"ring group {group.number}: {', '.join(group.members)}")
    return ToGroup(tenant=index.domain, number=group.number, name=group.name, caller_id=shown,
                   forwarded_from=via, trace=tuple(trace))


def _rate(index: _TenantIndex, e164: str) -> Rate | None:
    """Longest prefix match."""
    for end in range(len(e164), 1, -1):
        rate = index.rates.get(e164[:end])
        if rate is not None:
            return rate
    return None


def _permission_refusal(
    index: _TenantIndex, caller: Extension, call_class: CallClass, trace: list[str]
) -> Refused | None:
    allowed = caller.permission
    source = "own setting"
    if allowed == "tenant":
        allowed, source = index.tenant.settings.permission, "tenant default"
    ok = _LEVELS.index(allowed) >= _LEVELS.index(call_class)
    trace.append(f"permission: {caller.number} may call {allowed} ({source}); "
                 f"{call_class} call {'allowed' if ok else 'refused'}")
    if ok:
        return None
    reason = f"{call_class} calls not permitted for {caller.number}"
    return Refused(status=403, reason=reason, tenant=index.domain, trace=tuple(trace))


def _price_refusal(
    index: _TenantIndex, caller: Extension, rate: Rate | None, number: str, trace: list[str]
) -> Refused | None:
    cap = caller.max_price_per_minute
    currency = index.tenant.settings.currency
    unit = f" {currency}" if currency else ""
    if rate is not None:
        name = f" ({rate.name})" if rate.name else ""
        trace.append(f"rate {rate.e164_prefix}{name}: {money(rate.per_minute)}{unit}/min")
    else:
        trace.append(f"no rate for {number}")
    if cap is None:
        return None
    reason: str | None = None
    if rate is None:
        reason = f"no rate for {number} while {caller.number} has a price cap of {money(cap)}"
    elif rate.per_minute > cap:
        reason = f"destination price {money(rate.per_minute)}/min over the cap of {money(cap)}"
    trace.append(reason or f"price cap {money(cap)}{unit}/min: ok")
    if reason is None:
        return None
    return Refused(status=403, reason=reason, tenant=index.domain, trace=tuple(trace))


def _internal_caller_id(ext: Extension) -> CallerId:
    override = ext.internal_caller_id
    number = (override.number if override else None) or ext.number
    name = (override.name if override else None) or ext.name
    return CallerId(number=number, name=name, assert_identity=True)


def _external_caller_id(
    index: _TenantIndex, ext: Extension, trunk: Trunk | None, route: OutboundRoute | None
) -> CallerId:
    """Route override, the extension's DID, the tenant default, its DID, the first DID."""
    chosen = ext.external_caller_id
    candidates = [
        route.caller_id if route else None,
        None if chosen == RESTRICTED else chosen,
        index.tenant.settings.external_caller_id,
        index.did_of_extension.get(ext.number),
        index.tenant.inbound[0].did if index.tenant.inbound else None,
    ]
    number = next((c for c in candidates if c is not None), None)
    return CallerId(number=number, name=ext.name, restricted=chosen == RESTRICTED,
                    assert_identity=trunk is not None and trunk.trusted)

