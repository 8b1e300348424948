"""Where the media layer plugs into every call.

The B2BUA hands each session description it relays to a ``MediaHook``
before sending it on: the offer from one leg becomes the offer on the other
leg, the answer likewise.  Until the media issue anchors RTP in Centrala,
``PassThrough`` relays SDP unchanged; the call model does not change when
a real anchor replaces it.
"""

from __future__ import annotations

from typing import Protocol


class MediaHook(Protocol):
    def offer(self, call_ref: str, from_leg: str, sdp: bytes) -> bytes:
        """The offer to send on the other leg for ``sdp`` received on ``from_leg``."""

    def answer(self, call_ref: str, from_leg: str, sdp: bytes) -> bytes:
        """The answer to send on the other leg."""

    def release(self, call_ref: str) -> None:
        """The call ended: free its ports (always called, exactly once)."""


class PassThrough:
    """No anchoring yet: bodies cross the switch unchanged."""

    def offer(self, call_ref: str, from_leg: str, sdp: bytes) -> bytes:
        return sdp

    def answer(self, call_ref: str, from_leg: str, sdp: bytes) -> bytes:
        return sdp

    def release(self, call_ref: str) -> None:
        return None
