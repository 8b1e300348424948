"""Non-INVITE server transaction (RFC 3261 §17.2.2).

Theory of operation
-------------------
Created in Trying when a new request arrives; the request goes up once.
Retransmissions are discarded in Trying (nothing to answer with yet) and
answered with the last response in Proceeding and Completed.  The TU's first
final response moves to Completed, which absorbs retransmissions for Timer J
(64*T1 over UDP, 0 over TCP).  The layer also runs CANCEL requests through
this machine, so a retransmitted CANCEL gets the same 200/481 again.  Table
lookup, timer firing and state logging live in ``transaction_base``.
"""

from __future__ import annotations

import logging
from enum import Enum

from .address import Address
from .events import Handle, Output, Send, TransportError
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
    REQUEST = "request retransmission"
    PROVISIONAL = "1xx from TU"
    FINAL = "200-699 from TU"
    TRANSPORT_ERROR = "transport error"
    TIMER_J = "timer_j"


class Action(Enum):
    NONE = "none"
    IGNORE = "ignore"
    SEND_RESPONSE = "send response"
    RESEND_LAST = "resend last response"
    REPORT_ERROR = "report transport error"


S, I, A = State, Input, Action

# (state, input) -> (action, next state).  A missing key is a protocol error.
TRANSITIONS: dict[tuple[State, Input], tuple[Action, State]] = {
    # RFC 3261 §17.2.2
    (S.TRYING, I.REQUEST): (A.IGNORE, S.TRYING),
    (S.TRYING, I.PROVISIONAL): (A.SEND_RESPONSE, S.PROCEEDING),
    (S.TRYING, I.FINAL): (A.SEND_RESPONSE, S.COMPLETED),
    (S.TRYING, I.TRANSPORT_ERROR): (A.IGNORE, S.TRYING),  # nothing sent yet
    (S.PROCEEDING, I.REQUEST): (A.RESEND_LAST, S.PROCEEDING),
    (S.PROCEEDING, I.PROVISIONAL): (A.SEND_RESPONSE, S.PROCEEDING),
    (S.PROCEEDING, I.FINAL): (A.SEND_RESPONSE, S.COMPLETED),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (A.REPORT_ERROR, S.TERMINATED),
    (S.COMPLETED, I.REQUEST): (A.RESEND_LAST, S.COMPLETED),
    (S.COMPLETED, I.TIMER_J): (A.NONE, S.TERMINATED),
    (S.COMPLETED, I.TRANSPORT_ERROR): (A.REPORT_ERROR, S.TERMINATED),
    (S.TERMINATED, I.REQUEST): (A.IGNORE, S.TERMINATED),
    (S.TERMINATED, I.TRANSPORT_ERROR): (A.IGNORE, S.TERMINATED),
}
del S, I, A


def classify(response: Response) -> Input:
    return Input.PROVISIONAL if response.status < 200 else Input.FINAL


SPEC: MachineSpec[State, Input, Action] = MachineSpec(
    is_invite=False,
    is_client=False,
    transitions=TRANSITIONS,
    timers=(Input.TIMER_J,),
    terminated=State.TERMINATED,
    logger=logger,
)


class ServerNonInviteTransaction(TransactionMachine[State, Input, Action]):
    """One received non-INVITE request, answered to ``dest``."""

    __slots__ = ("key", "last_response", "timer_j")

    def __init__(
        self,
        request: Request,
        dest: Address,
        timers: TimerConfig,
        handle: Handle = 0,
        owner: object = None,
    ) -> None:
        super().__init__(SPEC, request, dest, timers, handle, owner, State.TRYING)
        self.timer_j: float | None = None
        self.last_response: Response | None = None
        self.key: tuple[object, ...] = ()  # owned by TransactionLayer

    # -- inputs ------------------------------------------------------------
    def start(self, now: float) -> list[Output]:
        return []

    def receive_request(self, now: float) -> list[Output]:
        return self._run_due(now, self._feed(Input.REQUEST, now))

    def respond(self, response: Response, now: float) -> list[Output]:
        """The TU's response; raises ``TransactionStateError`` if not allowed now."""
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
            case Action.SEND_RESPONSE:
                assert isinstance(message, Response)
                self.last_response = message
                out.append(Send(message, self.dest))
            case Action.RESEND_LAST:
                assert self.last_response is not None
                out.append(Send(self.last_response, self.dest))
            case Action.REPORT_ERROR:
                out.append(TransportError(self.handle, self.dest, self.owner))
            case Action.NONE | Action.IGNORE:
                pass

    def _enter(self, state: State, now: float) -> None:
        if state is State.COMPLETED:
            self.timer_j = now + self.timers.j(self.reliable)


__all__ = ["TRANSITIONS", "Action", "Input", "ServerNonInviteTransaction", "State", "classify"]
