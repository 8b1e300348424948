"""DTMF: RFC 4733 telephone events, SIP INFO bodies and in-band (Goertzel) detection.

Theory of operation
-------------------
Five sans-IO pieces, one job each:

* ``TelephoneEvent``: the 4-byte RFC 4733 §2.3 payload (event, E bit, R bit,
  volume, duration), ``parse()``/``__bytes__`` round-tripping exactly;
* ``DtmfReceiver``: turns the packets of an event stream into digits, each
  exactly once.  A sender repeats every event: updates every 50 ms with a
  growing duration, then the end packet three times (§2.5.1.4); packets may
  arrive reordered or late.  An event is identified by its RTP timestamp
  (§2.5.1.2: a new event gets a new timestamp) and its code.  The digit is
  reported when its event ends: on the first end packet, or when a packet of
  a newer event shows up, or ``end_timeout_s`` after its last packet (all
  end packets lost).  Packets of the event just reported (retransmitted end
  packets, late updates) and of older events are ignored;
* ``digit_packets()``: what a sender transmits for one digit (§2.5.1: start
  with the marker bit, an update every 50 ms, three end packets);
* ``DtmfInfo``: the bodies of SIP INFO that carry a key press,
  ``application/dtmf-relay`` (``Signal=5`` / ``Duration=160``, the de facto
  format from Cisco) and ``application/dtmf`` (the digit alone);
* ``InbandDetector``: Goertzel detection of DTMF tones in 8 kHz PCM, for
  G.711 legs that have no telephone-event (ITU-T Q.24 tolerances, roughly).
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

# RFC 4733 §3.2: events 0-9, *, #, A-D (then flash, 16, which is no key).
DIGITS = "0123456789*#ABCD"
EVENT_SIZE = 4
MAX_DURATION = 0xFFFF
UPDATE_INTERVAL_S = 0.05  # §2.5.1.2: "typically ... every 50 ms"
END_REPEATS = 3  # §2.5.1.4
_TS_HALF = 1 << 31


class DtmfError(ValueError):
    """Bytes or text that are not a valid DTMF event or body."""


def event_code(digit: str) -> int:
    """The RFC 4733 event code of a key ("0".."9", "*", "#", "A".."D")."""
    code = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise DtmfError(f"not a DTMF digit: {digit!r}")
    return code


def event_digit(code: int) -> str | None:
    """The key of an event code, or None (flash and the other events)."""
    return DIGITS[code] if 0 <= code < len(DIGITS) else None


# -- the wire type -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """RFC 4733 §2.3: one named telephone event."""

    event: int
    end: bool = False
    volume: int = 10  # -dBm0, 0..63
    duration: int = 0  # in RTP timestamp units
    reserved: int = 0  # the R bit, kept for the round trip

    @classmethod
    def parse(cls, data: bytes) -> TelephoneEvent:
        if len(data) != EVENT_SIZE:
            raise DtmfError(f"telephone-event payload of {len(data)} bytes, not 4")
        event, flags, duration = struct.unpack("!BBH", data)
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration, (flags >> 6) & 1)

    def __bytes__(self) -> bytes:
        if not (0 <= self.event <= 255 and 0 <= self.volume <= 63
                and 0 <= self.duration <= MAX_DURATION and self.reserved in (0, 1)):
            raise DtmfError(f"telephone event out of range: {self}")
        flags = (0x80 if self.end else 0) | (self.reserved << 6) | self.volume
        return struct.pack("!BBH", self.event, flags, self.duration)


# -- receiving ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DtmfDigit:
    """A key press, reported once."""

    digit: str
    duration: int  # RTP timestamp units, as last reported by the sender
    timestamp: int  # RTP timestamp of its event
    ended: bool  # False: ended by a newer event or the timeout, its end packets lost


class DtmfReceiver:
    """RFC 4733 §2.5.2: digits from a stream of telephone-event packets."""

    def __init__(self, end_timeout_s: float = 0.5) -> None:
        self.end_timeout_s = end_timeout_s
        self._current: tuple[int, int] | None = None  # (timestamp, event) being received
        self._duration = 0
        self._last_seen = 0.0
        self._done: tuple[int, int] | None = None  # the last event reported

    @property
    def active(self) -> str | None:
        """The key being pressed now, if any (to stop a prompt at once)."""
        return event_digit(self._current[1]) if self._current else None

    def next_timer(self) -> float | None:
        return self._last_seen + self.end_timeout_s if self._current else None

    def handle_timer(self, now: float) -> DtmfDigit | None:
        """The current event's end packets never came: report it now."""
        if self._current is None or now < self._last_seen + self.end_timeout_s:
            return None
        return self._finish(ended=False)

    def feed(self, timestamp: int, event: TelephoneEvent, now: float) -> list[DtmfDigit]:
        """One telephone-event packet; the digits it completes (at most two)."""
        key = (timestamp, event.event)
        if key == self._done or self._older(timestamp):
            return []  # a retransmission, or a straggler of an earlier event
        out: list[DtmfDigit | None] = []
        if key != self._current:
            if self._current is not None:  # its end packets were lost
                out.append(self._finish(ended=False))
            self._current, self._duration = key, 0
        self._duration = max(self._duration, event.duration)
        self._last_seen = now
        if event.end:
            out.append(self._finish(ended=True))
        return [d for d in out if d is not None]

    def _older(self, timestamp: int) -> bool:
        ref = self._current or self._done
        return ref is not None and 0 < (ref[0] - timestamp) % (1 << 32) < _TS_HALF

    def _finish(self, ended: bool) -> DtmfDigit | None:
        """The current event is over: its digit (None for flash and other events)."""
        assert self._current is not None
        ts, code = self._done = self._current
        self._current = None
        digit = event_digit(code)
        return None if digit is None else DtmfDigit(digit, self._duration, ts, ended)


