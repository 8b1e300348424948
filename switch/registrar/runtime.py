"""The registrar wired to the running switch: storage, licences, bans, timers.

``RegistrarRuntime.start()`` restores the bindings persisted by the last run
(re-taking their port licences), restores bans, and from then on keeps
storage in step with the location service.  ``tick()`` runs once a second:
expiry (which frees licences), lifted bans, and qualify probes.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable

from dialplan.schema import Config

from ..auth.bans import Ban, BanList, BanPolicy, log_ban, log_unban
from ..auth.digest import DigestAuth
from ..directory import Directory
from ..sip.address import Address
from ..sip.core import SipCore
from ..sip.events import Output
from ..storage.base import BindingRecord, Storage
from .licensing import PortLicenceGate
from .location import AorKey, Binding, BindingChange, Location
from .qualify import Qualifier
from .registrar import Registrar, RegistrarSettings
from .service import RegistrarService, Spawn, holder_of

log = logging.getLogger("centrala.registrar")

SECRET_KEY = "digest-nonce-secret"


def registrar_settings(config: Config) -> RegistrarSettings:
    r = config.registrar
    return RegistrarSettings(
        min_expires=r.min_expires,
        max_expires=r.max_expires,
        default_expires=r.default_expires,
        replace_when_full=r.when_full == "replace",
    )


def ban_policy(config: Config) -> BanPolicy:
    s = config.security
    return BanPolicy(
        max_failures=s.max_auth_failures,
        window_s=s.failure_window_s,
        ban_s=s.ban_s,
        max_failures_per_user=s.max_failures_per_user,
    )


def parse_source(text: str) -> Address:
    transport, _, rest = text.partition(":")
    host, _, port = rest.rpartition(":")
    return Address(transport, host.strip("[]"), int(port))


def to_record(aor: AorKey, b: Binding, node: str) -> BindingRecord:
    return BindingRecord(
        tenant=aor[0], user=aor[1], key=b.key, contact=b.contact, expires_at=b.expires_at,
        q=b.q, call_id=b.call_id, cseq=b.cseq, path=b.path, source=str(b.source),
        instance=b.instance, reg_id=b.reg_id, user_agent=b.user_agent,
        updated_at=b.updated_at, node=node,
    )


def from_record(rec: BindingRecord) -> Binding:
    return Binding(
        rec.key, rec.contact, _uri_of(rec.contact), rec.expires_at, rec.call_id, rec.cseq,
        parse_source(rec.source), q=rec.q, path=rec.path, instance=rec.instance,
        reg_id=rec.reg_id, user_agent=rec.user_agent, updated_at=rec.updated_at,
    )


def _uri_of(contact: str) -> str:
    from ..sip.headers import NameAddr

    return NameAddr.parse(contact, "Contact").uri_text


class RegistrarRuntime:
    def __init__(
        self,
        config: Config,
        core: SipCore,
        storage: Storage,
        *,
        spawn: Spawn,
        send: Callable[[list[Output]], None],
        qualify: Callable[[AorKey, Binding, Qualifier], None],
    ) -> None:
        self.config = config
        self.storage = storage
        self.spawn = spawn
        self.node = config.node_name
        self.location = Location()
        self.bans = BanList(ban_policy(config))
        self.gate = PortLicenceGate(storage, self.node, self._port_limit)
        self.qualifier = Qualifier(
            self.location, config.registrar.qualify_interval_s, config.registrar.qualify_failures
        )
        self._qualify = qualify
        self.core = core
        self._send = send
        self.registrar: Registrar | None = None
        self.service: RegistrarService | None = None

    async def start(self) -> RegistrarService:
        security = self.config.security
        auth = DigestAuth(
            await self._secret(), security.nonce_lifetime_s, tuple(security.digest_algorithms)
        )
        self.registrar = Registrar(
            Directory(self.config), self.location, auth, registrar_settings(self.config)
        )
        await self._restore()
        self.location.listeners.append(self._persist)
        self.service = RegistrarService(
            self.core, self.registrar, self.gate, self.bans, spawn=self.spawn, send=self._send,
            clock=time.time, server_name=self.config.server_name, on_ban=self._banned,
        )
        return self.service

    def apply_config(self, config: Config) -> None:
        """A reloaded configuration: new directory and rules, same bindings."""
        self.config = config
        if self.registrar is not None:
            self.registrar.directory = Directory(config)
            self.registrar.settings = registrar_settings(config)
        self.qualifier.interval_s = config.registrar.qualify_interval_s
        self.qualifier.max_failures = config.registrar.qualify_failures

    def _port_limit(self, tenant: str) -> tuple[int, str | None]:
        ports = self.config.licences.ports(tenant)
        return ports.usable, ports.reason

    async def _secret(self) -> bytes:
        value = await self.storage.get_value(SECRET_KEY)
        if value is None:
            value = secrets.token_hex(32)
            await self.storage.set_value(SECRET_KEY, value)
        return bytes.fromhex(value)

    async def _restore(self) -> None:
        now = time.time()
        await self.storage.release_node(self.node)
        records = await self.storage.load_bindings(now, self.node)
        for rec in records:
            self.location.restore((rec.tenant, rec.user), from_record(rec))
        for aor, _ in list(self.location.aors()):
            refused = await self.gate.acquire(aor[0], holder_of(aor))
            if refused is not None:
                log.warning("restored %s@%s dropped: %s", aor[1], aor[0], refused)
                self.location.apply(aor, [], [b.key for b in self.location.bindings(aor)])
                for b in records:
                    if (b.tenant, b.user) == aor:
                        self.storage.delete_binding(b.tenant, b.user, b.key)
        for ban in await self.storage.load_bans(now):
            self.bans.add(Ban(ban.ip, ban.since, ban.until, ban.failures, ban.reason))
        log.info("restored %d binding(s) of %d AOR(s), %d ban(s)",
                 len(self.location), sum(1 for _ in self.location.aors()),
                 len(self.bans.bans(now)))

    def _persist(self, change: BindingChange) -> None:
        for b in change.added_or_updated:
            self.storage.put_binding(to_record(change.aor, b, self.node))
        for b in change.removed:
            self.storage.delete_binding(change.aor[0], change.aor[1], b.key)

    def _banned(self, ban: Ban) -> None:
        log_ban(ban)
        self.spawn(self.storage.save_ban(ban.ip, ban.since, ban.until, ban.failures, ban.reason))

    async def _forget_ban(self, ip: str) -> None:
        await self.storage.delete_ban(ip)

    async def unban(self, ip: str) -> bool:
        removed = self.bans.remove(ip)
        removed = await self.storage.delete_ban(ip) or removed
        if removed:
            log_unban(ip, "operator")
        return removed

    def is_banned(self, ip: str) -> bool:
        return self.bans.is_banned(ip, time.time())

    def tick(self) -> None:
        now = time.time()
        self.location.expire(now)
        for ban in self.bans.expire(now):
            log_unban(ban.ip, "expired")
            self.spawn(self._forget_ban(ban.ip))
        for aor, binding in self.qualifier.tick():
            self._qualify(aor, binding, self.qualifier)
