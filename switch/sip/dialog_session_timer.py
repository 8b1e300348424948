"""Session timers: Session-Expires, Min-SE and who refreshes when (RFC 4028).

Theory of operation
-------------------
Pure functions and frozen values, no state machine: each INVITE or UPDATE
that refreshes the session is negotiated afresh, and its outcome is a
``SessionTimer`` (interval, refresher, whether that is us).  The call layer
keeps the current ``SessionTimer`` of a dialog and arms one deadline from it:

* the refresher sends a re-INVITE/UPDATE at half the interval (§10);
* the other side sends BYE if no refresh arrived by
  ``interval - min(32, interval / 3)`` (§10).

UAS (§9): ``uas_negotiate(request)`` answers ``422`` with our ``Min-SE`` when
the requested interval is below it (§5), else picks the interval (never below
the request's Min-SE nor ours) and the refresher (the request's choice if
the UAC supports the extension, else ours; ``uas`` if it does not support
it) and lists the headers for the 2xx (``Require: timer`` when the UAC must
refresh).  UAC (§7): ``uac_request_headers`` for the request,
``uac_retry_interval`` after a 422 (§7.3), ``uac_from_2xx`` for the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .errors import MalformedMessage
from .grammar import format_params, get_param, parse_params, parse_uint
from .headers import parse_token_list
from .message import Message, Response

OPTION_TAG = "timer"  # RFC 4028 §3
MIN_SE_FLOOR = 90  # RFC 4028 §4: Session-Expires / Min-SE never below 90 s
DEFAULT_MIN_SE = 90
DEFAULT_INTERVAL = 1800  # RFC 4028 §4: RECOMMENDED 30 minutes
_MAX_DELTA = 2**32 - 1


class Refresher(Enum):
    UAC = "uac"
    UAS = "uas"


def _delta_and_params(text: str, header: str) -> tuple[int, tuple[tuple[str, str | None], ...]]:
    value, semi, rest = text.partition(";")
    delta = parse_uint(value, header, _MAX_DELTA)
    if delta == 0:
        raise MalformedMessage(f"{header} out of range")
    return delta, parse_params(semi + rest, f"{header} header") if semi else ()


@dataclass(frozen=True, slots=True)
class SessionExpires:
    """``Session-Expires: 1800;refresher=uac`` (RFC 4028 §4; compact form ``x``)."""

    interval: int
    refresher: Refresher | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, interval: int, refresher: Refresher | None = None) -> None:
        self.interval = interval  # type: ignore[misc]
        self.refresher = refresher  # type: ignore[misc]

    @classmethod
    def parse(cls, text: str) -> SessionExpires:
        interval, params = _delta_and_params(text, "Session-Expires")
        who = get_param(params, "refresher")
        if who is None:
            return cls(interval)
        try:
            return cls(interval, Refresher(who.lower()))
        except ValueError:
            raise MalformedMessage("Malformed refresher parameter") from None

    def __str__(self) -> str:
        params = () if self.refresher is None else (("refresher", self.refresher.value),)
        return f"{self.interval}{format_params(params)}"


def session_expires_of(msg: Message) -> SessionExpires | None:
    """The Session-Expires of ``msg``, None if absent; MalformedMessage if bad."""
    value = msg.get("session-expires")
    return None if value is None else SessionExpires.parse(value)


def min_se_of(msg: Message) -> int | None:
    """The Min-SE of ``msg`` (RFC 4028 §5), None if absent; MalformedMessage if bad."""
    value = msg.get("min-se")
    return None if value is None else _delta_and_params(value, "Min-SE")[0]


def supports_timer(msg: Message) -> bool:
    """The sender knows the extension: ``timer`` in Supported or Require (§7.1)."""
    tags = parse_token_list(msg.get_all("supported") + msg.get_all("require"))
    return OPTION_TAG in (t.lower() for t in tags)


@dataclass(frozen=True, slots=True)
class SessionTimer:
    """The negotiated session interval of one refresh, seen from our side."""

    interval: int
    refresher: Refresher
    we_refresh: bool

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, interval: int, refresher: Refresher, we_refresh: bool) -> None:
        self.interval = interval  # type: ignore[misc]
        self.refresher = refresher  # type: ignore[misc]
        self.we_refresh = we_refresh  # type: ignore[misc]

    @property
    def refresh_after(self) -> float:
        """RFC 4028 §10: the refresher sends its refresh at half the interval."""
        return self.interval / 2

    @property
    def expire_after(self) -> float:
        """RFC 4028 §10: without a refresh, BYE this long after the last one."""
        return self.interval - min(32, self.interval / 3)

    def deadline(self, start: float) -> float:
        """When to act after a refresh at ``start``: refresh, or give up (BYE)."""
        return start + (self.refresh_after if self.we_refresh else self.expire_after)

    @property
    def session_expires(self) -> SessionExpires:
        return SessionExpires(self.interval, self.refresher)


@dataclass(frozen=True, slots=True)
class UasDecision:
    """``status`` 422 (reject, with ``headers``) or None (accept: ``headers`` go in
    the 2xx; ``timer`` is None when no session timer applies)."""

    status: int | None
    timer: SessionTimer | None = None
    headers: tuple[tuple[str, str], ...] = ()

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(
        self,
        status: int | None,
        timer: SessionTimer | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.status = status  # type: ignore[misc]
        self.timer = timer  # type: ignore[misc]
        self.headers = headers  # type: ignore[misc]


def _check_min_se(min_se: int) -> None:
    if min_se < MIN_SE_FLOOR:
        raise ValueError(f"Min-SE must be at least {MIN_SE_FLOOR} s (RFC 4028 §4)")


def uas_negotiate(
    request: Message,
    *,
    min_se: int = DEFAULT_MIN_SE,
    local_interval: int | None = None,
    prefer: Refresher = Refresher.UAC,
) -> UasDecision:
    """RFC 4028 §9: a UAS's answer to an INVITE/UPDATE; MalformedMessage if the
    request's Session-Expires or Min-SE is unparseable (answer 400)."""
    _check_min_se(min_se)
    se = session_expires_of(request)
    if se is not None and se.interval < min_se:  # §5, §9
        return UasDecision(422, headers=(("Min-SE", str(min_se)),))
    floor = max(min_se, min_se_of(request) or MIN_SE_FLOOR)
    supported = supports_timer(request)
    if se is None:
        if local_interval is None:
            return UasDecision(None)
        interval = max(local_interval, floor)  # §9: the UAS MAY start one itself
    else:
        interval = se.interval
        if local_interval is not None and local_interval < interval:
            interval = max(local_interval, floor)  # §9: reduce, but not below Min-SE
    if not supported:
        refresher = Refresher.UAS  # §9: a UAC without the extension cannot refresh
    elif se is not None and se.refresher is not None:
        refresher = se.refresher
    else:
        refresher = prefer
    timer = SessionTimer(interval, refresher, refresher is Refresher.UAS)
    headers: tuple[tuple[str, str], ...] = (("Session-Expires", str(timer.session_expires)),)
    if refresher is Refresher.UAC:
        headers += (("Require", OPTION_TAG),)  # §9
    return UasDecision(None, timer, headers)


