"""Brute-force bans and account-enumeration resistance of the real process.

The attacker sends from its own loopback address (127.0.0.5 / 127.0.0.6) so
that a ban never hits the harness, whose readiness and liveness OPTIONS
probes come from 127.0.0.1.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Centrala
from tests.e2e.registrar_support import (
    DOMAIN,
    NO_QUALIFY,
    SIPP_SECURITY,
    Authority,
    SipResponse,
    SipUdpClient,
    digest_authorization,
    licensed_config,
    number,
    ops,
    password,
    received_messages,
    wait_for,
)
from tests.e2e.sipp import SippResult, run_sipp

pytestmark = pytest.mark.usefixtures("sipp")  # fails, never skips, without SIPp

ATTACKER = "127.0.0.5"
MAX_FAILURES = 4
StartCentrala = Callable[..., Centrala]
ConfigCopy = Callable[..., Path]


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("authority"))


def _start(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority, ban_s: float
) -> Centrala:
    config = licensed_config(
        config_copy,
        authority,
        users=3,
        ports="10",
        registrar=NO_QUALIFY,
        security={**SIPP_SECURITY, "max_auth_failures": MAX_FAILURES, "ban_s": ban_s},
    )
    return start_centrala(config)


def _sipp_as(
    c: Centrala,
    scenario: str,
    secret: str,
    workdir: Path,
    *,
    source: str,
    calls: int = 1,
    timeout_s: float = 10,
) -> SippResult:
    user = number(0)
    return run_sipp(
        scenario,
        c.target,
        calls=calls,
        rate=50,
        timeout_s=timeout_s,
        extra=[
            "-i",
            source,  # after the harness's -i: the last one wins
            "-s",
            user,
            "-au",
            user,
            "-ap",
            secret,
            "-auth_uri",
            DOMAIN,
            "-key",
            "expires",
            "300",
        ],
        workdir=workdir,
        trace_msg=True,
    )


def _guess_passwords(c: Centrala, workdir: Path) -> None:
    """MAX_FAILURES wrong passwords from ATTACKER: each one challenged again (401)."""
    res = _sipp_as(
        c,
        "register_wrong_password.xml",
        "guess-123",
        workdir,
        source=ATTACKER,
        calls=MAX_FAILURES,
    )
    assert res.returncode == 0 and res.successful == MAX_FAILURES, res.report()
    sources = set(re.findall(r"Via: SIP/2.0/UDP ([\d.]+):", res.messages))
    assert sources == {ATTACKER}, f"SIPp did not send from {ATTACKER}: {sources}"


def _login(c: Centrala, workdir: Path, source: str, timeout_s: float = 10) -> SippResult:
    return _sipp_as(
        c,
        "register_device.xml",
        password(number(0)),
        workdir,
        source=source,
        timeout_s=timeout_s,
    )


def _assert_dropped(res: SippResult) -> None:
    """Nothing at all came back: the banned source's requests are dropped."""
    assert res.returncode != 0, res.report()
    assert received_messages(res.messages) == [], res.report()


def _banned_ips(c: Centrala) -> list[str]:
    out = ops(c, "bans").stdout
    return [line.split("\t")[0] for line in out.splitlines() if "\t" in line]


