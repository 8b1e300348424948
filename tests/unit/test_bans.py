"""Brute-force protection: thresholds, windows, bans, bounds, security log and fail2ban filter."""

from __future__ import annotations

import configparser
import logging
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switch.auth import Ban, BanList, BanPolicy, log_auth_failure, log_ban, log_unban

T0 = 1_795_000_000.0
IP = "203.0.113.5"
FILTER = Path(__file__).resolve().parents[2] / "config" / "fail2ban" / "centrala.conf"


def fail(
    bans: BanList,
    n: int,
    ip: str = IP,
    user: str | None = "100@demo",
    t: float = T0,
    step: float = 1.0,
) -> list[Ban | None]:
    return [bans.record_failure(ip, user, t + i * step) for i in range(n)]


# -- per-IP threshold, window, ban lifetime -----------------------------------------------


def test_ip_threshold() -> None:
    bans = BanList(BanPolicy())
    assert fail(bans, 4) == [None] * 4 and not bans.is_banned(IP, T0 + 4)
    ban = bans.record_failure(IP, "100@demo", T0 + 4)
    assert ban == Ban(IP, T0 + 4, T0 + 604, 5, "ip-failures")
    assert bans.is_banned(IP, T0 + 5) and not bans.is_banned("203.0.113.6", T0 + 5)
    assert bans.record_failure(IP, "100@demo", T0 + 6) is None  # a Ban is returned once
    assert bans.bans(T0 + 6) == [ban]


def test_failures_outside_the_window_do_not_add_up() -> None:
    bans = BanList(BanPolicy(max_failures=5, window_s=60))
    assert fail(bans, 20, step=16) == [None] * 20  # 5 failures always span 64 s
    assert not bans.is_banned(IP, T0 + 400)
    assert fail(bans, 5, t=T0 + 1000, step=14)[-1] is not None  # 5 within 56 s


def test_ban_expires_lazily_and_the_count_restarts() -> None:
    bans = BanList(BanPolicy(ban_s=600))
    ban = fail(bans, 5)[-1]
    assert ban is not None
    assert bans.is_banned(IP, ban.until - 0.001) and not bans.is_banned(IP, ban.until)
    assert bans.bans(ban.until) == []
    assert bans.expire(ban.until - 1) == [] and bans.expire(ban.until) == [ban]
    assert len(bans) == 0
    assert fail(bans, 4, t=ban.until) == [None] * 4  # the failures before the ban are gone


# -- per-username threshold and what a success clears --------------------------------------


def test_per_user_threshold_across_many_sources() -> None:
    bans = BanList(BanPolicy(max_failures=5, max_failures_per_user=20))
    results = [bans.record_failure(f"198.51.100.{i}", "100@demo", T0 + i) for i in range(20)]
    assert results[:19] == [None] * 19
    assert results[19] == Ban("198.51.100.19", T0 + 19, T0 + 619, 20, "user-failures")
    assert not bans.is_banned("198.51.100.3", T0 + 20)
    # While the account stays over the threshold, every new guesser is banned at once.
    late = bans.record_failure("192.0.2.77", "100@demo", T0 + 21)
    assert late is not None and late.reason == "user-failures"
    assert bans.record_failure("192.0.2.78", "200@demo", T0 + 21) is None


def test_success_forgives_the_owners_typos_only() -> None:
    bans = BanList(BanPolicy(max_failures=100, max_failures_per_user=20))
    fail(bans, 10, ip="192.0.2.1")  # the owner's phone, wrong password
    for i in range(9):
        bans.record_failure(f"198.51.100.{i}", "100@demo", T0 + 10 + i)  # a distributed guesser
    bans.record_success("192.0.2.1", "100@demo")  # the owner fixes the password
    # The guesser's 9 failures remain: 10 more reach the threshold, not 11 + 10.
    results = [
        bans.record_failure(f"198.51.100.{50 + i}", "100@demo", T0 + 20 + i) for i in range(11)
    ]
    assert results[:10] == [None] * 10 and results[10] is not None


def test_success_never_resets_the_ip_count() -> None:
    bans = BanList(BanPolicy(max_failures=5))
    for i in range(4):
        assert bans.record_failure(IP, f"{200 + i}@demo", T0 + i) is None  # guessing others
        bans.record_success(IP, "100@demo")  # interleaved with its own valid account
        bans.record_success(IP, f"{200 + i}@demo")
    assert bans.record_failure(IP, "300@demo", T0 + 5) is not None


def test_failure_without_username_counts_for_the_ip() -> None:
    bans = BanList(BanPolicy(max_failures=2))
    assert bans.record_failure(IP, None, T0) is None
    assert bans.record_failure(IP, None, T0 + 1) is not None


