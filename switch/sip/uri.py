"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966) and opaque absolute URIs.

URIs keep their text as written: user parts stay %-escaped (RFC 4475 §3.1.1.3
forbids recursive unescaping), parameters keep their order and case, so
``str(parse_uri(s)) == s`` for every URI this module accepts.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Union
from urllib.parse import unquote_to_bytes

from .errors import MalformedMessage
from .grammar import (
    Params,
    alnum_or,
    ascii_uint,
    format_params,
    get_param,
    parse_params,
    set_param,
    strip,
    strip_range,
)

# Characters that never appear unescaped in a URI (RFC 3986/3261 §25).
_FORBIDDEN = re.compile(r'[\x00-\x20<>"\x7f]')
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")

DEFAULT_PORTS = {"sip": 5060, "sips": 5061}


def check_host(host: str, where: str) -> None:
    """Accept a hostname, IPv4 address or bracketed IPv6 reference."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise MalformedMessage(f"Malformed host in {where}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise MalformedMessage(f"Malformed IPv6 address in {where}") from None
        return
    if not is_hostname(host):
        raise MalformedMessage(f"Malformed host in {where}")


def is_hostname(host: str) -> bool:
    """A hostname or IPv4 address as RFC 3261 §25.1 spells them, loosely:
    letters, digits, ``-`` and ``.``, starting with a letter or digit and not
    ending with ``-`` (a trailing dot, the DNS root, is allowed)."""
    if not alnum_or(host, "-."):
        return False
    first = ord(host[0])
    return first != 45 and first != 46 and host[-1] != "-"


def split_hostport(text: str, where: str) -> tuple[str, int | None]:
    """``host[:port]`` with LWS tolerated around the colon (RFC 3261 ``COLON``)."""
    text = strip(text)
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise MalformedMessage(f"Malformed host in {where}")
        host, rest = text[: end + 1], text[end + 1 :].strip()
        check_host(host, where)
        if not rest:
            return host, None
        if rest[0] != ":":
            raise MalformedMessage(f"Malformed host in {where}")
        port_text = strip(rest[1:])
    else:
        colon = text.find(":")
        host = text if colon < 0 else strip_range(text, 0, colon)
        check_host(host, where)
        if colon < 0:
            return host, None
        port_text = strip_range(text, colon + 1, len(text))
    port = ascii_uint(port_text) if len(port_text) <= 5 else -1
    if port < 0:
        raise MalformedMessage(f"Malformed port in {where}")
    if not 0 < port < 65536:
        raise MalformedMessage(f"Port out of range in {where}")
    return host, port


@dataclass(frozen=True, slots=True)
class SipUri:
    """``sip:`` or ``sips:`` URI; ``user`` and ``password`` keep their escapes."""

    host: str
    user: str | None = None
    password: str | None = None
    port: int | None = None
    params: Params = ()
    headers: str | None = None
    scheme: str = "sip"

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(
        self,
        host: str,
        user: str | None = None,
        password: str | None = None,
        port: int | None = None,
        params: Params = (),
        headers: str | None = None,
        scheme: str = "sip",
    ) -> None:
        self.host = host  # type: ignore[misc]
        self.user = user  # type: ignore[misc]
        self.password = password  # type: ignore[misc]
        self.port = port  # type: ignore[misc]
        self.params = params  # type: ignore[misc]
        self.headers = headers  # type: ignore[misc]
        self.scheme = scheme  # type: ignore[misc]

    @classmethod
    def parse(cls, text: str, where: str = "URI") -> "SipUri":
        if _FORBIDDEN.search(text):
            raise MalformedMessage(f"Malformed {where}")
        scheme, colon, rest = text.partition(":")
        lscheme = scheme.lower()
        if not colon or lscheme not in ("sip", "sips"):
            raise MalformedMessage(f"Malformed {where}")
        user = password = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user, _, pw = userinfo.partition(":")
            password = pw if _ else None
            if not user:
                raise MalformedMessage(f"Empty user part in {where}")
        rest, q, headers = rest.partition("?")
        hostport, semi, params_text = rest.partition(";")
        host, port = split_hostport(hostport, where)
        params = parse_params(";" + params_text, where) if semi else ()
        return cls(host, user, password, port, params, headers if q else None, lscheme)

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts.append(":" + self.password)
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        if self.params:
            parts.append(format_params(self.params))
        if self.headers is not None:
            parts.append("?" + self.headers)
        return "".join(parts)

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> "SipUri":
        return replace(self, params=set_param(self.params, name, value))

    @property
    def user_unescaped(self) -> str | None:
        """The user part with %HH resolved once, never recursively (NUL kept)."""
        if self.user is None:
            return None
        return unquote_to_bytes(self.user).decode("utf-8", "surrogateescape")

    @property
    def transport(self) -> str | None:
        t = self.param("transport")
        return t.lower() if t else None

    @property
    def host_unbracketed(self) -> str:
        return self.host[1:-1] if self.host.startswith("[") else self.host

    @property
    def port_or_default(self) -> int:
        return self.port or DEFAULT_PORTS[self.scheme]


@dataclass(frozen=True, slots=True)
class TelUri:
    """RFC 3966 ``tel:`` URI: the number as written, then parameters."""

    number: str
    params: Params = ()

    @classmethod
    def parse(cls, text: str, where: str = "URI") -> "TelUri":
        if _FORBIDDEN.search(text):
            raise MalformedMessage(f"Malformed {where}")
        scheme, _, rest = text.partition(":")
        if scheme.lower() != "tel":
            raise MalformedMessage(f"Malformed {where}")
        number, semi, params_text = rest.partition(";")
        if not number or not re.fullmatch(r"\+?[0-9A-Fa-f*#\-.()]+", number):
            raise MalformedMessage(f"Malformed telephone number in {where}")
        params = parse_params(";" + params_text, where) if semi else ()
        return cls(number, params)

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"

    @property
    def digits(self) -> str:
        """The number without visual separators (RFC 3966 §5.1.1)."""
        return re.sub(r"[\-.()]", "", self.number)


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """Any other scheme (RFC 3261 §19.1.1 allows them; RFC 4475 §3.3.2 keeps them opaque)."""

    scheme: str
    opaque: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.opaque}"


Uri = Union[SipUri, TelUri, AbsoluteUri]


# URIs repeat (a user's From and To, the domain in every Request-URI); parsed
# URIs are immutable, so they are shared.  Bounded: cleared when full.
_CACHE: dict[str, "Uri"] = {}
_CACHE_MAX = 8192


def parse_uri(text: str, where: str = "URI") -> Uri:
    uri = _CACHE.get(text)
    if uri is None:
        uri = _parse_uri(text, where)
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[text] = uri
    return uri


def _parse_uri(text: str, where: str) -> Uri:
    scheme, colon, rest = text.partition(":")
    lscheme = scheme.lower()
    if lscheme in ("sip", "sips"):
        return SipUri.parse(text, where)
    if lscheme == "tel":
        return TelUri.parse(text, where)
    if not colon or not _SCHEME.match(scheme) or not rest or _FORBIDDEN.search(rest):
        raise MalformedMessage(f"Malformed {where}")
    return AbsoluteUri(scheme, rest)
