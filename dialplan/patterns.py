"""Dial patterns of outbound routes, compiled once per (re)load.

Three forms, as an operator writes them in ``outbound_routes[].match``:

``_0[1-9]XXXXXXXX``
    Asterisk style (the leading ``_`` marks a pattern).  ``X`` is any digit,
    ``Z`` 1-9, ``N`` 2-9, ``[15-7]`` one of the listed digits or ranges, ``.``
    one or more further characters and ``!`` zero or more (both only at the
    end).  Digits, ``*``, ``#`` and ``+`` stand for themselves; ``-`` is a
    visual separator and ignored.  Letters are case-insensitive.
``re:^00[1-9][0-9]+$``
    A Python regular expression, which must match the whole dialled string.
``112``
    Anything else is a literal number matched exactly.

A malformed pattern raises :class:`PatternError` (a ``ValueError``), so a
pydantic validator turns it into a configuration error at its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DialPattern", "PatternError", "check_pattern", "compile_pattern"]

_DIAL_CHARS = "0-9*#+"
_TOKENS: dict[str, str] = {"X": "[0-9]", "Z": "[1-9]", "N": "[2-9]"}
_TAILS: dict[str, str] = {".": f"[{_DIAL_CHARS}]+", "!": f"[{_DIAL_CHARS}]*"}
_LITERAL = re.compile(r"\+?[0-9*#]+")


class PatternError(ValueError):
    """A dial pattern that cannot be compiled."""


@dataclass(frozen=True, slots=True)
class DialPattern:
    """A compiled pattern; ``text`` is what the operator wrote."""

    text: str
    regex: re.Pattern[str]

    def matches(self, dialled: str) -> bool:
        """True if the pattern matches the whole of ``dialled``."""
        return self.regex.fullmatch(dialled) is not None


def compile_pattern(text: str) -> DialPattern:
    """Compile one of the three forms above; raises :class:`PatternError`."""
    if text.startswith("re:"):
        return DialPattern(text, _compile_regex(text[3:]))
    if text.startswith("_"):
        return DialPattern(text, re.compile(_translate(text[1:], text)))
    if _LITERAL.fullmatch(text) is None:
        raise PatternError(
            f"{text!r} is neither a number, an _ pattern (such as _0XXXXXXXXX) "
            "nor a re: regular expression"
        )
    return DialPattern(text, re.compile(re.escape(text)))


def check_pattern(text: str) -> str:
    """Pydantic validator: ``text`` unchanged if it compiles."""
    compile_pattern(text)
    return text


def _compile_regex(body: str) -> re.Pattern[str]:
    if not body:
        raise PatternError("empty regular expression after 're:'")
    try:
        return re.compile(body)
    except re.error as exc:
        raise PatternError(f"bad regular expression {body!r}: {exc}") from None


def _translate(body: str, text: str) -> str:
    """The regex for an Asterisk pattern body (``text`` is for messages)."""
    if not body:
        raise PatternError(f"{text!r}: nothing after '_'")
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i].upper()
        if char in _TOKENS:
            out.append(_TOKENS[char])
        elif char in _TAILS:
            if i != len(body) - 1:
                raise PatternError(f"{text!r}: {char!r} may only end the pattern")
            out.append(_TAILS[char])
        elif char == "[":
            end = body.find("]", i)
            if end < 0:
                raise PatternError(f"{text!r}: '[' at position {i + 1} is never closed")
            out.append(_char_class(body[i + 1 : end], text))
            i = end
        elif char in "0123456789*#+":
            out.append(re.escape(char))
        elif char != "-":
            raise PatternError(
                f"{text!r}: unexpected {body[i]!r}; use digits, * # +, X Z N, [1-5], . or !"
            )
        i += 1
    return "".join(out)


def _char_class(inside: str, text: str) -> str:
    """``15-7`` -> ``[15-7]``, checking every digit and range."""
    if not inside:
        raise PatternError(f"{text!r}: empty '[]'")
    for match in re.finditer(r"(.)(?:-(.))?", inside):
        low, high = match.group(1), match.group(2) or match.group(1)
        if not (low.isdigit() and high.isdigit()) or not "0" <= low <= high <= "9":
            raise PatternError(
                f"{text!r}: [{inside}] must hold digits and ranges such as [1-5] or [2379]"
            )
    return f"[{inside}]"
