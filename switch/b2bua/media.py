"""Where the media layer plugs into every call.

The B2BUA hands each session description it relays to the call's
``MediaSession`` before sending it on: the offer received on one leg becomes
the offer sent on the other leg, the answer likewise (RFC 3264).  Legs are
named by ``Leg``: the caller's leg A, and one per B fork (a target being
rung), which stays the name of leg B once that fork has answered.  A session
raises ``media.sdp.SdpError`` (carrying the SIP status, 488 or 400; 503 when
no RTP port is free) for an SDP it cannot take; the call answers the sender
with that status and nothing crosses.

``AnchorHook`` (``anchor.py``) anchors RTP in the switch; ``PassThrough``
relays SDP unchanged (``media.anchor: false``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from ..sip.address import Address

Side = Literal["a", "b"]
DigitCallback = Callable[[Side, str, int], None]


@dataclass(frozen=True, slots=True)
class Leg:
    """One party of a call, as the media layer knows it."""

    side: Side  # "a": the caller; "b": a callee (one per fork)
    peer: Address  # where its signalling goes: our media address faces it
    label: str = ""  # a B fork's target: an extension number or "trunk:NAME"
    fork: int = 0  # B forks of one call are numbered from 1


class MediaSession(Protocol):
    """The media of one call."""

    def offer(self, sender: Leg, receiver: Leg, sdp: bytes) -> bytes:
        """The offer to send to ``receiver`` for ``sdp`` received from ``sender``."""

    def answer(self, sender: Leg, sdp: bytes) -> bytes:
        """The answer to send back for ``sdp``, the answer ``sender`` gave to the
        offer last sent to it (183 and 200 may both answer one offer)."""

    def refused(self, receiver: Leg) -> None:
        """The offer last sent to ``receiver`` got a failure response: the session
        stays as it was before that offer (RFC 3264 §8)."""

    def release(self) -> None:
        """The call ended: free its ports.  Called at least once; idempotent."""

    def send_digit(self, to: Side, digit: str, duration_ms: int) -> bool:
        """Send a key press (from a SIP INFO) to leg ``to`` as RFC 4733 events; False
        when that leg has no telephone-event, and the INFO is relayed instead."""

    def digits_to(self, callback: DigitCallback) -> None:
        """RFC 4733 key presses from a leg whose peer has no telephone-event go to
        ``callback(from_side, digit, duration_ms)`` (the call sends them as INFO)."""

    def record(self, state_dir: Path, relative: PurePosixPath) -> bool:
        """Record the call to ``state_dir / relative`` (a stereo WAV: the caller left,
        the callee right) until ``release``; False when this media layer cannot."""

    def recorded(self) -> PurePosixPath | None:
        """The recording's file relative to the state directory, once it exists."""


class MediaHook(Protocol):
    """The switch's media layer: one ``MediaSession`` per call."""

    def session(self, call_ref: str, tenant: str, caller: str | None) -> MediaSession:
        """Media for a new call of ``tenant``; ``caller`` is the calling extension."""


class PassThrough:
    """No anchoring: bodies cross the switch unchanged."""

    def session(self, call_ref: str, tenant: str, caller: str | None) -> MediaSession:
        return self

    def offer(self, sender: Leg, receiver: Leg, sdp: bytes) -> bytes:
        return sdp

    def answer(self, sender: Leg, sdp: bytes) -> bytes:
        return sdp

    def refused(self, receiver: Leg) -> None:
        return None

    def release(self) -> None:
        return None

    def send_digit(self, to: Side, digit: str, duration_ms: int) -> bool:
        return False

    def digits_to(self, callback: DigitCallback) -> None:
        return None

    def record(self, state_dir: Path, relative: PurePosixPath) -> bool:
        return False  # the media does not cross the switch

    def recorded(self) -> PurePosixPath | None:
        return None


PASS_THROUGH = PassThrough()
