"""The client side of digest answers Centrala's own server side (and RFC 7616)."""

from __future__ import annotations

from switch.auth.client import authorization, pick_challenge
from switch.auth.digest import AuthOutcome, Credentials, DigestAuth
from switch.sip.message import Response, new_request

REALM = "carrier.example"
NOW = 1_800_000_000.0


def challenge_response(auth: DigestAuth, status: int = 401) -> Response:
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    resp = Response(status, None, [])
    for value in auth.challenge(REALM, NOW):
        resp.add(header, value)
    return resp


def request(header: str, value: str) -> object:
    return new_request("REGISTER", f"sip:{REALM}", [
        ("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKc1"), ("From", f"<sip:t@{REALM}>;tag=1"),
        ("To", f"<sip:t@{REALM}>"), ("Call-ID", "c"), ("CSeq", "2 REGISTER"), (header, value)])


def test_prefers_sha256_and_is_accepted_by_a_real_server() -> None:
    auth = DigestAuth(b"s" * 32)
    creds = Credentials.from_password("trunk1", REALM, "pw")
    header, chosen = pick_challenge(challenge_response(auth))  # type: ignore[misc]
    assert header == "Authorization" and chosen.algorithm == "SHA-256" and chosen.qop == "auth"
    value = authorization(chosen, "REGISTER", f"sip:{REALM}", "trunk1", "pw")
    result = auth.check(request(header, value), REALM, lambda u: creds, NOW)  # type: ignore[arg-type]
    assert result.outcome is AuthOutcome.OK


def test_md5_only_and_proxy_challenges() -> None:
    auth = DigestAuth(b"s" * 32, algorithms=("MD5",))
    creds = Credentials.from_password("trunk1", REALM, "pw")
    header, chosen = pick_challenge(challenge_response(auth, 407))  # type: ignore[misc]
    assert header == "Proxy-Authorization" and chosen.algorithm == "MD5"
    value = authorization(chosen, "REGISTER", f"sip:{REALM}", "trunk1", "wrong")
    result = auth.check(request(header, value), REALM, lambda u: creds, NOW,  # type: ignore[arg-type]
                        header="proxy-authorization")
    assert result.outcome is AuthOutcome.FAILED


def test_unusable_challenges_are_ignored() -> None:
    resp = Response(401, None, [])
    resp.add("WWW-Authenticate", 'Basic realm="x"')
    resp.add("WWW-Authenticate", 'Digest realm="x", nonce="n", algorithm=SHA-512-256')
    resp.add("WWW-Authenticate", 'Digest realm="x", nonce="n", qop="auth-int"')
    assert pick_challenge(resp) is None
    resp.add("WWW-Authenticate", 'Digest realm="x", nonce="n"')  # RFC 2069 style
    _, chosen = pick_challenge(resp)  # type: ignore[misc]
    assert chosen.qop is None and chosen.algorithm == "MD5"
    assert "qop" not in authorization(chosen, "INVITE", "sip:1@x", "u", "p")