def test_brute_force_bans_the_source_until_the_operator_lifts_it(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority, tmp_path: Path
) -> None:
    c = _start(start_centrala, config_copy, authority, ban_s=600)
    _guess_passwords(c, tmp_path / "guess")

    log = c.log_text()
    failed = re.findall(
        rf'SECURITY auth-failed src={re.escape(ATTACKER)}:\d+ user="{number(0)}" '
        rf'realm="{re.escape(DOMAIN)}" method=REGISTER reason=wrong-password',
        log,
    )
    assert len(failed) == MAX_FAILURES, c.log_tail()
    assert re.search(
        rf"SECURITY banned src={re.escape(ATTACKER)} until=\S+Z failures={MAX_FAILURES} "
        r"reason=ip-failures",
        log,
    ), c.log_tail()
    assert wait_for(lambda: _banned_ips(c) == [ATTACKER], timeout=5), ops(c, "bans").stdout

    # the right password does not help while banned; other sources are served
    _assert_dropped(_login(c, tmp_path / "banned", ATTACKER, timeout_s=2))
    other = _login(c, tmp_path / "other", "127.0.0.1")
    assert other.returncode == 0, other.report()

    lifted = ops(c, "bans", "--remove", ATTACKER)
    assert f"ban of {ATTACKER} lifted" in lifted.stdout, lifted.stdout
    assert "no address is banned" in ops(c, "bans").stdout
    assert f"SECURITY unbanned src={ATTACKER} reason=operator" in c.log_text(), c.log_tail()
    again = _login(c, tmp_path / "lifted", ATTACKER)
    assert again.returncode == 0, again.report()
    not_again = ops(c, "bans", "--remove", ATTACKER, check=False)
    assert not_again.returncode == 1 and "is not banned" in not_again.stdout


def test_ban_ends_by_itself_after_ban_s(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority, tmp_path: Path
) -> None:
    ban_s = 3.0
    c = _start(start_centrala, config_copy, authority, ban_s=ban_s)
    _guess_passwords(c, tmp_path / "guess")
    _assert_dropped(_login(c, tmp_path / "banned", ATTACKER, timeout_s=1))
    assert wait_for(
        lambda: f"SECURITY unbanned src={ATTACKER} reason=expired" in c.log_text(),
        timeout=ban_s + 3,
    ), c.log_tail()
    ok = _login(c, tmp_path / "after", ATTACKER)
    assert ok.returncode == 0, ok.report()


# --------------------------------------------------------------------------- enumeration

NONCE_RE = re.compile(r'nonce="([^"]*)"')


def _register(phone: SipUdpClient, user: str, authorization: str | None = None) -> SipResponse:
    resp = phone.request(user, expires=300, authorization=authorization)
    assert resp is not None, f"no answer to REGISTER {user}"
    return resp


def _status_line(resp: SipResponse) -> str:
    return resp.raw.split("\r\n", 1)[0]


def _assert_same_challenge(known: SipResponse, unknown: SipResponse) -> None:
    assert known.status == unknown.status == 401, known.raw + unknown.raw
    assert _status_line(known) == _status_line(unknown)
    assert [k for k, _ in known.headers] == [k for k, _ in unknown.headers], known.raw + unknown.raw
    per_request = {"via", "from", "to", "call-id", "cseq", "www-authenticate", "date"}
    for (name, a), (_, b) in zip(known.headers, unknown.headers, strict=True):
        if name.lower() not in per_request:
            assert a == b, f"{name}: {a!r} != {b!r}"
    challenges = zip(known.all("WWW-Authenticate"), unknown.all("WWW-Authenticate"), strict=True)
    for a, b in challenges:
        assert NONCE_RE.sub('nonce=""', a) == NONCE_RE.sub('nonce=""', b), (a, b)
        nonces = NONCE_RE.findall(a) + NONCE_RE.findall(b)
        assert len(nonces) == 2 and len(nonces[0]) == len(nonces[1]), (a, b)
        assert nonces[0] != nonces[1]


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_unknown_user_is_challenged_like_a_known_one(centrala: Centrala, algorithm: str) -> None:
    """The repository's config: demo user 100 exists, 9999 does not; both
    digest algorithms are offered (SHA-256 first)."""
    target = (centrala.host, centrala.udp_port)
    with SipUdpClient(target, "127.0.0.6") as a, SipUdpClient(target, "127.0.0.7") as b:
        known, unknown = _register(a, "100"), _register(b, "9999")
        _assert_same_challenge(known, unknown)
        assert len(known.all("WWW-Authenticate")) == 2, known.raw

        wrong_known = _register(
            a, "100", digest_authorization(known, "100", "not-it", algorithm=algorithm)
        )
        wrong_unknown = _register(
            b, "9999", digest_authorization(unknown, "9999", "not-it", algorithm=algorithm)
        )
        _assert_same_challenge(wrong_known, wrong_unknown)
        _assert_same_challenge(wrong_known, known)  # a failure looks like a first challenge
