"""From dialplan decisions to call attempts: ringing, forwarding, failover.

The router (``dialplan.routing``) says where a call goes; this module turns
that into ``Attempt``s the call can ring, and decides what follows an
attempt that ends unanswered: the extension's forward for busy, no answer
or unavailable (with "return after": a forward target that does not answer
in time falls back to voicemail or hang-up), or the next trunk of an
outbound route when a trunk fails (5xx, timeout, unreachable).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialplan.decisions import (
    CallerId,
    Decision,
    ForwardStep,
    Refused,
    ToExtension,
    ToGroup,
    ToTrunk,
)
from dialplan.routing import Router
from dialplan.schema import Config, Trunk

from ..registrar.location import Location
from ..sip.address import Address
from .call import Attempt, Call, Outcome, Target

FAILOVER_STATUSES = frozenset({408, 480, 500, 502, 503, 504})
# RFC 5806 §4 Diversion reasons and RFC 4458 causes of History-Info, per forward reason.
DIVERSION_REASONS = {"unconditional": "unconditional", "busy": "user-busy",
                     "no_answer": "no-answer", "unavailable": "unavailable"}
HISTORY_CAUSES = {"unconditional": 302, "busy": 486, "no_answer": 408, "unavailable": 503}


@dataclass(slots=True)
class CallContext:
    """What the plan remembers about one call between attempts."""

    tenant: str
    caller_display: str  # From of the B legs: who is calling
    caller_number: str | None  # the calling extension, when it is one
    dialed: str
    decision: Decision
    trunk_attempts: list[Target] = field(default_factory=list)
    extension: str | None = None  # the extension the current attempt rings
    fallback: str | None = None  # after a "return after" forward: voicemail | hangup
    diversions: list[tuple[str, str]] = field(default_factory=list)  # (extension, reason)
    trunk: str | None = None
    direction: str = "internal"
    busy_check: bool = True


class DialplanPlan:
    def __init__(self, config: Config, router: Router, location: Location,
                 busy: "BusyLookup") -> None:
        self.config = config
        self.router = router
        self.location = location
        self.busy = busy
        self._trunks = {(t.domain, tr.name): tr for t in config.tenants for tr in t.trunks}

    # -- the first attempt ----------------------------------------------------------
    def first(self, ctx: CallContext) -> Attempt | Outcome:
        decision = ctx.decision
        if isinstance(decision, Refused):
            return Outcome("failed", decision.status, decision.reason)
        if isinstance(decision, ToExtension):
            return self._extension(ctx, decision.number, decision.ring_time_s)
        if isinstance(decision, ToGroup):
            return self._group(ctx, decision)
        if isinstance(decision, ToTrunk):
            return self._trunk(ctx, decision)
        return Outcome("failed", 480, "Not available yet")  # voicemail, features: later issues

    def _extension(self, ctx: CallContext, number: str, ring_time_s: float | None) -> Attempt | Outcome:
        ctx.extension = number
        aor = (ctx.tenant, number)
        if ctx.busy_check and self.busy.is_busy(ctx.tenant, number):
            return self.next_after(ctx, "extension", Outcome("busy", 486))
        targets = tuple(
            Target(
                uri=b.uri,
                to=f"<sip:{number}@{ctx.tenant}>",
                dest=b.source,
                label=number,
                from_=ctx.caller_display,
                extra_headers=self._diversion(ctx),
            )
            for b in self.location.bindings(aor)
            if b.reachable
        )
        if not targets:
            return self.next_after(ctx, "extension", Outcome("unavailable", 480))
        step = self.router.forward_plan(ctx.tenant, number, "no_answer")
        if step is not None and step.after_s is not None:
            ring_time_s = step.after_s
        return Attempt(targets, ring_time_s, "extension")

    def _group(self, ctx: CallContext, decision: ToGroup) -> Attempt | Outcome:
        """Hunt groups arrive with their issue; until then every member rings."""
        tenant = next(t for t in self.config.tenants if t.domain == ctx.tenant)
        group = next(g for g in tenant.groups if g.number == decision.number)
        targets = tuple(
            Target(b.uri, f"<sip:{m}@{ctx.tenant}>", b.source, m, ctx.caller_display)
            for m in group.members
            for b in self.location.bindings((ctx.tenant, m))
            if b.reachable
        )
        if not targets:
            return Outcome("unavailable", 480)
        return Attempt(targets, group.member_ring_time_s, "group")

    def _trunk(self, ctx: CallContext, decision: ToTrunk) -> Attempt | Outcome:
        if decision.pin_required:  # toll-fraud control: no PIN, no call (DTMF comes with media)
            return Outcome("failed", 403, "PIN required")
        ctx.direction = "outbound" if ctx.direction == "internal" else ctx.direction
        ctx.trunk_attempts = [t for a in decision.attempts if (t := self._trunk_target(ctx, a.trunk, a.number_sent, a.caller_id))]
        return self._next_trunk(ctx)

    def _next_trunk(self, ctx: CallContext) -> Attempt | Outcome:
        if not ctx.trunk_attempts:
            return Outcome("failed", 503, "No trunk available")
        target = ctx.trunk_attempts.pop(0)
        ctx.trunk = target.label.removeprefix("trunk:")
        return Attempt((target,), None, "trunk")

    def _trunk_target(self, ctx: CallContext, name: str, number: str, cid: CallerId) -> Target | None:
        trunk = self._trunks.get((ctx.tenant, name))
        if trunk is None:
            return None
        host = trunk.host
        from_uri = cid.from_uri(ctx.tenant)
        name_part = f'"{cid.from_name}" ' if cid.from_name else ""
        extra: list[tuple[str, object]] = list(self._diversion(ctx))
        if cid.privacy:
            extra.append(("Privacy", cid.privacy))
        pai = cid.pai_uri(ctx.tenant) if trunk.trusted else None
        if pai:
            extra.append(("P-Asserted-Identity", f"<{pai}>"))
        return Target(
            uri=f"sip:{number}@{host}:{trunk.port}",
            to=f"<sip:{number}@{host}>",
            dest=trunk_address(trunk),
            label=f"trunk:{name}",
            from_=f"{name_part}<{from_uri}>",
            extra_headers=tuple(extra),
            credentials=(trunk.username, trunk.password.get_secret_value())
            if trunk.username and trunk.password is not None else None,
        )

    @staticmethod
    def _diversion(ctx: CallContext) -> tuple[tuple[str, object], ...]:
        """RFC 5806 Diversion (latest first) and RFC 7044 History-Info (in order,
        with the RFC 4458 cause) toward a forward target."""
        out: list[tuple[str, object]] = []
        for ext, reason in reversed(ctx.diversions):
            out.append(("Diversion", f"<sip:{ext}@{ctx.tenant}>;reason={DIVERSION_REASONS[reason]}"))
        for i, (ext, reason) in enumerate(ctx.diversions):
            cause = HISTORY_CAUSES[reason]
            out.append(("History-Info", f"<sip:{ext}@{ctx.tenant}?Reason=SIP%3Bcause%3D{cause}>;index=1.{i + 1}"))
        return tuple(out)

    # -- after an attempt ---------------------------------------------------------------
    def next(self, call: Call, attempt: Attempt, outcome: Outcome) -> Attempt | Outcome:
        ctx: CallContext = call.data["ctx"]  # type: ignore[assignment]
        return self.next_after(ctx, attempt.kind, outcome)

    def next_after(self, ctx: CallContext, kind: str, outcome: Outcome) -> Attempt | Outcome:
        if kind == "trunk":
            if outcome.status in FAILOVER_STATUSES or outcome.reason == "unavailable":
                return self._next_trunk(ctx) if ctx.trunk_attempts else Outcome(
                    "failed", 503, "Trunk failure")
            return outcome
        if ctx.fallback is not None:  # a forward target did not answer in time
            return Outcome("failed", 480, "Forward target did not answer")
        if kind != "extension" or ctx.extension is None:
            return outcome
        step = self.router.forward_plan(ctx.tenant, ctx.extension, outcome.reason)  # type: ignore[arg-type]
        if step is None:
            return outcome
        return self._forward(ctx, step, outcome)

    def _forward(self, ctx: CallContext, step: ForwardStep, outcome: Outcome) -> Attempt | Outcome:
        hops = [ext for ext, _ in ctx.diversions]
        if step.target.kind == "voicemail" or len(hops) >= 5 or step.target.value in hops:
            return outcome if step.target.kind != "voicemail" else Outcome(
                "failed", 480, "Voicemail not available yet")
        ctx.diversions.append((step.extension, step.reason))
        if step.return_after_s is not None:
            ctx.fallback = step.fallback
        ring = step.return_after_s
        kind, value = step.target.kind, step.target.value or ""
        if kind == "extension":
            ctx.busy_check = True
            return self._extension(ctx, value, ring)
        if kind == "external":
            decision = self.router.route_internal(ctx.tenant, step.extension, value)
            if isinstance(decision, ToTrunk):
                attempt = self._trunk(ctx, decision)
                if isinstance(attempt, Attempt) and ring is not None:
                    return Attempt(attempt.targets, ring, "trunk")
                return attempt
            if isinstance(decision, Refused):
                return Outcome("failed", decision.status, decision.reason)
        return outcome


class BusyLookup:
    """Extensions in a call right now (call waiting off means busy)."""

    def __init__(self, config: Config) -> None:
        self._waiting_off = {
            (t.domain, e.number) for t in config.tenants for e in t.extensions if not e.call_waiting
        }
        self.active: dict[tuple[str, str], int] = {}

    def is_busy(self, tenant: str, number: str) -> bool:
        return (tenant, number) in self._waiting_off and self.active.get((tenant, number), 0) > 0

    def enter(self, tenant: str, number: str | None) -> None:
        if number is not None:
            key = (tenant, number)
            self.active[key] = self.active.get(key, 0) + 1

    def leave(self, tenant: str, number: str | None) -> None:
        if number is not None:
            key = (tenant, number)
            left = self.active.get(key, 0) - 1
            if left > 0:
                self.active[key] = left
            else:
                self.active.pop(key, None)


def trunk_address(trunk: Trunk) -> Address:
    host = "127.0.0.1" if trunk.host == "localhost" else trunk.host
    return Address(trunk.transport, host, trunk.port)
