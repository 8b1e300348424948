"""One call across the switch: the caller's leg (A) and the legs it rings (B).

Theory of operation
-------------------
Leg A is the dialog with the caller: we are its UAS.  Each B leg is an
INVITE we send as a UAC, one per device or trunk being tried; several B legs
at once are a fork (an extension's phones ringing in parallel).  The call
goes through *attempts*: ring these targets for so long.  When an attempt
ends without an answer, the call's ``Plan`` (forwarding, failover: the
dialplan's business, see ``plan.py``) says what next: another attempt, or
the final status for the caller.

* B provisionals are relayed to A (180, or 183 with early media), under the
  one To-tag leg A has for the whole call.
* The first B 2xx wins: it is ACKed, the other forks get CANCEL with
  ``Reason: SIP;cause=200;text="Call completed elsewhere"``, and A gets the
  200, retransmitted until A's ACK (RFC 3261 §13.3.1.4).  A late 2xx from
  another fork is ACKed and hung up.
* A's CANCEL ends every fork (487 to A); BYE from either side ends both;
  re-INVITE, UPDATE and INFO are relayed to the other leg and their answer
  relayed back; a glare is answered 491 by the dialog.  A re-offer the other
  leg refuses (415, 488, 606: a T.38 re-INVITE to a party without fax relay)
  reaches the sender as 488, and the media session and the SDP last sent on
  that leg stay as they were (RFC 3264 §8, RFC 3261 §14.1).
* Every SDP crossing the call goes through its ``MediaSession`` (see
  ``media.py``; ``anchor.py`` anchors RTP): the offer to each fork, answers
  in 183 and 2xx, re-INVITE/UPDATE offers and answers both ways.  An SDP it
  refuses gets its status (488, 400) back to the sender; a B 2xx with one is
  ACKed and hung up, and that fork fails with 502.  An INVITE without SDP
  gets the offer in B's 2xx: B's ACK waits for A's, which carries the
  answer.  An offerless re-INVITE is answered here with the last SDP sent on
  that leg.
* Everything is released when the call ends, however it ends (an exception
  in one of its handlers ends it with 500): timers, dialog index entries,
  the media session; the CDR is written.

Outputs are raw transaction-layer outputs (``Send``, events); from a timer
they go out through ``env.send``.  The call reads no clock and owns no socket.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable

from media.dtmf import DTMF, DTMF_RELAY, DtmfError, DtmfInfo
from media.sdp import SdpError

from ..auth.client import authorization, pick_challenge
from ..sip.address import Address
from ..sip.builders import make_response, new_branch, new_call_id, new_tag
from ..sip.dialog import Dialog, DialogError
from ..sip.dialog_invite import InviteSessionUAS
from ..sip.dialog_session_timer import uac_from_2xx, uas_negotiate
from ..sip.events import Output, ResponseReceived, Send, TransactionTimeout, TransportError
from ..sip.message import Request, Response, new_request
from .attempts import Attempt, Outcome, Plan, Target, classify, disposition_of
from .call_env import CallEnv, CallRecord, CallState, Cancellable
from .media import PASS_THROUGH, Leg, MediaSession
from .session_timers import B_LEG_REQUEST_HEADERS, SessionRefresh, allowed_methods

log = logging.getLogger("centrala.call")

ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'
# Headers copied from one leg to the other; Supported/Require/Session-Expires are
# per leg (each leg negotiates its own extensions and session timer).
RELAYED_HEADERS = ("content-type", "allow", "accept", "reason")
OFFER_METHODS = ("INVITE", "UPDATE")  # requests whose body is an SDP offer (RFC 3311, 3264)
NOT_ACCEPTABLE_HERE = 488
OFFER_REFUSALS = frozenset({415, 488, 606})  # the media offered refused: 488 to the sender


class BLeg:
    __slots__ = (
        "answered",
        "auth_tried",
        "call",
        "dialog",
        "done",
        "handle",
        "invite",
        "media",
        "status",
        "target",
    )

    def __init__(self, call: Call, target: Target, invite: Request, media: Leg) -> None:
        self.call = call
        self.target = target
        self.invite = invite
        self.media = media
        self.handle = 0
        self.dialog: Dialog | None = None
        self.status = 0
        self.done = False
        self.answered = False
        self.auth_tried = False

    def __call__(self, event: object, now: float) -> list[Output]:
        """Transaction events of this leg's INVITE (the leg is the owner)."""
        return self.call.guarded(lambda: self.call.on_b_event(self, event, now), now)


