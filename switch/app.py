"""The running switch: configuration, sockets, signals, reload and shutdown.

``Switch.run()`` loads the configuration (refusing to start on errors),
listens, and serves until SIGINT/SIGTERM.  On SIGHUP (``centrala reload``) or
when a file of the configuration directory changes, the configuration is
loaded again: a valid one replaces the running one without touching sockets,
registrations or calls; an invalid one is logged with every issue and the
last good configuration stays in force.  Shutdown stops accepting, lets the
transactions in flight end within ``shutdown_grace_s`` and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dialplan.loader import ConfigError, load_config
from dialplan.schema import Config, ListenAddress
from dialplan.watch import ConfigFingerprint
from media.ports import PortAllocator
from media.relay import MediaRelay

from dialplan.routing import Router

from . import __version__
from .b2bua.identify import CallerIdentifier
from .b2bua.credit import KEY as CREDIT_KEY
from .b2bua.anchor import AnchorHook
from .b2bua.media_features import MediaFeatures
from .b2bua.manager import CallManager
from .b2bua.media import PASS_THROUGH, MediaHook
from .b2bua.plan import BusyLookup, DialplanPlan
from .b2bua.recording import RecordingRules, repair_open
from .compiled import describe, stale_extensions
from .control import ControlServer
from .dispatch import Dispatcher
from .gc_policy import GcPolicy
from .registrar.location import AorKey, Binding
from .registrar.qualify import Qualifier, qualify_request
from .registrar.runtime import RegistrarRuntime
from .sip.core import CoreSettings, SipCore
from .sip.events import Output, ResponseReceived, TransactionTimeout, TransportError
from .sip.timers import TimerConfig
from .storage import open_storage, sqlite_url
from .storage.base import Storage
from .transport.endpoint import Endpoint, EndpointLimits
from .transport.tls import client_context, ensure_self_signed, server_context
from .trunks import TrunkRegistrar

log = logging.getLogger("centrala")

PID_FILE = "centrala.pid"
WATCH_INTERVAL_S = 1.0
TICK_S = 1.0


def state_dir_of(config: Config, override: Path | None) -> Path:
    if override is not None:
        return override.resolve()
    assert config.state_dir is not None  # the loader always resolves it
    return config.state_dir


def core_settings(config: Config) -> CoreSettings:
    t = config.timers
    return CoreSettings(
        max_message_bytes=config.limits.max_message_bytes,
        max_headers=config.limits.max_headers,
        max_line_bytes=config.limits.max_line_bytes,
        timers=TimerConfig(t1=t.t1_ms / 1000, t2=t.t2_ms / 1000, t4=t.t4_ms / 1000),
    )


def endpoint_limits(config: Config) -> EndpointLimits:
    lim = config.limits
    return EndpointLimits(
        max_message_bytes=lim.max_message_bytes,
        requests_per_second=lim.requests_per_second,
        request_burst=lim.request_burst,
        max_connections_per_source=lim.max_connections_per_source,
        max_connections=lim.max_connections,
        tcp_idle_timeout_s=lim.tcp_idle_timeout_s,
        udp_receive_buffer_bytes=lim.udp_receive_buffer_bytes,
    )


@dataclass
class Switch:
    config_dir: Path
    config: Config
    state_dir: Path
    listen: list[ListenAddress]
    endpoint: Endpoint | None = None
    core: SipCore | None = None
    storage: Storage | None = None
    registrar: RegistrarRuntime | None = None
    control: ControlServer | None = None
    calls: CallManager | None = None
    trunks: TrunkRegistrar | None = None
    relay: MediaRelay | None = None  # RTP anchoring (media.anchor)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _fingerprint: ConfigFingerprint | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    gc: GcPolicy = field(default_factory=GcPolicy)  # young collections only (gc_policy.py)

    async def run(self) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.storage = open_storage(self.config.storage_url or sqlite_url(self.state_dir))
        await self.storage.open()
        await asyncio.to_thread(repair_open, self.state_dir)  # recordings a crash left open
        self._start_core()
        try:
            await self._start_features()
            await self._listen()
        except OSError as exc:
            log.error("cannot start: %s", exc)
            await self._close()
            return 1
        self._write_pid()
        self._install_signals()
        self.gc.install()
        background = [asyncio.create_task(self._watch_config()), asyncio.create_task(self._ticks())]
        log.info("Centrala %s running (%s), state in %s", __version__, describe(), self.state_dir)
        for source in stale_extensions():
            log.warning("%s changed since it was compiled: reinstall to run the change", source)
        await self._stop.wait()
        for task in background:
            task.cancel()
        await self._shutdown()
        return 0

    def _start_core(self) -> None:
        self.core = SipCore(core_settings(self.config))
        self.core.tu = Dispatcher(self.core, self.config.server_name)
        cert, key = self._tls_material()
        self.endpoint = Endpoint(
            self.core,
            endpoint_limits(self.config),
            server_ssl=server_context(cert, key),
            client_ssl=client_context(verify=False),
        )

    async def _start_features(self) -> None:
        assert self.core is not None and self.storage is not None
        dispatcher = self.core.tu
        assert isinstance(dispatcher, Dispatcher)
        self.registrar = RegistrarRuntime(
            self.config, self.core, self.storage,
            spawn=self.spawn, send=self.send_outputs, qualify=self._qualify,
        )
        service = await self.registrar.start()
        dispatcher.register("REGISTER", service.on_register)
        assert self.endpoint is not None
        self.calls = self._call_manager()
        for tenant in self.calls.credit.limits:
            spent = await self.storage.get_value(CREDIT_KEY + tenant)  # type: ignore[union-attr]
            if spent is not None:
                self.calls.credit.restore([(tenant, spent)])
        for method in ("INVITE", "BYE", "UPDATE", "INFO"):
            handler = self.calls.on_invite if method == "INVITE" else self.calls.on_in_dialog
            dispatcher.register(method, handler)
        dispatcher.ack_handler = self.calls.on_ack
        dispatcher.cancel_handler = self.calls.on_cancel
        loop = asyncio.get_running_loop()
        self.trunks = TrunkRegistrar(
            self.core, self.registrar.gate, local_address=self.endpoint.local_address,
            call_at=loop.call_at, send=self.send_outputs, now=loop.time, spawn=self.spawn,
            user_agent=self.config.user_agent,
        )
        self.trunks.apply(self.config)
        self.endpoint.blocked = self.registrar.is_banned
        self.control = ControlServer(self.state_dir)
        self._register_commands(self.control)
        await self.control.start()

    def _call_manager(self) -> CallManager:
        assert self.core is not None and self.registrar is not None
        assert self.registrar.registrar is not None and self.endpoint is not None
        loop = asyncio.get_running_loop()
        return CallManager(
            self.config, self.core, *self._call_routing(self.config),
            self.storage, self.registrar.bans,  # type: ignore[arg-type]
            local_address=self.endpoint.local_address,
            call_at=loop.call_at, send=self.send_outputs, now=loop.time, spawn=self.spawn,
            media=self._media(), state_dir=self.state_dir,
        )

    def _media(self) -> MediaHook:
        """The relay every call's RTP goes through, or none (``media.anchor: false``)."""
        media = self.config.media
        if not media.anchor:
            return PASS_THROUGH
        assert self.endpoint is not None
        low, high = media.rtp_ports
        self.relay = MediaRelay(PortAllocator(low, high, media.bind),
                                loop=asyncio.get_running_loop())
        log.info("media anchored: RTP ports %d-%d on %s", low, high, media.bind)
        features = MediaFeatures(self.config, asyncio.get_running_loop())
        return AnchorHook(self.relay, self.config, self.endpoint.local_address, features)

    def _call_routing(self, config: Config) -> tuple[CallerIdentifier, DialplanPlan]:
        """Caller identification and dialplan for new calls (rebuilt on reload;
        calls in progress keep the rules they started with)."""
        assert self.registrar is not None and self.registrar.registrar is not None
        reg = self.registrar.registrar
        identifier = CallerIdentifier(config, reg.directory, reg.auth)
        plan = DialplanPlan(config, Router(config), self.registrar.location, BusyLookup(config))
        if self.calls is not None:
            plan.busy.active = self.calls.plan.busy.active
        return identifier, plan

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` in the background; its failure is logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    def send_outputs(self, outputs: list[Output]) -> None:
        """Transaction outputs produced outside an event (after an await)."""
        assert self.core is not None and self.endpoint is not None
        self.endpoint.send_all(self.core.dispatch(outputs, asyncio.get_running_loop().time()))

    def _qualify(self, aor: AorKey, binding: Binding, qualifier: Qualifier) -> None:
        assert self.core is not None and self.endpoint is not None
        local = self.endpoint.local_address(binding.source)
        req = qualify_request(aor, binding, local, self.config.user_agent)

        def owner(event: object, now: float) -> list[object]:
            if isinstance(event, ResponseReceived):
                if event.response.status >= 200:
                    qualifier.answered(aor, binding)
            elif isinstance(event, (TransactionTimeout, TransportError)):
                qualifier.failed(aor, binding)
            return []

        now = asyncio.get_running_loop().time()
        _, outputs = self.core.send_request(req, binding.source, now, owner)
        self.send_outputs(outputs)

    async def _ticks(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                if self.registrar is not None:
                    self.registrar.tick()
                if self.calls is not None:
                    self.calls.tick(asyncio.get_running_loop().time())
                self.gc.tick(asyncio.get_running_loop().time())
            except Exception:
                log.exception("housekeeping failed")

    def _register_commands(self, control: ControlServer) -> None:
        from .commands import register_commands

        register_commands(control, self)

    def _tls_material(self) -> tuple[Path, Path]:
        tls = self.config.tls
        if tls.cert is not None and tls.key is not None:
            return tls.cert, tls.key
        return ensure_self_signed(self.state_dir)

    async def _listen(self) -> None:
        assert self.endpoint is not None
        for addr in self.listen:
            await self.endpoint.listen(addr.proto, addr.host, addr.port)

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.stop)
        loop.add_signal_handler(signal.SIGTERM, self.stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.spawn(self.reload()))

    def stop(self) -> None:
        log.info("stopping")
        self._stop.set()

    # -- configuration -----------------------------------------------------------
    async def reload(self) -> bool:
        """Load the configuration again; keep the running one if it is invalid.  It is
        read in a worker thread: checking it decodes new music-on-hold files."""
        try:
            config = await asyncio.to_thread(load_config, self.config_dir)
        except ConfigError as exc:
            log.error("configuration refused, keeping the last good one:")
            for issue in exc.issues:
                log.error("  %s", issue)
            return False
        if config.listen != self.config.listen:
            log.warning("listen addresses changed: they take effect on restart")
        old, new = self.config.media, config.media
        if (old.anchor, old.rtp_ports, old.bind) != (new.anchor, new.rtp_ports, new.bind):
            log.warning("media anchor, rtp_ports and bind take effect on restart")
        self.config = config
        if self.registrar is not None:
            self.registrar.apply_config(config)
        if self.calls is not None:
            self.calls.config = config
            self.calls.identifier, self.calls.plan = self._call_routing(config)
            self.calls.router = self.calls.plan.router
            self.calls.credit.apply(config)
            self.calls.recording = RecordingRules(config)
            if isinstance(self.calls.media, AnchorHook):
                self.calls.media.apply(config)
        if self.trunks is not None:
            self.trunks.apply(config)
        if self.endpoint is not None:
            limits = endpoint_limits(config)
            self.endpoint.limits = limits
            self.endpoint.rate.rate = limits.requests_per_second
            self.endpoint.rate.burst = limits.request_burst
        log.info("configuration reloaded: %d tenant(s)", len(config.tenants))
        return True

    async def _watch_config(self) -> None:
        self._fingerprint = ConfigFingerprint.of(self.config_dir)
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            current = await asyncio.to_thread(ConfigFingerprint.of, self.config_dir)
            if current != self._fingerprint:
                self._fingerprint = current
                log.info("configuration directory changed")
                await self.reload()

    # -- shutdown -------------------------------------------------------------------
    async def _shutdown(self) -> None:
        assert self.endpoint is not None and self.core is not None
        self.endpoint.stop_listening()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_grace_s
        while self.core.transactions.in_flight() and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self.core.transactions.in_flight():
            log.info("%d transaction(s) unfinished at shutdown", self.core.transactions.in_flight())
        await self._close()
        log.info("stopped")

    async def _close(self) -> None:
        if self.trunks is not None:
            self.trunks.stop_all()
        if self.control is not None:
            await self.control.close()
        if self.endpoint is not None:
            await self.endpoint.close()
        if self.calls is not None:  # calls still up: their recordings are finalised
            for call in list(self.calls.calls.values()):
                call.media.release()
        if self.relay is not None:
            self.relay.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.config.shutdown_grace_s)
        if self.storage is not None:
            await self.storage.close()
        self._pid_path().unlink(missing_ok=True)

    def _pid_path(self) -> Path:
        return self.state_dir / PID_FILE

    def _write_pid(self) -> None:
        self._pid_path().write_text(f"{os.getpid()}\n")


def read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
