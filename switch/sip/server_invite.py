"""INVITE server transaction (RFC 3261 §17.2.1, amended by RFC 6026 §8.7).

Theory of operation
-------------------
``start(now)`` answers ``100 Trying`` at once (§17.2.1 allows 200 ms; we do
not wait) and the transaction sits in Proceeding until the TU responds.  A
retransmitted INVITE is answered with the last response sent and is never
passed up again.  The TU's responses are classified and fed through
``TRANSITIONS``:

* 1xx: sent, stays in Proceeding (becomes "the last response").
* 3xx-6xx: sent, Completed.  Over UDP Timer G retransmits it (T1, doubling up
  to T2) until the ACK arrives; Timer H (64*T1) gives up and tells the TU.
  The ACK (matched to this transaction by the layer) is absorbed and moves to
  Confirmed, where Timer I (T4 over UDP, 0 over TCP) absorbs ACK copies.
* 2xx: sent, Accepted (RFC 6026).  The TU owns 2xx retransmission; every 2xx
  it sends in Accepted goes out, INVITE retransmissions are absorbed silently,
  and an ACK that matches (a 2xx ACK reusing the INVITE's branch) is passed up
  as ``AckReceived``.  Timer L (64*T1) ends it.

CANCEL is not an input here: the layer reads ``pending_final`` to decide
whether a CANCEL applies (RFC 3261 §9.2).  Table lookup, timer firing and
state logging live in ``transaction_base``.
"""

from __future__ import annotations

import logging
from enum import Enum

from .address import Address
from .builders import make_response
from .events import (
    AckReceived,
    Handle,
    Output,
    Send,
    TransactionTimeout,
    TransportError,
)
from .message import Request, Response
from .timers import TimerConfig
from .transaction_base import MachineSpec, TransactionMachine

logger = logging.getLogger(__name__)


class State(Enum):
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"  # RFC 6026 §8.7
    TERMINATED = "Terminated"


class Input(Enum):
    REQUEST = "INVITE retransmission"
    ACK = "ACK"
    PROVISIONAL = "1xx from TU"
    SUCCESS = "2xx from TU"
    FAILURE = "300-699 from TU"
    TRANSPORT_ERROR = "transport error"
    TIMER_G = "timer_g"
    TIMER_H = "timer_h"
    TIMER_I = "timer_i"
    TIMER_L = "timer_l"


class Action(Enum):
    NONE = "none"
    IGNORE = "ignore"
    SEND_RESPONSE = "send response"
    RESEND_LAST = "resend last response"
    RETRANSMIT = "retransmit final"
    PASS_ACK = "pass ACK up"
    TIMEOUT = "timeout"
    REPORT_ERROR = "report transport error"


S, I, A = State, Input, Action

# (state, input) -> (action, next state).  A missing key is a protocol error;
# every network input (REQUEST, ACK, TRANSPORT_ERROR) has a key in every state.
TRANSITIONS: dict[tuple[State, Input], tuple[Action, State]] = {
    # RFC 3261 §17.2.1
    (S.PROCEEDING, I.REQUEST): (A.RESEND_LAST, S.PROCEEDING),
    (S.PROCEEDING, I.ACK): (A.IGNORE, S.PROCEEDING),  # nothing to acknowledge yet
    (S.PROCEEDING, I.PROVISIONAL): (A.SEND_RESPONSE, S.PROCEEDING),
    (S.PROCEEDING, I.SUCCESS): (A.SEND_RESPONSE, S.ACCEPTED),  # RFC 6026 §8.5
    (S.PROCEEDING, I.FAILURE): (A.SEND_RESPONSE, S.COMPLETED),
    (S.PROCEEDING, I.TRANSPORT_ERROR): (A.REPORT_ERROR, S.TERMINATED),
    (S.COMPLETED, I.REQUEST): (A.RESEND_LAST, S.COMPLETED),
    (S.COMPLETED, I.ACK): (A.NONE, S.CONFIRMED),
    (S.COMPLETED, I.TIMER_G): (A.RETRANSMIT, S.COMPLETED),
    (S.COMPLETED, I.TIMER_H): (A.TIMEOUT, S.TERMINATED),
    (S.COMPLETED, I.TRANSPORT_ERROR): (A.REPORT_ERROR, S.TERMINATED),
    (S.CONFIRMED, I.REQUEST): (A.IGNORE, S.CONFIRMED),
    (S.CONFIRMED, I.ACK): (A.IGNORE, S.CONFIRMED),
    (S.CONFIRMED, I.TIMER_I): (A.NONE, S.TERMINATED),
    (S.CONFIRMED, I.TRANSPORT_ERROR): (A.IGNORE, S.CONFIRMED),
    # RFC 6026 §8.7
    (S.ACCEPTED, I.REQUEST): (A.IGNORE, S.ACCEPTED),
    (S.ACCEPTED, I.ACK): (A.PASS_ACK, S.ACCEPTED),
    (S.ACCEPTED, I.SUCCESS): (A.SEND_RESPONSE, S.ACCEPTED),
    (S.ACCEPTED, I.TIMER_L): (A.NONE, S.TERMINATED),
    (S.ACCEPTED, I.TRANSPORT_ERROR): (A.REPORT_ERROR, S.ACCEPTED),
    (S.TERMINATED, I.REQUEST): (A.IGNORE, S.TERMINATED),
    (S.TERMINATED, I.ACK): (A.IGNORE, S.TERMINATED),
    (S.TERMINATED, I.TRANSPORT_ERROR): (A.IGNORE, S.TERMINATED),
}
del S, I, A

