"""Who is calling: a trunk by its source address, or an extension by digest.

RFC 3261 §22.3: an INVITE from a phone is challenged with ``407`` and
``Proxy-Authenticate`` in its tenant's realm, exactly like a REGISTER is with
``401``: the same answer whether the user exists or not.  A trunk is
recognised by the address it sends from (its ``allowed_ips``).  Anything
else is refused without saying whether the number exists.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dialplan.schema import Config, Trunk

from ..auth.digest import AuthOutcome, AuthResult, Authenticator
from ..directory import Subscriber, Tenants
from ..sip.address import Address
from ..sip.message import Request
from ..sip.uri import SipUri


@dataclass(frozen=True, slots=True)
class FromExtension:
    subscriber: Subscriber


@dataclass(frozen=True, slots=True)
class FromTrunk:
    tenant: str
    trunk: Trunk


@dataclass(frozen=True, slots=True)
class NotIdentified:
    status: int
    reason: str | None
    headers: list[tuple[str, object]]
    failure: AuthResult | None = None
    realm: str | None = None


Caller = FromExtension | FromTrunk


class CallerIdentifier:
    def __init__(self, config: Config, directory: Tenants, auth: Authenticator) -> None:
        self.directory = directory
        self.auth = auth
        self._trunks = [
            (network, tenant.domain, trunk)
            for tenant in config.tenants
            for trunk in tenant.trunks
            for network in trunk.allowed_ips
        ]

    def identify(self, req: Request, source: Address, now: float) -> Caller | NotIdentified:
        trunk = self._trunk_of(source.host)
        if trunk is not None:
            return trunk
        tenant = self._tenant_of(req)
        if tenant is None:
            return NotIdentified(403, "Forbidden", [])
        result = self.auth.check(
            req, tenant.domain, tenant.credentials, now, header="proxy-authorization"
        )
        if result.outcome is AuthOutcome.OK and result.username is not None:
            sub = tenant.by_username.get(result.username)
            if sub is not None:
                return FromExtension(sub)
        if result.outcome is AuthOutcome.MALFORMED:
            return NotIdentified(400, "Malformed Proxy-Authorization header", [], result,
                                 tenant.domain)
        challenge = self.auth.challenge_for(result, tenant.domain, now)
        failure = result if result.outcome is AuthOutcome.FAILED else None
        return NotIdentified(
            407, None, [("Proxy-Authenticate", c) for c in challenge], failure, tenant.domain
        )

    def _trunk_of(self, host: str) -> FromTrunk | None:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return None
        for network, tenant, trunk in self._trunks:
            if ip.version == network.version and ip in network:
                return FromTrunk(tenant, trunk)
        return None

    def _tenant_of(self, req: Request):  # type: ignore[no-untyped-def]
        for uri in (req.from_.uri, req.uri):
            if isinstance(uri, SipUri):
                tenant = self.directory.tenant(uri.host_unbracketed)
                if tenant is not None:
                    return tenant
        return None
