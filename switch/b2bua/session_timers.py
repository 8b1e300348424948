"""Session timers per leg (RFC 4028): each leg of a call keeps its own.

A long call (a fax) must not be torn down because one side refreshes and the
other does not: every leg negotiates its own Session-Expires with its peer.
Where we are the refresher we send an UPDATE (re-INVITE with the last SDP
when the peer does not allow UPDATE) at half the interval; where the peer
is, the call ends (BYE both ways) if no refresh arrives in time.  A refresh
UPDATE from a peer is answered by the switch itself; re-INVITEs are relayed
and refresh both legs when they succeed.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from ..sip.dialog import Dialog, DialogError
from ..sip.dialog_session_timer import (
    Refresher,
    SessionExpires,
    SessionTimer,
    uac_from_2xx,
    uac_request_headers,
    uas_negotiate,
)
from ..sip.address import Address
from ..sip.events import Output, ResponseReceived, Send, TransactionTimeout, TransportError
from ..sip.headers import parse_token_list
from ..sip.message import Message, Request, Response

if TYPE_CHECKING:
    from .call import Call

B_LEG_REQUEST_HEADERS = uac_request_headers()  # Supported: timer, Session-Expires, Min-SE


class SessionRefresh:
    __slots__ = ("_call", "timers")

    def __init__(self, call: "Call") -> None:
        self._call = weakref.ref(call)  # no cycle: the call owns this object
        self.timers: dict[str, SessionTimer] = {}

    @property
    def call(self) -> "Call":
        call = self._call()
        assert call is not None, "session timers outlived their call"
        return call

    def negotiated(self, side: str, timer: SessionTimer | None, now: float) -> None:
        if timer is None:
            self.timers.pop(side, None)
            return
        self.timers[side] = timer
        self.refreshed(side, now)

    def request_headers(self, side: str) -> list[tuple[str, str]]:
        """Session-timer headers of a re-INVITE/UPDATE we send on ``side``: its
        current interval, the refresher kept as it is (we are the UAC now)."""
        timer = self.timers.get(side)
        if timer is None:
            return [("Supported", "timer")]
        refresher = Refresher.UAC if timer.we_refresh else Refresher.UAS
        return [("Supported", "timer"),
                ("Session-Expires", str(SessionExpires(timer.interval, refresher)))]

    def answered_by_peer(self, side: str, resp: Response, now: float) -> None:
        """Our re-INVITE/UPDATE on ``side`` got this 2xx (RFC 4028 §7.2)."""
        self.negotiated(side, uac_from_2xx(resp), now)

    def answer_headers(self, side: str, req: Request, now: float) -> tuple[tuple[str, str], ...]:
        """Headers of our 2xx to a re-INVITE/UPDATE from ``side`` (RFC 4028 §9): the
        session timer goes on, so the 2xx must say so or the peer drops it."""
        current = self.timers.get(side)
        decision = uas_negotiate(
            req,
            local_interval=current.interval if current else None,
            prefer=Refresher.UAS if current and current.we_refresh else Refresher.UAC,
        )
        self.negotiated(side, decision.timer, now)
        return decision.headers

    def refreshed(self, side: str, now: float) -> None:
        timer = self.timers.get(side)
        if timer is not None:
            self.call.arm(f"session-{side}", timer.deadline(now), lambda: self._fire(side))

    def _fire(self, side: str) -> None:
        call = self.call
        now = call.env.now()
        timer = self.timers.get(side)
        if timer is None:
            return
        if not timer.we_refresh:  # RFC 4028 §10: no refresh from the peer in time
            call.env.send(call.hangup(now, "system", 408))
            return
        call.env.send(self._refresh(side, now))

    def _refresh(self, side: str, now: float) -> list[Output]:
        call = self.call
        leg = call.leg_dialog(side)
        if leg is None:
            return []
        dialog, dest, allow, sdp = leg
        use_update = "UPDATE" in allow
        headers = [("Session-Expires", str(self.timers[side].session_expires)),
                   ("Supported", "timer")]
        try:
            req = dialog.new_request(
                "UPDATE" if use_update else "INVITE", call.env.via(dest),
                body=b"" if use_update else sdp,
                content_type=None if use_update or not sdp else "application/sdp",
                extra_headers=headers,
            )
        except DialogError:  # an offer of the peer's is pending: it refreshes anyway
            self.refreshed(side, now)
            return []
        owner = _RefreshOwner(self, side, dialog, dest, req.cseq.seq, req.method)
        return call.env.send_request(req, dest, now, owner)[1]


class _RefreshOwner:
    __slots__ = ("refresh", "side", "dialog", "dest", "cseq", "method")

    def __init__(self, refresh: SessionRefresh, side: str, dialog: Dialog, dest: Address,
                 cseq: int, method: str) -> None:
        self.refresh, self.side, self.dialog = refresh, side, dialog
        self.dest, self.cseq, self.method = dest, cseq, method

    def __call__(self, event: object, now: float) -> list[Output]:
        call = self.refresh.call
        if isinstance(event, ResponseReceived):
            resp = event.response
            if resp.status < 200:
                return []
            self.dialog.receive_response(resp)
            out: list[Output] = []
            if 200 <= resp.status < 300:
                if self.method == "INVITE":
                    ack = self.dialog.ack_for_2xx(self.cseq, call.env.via(self.dest))
                    out.append(Send(ack, self.dest))
                self.refresh.negotiated(self.side, uac_from_2xx(resp) or self.refresh.timers.get(
                    self.side), now)
                return out
            if resp.status in (408, 481):  # RFC 5057: the dialog is gone
                return call.hangup(now, "system", resp.status)
            self.refresh.refreshed(self.side, now)  # e.g. 491: try again next period
            return []
        if isinstance(event, (TransactionTimeout, TransportError)):
            return call.hangup(now, "system", 408)
        return []


def allowed_methods(msg: Message) -> frozenset[str]:
    """The methods a peer's Allow header lists (RFC 3261 §20.5)."""
    return frozenset(m.upper() for m in parse_token_list(msg.get_all("allow")))
