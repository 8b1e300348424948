"""REGISTER processing, RFC 3261 §10.3, with RFC 3327 (Path) and RFC 5626 keys.

Theory of operation
-------------------
``Registrar.process(request, source, now)`` walks the steps of §10.3 and
returns either a ``Reject`` (the status, reason and headers to answer) or a
``Plan``: the bindings to add, refresh and remove for one AOR, and whether the
AOR goes from no binding to some (a port licence must be taken first) or
from some to none (its licence is freed).  ``commit(plan, now)`` applies a
plan to the location service and builds the ``200 OK`` listing every current
binding with its remaining time.  Authentication (step 2-3) is digest, with
the tenant's domain as realm; what happens on failure (bans, logs) is the
caller's business, told through ``Reject.auth_failure``.  No I/O, no clock.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass, field

from ..auth.digest import AuthOutcome, AuthResult, Authenticator
from ..directory import Subscriber, Tenants
from ..sip.address import Address
from ..sip.errors import SipError
from ..sip.grammar import parse_uint
from ..sip.headers import NameAddr
from ..sip.message import Request
from ..sip.uri import SipUri
from .location import AorKey, Binding, Location

_date_cache: tuple[int, str] = (-1, "")


def http_date(now: float) -> str:
    """The Date header value (RFC 3261 §20.17), formatted once per second."""
    global _date_cache
    second = int(now)
    if _date_cache[0] != second:
        _date_cache = (second, email.utils.formatdate(second, usegmt=True))
    return _date_cache[1]


Headers = list[tuple[str, object]]


@dataclass(frozen=True, slots=True)
class RegistrarSettings:
    min_expires: int = 60  # shorter asks get 423 (RFC 3261 §10.3 step 7)
    max_expires: int = 3600  # longer asks are clamped
    default_expires: int = 3600
    replace_when_full: bool = True  # at max_contacts: replace the soonest-expiring, else 403


@dataclass(frozen=True, slots=True)
class Reject:
    status: int
    reason: str | None = None
    headers: Headers = field(default_factory=list)
    auth_failure: AuthResult | None = None  # a failed authentication, for bans and logs
    realm: str | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        auth_failure: AuthResult | None = None,
        realm: str | None = None,
    ) -> None:
        self.status = status  # type: ignore[misc]
        self.reason = reason  # type: ignore[misc]
        self.headers = [] if headers is None else headers  # type: ignore[misc]
        self.auth_failure = auth_failure  # type: ignore[misc]
        self.realm = realm  # type: ignore[misc]


@dataclass(slots=True)
class Plan:
    subscriber: Subscriber
    upserts: list[Binding]
    removals: list[str]
    first: bool  # the AOR had no binding and will have some: take a port licence
    last: bool  # the AOR will have no binding left: free its licence
    path: list[str]

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(
        self,
        subscriber: Subscriber,
        upserts: list[Binding],
        removals: list[str],
        first: bool,
        last: bool,
        path: list[str],
    ) -> None:
        self.subscriber = subscriber
        self.upserts = upserts
        self.removals = removals
        self.first = first
        self.last = last
        self.path = path


def _expires_of(contact: NameAddr, header: int | None, default: int) -> int:
    value = contact.param("expires")
    if value is not None:
        try:
            return parse_uint(value, "expires", 2**32 - 1)
        except SipError:
            return default  # RFC 4475 §3.1.2.4: a bad expires may be taken as absent
    return header if header is not None else default


def _binding_key(contact: NameAddr) -> tuple[str, str | None, int | None]:
    """RFC 5626 §6: instance + reg-id name the flow; else the contact URI does."""
    instance = contact.param("+sip.instance")
    reg_id_text = contact.param("reg-id")
    reg_id = int(reg_id_text) if reg_id_text and reg_id_text.isdigit() else None
    if instance:
        return f"{instance}|{reg_id or 0}", instance, reg_id
    return contact.uri_text, None, None


class Registrar:
    def __init__(
        self,
        directory: Tenants,
        location: Location,
        auth: Authenticator,
        settings: RegistrarSettings = RegistrarSettings(),
    ) -> None:
        self.directory = directory
        self.location = location
        self.auth = auth
        self.settings = settings

    # -- step by step ---------------------------------------------------------------
    def process(self, req: Request, source: Address, now: float) -> Reject | Plan:
        uri = req.uri
        if not isinstance(uri, SipUri):
            return Reject(400, "Request-URI must be a SIP URI")
        tenant = self.directory.tenant(uri.host_unbracketed)
        if tenant is None:  # step 1: not a domain this registrar serves
            return Reject(404, "Domain not served here")
        to_uri = req.to.uri
        if not isinstance(to_uri, SipUri) or to_uri.user is None:  # RFC 4475 §3.3.4
            return Reject(400, "To must be a SIP AOR")
        result = self.auth.check(req, tenant.domain, tenant.credentials, now)
        if result.outcome is not AuthOutcome.OK:
            return self._challenge(tenant.domain, result, now)
        sub = tenant.find(to_uri.user_unescaped or "")
        if sub is None or sub.username != result.username:  # CVE-2009-3727
            return Reject(403, "Not allowed to register this address")
        return self._plan(req, sub, source, now)

    def _challenge(self, realm: str, result: AuthResult, now: float) -> Reject:
        """The same 401 for every user, known or not (only the nonce differs)."""
        if result.outcome is AuthOutcome.MALFORMED:
            return Reject(400, "Malformed Authorization header", [], result, realm)
        challenge = self.auth.challenge_for(result, realm, now)
        headers: Headers = [("WWW-Authenticate", value) for value in challenge]
        failure = result if result.outcome is AuthOutcome.FAILED else None
        return Reject(401, None, headers, failure, realm)

    def _plan(self, req: Request, sub: Subscriber, source: Address, now: float) -> Reject | Plan:
        current = {b.key: b for b in self.location.bindings(sub.aor)}
        contact = req.contact
        header_expires = self._header_expires(req)
        if contact is None:  # a query: answer with the current bindings
            return Plan(sub, [], [], False, False, req.get_all("path"))
        if contact.star:  # §10.3 step 6: only with Expires: 0, alone
            if header_expires != 0:
                return Reject(400, "Contact * requires Expires: 0")
            return self._removal_plan(req, sub, current, list(current))
        upserts: list[Binding] = []
        removals: list[str] = []
        for addr in contact.addresses:
            expires = _expires_of(addr, header_expires, self.settings.default_expires)
            if 0 < expires < self.settings.min_expires:
                return Reject(423, None, [("Min-Expires", self.settings.min_expires)])
            key, instance, reg_id = _binding_key(addr)
            old = current.get(key)
            if old is not None and old.call_id == req.call_id and old.cseq >= req.cseq.seq:
                return Reject(500, "Out-of-order REGISTER")  # §10.3 step 7
            if expires == 0:
                if old is not None:
                    removals.append(key)
                continue
            expires = min(expires, self.settings.max_expires)
            upserts.append(self._binding(req, addr, key, instance, reg_id, expires, source, now))
        return self._fit(req, sub, current, upserts, removals)

    def _header_expires(self, req: Request) -> int | None:
        value = req.get("expires")
        if value is None:
            return None
        try:
            return parse_uint(value, "Expires", 2**32 - 1)
        except SipError:
            return self.settings.default_expires

    def _binding(
        self,
        req: Request,
        addr: NameAddr,
        key: str,
        instance: str | None,
        reg_id: int | None,
        expires: int,
        source: Address,
        now: float,
    ) -> Binding:
        q_text = addr.param("q")
        try:
            q = float(q_text) if q_text else None
        except ValueError:
            q = None
        addr.validate()
        return Binding(
            key,
            str(addr.without_param("expires")),
            addr.uri_text,
            now + expires,
            req.call_id,
            req.cseq.seq,
            source,
            q=q,
            path=tuple(req.values("path")),
            instance=instance,
            reg_id=reg_id,
            user_agent=req.get("user-agent"),
            updated_at=now,
        )

    def _fit(
        self,
        req: Request,
        sub: Subscriber,
        current: dict[str, Binding],
        upserts: list[Binding],
        removals: list[str],
    ) -> Reject | Plan:
        """Enforce max_contacts: a phone re-registering after a reboot must never
        be locked out by its own stale binding, so by default the binding that
        expires soonest makes room."""
        keep = {k: b for k, b in current.items() if k not in removals}
        keep.update((b.key, b) for b in upserts)
        excess = len(keep) - sub.max_contacts
        if excess > 0:
            if not self.settings.replace_when_full:
                return Reject(403, "Too many registered devices")
            new_keys = {b.key for b in upserts}
            victims = sorted(
                (b for k, b in keep.items() if k not in new_keys), key=lambda b: b.expires_at
            )[:excess]
            if len(victims) < excess:
                return Reject(403, "Too many contacts in one REGISTER")
            removals = removals + [v.key for v in victims]
        return self._removal_plan(req, sub, current, removals, upserts)

    def _removal_plan(
        self,
        req: Request,
        sub: Subscriber,
        current: dict[str, Binding],
        removals: list[str],
        upserts: list[Binding] | None = None,
    ) -> Plan:
        upserts = upserts or []
        remaining = (set(current) - set(removals)) | {b.key for b in upserts}
        first = not current and bool(remaining)
        last = bool(current) and not remaining
        return Plan(sub, upserts, removals, first, last, req.get_all("path"))

    # -- after the licence check ----------------------------------------------------
    def commit(self, plan: Plan, now: float) -> Headers:
        """Apply ``plan``; the headers of the 200 (RFC 3261 §10.3 step 8)."""
        aor: AorKey = plan.subscriber.aor
        if plan.upserts or plan.removals:
            self.location.apply(aor, plan.upserts, plan.removals)
        headers: Headers = [
            ("Contact", f"{b.contact};expires={b.remaining(now)}")
            for b in self.location.bindings(aor)
        ]
        headers.extend(("Path", p) for p in plan.path)  # RFC 3327 §5.3
        headers.append(("Date", http_date(now)))
        return headers