# -- sending -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class EventPacket:
    """One packet of a digit: send it ``offset_s`` after the first one."""

    offset_s: float
    marker: bool
    event: TelephoneEvent


def digit_packets(
    digit: str, *, clock_rate: int = 8000, duration_ms: int = 100, volume: int = 10,
    interval_s: float = UPDATE_INTERVAL_S, end_spacing_s: float = 0.02,
) -> Iterator[EventPacket]:
    """The packets of one key press (RFC 4733 §2.5.1); all share one RTP timestamp,
    the caller's, and take consecutive sequence numbers."""
    code = event_code(digit)
    total = min(MAX_DURATION, duration_ms * clock_rate // 1000)
    step = round(interval_s * clock_rate)
    offset = 0
    while offset < total:  # §2.5.1.2: the duration so far, at each update
        yield EventPacket(offset / clock_rate, offset == 0,
                          TelephoneEvent(code, False, volume, min(offset + step, total)))
        offset += step
    end = TelephoneEvent(code, True, volume, total)
    for i in range(END_REPEATS):  # §2.5.1.4
        yield EventPacket(total / clock_rate + i * end_spacing_s, False, end)


# -- SIP INFO ----------------------------------------------------------------------------
DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
DEFAULT_INFO_DURATION_MS = 250


@dataclass(frozen=True, slots=True)
class DtmfInfo:
    """The key press in a SIP INFO body."""

    digit: str
    duration_ms: int = DEFAULT_INFO_DURATION_MS

    @classmethod
    def parse(cls, content_type: str, body: bytes) -> DtmfInfo:
        kind = content_type.split(";", 1)[0].strip().lower()
        try:
            text = body.decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise DtmfError("INFO body is not ASCII") from exc
        if kind == DTMF:
            return cls(_digit(text))
        if kind != DTMF_RELAY:
            raise DtmfError(f"not a DTMF INFO body: {content_type!r}")
        fields = {}
        for line in text.splitlines():
            name, sep, value = line.partition("=")
            if sep:
                fields[name.strip().lower()] = value.strip()
        if "signal" not in fields:
            raise DtmfError("dtmf-relay body without Signal=")
        duration = fields.get("duration", str(DEFAULT_INFO_DURATION_MS))
        if not duration.isdigit() or not 0 < int(duration) <= 10_000:
            raise DtmfError(f"bad Duration={duration!r}")
        return cls(_digit(fields["signal"]), int(duration))

    def body(self, content_type: str = DTMF_RELAY) -> bytes:
        if content_type == DTMF:
            return f"{self.digit}\r\n".encode()
        return f"Signal={self.digit}\r\nDuration={self.duration_ms}\r\n".encode()


def _digit(text: str) -> str:
    if text.isdigit() and 10 <= int(text) < len(DIGITS):  # the event code (as Asterisk reads it)
        return DIGITS[int(text)]
    return DIGITS[event_code(text)]


# -- in-band detection -------------------------------------------------------------------
ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
BLOCK = 102  # samples at 8 kHz (12.75 ms): bins narrow enough to part 697 from 770 Hz
MIN_POWER = 400.0**2 / 2  # mean square of a -30 dBm0-ish tone pair: below is silence
MIN_TONE_SHARE = 0.75  # of the block's energy in the two tones (speech spreads wider)
NORMAL_TWIST = 10 ** (8 / 10)  # rows louder than columns: up to 8 dB
REVERSE_TWIST = 10 ** (4 / 10)  # columns louder than rows: up to 4 dB
RELATIVE_PEAK = 10 ** (6 / 10)  # the tone over the next one in its group
HITS = 2  # consecutive blocks (25.5 ms) before a digit counts


class InbandDetector:
    """DTMF digits in 16-bit 8 kHz PCM, each reported once per tone."""

    def __init__(self, sample_rate: int = 8000) -> None:
        self._coeffs = [2 * math.cos(2 * math.pi * f / sample_rate) for f in ROWS + COLUMNS]
        self._pending = array("h")
        self._candidate: str | None = None  # the key of the last blocks
        self._hits = 0  # consecutive blocks with it
        self._reported: str | None = None  # the tone on now, already reported
        self._quiet = 0  # consecutive blocks without the reported tone

    def feed(self, pcm: bytes) -> list[str]:
        """Some PCM (any length); the digits whose tones it completes."""
        self._pending.frombytes(pcm)
        digits = []
        while len(self._pending) >= BLOCK:
            block = self._pending[:BLOCK]
            del self._pending[:BLOCK]
            digit = self._step(classify(block, self._coeffs))
            if digit:
                digits.append(digit)
        return digits

    def _step(self, key: str | None) -> str | None:
        """Debounce: a key counts after HITS blocks, and ends after HITS blocks without it."""
        self._hits = self._hits + 1 if key == self._candidate else 1
        self._candidate = key
        if self._reported is not None:
            self._quiet = 0 if key == self._reported else self._quiet + 1
            if self._quiet < HITS:
                return None
            self._reported = None
        if key is not None and self._hits >= HITS:
            self._reported, self._quiet = key, 0
            return key
        return None


def classify(block: array[int], coeffs: list[float]) -> str | None:
    """The DTMF key whose two tones fill ``block``, or None."""
    energy = sum(x * x for x in block)
    n = len(block)
    if energy < MIN_POWER * n:
        return None
    scale = 2.0 / (n * energy)  # a tone alone in the block scores about 1
    powers = [_goertzel(block, c) * scale for c in coeffs]
    rows, cols = powers[:4], powers[4:]
    r, c = rows.index(max(rows)), cols.index(max(cols))
    row, col = rows[r], cols[c]
    if row + col < MIN_TONE_SHARE or row > col * NORMAL_TWIST or col > row * REVERSE_TWIST:
        return None
    if any(i != r and p * RELATIVE_PEAK > row for i, p in enumerate(rows)):
        return None
    if any(i != c and p * RELATIVE_PEAK > col for i, p in enumerate(cols)):
        return None
    return KEYPAD[r][c]


def _goertzel(block: array[int], coeff: float) -> float:
    """|X(f)|^2 of ``block`` at the frequency of ``coeff`` = 2 cos(2 pi f / rate)."""
    s1 = s2 = 0.0
    for x in block:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2
