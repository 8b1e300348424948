"""Stream framing of SIP over TCP/TLS (RFC 3261 §18.3, RFC 5626 §4.4.1).

Theory of operation
-------------------
A ``StreamFramer`` is fed whatever bytes the connection delivers and returns
events: each complete message (head plus Content-Length octets of body), a
keep-alive ``Ping`` (a double CRLF between messages, to be answered with a
single CRLF "pong"), or one ``FramingFailed`` after which the connection must
be closed: a negative, non-numeric or conflicting Content-Length leaves no way
to find the next message (RFC 4475 §3.1.2.3, §3.3.9).  The buffer is bounded
by ``max_message_bytes``; a header section or a message announced larger than
that fails with 513 at once, before the bytes arrive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.I | re.M)


@dataclass(frozen=True, slots=True)
class FramedMessage:
    data: bytes

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, data: bytes) -> None:
        self.data = data  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class Ping:
    """RFC 5626 §4.4.1 keep-alive: answer with ``PONG``."""


@dataclass(frozen=True, slots=True)
class FramingFailed:
    """The stream is unrecoverable; ``head`` may still yield a response."""

    status: int
    reason: str
    head: bytes


StreamEvent = FramedMessage | Ping | FramingFailed

PONG = b"\r\n"


class StreamFramer:
    __slots__ = ("_buf", "_scan_from", "_failed", "max_message_bytes")

    def __init__(self, max_message_bytes: int = 65536) -> None:
        self._buf = bytearray()
        self._scan_from = 0
        self._failed = False
        self.max_message_bytes = max_message_bytes

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[StreamEvent]:
        if self._failed:
            return []
        self._buf += data
        events: list[StreamEvent] = []
        while self._buf:
            event = self._next_event()
            if event is None:
                break
            events.append(event)
            if isinstance(event, FramingFailed):
                self._failed = True
                self._buf.clear()
                break
        return events

    def _next_event(self) -> StreamEvent | None:
        buf = self._buf
        if buf[:1] == b"\r" or buf[:1] == b"\n":
            return self._keepalive()
        end = buf.find(b"\r\n\r\n", self._scan_from)
        if end < 0:
            if len(buf) > self.max_message_bytes:
                return FramingFailed(513, "Message Too Large", bytes(buf[:4096]))
            self._scan_from = max(0, len(buf) - 3)
            return None
        head = bytes(buf[:end])
        length = self._content_length(head)
        if isinstance(length, FramingFailed):
            return length
        total = end + 4 + length
        if total > self.max_message_bytes:
            return FramingFailed(513, "Message Too Large", head)
        if len(buf) < total:
            self._scan_from = end  # keep the found end; wait for the body
            return None
        message = bytes(buf[:total])
        del buf[:total]
        self._scan_from = 0
        return FramedMessage(message)

    def _keepalive(self) -> StreamEvent | None:
        buf = self._buf
        if buf.startswith(b"\r\n\r\n"):
            del buf[:4]
            return Ping()
        if buf.startswith(b"\r\n") and len(buf) > 2 and buf[2:3] != b"\r":
            del buf[:2]  # a lone CRLF: a pong, or noise between messages
            return self._next_event() if buf else None
        if buf in (b"\r", b"\r\n", b"\r\n\r"):
            return None  # wait: this may become a ping
        if buf[:1] == b"\n":
            del buf[:1]
            return self._next_event() if buf else None
        return FramingFailed(400, "Malformed stream framing", bytes(buf[:4096]))

    @staticmethod
    def _content_length(head: bytes) -> int | FramingFailed:
        values = {v.strip() for v in _CONTENT_LENGTH.findall(head)}
        if not values:
            return 0  # RFC 3261 §18.3 makes it mandatory; absent means no body
        if len(values) > 1:
            return FramingFailed(400, "Conflicting Content-Length headers", head)
        text = values.pop()
        if not text.isdigit() or len(text) > 10:
            return FramingFailed(400, "Malformed Content-Length", head)
        return int(text)
