"""Non-INVITE client transaction (RFC 3261 §17.1.2).

Theory of operation
-------------------
``start(now)`` sends the request and arms Timer F (transaction timeout) and,
over an unreliable transport, Timer E (retransmission).  In Trying, Timer E
doubles up to T2 (retransmits at T1, 3*T1, 7*T1, ... then every T2); once a
provisional response has moved the transaction to Proceeding, each firing
re-arms it with T2 exactly (§17.1.2.2).  The first final response goes up
and moves to Completed, where retransmitted responses are absorbed for
Timer K (T4 over UDP, 0 over TCP).  Timer F or a transport error in Trying
or Proceeding reports to the TU and ends the transaction.

CANCEL requests are sent through this machine too; the layer keeps their
events away from the TU (``silent``).
"""

from __future__ import annotations

import logging
from enum import Enum

from .address import Address
from .events import (
    Handle,
    Output,
    ResponseReceived,
    Send,
    TransactionStateError,
    TransactionTimeout,
    TransportError,
)
from .message import Request, Response
from .timers import TimerConfig, earliest

logger = logging.getLogger(__name__)


class State(Enum):
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    TERMINATED = "Terminated"


class Input(Enum):
    PROVISIONAL = "1xx"
    FINAL = "200-699"
    TRANSPORT_ERROR = "transport error"
    TIMER_E = "timer_e"
    TIMER_F = "timer_f"
    TIMER_K = "timer_k"


class Action(Enum):
    NONE = "none"
    IGNORE = "ignore"
    PASS_UP = "pass up"
    RETRANSMIT = "retransmit"
    TIMEOUT = "timeout"
    REPORT_ERROR = "report transport error"


S, I, A = State, Input, Action

# (state, input) -> (action, next state).  A missing key is a protocol error.
TRANSITIONS: dict[tuple[State, Input], tuple[Action, State]] = {
    # RFC 3261 §17.1.2.2
    (S.TRYING, I.PROVISIONAL): (A.PASS_UP, S.PROCEEDING),
    (S.TRYING, I.FINAL): (A.PASS_UP, S.COMPLETED),
    (S.TRYING, I.TIMER_E): (A.RETRANSMIT, S.TRYING),
    (S.TRYING, I.TIMER_F): (A.TIMEOUT, S.TERMINATED),
    (S.TRYING, I.TRANSPORT_ERROR): (A.REPORT_ERROR, S.TERMINATED),
    (S.PROCEEDING, I.PROVISIONAL): (A.PASS_UP, S.PROCEEDING),
    (S.PROCEEDING, I.FINAL): (A.PASS_UP, S.COMPLETED),
    (S.PROCEEDING, I.TIMER_E): (A.RETRANSMIT, S.PROCEEDING),
    (S.PROCEEDING, I.TIMER_F): (A.TIMEOUT, S.TERMINATED),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (A.REPORT_ERROR, S.TERMINATED),
    (S.COMPLETED, I.PROVISIONAL): (A.IGNORE, S.COMPLETED),
    (S.COMPLETED, I.FINAL): (A.IGNORE, S.COMPLETED),
    (S.COMPLETED, I.TIMER_K): (A.NONE, S.TERMINATED),
    (S.COMPLETED, I.TRANSPORT_ERROR): (A.IGNORE, S.COMPLETED),
    (S.TERMINATED, I.PROVISIONAL): (A.IGNORE, S.TERMINATED),
    (S.TERMINATED, I.FINAL): (A.IGNORE, S.TERMINATED),
    (S.TERMINATED, I.TRANSPORT_ERROR): (A.IGNORE, S.TERMINATED),
}
del S, I, A

_TIMERS = (Input.TIMER_F, Input.TIMER_K, Input.TIMER_E)


def classify(response: Response) -> Input:
    return Input.PROVISIONAL if response.status < 200 else Input.FINAL


