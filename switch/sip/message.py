"""SIP messages: parsing and serialisation (RFC 3261 §7, §18.3, §25).

Theory of operation
-------------------
``parse_message(data)`` does the cheap part at once: it frames the message,
splits the start line, unfolds and splits the header lines, and checks the
Content-Length.  Header *values* stay raw strings; typed views (``via``,
``from_``, ``cseq``...) are parsed on first access and cached.  Problems that
still leave a usable request (a bad header line, a bad Content-Length) are
recorded in ``defects`` so the caller can answer ``400`` with the Via, From,
To, Call-ID and CSeq it has; only input with no SIP start line raises.

A parsed message that is not modified serialises to the exact bytes it was
parsed from (minus any octets past Content-Length, RFC 3261 §18.3), so a
proxy path can forward it byte for byte.  Any change drops that cache.
"""

from __future__ import annotations

import re
from typing import Iterator

from .errors import MalformedMessage, UnparseableMessage
from .grammar import is_token, parse_uint, split_top_level, strip_range
from .headers import (
    LIST_HEADERS,
    Contact,
    CSeq,
    NameAddr,
    Via,
    canonical_name,
    header_key,
    parse_call_id,
    parse_name_addrs,
)
from .status import reason_phrase
from .uri import Uri, parse_uri

SIP_VERSION = "SIP/2.0"

# One header field: (name as written, lower-case full name, value as received).
Field = tuple[str, str, str]


