"""Dial pattern compiler: Asterisk-style ``_`` patterns, ``re:`` regexes, literals."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialplan.loader import ConfigError, load_config
from dialplan.patterns import PatternError, compile_pattern


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("_X", ["0", "9"], ["", "a", "12", "*"]),
        ("_Z", ["1", "9"], ["0"]),
        ("_N", ["2", "9"], ["0", "1"]),
        ("_x", ["5"], ["55"]),  # letters are case-insensitive
        ("_[1-5]", ["1", "3", "5"], ["0", "6"]),
        ("_[125-7]", ["1", "2", "5", "6", "7"], ["3", "4", "8"]),
        ("_0[1-9]XXXXXXXX", ["0221234567", "0900000000"], ["0021234567", "022123456"]),
        ("_00.", ["001", "0048221234567", "00*#"], ["00", "0"]),
        ("_00!", ["00", "001", "0044"], ["0", "01"]),
        ("_*8X.", ["*810", "*8101"], ["*81", "*8", "*9101"]),
        ("_+48X.", ["+48221234567"], ["48221234567"]),
        ("_0-22-XXX", ["022123"], ["0-22-123"]),  # '-' is only a separator
        ("112", ["112"], ["1120", "11", "_112"]),
        ("*#06#", ["*#06#"], ["*#06"]),
        ("re:^00[1-9][0-9]+$", ["0044", "00441632960001"], ["0004", "00"]),
        ("re:80[0-9]{4}", ["801234"], ["8012345", "x801234"]),  # whole string always
    ],
)
def test_pattern_matches(pattern: str, matching: list[str], not_matching: list[str]) -> None:
    compiled = compile_pattern(pattern)
    assert compiled.text == pattern
    assert [n for n in matching if not compiled.matches(n)] == []
    assert [n for n in not_matching if compiled.matches(n)] == []


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("_", "nothing after '_'"),
        ("_0[1-", "'[' at position 2 is never closed"),
        ("_0[]X", "empty '[]'"),
        ("_[5-1]", "must hold digits and ranges"),
        ("_[a-c]", "must hold digits and ranges"),
        ("_[1-]", "must hold digits and ranges"),
        ("_X.X", "'.' may only end the pattern"),
        ("_!0", "'!' may only end the pattern"),
        ("_0A", "unexpected 'A'"),
        ("re:", "empty regular expression"),
        ("re:^(00", "bad regular expression"),
        ("0048 22", "neither a number"),
        ("abc", "neither a number"),
    ],
)
def test_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(PatternError) as caught:
        compile_pattern(pattern)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError)


@given(st.text(alphabet="0123456789", min_size=1, max_size=15))
def test_x_per_digit_matches_exactly_that_length(number: str) -> None:
    pattern = compile_pattern("_" + "X" * len(number))
    assert pattern.matches(number)
    assert not pattern.matches(number + "0") and not pattern.matches(number[:-1] or "*")


@given(st.text(alphabet="0123456789*#", min_size=0, max_size=20))
def test_dot_and_bang(rest: str) -> None:
    assert compile_pattern("_9!").matches("9" + rest)
    assert compile_pattern("_9.").matches("9" + rest) == bool(rest)


MAIN = "listen:\n  - udp:127.0.0.1:5060\n"
TENANT = dedent("""\
    domain: a.test
    name: A
    settings:
      country_code: "48"
    trunks:
      - name: carrier
        host: 192.0.2.1
    outbound_routes:
      - name: ok
        match: _00.
        trunks: [carrier]
      - name: broken
        match: "re:^00(4"
        trunks: [carrier]
      - name: worse
        match: _0[1-
        trunks: [carrier]
    """)


def test_bad_pattern_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "centrala.yaml").write_text(MAIN)
    (tmp_path / "tenants" / "a.yaml").write_text(TENANT)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    issues = sorted(caught.value.issues, key=lambda i: i.line)
    lines = TENANT.splitlines()
    assert [(i.line, i.message.split(":")[0]) for i in issues] == [
        (lines.index('    match: "re:^00(4"') + 1, "outbound_routes[1].match"),
        (lines.index("    match: _0[1-") + 1, "outbound_routes[2].match"),
    ]
    assert "bad regular expression '^00(4'" in issues[0].message
    assert "never closed" in issues[1].message