# -- manual operations, restore, bounds ------------------------------------------------------


def test_remove() -> None:
    bans = BanList(BanPolicy())
    fail(bans, 5)
    assert bans.remove(IP) and not bans.is_banned(IP, T0 + 10)
    assert not bans.remove(IP)
    assert fail(bans, 4, t=T0 + 10) == [None] * 4  # the IP starts from zero


def test_restore_persisted_bans() -> None:
    bans = BanList(BanPolicy())
    saved = [
        Ban(IP, T0 - 100, T0 + 500, 5, "ip-failures"),
        Ban("2001:db8::5", T0 - 900, T0 - 300, 7, "ip-failures"),
    ]
    for ban in saved:
        bans.add(ban)
    assert bans.is_banned(IP, T0) and not bans.is_banned("2001:db8::5", T0)
    assert bans.bans(T0) == saved[:1]
    assert bans.record_failure(IP, "x", T0) is None


def test_trackers_are_bounded() -> None:
    bans = BanList(BanPolicy(max_failures=3), max_entries=10)
    for i in range(1000):
        bans.record_failure(f"10.0.{i // 256}.{i % 256}", f"user{i}", T0 + i * 0.001)
    assert bans.tracked == (10, 10)
    # The most recently failing sources are the ones kept.
    assert fail(bans, 2, ip="10.0.3.231", user=None, t=T0 + 2)[-1] is not None


def test_bans_are_bounded_oldest_first() -> None:
    bans = BanList(BanPolicy(max_failures=1), max_entries=3)
    for i in range(5):
        bans.record_failure(f"192.0.2.{i}", None, T0 + i)
    assert len(bans) == 3
    assert [b.ip for b in bans.bans(T0 + 5)] == ["192.0.2.2", "192.0.2.3", "192.0.2.4"]


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        BanPolicy(max_failures=0)
    with pytest.raises(ValueError):
        BanPolicy(window_s=0)


# -- security log lines ----------------------------------------------------------------------


def security_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "centrala.security"]


@pytest.fixture
def seclog(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="centrala.security")
    return caplog


def test_log_formats(seclog: pytest.LogCaptureFixture) -> None:
    log_auth_failure(IP, 5060, "100", "demo.centrala.test", "REGISTER", "wrong password")
    log_auth_failure("2001:DB8::5", 5061, None, "demo", "INVITE", "malformed header: dup")
    until = datetime(2026, 11, 23, 16, 0, tzinfo=UTC).timestamp()
    log_ban(Ban(IP, until - 600, until, 5, "ip-failures"))
    log_unban(IP, "expired")
    log_unban("2001:db8::5", "operator request")
    assert security_lines(seclog) == [
        (
            'SECURITY auth-failed src=203.0.113.5:5060 user="100" realm="demo.centrala.test"'
            " method=REGISTER reason=wrong-password"
        ),
        (
            'SECURITY auth-failed src=[2001:db8::5]:5061 user="-" realm="demo" method=INVITE'
            " reason=malformed-header-dup"
        ),
        "SECURITY banned src=203.0.113.5 until=2026-11-23T16:00:00Z failures=5 reason=ip-failures",
        "SECURITY unbanned src=203.0.113.5 reason=expired",
        "SECURITY unbanned src=2001:db8::5 reason=operator-request",
    ]
    assert [r.levelno for r in seclog.records] == [logging.WARNING] * 3 + [logging.INFO] * 2


INJECTIONS = [
    '100" src=198.51.100.7:5060 user="x',
    '100\\" src=198.51.100.7:5060 user=\\"x',
    '100\r\nSECURITY auth-failed src=198.51.100.7:5060 user="a" realm="b" method=X reason=y',
    "100\udcff\x00\x1b[31m\u2028",
    "x" * 5000,
]


@pytest.mark.parametrize("username", INJECTIONS)
def test_crafted_username_cannot_forge_fields(
    seclog: pytest.LogCaptureFixture, username: str
) -> None:
    log_auth_failure(IP, 5060, username, "demo", "REG\nISTER", "unknown user")
    (line,) = security_lines(seclog)
    assert "\n" not in line and "\r" not in line and "\u2028" not in line
    assert line.startswith('SECURITY auth-failed src=203.0.113.5:5060 user="')
    assert len(line) < 1200
    line.encode("utf-8")  # no lone surrogates reach the log handler
    fields = STRICT_AUTH_LINE.fullmatch(line)
    assert fields is not None and fields.group("src") == "203.0.113.5:5060"


STRICT_AUTH_LINE = re.compile(
    r'SECURITY auth-failed src=(?P<src>\S+) user="(?:[^"\\]|\\.)*" realm="(?:[^"\\]|\\.)*"'
    r" method=[\w.-]+ reason=[\w.-]+"
)


