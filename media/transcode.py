"""Frame-by-frame transcoding between two legs that share no codec (sans-IO).

Theory of operation
-------------------
A ``Transcoder`` is one direction of a stream: RTP from leg X in X's codec
becomes RTP to leg Y in Y's codec, as a stream of its own (our SSRC, our
sequence numbers and timestamps, RFC 3550 §7.2: a translator that changes
the encoding is a new source).  It is driven by two calls:

* ``push(packet, now)`` for every RTP packet the relay receives from leg X.
  Audio in X's payload type goes into the ``JitterBuffer``; telephone events
  (RFC 4733) bypass it and come back at once, re-stamped for leg Y: its
  payload type, our SSRC and sequence numbers, the timestamp of the audio
  position they start at, and the duration scaled from X's clock to Y's.
  Anything else (comfort noise, unknown payload types, malformed packets) is
  dropped;
* ``tick(now)`` every 20 ms, from the adapter's pacing timer: take the frame
  due from the jitter buffer, decode it (or conceal a gap), resample, encode
  one 20 ms frame for leg Y and return the packet.  When the buffer has
  nothing to play (start, end of a talkspurt) nothing is sent, the timestamp
  still advances by one frame, and the next packet sent carries the marker
  bit (RFC 3551 §4.1).

Decoded audio goes through a small PCM FIFO, so packets holding more than
one frame (a peer's 40 or 60 ms Opus) are spread over several ticks, and
the resampler's start-up delay is padded once instead of shifting every frame.

``TranscodedStream`` holds both directions of one m-line for the relay's
sides "a" and "b".  ``TranscodingPump`` is the adapter: it takes the relay
stream's packets through ``RelayStream.set_tap`` (the relay stops copying
them), sends what comes out through ``RelayStream.send``, and arms one
``loop.call_at`` per 20 ms; only it reads the clock.  Transcoding is for streams whose legs share no codec;
when they share one, the relay copies packets untouched.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from av.error import FFmpegError

from .codecs import AudioCodec, Resampler
from .dtmf import MAX_DURATION, DtmfError, TelephoneEvent
from .jitter import Frame, JitterBuffer
from .rtp import RtpFormatError, RtpPacket

if TYPE_CHECKING:
    import asyncio

    from .relay import Side

MAX_FIFO_FRAMES = 4  # decoded audio waiting to be encoded, at most
TICK_S = 0.02  # one frame


@dataclass(frozen=True, slots=True)
class LegCodec:
    """What one leg speaks: its codec and its payload type numbers."""

    codec: AudioCodec
    payload_type: int
    telephone_event: int | None = None  # RFC 4733 payload type on this leg, if negotiated


@dataclass(slots=True)
class TranscodeStats:
    packets_in: int = 0
    events: int = 0  # telephone-event packets passed on
    dropped: int = 0  # malformed, unknown payload type, undecodable
    packets_out: int = 0
    concealed: int = 0


def _given_or_random(value: int | None, bits: int) -> int:
    """RFC 3550 §5.1: SSRC, first sequence number and timestamp are random."""
    return secrets.randbits(bits) if value is None else value


@dataclass(slots=True)
class _Outgoing:
    """Our RTP stream towards leg Y: SSRC, next sequence number and timestamp."""

    ssrc: int
    seq: int
    ts: int
    marker: bool = True  # the next audio packet starts a talkspurt

    def packet(self, pt: int, ts: int, payload: bytes, marker: bool) -> bytearray:
        data = bytes(RtpPacket(payload_type=pt, marker=int(marker), sequence_number=self.seq,
                               timestamp=ts, ssrc=self.ssrc, payload=payload))
        self.seq = (self.seq + 1) & 0xFFFF
        return bytearray(data)


class Transcoder:
    """One direction: leg X's packets in, leg Y's packets out."""

    def __init__(
        self, src: LegCodec, dst: LegCodec, *, jitter: JitterBuffer | None = None,
        ssrc: int | None = None, seq: int | None = None, timestamp: int | None = None,
    ) -> None:
        self.src, self.dst = src, dst
        self.jitter = JitterBuffer() if jitter is None else jitter
        self.stats = TranscodeStats()
        self._decoder = src.codec.decoder()
        self._encoder = dst.codec.encoder()
        self._resampler = Resampler(src.codec.sample_rate, dst.codec.sample_rate)
        self._pcm = bytearray()  # decoded, resampled, not yet encoded
        self._out = _Outgoing(_given_or_random(ssrc, 32), _given_or_random(seq, 16),
                              _given_or_random(timestamp, 32))
        self._event_src_ts: int | None = None  # the event being passed on, X's timestamp
        self._event_dst_ts = 0  # ...and ours

    @property
    def ssrc(self) -> int:
        return self._out.ssrc

    # -- per packet --------------------------------------------------------------------
    def push(self, data: bytes | bytearray | memoryview, now: float) -> bytearray | None:
        """One RTP packet from leg X; a telephone-event packet for leg Y, or None."""
        self.stats.packets_in += 1
        try:
            packet = RtpPacket.parse(bytes(data))
        except RtpFormatError:
            self.stats.dropped += 1
            return None
        if packet.payload_type == self.src.payload_type:
            self.jitter.put(packet.sequence_number, packet.timestamp, packet.payload, now,
                            packet.ssrc)
            return None
        if packet.payload_type == self.src.telephone_event and self.dst.telephone_event is not None:
            return self._event(packet)
        self.stats.dropped += 1
        return None

    def _event(self, packet: RtpPacket) -> bytearray | None:
        try:
            event = TelephoneEvent.parse(packet.payload)
        except DtmfError:
            self.stats.dropped += 1
            return None
        if packet.timestamp != self._event_src_ts:  # a new event: it starts now on leg Y
            self._event_src_ts, self._event_dst_ts = packet.timestamp, self._out.ts
        scaled = event.duration * self.dst.codec.clock_rate // self.src.codec.clock_rate
        out = TelephoneEvent(event.event, event.end, event.volume, min(scaled, MAX_DURATION),
                             event.reserved)
        assert self.dst.telephone_event is not None
        self.stats.events += 1
        self.stats.packets_out += 1
        return self._out.packet(self.dst.telephone_event, self._event_dst_ts, bytes(out),
                                bool(packet.marker))

    # -- every 20 ms -------------------------------------------------------------------
    def tick(self, now: float) -> bytearray | None:
        """The packet of this 20 ms for leg Y, or None when there is nothing to send."""
        frame_bytes = self.dst.codec.frame_bytes
        if len(self._pcm) < frame_bytes:
            item = self.jitter.get(now)
            if item is not None:
                pcm = self._decode(item.payload) if isinstance(item, Frame) else None
                if pcm is None:
                    self.stats.concealed += 1
                    pcm = self._decoder.conceal()
                self._pcm += self._resampler.resample(pcm)
        ts = self._out.ts
        self._out.ts = (ts + self.dst.codec.timestamp_step) & 0xFFFFFFFF
        if not self._pcm:
            self._out.marker = True
            return None
        frame = bytes(self._pcm[:frame_bytes]).ljust(frame_bytes, b"\0")
        del self._pcm[: max(frame_bytes, len(self._pcm) - MAX_FIFO_FRAMES * frame_bytes)]
        payload = self._encoder.encode(frame)
        if not payload:
            return None
        marker, self._out.marker = self._out.marker, False
        self.stats.packets_out += 1
        return self._out.packet(self.dst.payload_type, ts, payload, marker)

    def _decode(self, payload: bytes) -> bytes | None:
        try:
            return self._decoder.decode(payload) or None
        except FFmpegError:  # a corrupt payload: conceal it like a lost one
            self.stats.dropped += 1
            return None


class TranscodedStream:
    """Both directions of one m-line between the relay's sides "a" and "b"."""

    def __init__(self, a: LegCodec, b: LegCodec, *, jitter_target: int = 3) -> None:
        self.to: dict[Side, Transcoder] = {
            "b": Transcoder(a, b, jitter=JitterBuffer(jitter_target)),
            "a": Transcoder(b, a, jitter=JitterBuffer(jitter_target)),
        }

    def push(self, from_side: Side, packet: bytes | bytearray | memoryview,
             now: float) -> bytearray | None:
        """A packet received from ``from_side``; an event packet to send to the other side."""
        return self.to["b" if from_side == "a" else "a"].push(packet, now)

    def tick(self, now: float) -> list[tuple[Side, bytearray]]:
        """The packets of this 20 ms, with the side each goes to."""
        out: list[tuple[Side, bytearray]] = []
        for side, transcoder in self.to.items():
            packet = transcoder.tick(now)
            if packet is not None:
                out.append((side, packet))
        return out


