"""The B2BUA as a transaction user: new INVITEs become calls, the rest is routed
to the call and leg its dialog belongs to.

Entry points (registered with the dispatcher): ``on_invite`` (a new call, or
a re-INVITE inside one), ``on_in_dialog`` (BYE, UPDATE, INFO...), ``on_ack``
(the ACK of a 2xx travels outside transactions) and ``on_cancel``.  The
manager identifies the caller (``identify.py``), asks the router where the
call goes, lets ``DialplanPlan`` turn that into attempts, starts the call's
recording when it is answered and its tenant or one of its extensions records
(``recording.py``), and writes the CDR, naming the recording, when the call
ends.  Dead calls are cleaned up: no ACK for our 2xx, a call
over ``max_duration_s``, or a leg that stops answering in-dialog requests.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

from dialplan.decisions import ToTrunk
from dialplan.routing import Router
from dialplan.schema import Config

from ..auth.bans import BanList, log_auth_failure
from ..sip.address import Address
from ..sip.builders import make_response, new_tag
from ..sip.core import SipCore
from ..sip.dialog import DialogId
from ..sip.dialog_session_timer import uas_negotiate
from ..sip.events import AckReceived, CancelReceived, Output, RequestReceived
from ..sip.headers import Via
from ..sip.message import Request, Response
from ..sip.timers import TimerConfig
from ..sip.uri import SipUri
from ..storage.base import CdrRecord, Storage
from .call import Attempt, Call, Outcome
from .call_env import CallState, Cancellable
from .credit import KEY as CREDIT_KEY
from .credit import CreditLedger, cost_of
from .identify import CallerIdentifier, FromExtension, FromTrunk, NotIdentified
from .media import PASS_THROUGH, MediaHook
from .plan import CallContext, DialplanPlan
from .recording import RecordingRules, recording_path

log = logging.getLogger("centrala.b2bua")


class CallManager:
    def __init__(
        self,
        config: Config,
        core: SipCore,
        identifier: CallerIdentifier,
        plan: DialplanPlan,
        storage: Storage,
        bans: BanList,
        *,
        local_address: Callable[[Address], tuple[str, str, int]],
        call_at: Callable[[float, Callable[[], None]], Cancellable],
        send: Callable[[list[Output]], None],
        now: Callable[[], float],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        media: MediaHook = PASS_THROUGH,
        state_dir: Path | None = None,
    ) -> None:
        self.config = config
        self.core = core
        self.identifier = identifier
        self.plan = plan
        self.storage = storage
        self.bans = bans
        self.timers: TimerConfig = core.settings.timers
        self._local_address = local_address
        self._call_at = call_at
        self._send = send
        self._now = now
        self._spawn = spawn
        self.media = media
        self.state_dir = state_dir  # recordings go under it; None: calls are not recorded
        self.recording = RecordingRules(config)
        self.credit = CreditLedger(config)
        self.calls: dict[str, Call] = {}
        self._dialogs: dict[DialogId, tuple[Call, str]] = {}
        self._by_invite: dict[int, Call] = {}
        self.router: Router = plan.router

    # -- CallEnv ----------------------------------------------------------------------
    def respond(self, handle: int, resp: Response, now: float) -> list[Output]:
        return list(self.core.respond(handle, resp, now))

    def send_request(
        self, req: Request, dest: Address, now: float, owner: object
    ) -> tuple[int, list[Output]]:
        handle, outputs = self.core.send_request(req, dest, now, owner)
        return handle, list(outputs)

    def cancel(self, handle: int, now: float, reason: str | None) -> list[Output]:
        return list(self.core.transactions.cancel(handle, now, reason))

    def via(self, dest: Address) -> Via:
        transport, host, port = self._local_address(dest)
        return Via(transport.upper(), _bracket(host), port, (("branch", "z9hG4bK"), ("rport", None)))

    def contact(self, dest: Address) -> str:
        transport, host, port = self._local_address(dest)
        param = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:centrala@{_bracket(host)}:{port}{param}>"

    def call_at(self, when: float, callback: Callable[[], None]) -> Cancellable:
        return self._call_at(when, callback)

    def send(self, outputs: list[Output]) -> None:
        self._send(outputs)

    def now(self) -> float:
        return self._now()

    def index(self, dialog_id: DialogId, call: Call, side: str) -> None:
        self._dialogs[dialog_id] = (call, side)

    def unindex(self, dialog_id: DialogId) -> None:
        self._dialogs.pop(dialog_id, None)

    def answered(self, call: Call) -> None:
        """The callee is in a call now (call waiting off: busy to the next caller)."""
        ctx: CallContext = call.data["ctx"]  # type: ignore[assignment]
        if call.winner is not None:
            self.plan.busy.enter(ctx.tenant, call.winner.target.label)
            self._record(call, ctx, call.winner.target.label)

    def _record(self, call: Call, ctx: CallContext, callee: str) -> None:
        """Record an answered call if its tenant or one of its extensions says so."""
        if self.state_dir is None or not self.recording.applies(
                ctx.tenant, (ctx.caller_number, callee)):
            return
        relative = recording_path(ctx.tenant, call.ref, time.time())
        if not call.media.record(self.state_dir, relative):
            log.warning("[%s] not recorded: media is not anchored (media.anchor: false)",
                        call.ref)

    def ended(self, call: Call) -> None:
        self.calls.pop(call.ref, None)
        self._by_invite.pop(call.a_handle, None)
        ctx: CallContext = call.data["ctx"]  # type: ignore[assignment]
        self.plan.busy.leave(ctx.tenant, ctx.caller_number)
        if call.winner is not None:
            self.plan.busy.leave(ctx.tenant, call.winner.target.label)
        cdr = self._cdr(call, ctx)
        self.storage.put_cdr(cdr)
        if cdr.cost is not None and self.credit.remaining(ctx.tenant) is not None:
            spent = self.credit.charge(ctx.tenant, Decimal(cdr.cost))
            self._spawn(self.storage.set_value(CREDIT_KEY + ctx.tenant, str(spent)))
        log.info("[%s] call %s -> %s ended: %s %s", call.ref, ctx.caller_number or ctx.caller_display,
                 ctx.dialed, call.record.disposition, call.record.cause)

    # -- new calls ------------------------------------------------------------------------
    def on_invite(self, event: RequestReceived, now: float) -> list[Output]:
        req = event.request
        if req.to.tag is not None:
            return self.on_in_dialog(event, now)
        if self._looped(req):  # RFC 3261 §16.3 step 4 / §8.2.2.2: our own INVITE came back
            return self._answer(event, 482, None, now)
        caller = self.identifier.identify(req, event.source, time.time())
        if isinstance(caller, NotIdentified):
            return self._not_identified(event, caller, now)
        timer = uas_negotiate(req)  # RFC 4028 §5: too short a session interval
        if timer.status is not None:
            return self._answer(event, timer.status, None, now, list(timer.headers))
        ctx = self._context(req, caller)
        if ctx is None:
            return self._answer(event, 404, None, now)
        call = Call(self, self.plan, req, event.handle, event.source, now)
        call.media = self.media.session(call.ref, ctx.tenant, ctx.caller_number)
        call.media.digits_to(call.on_media_digit)
        call.data["ctx"] = ctx
        self.calls[call.ref] = call
        self._by_invite[event.handle] = call
        self.plan.busy.enter(ctx.tenant, ctx.caller_number)
        call.arm_max_duration(now + self.config.calls.max_duration_s)
        log.info("[%s] %s calls %s: %s", call.ref, ctx.caller_number or ctx.caller_display,
                 ctx.dialed, type(ctx.decision).__name__)
        step = self.plan.first(ctx)
        if isinstance(step, Attempt) and self._over_credit(ctx):
            step = Outcome("failed", 402, "Credit limit reached")
        if isinstance(step, Outcome):
            return call.fail(step.status, step.phrase, now)
        return call.guarded(lambda: call.start(step, now), now)

    # -- credit -------------------------------------------------------------------------
    def _price(self, call: Call) -> Decimal | None:
        decision = call.data["ctx"].decision  # type: ignore[attr-defined]
        return decision.price_per_minute if isinstance(decision, ToTrunk) else None

    def _running(self, tenant: str, now: float) -> tuple[Decimal, list[Call]]:
        """What the tenant's answered, priced calls have cost so far."""
        total, calls = Decimal(0), []
        for call in self.calls.values():
            price = self._price(call)
            if price and call.record.answer is not None and call.data["ctx"].tenant == tenant:  # type: ignore[attr-defined]
                total += cost_of(price, now - call.record.answer)
                calls.append(call)
        return total, calls

    def _over_credit(self, ctx: CallContext) -> bool:
        decision = ctx.decision
        if not isinstance(decision, ToTrunk) or not decision.price_per_minute:
            return False
        running, _ = self._running(ctx.tenant, self._now())
        left = self.credit.remaining(ctx.tenant, running)
        return left is not None and left <= 0

    def tick(self, now: float) -> None:
        """End running calls of tenants whose credit is used up (once a second)."""
        for tenant in list(self.credit.limits):
            running, calls = self._running(tenant, now)
            left = self.credit.remaining(tenant, running)
            if not calls or left is None or left > 0:
                continue
            log.warning("tenant %s reached its credit limit: ending %d call(s)", tenant, len(calls))
            for call in calls:
                self._send(call.hangup(now, "system", 402))

    def _looped(self, req: Request) -> bool:
        """The INVITE is one of our own B legs, back through a proxy: B legs carry
        their call's reference after the @ of their Call-ID."""
        call = self.calls.get(req.call_id.rpartition("@")[2])
        return call is not None and any(
            leg.invite.call_id == req.call_id and leg.invite.from_.tag == req.from_.tag
            for leg in call.b_legs
        )

    def _context(self, req: Request, caller: FromExtension | FromTrunk) -> CallContext | None:
        uri = req.uri
        dialed = uri.user_unescaped if isinstance(uri, SipUri) and uri.user else None
        if not dialed:
            return None
        if isinstance(caller, FromExtension):
            sub = caller.subscriber
            decision = self.router.route_internal(sub.tenant, sub.number, dialed)
            display = self._internal_from(sub.tenant, sub.number, sub.display_name)
            ctx = CallContext(sub.tenant, display, sub.number, dialed, decision)
            if isinstance(decision, ToTrunk):
                ctx.direction = "outbound"
        else:
            decision = self.router.route_inbound(dialed)
            ctx = CallContext(caller.tenant, str(req.from_.without_param("tag")), None, dialed,
                              decision, direction="inbound")
            ctx.trunk = caller.trunk.name
        # forwards the router already followed (unconditional ones)
        ctx.diversions = [(ext, "unconditional") for ext in getattr(decision, "forwarded_from", ())]
        return ctx

    def _internal_from(self, tenant: str, number: str, name: str) -> str:
        cid = self.router.caller_id(tenant, number, "internal")
        if cid is None:
            return f'"{name}" <sip:{number}@{tenant}>'
        shown = cid.from_name or name
        return f'"{shown}" <{cid.from_uri(tenant)}>'

    def _not_identified(self, event: RequestReceived, who: NotIdentified, now: float) -> list[Output]:
        result = who.failure
        if result is not None:
            src = event.source
            log_auth_failure(src.host, src.port, result.username, who.realm or "-", "INVITE",
                             result.reason)
            user = f"{result.username}@{who.realm}" if result.username else None
            self.bans.record_failure(src.host, user, time.time())
        return self._answer(event, who.status, who.reason, now, who.headers)

    # -- inside calls -------------------------------------------------------------------------
    def on_in_dialog(self, event: RequestReceived, now: float) -> list[Output]:
        req = event.request
        found = self._dialogs.get(_dialog_id(req))
        if found is None:
            return self._answer(event, 481, None, now)
        call, side = found
        return call.guarded(lambda: call.on_request(side, req, event.handle, now), now)

    def on_ack(self, event: AckReceived, now: float) -> list[Output]:
        found = self._dialogs.get(_dialog_id(event.request))
        if found is None or found[1] != "a":
            return []
        call = found[0]
        return call.guarded(lambda: call.on_a_ack(event.request, now), now)

    def on_cancel(self, event: CancelReceived, now: float) -> list[Output] | None:
        """CANCEL of a call's INVITE; None if the INVITE is not a call's."""
        if event.invite_handle is None:
            return []
        call = self._by_invite.get(event.invite_handle)
        if call is None:
            return None
        return call.guarded(lambda: call.on_a_cancel(now), now)

    # -- helpers ----------------------------------------------------------------------------------
    def _answer(
        self,
        event: RequestReceived,
        status: int,
        reason: str | None,
        now: float,
        headers: list[tuple[str, object]] | None = None,
    ) -> list[Output]:
        resp = make_response(event.request, status, reason, to_tag=new_tag(),
                             headers=[("Server", self.config.server_name), *(headers or [])])
        return list(self.core.respond(event.handle, resp, now))

    def _cdr(self, call: Call, ctx: CallContext) -> CdrRecord:
        """The call's record; its times move from the loop clock to epoch seconds."""
        rec = call.record
        offset = time.time() - self._now()
        end = rec.end if rec.end is not None else self._now()
        billed = math.ceil(end - rec.answer) if rec.answer is not None else 0
        price = ctx.decision.price_per_minute if isinstance(ctx.decision, ToTrunk) else None
        cost = str(cost_of(price, billed)) if billed and price else None
        return CdrRecord(
            call_ref=call.ref, tenant=ctx.tenant, direction=ctx.direction,
            caller=ctx.caller_number or ctx.caller_display, callee=rec.callee or ctx.dialed,
            dialed=ctx.dialed, trunk=ctx.trunk, start=rec.start + offset,
            answer=None if rec.answer is None else rec.answer + offset,
            end=end + offset, billed_s=billed, disposition=rec.disposition,
            hangup_cause=rec.cause, hangup_side=rec.side, cost=cost, legs=call.legs_json(),
            recording=rec.recording,
        )

    @property
    def active(self) -> int:
        return sum(1 for c in self.calls.values() if c.state is not CallState.ENDED)


def _dialog_id(req: Request) -> DialogId:
    return DialogId(req.call_id, req.to.tag or "", req.from_.tag)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
