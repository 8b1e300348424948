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
events away from the TU (``silent``).  Table lookup, timer firing and state
logging live in ``transaction_base``.
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
    TransactionTimeout,
    TransportError,
)
from .message import Request, Response
from .timers import TimerConfig
from .transaction_base import MachineSpec, TransactionMachine

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

# Timers in the order they win a tie: timeouts before retransmissions.
_TIMERS = (Input.TIMER_F, Input.TIMER_K, Input.TIMER_E)


def classify(response: Response) -> Input:
    return Input.PROVISIONAL if response.status < 200 else Input.FINAL


SPEC: MachineSpec[State, Input, Action] = MachineSpec(
    is_invite=False,
    is_client=True,
    transitions=TRANSITIONS,
    timers=_TIMERS,
    terminated=State.TERMINATED,
    logger=logger,
)


class ClientNonInviteTransaction(TransactionMachine[State, Input, Action]):
    """One non-INVITE request sent to ``dest``; see the module docstring."""

    __slots__ = ("_e_interval", "silent", "timer_e", "timer_f", "timer_k")

    def __init__(
        self,
        request: Request,
        dest: Address,
        timers: TimerConfig,
        handle: Handle = 0,
        owner: object = None,
        silent: bool = False,
    ) -> None:
        super().__init__(SPEC, request, dest, timers, handle, owner, State.TRYING)
        self.timer_e: float | None = None
        self.timer_f: float | None = None
        self.timer_k: float | None = None
        self.silent = silent
        self._e_interval = timers.timer_e

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

    # -- actions and timer rules ---------------------------------------------
    def _act(
        self,
        action: Action,
        now: float,
        message: Request | Response | None,
        source: Address | None,
        out: list[Output],
    ) -> None:
        match action:
            case Action.PASS_UP:
                assert isinstance(message, Response)
                out.append(ResponseReceived(self.handle, message, self.owner))
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

    def _enter(self, state: State, now: float) -> None:
        if state is State.COMPLETED:
            self.timer_e = self.timer_f = None
            self.timer_k = now + self.timers.k(self.reliable)


__all__ = ["TRANSITIONS", "Action", "ClientNonInviteTransaction", "Input", "State", "classify"]
