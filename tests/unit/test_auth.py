"""Digest authentication (RFC 3261 §22, RFC 7616, RFC 8760): vectors, round trips, hostile input."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import switch.auth.digest as digest_mod
from switch.auth import AuthOutcome, AuthResult, Credentials, DigestAuth
from switch.auth.digest import (
    NONCE_LEN,
    DigestResponse,
    MalformedDigest,
    expected_response,
    parse_auth_params,
)
from switch.sip.message import Request, new_request, parse_message

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "demo.centrala.test"
RURI = "sip:demo.centrala.test"
NOW = 1_795_000_000.0
USERS = {"100": Credentials.from_password("100", REALM, "s3cret")}


def lookup(username: str) -> Credentials | None:
    return USERS.get(username)


# -- a client, written independently of the module under test -------------------


def _h(alg: str, text: str) -> str:
    fn = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[alg.upper().removesuffix("-SESS")]
    return fn(text.encode()).hexdigest()


def challenge_params(value: str) -> dict[str, str]:
    assert value.startswith("Digest ")
    found = re.findall(r'([a-z]+)=(?:"([^"]*)"|([^\s,]+))', value)
    return {k: q or t for k, q, t in found}


def client_authorization(
    challenge: str,
    username: str = "100",
    password: str = "s3cret",
    *,
    method: str = "REGISTER",
    uri: str = RURI,
    nc: int = 1,
    cnonce: str = "0a4f113b",
    qop: bool = True,
    algorithm: str | None = None,
) -> str:
    p = challenge_params(challenge)
    alg = algorithm or p["algorithm"]
    ha1 = _h(alg, f"{username}:{p['realm']}:{password}")
    if alg.upper().endswith("-SESS"):
        ha1 = _h(alg, f"{ha1}:{p['nonce']}:{cnonce}")
    ha2 = _h(alg, f"{method}:{uri}")
    realm, nonce = p["realm"], p["nonce"]
    head = f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}"'
    if not qop:
        return f'{head}, response="{_h(alg, f"{ha1}:{nonce}:{ha2}")}", algorithm={alg}'
    ncs = f"{nc:08x}"
    resp = _h(alg, f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
    return f'{head}, response="{resp}", algorithm={alg}, qop=auth, nc={ncs}, cnonce="{cnonce}"'


def register(*authorization: str, uri: str = RURI, header: str = "Authorization") -> Request:
    headers: list[tuple[str, object]] = [
        ("Via", "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-auth-1"),
        ("Max-Forwards", 70),
        ("From", f"<sip:100@{REALM}>;tag=a1"),
        ("To", f"<sip:100@{REALM}>"),
        ("Call-ID", "auth-test-1"),
        ("CSeq", "1 REGISTER"),
    ]
    headers += [(header, value) for value in authorization]
    return new_request("REGISTER", uri, headers)


@pytest.fixture
def auth() -> DigestAuth:
    return DigestAuth(SECRET)


def first_challenge(auth: DigestAuth, alg: str = "SHA-256", now: float = NOW) -> str:
    (value,) = [c for c in auth.challenge(REALM, now) if c.endswith(f"algorithm={alg}")]
    return value


def check(auth: DigestAuth, req: Request, now: float = NOW) -> AuthResult:
    return auth.check(req, REALM, lookup, now)


# -- RFC 7616 §3.9.1 / RFC 2617 §3.5 vectors --------------------------------------

RFC7616_HEADER = (
    'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
    'algorithm={alg}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001, '
    'cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth, response="{resp}", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)


@pytest.mark.parametrize(
    "alg, resp",
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_example(alg: str, resp: str) -> None:
    _, _, params = RFC7616_HEADER.format(alg=alg, resp=resp).partition(" ")
    creds = DigestResponse.parse(parse_auth_params(params))
    user = Credentials.from_password("Mufasa", "http-auth@example.org", "Circle of Life")
    ha1 = user.ha1_for(alg)
    assert ha1 is not None
    assert expected_response("GET", creds, ha1) == resp


def test_rfc2617_example_adapted_to_sip() -> None:
    # RFC 2617 §3.5; the pjproject fuzz seed auth_digest.sip reuses its values.
    creds = DigestResponse.parse(
        parse_auth_params(
            'username="Mufasa", realm="testrealm@host.com", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
            'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1"'
        )
    )
    ha1 = Credentials.from_password("Mufasa", "testrealm@host.com", "Circle Of Life").ha1["MD5"]
    assert expected_response("GET", creds, ha1) == "6629fae49393a05397450978507c4ef1"
    # The same exchange as a SIP REGISTER: A2 = method ":" digest-uri.
    sip = DigestResponse.parse(
        parse_auth_params(
            'username="Mufasa", realm="testrealm@host.com", '
            'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="sip:host.com", qop=auth, '
            'nc=00000001, cnonce="0a4f113b", response="00"'
        )
    )
    ha2 = _h("MD5", "REGISTER:sip:host.com")
    want = _h("MD5", f"{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}")
    assert expected_response("REGISTER", sip, ha1) == want


def test_credentials_from_password_and_ha1() -> None:
    c = Credentials.from_password("100", REALM, "s3cret")
    assert c.ha1["MD5"] == hashlib.md5(f"100:{REALM}:s3cret".encode()).hexdigest()
    assert c.ha1_for("SHA-256") == hashlib.sha256(f"100:{REALM}:s3cret".encode()).hexdigest()
    assert c.ha1_for("MD5-sess") == c.ha1["MD5"]
    only = Credentials.from_ha1("100", REALM, md5=c.ha1["MD5"].upper())
    assert only.ha1_for("MD5") == c.ha1["MD5"] and only.ha1_for("SHA-256") is None


# -- challenges ---------------------------------------------------------------------


def test_challenge_lists_sha256_first(auth: DigestAuth) -> None:
    values = auth.challenge(REALM, NOW)
    assert [challenge_params(v)["algorithm"] for v in values] == ["SHA-256", "MD5"]
    for v in values:
        p = challenge_params(v)
        assert p["realm"] == REALM and p["qop"] == "auth" and "stale" not in p
        assert len(p["nonce"]) == NONCE_LEN
    assert values[0].startswith(f'Digest realm="{REALM}", nonce="')
    assert all(v.endswith(", stale=true") for v in auth.challenge(REALM, NOW, stale=True))


def test_nonces_are_unique_within_one_millisecond(auth: DigestAuth) -> None:
    nonces = {challenge_params(c)["nonce"] for _ in range(50) for c in auth.challenge(REALM, NOW)}
    assert len(nonces) == 100


# -- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["SHA-256", "MD5", "SHA-256-sess", "MD5-sess"])
def test_round_trip(auth: DigestAuth, alg: str) -> None:
    challenge = first_challenge(auth, alg.removesuffix("-sess"))
    req = register(client_authorization(challenge, algorithm=alg))
    result = check(auth, req, NOW + 1)
    assert result == AuthResult(AuthOutcome.OK, "100", "ok")


def test_round_trip_through_the_parser(auth: DigestAuth) -> None:
    value = client_authorization(first_challenge(auth))
    data = bytes(register(value))
    parsed = parse_message(data)
    assert isinstance(parsed, Request)
    assert check(auth, parsed, NOW + 1).outcome is AuthOutcome.OK


def test_proxy_authorization(auth: DigestAuth) -> None:
    value = client_authorization(first_challenge(auth), method="INVITE")
    req = new_request("INVITE", RURI, [("Proxy-Authorization", value)])
    assert auth.check(req, REALM, lookup, NOW, header="proxy-authorization").ok
    assert auth.check(req, REALM, lookup, NOW).outcome is AuthOutcome.NO_CREDENTIALS


def test_nonce_survives_a_restart_with_the_same_secret(auth: DigestAuth) -> None:
    value = client_authorization(first_challenge(auth))
    assert check(DigestAuth(SECRET), register(value), NOW + 10).ok
    other = DigestAuth(b"another secret, 32 bytes long!!!")
    assert check(other, register(value), NOW + 10).reason == "bad nonce"


def test_a_secret_longer_than_the_mac_key_still_binds_the_nonce() -> None:
    long_secret = bytes(range(100))
    auth = DigestAuth(long_secret)
    value = client_authorization(first_challenge(auth))
    assert check(DigestAuth(long_secret), register(value), NOW + 10).ok
    other = DigestAuth(long_secret[:99] + b"!")
    assert check(other, register(value), NOW + 10).reason == "bad nonce"


def test_increasing_nc_ok_replay_fails(auth: DigestAuth) -> None:
    challenge = first_challenge(auth)
    assert check(auth, register(client_authorization(challenge, nc=1))).ok
    assert check(auth, register(client_authorization(challenge, nc=2))).ok
    assert check(auth, register(client_authorization(challenge, nc=7))).ok
    for nc in (7, 3):
        replay = check(auth, register(client_authorization(challenge, nc=nc)))
        assert replay == AuthResult(AuthOutcome.FAILED, "100", "nonce replay")


def test_rfc2069_response_accepted_once(auth: DigestAuth) -> None:
    challenge = first_challenge(auth, "MD5")
    value = client_authorization(challenge, qop=False)
    assert check(auth, register(value)).ok
    assert check(auth, register(value)).reason == "nonce replay"
    # ...and a nonce used with qop cannot be reused without it.
    challenge = first_challenge(auth, "MD5")
    assert check(auth, register(client_authorization(challenge))).ok
    assert check(auth, register(client_authorization(challenge, qop=False))).reason == (
        "nonce replay"
    )


def test_failed_attempts_do_not_burn_nonce_counts(auth: DigestAuth) -> None:
    challenge = first_challenge(auth)
    bad = check(auth, register(client_authorization(challenge, password="x", nc=9)))
    assert bad.reason == "wrong password"
    assert check(auth, register(client_authorization(challenge, nc=1))).ok


# -- stale and forged nonces -----------------------------------------------------------


def test_stale_nonce(auth: DigestAuth) -> None:
    value = client_authorization(first_challenge(auth))
    assert check(auth, register(value), NOW + 299.9).ok
    value = client_authorization(first_challenge(auth))
    assert check(auth, register(value), NOW + 300).outcome is AuthOutcome.STALE
    assert check(auth, register(value), NOW - 5).outcome is AuthOutcome.STALE  # clock went back
    # RFC 7616 §3.3: stale only with the right password.
    wrong = client_authorization(first_challenge(auth), password="guess")
    assert check(auth, register(wrong), NOW + 300).reason == "wrong password"
    stale = check(auth, register(value), NOW + 300)
    assert auth.challenge_for(stale, REALM, NOW)[0].endswith("stale=true")


def _retarget(nonce: str, ts_ms: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(nonce + "="))
    raw[:8] = ts_ms.to_bytes(8, "big")
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "forge",
    [
        lambda n: "A" * NONCE_LEN,
        lambda n: n[:-2] + ("AA" if n[-2:] != "AA" else "BB"),
        lambda n: _retarget(n, int(NOW * 1000) + 600_000),  # extend its life
        lambda n: n + "A",
        lambda n: "",
        lambda n: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        lambda n: n[:-1] + "+",
    ],
)
def test_forged_nonce(auth: DigestAuth, forge) -> None:  # type: ignore[no-untyped-def]
    challenge = first_challenge(auth)
    nonce = challenge_params(challenge)["nonce"]
    forged = challenge.replace(nonce, forge(nonce))
    result = check(auth, register(client_authorization(forged)), NOW + 1)
    assert result == AuthResult(AuthOutcome.FAILED, "100", "bad nonce")


def test_nonce_of_another_realm(auth: DigestAuth) -> None:
    foreign = auth.challenge("other.test", NOW)[0]
    nonce = challenge_params(foreign)["nonce"]
    mine = first_challenge(auth)
    value = client_authorization(mine.replace(challenge_params(mine)["nonce"], nonce))
    assert check(auth, register(value)).reason == "bad nonce"


def test_nonce_table_is_bounded_and_evicted_nonces_never_replay() -> None:
    auth = DigestAuth(SECRET, max_tracked_nonces=3)
    used = []
    for i in range(5):
        challenge = first_challenge(auth, now=NOW + i)
        assert check(auth, register(client_authorization(challenge)), NOW + i).ok
        used.append(challenge)
        assert auth.tracked_nonces <= 3
    # The first nonce was evicted: its replay is stale (fresh nonce), never OK.
    replay = check(auth, register(client_authorization(used[0])), NOW + 5)
    assert replay.outcome is AuthOutcome.STALE
    assert check(auth, register(client_authorization(used[4])), NOW + 5).reason == "nonce replay"
    # Expired nonces are forgotten when new ones come in.
    fresh = first_challenge(auth, now=NOW + 1000)
    assert check(auth, register(client_authorization(fresh)), NOW + 1000).ok
    assert auth.tracked_nonces == 1


# -- uri, algorithm, qop -----------------------------------------------------------------


def test_uri_mismatch(auth: DigestAuth) -> None:
    value = client_authorization(first_challenge(auth), uri="sip:other.example.com")
    assert check(auth, register(value)) == AuthResult(AuthOutcome.FAILED, "100", "uri mismatch")


def test_uri_trivial_normalisation(auth: DigestAuth) -> None:
    value = client_authorization(first_challenge(auth), uri="SIP:Demo.Centrala.TEST")
    assert check(auth, register(value)).ok


@pytest.mark.parametrize("alg", ["SHA-512-256", "FOO", "SHA-1"])
def test_unknown_algorithm(auth: DigestAuth, alg: str) -> None:
    value = client_authorization(first_challenge(auth), algorithm="SHA-256").replace(
        "algorithm=SHA-256", f"algorithm={alg}"
    )
    result = check(auth, register(value))
    assert result.outcome in (AuthOutcome.FAILED, AuthOutcome.MALFORMED)
    assert result.reason == "unsupported algorithm"


def test_disabled_algorithm() -> None:
    auth = DigestAuth(SECRET, algorithms=("SHA-256",))
    assert len(auth.challenge(REALM, NOW)) == 1
    value = client_authorization(first_challenge(auth), algorithm="MD5")
    assert check(auth, register(value)).reason == "unsupported algorithm"


def test_algorithm_absent_means_md5(auth: DigestAuth) -> None:
    value = client_authorization(first_challenge(auth, "MD5")).replace(", algorithm=MD5", "")
    assert check(auth, register(value)).ok


def test_auth_int_not_offered(auth: DigestAuth) -> None:
    value = client_authorization(first_challenge(auth)).replace("qop=auth", "qop=auth-int")
    assert check(auth, register(value)).reason == "unsupported qop"


# -- which header counts ----------------------------------------------------------------


def test_no_credentials(auth: DigestAuth) -> None:
    assert check(auth, register()).outcome is AuthOutcome.NO_CREDENTIALS
    other = client_authorization(auth.challenge("other.test", NOW)[0])
    assert check(auth, register(other)).outcome is AuthOutcome.NO_CREDENTIALS


def test_regaut01_unknown_scheme_is_no_credentials(auth: DigestAuth, sip_corpora: Path) -> None:
    # RFC 4475 §3.3.7: answer an unknown scheme with a Digest challenge.
    msg = parse_message((sip_corpora / "rfc4475" / "regaut01.dat").read_bytes())
    assert isinstance(msg, Request)
    assert auth.check(msg, "example.com", lookup, NOW).outcome is AuthOutcome.NO_CREDENTIALS


def test_pjproject_seed_is_a_failure_not_a_crash(auth: DigestAuth, sip_corpora: Path) -> None:
    seed = sip_corpora / "pjproject-fuzz-seeds/fuzz-sip/fuzz-sip_seed_corpus/auth_digest.sip"
    msg = parse_message(seed.read_bytes())
    assert isinstance(msg, Request)
    result = auth.check(msg, "example.com", lookup, NOW)
    assert result == AuthResult(AuthOutcome.FAILED, "bob", "bad nonce")


def test_credentials_for_two_realms(auth: DigestAuth) -> None:
    mine = client_authorization(first_challenge(auth))
    other = client_authorization(auth.challenge("other.test", NOW)[0])
    assert check(auth, register(other, mine)).ok
    # One credentials per header field (RFC 3261 §22.3): another scheme's field is skipped whole.
    assert check(auth, register(f"Basic QWxhZGRpbjpvcGVu, {mine}")).outcome is (
        AuthOutcome.NO_CREDENTIALS
    )


def test_two_credentials_for_one_realm_are_malformed(auth: DigestAuth) -> None:
    good = client_authorization(first_challenge(auth))
    bad = client_authorization(first_challenge(auth), password="guess")
    assert check(auth, register(bad, good)).outcome is AuthOutcome.MALFORMED


# -- malformed credentials ---------------------------------------------------------------

GOOD = (
    'Digest username="100", realm="demo.centrala.test", nonce="{n}", uri="sip:demo.centrala.test"'
    ', response="{r}", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="abc"'
)
MALFORMED = {
    "unterminated quote": 'Digest username="100, realm="demo.centrala.test", nonce="x", uri="y"',
    "duplicate param": GOOD + ', username="200"',
    "duplicate param, case": GOOD + ', USERNAME="200"',
    "missing response": GOOD.replace(', response="{r}"', ""),
    "missing nonce": GOOD.replace(' nonce="{n}",', ""),
    "missing username": GOOD.replace('username="100", ', ""),
    "10 KB header": GOOD + ', x="' + "a" * 10_000 + '"',
    "huge username": GOOD.replace('"100"', '"' + "1" * 300 + '"'),
    "empty username": GOOD.replace('"100"', '""'),
    "control char in username": GOOD.replace('"100"', '"10\x000"'),
    "qop without nc": GOOD.replace(" nc=00000001,", ""),
    "nc not 8 hex": GOOD.replace("nc=00000001", "nc=1"),
    "nc without qop": GOOD.replace(" qop=auth,", ""),
    "response not hex": GOOD.replace('response="{r}"', 'response="zz"'),
    "no param list": "Digest",
    "garbage": "Digest !!!",
    "junk between params": GOOD.replace(", algorithm", " junk, algorithm"),
    "param without value": GOOD + ", stale",
    "two quoted strings": GOOD.replace('uri="sip:demo.centrala.test"', 'uri="a" "b"'),
    "trailing backslash": 'Digest username="100\\',
    "empty header": "",
}


@pytest.mark.parametrize("value", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed(auth: DigestAuth, value: str) -> None:
    nonce = challenge_params(first_challenge(auth))["nonce"]
    header = value.replace("{n}", nonce).replace("{r}", "0" * 64)
    result = check(auth, register(header))
    assert result.outcome is AuthOutcome.MALFORMED
    assert result.reason.startswith("malformed header")


def test_lenient_but_sound_param_syntax(auth: DigestAuth) -> None:
    value = client_authorization(first_challenge(auth))
    spaced = value.replace(", ", " ,\t ").replace("Digest ", "digest   ")
    assert check(auth, register(spaced + ', unknown-param=x, other="a,b"')).ok


def test_escaped_quotes_in_values() -> None:
    params = parse_auth_params(r'username="a\"b\\c", realm="x,y", nonce=abc')
    assert params == {"username": 'a"b\\c', "realm": "x,y", "nonce": "abc"}
    with pytest.raises(MalformedDigest):
        parse_auth_params('username="a", username="b"')


# -- account enumeration ------------------------------------------------------------------


def _nonce_blind(values: list[str]) -> tuple[list[str], list[int]]:
    nonces = [challenge_params(v)["nonce"] for v in values]
    blinded = [v.replace(n, "NONCE") for v, n in zip(values, nonces, strict=True)]
    return blinded, [len(n) for n in nonces]


def test_unknown_user_and_wrong_password_are_indistinguishable(
    auth: DigestAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = 0

    def spy(real: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
        def hash_fn(data: bytes) -> Any:
            nonlocal hashes
            hashes += 1
            return real(data)

        return hash_fn

    # HASHES is looked up at every use, also when the module is compiled.
    for name, real in list(digest_mod.HASHES.items()):
        monkeypatch.setitem(digest_mod.HASHES, name, spy(real))
    challenge = first_challenge(auth)
    unknown_request = register(client_authorization(challenge, "999", "s3cret"))
    wrong_request = register(client_authorization(challenge, "100", "guess"))
    hashes = 0
    unknown = check(auth, unknown_request)
    work_unknown, hashes = hashes, 0
    wrong = check(auth, wrong_request)
    assert unknown.outcome is wrong.outcome is AuthOutcome.FAILED
    assert (unknown.reason, wrong.reason) == ("unknown user", "wrong password")
    assert work_unknown == hashes > 0  # the unknown user was hashed too (dummy HA1)
    answer_unknown = auth.challenge_for(unknown, REALM, NOW)
    answer_wrong = auth.challenge_for(wrong, REALM, NOW)
    blind_unknown, lengths_unknown = _nonce_blind(answer_unknown)
    blind_wrong, lengths_wrong = _nonce_blind(answer_wrong)
    assert [v.encode() for v in blind_unknown] == [v.encode() for v in blind_wrong]
    assert lengths_unknown == lengths_wrong == [NONCE_LEN, NONCE_LEN]
    assert answer_unknown != answer_wrong  # fresh nonces every time


def test_credentials_of_another_realm_count_as_unknown(auth: DigestAuth) -> None:
    elsewhere = Credentials.from_password("100", "other.test", "s3cret")
    value = client_authorization(first_challenge(auth))
    result = auth.check(register(value), REALM, lambda u: elsewhere, NOW)
    assert result == AuthResult(AuthOutcome.FAILED, "100", "unknown user")


# -- HA1-only credentials -----------------------------------------------------------------


def test_ha1_only_credentials() -> None:
    full = USERS["100"]
    md5_only = Credentials.from_ha1("100", REALM, md5=full.ha1["MD5"])
    auth = DigestAuth(SECRET, algorithms=("MD5",))
    value = client_authorization(first_challenge(auth, "MD5"))
    assert auth.check(register(value), REALM, lambda u: md5_only, NOW).ok
    both = DigestAuth(SECRET)
    sha = client_authorization(first_challenge(both, "SHA-256"))
    result = both.check(register(sha), REALM, lambda u: md5_only, NOW)
    assert result == AuthResult(AuthOutcome.FAILED, "100", "no HA1 for algorithm")
    sha_only = Credentials.from_ha1("100", REALM, sha256=full.ha1["SHA-256"])
    assert both.check(register(sha), REALM, lambda u: sha_only, NOW).ok


def test_username_is_returned_for_the_aor_check(auth: DigestAuth) -> None:
    # CVE-2009-3727: the caller compares result.username with the To AOR's owner.
    value = client_authorization(first_challenge(auth))
    req = register(value)
    req.set("To", f"<sip:200@{REALM}>")
    result = check(auth, req)
    assert result.ok and result.username == "100" and str(req.to.uri) == f"sip:200@{REALM}"


# -- properties ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_in_authorization_never_raise(data: bytes) -> None:
    auth = DigestAuth(SECRET)
    raw = (
        b"REGISTER sip:demo.centrala.test SIP/2.0\r\nCall-ID: x\r\nAuthorization: "
        + data
        + b"\r\nContent-Length: 0\r\n\r\n"
    )
    try:
        msg = parse_message(raw)
    except ValueError:
        return
    if isinstance(msg, Request):
        result = auth.check(msg, REALM, lookup, NOW)
        assert result.outcome is not AuthOutcome.OK


_PIECES = st.sampled_from(
    [
        'username="100"',
        "realm=",
        f'"{REALM}"',
        "nonce=",
        "uri=",
        f'"{RURI}"',
        "response=",
        "qop=auth",
        "nc=00000001",
        'cnonce="a"',
        "algorithm=MD5",
        ",",
        " ",
        '"',
        "\\",
        "=",
        "\udcff",
        "\x00",
        "Digest ",
        "a" * 300,
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_param_soup_never_raises(value: str) -> None:
    auth = DigestAuth(SECRET)
    result = auth.check(register("Digest " + value), REALM, lookup, NOW)
    assert result.outcome is not AuthOutcome.OK