# -- the fail2ban filter ------------------------------------------------------------------------

# fail2ban's <HOST> (server/failregex.py R_HOST): IPv4 (maybe v4-mapped), IPv6, or a DNS name,
# IP addresses optionally in brackets.
_IP4 = r"(?:\d{1,3}\.){3}\d{1,3}"
_IP6 = r"(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)"
_HOST = rf"(?:\[?(?:(?:::f{{4,6}}:)?(?P<ip4>{_IP4})|(?P<ip6>{_IP6}))\]?|(?P<dns>[\w\-.^_]*\w))"


def load_filter(mode: str | None = None) -> tuple[re.Pattern[str], list[re.Pattern[str]]]:
    """prefregex and failregexes of the filter, tags resolved the way fail2ban does."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(FILTER)
    section = dict(parser["Definition"])
    if mode is not None:
        section["mode"] = mode

    def resolve(text: str) -> str:
        while True:
            new = re.sub(r"<([a-z][\w-]*)>", lambda m: section.get(m.group(1), m.group(0)), text)
            if new == text:
                break
            text = new
        text = text.replace("<HOST>", _HOST)
        return text.replace("<F-CONTENT>", "(?P<content>").replace("</F-CONTENT>", ")")

    pref = re.compile(resolve(section["prefregex"]))
    fails = [re.compile(resolve(r)) for r in section["failregex"].splitlines() if r.strip()]
    return pref, fails


def f2b_hosts(line: str, mode: str | None = None) -> list[str]:
    """The hosts fail2ban would count for one log line (prefix as logging writes it)."""
    pref, fails = load_filter(mode)
    out = []
    for physical in f"WARNING centrala.security: {line}".splitlines():
        m = pref.search(physical)
        if m is None:
            continue
        for rx in fails:
            hit = rx.search(m.group("content"))
            if hit is not None:
                out.append(hit.group("ip4") or hit.group("ip6") or hit.group("dns"))
    return out


def test_filter_matches_auth_failures(seclog: pytest.LogCaptureFixture) -> None:
    log_auth_failure(IP, 5060, "100", "demo.centrala.test", "REGISTER", "wrong password")
    log_auth_failure("2001:db8::5", 5060, 'we"ird\\', 'de"mo', "INVITE", "unknown user")
    log_ban(Ban(IP, T0, T0 + 600, 5, "ip-failures"))
    log_unban(IP, "expired")
    lines = security_lines(seclog)
    assert [f2b_hosts(line) for line in lines] == [[IP], ["2001:db8::5"], [], []]


def test_filter_banned_mode(seclog: pytest.LogCaptureFixture) -> None:
    log_ban(Ban(IP, T0, T0 + 600, 5, "ip-failures"))
    log_ban(Ban("2001:db8::5", T0, T0 + 600, 20, "user-failures"))
    log_auth_failure(IP, 5060, "100", "demo", "REGISTER", "wrong password")
    log_unban(IP, "expired")
    hosts = [f2b_hosts(line, "banned") for line in security_lines(seclog)]
    assert hosts == [[IP], ["2001:db8::5"], [], []]


@pytest.mark.parametrize("username", INJECTIONS)
def test_filter_ignores_injected_hosts(seclog: pytest.LogCaptureFixture, username: str) -> None:
    log_auth_failure(IP, 5060, username, "demo", "REGISTER", "unknown user")
    (line,) = security_lines(seclog)
    assert f2b_hosts(line) == [IP]


def test_filter_would_catch_an_unescaped_injection() -> None:
    # Guards the test itself: a raw newline in a username would forge a second line.
    forged = (
        'auth-failed src=1.2.3.4:1 user="a"\nSECURITY auth-failed src=198.51.100.7:5060 '
        'user="a" realm="b" method=X reason=y'
    )
    assert "198.51.100.7" in f2b_hosts("SECURITY " + forged)


def test_real_fail2ban_regex(seclog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    log_auth_failure(IP, 5060, "100", "demo", "REGISTER", "wrong password")
    log_auth_failure("203.0.113.9", 5060, INJECTIONS[0], "demo", "REGISTER", "unknown user")
    log_auth_failure("2001:db8::5", 5060, "100", "demo", "REGISTER", "wrong password")
    log = tmp_path / "centrala.log"
    log.write_text(
        "".join(
            f"2026-11-23 16:00:0{i},000 WARNING centrala.security: {line}\n"
            for i, line in enumerate(security_lines(seclog))
        )
    )
    out = subprocess.run(
        ["fail2ban-regex", "--print-all-matched", str(log), str(FILTER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "Lines: 3 lines, 0 ignored, 3 matched" in out
    assert "198.51.100.7" not in out.split("Lines:")[0].split("Failregex:")[1]
