"""Header registry and the typed headers the core needs (RFC 3261 §20).

Headers are stored raw by the message; the classes here parse a value on
demand.  Every class has ``parse()`` and ``__str__`` that round-trip the
value's meaning (LWS is normalised, order and case are kept).
"""

from __future__ import annotations

import re
from typing import ClassVar
from dataclasses import dataclass, replace

from .errors import MalformedMessage
from .grammar import (
    TOKEN_CHARS,
    Params,
    find_quote_end,
    format_params,
    get_param,
    parse_params,
    parse_uint,
    remove_param,
    set_param,
    split_top_level,
    split_values,
)
from .uri import AbsoluteUri, SipUri, Uri, parse_uri, split_hostport

# RFC 3261 §7.3.3 and the IANA registry: compact form -> full name (lower case).
COMPACT_FORMS = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# Spelling used when Centrala writes a header it did not receive.
_CANONICAL = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "p-asserted-identity": "P-Asserted-Identity",
    "p-preferred-identity": "P-Preferred-Identity",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}

# Headers that are comma-separated lists (RFC 3261 §7.3.1); the auth headers are not.
LIST_HEADERS = frozenset(
    {
        "via", "contact", "route", "record-route", "path", "service-route",
        "allow", "supported", "require", "proxy-require", "unsupported",
        "accept", "accept-encoding", "accept-language", "allow-events",
        "content-encoding", "history-info", "diversion", "p-asserted-identity",
        "reason", "warning", "in-reply-to", "security-client", "security-server",
        "security-verify",
    }
)

# Headers that may appear at most once (RFC 3261 §20 / RFC 4475 §3.3.8).
SINGLE_HEADERS = frozenset(
    {"to", "from", "call-id", "cseq", "max-forwards", "content-length", "content-type", "expires"}
)


_KEYS: dict[str, str] = {}


def header_key(name: str) -> str:
    """Case-insensitive key of a header name, compact forms expanded."""
    key = _KEYS.get(name)
    if key is None:
        key = name.lower()
        key = COMPACT_FORMS.get(key, key)
        if len(_KEYS) < 4096:
            _KEYS[name] = key
    return key


def canonical_name(key: str) -> str:
    """``call-id`` -> ``Call-ID``, ``max-forwards`` -> ``Max-Forwards``."""
    return _CANONICAL.get(key) or "-".join(p.capitalize() for p in key.split("-"))


