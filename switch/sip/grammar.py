"""Lexical pieces of the RFC 3261 §25 grammar shared by URIs and headers.

Values arrive here already unfolded (header folding turned into a single
space by the message parser); LWS around separators is tolerated everywhere
the grammar puts SWS, as RFC 4475 §3.1.1.1 demands.
"""

from __future__ import annotations

import re

from .errors import MalformedMessage

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
# The non-alphanumeric token characters; a gen-value of a generic-param may
# also be a host, hence an IPv6 reference (":", "[", "]").
_TOKEN_MARKS = "-.!%*_+`'~"
_PARAM_VALUE_MARKS = "-.!%*_+`'~:[]"

Params = tuple[tuple[str, str | None], ...]


# The scanners below replace regular expressions on the hot path: compiled by
# mypyc, a loop over ``ord()`` is a few nanoseconds a character, where a
# ``re`` call costs a Python-level call and a matcher set-up.
def alnum_or(text: str, marks: str) -> bool:
    """True if ``text`` is non-empty and every character is an ASCII letter,
    a digit or one of ``marks``."""
    n = len(text)
    if n == 0:
        return False
    i = 0
    while i < n:
        o = ord(text[i])
        if not (97 <= o <= 122 or 65 <= o <= 90 or 48 <= o <= 57):
            if o > 127 or text[i] not in marks:
                return False
        i += 1
    return True


def ascii_uint(text: str) -> int:
    """Value of a non-empty string of ASCII digits, else -1 (``isdigit()``
    alone would accept other scripts' digits)."""
    n = len(text)
    if n == 0:
        return -1
    if n > 18:  # beyond a machine word: let int() do it
        return int(text) if text.isdigit() and text.isascii() else -1
    value = 0
    i = 0
    while i < n:
        o = ord(text[i])
        if o < 48 or o > 57:
            return -1
        value = value * 10 + (o - 48)
        i += 1
    return value


def strip(text: str) -> str:
    """``text.strip()``, without the method call in the common cases."""
    return strip_range(text, 0, len(text))


def strip_range(text: str, start: int, end: int) -> str:
    """``text[start:end].strip()``, sliced once.

    Spaces and tabs are trimmed here; if what is left starts and ends with a
    printable ASCII character that is the answer (``str.strip`` would stop
    there too), otherwise ``str.strip`` decides (Unicode whitespace).
    """
    i = start
    j = end
    while i < j and (ord(text[i]) == 32 or ord(text[i]) == 9):
        i += 1
    while j > i and (ord(text[j - 1]) == 32 or ord(text[j - 1]) == 9):
        j -= 1
    if i == j:
        return text[start:end].strip()
    if 32 < ord(text[i]) < 127 and 32 < ord(text[j - 1]) < 127:
        return text[i:j]
    return text[start:end].strip()


def is_token(text: str) -> bool:
    """RFC 3261 §25.1 ``token``: one or more of alphanum and ``-.!%*_+`'~``."""
    return alnum_or(text, _TOKEN_MARKS)


def is_param_value(text: str) -> bool:
    """An unquoted ``gen-value``: a token or a host (IPv6 references included)."""
    return alnum_or(text, _PARAM_VALUE_MARKS)


def find_quote_end(text: str, start: int) -> int:
    """Index of the closing quote of the quoted-string opening at ``start``."""
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i
        i += 1
    raise MalformedMessage("Unterminated quoted string")


def split_top_level(text: str, sep: str) -> list[str]:
    """Split on ``sep`` outside quoted strings and ``<...>`` brackets."""
    if '"' not in text and "<" not in text:
        return text.split(sep)
    parts: list[str] = []
    start = i = 0
    n = len(text)
    depth = 0
    while i < n:
        c = text[i]
        if c == '"':
            i = find_quote_end(text, i)
        elif c == "<":
            depth += 1
        elif c == ">" and depth:
            depth -= 1
        elif c == sep and not depth:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def split_values(text: str, header: str) -> list[str]:
    """Comma-separated values of a list header; an empty element is an error."""
    parts = [p.strip() for p in split_top_level(text, ",")]
    if any(not p for p in parts):
        raise MalformedMessage(f"Empty value in {header} header")
    return parts


def parse_params(text: str, where: str) -> Params:
    """Parse ``;name[=value]`` pairs (``text`` starts at the first ``;`` or is blank)."""
    text = strip(text)
    if not text:
        return ()
    if text[0] != ";":
        raise MalformedMessage(f"Malformed parameters in {where}")
    out: list[tuple[str, str | None]] = []
    if '"' not in text:  # the common case: no quoted values, a plain split will do
        for raw in text[1:].split(";"):
            name, eq, value = raw.partition("=")
            name = strip(name)
            value = strip(value)
            if not is_token(name) or (eq and not is_param_value(value)):
                raise MalformedMessage(f"Malformed parameter in {where}")
            out.append((name, value if eq else None))
        return tuple(out)
    for raw in split_top_level(text[1:], ";"):
        name, eq, value = raw.partition("=")
        name = name.strip()
        if not is_token(name):
            raise MalformedMessage(f"Malformed parameter in {where}")
        if not eq:
            out.append((name, None))
            continue
        value = value.strip()
        if value.startswith('"'):
            if find_quote_end(value, 0) != len(value) - 1:
                raise MalformedMessage(f"Malformed parameter value in {where}")
        elif not is_param_value(value):
            raise MalformedMessage(f"Malformed parameter value in {where}")
        out.append((name, value))
    return tuple(out)


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def get_param(params: Params, name: str) -> str | None:
    """Value of a parameter (``""`` for a flag without value), ``None`` if absent."""
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return "" if v is None else v
    return None


def has_param(params: Params, name: str) -> bool:
    lname = name.lower()
    return any(k.lower() == lname for k, _ in params)


def set_param(params: Params, name: str, value: str | None) -> Params:
    """A copy with ``name`` set (replaced in place, or appended)."""
    lname = name.lower()
    out = []
    found = False
    for k, v in params:
        if k.lower() == lname:
            if not found:
                out.append((k, value))
                found = True
        else:
            out.append((k, v))
    if not found:
        out.append((name, value))
    return tuple(out)


def remove_param(params: Params, name: str) -> Params:
    lname = name.lower()
    return tuple((k, v) for k, v in params if k.lower() != lname)


def unquote(text: str) -> str:
    """Contents of a quoted-string with its backslash escapes resolved."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_uint(text: str, what: str, maximum: int) -> int:
    """A decimal integer in ``0..maximum``; Python ints never overflow, so check."""
    text = strip(text)
    value = ascii_uint(text) if len(text) <= 20 else -1
    if value < 0:
        raise MalformedMessage(f"Malformed {what}")
    if value > maximum:
        raise MalformedMessage(f"{what} out of range")
    return value
