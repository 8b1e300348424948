"""The parser's hand-written scanners against the regular expressions and
``str`` methods they replace, plus the edge cases they must keep right.

The reference implementations below are the previous (regex / split based)
code, kept here verbatim as oracles: for any input, the scanner must give the
same answer, or raise ``MalformedMessage`` exactly when the oracle does.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from switch.auth.digest import MalformedDigest, parse_auth_params, split_scheme
from switch.sip.errors import MalformedMessage
from switch.sip.grammar import (
    ascii_uint,
    is_param_value,
    is_token,
    parse_params,
    parse_uint,
    strip,
    strip_range,
)
from switch.sip.headers import CSeq, NameAddr, Via
from switch.sip.message import Request, parse_message
from switch.sip.uri import check_host, is_hostname, split_hostport

# -- oracles: the code the scanners replaced -------------------------------
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")
_PARAM_VALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+\Z")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?\Z|[A-Za-z0-9]\Z")
_SENT_PROTOCOL = re.compile(
    r"\s*([\w\-.!%*+`'~]+)\s*/\s*([\w\-.!%*+`'~]+)\s*/\s*([\w\-.!%*+`'~]+)"
    r"\s+([^;]+)(.*)\Z",
    re.S | re.A,
)


def oracle_via(text: str) -> Via:
    m = _SENT_PROTOCOL.match(text)
    if not m:
        raise MalformedMessage("Malformed Via header")
    name, version, transport, sent_by, params_text = m.groups()
    host, port = split_hostport(sent_by, "Via header")
    params = parse_params(params_text, "Via header")
    return Via(transport.upper(), host, port, params, f"{name}/{version}")


def outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except MalformedMessage as exc:
        return ("error", exc.reason)


# Characters that matter to the scanners: separators, quotes, brackets, ASCII
# and Unicode whitespace (str.strip removes \x1c-\x1f, \x85, \xa0...), non-ASCII
# letters and digits that str.isalnum() would accept.
SCANNER_ALPHABET = st.sampled_from(
    list("aZ09-.!%*_+`'~:;=,@[]<>\"\\/? \t")
    + ["\r", "\n", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2003", "é", "\u0663", "\x00"]
)
scanner_text = st.text(SCANNER_ALPHABET, max_size=24)


@given(scanner_text)
def test_is_token_matches_the_regex(text: str) -> None:
    assert is_token(text) == bool(_TOKEN_RE.match(text))


@given(scanner_text)
def test_is_param_value_matches_the_regex(text: str) -> None:
    assert is_param_value(text) == bool(_PARAM_VALUE_RE.match(text))


@given(scanner_text)
def test_is_hostname_matches_the_regex(text: str) -> None:
    assert is_hostname(text) == bool(_HOSTNAME_RE.match(text))


@given(scanner_text, st.integers(0, 30), st.integers(0, 30))
def test_strip_range_is_slice_then_strip(text: str, a: int, b: int) -> None:
    start, end = min(a, b, len(text)), min(max(a, b), len(text))
    assert strip_range(text, start, end) == text[start:end].strip()
    assert strip(text) == text.strip()


def oracle_hostport(text: str, where: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise MalformedMessage(f"Malformed host in {where}")
        host, rest = text[: end + 1], text[end + 1 :].strip()
    else:
        host, sep, port_text = text.partition(":")
        host = host.strip()
        rest = ":" + port_text if sep else ""
    check_host(host, where)
    if not rest:
        return host, None
    if rest[0] != ":":
        raise MalformedMessage(f"Malformed host in {where}")
    port_text = rest[1:].strip()
    if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
        raise MalformedMessage(f"Malformed port in {where}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise MalformedMessage(f"Port out of range in {where}")
    return host, port


def oracle_uint(text: str, what: str, maximum: int) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 20:
        raise MalformedMessage(f"Malformed {what}")
    value = int(text)
    if value > maximum:
        raise MalformedMessage(f"{what} out of range")
    return value


hostport_text = st.builds(
    lambda a, b, c: a + b + c,
    st.sampled_from(
        ["", " ", "h.example", "192.0.2.1", "[::1]", "[2001:db8::1", "[x]", "a-", "\xa0h"]
    ),
    st.sampled_from(["", ":", " : ", ":\t", "]", "x"]),
    st.text(st.sampled_from(list("0159 \t\u0663x:")), max_size=7),
)


@settings(max_examples=400)
@given(hostport_text)
def test_split_hostport_equals_the_partition_version(text: str) -> None:
    expected = outcome(oracle_hostport, text, "Via header")
    assert outcome(split_hostport, text, "Via header") == expected


digits = st.text(st.sampled_from(list("0123456789 \t\u0663\xb2x")), max_size=22)


@given(digits, st.sampled_from([255, 2**31, 2**32 - 1, 2**64]))
def test_parse_uint_equals_isdigit_int(text: str, maximum: int) -> None:
    assert outcome(parse_uint, text, "N", maximum) == outcome(oracle_uint, text, "N", maximum)
    expected = int(text) if text and text.isdigit() and text.isascii() else -1
    assert ascii_uint(text) == expected


# -- Via: the cached sent-protocol fast path equals the regex --------------
via_text = st.builds(
    lambda proto, gap, sent_by, params: f"{proto}{gap}{sent_by}{params}",
    st.sampled_from(
        ["SIP/2.0/UDP", "SIP/2.0/TCP", "sip/2.0/udp", "SIP / 2.0 / TLS", "SIP/2.0/WSS", "SIP/2.0"]
    ),
    st.sampled_from([" ", "  ", "\t", " \t", "", ";"]),
    st.sampled_from(
        ["192.0.2.10:5060", "host.example", "[2001:db8::1]:5070", "[::1]", "h :5060", "h: 5060",
         "bad_host", "-bad", "h:99999", "", " ", "\x1chost", "host\xa0"]
    ),
    st.lists(
        st.sampled_from(
            [";rport", ";branch=z9hG4bK1", ' ;received="a;b,c"', ";x=[::1]", "; ttl = 1", ";",
             ';q="un', ";maddr=224.0.0.1", ";Branch=z9hG4bKA"]
        ),
        max_size=3,
    ).map("".join),
)


@settings(max_examples=400)
@given(via_text)
def test_via_parse_equals_the_regex_parse(text: str) -> None:
    expected = outcome(oracle_via, text)
    assert outcome(Via.parse, text) == expected
    assert outcome(Via.parse, text) == expected  # again: now the protocol is cached


@pytest.mark.parametrize(
    ("text", "host", "port", "params"),
    [
        ("SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bK1", "[2001:db8::9:1]", 5070,
         (("branch", "z9hG4bK1"),)),
        ('SIP/2.0/TCP h.example;received="1.2.3.4;x,y";rport', "h.example", None,
         (("received", '"1.2.3.4;x,y"'), ("rport", None))),
        ("SIP / 2.0 / UDP   h.example : 5062 ; branch = z9hG4bK2", "h.example", 5062,
         (("branch", "z9hG4bK2"),)),
        ("SIP/2.0/UDP\th.example;lr", "h.example", None, (("lr", None),)),
    ],
)
def test_via_edge_cases(text: str, host: str, port: int | None, params: object) -> None:
    for _ in range(2):  # cold, then with the sent-protocol cached
        via = Via.parse(text)
        assert (via.host, via.port, via.params) == (host, port, params)
        assert via == oracle_via(text) and hash(via) == hash(oracle_via(text))


def test_via_list_with_quoted_comma_and_folding() -> None:
    data = (
        b"OPTIONS sip:x@example.com SIP/2.0\r\n"
        b'v: SIP/2.0/UDP a.example;received="x,y";branch=z9hG4bKa,\r\n'
        b"  SIP/2.0/TCP [::1]:5061;branch=z9hG4bKb\r\n"
        b"Via: SIP/2.0/UDP c.example\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    msg = parse_message(data)
    assert [(v.host, v.branch) for v in msg.via] == [
        ("a.example", "z9hG4bKa"), ("[::1]", "z9hG4bKb"), ("c.example", None)
    ]
    assert msg.via[0].received == '"x,y"' and msg.defects == []


def test_via_is_a_value() -> None:
    via = Via("UDP", "192.0.2.1", 5060, (("branch", "z9hG4bK1"),))
    same = Via.parse("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1")
    assert via == same and hash(via) == hash(same) and via != "x"
    other = via.with_param("received", "10.0.0.1")
    assert other.received == "10.0.0.1" and via.received is None and via.branch == "z9hG4bK1"
    assert repr(via).startswith("Via(transport='UDP', host='192.0.2.1', port=5060")
    assert CSeq(1, "INVITE") == CSeq.parse(" 1   INVITE ")
    assert CSeq(1, "INVITE") != CSeq(2, "INVITE")
    assert hash(CSeq(1, "INVITE")) == hash(CSeq.parse("1 INVITE"))


@pytest.mark.parametrize("text", ["1 INV ITE", "1", "x INVITE", "1 INVITé", "4294967296 ACK"])
def test_bad_cseq(text: str) -> None:
    with pytest.raises(MalformedMessage):
        CSeq.parse(text)


def test_display_names() -> None:
    a = NameAddr.parse('"A; B, \\"C\\"" <sip:a@example.com>;tag=x')
    assert a.display == '"A; B, \\"C\\""' and a.tag == "x"
    b = NameAddr.parse("Bob\tSmith  <sip:b@example.com>")
    assert b.display == "Bob\tSmith"
    for bad in ("Bob\x0bSmith <sip:b@example.com>", "Bob; <sip:b@example.com>", "Bøb <sip:b@x>"):
        with pytest.raises(MalformedMessage):
            NameAddr.parse(bad)


# -- header splitting: the scanning loop equals the split-based one --------
_FOLD_RE = re.compile(r"[ \t]*\r?\n[ \t]+")


def oracle_fields(rest: str, sep: str, max_headers: int, max_line: int):  # type: ignore[no-untyped-def]
    """The former ``_parse_fields``: (fields, defects) for the header text."""
    from switch.sip.message import _field_name

    defects = []
    fields = []
    if rest[:1] in (" ", "\t"):
        defects.append("Malformed header folding")
    if "\n " in rest or "\n\t" in rest:
        rest = _FOLD_RE.sub(" ", rest)
    lines = rest.split(sep)
    if len(lines) > max_headers:
        defects.append("Too many headers")
        del lines[max_headers:]
    for line in lines:
        raw, colon, value = line.partition(":")
        known = _field_name(raw) if colon else None
        if known is None:
            defects.append("Malformed header line")
            continue
        if len(line) > max_line:
            defects.append("Header line too long")
        fields.append((known[0], known[1], value.strip()))
    return fields, defects


header_line = st.one_of(
    st.builds(
        lambda name, gap, value: f"{name}{gap}{value}",
        st.sampled_from(["Via", "v", "From", "t", "X-Custom", "Bad Name", "", " folded", "\tfold"]),
        st.sampled_from([":", ": ", " :", "\t:\t", ":  ", ""]),
        st.text(st.sampled_from(list("ab;,\"<>:= \t\x0b\xa0é")), max_size=12),
    ),
    st.sampled_from(["", " ", "x" * 40]),
)


@settings(max_examples=400)
@given(st.lists(header_line, min_size=1, max_size=8), st.sampled_from(["\r\n", "\n"]))
def test_header_scanning_equals_splitting(lines: list[str], sep: str) -> None:
    rest = sep.join(lines)
    # A blank line would end the header section: the framing cuts there.
    assume(rest and (sep + sep) not in (sep + rest + sep))
    head = f"OPTIONS sip:x@example.com SIP/2.0{sep}{rest}"
    data = (head + sep + sep).encode("utf-8", "surrogateescape")
    msg = parse_message(data, max_headers=5, max_line_bytes=36)
    fields, defects = oracle_fields(rest.replace("\r\n", "\n") if sep == "\n" else rest, sep, 5, 36)
    assert isinstance(msg, Request)
    assert msg.fields == fields
    assert msg.defects == defects


def test_header_values_keep_inner_whitespace_and_unicode() -> None:
    data = (
        "MESSAGE sip:x@example.com SIP/2.0\r\n"
        "Subject:\t  hello   world \t\r\n"
        "X-A:\xa0nbsp\xa0\r\n"
        "X-B:\x1cfs\r\n"
        "s :  compact  \r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse_message(data)
    assert msg.get("subject") == "hello   world"
    assert msg.get_all("subject") == ["hello   world", "compact"]
    assert msg.get("x-a") == "nbsp" and msg.get("x-b") == "fs"
    assert bytes(msg) == data


# -- Authorization headers (switch/auth/digest.py) ---------------------------
_AUTH_PARAM_RE = re.compile(
    r"[ \t]*([A-Za-z0-9\-.!%*_+`\'~]+)[ \t]*=[ \t]*"
    r'(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))'
    r"[ \t]*(?:,[ \t,]*|\Z)",
    re.DOTALL,
)
_AUTH_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_AUTH_SCHEME_RE = re.compile(r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)(?:[ \t]+|\Z)")


def oracle_auth_params(text: str) -> dict[str, str] | str:
    params: dict[str, str] = {}
    pos, end = 0, len(text)
    while pos < end:
        m = _AUTH_PARAM_RE.match(text, pos)
        if m is None:
            return "error"
        name = m.group(1).lower()
        if name in params:
            return "error"
        quoted = m.group(2)
        if quoted is None:
            params[name] = m.group(3)
        else:
            params[name] = _AUTH_ESCAPE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        pos = m.end()
    return params


def oracle_split_scheme(value: str) -> tuple[str, str] | str:
    m = _AUTH_SCHEME_RE.match(value)
    if m is None:
        return "error"
    return m.group(1).lower(), value[m.end():]


def auth_outcome(fn, text):  # type: ignore[no-untyped-def]
    try:
        return fn(text)
    except MalformedDigest:
        return "error"


auth_piece = st.sampled_from(
    ["Digest", "username", "realm", "nonce", "uri", "=", '"', "\\", ",", " ", "\t",
     "a", "Z9", "sip:100@x", "\n", "\x0b", "\x1c", "\x85", "\xa0", "ü", "-", "'", "~",
     '"a,b"', '"q\\"x"', "=\"\"", ", ,"]
)
auth_text = st.lists(auth_piece, max_size=14).map("".join)


@settings(max_examples=600)
@given(auth_text)
def test_auth_params_scanner_equals_the_regex(text: str) -> None:
    assert auth_outcome(parse_auth_params, text) == oracle_auth_params(text)


@settings(max_examples=300)
@given(auth_text)
def test_split_scheme_scanner_equals_the_regex(text: str) -> None:
    assert auth_outcome(split_scheme, text) == oracle_split_scheme(text)


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ('username="100", realm="x", uri=sip:x, nc=00000001',
         {"username": "100", "realm": "x", "uri": "sip:x", "nc": "00000001"}),
        ('a="q\\"uote\\\\d",b=c,,  ,d=e', {"a": 'q"uote\\d', "b": "c", "d": "e"}),
        ("", {}),
        ('a="x" , ', {"a": "x"}),
        ("A=1", {"a": "1"}),
    ],
)
def test_auth_params_examples(text: str, params: dict[str, str]) -> None:
    assert parse_auth_params(text) == params


@pytest.mark.parametrize(
    "text",
    ['a="open', "a=b c=d", "a=1,a=2", 'a=x"y', "=1", "a", 'a="x"y', "a=\xa0", "a=b\\"],
)
def test_bad_auth_params(text: str) -> None:
    if text == "a=b\\":  # a backslash is an ordinary character in a token value
        assert parse_auth_params(text) == {"a": "b\\"}
        return
    with pytest.raises(MalformedDigest):
        parse_auth_params(text)
