"""Brute-force protection: failure counting, IP bans and security log lines (sans-IO).

Theory of operation
-------------------
The caller reports every authentication failure with ``record_failure(ip,
username, now)`` and every success with ``record_success(ip, username)``, and
drops requests from sources for which ``is_banned(ip, now)`` holds before
parsing more than it must.  Two sliding windows count failures:

* per source IP: ``max_failures`` failures within ``window_s`` ban the IP
  (password guessing and account enumeration from one host: svcrack, svwar);
* per username: ``max_failures_per_user`` failures within ``window_s``, from
  any number of sources, ban the IP that made the last one — and every IP
  that fails on that user while it stays over the threshold (a distributed
  attack on one account).  Pass a realm-qualified name (``"100@demo"``).

A window is a deque of the last N failure times, so "N failures within the
window" is one comparison and a tracker never holds more than N entries.

What a success clears — a deliberate choice.  ``record_success`` never
touches the IP's counter: otherwise an attacker holding one valid account
(its own extension in a hosted PBX) could interleave logins to reset its
count and guess other accounts for ever.  It clears, from the username's
counter, only the failures that came *from that IP*: the owner's own typos
are forgiven, while failures from other sources stay — a distributed guesser
cannot have its count reset by the real phone re-registering every minute.
The cost: a NAT shared by many phones, one of them misconfigured, gets
banned; whitelist trusted networks before calling ``record_failure``.

Bans expire lazily: ``is_banned`` compares ``until`` with ``now``; the
housekeeping tick calls ``expire(now)`` to drop them and log
``log_unban(ip, "expired")``.  Every table is bounded by ``max_entries``
(the least recently failing tracker, the oldest ban, goes first).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

_T = TypeVar("_T")

security_log = logging.getLogger("centrala.security")


@dataclass(frozen=True, slots=True)
class BanPolicy:
    """Thresholds, built by the caller from the configuration."""

    max_failures: int = 5  # per source IP within window_s
    window_s: float = 60.0
    ban_s: float = 600.0
    max_failures_per_user: int = 20  # per username, all sources, within window_s

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.max_failures_per_user < 1:
            raise ValueError("failure thresholds must be at least 1")
        if self.window_s <= 0 or self.ban_s <= 0:
            raise ValueError("window and ban durations must be positive")


@dataclass(frozen=True, slots=True)
class Ban:
    ip: str
    since: float  # epoch seconds
    until: float
    failures: int
    reason: str  # "ip-failures", "user-failures", or what an operator gave

    def active(self, now: float) -> bool:
        return now < self.until


class BanList:
    """Failure trackers and active bans; every method is O(1) amortised."""

    def __init__(self, policy: BanPolicy, max_entries: int = 100_000) -> None:
        self.policy = policy
        self._max = max(1, max_entries)
        self._by_ip: dict[str, deque[float]] = {}
        self._by_user: dict[str, deque[tuple[float, str]]] = {}
        self._bans: dict[str, Ban] = {}

    def __len__(self) -> int:
        """Number of ban entries held (expired ones until ``expire`` runs)."""
        return len(self._bans)

    @property
    def tracked(self) -> tuple[int, int]:
        """(IP trackers, username trackers) currently held."""
        return len(self._by_ip), len(self._by_user)

    # -- queries --------------------------------------------------------------
    def is_banned(self, ip: str, now: float) -> bool:
        ban = self._bans.get(ip)
        return ban is not None and now < ban.until

    def bans(self, now: float) -> list[Ban]:
        return [b for b in self._bans.values() if now < b.until]

    # -- failures and successes -----------------------------------------------
    def record_failure(self, ip: str, username: str | None, now: float) -> Ban | None:
        """Count a failure; the new ``Ban`` when this one crosses a threshold."""
        if self.is_banned(ip, now):
            return None  # already banned: a Ban is returned once, when made
        policy = self.policy
        by_ip = _touch(self._by_ip, ip, policy.max_failures, self._max)
        by_ip.append(now)
        by_user = None
        if username is not None:
            by_user = _touch(self._by_user, username, policy.max_failures_per_user, self._max)
            by_user.append((now, ip))
        if _full(by_ip, now, policy.window_s):
            return self._ban(ip, now, len(by_ip), "ip-failures")
        if by_user is not None and _full(by_user, now, policy.window_s):
            return self._ban(ip, now, len(by_user), "user-failures")
        return None

    def record_success(self, ip: str, username: str) -> None:
        """Forget ``username``'s failures that came from ``ip`` (see the module doc)."""
        window = self._by_user.get(username)
        if window is None:
            return
        kept = [entry for entry in window if entry[1] != ip]
        if not kept:
            del self._by_user[username]
        elif len(kept) != len(window):
            self._by_user[username] = deque(kept, maxlen=window.maxlen)

    # -- bans -----------------------------------------------------------------
    def _ban(self, ip: str, now: float, failures: int, reason: str) -> Ban:
        self._by_ip.pop(ip, None)  # a fresh count once the ban is over
        ban = Ban(ip, now, now + self.policy.ban_s, failures, reason)
        self.add(ban)
        return ban

    def add(self, ban: Ban) -> None:
        """Install a ban (a new one, or one restored from storage at start)."""
        self._bans.pop(ban.ip, None)
        while len(self._bans) >= self._max:
            del self._bans[next(iter(self._bans))]
        self._bans[ban.ip] = ban

    def remove(self, ip: str) -> bool:
        """Lift a ban by hand; True if there was one.  The IP's count restarts."""
        self._by_ip.pop(ip, None)
        return self._bans.pop(ip, None) is not None

    def expire(self, now: float) -> list[Ban]:
        """Drop the bans that are over and return them (for ``log_unban``)."""
        over = [b for b in self._bans.values() if now >= b.until]
        for ban in over:
            del self._bans[ban.ip]
        return over


