"""Parser and serialiser of SIP messages: round trips, properties, edge cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switch.sip.builders import make_ack, make_cancel, make_response
from switch.sip.errors import MalformedMessage, UnparseableMessage
from switch.sip.headers import NameAddr, Via
from switch.sip.message import Request, Response, new_request, parse_message
from switch.sip.uri import SipUri, TelUri, parse_uri
from switch.sip.validate import validate_request

INVITE = (
    b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.com>\r\n"
    b"From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_rfc3261_invite() -> None:
    msg = parse_message(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == "INVITE" and str(msg.uri) == "sip:bob@biloxi.com"
    assert msg.top_via.branch == "z9hG4bK776asdhds" and msg.top_via.host == "pc33.atlanta.com"
    assert msg.from_.tag == "1928301774" and msg.to.tag is None
    assert msg.cseq.seq == 314159 and msg.call_id == "a84b4c76e66710@pc33.atlanta.com"
    assert msg.body == b"v=0\n" and bytes(msg) == INVITE
    validate_request(msg)


def test_compact_forms_and_case() -> None:
    data = INVITE.replace(b"Via:", b"v:").replace(b"Call-ID:", b"i:").replace(b"To:", b"tO:")
    msg = parse_message(data)
    assert msg.get("Via") == msg.get("v") and msg.get("call-id") == msg.get("I")
    assert msg.to.uri == SipUri("biloxi.com", "bob")
    assert bytes(msg) == data


def test_modification_reserialises_and_keeps_order() -> None:
    msg = parse_message(INVITE)
    msg.prepend("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnew")
    out = bytes(msg)
    assert out.index(b"10.0.0.1") < out.index(b"pc33.atlanta.com;branch")
    again = parse_message(out)
    assert [v.branch for v in again.via] == ["z9hG4bKnew", "z9hG4bK776asdhds"]
    assert again.body == b"v=0\n"
    assert again.pop_first("via") == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKnew"
    assert bytes(again).split(b"\r\n")[1:] == INVITE.split(b"\r\n")[1:]


def test_multiple_values_in_one_header_and_one_per_line() -> None:
    data = INVITE.replace(
        b"Max-Forwards: 70\r\n",
        b"Max-Forwards: 70\r\nRoute: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
        b"Route: <sip:p3.example.com;lr>\r\n",
    )
    msg = parse_message(data)
    assert [str(r.uri) for r in msg.name_addrs("Route")] == [
        "sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3.example.com;lr"]
    assert msg.values("route")[1] == "<sip:p2.example.com;lr>"


def test_unknown_headers_kept_verbatim_in_order() -> None:
    data = INVITE.replace(b"Contact:", b"X-Foo:  a,,b;;\r\nX-Bar: 1\r\nContact:")
    msg = parse_message(data)
    assert [n for n, _, _ in msg.fields][6:8] == ["X-Foo", "X-Bar"]
    msg.set("Max-Forwards", 69)
    assert b"X-Foo: a,,b;;\r\nX-Bar: 1\r\n" in bytes(msg)


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.com",
        "sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=project",
        "sip:+12125551212@server.phone2net.com;user=phone",
        "sip:%61lice@atlanta.com;maddr=239.255.255.1;ttl=15",
        "tel:+1-201-555-0123;phone-context=example.com",
        "urn:service:sos",
    ],
)
def test_uri_round_trip(text: str) -> None:
    assert str(parse_uri(text)) == text


def test_ipv6_reference_in_via_and_uri() -> None:
    via = Via.parse("SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3;received=[2001:db8::9:255]")
    assert via.host == "[2001:db8::9:1]" and via.port == 5070
    assert via.received == "[2001:db8::9:255]"
    uri = SipUri.parse("sip:[::1]:5060")
    assert uri.host_unbracketed == "::1" and uri.port == 5060


@pytest.mark.parametrize(
    "text",
    ["sip:", "sip:@host", "sip:host:99999", "sip:ho st", "sip:<host>", "sip:[::1", "tel:", "x y:z"],
)
def test_bad_uris(text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_uri(text)


def test_name_addr_forms() -> None:
    a = NameAddr.parse('"Alice \\"A\\"" <sip:alice@a.com;lr>;tag=1')
    assert a.display == '"Alice \\"A\\""' and a.tag == "1"
    assert str(a) == '"Alice \\"A\\"" <sip:alice@a.com;lr>;tag=1'
    b = NameAddr.parse("sip:bob@b.com;tag=2")  # addr-spec: params belong to the header
    assert b.tag == "2" and str(b.uri) == "sip:bob@b.com" and str(b) == "sip:bob@b.com;tag=2"
    c = NameAddr.parse("Bob Smith <tel:+123>")
    assert isinstance(c.uri, TelUri) and c.display == "Bob Smith"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x01garbage", b"HELLO\r\n\r\n", b"SIP/2.0 4294967301 Huge\r\n\r\n", b"SIP/2.0 20 OK\r\n\r\n"],
)
def test_unparseable(data: bytes) -> None:
    with pytest.raises(UnparseableMessage):
        parse_message(data)


def test_defects_are_recorded_not_raised() -> None:
    msg = parse_message(INVITE.replace(b"Max-Forwards: 70", b"this line has no colon"))
    assert msg.defects == ["Malformed header line"]
    msg = parse_message(INVITE.replace(b"Content-Length: 4", b"Content-Length: 40"))
    assert "Content-Length larger than message" in msg.defects


def test_limits_on_header_count_and_line_length() -> None:
    many = INVITE.replace(b"\r\n\r\n", b"\r\n" + b"Accept: a/b\r\n" * 120 + b"\r\n")
    assert "Too many headers" in parse_message(many, max_headers=100).defects
    long = INVITE.replace(b"Max-Forwards: 70", b"X-Long: " + b"a" * 9000)
    assert "Header line too long" in parse_message(long, max_line_bytes=8192).defects


def test_builders() -> None:
    req = parse_message(INVITE)
    assert isinstance(req, Request)
    resp = make_response(req, 486, to_tag="xyz")
    assert resp.status == 486 and resp.reason == "Busy Here" and resp.to.tag == "xyz"
    assert resp.get("via") == req.get("via") and resp.cseq == req.cseq
    trying = make_response(req, 100, to_tag="xyz")
    assert trying.to.tag is None
    ack = make_ack(req, resp)
    assert ack.method == "ACK" and ack.cseq.seq == 314159 and ack.cseq.method == "ACK"
    assert ack.to.tag == "xyz" and ack.uri_text == req.uri_text and len(ack.via) == 1
    cancel = make_cancel(req)
    assert cancel.cseq.method == "CANCEL" and cancel.top_via.branch == req.top_via.branch
    for m in (resp, ack, cancel):
        assert bytes(parse_message(bytes(m))) == bytes(m)


# -- Hypothesis: messages built from parts survive serialise + parse ------------

tokens = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~", min_size=1, max_size=12)
hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9]{0,8}(\.[a-z][a-z0-9]{0,8}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
ports = st.none() | st.integers(1, 65535)
params = st.lists(st.tuples(tokens, st.none() | tokens), max_size=3).map(tuple)
sip_uris = st.builds(
    SipUri, host=hosts, user=st.none() | tokens, port=ports, params=params,
    scheme=st.sampled_from(["sip", "sips"]),
)
display = st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=20).map(
    lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
)
name_addrs = st.builds(NameAddr, uri=sip_uris, display=display, params=params)
vias = st.builds(
    Via, transport=st.sampled_from(["UDP", "TCP", "TLS", "SCTP"]), host=hosts, port=ports,
    params=params.map(lambda p: (("branch", "z9hG4bK" + "x" * 8),) + p),
)
bodies = st.binary(max_size=200)
unknown = st.lists(
    st.tuples(tokens.map(lambda t: "X-" + t), st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=30)),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(
    method=tokens.map(str.upper), uri=sip_uris, frm=name_addrs, to=name_addrs,
    via=st.lists(vias, min_size=1, max_size=4), seq=st.integers(0, 2**32 - 1),
    extra=unknown, body=bodies,
)
def test_round_trip_request(method, uri, frm, to, via, seq, extra, body) -> None:  # type: ignore[no-untyped-def]
    headers: list[tuple[str, object]] = [("Via", v) for v in via]
    headers += [("From", frm), ("To", to), ("Call-ID", "abc@host"), ("CSeq", f"{seq} {method}")]
    headers += extra
    req = new_request(method, uri, headers, body)
    data = bytes(req)
    msg = parse_message(data)
    assert isinstance(msg, Request) and msg.defects == []
    assert msg.method == method and msg.uri == uri
    assert msg.via == via and msg.from_ == frm and msg.to == to and msg.cseq.seq == seq
    assert msg.body == body and bytes(msg) == data
    assert [(n, v) for n, _, v in msg.fields[: len(headers)]] == [(n, str(v)) for n, v in headers]


@settings(max_examples=200, deadline=None)
@given(status=st.integers(100, 699), reason=st.text(st.characters(min_codepoint=32, max_codepoint=0x7FF), max_size=30), body=bodies)
def test_round_trip_response(status: int, reason: str, body: bytes) -> None:
    resp = Response(status, reason.strip(), [("Via", "via", "SIP/2.0/UDP h;branch=z9hG4bKa")], body)
    resp.body = body
    msg = parse_message(bytes(resp))
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.body) == (status, reason.strip(), body)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_anything_but_sip_errors(data: bytes) -> None:
    from switch.sip.errors import SipError

    try:
        msg = parse_message(data)
    except SipError:
        return
    if isinstance(msg, Request):
        try:
            validate_request(msg)
        except SipError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_invite_never_raises_anything_but_sip_errors(data: st.DataObject) -> None:
    from switch.sip.errors import SipError

    raw = bytearray(INVITE)
    for _ in range(data.draw(st.integers(1, 8))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.sampled_from(b' ;,:<>"\\@[]\r\n\t=/0\x00\xff'))
    try:
        msg = parse_message(bytes(raw))
        if isinstance(msg, Request):
            validate_request(msg)
    except SipError:
        pass
