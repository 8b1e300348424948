"""Building blocks shared by the configuration models.

Every model derives from :class:`Model` (frozen, unknown keys forbidden).
Checks spanning several entries collect ``(loc, message)`` problems and raise
them at once with :func:`raise_problems`; the loader turns each ``loc`` into a
file and line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, SecretStr
from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

REFERENCE_ERROR = "reference_error"
"""Pydantic error type of cross-reference checks; ``ctx["problems"]`` lists them."""


def scalar_to_str(value: object) -> object:
    """YAML reads ``number: 100`` as an int; numbers and secrets are strings."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _check_digits(value: str) -> str:
    """Dialled numbers: 1 to 15 digits (E.164 length)."""
    if not re.fullmatch(r"[0-9]{1,15}", value):
        raise ValueError(f"expected 1 to 15 digits, got {value!r}")
    return value


def _check_name(value: str) -> str:
    """Identifiers operators refer to: letters, digits, ``_.-``."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        raise ValueError(f"{value!r}: use letters, digits, '_', '.' and '-'")
    return value



class Model(BaseModel):
    """Common model settings: immutable, unknown keys are errors."""

    # hide_input_in_errors: a ValidationError must never echo a password.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


def raise_problems(problems: list[Problem]) -> None:
    """Raise one ``reference_error`` carrying every problem, if there are any."""
    if problems:
        summary = "; ".join(message for _, message in problems)
        raise PydanticCustomError(
            REFERENCE_ERROR, "{summary}", {"summary": summary, "problems": tuple(problems)}
        )


def duplicates(entries: Iterable[tuple[Loc, str]], what: str) -> list[Problem]:
    """A problem for every entry whose value was already seen earlier."""
    seen: dict[str, Loc] = {}
    problems: list[Problem] = []
    for loc, value in entries:
        if value in seen:
            first = format_loc(seen[value])
            problems.append((loc, f"duplicate {what} {value!r} (first used at {first})"))
        else:
            seen[value] = loc
    return problems


def format_loc(loc: Loc) -> str:
    """``("groups", 0, "members")`` -> ``groups[0].members``."""
    text = ""
    for step in loc:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text



Digits = Annotated[str, BeforeValidator(scalar_to_str), AfterValidator(_check_digits)]
Name = Annotated[str, AfterValidator(_check_name)]
Secret = Annotated[SecretStr, BeforeValidator(scalar_to_str)]