class ClientNonInviteTransaction:
    """One non-INVITE request sent to ``dest``; see the module docstring."""

    __slots__ = (
        "_e_interval",
        "dest",
        "handle",
        "heap_deadline",
        "owner",
        "reliable",
        "request",
        "silent",
        "state",
        "timer_e",
        "timer_f",
        "timer_k",
        "timers",
    )

    is_invite = False
    is_client = True

    def __init__(
        self,
        request: Request,
        dest: Address,
        timers: TimerConfig,
        handle: Handle = 0,
        owner: object = None,
        silent: bool = False,
    ) -> None:
        self.handle = handle
        self.owner = owner
        self.request = request
        self.dest = dest
        self.timers = timers
        self.reliable = dest.reliable
        self.silent = silent
        self.state = State.TRYING
        self.timer_e: float | None = None
        self.timer_f: float | None = None
        self.timer_k: float | None = None
        self._e_interval = timers.timer_e
        self.heap_deadline: float | None = None  # owned by TransactionLayer

    # -- inputs ------------------------------------------------------------
    def start(self, now: float) -> list[Output]:
        """Send the request (RFC 3261 §17.1.2.2: Trying, Timers E and F)."""
        if not self.reliable:
            self.timer_e = now + self._e_interval
        self.timer_f = now + self.timers.timer_f
        return [Send(self.request, self.dest)]

    def receive_response(self, response: Response, now: float) -> list[Output]:
        return self._run_due(now, self._feed(classify(response), now, response))

    def transport_error(self, now: float) -> list[Output]:
        return self._run_due(now, self._feed(Input.TRANSPORT_ERROR, now))

    def handle_timer(self, now: float) -> list[Output]:
        return self._run_due(now, [])

    def next_timer(self) -> float | None:
        return earliest(self.timer_e, self.timer_f, self.timer_k)

    @property
    def terminated(self) -> bool:
        return self.state is State.TERMINATED

    # -- machinery -----------------------------------------------------------
    def _run_due(self, now: float, out: list[Output]) -> list[Output]:
        while True:
            due: Input | None = None
            due_at = now
            for timer in _TIMERS:
                at = getattr(self, timer.value)
                if at is not None and at <= due_at and (due is None or at < due_at):
                    due, due_at = timer, at
            if due is None:
                return out
            setattr(self, due.value, None)
            out.extend(self._feed(due, now))

    def _feed(self, inp: Input, now: float, response: Response | None = None) -> list[Output]:
        try:
            action, next_state = TRANSITIONS[(self.state, inp)]
        except KeyError:
            raise TransactionStateError(
                f"non-INVITE client transaction: {inp.value} in {self.state.value}"
            ) from None
        out: list[Output] = []
        match action:
            case Action.PASS_UP:
                assert response is not None
                out.append(ResponseReceived(self.handle, response, self.owner))
            case Action.RETRANSMIT:
                out.append(Send(self.request, self.dest))
                if self.state is State.TRYING:
                    self._e_interval = self.timers.next_e(self._e_interval)
                else:  # RFC 3261 §17.1.2.2: Proceeding re-arms with T2
                    self._e_interval = self.timers.t2
                self.timer_e = now + self._e_interval
            case Action.TIMEOUT:
                out.append(TransactionTimeout(self.handle, self.owner))
            case Action.REPORT_ERROR:
                out.append(TransportError(self.handle, self.dest, self.owner))
            case Action.NONE | Action.IGNORE:
                pass
        self._set_state(next_state, now)
        return out

    def _set_state(self, new: State, now: float) -> None:
        old = self.state
        if new is old:
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "[%s] %s client %s: %s -> %s",
                self.request.call_id,
                self.request.method,
                self.handle,
                old.value,
                new.value,
            )
        self.state = new
        if new is State.COMPLETED:
            self.timer_e = self.timer_f = None
            self.timer_k = now + self.timers.k(self.reliable)
        elif new is State.TERMINATED:
            self.timer_e = self.timer_f = self.timer_k = None


__all__ = ["TRANSITIONS", "Action", "ClientNonInviteTransaction", "Input", "State", "classify"]
