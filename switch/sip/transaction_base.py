"""What the four SIP transaction state machines share (RFC 3261 §17).

Theory of operation
-------------------
``client_invite``, ``client_noninvite``, ``server_invite`` and
``server_noninvite`` each subclass ``TransactionMachine`` and supply data and
two hooks.  The data is one ``MachineSpec`` per module, passed to the base:

* ``transitions``: the table ``(state, input) -> (action, next state)``;
* ``timers``: the timer inputs in the order they win a tie; each input's
  value is the name of its deadline field (``timer_b``: a float, or None
  when not armed), which the subclass declares and sets to None;
* ``terminated``: the state that ends the transaction;
* ``_act(action, now, message, source, out)``: performs one action;
* ``_enter(state, now)``: the subclass's timer rules on entering a state.

The base does the rest.  ``_feed`` looks the pair up (a missing key raises
``TransactionStateError``), acts, then changes state through ``_set_state``,
which logs ``old -> new`` on the subclass's module logger and runs
``_enter``; entering the terminated state disarms every timer instead.
``_run_due`` fires each timer due at ``now``, earliest first, by feeding its
input; ``next_timer()`` is the earliest armed deadline, for the layer's heap.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Generic, TypeVar

from .address import Address
from .events import Handle, Output, TransactionStateError
from .message import Request, Response
from .timers import TimerConfig

StateT = TypeVar("StateT", bound=Enum)
InputT = TypeVar("InputT", bound=Enum)
ActionT = TypeVar("ActionT", bound=Enum)


class MachineSpec(Generic[StateT, InputT, ActionT]):
    """What makes one of the four machines what it is: its table and timers."""

    __slots__ = (
        "is_client",
        "is_invite",
        "logger",
        "terminated",
        "timer_fields",
        "timer_input",
        "transitions",
    )

    def __init__(
        self,
        *,
        is_invite: bool,
        is_client: bool,
        transitions: dict[tuple[StateT, InputT], tuple[ActionT, StateT]],
        timers: tuple[InputT, ...],
        terminated: StateT,
        logger: logging.Logger,
    ) -> None:
        self.is_invite = is_invite
        self.is_client = is_client
        self.transitions = transitions
        self.terminated = terminated
        self.logger = logger
        # Enum ``.value`` is slow on the hot path: the field names, once.
        self.timer_fields: tuple[str, ...] = tuple(str(t.value) for t in timers)
        self.timer_input: dict[str, InputT] = {str(t.value): t for t in timers}


class TransactionMachine(Generic[StateT, InputT, ActionT]):
    """A transaction's common fields, table lookup, timers and state logging."""

    __slots__ = (
        "dest",
        "handle",
        "heap_deadline",
        "owner",
        "reliable",
        "request",
        "spec",
        "state",
        "timers",
    )

    def __init__(
        self,
        spec: MachineSpec[StateT, InputT, ActionT],
        request: Request,
        dest: Address,
        timers: TimerConfig,
        handle: Handle,
        owner: object,
        state: StateT,
    ) -> None:
        self.spec = spec
        self.handle = handle
        self.owner = owner
        self.request = request
        self.dest = dest
        self.timers = timers
        self.reliable = dest.reliable
        self.state = state
        self.heap_deadline: float | None = None  # owned by TransactionLayer

    # -- inputs and queries common to all four -------------------------------
    def handle_timer(self, now: float) -> list[Output]:
        return self._run_due(now, [])

    def next_timer(self) -> float | None:
        """The earliest armed deadline (STYLE 2: one deadline per object)."""
        best: float | None = None
        for name in self.spec.timer_fields:
            at = getattr(self, name)
            if at is not None and (best is None or at < best):
                best = at
        return best

    @property
    def terminated(self) -> bool:
        return self.state is self.spec.terminated

    @property
    def is_invite(self) -> bool:
        return self.spec.is_invite

    @property
    def is_client(self) -> bool:
        return self.spec.is_client

    # -- machinery -----------------------------------------------------------
    def _run_due(self, now: float, out: list[Output]) -> list[Output]:
        """Fire every timer due at ``now``, earliest first; ties in ``timers`` order."""
        fields = self.spec.timer_fields
        while True:
            due: str | None = None
            due_at = now
            for name in fields:
                at = getattr(self, name)
                if at is not None and at <= due_at and (due is None or at < due_at):
                    due, due_at = name, at
            if due is None:
                return out
            setattr(self, due, None)
            out.extend(self._feed(self.spec.timer_input[due], now))

    def _feed(
        self,
        inp: InputT,
        now: float,
        message: Request | Response | None = None,
        source: Address | None = None,
    ) -> list[Output]:
        try:
            action, next_state = self.spec.transitions[(self.state, inp)]
        except KeyError:
            raise TransactionStateError(
                f"{'INVITE' if self.is_invite else 'non-INVITE'} {self._side()} transaction: "
                f"{inp.value} in {self.state.value}"
            ) from None
        out: list[Output] = []
        self._act(action, now, message, source, out)
        self._set_state(next_state, now)
        return out

    def _set_state(self, new: StateT, now: float) -> None:
        old = self.state
        if new is old:
            return
        logger = self.spec.logger
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "[%s] %s %s %s: %s -> %s",
                self.request.call_id,
                self.request.method,
                self._side(),
                self.handle,
                old.value,
                new.value,
            )
        self.state = new
        if new is self.spec.terminated:
            for name in self.spec.timer_fields:
                setattr(self, name, None)
        else:
            self._enter(new, now)

    def _side(self) -> str:
        return "client" if self.is_client else "server"

    # -- hooks ---------------------------------------------------------------
    def _act(
        self,
        action: ActionT,
        now: float,
        message: Request | Response | None,
        source: Address | None,
        out: list[Output],
    ) -> None:
        """Perform ``action`` (before the state changes), appending to ``out``."""
        raise NotImplementedError

    def _enter(self, state: StateT, now: float) -> None:
        """Arm or stop timers on entering ``state`` (never the terminated one)."""
        raise NotImplementedError


__all__ = ["MachineSpec", "TransactionMachine"]
