"""Who exists: tenants by SIP domain, and their extensions by number or username.

Built once per configuration (and again on each reload).  Digest HA1 values
are computed here, once, so authenticating a request costs one hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from dialplan.schema import Config, Extension, Tenant

from .auth.digest import Credentials


@dataclass(frozen=True, slots=True)
class Subscriber:
    """An extension as the SIP layer sees it."""

    tenant: str  # SIP domain, the digest realm
    number: str
    username: str
    display_name: str
    max_contacts: int
    credentials: Credentials

    @property
    def aor(self) -> tuple[str, str]:
        """The location key: the extension's number within its domain."""
        return (self.tenant, self.number)


@dataclass(frozen=True, slots=True)
class TenantEntry:
    domain: str
    name: str
    by_user: dict[str, Subscriber]  # number and username -> subscriber
    by_username: dict[str, Subscriber]

    def find(self, user: str) -> Subscriber | None:
        return self.by_user.get(user)

    def credentials(self, username: str) -> Credentials | None:
        sub = self.by_username.get(username)
        return sub.credentials if sub is not None else None


def _credentials(tenant: Tenant, ext: Extension) -> Credentials:
    if ext.password is not None:
        return Credentials.from_password(
            ext.username, tenant.domain, ext.password.get_secret_value()
        )
    return Credentials.from_ha1(ext.username, tenant.domain, ext.ha1_md5, ext.ha1_sha256)


def _subscriber(tenant: Tenant, ext: Extension) -> Subscriber:
    return Subscriber(
        tenant=tenant.domain,
        number=ext.number,
        username=ext.username,
        display_name=ext.name,
        max_contacts=ext.max_contacts,
        credentials=_credentials(tenant, ext),
    )


class Tenants(Protocol):
    """Tenants by SIP domain: what the registrar and the B2BUA look up."""

    def tenant(self, domain: str) -> TenantEntry | None: ...


class Directory:
    def __init__(self, config: Config) -> None:
        self._tenants: dict[str, TenantEntry] = {}
        for tenant in config.tenants:
            subs = [_subscriber(tenant, ext) for ext in tenant.extensions]
            by_user = {s.number: s for s in subs} | {s.username: s for s in subs}
            self._tenants[tenant.domain.lower()] = TenantEntry(
                tenant.domain, tenant.name, by_user, {s.username: s for s in subs}
            )

    def tenant(self, domain: str) -> TenantEntry | None:
        return self._tenants.get(domain.lower())

    def find(self, domain: str, user: str) -> Subscriber | None:
        tenant = self.tenant(domain)
        return tenant.find(user) if tenant is not None else None

    def __len__(self) -> int:
        return sum(len(t.by_username) for t in self._tenants.values())
