"""Playing audio into one side of a relay stream: music on hold, prompts, tones.

Theory of operation
-------------------
Three layers, the first two sans-IO:

* ``PlayoutClock`` says which 20 ms frames are due: frame slot ``n`` is due at
  ``start + n * frame_s``.  ``frames_due(now)`` returns the slots whose time
  has come since the last call, or comes within ``EARLY_S`` (asyncio and
  uvloop may run a timer a little early; a frame sent 2 ms early is
  harmless, a wake-up that finds nothing due is wasted).  After a late
  wake-up (a busy loop, a suspended VM) it returns at most ``max_burst``
  slots, the latest ones: the earlier slots are skipped, so a phone's jitter
  buffer gets a short burst, never a flood, and the stream stays on the
  wall clock.
* ``Playout`` turns PCM at the leg's codec rate into RTP packets for the leg:
  one 20 ms frame per due slot, encoded with ``media.codecs``, in a stream of
  its own (random SSRC, sequence number and timestamp, RFC 3550 §5.1; the
  marker bit on the first packet, RFC 3551 §4.1).  The timestamp follows the
  slots, so skipped slots read as a pause; the audio is not skipped (no
  words of a prompt are lost), and the packet after a pause is marked again.
  Played once, the last frame is padded with silence and the playout ends
  ``FINISHED`` at the slot after it, when its sound is over; looped, the
  audio wraps around without a gap.  ``stop()`` and ``digit()`` (a key the
  switch detected, when it is one of ``stop_digits``) end it at once.
* ``Player`` is the asyncio adapter: one ``loop.call_at`` per wake-up, at the
  next due slot (as ``TranscodingPump`` does: no task, no coroutine frame per
  player), sending what is due with ``RelayStream.send``, which works on a
  held side and goes through that side's ``Rewriter`` when the switch set one,
  so a phone sees one continuous stream across relay, music and relay again.
  Holding the side (``RelayStream.hold``) so that relayed packets do not mix
  with the player's is the switch's business.  The end is reported once,
  to ``on_done`` and to ``wait()``; a closed stream ends it ``CLOSED``.
"""

from __future__ import annotations

import asyncio
import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .codecs import FRAME_MS, SAMPLE_BYTES
from .transcode import LegCodec, _given_or_random, _Outgoing

if TYPE_CHECKING:
    from .audiofile import PcmSource
    from .relay import Side

FRAME_S = FRAME_MS / 1000
MAX_BURST = 3  # frames sent at once after a late wake-up, at most
EARLY_S = 0.002  # a frame this close to its time is due: event loops wake a little early


class PlayoutClock:
    """Which frame slots are due: slot ``n`` at ``start + n * frame_s``."""

    def __init__(self, start: float, frame_s: float = FRAME_S, max_burst: int = MAX_BURST) -> None:
        if max_burst < 1:
            raise ValueError("max_burst must be at least 1")
        self.start, self.frame_s, self.max_burst = start, frame_s, max_burst
        self.skipped = 0  # slots that passed unsent after late wake-ups
        self._next = 0  # the first slot not yet returned

    def next_due(self) -> float:
        return self.start + self._next * self.frame_s

    def frames_due(self, now: float) -> range:
        """The slots to send now: all that came due, or the last ``max_burst`` of them."""
        end = math.floor((now + EARLY_S - self.start) / self.frame_s) + 1
        if end <= self._next:
            return range(0)
        skip = max(0, end - self._next - self.max_burst)
        self.skipped += skip
        due = range(self._next + skip, end)
        self._next = end
        return due


class EndReason(enum.Enum):
    FINISHED = "finished"  # played to the end (once)
    STOPPED = "stopped"  # stop()
    DIGIT = "digit"  # a key in stop_digits
    CLOSED = "closed"  # the relay stream closed under it


@dataclass(frozen=True, slots=True)
class PlayEnd:
    reason: EndReason
    frames: int  # packets sent
    digit: str | None = None