@dataclass(frozen=True, slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...`` (RFC 3261 §20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()
    protocol: str = "SIP/2.0"

    _SENT_PROTOCOL: ClassVar[re.Pattern[str]] = re.compile(
        r"\s*([\w\-.!%*+`'~]+)\s*/\s*([\w\-.!%*+`'~]+)\s*/\s*([\w\-.!%*+`'~]+)"
        r"\s+([^;]+)(.*)\Z",
        re.S | re.A,
    )

    @classmethod
    def parse(cls, text: str) -> "Via":
        m = cls._SENT_PROTOCOL.match(text)
        if not m:
            raise MalformedMessage("Malformed Via header")
        name, version, transport, sent_by, params_text = m.groups()
        host, port = split_hostport(sent_by, "Via header")
        params = parse_params(params_text, "Via header")
        return cls(transport.upper(), host, port, params, f"{name}/{version}")

    @classmethod
    def parse_all(cls, values: list[str]) -> list["Via"]:
        return [cls.parse(v) for raw in values for v in split_values(raw, "Via")]

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> "Via":
        return replace(self, params=set_param(self.params, name, value))

    @property
    def branch(self) -> str | None:
        return self.param("branch")

    @property
    def received(self) -> str | None:
        return self.param("received")

    @property
    def rport(self) -> str | None:
        """``""`` when present without a value (RFC 3581 request), else the port."""
        return self.param("rport")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port


class NameAddr:
    """From, To, Contact, Route, Record-Route values (RFC 3261 §20.10, §25.1).

    ``display`` is kept as written (quotes included); ``bracketed`` remembers
    whether the URI was in ``<>`` so that serialising does not move URI
    parameters into header parameters.  The URI is parsed on first access to
    ``uri`` (reading a tag does not need it); ``validate`` forces it.
    Immutable: the ``with_*`` methods return new values.
    """

    __slots__ = ("_uri", "_uri_text", "display", "params", "bracketed", "_where")

    def __init__(
        self,
        uri: "Uri | str",
        display: str | None = None,
        params: Params = (),
        bracketed: bool = True,
        where: str = "header",
    ) -> None:
        self._uri: Uri | None = None if isinstance(uri, str) else uri
        self._uri_text = uri if isinstance(uri, str) else str(uri)
        self.display = display
        self.params = params
        self.bracketed = bracketed
        self._where = where

    @property
    def uri(self) -> Uri:
        if self._uri is None:
            self._uri = parse_uri(self._uri_text, self._where)
        return self._uri

    @property
    def uri_text(self) -> str:
        return self._uri_text

    def _key(self) -> tuple[object, ...]:
        return (self._uri_text, self.display, self.params, self.bracketed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NameAddr) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"NameAddr({str(self)!r})"

    @classmethod
    def parse(cls, text: str, where: str = "header") -> "NameAddr":
        text = text.strip()
        display: str | None = None
        if text.startswith('"'):
            end = find_quote_end(text, 0)
            display = text[: end + 1]
            rest = text[end + 1 :].lstrip()
            if not rest.startswith("<"):
                raise MalformedMessage(f"Malformed {where}")
            return cls._bracketed(rest, display, where)
        lt = text.find("<")
        if lt >= 0 and '"' not in text[:lt]:
            words = text[:lt].strip()
            if words:
                if not all(c in TOKEN_CHARS or c in " \t" for c in words):
                    raise MalformedMessage(f"Malformed display name in {where}")
                display = words
            return cls._bracketed(text[lt:], display, where)
        # addr-spec without brackets: parameters belong to the header, and the
        # URI must not contain ',', '?' or ';' (RFC 3261 §20).
        uri_text, semi, params_text = text.partition(";")
        uri_text = uri_text.rstrip()
        if "?" in uri_text or "," in uri_text or not uri_text:
            raise MalformedMessage(f"Malformed {where}")
        params = parse_params(semi + params_text, where) if semi else ()
        return cls(uri_text, None, params, False, where)

    @classmethod
    def _bracketed(cls, text: str, display: str | None, where: str) -> "NameAddr":
        gt = text.find(">")
        if gt < 0:
            raise MalformedMessage(f"Unterminated <> in {where}")
        uri_text = text[1:gt]
        if not uri_text or uri_text[0] in " \t" or uri_text[-1] in " \t":
            raise MalformedMessage(f"Spaces inside <> in {where}")
        rest = text[gt + 1 :]
        params = parse_params(rest, where) if rest else ()
        return cls(uri_text, display, params, True, where)

    def validate(self) -> "NameAddr":
        """Parse the URI now, raising ``MalformedMessage`` if it is bad."""
        self.uri  # noqa: B018
        return self

    def __str__(self) -> str:
        if not self.bracketed and not self.display:
            return f"{self._uri_text}{format_params(self.params)}"
        display = f"{self.display} " if self.display else ""
        return f"{display}<{self._uri_text}>{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def _with(self, params: Params, bracketed: bool) -> "NameAddr":
        out = NameAddr(self._uri_text, self.display, params, bracketed, self._where)
        out._uri = self._uri
        return out

    def with_param(self, name: str, value: str | None) -> "NameAddr":
        return self._with(set_param(self.params, name, value), True)

    def without_param(self, name: str) -> "NameAddr":
        return self._with(remove_param(self.params, name), self.bracketed)

    @property
    def tag(self) -> str | None:
        return self.param("tag")

    @property
    def sip_uri(self) -> SipUri | None:
        uri = self.uri
        return uri if isinstance(uri, SipUri) else None


def parse_name_addrs(values: list[str], where: str) -> list[NameAddr]:
    """Every name-addr of a list header, URIs checked (Contact, Route...)."""
    return [NameAddr.parse(v, where).validate() for raw in values for v in split_values(raw, where)]


@dataclass(frozen=True, slots=True)
class Contact:
    """A Contact header: ``*`` (RFC 3261 §10.2.2 removal) or a list of name-addrs."""

    star: bool
    addresses: tuple[NameAddr, ...] = ()

    @classmethod
    def parse_all(cls, values: list[str]) -> "Contact":
        if len(values) == 1 and values[0].strip() == "*":
            return cls(True)
        return cls(False, tuple(parse_name_addrs(values, "Contact header")))

    def __str__(self) -> str:
        return "*" if self.star else ", ".join(str(a) for a in self.addresses)


@dataclass(frozen=True, slots=True)
class CSeq:
    """``CSeq: 4711 INVITE``; the number must fit 32 bits (RFC 3261 §8.1.1.5)."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> "CSeq":
        parts = text.split()
        if len(parts) != 2 or not all(c in TOKEN_CHARS for c in parts[1]):
            raise MalformedMessage("Malformed CSeq header")
        return cls(parse_uint(parts[0], "CSeq number", 2**32 - 1), parts[1])

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_call_id(text: str) -> str:
    """RFC 3261 §25.1: ``word [ "@" word ]``; reject blanks and whitespace."""
    text = text.strip()
    if not text or any(c.isspace() for c in text):
        raise MalformedMessage("Malformed Call-ID header")
    return text


def parse_token_list(values: list[str]) -> list[str]:
    """Option tags or method names (Require, Supported, Allow...)."""
    return [v.strip() for raw in values for v in split_top_level(raw, ",") if v.strip()]


__all__ = [
    "AbsoluteUri",
    "COMPACT_FORMS",
    "CSeq",
    "Contact",
    "LIST_HEADERS",
    "NameAddr",
    "SINGLE_HEADERS",
    "Via",
    "canonical_name",
    "header_key",
    "parse_call_id",
    "parse_name_addrs",
    "parse_token_list",
]
