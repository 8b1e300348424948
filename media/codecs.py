"""Audio codecs for transcoding: a registry by SDP name, 20 ms frames to and from PCM.

Theory of operation
-------------------
A codec is an ``AudioCodec``: its SDP identity (encoding name, RTP clock rate,
channels, RFC 3551 static payload type), the rate of the PCM it codes (G.722
samples at 16 kHz but its RTP clock runs at 8 kHz, RFC 3551 §4.5.2; Opus is
``opus/48000/2`` in SDP whatever it carries, RFC 7587 §7) and the FFmpeg
codec that does the work.  ``encoder()`` and ``decoder()`` give per-stream
objects that turn one 20 ms frame of 16-bit mono little-endian PCM at the
codec's rate into one RTP payload and back.  ``Resampler`` converts PCM
between the rates (8, 16 and 48 kHz).

The registry (STYLE rule 11) maps ``media.sdp.Codec.key`` to the codec:
``find(Codec("PCMU", 8000))``.  ``register()`` adds one.

Why PyAV, and not aiortc's classes or ``audioop``
-------------------------------------------------
aiortc's ``aiortc.codecs`` (g711, g722, opus) are thin wrappers over PyAV's
``CodecContext`` with WebRTC's choices built in: stereo Opus at 96 kbit/s,
an ``AudioResampler`` and FIFO inside every encoder, ``JitterFrame`` in and
``av.AudioFrame`` out.  A telephone leg wants mono Opus at a voice bit rate
and plain bytes, so the same FFmpeg coders are driven here directly: one
frame object per 20 ms in each direction and nothing else.  The FFmpeg
coders are the ones aiortc uses: ``pcm_mulaw``/``pcm_alaw`` (G.711),
``g722`` (FFmpeg's own G.722 codec, sub-band ADPCM at 64 kbit/s; a pure
Python G.722 would cost milliseconds per frame) and ``libopus``.  ``audioop``
is deprecated (PEP 594) and gone in Python 3.13, and only covers G.711.

Packet loss: ``Decoder.conceal()`` returns a frame to play in place of a
lost one: the last decoded frame repeated at half the level, then a quarter,
then silence (packet repetition with fade, as G.711 Appendix I's simplest
form; FFmpeg's libopus wrapper does not expose Opus's own PLC).
"""

from __future__ import annotations

import fractions
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from av import AudioFrame, AudioResampler, CodecContext, Packet

from .sdp import Codec

FRAME_MS = 20  # one frame of every codec here (RFC 3551 §4.5: the default ptime)
SAMPLE_BYTES = 2  # 16-bit signed little-endian PCM, mono
_FADE_SHIFTS = (1, 2)  # conceal: the last frame at 1/2, then 1/4, then silence


class Encoder(Protocol):
    def encode(self, pcm: bytes) -> bytes:
        """One frame of PCM at the codec's rate -> one RTP payload (b"" if none yet)."""
        ...


class Decoder(Protocol):
    def decode(self, payload: bytes) -> bytes:
        """One RTP payload -> PCM at the codec's rate (what it holds: 20 ms or more)."""
        ...

    def conceal(self) -> bytes:
        """One frame of PCM to play in place of a lost packet."""
        ...


@dataclass(frozen=True, slots=True)
class AudioCodec:
    """An audio codec as SDP names it and as FFmpeg codes it."""

    name: str  # the encoding name of a=rtpmap
    clock_rate: int  # RTP timestamp units per second
    channels: int  # as in a=rtpmap (opus: always 2, RFC 7587 §7)
    sample_rate: int  # of the PCM coded
    av_name: str  # FFmpeg's codec
    static_pt: int | None = None  # RFC 3551 §6
    bit_rate: int | None = None
    options: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> tuple[str, int, int]:
        """As ``media.sdp.Codec.key``: names compare case-insensitively."""
        return self.name.lower(), self.clock_rate, self.channels

    @property
    def frame_samples(self) -> int:
        return self.sample_rate * FRAME_MS // 1000

    @property
    def frame_bytes(self) -> int:
        return self.frame_samples * SAMPLE_BYTES

    @property
    def timestamp_step(self) -> int:
        """RTP timestamp units per frame."""
        return self.clock_rate * FRAME_MS // 1000

    def encoder(self) -> Encoder:
        return AvEncoder(self)

    def decoder(self) -> Decoder:
        return AvDecoder(self)