class Call:
    def __init__(
        self,
        env: CallEnv,
        plan: Plan,
        invite: Request,
        handle: int,
        source: Address,
        now: float,
        *,
        ref: str | None = None,
    ) -> None:
        self.env = env
        self.plan = plan
        self.ref = ref or secrets.token_hex(8)
        self.a_invite = invite
        self.a_handle = handle
        self.a_source = source
        self.a_tag = new_tag()
        self.a_dialog: Dialog | None = None
        self.a_session: InviteSessionUAS | None = None
        self.b_legs: list[BLeg] = []
        self.winner: BLeg | None = None
        self.attempt: Attempt | None = None
        self.state = CallState.ROUTING
        self.record = CallRecord(start=now)
        self.early_sent = False
        self.pending: dict[tuple[str, int], tuple[str, int, Request]] = {}  # relayed requests
        self._timers: dict[str, Cancellable] = {}
        self.data: dict[str, object] = {}  # what the plan wants to remember
        self.sessions = SessionRefresh(self)
        self.sdp_sent: dict[str, bytes] = {}  # last SDP we sent on each leg
        self.b_allow: frozenset[str] = frozenset()
        self.media: MediaSession = PASS_THROUGH
        self.a_media = Leg("a", source)
        self._forks = 0
        self._b_ack: tuple[Dialog, BLeg] | None = None  # B's 2xx offered: its ACK waits for A's

    def __repr__(self) -> str:
        return f"<Call {self.ref} {self.state.value}>"

    # -- attempts -----------------------------------------------------------------
    def start(self, attempt: Attempt, now: float) -> list[Output]:
        if self.state is CallState.ENDED:
            return []
        self.attempt = attempt
        self.state = CallState.RINGING
        self._cancel_timer("ring")
        out: list[Output] = []
        refused: SdpError | None = None
        for target in attempt.targets:
            try:
                out += self._send_b_invite(target, now)
            except SdpError as exc:  # this target's leg allows none of the offered codecs...
                log.warning("[%s] offer to %s refused: %s", self.ref, target.label, exc.reason)
                refused = exc
        if refused is not None and all(leg.done for leg in self.b_legs):
            return out + self.fail(refused.status, None, now)  # ...or the offer is bad
        if attempt.ring_time_s is not None:
            self.arm("ring", now + attempt.ring_time_s, self._ring_timeout)
        if not attempt.targets:
            out += self._attempt_over(Outcome("unavailable", 480), now)
        return out

    def _send_b_invite(self, target: Target, now: float) -> list[Output]:
        a = self.a_invite
        self._forks += 1
        media = Leg("b", target.dest, target.label, self._forks)
        body = self.media.offer(self.a_media, media, a.body) if a.body else b""
        max_forwards = (a.max_forwards if a.max_forwards is not None else 70) - 1
        headers: list[tuple[str, object]] = [
            ("Via", self.env.via(target.dest).with_param("branch", new_branch())),
            ("Max-Forwards", max(max_forwards, 0)),
            ("From", f"{target.from_};tag={new_tag()}"),
            ("To", target.to),
            ("Call-ID", new_call_id(self.ref)),
            ("CSeq", "1 INVITE"),
            ("Contact", self.env.contact(target.dest)),
        ]
        headers += [(k.title(), v) for k, v in self._relayed(a) if k != "content-type"]
        headers += B_LEG_REQUEST_HEADERS  # RFC 4028 on this leg, whatever A does
        headers += list(target.extra_headers)
        if body:
            headers.append(("Content-Type", a.get("content-type") or "application/sdp"))
        invite = new_request("INVITE", target.uri, headers, body)
        leg = BLeg(self, target, invite, media)
        self.b_legs.append(leg)
        leg.handle, out = self.env.send_request(invite, target.dest, now, leg)
        return out

    @staticmethod
    def _relayed(msg: Request | Response) -> list[tuple[str, str]]:
        return [(k, v) for _, k, v in msg.fields if k in RELAYED_HEADERS]

    def _ring_timeout(self) -> None:
        now = self._now()
        out = self._cancel_forks(now, None)
        for leg in self.b_legs:
            leg.done = True
        out += self._attempt_over(Outcome("no_answer", 480, "No answer"), now)
        self.env.send(out)

    def _attempt_over(self, outcome: Outcome, now: float) -> list[Output]:
        assert self.attempt is not None
        self._cancel_timer("ring")
        step = self.plan.next(self, self.attempt, outcome)
        if isinstance(step, Attempt):
            self.b_legs = [leg for leg in self.b_legs if not leg.done]
            return self.start(step, now)
        return self.fail(step.status, step.phrase, now)

    # -- B leg events --------------------------------------------------------------
    def on_b_event(self, leg: BLeg, event: object, now: float) -> list[Output]:
        if isinstance(event, ResponseReceived):
            return self._on_b_response(leg, event.response, now)
        if isinstance(event, (TransactionTimeout, TransportError)) and not leg.done:
            leg.done, leg.status = True, 408 if isinstance(event, TransactionTimeout) else 503
            return self._fork_finished(now)
        return []

    def _on_b_response(self, leg: BLeg, resp: Response, now: float) -> list[Output]:
        status = resp.status
        if status < 200:
            return self._on_b_provisional(leg, resp, now) if status > 100 else []
        if status < 300:
            return self._on_b_answer(leg, resp, now)
        if leg.done:
            return []
        if status in (401, 407) and leg.target.credentials and not leg.auth_tried:
            retry = self._retry_with_credentials(leg, resp, now)
            if retry is not None:
                return retry
        leg.done, leg.status = True, status
        self.record.legs.append({"to": leg.target.label, "status": status})
        return self._fork_finished(now)

    def _retry_with_credentials(self, leg: BLeg, resp: Response, now: float) -> list[Output] | None:
        """RFC 3261 §22.2: the same INVITE again, CSeq + 1, with our credentials."""
        picked = pick_challenge(resp)
        if picked is None or leg.target.credentials is None:
            return None
        header, challenge = picked
        user, password = leg.target.credentials
        old = leg.invite
        invite = Request("INVITE", old.uri_text, list(old.fields), old.body)
        invite.set("Via", self.env.via(leg.target.dest).with_param("branch", new_branch()))
        invite.set("CSeq", f"{old.cseq.seq + 1} INVITE")
        invite.add(header, authorization(challenge, "INVITE", old.uri_text, user, password))
        leg.invite, leg.auth_tried = invite, True
        leg.handle, out = self.env.send_request(invite, leg.target.dest, now, leg)
        return out

    def _on_b_provisional(self, leg: BLeg, resp: Response, now: float) -> list[Output]:
        if self.state is not CallState.RINGING or leg.done:
            return []
        if resp.to.tag and leg.dialog is None and resp.has("contact"):
            leg.dialog = Dialog.from_uac(leg.invite, resp)
        body = self._early_answer(leg, resp)
        if self.early_sent and not body:
            return []
        self.early_sent = True
        status = 183 if body else 180
        reason = resp.reason if status == resp.status else None
        return self._to_a(status, reason, body, self._relayed(resp), now)[1]

    def _early_answer(self, leg: BLeg, resp: Response) -> bytes:
        """A 183's answer for A; none when we sent no offer (an offer in an
        unreliable provisional is repeated in the 2xx, RFC 3261 §13.2.1)."""
        if not resp.body or not leg.invite.body:
            return b""
        try:
            return self.media.answer(leg.media, resp.body)
        except SdpError as exc:
            log.warning("[%s] early media of %s dropped: %s", self.ref, leg.target.label, exc.reason)
            return b""

    def _on_b_answer(self, leg: BLeg, resp: Response, now: float) -> list[Output]:
        dialog = leg.dialog
        if dialog is None or dialog.id.remote_tag != resp.to.tag:
            dialog = Dialog.from_uac(leg.invite, resp)
        else:
            outcome = dialog.receive_response(resp)
            if outcome.retransmission:  # no ACK yet when it waits for A's answer
                return [Send(outcome.ack, leg.target.dest)] if outcome.ack is not None else []
        late = self.winner is not None or self.state is not CallState.RINGING
        try:
            body = b"" if late else self._b_answer_for_a(leg, resp)
        except SdpError as exc:
            log.warning("[%s] 2xx SDP of %s refused: %s", self.ref, leg.target.label, exc.reason)
            leg.status = 502  # Bad Gateway: an invalid answer from downstream (§21.5.3)
            return self._ack(dialog, leg) + self._drop_fork(leg, dialog, now) + self._fork_finished(now)
        if late:  # a second fork answered too late: it is ACKed and hung up (§13.2.2.4)
            return self._ack(dialog, leg) + self._drop_fork(leg, dialog, now)
        offerless = not leg.invite.body and bool(body)
        out = [] if offerless else self._ack(dialog, leg)
        if offerless:
            self._b_ack = (dialog, leg)
        leg.dialog, leg.done, leg.answered, leg.status = dialog, True, True, resp.status
        self.winner = leg
        if leg.invite.body:
            self.sdp_sent["b"] = leg.invite.body
        self.env.index(dialog.id, self, "b")
        self._cancel_timer("ring")
        out += self._cancel_forks(now, ELSEWHERE)
        self.record.answer = now
        self.record.callee = leg.target.label
        self.record.legs.append({"to": leg.target.label, "status": resp.status})
        self.state = CallState.ANSWERED
        self.env.answered(self)
        self.b_allow = allowed_methods(resp)
        self.sessions.negotiated("b", uac_from_2xx(resp), now)
        return out + self._answer_a(resp, body, now)

    def _b_answer_for_a(self, leg: BLeg, resp: Response) -> bytes:
        """The SDP of the 2xx for A: the anchored answer, or B's anchored offer
        when the INVITE had none."""
        if not resp.body:
            return b""
        if leg.invite.body:
            return self.media.answer(leg.media, resp.body)
        return self.media.offer(leg.media, self.a_media, resp.body)

    def _ack(self, dialog: Dialog, leg: BLeg, body: bytes = b"") -> list[Output]:
        ack = dialog.ack_for_2xx(
            leg.invite.cseq.seq, self.env.via(leg.target.dest), body=body,
            content_type="application/sdp" if body else None,
        )
        return [Send(ack, leg.target.dest)]

    def _drop_fork(self, leg: BLeg, dialog: Dialog, now: float) -> list[Output]:
        leg.done = True
        return self._bye(dialog, leg.target.dest, now)

    def _fork_finished(self, now: float) -> list[Output]:
        if self.state is not CallState.RINGING or any(not leg.done for leg in self.b_legs):
            return []
        statuses = [leg.status for leg in self.b_legs]
        return self._attempt_over(classify(statuses), now)

    def _cancel_forks(self, now: float, reason: str | None) -> list[Output]:
        out: list[Output] = []
        for leg in self.b_legs:
            if not leg.done and leg is not self.winner:
                out += self.env.cancel(leg.handle, now, reason)
                if reason == ELSEWHERE:
                    leg.done = True
        return out

    # -- leg A ---------------------------------------------------------------------
    def _to_a(
        self,
        status: int,
        reason: str | None,
        body: bytes,
        relayed: list[tuple[str, str]],
        now: float,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> tuple[Response, list[Output]]:
        resp = make_response(self.a_invite, status, reason, to_tag=self.a_tag)
        resp.add("Contact", self.env.contact(self.a_source))
        for name, value in extra:
            resp.add(name, value)
        for key, value in relayed:
            if key != "content-type":
                resp.add(key.title(), value)
        if body:
            resp.add("Content-Type", dict(relayed).get("content-type", "application/sdp"))
        resp.body = body
        if self.a_dialog is None:
            self.a_dialog = Dialog.from_uas(self.a_invite, resp, self.env.contact(self.a_source))
            self.env.index(self.a_dialog.id, self, "a")
        else:
            self.a_dialog.send_response(resp)
        return resp, self.env.respond(self.a_handle, resp, now)

    def _answer_a(self, b_resp: Response, body: bytes, now: float) -> list[Output]:
        """200 to A, retransmitted until A's ACK (RFC 3261 §13.3.1.4), with A's
        own session timer (the manager refused a too short one with 422)."""
        timer = uas_negotiate(self.a_invite)
        resp, out = self._to_a(200, None, body, self._relayed(b_resp), now, timer.headers)
        self.sdp_sent["a"] = body
        self.sessions.negotiated("a", timer.timer, now)
        self.a_session = InviteSessionUAS(resp, self.a_source, now, self.env.timers, self)
        self._arm_session(now)
        return out

    def _arm_session(self, now: float) -> None:
        session = self.a_session
        if session is None:
            return
        deadline = session.next_timer()
        if deadline is not None:
            self.arm("a2xx", deadline, self._session_timer)

    def _session_timer(self) -> None:
        session = self.a_session
        if session is None:
            return
        now = self._now()
        out: list[Output] = []
        for item in session.handle_timer(now):
            if isinstance(item, Send):
                out.append(item)
            else:  # no ACK (§13.3.1.4) or no PRACK (RFC 3262 §3): no call
                out += self.hangup(now, "system", 408)
        self._arm_session(now)
        self.env.send(out)

    def fail(self, status: int, phrase: str | None, now: float) -> list[Output]:
        if self.state is CallState.ENDED:
            return []
        resp = make_response(self.a_invite, status, phrase, to_tag=self.a_tag)
        out = self.env.respond(self.a_handle, resp, now)
        self.record.cause = status
        self.record.disposition = disposition_of(status)
        return out + self._end(now)

    def on_a_cancel(self, now: float) -> list[Output]:
        """CANCEL from the caller (the layer already answered it 200)."""
        if self.state is not CallState.RINGING and self.state is not CallState.ROUTING:
            return []
        out = self._cancel_forks(now, None)
        self.record.side = "caller"
        return out + self.fail(487, None, now)

    def on_a_ack(self, ack: Request, now: float) -> list[Output]:
        if self.a_session is not None and self.a_session.ack_received(ack):
            self.a_session = None
            self._cancel_timer("a2xx")
            return self._b_ack_with_answer(ack.body, now)
        return []

    def _b_ack_with_answer(self, answer: bytes, now: float) -> list[Output]:
        """B offered in its 2xx: A's ACK brings the answer for B's ACK."""
        if self._b_ack is None:
            return []
        dialog, leg = self._b_ack
        self._b_ack = None
        try:
            body = self.media.answer(self.a_media, answer)
        except SdpError as exc:
            log.warning("[%s] answer in A's ACK refused: %s", self.ref, exc.reason)
            return self._ack(dialog, leg) + self.hangup(now, "system", exc.status)
        self.sdp_sent["b"] = body
        return self._ack(dialog, leg, body)

    # -- in-dialog requests ---------------------------------------------------------
    def on_request(self, side: str, req: Request, handle: int, now: float) -> list[Output]:
        dialog = self.a_dialog if side == "a" else (self.winner.dialog if self.winner else None)
        if dialog is None:
            return self.env.respond(handle, make_response(req, 481), now)
        check = dialog.receive_request(req)
        if not check.ok:
            resp = make_response(req, check.status or 500, check.reason)
            for name, value in check.headers:
                resp.add(name, value)
            return self.env.respond(handle, resp, now)
        if req.method == "BYE":
            out = self.env.respond(handle, make_response(req, 200), now)
            return out + self.hangup(now, "caller" if side == "a" else "callee", 200, skip=side)
        if req.method in OFFER_METHODS and not req.body:  # a session refresh: answered here
            return self._refresh_here(side, dialog, req, handle, now)
        if req.method == "INFO" and self._digit_here(side, req):  # RFC 4733 to the other leg
            return self.env.respond(handle, make_response(req, 200), now)
        return self._relay_request(side, req, handle, now)

    def _digit_here(self, side: str, req: Request) -> bool:
        """A DTMF INFO sent on as RFC 4733 when the other leg negotiated telephone-event."""
        kind = (req.get("content-type") or "").split(";", 1)[0].strip().lower()
        if kind not in (DTMF, DTMF_RELAY) or self.state is not CallState.ANSWERED:
            return False
        try:
            info = DtmfInfo.parse(kind, req.body)
        except DtmfError:
            return False
        return self.media.send_digit("b" if side == "a" else "a", info.digit, info.duration_ms)

    def on_media_digit(self, from_side: str, digit: str, duration_ms: int) -> None:
        """An RFC 4733 key press from ``from_side``, whose peer has no telephone-event:
        an INFO (application/dtmf-relay) on the other leg."""
        now = self._now()

        def send() -> list[Output]:
            other = self._other(from_side)
            if other is None or self.state is not CallState.ANSWERED:
                return []
            dialog, dest = other
            try:
                info = dialog.new_request("INFO", self.env.via(dest),
                                          body=DtmfInfo(digit, duration_ms).body(),
                                          content_type=DTMF_RELAY)
            except DialogError:
                return []
            return self.env.send_request(info, dest, now, _ignore)[1]

        self.env.send(self.guarded(send, now))

    def _refresh_here(self, side: str, dialog: Dialog, req: Request, handle: int,
                      now: float) -> list[Output]:
        """UPDATE without SDP, or re-INVITE without SDP (its 2xx offers the SDP last
        sent on the leg, unchanged, so the ACK's answer changes nothing)."""
        timer = uas_negotiate(req)
        resp = make_response(req, timer.status or 200)
        for name, value in timer.headers:
            resp.add(name, value)
        if req.method == "INVITE" and timer.status is None:
            resp.add("Contact", self.env.contact(self._peer(side)))
            if self.sdp_sent.get(side):
                resp.add("Content-Type", "application/sdp")
                resp.body = self.sdp_sent[side]
        dialog.send_response(resp)
        if timer.status is None:
            self.sessions.negotiated(side, timer.timer, now)
        return self.env.respond(handle, resp, now)

    def _relay_request(self, side: str, req: Request, handle: int, now: float) -> list[Output]:
        other = self._other(side)
        if other is None or self.state is not CallState.ANSWERED:
            return self.env.respond(handle, make_response(req, 481), now)
        dialog, dest = other
        other_side = "b" if side == "a" else "a"
        headers = [(k.title(), v) for k, v in self._relayed(req) if k != "content-type"]
        body = req.body
        if req.method in OFFER_METHODS:  # the other leg's own session timer, our anchors
            headers += self.sessions.request_headers(other_side)
            try:
                body = self.media.offer(self._media_leg(side), self._media_leg(other_side), body)
            except SdpError as exc:
                log.warning("[%s] %s offer from %s refused: %s", self.ref, req.method, side,
                            exc.reason)
                return self.env.respond(handle, make_response(req, exc.status), now)
        try:
            relayed = dialog.new_request(
                req.method, self.env.via(dest), body=body,
                content_type=req.get("content-type"), extra_headers=headers,
            )
        except DialogError:
            return self.env.respond(handle, make_response(req, 491), now)
        relay = _Relay(self, side, req, handle, relayed, self.sdp_sent.get(other_side))
        if req.method in OFFER_METHODS:
            self.sdp_sent[other_side] = body
        return self.env.send_request(relayed, dest, now, relay)[1]

    def on_relay_response(self, relay: _Relay, resp: Response, now: float) -> list[Output]:
        if relay.answered:  # a 2xx again (RFC 6026 §8.4): our ACK was lost, send it again
            return self._ack_relayed(relay, resp)
        relay.answered = True
        if self.state is CallState.ENDED:
            return self.env.respond(relay.handle, make_response(relay.original, 481), now)
        other = self._other(relay.side)
        if other is not None:
            other[0].receive_response(resp)
        out = self._ack_relayed(relay, resp)
        offer_answered = relay.original.method in OFFER_METHODS and resp.status < 300
        status, body = resp.status, resp.body
        if relay.original.method in OFFER_METHODS and status >= 300:
            status = self._offer_refused(relay, status)
        if offer_answered and body:
            other_side = "b" if relay.side == "a" else "a"
            try:
                body = self.media.answer(self._media_leg(other_side), body)
            except SdpError as exc:  # the other leg took the offer; this one keeps its session
                log.warning("[%s] answer from %s refused: %s", self.ref, other_side, exc.reason)
                status, body, offer_answered = exc.status, b"", False
        answer = make_response(relay.original, status, resp.reason if status == resp.status else None)
        for key, value in self._relayed(resp):
            if key != "content-type":
                answer.add(key.title(), value)
        if body:
            answer.add("Content-Type", resp.get("content-type") or "application/sdp")
        if offer_answered:
            answer.add("Contact", self.env.contact(self._peer(relay.side)))
        answer.body = body
        if offer_answered and body:
            self.sdp_sent[relay.side] = body
        if offer_answered:
            other_side = "b" if relay.side == "a" else "a"
            self.sessions.answered_by_peer(other_side, resp, now)
            for name, value in self.sessions.answer_headers(relay.side, relay.original, now):
                answer.add(name, value)
        own = self.a_dialog if relay.side == "a" else self.winner.dialog  # type: ignore[union-attr]
        if own is not None:
            own.send_response(answer)
        return out + self.env.respond(relay.handle, answer, now)

    def _offer_refused(self, relay: _Relay, status: int) -> int:
        """A relayed re-offer got a failure: the session stays as it was on both legs;
        the status for the sender (the media types refused become 488)."""
        other_side = "b" if relay.side == "a" else "a"
        self.media.refused(self._media_leg(other_side))
        if relay.sdp_before is None:
            self.sdp_sent.pop(other_side, None)
        else:
            self.sdp_sent[other_side] = relay.sdp_before
        return NOT_ACCEPTABLE_HERE if status in OFFER_REFUSALS else status

    def _ack_relayed(self, relay: _Relay, resp: Response) -> list[Output]:
        """The ACK for a 2xx to a re-INVITE we relayed (RFC 3261 §13.2.2.4)."""
        other = self._other(relay.side)
        if other is None or relay.request.method != "INVITE" or not 200 <= resp.status < 300:
            return []
        ack = other[0].ack_for_2xx(relay.request.cseq.seq, self.env.via(other[1]))
        return [Send(ack, other[1])]

    def leg_dialog(self, side: str) -> tuple[Dialog, Address, frozenset[str], bytes] | None:
        """The dialog of ``side``, where it goes, the methods its peer allows, and the
        last SDP we sent on it (for session refreshes)."""
        if side == "a":
            if self.a_dialog is None:
                return None
            allow = allowed_methods(self.a_invite)
            return self.a_dialog, self.a_source, allow, self.sdp_sent.get("a", b"")
        if self.winner is None or self.winner.dialog is None:
            return None
        return self.winner.dialog, self.winner.target.dest, self.b_allow, self.sdp_sent.get("b", b"")

    def _peer(self, side: str) -> Address:
        return self.a_source if side == "a" else self.winner.target.dest  # type: ignore[union-attr]

    def _media_leg(self, side: str) -> Leg:
        return self.a_media if side == "a" else self.winner.media  # type: ignore[union-attr]

    def _other(self, side: str) -> tuple[Dialog, Address] | None:
        if side == "a":
            if self.winner is None or self.winner.dialog is None:
                return None
            return self.winner.dialog, self.winner.target.dest
        return (self.a_dialog, self.a_source) if self.a_dialog is not None else None

    # -- ending ------------------------------------------------------------------------
    def hangup(self, now: float, side: str, cause: int, skip: str | None = None) -> list[Output]:
        """End an answered call: BYE to every leg but ``skip``."""
        if self.state is CallState.ENDED:
            return []
        out: list[Output] = []
        if self._b_ack is not None:  # B's 2xx is ACKed before its BYE (§13.2.2.4, §15)
            out += self._ack(*self._b_ack)
            self._b_ack = None
        if skip != "a" and self.a_dialog is not None:
            out += self._bye(self.a_dialog, self.a_source, now)
        if skip != "b" and self.winner is not None and self.winner.dialog is not None:
            out += self._bye(self.winner.dialog, self.winner.target.dest, now)
        self.record.side, self.record.cause = side, cause
        self.record.disposition = "answered" if self.record.answer is not None else "failed"
        return out + self._end(now)

    def _bye(self, dialog: Dialog, dest: Address, now: float) -> list[Output]:
        if dialog.terminated:
            return []
        try:
            bye = dialog.new_request("BYE", self.env.via(dest))
        except DialogError:
            return []
        dialog.terminate()
        return self.env.send_request(bye, dest, now, _ignore)[1]

    def _end(self, now: float) -> list[Output]:
        if self.state is CallState.ENDED:
            return []
        self.state = CallState.ENDED
        self.record.end = now
        self.media.release()
        recorded = self.media.recorded()
        self.record.recording = None if recorded is None else str(recorded)
        self.media = PASS_THROUGH  # the session's SDPs need not live as long as the legs
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for dialog in (self.a_dialog, *(leg.dialog for leg in self.b_legs)):
            if dialog is not None:
                self.env.unindex(dialog.id)
        self.env.ended(self)
        # Break the reference cycles (call <-> legs, the 2xx retransmitter): an
        # ended call is freed by reference counting at once, not by a full GC
        # pass that would stall the loop.  A late event of a leg still reaches
        # the call through the leg's transaction and is handled as "ended".
        self.b_legs = []
        self.winner = None
        self.a_session = None
        self._b_ack = None
        return []

    # -- failures ----------------------------------------------------------------------
    def guarded(self, handle: Callable[[], list[Output]], now: float) -> list[Output]:
        """Run one event of this call: a bug in it ends the call (500) rather than
        leaving it, and its ports, behind."""
        try:
            return handle()
        except Exception:
            log.exception("[%s] call handler failed: ending the call", self.ref)
            return self.abort(now)

    def abort(self, now: float) -> list[Output]:
        try:
            if self.state is CallState.ANSWERED:
                return self.hangup(now, "system", 500)
            return self._cancel_forks(now, None) + self.fail(500, None, now)
        except Exception:
            log.exception("[%s] ending the call failed", self.ref)
            return []
        finally:
            self.media.release()
            if self.state is not CallState.ENDED:
                self._end(now)

    # -- timers ------------------------------------------------------------------------
    def arm(self, name: str, when: float, callback: Callable[[], None]) -> None:
        self._cancel_timer(name)
        self._timers[name] = self.env.call_at(when, lambda: self._fire(callback))

    def _fire(self, callback: Callable[[], None]) -> None:
        def run() -> list[Output]:
            callback()
            return []

        self.env.send(self.guarded(run, self._now()))

    def _cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def arm_max_duration(self, when: float) -> None:
        self.arm("max", when, lambda: self.env.send(self.hangup(self._now(), "system", 408)))

    def _now(self) -> float:
        return self.env.now()

    def legs_json(self) -> str:
        return json.dumps(self.record.legs)


class _Relay:
    """Owner of a relayed in-dialog request: its answer goes back to the sender."""

    __slots__ = ("answered", "call", "handle", "original", "request", "sdp_before", "side")

    def __init__(self, call: Call, side: str, original: Request, handle: int, request: Request,
                 sdp_before: bytes | None = None):
        self.call = call
        self.side = side
        self.original = original
        self.handle = handle
        self.request = request
        self.sdp_before = sdp_before  # the SDP last sent to the other leg before this offer
        self.answered = False  # the sender has its final response

    def __call__(self, event: object, now: float) -> list[Output]:
        return self.call.guarded(lambda: self._on_event(event, now), now)

    def _on_event(self, event: object, now: float) -> list[Output]:
        if isinstance(event, ResponseReceived):
            if event.response.status < 200:
                return []
            return self.call.on_relay_response(self, event.response, now)
        if isinstance(event, (TransactionTimeout, TransportError)):
            # the other leg stopped answering: a dead call (RFC 5057 §5.2), end it
            out: list[Output] = []
            if not self.answered:
                self.answered = True
                out = self.call.env.respond(self.handle, make_response(self.original, 408), now)
            return out + self.call.hangup(now, "system", 408)
        return []


def _ignore(event: object, now: float) -> list[Output]:
    return []


__all__ = ["Attempt", "Call", "CallEnv", "CallState", "Outcome", "Plan", "Target", "classify"]
