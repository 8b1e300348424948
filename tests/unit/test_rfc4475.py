"""Every RFC 4475 torture message gets the handling its INDEX.md states."""

from __future__ import annotations

import pytest

from switch.sip.validate import KNOWN_METHODS
from switch.sip.errors import SipError, UnparseableMessage
from switch.sip.message import Request, Response, parse_message
from switch.sip.validate import validate_request, validate_response

from .corpora import rfc4475

CORPUS = rfc4475()


def load(name: str) -> bytes:
    return (CORPUS / f"{name}.dat").read_bytes()


VALID = [
    "wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq",
    "semiuri", "transports", "mpart01", "unreason", "noreason",
    # application-level tests whose messages are well formed
    "unkscm", "novelsc", "unksm2", "bext01", "invut", "regaut01", "bcast", "zeromf",
    "cparam01", "cparam02", "regescrt", "sdp01", "inv2543",
]

# file -> status the switch answers (RFC 4475 §3.1.2, §3.2, §3.3)
REJECTED = {
    "badinv01": 400, "clerr": 400, "ncl": 400, "scalar02": 400, "quotbal": 400,
    "ltgtruri": 400, "lwsruri": 400, "lwsstart": 400, "trws": 400, "escruri": 400,
    "regbadct": 400, "badaspec": 400, "baddn": 400, "badvers": 505, "mismatch01": 400,
    "mismatch02": 501, "badbranch": 400, "insuf": 400, "multi01": 400, "mcl01": 400,
}

DROPPED = ["scalarlg", "bigcode", "test"]  # responses that are discarded; no start line


def check(msg: Request | Response) -> None:
    if isinstance(msg, Request):
        validate_request(msg, KNOWN_METHODS)
    else:
        validate_response(msg)


@pytest.mark.parametrize("name", VALID)
def test_valid_messages_parse_and_round_trip(name: str) -> None:
    data = load(name)
    msg = parse_message(data)
    check(msg)
    if name == "dblreq":  # RFC 3261 §18.3: octets past Content-Length are not kept
        assert data.startswith(bytes(msg)) and b"INVITE" not in bytes(msg)
    else:
        assert bytes(msg) == data
    again = parse_message(bytes(msg))
    assert again.fields == msg.fields and again.body == msg.body


@pytest.mark.parametrize("name,status", sorted(REJECTED.items()))
def test_invalid_requests_are_rejected_with_their_status(name: str, status: int) -> None:
    msg = parse_message(load(name))
    assert isinstance(msg, Request)
    with pytest.raises(SipError) as info:
        check(msg)
    assert info.value.status == status
    assert info.value.reason  # the reason phrase names the bad part


@pytest.mark.parametrize("name", DROPPED)
def test_dropped_messages(name: str) -> None:
    with pytest.raises(SipError) as info:
        check(parse_message(load(name)))
    assert isinstance(info.value, UnparseableMessage) and info.value.status is None


def test_escaped_content_is_never_unescaped_recursively() -> None:
    msg = parse_message(load("esc01"))
    assert msg.uri.user == "sips%3Auser%40example.com"  # type: ignore[union-attr]
    assert msg.uri.user_unescaped == "sips:user@example.com"  # type: ignore[union-attr]
    escnull = parse_message(load("escnull"))
    users = [a.sip_uri.user_unescaped for a in escnull.contact.addresses]  # type: ignore[union-attr]
    assert users == ["null\x00null", "null\x00null\x00"] or len(set(users)) == 2


def test_percent_in_method_is_not_an_escape() -> None:
    msg = parse_message(load("esc02"))
    assert isinstance(msg, Request) and msg.method == "RE%47IST%45R"
    assert len(msg.contact.addresses) == 2  # type: ignore[union-attr]  # C%6Fntact is unknown
    assert msg.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_tortuous_invite_values() -> None:
    msg = parse_message(load("wsinv"))
    assert msg.to.tag == "1918181833n"
    assert msg.from_.tag == "98asjd8"
    assert msg.from_.display == '"J Rosenberg \\\\\\""'
    assert msg.cseq.seq == 9 and msg.cseq.method == "INVITE"
    assert msg.max_forwards == 68
    assert [v.transport for v in msg.via] == ["UDP", "TCP", "UDP"]
    assert msg.via[1].branch == "z9hG4bK9ikj8"
    assert msg.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.contact.addresses[0].param("q") == "0.33"  # type: ignore[union-attr]


def test_semicolon_in_user_part() -> None:
    msg = parse_message(load("semiuri"))
    assert msg.uri.user == "user;par=u%40example.net"  # type: ignore[union-attr]
    assert msg.uri.host == "example.com"  # type: ignore[union-attr]


def test_multipart_body_with_nul_bytes_framed_by_content_length() -> None:
    data = load("mpart01")
    msg = parse_message(data)
    assert b"\x00" in msg.body and len(msg.body) == int(msg.get("Content-Length") or 0)


def test_contact_params_stay_where_they_were() -> None:
    c1 = parse_message(load("cparam01")).contact.addresses[0]  # type: ignore[union-attr]
    assert c1.param("unknownparam") == "" and c1.sip_uri.param("unknownparam") is None  # type: ignore[union-attr]
    c2 = parse_message(load("cparam02")).contact.addresses[0]  # type: ignore[union-attr]
    assert c2.sip_uri.param("unknownparam") == "" and c2.param("unknownparam") is None  # type: ignore[union-attr]
    c3 = parse_message(load("regescrt")).contact.addresses[0]  # type: ignore[union-attr]
    assert c3.sip_uri.headers == "Route=%3Csip:sip.example.com%3E"  # type: ignore[union-attr]