PCMU = AudioCodec("PCMU", 8000, 1, 8000, "pcm_mulaw", static_pt=0)
PCMA = AudioCodec("PCMA", 8000, 1, 8000, "pcm_alaw", static_pt=8)
G722 = AudioCodec("G722", 8000, 1, 16000, "g722", static_pt=9)  # RFC 3551 §4.5.2
OPUS = AudioCodec(
    "opus", 48000, 2, 48000, "libopus", bit_rate=32000,
    options={"application": "voip"},  # mono: every Opus decoder takes mono and stereo
)

_REGISTRY: dict[tuple[str, int, int], AudioCodec] = {}


def register(codec: AudioCodec) -> AudioCodec:
    """Add (or replace) a codec; returns it."""
    _REGISTRY[codec.key] = codec
    return codec


def find(codec: Codec) -> AudioCodec | None:
    """The transcodable codec of an SDP payload format, if any."""
    return _REGISTRY.get(codec.key)


def registered() -> tuple[AudioCodec, ...]:
    return tuple(_REGISTRY.values())


for _codec in (PCMU, PCMA, G722, OPUS):
    register(_codec)


# -- PyAV glue -------------------------------------------------------------------------
def _frame(pcm: bytes, rate: int, pts: int | None) -> AudioFrame:
    frame = AudioFrame(format="s16", layout="mono", samples=len(pcm) // SAMPLE_BYTES)
    frame.planes[0].update(pcm)
    frame.sample_rate = rate
    frame.pts = pts
    return frame


def _pcm(frame: AudioFrame) -> bytes:
    """The samples of a mono s16 frame (its plane may be padded beyond them)."""
    return bytes(frame.planes[0])[: frame.samples * SAMPLE_BYTES]


def _context(codec: AudioCodec, mode: str) -> CodecContext:
    ctx = CodecContext.create(codec.av_name, mode)
    ctx.format = "s16"
    ctx.layout = "mono"
    ctx.sample_rate = codec.sample_rate
    return ctx


class AvEncoder:
    """An FFmpeg encoder fed one frame at a time."""

    def __init__(self, codec: AudioCodec) -> None:
        self.codec = codec
        self._ctx = _context(codec, "w")
        self._ctx.time_base = fractions.Fraction(1, codec.sample_rate)
        if codec.bit_rate is not None:
            self._ctx.bit_rate = codec.bit_rate
        if codec.options:
            self._ctx.options = dict(codec.options)
        self._pts = 0

    def encode(self, pcm: bytes) -> bytes:
        if len(pcm) != self.codec.frame_bytes:
            raise ValueError(f"{self.codec.name}: a frame is {self.codec.frame_bytes} bytes,"
                             f" not {len(pcm)}")
        packets = self._ctx.encode(_frame(pcm, self.codec.sample_rate, self._pts))
        self._pts += self.codec.frame_samples
        return b"".join(bytes(p) for p in packets)  # one packet per frame in practice


class AvDecoder:
    """An FFmpeg decoder with packet-repetition concealment."""

    def __init__(self, codec: AudioCodec) -> None:
        self.codec = codec
        self._ctx = _context(codec, "r")
        self._last = b""
        self._lost = 0  # frames concealed in a row

    def decode(self, payload: bytes) -> bytes:
        pcm = b"".join(_pcm(f) for f in self._ctx.decode(Packet(payload)))
        if pcm:
            self._last, self._lost = pcm[-self.codec.frame_bytes :], 0
        return pcm

    def conceal(self) -> bytes:
        lost, self._lost = self._lost, self._lost + 1
        if lost >= len(_FADE_SHIFTS) or not self._last:
            return bytes(self.codec.frame_bytes)
        shift = _FADE_SHIFTS[lost]
        return array("h", [s >> shift for s in array("h", self._last)]).tobytes()


class Resampler:
    """PCM from one rate to another, as a stream: output lengths vary by a few
    samples around the ratio while the filter fills (FFmpeg's swresample)."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self._av = AudioResampler(format="s16", layout="mono", rate=dst_rate)

    def resample(self, pcm: bytes) -> bytes:
        if self.src_rate == self.dst_rate or not pcm:
            return pcm
        frames = self._av.resample(_frame(pcm, self.src_rate, None))
        return b"".join(_pcm(f) for f in frames)