# -- the adapter ---------------------------------------------------------------------------
class TappableStream(Protocol):
    """What the pump needs of ``media.relay.RelayStream``."""

    closed: bool

    def set_tap(self, from_side: Side, tap: Callable[[memoryview], None] | None) -> None: ...

    def send(self, side: Side, packet: bytearray) -> bool: ...


class TranscodingPump:
    """Drives a ``TranscodedStream`` from a relay stream: a tap per side, a 20 ms tick."""

    def __init__(self, stream: TappableStream, transcoded: TranscodedStream,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.stream, self.transcoded, self.loop = stream, transcoded, loop
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def start(self) -> None:
        pairs: tuple[tuple[Side, Side], ...] = (("a", "b"), ("b", "a"))
        for side, other in pairs:
            self.stream.set_tap(side, self._tap(side, other))
        self._due = self.loop.time() + TICK_S
        self._handle = self.loop.call_at(self._due, self._tick)

    def stop(self) -> None:
        """Stop ticking and let the relay copy packets again; safe to call twice."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            if not self.stream.closed:
                self.stream.set_tap("a", None)
                self.stream.set_tap("b", None)

    def _tap(self, side: Side, other: Side) -> Callable[[memoryview], None]:
        def tap(packet: memoryview) -> None:
            event = self.transcoded.push(side, packet, self.loop.time())
            if event is not None:
                self.stream.send(other, event)
        return tap

    def _tick(self) -> None:
        if self.stream.closed:
            self._handle = None
            return
        now = self.loop.time()
        for side, packet in self.transcoded.tick(now):
            self.stream.send(side, packet)
        self._due += TICK_S
        if self._due < now:  # the loop fell a frame behind: resume, do not burst
            self._due = now + TICK_S
        self._handle = self.loop.call_at(self._due, self._tick)