class Playout:
    """PCM in, the RTP packets of each due frame out (sans-IO)."""

    def __init__(
        self, pcm: bytes, leg: LegCodec, *, start: float, repeat: bool = False,
        stop_digits: str = "", max_burst: int = MAX_BURST,
        ssrc: int | None = None, seq: int | None = None, timestamp: int | None = None,
    ) -> None:
        self.leg, self.repeat, self.stop_digits = leg, repeat, stop_digits.upper()
        self.clock = PlayoutClock(start, FRAME_S, max_burst)
        self.ended: PlayEnd | None = None
        self._pcm = pcm[: len(pcm) - len(pcm) % SAMPLE_BYTES]
        self._pos = 0
        self._encoder = leg.codec.encoder()
        # the stream's SSRC and next sequence number (its ts is unused: slots give it)
        self._out = _Outgoing(_given_or_random(ssrc, 32), _given_or_random(seq, 16), 0)
        self._ts0 = _given_or_random(timestamp, 32)  # of slot 0
        self._next_slot = 0
        self._frames = 0
        if not self._pcm:
            self._end(EndReason.FINISHED)

    def next_due(self) -> float:
        return self.clock.next_due()

    def frames_due(self, now: float) -> list[bytearray]:
        """The packets to send now (none once ended)."""
        packets: list[bytearray] = []
        if self.ended is not None:
            return packets
        for slot in self.clock.frames_due(now):
            pcm = self._take()
            if pcm is None:
                self._end(EndReason.FINISHED)
                break
            if slot != self._next_slot:  # slots skipped: a pause in the stream
                self._out.marker = True
            self._next_slot = slot + 1
            packet = self._packet(slot, pcm)
            if packet is not None:
                packets.append(packet)
        return packets

    def stop(self) -> None:
        if self.ended is None:
            self._end(EndReason.STOPPED)

    def digit(self, digit: str) -> bool:
        """A key the switch detected; True if it ended the playout."""
        if self.ended is not None or not digit or digit.upper() not in self.stop_digits:
            return False
        self._end(EndReason.DIGIT, digit.upper())
        return True

    def close(self) -> None:
        """The stream is gone."""
        if self.ended is None:
            self._end(EndReason.CLOSED)

    def _end(self, reason: EndReason, digit: str | None = None) -> None:
        self.ended = PlayEnd(reason, self._frames, digit)

    def _take(self) -> bytes | None:
        """The next frame of PCM; None when played once to the end."""
        size = self.leg.codec.frame_bytes
        pcm, pos = self._pcm, self._pos
        if not self.repeat:
            if pos >= len(pcm):
                return None
            self._pos = pos + size
            return pcm[pos : pos + size].ljust(size, b"\0")
        frame = b""
        while len(frame) < size:  # wraps, even around audio shorter than a frame
            piece = pcm[pos : pos + size - len(frame)]
            frame += piece
            pos = (pos + len(piece)) % len(pcm)
        self._pos = pos
        return frame

    def _packet(self, slot: int, pcm: bytes) -> bytearray | None:
        payload = self._encoder.encode(pcm)
        if not payload:  # the encoder holds it back (none of ours does, per frame)
            return None
        ts = (self._ts0 + slot * self.leg.codec.timestamp_step) & 0xFFFFFFFF
        marker, self._out.marker = self._out.marker, False
        self._frames += 1
        return self._out.packet(self.leg.payload_type, ts, payload, marker)


# -- the adapter ---------------------------------------------------------------------------
class SendingStream(Protocol):
    """What a player needs of ``media.relay.RelayStream``."""

    closed: bool

    def send(self, side: Side, packet: bytearray) -> bool: ...


class Player:
    """Plays a ``PcmSource`` into ``side`` of a relay stream, paced by the event loop."""

    def __init__(
        self, stream: SendingStream, side: Side, leg: LegCodec, source: PcmSource, *,
        repeat: bool = False, stop_digits: str = "",
        on_done: Callable[[PlayEnd], None] | None = None,
        loop: asyncio.AbstractEventLoop | None = None, max_burst: int = MAX_BURST,
    ) -> None:
        self.stream, self.side, self.leg, self.source = stream, side, leg, source
        self.repeat, self.stop_digits, self.max_burst = repeat, stop_digits, max_burst
        self.on_done = on_done
        self.loop = loop or asyncio.get_running_loop()
        self.ended: PlayEnd | None = None
        self.core: Playout | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[PlayEnd] = self.loop.create_future()

    def start(self) -> None:
        """Begin now: the first frame goes at once."""
        if self.core is not None or self.ended is not None:
            return
        self.core = Playout(
            self.source.pcm(self.leg.codec.sample_rate), self.leg, start=self.loop.time(),
            repeat=self.repeat, stop_digits=self.stop_digits, max_burst=self.max_burst,
        )
        self._tick()

    def stop(self) -> None:
        """End now (``STOPPED``); safe to call again or before ``start()``."""
        if self.core is None:
            self._finish(PlayEnd(EndReason.STOPPED, 0))
            return
        self.core.stop()
        self._check_end()

    def digit(self, digit: str) -> bool:
        """A key the switch detected on the played-to leg; True if it stopped playback."""
        if self.core is None or not self.core.digit(digit):
            return False
        self._check_end()
        return True

    async def wait(self) -> PlayEnd:
        """How the playback ended, once it has."""
        return await asyncio.shield(self._done)

    def _tick(self) -> None:
        self._handle = None
        assert self.core is not None
        if self.stream.closed:
            self.core.close()
        for packet in self.core.frames_due(self.loop.time()):
            self.stream.send(self.side, packet)
        if not self._check_end():
            self._handle = self.loop.call_at(self.core.next_due(), self._tick)

    def _check_end(self) -> bool:
        assert self.core is not None
        if self.core.ended is None:
            return False
        self._finish(self.core.ended)
        return True

    def _finish(self, end: PlayEnd) -> None:
        if self.ended is not None:
            return
        self.ended = end
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self._done.done():
            self._done.set_result(end)
        if self.on_done is not None:
            self.on_done(end)
