"""DTMF: RFC 4733 payloads, the receiver, the sender's packets, SIP INFO bodies, Goertzel."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.codecs import PCMA, PCMU
from media.dtmf import (
    COLUMNS,
    DIGITS,
    DTMF,
    DTMF_RELAY,
    KEYPAD,
    ROWS,
    DtmfDigit,
    DtmfError,
    DtmfInfo,
    DtmfReceiver,
    InbandDetector,
    TelephoneEvent,
    digit_packets,
    event_code,
    event_digit,
)

from .audio_support import mix, noise, tone

# RFC 4733 §2.3: digit 5, end, volume 10, duration 800 (100 ms at 8 kHz)
FIVE_END = bytes.fromhex("058a0320")


# -- the wire type -----------------------------------------------------------------------
def test_event_parse_and_serialise() -> None:
    event = TelephoneEvent.parse(FIVE_END)
    assert event == TelephoneEvent(5, end=True, volume=10, duration=800)
    assert bytes(event) == FIVE_END


@given(st.binary(min_size=4, max_size=4))
def test_every_4_byte_payload_round_trips(data: bytes) -> None:
    assert bytes(TelephoneEvent.parse(data)) == data


@pytest.mark.parametrize("data", [b"", b"\x05\x8a\x03", FIVE_END + b"\x00"])
def test_event_of_wrong_size(data: bytes) -> None:
    with pytest.raises(DtmfError):
        TelephoneEvent.parse(data)


@pytest.mark.parametrize("event", [TelephoneEvent(256), TelephoneEvent(1, volume=64),
                                   TelephoneEvent(1, duration=70000)])
def test_event_out_of_range(event: TelephoneEvent) -> None:
    with pytest.raises(DtmfError):
        bytes(event)


def test_codes() -> None:
    assert [event_code(d) for d in "09*#AbcD"] == [0, 9, 10, 11, 12, 13, 14, 15]
    assert [event_digit(c) for c in (0, 11, 15, 16)] == ["0", "#", "D", None]
    for bad in ("", "E", "12", "!"):
        with pytest.raises(DtmfError):
            event_code(bad)


# -- sending ----------------------------------------------------------------------------
def test_digit_packets_start_updates_and_three_ends() -> None:
    packets = list(digit_packets("#", duration_ms=120))
    assert [p.offset_s for p in packets] == pytest.approx([0.0, 0.05, 0.1, 0.12, 0.14, 0.16])
    assert [p.marker for p in packets] == [True] + [False] * 5
    assert [p.event.duration for p in packets] == [400, 800, 960, 960, 960, 960]
    assert [p.event.end for p in packets] == [False] * 3 + [True] * 3
    assert {p.event.event for p in packets} == {11}


def test_digit_packets_scale_with_the_clock() -> None:
    packets = list(digit_packets("1", clock_rate=48000, duration_ms=100))
    assert [p.event.duration for p in packets] == [2400, 4800, 4800, 4800, 4800]


# -- receiving --------------------------------------------------------------------------
def feed_digit(rx: DtmfReceiver, digit: str, ts: int, now: float,
               repeat: int = 1) -> list[DtmfDigit]:
    out = []
    for packet in digit_packets(digit):
        for _ in range(repeat):
            out += rx.feed(ts, packet.event, now + packet.offset_s)
    return out


def test_receiver_reports_each_digit_once_despite_retransmissions() -> None:
    rx = DtmfReceiver()
    first = feed_digit(rx, "1", 1000, 0.0, repeat=3)
    assert first == [DtmfDigit("1", 800, 1000, True)]
    assert rx.next_timer() is None and rx.active is None
    again = feed_digit(rx, "1", 3000, 1.0)  # the same key again: a new timestamp
    assert again == [DtmfDigit("1", 800, 3000, True)]


def test_receiver_active_while_pressed() -> None:
    rx = DtmfReceiver()
    assert rx.feed(500, TelephoneEvent(7, duration=400), 0.0) == []
    assert rx.active == "7"


def test_lost_end_packets_are_replaced_by_the_next_event() -> None:
    rx = DtmfReceiver()
    rx.feed(100, TelephoneEvent(4, duration=400), 0.0)
    out = rx.feed(2000, TelephoneEvent(9, end=True, duration=800), 0.3)
    assert out == [DtmfDigit("4", 400, 100, False), DtmfDigit("9", 800, 2000, True)]


def test_lost_end_packets_are_replaced_by_the_timer() -> None:
    rx = DtmfReceiver(end_timeout_s=0.5)
    rx.feed(100, TelephoneEvent(2, duration=400), 1.0)
    rx.feed(100, TelephoneEvent(2, duration=800), 1.05)
    assert rx.next_timer() == pytest.approx(1.55)
    assert rx.handle_timer(1.5) is None
    assert rx.handle_timer(1.55) == DtmfDigit("2", 800, 100, False)
    assert rx.next_timer() is None and rx.handle_timer(2.0) is None
    assert rx.feed(100, TelephoneEvent(2, end=True, duration=800), 1.6) == []  # late end


def test_stragglers_of_older_events_and_flash_are_ignored() -> None:
    rx = DtmfReceiver()
    feed_digit(rx, "3", 5000, 0.0)
    assert rx.feed(4000, TelephoneEvent(8, duration=400), 0.5) == []  # older timestamp
    assert rx.feed(6000, TelephoneEvent(16, end=True, duration=800), 0.6) == []  # flash
    rx.feed(6500, TelephoneEvent(16, duration=400), 0.65)
    assert rx.handle_timer(2.0) is None and rx.next_timer() is None
    assert feed_digit(rx, "8", 7000, 0.7)[0].digit == "8"


def test_same_timestamp_new_event_is_a_new_digit() -> None:
    rx = DtmfReceiver()  # some gateways reuse the timestamp for the next key
    feed_digit(rx, "1", 100, 0.0)
    assert [d.digit for d in feed_digit(rx, "2", 100, 0.5)] == ["2"]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_loss_duplication_and_reorder_within_a_digit(data: st.DataObject) -> None:
    """Each key press with at least one packet through, duplicated and shuffled within
    itself, timestamps across the 32-bit wrap: the keys come out once each, in order."""
    digits = data.draw(st.text(alphabet=DIGITS, min_size=1, max_size=8))
    ts = data.draw(st.integers(0, 2**32 - 1))
    rx, now, got = DtmfReceiver(), 0.0, []
    for digit in digits:
        events = [p.event for p in digit_packets(digit)]
        kept = data.draw(st.lists(st.sampled_from(events), min_size=1, max_size=12))
        for event in data.draw(st.permutations(kept)):
            got += rx.feed(ts, event, now)
            now += 0.02
        ts = (ts + 1600) % 2**32
    timer = rx.next_timer()
    if timer is not None:
        last = rx.handle_timer(timer)
        assert last is not None
        got.append(last)
    assert "".join(d.digit for d in got) == digits


# -- SIP INFO ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (DTMF_RELAY, b"Signal=5\r\nDuration=160\r\n", DtmfInfo("5", 160)),
        ("Application/DTMF-Relay; charset=ascii", b"signal = *\nduration= 250", DtmfInfo("*")),
        (DTMF_RELAY, b"Signal=11\r\nDuration=100\r\n", DtmfInfo("#", 100)),
        (DTMF_RELAY, b"Signal=d\r\n", DtmfInfo("D")),
        (DTMF, b"7", DtmfInfo("7")),
        (DTMF, b" #\r\n", DtmfInfo("#")),
    ],
)
def test_info_bodies_parse(content_type: str, body: bytes, expected: DtmfInfo) -> None:
    assert DtmfInfo.parse(content_type, body) == expected


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (DTMF_RELAY, b"Duration=160\r\n"),
        (DTMF_RELAY, b"Signal=5\r\nDuration=-1\r\n"),
        (DTMF_RELAY, b"Signal=5\r\nDuration=99999\r\n"),
        (DTMF_RELAY, b"Signal=X\r\n"),
        (DTMF_RELAY, b"Signal=\xff\r\n"),
        (DTMF, b""),
        ("text/plain", b"5"),
    ],
)
def test_info_bodies_refused(content_type: str, body: bytes) -> None:
    with pytest.raises(DtmfError):
        DtmfInfo.parse(content_type, body)


@given(st.sampled_from(DIGITS), st.integers(1, 10_000))
def test_info_bodies_round_trip(digit: str, duration: int) -> None:
    info = DtmfInfo(digit, duration)
    assert info.body() == f"Signal={digit}\r\nDuration={duration}\r\n".encode()
    assert DtmfInfo.parse(DTMF_RELAY, info.body()) == info
    assert DtmfInfo.parse(DTMF, info.body(DTMF)).digit == digit


# -- in-band ----------------------------------------------------------------------------
def key_tone(key: str, ms: int, amplitude: float = 5000.0) -> bytes:
    row = next(r for r, keys in enumerate(KEYPAD) if key in keys)
    return tone(8000, 8 * ms, (ROWS[row], COLUMNS[KEYPAD[row].index(key)]), amplitude)


@pytest.mark.parametrize("key", list("123A456B789C*0#D"))
def test_goertzel_detects_every_key_once(key: str) -> None:
    detector = InbandDetector()
    assert detector.feed(bytes(320) + key_tone(key, 200) + bytes(400)) == [key]


def test_goertzel_detects_short_quiet_tones_and_a_sequence() -> None:
    pcm = b"".join(key_tone(k, 40, 600) + bytes(8 * 40) for k in "5055#")
    detector = InbandDetector()
    assert [d for i in range(0, len(pcm), 160) for d in detector.feed(pcm[i : i + 160])] == list(
        "5055#")


def test_goertzel_through_g711() -> None:
    for codec in (PCMU, PCMA):
        encoder, decoder, detector = codec.encoder(), codec.decoder(), InbandDetector()
        pcm = bytes(320) + key_tone("9", 100) + bytes(320) + key_tone("*", 100) + bytes(640)
        out = [d for i in range(0, len(pcm), 320)
               for d in detector.feed(decoder.decode(encoder.encode(pcm[i : i + 320])))]
        assert out == ["9", "*"]


@pytest.mark.parametrize(
    "pcm",
    [
        tone(8000, 8000, (1000.0,), 10000),
        tone(8000, 8000, (697.0,), 10000),  # a row tone alone
        tone(8000, 8000, (697.0, 1209.0, 1477.0), 5000),  # three tones
        noise(8000),
        # voiced speech-like: harmonics of 150 Hz, falling with order
        tone(8000, 8000, [150.0 * h for h in range(1, 20)], 1500),
        tone(8000, 8000, [120.0 * h for h in range(1, 25)], 1500),
        key_tone("1", 500, 20),  # below the level of a real key
    ],
    ids=["1kHz", "row", "three", "noise", "voice150", "voice120", "quiet"],
)
def test_goertzel_rejects_what_is_not_a_key(pcm: bytes) -> None:
    assert InbandDetector().feed(pcm) == []


@pytest.mark.parametrize(("row_amp", "col_amp", "expected"), [
    (6000, 3000, ["1"]),  # columns 6 dB down: within the 8 dB normal twist
    (3000, 6000, []),  # columns 6 dB up: beyond the 4 dB reverse twist
    (5000, 4000, ["1"]),
])
def test_goertzel_twist_limits(row_amp: float, col_amp: float, expected: list[str]) -> None:
    pcm = mix(tone(8000, 1600, (ROWS[0],), row_amp), tone(8000, 1600, (COLUMNS[0],), col_amp))
    assert InbandDetector().feed(pcm) == expected
