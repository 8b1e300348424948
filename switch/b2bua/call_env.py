"""What a call stands on: its states, the switch around it, its CDR record.

``Call`` (``call.py``) is the state machine of one call; this module holds
what it is given and what it fills in, so that the switch (``manager.py``)
and the trunks can name them without the call's machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from ..sip.address import Address
from ..sip.dialog import DialogId
from ..sip.events import Output
from ..sip.headers import Via
from ..sip.message import Request, Response
from ..sip.timers import TimerConfig

if TYPE_CHECKING:
    from .call import Call


class CallState(Enum):
    ROUTING = "routing"
    RINGING = "ringing"  # B legs out, no answer yet
    ANSWERED = "answered"  # 2xx sent to A
    ENDED = "ended"


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class CallEnv(Protocol):
    """What a call needs from the switch around it."""

    timers: TimerConfig

    def respond(self, handle: int, resp: Response, now: float) -> list[Output]: ...
    def send_request(
        self, req: Request, dest: Address, now: float, owner: object
    ) -> tuple[int, list[Output]]: ...
    def cancel(self, handle: int, now: float, reason: str | None) -> list[Output]: ...
    def via(self, dest: Address) -> Via: ...
    def contact(self, dest: Address) -> str: ...
    def call_at(self, when: float, callback: Callable[[], None]) -> Cancellable: ...
    def now(self) -> float: ...
    def send(self, outputs: list[Output]) -> None: ...
    def index(self, dialog_id: DialogId, call: Call, side: str) -> None: ...
    def unindex(self, dialog_id: DialogId) -> None: ...
    def answered(self, call: Call) -> None: ...
    def ended(self, call: Call) -> None: ...


@dataclass(slots=True)
class CallRecord:
    """What the CDR needs, filled as the call goes."""

    start: float
    answer: float | None = None
    end: float | None = None
    disposition: str = "failed"
    cause: int = 0
    side: str = "system"
    callee: str = ""
    legs: list[dict[str, object]] = field(default_factory=list)
    recording: str | None = None  # the WAV, relative to the state directory


__all__ = ["CallEnv", "CallRecord", "CallState", "Cancellable"]