class Message:
    """Common part of requests and responses: an ordered header list and a body."""

    __slots__ = ("fields", "_body", "_raw", "_cache", "defects", "version")

    def __init__(self, fields: list[Field] | None = None, body: bytes = b"") -> None:
        self.fields: list[Field] = fields if fields is not None else []
        self._body = body
        self._raw: bytes | None = None
        self._cache: dict[str, object] = {}
        self.defects: list[str] = []
        self.version = SIP_VERSION

    # -- raw header access -------------------------------------------------
    def get(self, name: str) -> str | None:
        """Value of the first field called ``name`` (any spelling), or None."""
        key = header_key(name)
        for _, k, v in self.fields:
            if k == key:
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Values of every field called ``name``, in order."""
        key = header_key(name)
        return [v for _, k, v in self.fields if k == key]

    def values(self, name: str) -> list[str]:
        """Every comma-separated element of a list header, in order."""
        out: list[str] = []
        for raw in self.get_all(name):
            out.extend(v.strip() for v in split_top_level(raw, ","))
        return [v for v in out if v]

    def has(self, name: str) -> bool:
        return self.get(name) is not None

    def count(self, name: str) -> int:
        key = header_key(name)
        return sum(1 for _, k, _ in self.fields if k == key)

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    # -- mutation ----------------------------------------------------------
    def _changed(self) -> None:
        self._raw = None
        self._cache.clear()

    def add(self, name: str, value: object) -> None:
        """Append a field at the end of the header list."""
        key = header_key(name)
        self.fields.append((name if name != key else canonical_name(key), key, str(value)))
        self._changed()

    def prepend(self, name: str, value: object) -> None:
        """Insert a field before the first of its kind (topmost Via, Route...)."""
        key = header_key(name)
        field = (name if name != key else canonical_name(key), key, str(value))
        for i, (_, k, _) in enumerate(self.fields):
            if k == key:
                self.fields.insert(i, field)
                break
        else:
            self.fields.insert(0, field)
        self._changed()

    def set(self, name: str, value: object) -> None:
        """Replace every field called ``name`` by one, keeping its position."""
        key = header_key(name)
        field = (name if name != key else canonical_name(key), key, str(value))
        out: list[Field] = []
        placed = False
        for f in self.fields:
            if f[1] == key:
                if not placed:
                    out.append(field)
                    placed = True
            else:
                out.append(f)
        if not placed:
            out.append(field)
        self.fields = out
        self._changed()

    def remove(self, name: str) -> int:
        """Delete every field called ``name``; returns how many were removed."""
        key = header_key(name)
        before = len(self.fields)
        self.fields = [f for f in self.fields if f[1] != key]
        if len(self.fields) != before:
            self._changed()
        return before - len(self.fields)

    def pop_first(self, name: str) -> str | None:
        """Remove the first element of a list header (e.g. the top Via)."""
        key = header_key(name)
        for i, (n, k, v) in enumerate(self.fields):
            if k != key:
                continue
            parts = split_top_level(v, ",")
            if len(parts) > 1:
                self.fields[i] = (n, k, ",".join(parts[1:]).strip())
            else:
                del self.fields[i]
            self._changed()
            return parts[0].strip()
        return None

    def replace_top_via(self, via: Via) -> None:
        """Rewrite the topmost Via value (``received``/``rport`` stamping), keeping
        the other values and the parsed cache of the rest."""
        vias = self.via
        for i, (n, k, v) in enumerate(self.fields):
            if k == "via":
                parts = split_top_level(v, ",")
                parts[0] = str(via)
                self.fields[i] = (n, k, ", ".join(p.strip() for p in parts))
                break
        self._changed()
        self._cache["via"] = [via, *vias[1:]]

    @property
    def body(self) -> bytes:
        return self._body

    @body.setter
    def body(self, value: bytes) -> None:
        self._body = value
        self.set("Content-Length", len(value))

    # -- typed views (parsed once, cached) ---------------------------------
    def _single(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise MalformedMessage(f"Missing {canonical_name(header_key(name))} header")
        return value

    # The hot views read the cache inline: no closure, one dict lookup.
    @property
    def via(self) -> list[Via]:
        vias = self._cache.get("via")
        if vias is None:
            vias = self._cache["via"] = Via.parse_all(self.get_all("via"))
        return vias  # type: ignore[return-value]

    @property
    def top_via(self) -> Via:
        vias = self.via
        if not vias:
            raise MalformedMessage("Missing Via header")
        return vias[0]

    @property
    def from_(self) -> NameAddr:
        value = self._cache.get("from")
        if value is None:
            value = self._cache["from"] = NameAddr.parse(self._single("from"), "From header")
        return value  # type: ignore[return-value]

    @property
    def to(self) -> NameAddr:
        value = self._cache.get("to")
        if value is None:
            value = self._cache["to"] = NameAddr.parse(self._single("to"), "To header")
        return value  # type: ignore[return-value]

    @property
    def call_id(self) -> str:
        value = self._cache.get("call-id")
        if value is None:
            value = self._cache["call-id"] = parse_call_id(self._single("call-id"))
        return value  # type: ignore[return-value]

    @property
    def cseq(self) -> CSeq:
        value = self._cache.get("cseq")
        if value is None:
            value = self._cache["cseq"] = CSeq.parse(self._single("cseq"))
        return value  # type: ignore[return-value]

    # A cached view may be None (no such header): membership, not .get(), tells
    # "parsed" from "not yet"; no closure and no KeyError on the way.
    @property
    def contact(self) -> Contact | None:
        cache = self._cache
        if "contact" in cache:
            return cache["contact"]  # type: ignore[return-value]
        values = self.get_all("contact")
        contact = cache["contact"] = Contact.parse_all(values) if values else None
        return contact

    def name_addrs(self, name: str) -> list[NameAddr]:
        """Route, Record-Route, Path... as parsed name-addrs."""
        key = header_key(name)
        cache = self._cache
        if key in cache:
            return cache[key]  # type: ignore[return-value]
        parsed = cache[key] = parse_name_addrs(self.get_all(key), canonical_name(key) + " header")
        return parsed

    @property
    def max_forwards(self) -> int | None:
        cache = self._cache
        if "max-forwards" in cache:
            return cache["max-forwards"]  # type: ignore[return-value]
        value = self.get("max-forwards")
        hops = cache["max-forwards"] = (
            None if value is None else parse_uint(value, "Max-Forwards", 255))
        return hops

    @property
    def content_type(self) -> str | None:
        value = self.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None

    # -- serialisation -----------------------------------------------------
    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        if self._raw is not None:
            return self._raw
        # One join over the pieces: no intermediate string per header line.
        parts = [self.start_line(), "\r\n"]
        has_length = False
        for n, k, v in self.fields:
            parts.append(n)
            parts.append(": ")
            parts.append(v)
            parts.append("\r\n")
            if k == "content-length":
                has_length = True
        if not has_length:
            parts.append(f"Content-Length: {len(self._body)}\r\n")
        parts.append("\r\n")
        data = "".join(parts).encode("utf-8", "surrogateescape") + self._body
        self._raw = data
        return data

    def __str__(self) -> str:
        return bytes(self).decode("utf-8", "replace")


class Request(Message):
    __slots__ = ("method", "uri_text")

    def __init__(
        self,
        method: str,
        uri: object,
        fields: list[Field] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(fields, body)
        self.method = method
        self.uri_text = str(uri)

    @property
    def uri(self) -> Uri:
        uri = self._cache.get("ruri")
        if uri is None:
            uri = self._cache["ruri"] = parse_uri(self.uri_text, "Request-URI")
        return uri  # type: ignore[return-value]

    @uri.setter
    def uri(self, value: object) -> None:
        self.uri_text = str(value)
        self._changed()

    def start_line(self) -> str:
        return f"{self.method} {self.uri_text} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri_text}>"


class Response(Message):
    __slots__ = ("status", "reason")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        fields: list[Field] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(fields, body)
        self.status = status
        self.reason = reason_phrase(status) if reason is None else reason

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------


def split_head(data: bytes) -> tuple[bytes, int, str] | None:
    """Locate the end of the header section: (head, body offset, line separator)."""
    idx = data.find(b"\r\n\r\n")
    if idx >= 0:
        return data[:idx], idx + 4, "\r\n"
    idx = data.find(b"\n\n")
    if idx >= 0:  # tolerated: bare LF line ends
        return data[:idx], idx + 2, "\n"
    return None


def parse_content_length(values: list[str]) -> int:
    """The Content-Length of a message; several differing values are an error."""
    lengths = {parse_uint(v, "Content-Length", 2**31) for v in values}
    if len(lengths) != 1:
        raise MalformedMessage("Conflicting Content-Length headers")
    return lengths.pop()


def parse_message(
    data: bytes, *, max_headers: int = 100, max_line_bytes: int = 8192
) -> Request | Response:
    """Parse one datagram or one framed stream message.

    Raises ``UnparseableMessage`` when there is no SIP start line; every other
    problem is a ``defect`` on the returned message.
    """
    if data[:2] == b"\r\n":  # RFC 3261 §7.5: ignore CRLFs before the start line
        data = data.lstrip(b"\r\n")
    split = split_head(data)
    if split is None:
        head, body_at, sep = data.rstrip(b"\r\n"), len(data), "\r\n"
    else:
        head, body_at, sep = split
    text = head.decode("utf-8", "surrogateescape")
    if sep == "\n":
        text = text.replace("\r\n", "\n")
    eol = text.find(sep)
    first = text if eol < 0 else text[:eol]
    if len(first) > max_line_bytes:
        raise UnparseableMessage("Start line too long")
    msg = _parse_start_line(first)
    if 0 <= eol < len(text) - len(sep):
        _parse_fields(msg, text, eol + len(sep), sep, max_headers, max_line_bytes)
    _frame_body(msg, data, body_at)
    return msg


def _parse_start_line(line: str) -> Request | Response:
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not code.isdigit() or not code.isascii():
            raise UnparseableMessage("Malformed Status-Line")
        status = int(code)
        if not 100 <= status <= 699:
            raise UnparseableMessage("Status code out of range")
        resp = Response(status, reason)
        resp.version = version
        return resp
    parts = line.split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        parts = line.split()
        if len(parts) < 3 or parts[-1][:4].upper() != "SIP/" or not parts[0].isascii():
            raise UnparseableMessage("Malformed Request-Line")
        req = Request(parts[0], parts[1])
        req.defects.append("Malformed Request-Line")
    else:
        if parts[2][:4].upper() != "SIP/" or not parts[0].isascii():
            raise UnparseableMessage("Malformed Request-Line")
        req = Request(parts[0], parts[1])
    req.version = parts[-1]
    if not is_token(parts[0]):
        req.defects.append("Malformed method")
    return req


# Raw header name -> (name as written, key); header names repeat, so the token
# check and the case folding are done once per spelling.  Bounded.
_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_MAX = 4096
_FOLD_RE = re.compile(r"[ \t]*\r?\n[ \t]+")


def _field_name(raw: str) -> tuple[str, str] | None:
    known = _NAME_CACHE.get(raw)
    if known is not None:
        return known
    name = raw.rstrip(" \t")
    if not is_token(name):
        return None
    known = (name, header_key(name))
    if len(_NAME_CACHE) < _NAME_CACHE_MAX:
        _NAME_CACHE[raw] = known
    return known


def _parse_fields(
    msg: Message, text: str, start: int, sep: str, max_headers: int, max_line: int
) -> None:
    """Split the header section (``text`` from ``start``) into fields
    (RFC 3261 §7.3), unfolding LWS.

    Scans with single-character ``find`` (``memchr``; CPython searches for a
    two-character string such as CRLF far more slowly) rather than splitting
    into lines: each name and value is sliced once out of ``text``.
    """
    if text[start : start + 1] in (" ", "\t"):
        msg.defects.append("Malformed header folding")
    if _has_folding(text, start):
        text = _FOLD_RE.sub(" ", text[start:])  # §7.3.1: folded lines mean one SP
        start = 0
    defects_before = len(msg.defects)
    fields = msg.fields
    step = len(sep)
    n = len(text)
    lines = 0
    while start <= n:
        if lines == max_headers:
            msg.defects.insert(defects_before, "Too many headers")
            break
        lines += 1
        eol = _line_end(text, start, sep)
        colon = text.find(":", start, eol)
        if colon < 0:
            msg.defects.append("Malformed header line")
        else:
            raw = text[start:colon]
            known = _NAME_CACHE.get(raw)
            if known is None:
                known = _field_name(raw)
            if known is None:
                msg.defects.append("Malformed header line")
            else:
                if eol - start > max_line:
                    msg.defects.append("Header line too long")
                fields.append((known[0], known[1], strip_range(text, colon + 1, eol)))
        start = eol + step


def _has_folding(text: str, start: int) -> bool:
    """Is there a line feed followed by SP or HTAB (a folded line) after ``start``?"""
    nl = text.find("\n", start)
    while nl >= 0:
        after = text[nl + 1 : nl + 2]
        if after == " " or after == "\t":
            return True
        nl = text.find("\n", nl + 1)
    return False


def _line_end(text: str, start: int, sep: str) -> int:
    """Index of the next ``sep`` (``"\r\n"`` or ``"\n"``) at or after
    ``start``, or ``len(text)``; a bare LF inside a CRLF line is not an end."""
    nl = text.find("\n", start)
    if sep == "\n":
        return nl if nl >= 0 else len(text)
    while nl >= 0:
        if nl > start and text[nl - 1] == "\r":
            return nl - 1
        nl = text.find("\n", nl + 1)
    return len(text)


def _frame_body(msg: Message, data: bytes, body_at: int) -> None:
    lengths = msg.get_all("content-length")
    available = len(data) - body_at
    if len(lengths) == 1 and lengths[0].isdigit() and lengths[0].isascii() and len(lengths[0]) < 10:
        length = int(lengths[0])  # the common case, 0..999999999 (parse_uint's range)
        if length <= available:
            msg._body = data[body_at : body_at + length]
            msg._raw = data if length == available else data[: body_at + length]
            return
    if not lengths:
        msg._body = data[body_at:]
        msg._raw = data
        return
    try:
        length = parse_content_length(lengths)
    except MalformedMessage as exc:
        msg.defects.append(exc.reason)
        msg._body = data[body_at:]
        return
    if length > available:
        msg.defects.append("Content-Length larger than message")
        msg._body = data[body_at:]
        return
    msg._body = data[body_at : body_at + length]
    msg._raw = data if length == available else data[: body_at + length]


def new_request(
    method: str,
    uri: object,
    headers: list[tuple[str, object]],
    body: bytes = b"",
) -> Request:
    """Build a request from ``(name, value)`` pairs; Content-Length is added."""
    req = Request(method, uri, [(n, header_key(n), str(v)) for n, v in headers], body)
    if body and not req.has("content-length"):
        req.add("Content-Length", len(body))
    return req


__all__ = [
    "LIST_HEADERS",
    "Message",
    "Request",
    "Response",
    "SIP_VERSION",
    "new_request",
    "parse_message",
]
