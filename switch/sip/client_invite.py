"""INVITE client transaction (RFC 3261 §17.1.1, amended by RFC 6026 §8.4).

Theory of operation
-------------------
``start(now)`` sends the INVITE and arms Timer B (transaction timeout) and,
over an unreliable transport, Timer A (retransmission, doubling each time:
retransmits at T1, 3*T1, 7*T1... after the start).  Responses are classified
as provisional (1xx), success (2xx) or failure (3xx-6xx) and fed through
``TRANSITIONS``:

* Calling --1xx--> Proceeding: retransmissions stop, the 1xx goes up.
* Calling/Proceeding --3xx-6xx--> Completed: the transaction builds the ACK
  itself (§17.1.1.3), sends it to the INVITE's destination and passes the
  response up; every retransmission of that final response is answered with
  the same ACK and absorbed.  Timer D (32 s over UDP, 0 over TCP) ends it.
* Calling/Proceeding --2xx--> Accepted (RFC 6026): the 2xx and every further
  2xx (retransmissions and forked answers) go up to the TU, which ACKs them
  in their dialog.  Timer M ends it.
* Timer B in Calling, or a transport error, reports to the TU and ends it.

CANCEL (§9.1) is an input too: before any provisional it is only remembered
and sent when the first 1xx arrives; in Proceeding it is sent at once; after
a final response it means nothing.  Sending it emits ``StartCancel``, which
the layer turns into a CANCEL client transaction, and re-arms Timer B: with
no final response 64*T1 after the CANCEL the transaction times out (§9.1).
Timer C (a configurable guard borrowed from the proxy rules, §16.6 step 11,
restarted by each 1xx above 100) issues that CANCEL itself when the TU never
does, so that no transaction can stay in Proceeding forever.

Each timer is a deadline field; ``next_timer()`` is the earliest of them.
Zero-length timers (Timer D over a reliable transport) fire before the input
method returns.  Table lookup, timer firing and state logging live in
``transaction_base``; this file holds the table, the actions and the timer
rules on entering each state.
"""

from __future__ import annotations

import logging
from enum import Enum

from .address import Address
from .builders import make_ack, make_cancel
from .events import (
    Handle,
    Output,
    ResponseReceived,
    Send,
    StartCancel,
    TransactionTimeout,
    TransportError,
)
from .message import Request, Response
from .timers import TimerConfig
from .transaction_base import MachineSpec, TransactionMachine

logger = logging.getLogger(__name__)


class State(Enum):
    CALLING = "Calling"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    ACCEPTED = "Accepted"  # RFC 6026 §8.4
    TERMINATED = "Terminated"


class Input(Enum):
    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "300-699"
    CANCEL = "cancel"  # from the TU
    TRANSPORT_ERROR = "transport error"
    # Timer inputs: the value is the name of the deadline field.
    TIMER_A = "timer_a"
    TIMER_B = "timer_b"
    TIMER_C = "timer_c"
    TIMER_D = "timer_d"
    TIMER_M = "timer_m"


class Action(Enum):
    NONE = "none"  # the state change is all
    IGNORE = "ignore"  # absorbed, nothing happens
    PASS_UP = "pass up"
    PASS_UP_PROVISIONAL = "pass up 1xx"  # + deferred CANCEL, Timer C restart
    ACK_AND_PASS_UP = "ack, pass up"
    RESEND_ACK = "resend ack"
    RETRANSMIT = "retransmit"
    DEFER_CANCEL = "defer cancel"
    SEND_CANCEL = "send cancel"
    TIMEOUT = "timeout"
    REPORT_ERROR = "report transport error"


S, I, A = State, Input, Action