# Timers in the order they win a tie: timeouts before retransmissions.
_TIMERS = (Input.TIMER_H, Input.TIMER_I, Input.TIMER_L, Input.TIMER_G)


def classify(response: Response) -> Input:
    if response.status < 200:
        return Input.PROVISIONAL
    return Input.SUCCESS if response.status < 300 else Input.FAILURE


SPEC: MachineSpec[State, Input, Action] = MachineSpec(
    is_invite=True,
    is_client=False,
    transitions=TRANSITIONS,
    timers=_TIMERS,
    terminated=State.TERMINATED,
    logger=logger,
)


class ServerInviteTransaction(TransactionMachine[State, Input, Action]):
    """One received INVITE, answered to ``dest``; see the module docstring."""

    __slots__ = (
        "_g_interval",
        "key",
        "last_response",
        "timer_g",
        "timer_h",
        "timer_i",
        "timer_l",
    )

    def __init__(
        self,
        request: Request,
        dest: Address,
        timers: TimerConfig,
        handle: Handle = 0,
        owner: object = None,
    ) -> None:
        super().__init__(SPEC, request, dest, timers, handle, owner, State.PROCEEDING)
        self.timer_g: float | None = None
        self.timer_h: float | None = None
        self.timer_i: float | None = None
        self.timer_l: float | None = None
        self.last_response: Response | None = None
        self._g_interval = timers.timer_g
        self.key: tuple[object, ...] = ()  # owned by TransactionLayer

    # -- inputs ------------------------------------------------------------
    def start(self, now: float) -> list[Output]:
        """RFC 3261 §17.2.1: answer 100 Trying straight away."""
        self.last_response = make_response(self.request, 100)
        return [Send(self.last_response, self.dest)]

    def receive_request(self, now: float) -> list[Output]:
        """A retransmission of the INVITE."""
        return self._run_due(now, self._feed(Input.REQUEST, now))

    def receive_ack(self, ack: Request, source: Address, now: float) -> list[Output]:
        return self._run_due(now, self._feed(Input.ACK, now, ack, source))

    def respond(self, response: Response, now: float) -> list[Output]:
        """The TU's response; raises ``TransactionStateError`` if not allowed now."""
        return self._run_due(now, self._feed(classify(response), now, response))

    def transport_error(self, now: float) -> list[Output]:
        return self._run_due(now, self._feed(Input.TRANSPORT_ERROR, now))

    @property
    def pending_final(self) -> bool:
        """No final response sent yet: a CANCEL still applies (RFC 3261 §9.2)."""
        return self.state is State.PROCEEDING

    @property
    def to_tag(self) -> str | None:
        """The To tag of the last response sent (for CANCEL and 2543 ACK matching)."""
        return None if self.last_response is None else self.last_response.to.tag

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
            case Action.RESEND_LAST | Action.RETRANSMIT:
                assert self.last_response is not None
                out.append(Send(self.last_response, self.dest))
                if action is Action.RETRANSMIT:  # RFC 3261 §17.2.1: Timer G back-off
                    self._g_interval = self.timers.next_g(self._g_interval)
                    self.timer_g = now + self._g_interval
            case Action.PASS_ACK:
                assert isinstance(message, Request) and source is not None
                out.append(AckReceived(message, source, self.handle, self.owner))
            case Action.TIMEOUT:
                out.append(TransactionTimeout(self.handle, self.owner))
            case Action.REPORT_ERROR:
                out.append(TransportError(self.handle, self.dest, self.owner))
            case Action.NONE | Action.IGNORE:
                pass

    def _enter(self, state: State, now: float) -> None:
        if state is State.COMPLETED:
            if not self.reliable:
                self._g_interval = self.timers.timer_g
                self.timer_g = now + self._g_interval
            self.timer_h = now + self.timers.timer_h
        elif state is State.CONFIRMED:  # RFC 3261 §17.2.1: stop G and H
            self.timer_g = self.timer_h = None
            self.timer_i = now + self.timers.i(self.reliable)
        elif state is State.ACCEPTED:
            self.timer_l = now + self.timers.timer_l


__all__ = ["TRANSITIONS", "Action", "Input", "ServerInviteTransaction", "State", "classify"]
