"""TCP/TLS stream framing: Content-Length, keep-alives, bounds, byte-at-a-time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switch.sip.framing import FramedMessage, FramingFailed, Ping, StreamFramer
from switch.sip.message import parse_message

from .test_message import INVITE
from .test_rfc4475 import load

OPTIONS = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
    b"l: 0\r\n\r\n"
)


def feed_bytewise(framer: StreamFramer, data: bytes) -> list[object]:
    events: list[object] = []
    for i in range(len(data)):
        events += framer.feed(data[i : i + 1])
    return events


def test_messages_fed_one_byte_at_a_time() -> None:
    stream = INVITE + b"\r\n\r\n" + OPTIONS + b"\r\n" + INVITE
    events = feed_bytewise(StreamFramer(), stream)
    assert events == [FramedMessage(INVITE), Ping(), FramedMessage(OPTIONS), FramedMessage(INVITE)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([INVITE, OPTIONS, b"\r\n\r\n"]), max_size=6), st.data())
def test_any_chunking_gives_the_same_events(parts: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(parts)
    whole = StreamFramer().feed(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    framer = StreamFramer()
    chunked: list[object] = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        chunked += framer.feed(stream[a:b])
    assert chunked == whole
    assert [e for e in whole if isinstance(e, FramedMessage)] == [
        FramedMessage(p) for p in parts if p != b"\r\n\r\n"]


def test_body_is_framed_by_content_length_with_nul_bytes() -> None:
    data = load("mpart01")
    (event,) = StreamFramer().feed(data)
    assert isinstance(event, FramedMessage) and event.data == data
    assert b"\x00" in parse_message(event.data).body


def test_content_length_larger_than_sent_waits() -> None:
    framer = StreamFramer()
    assert framer.feed(load("clerr")) == []  # RFC 4475 §3.1.2.2: wait for more
    assert framer.buffered > 0


def test_negative_and_conflicting_content_length_fail_the_stream() -> None:
    for name in ("ncl", "mcl01"):
        framer = StreamFramer()
        events = framer.feed(load(name))
        assert len(events) == 1 and isinstance(events[0], FramingFailed)
        assert events[0].status == 400 and b"Call-ID" in events[0].head
        assert framer.feed(OPTIONS) == []  # the stream is dead; the adapter closes it


def test_bounded_buffer() -> None:
    framer = StreamFramer(max_message_bytes=4096)
    events = framer.feed(b"INVITE sip:x SIP/2.0\r\nX: " + b"a" * 5000)
    assert isinstance(events[0], FramingFailed) and events[0].status == 513
    framer = StreamFramer(max_message_bytes=4096)
    events = framer.feed(b"INVITE sip:x SIP/2.0\r\nContent-Length: 100000\r\n\r\n")
    assert isinstance(events[0], FramingFailed) and events[0].status == 513


def test_lone_crlf_pong_is_ignored() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == []
    assert framer.feed(OPTIONS) == [FramedMessage(OPTIONS)]