def uac_request_headers(
    interval: int = DEFAULT_INTERVAL,
    min_se: int = DEFAULT_MIN_SE,
    refresher: Refresher | None = None,
) -> list[tuple[str, str]]:
    """RFC 4028 §7.1: what a UAC puts in an INVITE/UPDATE asking for a timer."""
    _check_min_se(min_se)
    if interval < min_se:
        raise ValueError("Session-Expires below our own Min-SE")
    return [
        ("Supported", OPTION_TAG),
        ("Session-Expires", str(SessionExpires(interval, refresher))),
        ("Min-SE", str(min_se)),
    ]


def uac_retry_interval(resp: Response, interval: int) -> int | None:
    """RFC 4028 §7.3: the interval to retry with after a 422 (its Min-SE), or
    None when the 422 gives no usable Min-SE (do not retry)."""
    try:
        min_se = min_se_of(resp)
    except MalformedMessage:
        return None
    if min_se is None or min_se <= interval:  # a bogus 422: retrying would loop
        return None
    return min_se


def uac_from_2xx(resp: Response) -> SessionTimer | None:
    """RFC 4028 §7.2: the session timer a 2xx sets up (None: no expiration).

    A Session-Expires without ``refresher`` (which a UAS must not send) makes
    us the refresher: refreshing needlessly is harmless, not refreshing is not.
    """
    se = session_expires_of(resp)
    if se is None:
        return None
    refresher = se.refresher or Refresher.UAC
    return SessionTimer(se.interval, refresher, refresher is Refresher.UAC)


__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_MIN_SE",
    "MIN_SE_FLOOR",
    "OPTION_TAG",
    "Refresher",
    "SessionExpires",
    "SessionTimer",
    "UasDecision",
    "min_se_of",
    "session_expires_of",
    "supports_timer",
    "uac_from_2xx",
    "uac_request_headers",
    "uac_retry_interval",
    "uas_negotiate",
]