def _touch(table: dict[str, deque[_T]], key: str, size: int, max_entries: int) -> deque[_T]:
    """The tracker of ``key``, moved to the young end; the oldest evicted if full."""
    window = table.pop(key, None)
    if window is None:
        window = deque(maxlen=size)
        while len(table) >= max_entries:
            del table[next(iter(table))]
    table[key] = window
    return window


def _full(window: deque[float] | deque[tuple[float, str]], now: float, span: float) -> bool:
    """As many failures as the deque holds (its threshold), all within ``span``."""
    if len(window) != window.maxlen:
        return False
    first = window[0]
    return now - (first[0] if isinstance(first, tuple) else first) < span


# ---------------------------------------------------------------------------
# Security log lines (matched by config/fail2ban/centrala.conf)
# ---------------------------------------------------------------------------
#   SECURITY auth-failed src=203.0.113.5:5060 user="100" realm="demo" method=REGISTER reason=wrong-password
#   SECURITY banned src=203.0.113.5 until=2026-11-23T16:00:00Z failures=5 reason=ip-failures
#   SECURITY unbanned src=203.0.113.5 reason=expired
# ``src`` is always the first field and always an address we formatted; every
# peer-controlled text is a quoted string whose '"', '\\' and non-printable
# characters are escaped, so it can neither end the quotes nor start a line.

_NON_WORD_RE = re.compile(r"[^A-Za-z0-9._-]+")
_UNSAFE_RE = re.compile(r'[\x00-\x1f\x7f-\x9f"\\\u2028\u2029\ud800-\udfff]')


def log_quote(text: str | None, limit: int = 256) -> str:
    """A peer-controlled value as a safe quoted string (``"-"`` when absent)."""
    if text is None:
        return '"-"'
    cut = text[:limit]
    body = _UNSAFE_RE.sub(_escape_char, cut)
    return f'"{body}{"..." if len(text) > limit else ""}"'


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    if c in '"\\':
        return "\\" + c
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def log_word(text: str) -> str:
    """A bare word (method, reason): each run of other characters becomes one '-'."""
    return _NON_WORD_RE.sub("-", text.strip())[:64].strip("-") or "-"


def format_ip(ip: str) -> str:
    """Canonical text of an address; '-' when it is not one (never peer text)."""
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return "-"


def format_src(ip: str, port: int) -> str:
    host = format_ip(ip)
    return f"[{host}]:{int(port)}" if ":" in host else f"{host}:{int(port)}"


def format_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def log_auth_failure(
    ip: str, port: int, username: str | None, realm: str, method: str, reason: str
) -> None:
    security_log.warning(
        "SECURITY auth-failed src=%s user=%s realm=%s method=%s reason=%s",
        format_src(ip, port),
        log_quote(username),
        log_quote(realm),
        log_word(method),
        log_word(reason),
    )


def log_ban(ban: Ban) -> None:
    security_log.warning(
        "SECURITY banned src=%s until=%s failures=%d reason=%s",
        format_ip(ban.ip),
        format_time(ban.until),
        ban.failures,
        log_word(ban.reason),
    )


def log_unban(ip: str, why: str) -> None:
    security_log.info("SECURITY unbanned src=%s reason=%s", format_ip(ip), log_word(why))


__all__ = [
    "Ban",
    "BanList",
    "BanPolicy",
    "log_auth_failure",
    "log_ban",
    "log_quote",
    "log_unban",
    "security_log",
]
