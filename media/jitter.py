"""A jitter buffer for the decoding side of a transcoded stream (sans-IO).

Theory of operation
-------------------
Packets go in as they arrive, ``put(seq, ts, payload, now)``; once per frame
interval the transcoder takes the next one out, ``get(now)``, and gets

* a ``Frame``: the packet due now, in sequence-number order;
* a ``Gap``: the packet due now is missing (lost, or later than the buffer
  waits): the decoder conceals one frame;
* ``None``: nothing to play: the buffer is (re)filling, or the sender is
  silent (end of a talkspurt, hold).

Two states.  ``BUFFERING``: packets are kept until ``target`` of them are in,
or the first of them has waited ``target`` frame intervals (a talkspurt
shorter than the target still plays); then playout starts at the lowest
sequence number held.  ``PLAYING``: each ``get`` plays the next sequence
number, or reports a gap; an empty buffer is an underrun (one gap, then
``BUFFERING`` again).  When more than ``2 * target`` packets wait (more than
jitter up to ``target`` frames can explain), the due ones are skipped down to
that, so a burst after a network stall or a sender whose
clock runs fast cannot build up delay.

Sequence numbers are extended to 64 bits across the 16-bit wrap, relative to
the highest one seen (RFC 3550 Appendix A.1).  A packet behind the playout
point is a duplicate if it was played and late otherwise (its turn passed
as a gap: the buffer waited too little); both are dropped, as is a second
copy of one held.  A
jump of ``capacity`` or more either way is taken for a restarted sender only
when the next packet follows it (A.1's ``bad_seq``); a new SSRC resets the
buffer at once.  Memory is bounded: at most ``capacity`` packets are held.

Adaptive mode: each late packet raises the target by one frame (up to
``max_delay``); every ``decay_frames`` frames played without a late packet
lower it by one (down to ``min_delay``).  A higher target takes effect at the
next (re)buffering, a lower one through skipping.  ``adaptive=False`` keeps
it fixed.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

log = logging.getLogger("centrala.media.jitter")

SEQ_MOD = 1 << 16


class JitterState(enum.Enum):
    BUFFERING = "buffering"
    PLAYING = "playing"


@dataclass(frozen=True, slots=True)
class Frame:
    """The packet due now."""

    seq: int  # as on the wire (16 bits)
    ts: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Gap:
    """The packet due now is missing: conceal one frame."""

    seq: int


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    played: int = 0
    gaps: int = 0  # frames concealed (losses and underruns)
    late: int = 0
    duplicates: int = 0
    skipped: int = 0  # dropped to shrink the delay
    resets: int = 0


class JitterBuffer:
    """Reorders one RTP stream's packets for a frame-by-frame decoder."""

    def __init__(
        self, target: int = 3, *, adaptive: bool = True, min_delay: int = 1,
        max_delay: int = 10, capacity: int = 64, frame_s: float = 0.02,
        decay_frames: int = 250,
    ) -> None:
        if not 1 <= min_delay <= target <= max_delay < capacity:
            raise ValueError("need 1 <= min_delay <= target <= max_delay < capacity")
        self.target, self.adaptive = target, adaptive
        self.min_delay, self.max_delay, self.capacity = min_delay, max_delay, capacity
        self.frame_s, self.decay_frames = frame_s, decay_frames
        self.stats = JitterStats()
        self._mask = (1 << capacity) - 1
        self.state = JitterState.BUFFERING
        self._ssrc: int | None = None
        self._clear()

    def _clear(self) -> None:
        self._slots: dict[int, tuple[int, bytes]] = {}  # extended seq -> (ts, payload)
        self._highest: int | None = None  # extended
        self._next: int | None = None  # extended seq due next (None: not started)
        self._bad_seq: int | None = None  # RFC 3550 A.1: a jump waiting to be confirmed
        self._since = 0.0  # when BUFFERING got its first packet
        self._played = 0  # bit i: packet _next - 1 - i was played (duplicate, not late)
        self._calm = 0  # frames played since the last late packet

    def _set_state(self, new: JitterState) -> None:
        if new is not self.state:
            log.debug("jitter buffer %s -> %s", self.state.value, new.value)
            self.state = new

    def reset(self) -> None:
        """Forget the stream (a new source): the next packet starts afresh."""
        self.stats.resets += 1
        self._clear()
        self._set_state(JitterState.BUFFERING)

    def __len__(self) -> int:
        return len(self._slots)

    # -- input -------------------------------------------------------------------------
    def put(self, seq: int, ts: int, payload: bytes, now: float, ssrc: int | None = None) -> bool:
        """Take one packet; False when it is dropped (late, duplicate, unconfirmed jump)."""
        self.stats.received += 1
        if ssrc is not None and ssrc != self._ssrc:
            if self._ssrc is not None:
                self.reset()
            self._ssrc = ssrc
        ext = self._extend(seq)
        if ext is None:
            return False
        if self._next is not None and ext < self._next:
            return self._late(self._next - 1 - ext)
        if ext in self._slots:
            self.stats.duplicates += 1
            return False
        if not self._slots and self.state is JitterState.BUFFERING:
            self._since = now
        self._slots[ext] = (ts, payload)
        if self._highest is None or ext > self._highest:
            self._highest = ext
        return True

    def _extend(self, seq: int) -> int | None:
        """The extended sequence number, or None for an unconfirmed jump (A.1)."""
        if self._highest is None:
            return seq
        delta = (seq - self._highest + SEQ_MOD // 2) % SEQ_MOD - SEQ_MOD // 2
        ext = self._highest + delta
        base = self._highest if self._next is None else self._next
        lowest = min(self._slots, default=ext)
        if abs(ext - base) < self.capacity and max(self._highest, ext) - lowest < self.capacity:
            self._bad_seq = None
            return ext
        if seq != self._bad_seq:
            self._bad_seq = (seq + 1) % SEQ_MOD
            return None
        self.reset()  # the sender restarted: two packets in a row agree
        return seq

    def _late(self, behind: int) -> bool:
        """A packet ``behind`` + 1 frames before the playout point."""
        if (self._played >> behind) & 1:
            self.stats.duplicates += 1
            return False
        self.stats.late += 1
        self._calm = 0
        if self.adaptive and self.target < self.max_delay:
            self.target += 1
        return False

    # -- output ------------------------------------------------------------------------
    def get(self, now: float) -> Frame | Gap | None:
        """The frame due now, a gap to conceal, or None (nothing to play)."""
        if self.state is JitterState.BUFFERING and not self._ready(now):
            return None
        if self.state is JitterState.BUFFERING:
            first = min(self._slots)
            self._advance(first - (first if self._next is None else self._next), played=False)
            self._next = first
            self._set_state(JitterState.PLAYING)
        assert self._next is not None
        if not self._slots:  # underrun
            self._set_state(JitterState.BUFFERING)
            return self._gap()
        while len(self._slots) > 2 * self.target and self._next in self._slots:
            del self._slots[self._next]  # too much delay: skip one frame
            self.stats.skipped += 1
            self._advance(1, played=True)
        return self._play()

    def _advance(self, frames: int, played: bool) -> None:
        """Move the playout point on by ``frames``, the last one ``played`` or not."""
        if self._next is not None:
            self._next += frames
        self._played = ((self._played << frames) | played) & self._mask

    def _ready(self, now: float) -> bool:
        """Enough packets, or the first has waited ``target`` frames (give or take half a
        frame: ticks are never exactly one frame apart)."""
        waited = now - self._since
        return bool(self._slots) and (
            len(self._slots) >= self.target or waited >= (self.target - 0.5) * self.frame_s
        )

    def _play(self) -> Frame | Gap:
        assert self._next is not None
        item = self._slots.pop(self._next, None)
        if item is None:
            return self._gap()
        seq = self._next % SEQ_MOD
        self._advance(1, played=True)
        self.stats.played += 1
        self._calm += 1
        if self.adaptive and self._calm >= self.decay_frames:
            self._calm = 0
            self.target = max(self.min_delay, self.target - 1)
        return Frame(seq, item[0], item[1])

    def _gap(self) -> Gap:
        assert self._next is not None
        self.stats.gaps += 1
        gap = Gap(self._next % SEQ_MOD)
        self._advance(1, played=False)
        return gap
