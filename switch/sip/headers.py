"""Header registry and the typed headers the core needs (RFC 3261 §20).

Headers are stored raw by the message; the classes here parse a value on
demand.  Every class has ``parse()`` and ``__str__`` that round-trip the
value's meaning (LWS is normalised, order and case are kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .errors import MalformedMessage
from .grammar import (
    Params,
    alnum_or,
    find_quote_end,
    format_params,
    get_param,
    is_token,
    parse_params,
    parse_uint,
    remove_param,
    set_param,
    split_top_level,
    split_values,
    strip,
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


# An unquoted display name is ``*(token LWS)``: token characters, SP and HTAB.
_DISPLAY_MARKS = "-.!%*_+`'~ \t"

# Sent-protocols seen (``SIP/2.0/UDP`` -> (``SIP/2.0``, ``UDP``)): there are a
# handful, so the regular expression runs once per spelling.  Bounded.
_VIA_PROTOCOLS: dict[str, tuple[str, str]] = {}
_VIA_PROTOCOLS_MAX = 64
_SENT_PROTOCOL = re.compile(
    r"\s*([\w\-.!%*+`'~]+)\s*/\s*([\w\-.!%*+`'~]+)\s*/\s*([\w\-.!%*+`'~]+)"
    r"\s+([^;]+)(.*)\Z",
    re.S | re.A,
)


class Via:
    """One Via value: ``SIP/2.0/UDP host:port;branch=...`` (RFC 3261 §20.42).

    Immutable (``Final`` attributes: read-only once compiled); ``with_param``
    returns a new value.  A plain class rather than a frozen dataclass: one is
    built per received request, and a frozen dataclass's ``__init__`` costs
    ten times as much.
    """

    __slots__ = ("transport", "host", "port", "params", "protocol")

    def __init__(
        self,
        transport: str,
        host: str,
        port: int | None = None,
        params: Params = (),
        protocol: str = "SIP/2.0",
    ) -> None:
        self.transport: Final = transport
        self.host: Final = host
        self.port: Final = port
        self.params: Final = params
        self.protocol: Final = protocol

    def _key(self) -> tuple[object, ...]:
        return (self.transport, self.host, self.port, self.params, self.protocol)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Via) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"Via(transport={self.transport!r}, host={self.host!r}, port={self.port!r}, "
            f"params={self.params!r}, protocol={self.protocol!r})"
        )

    @staticmethod
    def parse(text: str) -> "Via":
        # Fast path: a known sent-protocol, one SP, then sent-by up to the
        # first ";" -- exactly what the regular expression would capture.
        sp = text.find(" ")
        if sp > 0:
            known = _VIA_PROTOCOLS.get(text[:sp])
            if known is not None:
                rest = text[sp + 1 :]
                if rest and not rest[0].isspace() and rest[0] != ";":
                    semi = rest.find(";")
                    if semi < 0:
                        return _build_via(known, rest, "")
                    return _build_via(known, rest[:semi], rest[semi:])
        m = _SENT_PROTOCOL.match(text)
        if not m:
            raise MalformedMessage("Malformed Via header")
        name, version, transport, sent_by, params_text = m.groups()
        known = (f"{name}/{version}", transport.upper())
        if (
            sp > 0
            and text[:sp] == f"{name}/{version}/{transport}"
            and len(_VIA_PROTOCOLS) < _VIA_PROTOCOLS_MAX
        ):
            _VIA_PROTOCOLS[text[:sp]] = known
        return _build_via(known, sent_by, params_text)

    @staticmethod
    def parse_all(values: list[str]) -> list["Via"]:
        if len(values) == 1 and "," not in values[0] and '"' not in values[0]:  # no list
            value = values[0].strip()
            if value:
                return [Via.parse(value)]
        return [Via.parse(v) for raw in values for v in split_values(raw, "Via")]

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> "Via":
        params = set_param(self.params, name, value)
        return Via(self.transport, self.host, self.port, params, self.protocol)

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


def _build_via(protocol: tuple[str, str], sent_by: str, params_text: str) -> Via:
    host, port = split_hostport(sent_by, "Via header")
    params = parse_params(params_text, "Via header")
    return Via(protocol[1], host, port, params, protocol[0])


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

    @staticmethod
    def parse(text: str, where: str = "header") -> "NameAddr":
        text = strip(text)
        display: str | None = None
        if text.startswith('"'):
            end = find_quote_end(text, 0)
            display = text[: end + 1]
            rest = text[end + 1 :].lstrip()
            if not rest.startswith("<"):
                raise MalformedMessage(f"Malformed {where}")
            return NameAddr._bracketed(rest, display, where)
        lt = text.find("<")
        if lt >= 0 and '"' not in text[:lt]:
            words = text[:lt].strip()
            if words:
                if not alnum_or(words, _DISPLAY_MARKS):  # *(token LWS)
                    raise MalformedMessage(f"Malformed display name in {where}")
                display = words
            return NameAddr._bracketed(text[lt:], display, where)
        # addr-spec without brackets: parameters belong to the header, and the
        # URI must not contain ',', '?' or ';' (RFC 3261 §20).
        uri_text, semi, params_text = text.partition(";")
        uri_text = uri_text.rstrip()
        if "?" in uri_text or "," in uri_text or not uri_text:
            raise MalformedMessage(f"Malformed {where}")
        params = parse_params(semi + params_text, where) if semi else ()
        return NameAddr(uri_text, None, params, False, where)

    @staticmethod
    def _bracketed(text: str, display: str | None, where: str) -> "NameAddr":
        gt = text.find(">")
        if gt < 0:
            raise MalformedMessage(f"Unterminated <> in {where}")
        uri_text = text[1:gt]
        if not uri_text or uri_text[0] in " \t" or uri_text[-1] in " \t":
            raise MalformedMessage(f"Spaces inside <> in {where}")
        rest = text[gt + 1 :]
        params = parse_params(rest, where) if rest else ()
        return NameAddr(uri_text, display, params, True, where)

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

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, star: bool, addresses: tuple[NameAddr, ...] = ()) -> None:
        self.star = star  # type: ignore[misc]
        self.addresses = addresses  # type: ignore[misc]

    @classmethod
    def parse_all(cls, values: list[str]) -> "Contact":
        if len(values) == 1 and values[0].strip() == "*":
            return cls(True)
        return cls(False, tuple(parse_name_addrs(values, "Contact header")))

    def __str__(self) -> str:
        return "*" if self.star else ", ".join(str(a) for a in self.addresses)


class CSeq:
    """``CSeq: 4711 INVITE``; the number must fit 32 bits (RFC 3261 §8.1.1.5).

    Immutable, like ``Via`` (a plain class for the same reason)."""

    __slots__ = ("seq", "method")

    def __init__(self, seq: int, method: str) -> None:
        self.seq: Final = seq
        self.method: Final = method

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CSeq) and self.seq == other.seq and self.method == other.method

    def __hash__(self) -> int:
        return hash((self.seq, self.method))

    def __repr__(self) -> str:
        return f"CSeq(seq={self.seq!r}, method={self.method!r})"

    @staticmethod
    def parse(text: str) -> "CSeq":
        parts = text.split()
        if len(parts) != 2 or not is_token(parts[1]):
            raise MalformedMessage("Malformed CSeq header")
        return CSeq(parse_uint(parts[0], "CSeq number", 2**32 - 1), parts[1])

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