# (state, input) -> (action, next state).  A missing key is a protocol error.
TRANSITIONS: dict[tuple[State, Input], tuple[Action, State]] = {
    # RFC 3261 §17.1.1.2
    (S.CALLING, I.PROVISIONAL): (A.PASS_UP_PROVISIONAL, S.PROCEEDING),
    (S.CALLING, I.SUCCESS): (A.PASS_UP, S.ACCEPTED),  # RFC 6026 §8.4
    (S.CALLING, I.FAILURE): (A.ACK_AND_PASS_UP, S.COMPLETED),
    (S.CALLING, I.CANCEL): (A.DEFER_CANCEL, S.CALLING),  # RFC 3261 §9.1
    (S.CALLING, I.TIMER_A): (A.RETRANSMIT, S.CALLING),
    (S.CALLING, I.TIMER_B): (A.TIMEOUT, S.TERMINATED),
    (S.CALLING, I.TRANSPORT_ERROR): (A.REPORT_ERROR, S.TERMINATED),
    (S.PROCEEDING, I.PROVISIONAL): (A.PASS_UP_PROVISIONAL, S.PROCEEDING),
    (S.PROCEEDING, I.SUCCESS): (A.PASS_UP, S.ACCEPTED),
    (S.PROCEEDING, I.FAILURE): (A.ACK_AND_PASS_UP, S.COMPLETED),
    (S.PROCEEDING, I.CANCEL): (A.SEND_CANCEL, S.PROCEEDING),
    (S.PROCEEDING, I.TIMER_B): (A.TIMEOUT, S.TERMINATED),  # only after CANCEL, §9.1
    (S.PROCEEDING, I.TIMER_C): (A.SEND_CANCEL, S.PROCEEDING),  # §16.8 analogue
    (S.PROCEEDING, I.TRANSPORT_ERROR): (A.REPORT_ERROR, S.TERMINATED),
    # RFC 3261 §17.1.1.2: Completed absorbs retransmissions, re-sending the ACK
    (S.COMPLETED, I.PROVISIONAL): (A.IGNORE, S.COMPLETED),
    (S.COMPLETED, I.SUCCESS): (A.IGNORE, S.COMPLETED),
    (S.COMPLETED, I.FAILURE): (A.RESEND_ACK, S.COMPLETED),
    (S.COMPLETED, I.CANCEL): (A.IGNORE, S.COMPLETED),
    (S.COMPLETED, I.TIMER_D): (A.NONE, S.TERMINATED),
    (S.COMPLETED, I.TRANSPORT_ERROR): (A.NONE, S.TERMINATED),
    # RFC 6026 §8.4: Accepted passes every 2xx up, drops the rest
    (S.ACCEPTED, I.PROVISIONAL): (A.IGNORE, S.ACCEPTED),
    (S.ACCEPTED, I.SUCCESS): (A.PASS_UP, S.ACCEPTED),
    (S.ACCEPTED, I.FAILURE): (A.IGNORE, S.ACCEPTED),
    (S.ACCEPTED, I.CANCEL): (A.IGNORE, S.ACCEPTED),
    (S.ACCEPTED, I.TIMER_M): (A.NONE, S.TERMINATED),
    (S.ACCEPTED, I.TRANSPORT_ERROR): (A.IGNORE, S.ACCEPTED),
    (S.TERMINATED, I.PROVISIONAL): (A.IGNORE, S.TERMINATED),
    (S.TERMINATED, I.SUCCESS): (A.IGNORE, S.TERMINATED),
    (S.TERMINATED, I.FAILURE): (A.IGNORE, S.TERMINATED),
    (S.TERMINATED, I.CANCEL): (A.IGNORE, S.TERMINATED),
    (S.TERMINATED, I.TRANSPORT_ERROR): (A.IGNORE, S.TERMINATED),
}
del S, I, A

# Timers in the order they win a tie: timeouts before retransmissions.
_TIMERS = (Input.TIMER_B, Input.TIMER_D, Input.TIMER_M, Input.TIMER_C, Input.TIMER_A)


def classify(response: Response) -> Input:
    if response.status < 200:
        return Input.PROVISIONAL
    return Input.SUCCESS if response.status < 300 else Input.FAILURE


SPEC: MachineSpec[State, Input, Action] = MachineSpec(
    is_invite=True,
    is_client=True,
    transitions=TRANSITIONS,
    timers=_TIMERS,
    terminated=State.TERMINATED,
    logger=logger,
)


class ClientInviteTransaction(TransactionMachine[State, Input, Action]):
    """One INVITE sent to ``dest``; see the module docstring."""

    __slots__ = (
        "_a_interval",
        "_ack",
        "_cancel",
        "cancel_reason",
        "timer_a",
        "timer_b",
        "timer_c",
        "timer_d",
        "timer_m",
    )

    def __init__(
        self,
        request: Request,
        dest: Address,
        timers: TimerConfig,
        handle: Handle = 0,
        owner: object = None,
    ) -> None:
        super().__init__(SPEC, request, dest, timers, handle, owner, State.CALLING)
        self.timer_a: float | None = None
        self.timer_b: float | None = None
        self.timer_c: float | None = None
        self.timer_d: float | None = None
        self.timer_m: float | None = None
        self._a_interval = timers.timer_a
        self._ack: Request | None = None
        # None: not asked; False: asked, waiting for a 1xx; True: sent.
        self._cancel: bool | None = None
        self.cancel_reason: str | None = None  # RFC 3326 Reason of our CANCEL

    # -- inputs ------------------------------------------------------------
    def start(self, now: float) -> list[Output]:
        """Send the INVITE (RFC 3261 §17.1.1.2: Calling, Timers A and B)."""
        if not self.reliable:
            self.timer_a = now + self._a_interval
        self.timer_b = now + self.timers.timer_b
        return [Send(self.request, self.dest)]

    def receive_response(self, response: Response, now: float) -> list[Output]:
        return self._run_due(now, self._feed(classify(response), now, response))

    def cancel(self, now: float) -> list[Output]:
        """The TU wants the INVITE cancelled (RFC 3261 §9.1)."""
        return self._run_due(now, self._feed(Input.CANCEL, now))

    def transport_error(self, now: float) -> list[Output]:
        return self._run_due(now, self._feed(Input.TRANSPORT_ERROR, now))

    @property
    def cancel_sent(self) -> bool:
        return self._cancel is True

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
            case Action.PASS_UP_PROVISIONAL:
                assert isinstance(message, Response)
                out.append(ResponseReceived(self.handle, message, self.owner))
                if self._cancel is False:
                    self._send_cancel(now, out)
                elif self.timer_c is not None and message.status > 100:
                    self.timer_c = self._timer_c_deadline(now)  # §16.7 step 2
            case Action.ACK_AND_PASS_UP:
                assert isinstance(message, Response)
                self._ack = make_ack(self.request, message)  # RFC 3261 §17.1.1.3
                out.append(Send(self._ack, self.dest))
                out.append(ResponseReceived(self.handle, message, self.owner))
            case Action.RESEND_ACK:
                assert self._ack is not None
                out.append(Send(self._ack, self.dest))
            case Action.RETRANSMIT:
                out.append(Send(self.request, self.dest))
                self._a_interval = self.timers.next_a(self._a_interval)
                self.timer_a = now + self._a_interval
            case Action.DEFER_CANCEL:
                if self._cancel is None:
                    self._cancel = False
            case Action.SEND_CANCEL:
                if self._cancel is not True:
                    self._send_cancel(now, out)
            case Action.TIMEOUT:
                out.append(TransactionTimeout(self.handle, self.owner))
            case Action.REPORT_ERROR:
                out.append(TransportError(self.handle, self.dest, self.owner))
            case Action.NONE | Action.IGNORE:
                pass

    def _send_cancel(self, now: float, out: list[Output]) -> None:
        self._cancel = True
        self.timer_c = None
        self.timer_b = now + self.timers.timer_b  # RFC 3261 §9.1: 64*T1 for a final
        out.append(StartCancel(self.handle, make_cancel(self.request, self.cancel_reason)))

    def _timer_c_deadline(self, now: float) -> float | None:
        c = self.timers.timer_c
        return None if c is None else now + c

    def _enter(self, state: State, now: float) -> None:
        if state is State.PROCEEDING:  # RFC 3261 §17.1.1.2: stop retransmitting
            self.timer_a = None
            if self._cancel is not True:
                self.timer_b = None
                self.timer_c = self._timer_c_deadline(now)
        elif state is State.COMPLETED:
            self.timer_a = self.timer_b = self.timer_c = None
            self.timer_d = now + self.timers.d(self.reliable)
        elif state is State.ACCEPTED:  # RFC 6026 §8.4
            self.timer_a = self.timer_b = self.timer_c = None
            self.timer_m = now + self.timers.timer_m


__all__ = ["TRANSITIONS", "Action", "ClientInviteTransaction", "Input", "State", "classify"]
