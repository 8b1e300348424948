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
from dataclasses import dataclass, field
from pathlib import Path

from dialplan.loader import ConfigError, load_config
from dialplan.schema import Config, ListenAddress
from dialplan.watch import ConfigFingerprint

from . import __version__
from .dispatch import Dispatcher
from .sip.core import CoreSettings, SipCore
from .sip.timers import TimerConfig
from .transport.endpoint import Endpoint, EndpointLimits
from .transport.tls import client_context, ensure_self_signed, server_context

log = logging.getLogger("centrala")

PID_FILE = "centrala.pid"
WATCH_INTERVAL_S = 1.0


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
    )


@dataclass
class Switch:
    config_dir: Path
    config: Config
    state_dir: Path
    listen: list[ListenAddress]
    endpoint: Endpoint | None = None
    core: SipCore | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _fingerprint: ConfigFingerprint | None = None

    async def run(self) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._start_core()
        try:
            await self._listen()
        except OSError as exc:
            log.error("cannot listen: %s", exc)
            await self._close()
            return 1
        self._write_pid()
        self._install_signals()
        watcher = asyncio.create_task(self._watch_config())
        log.info("Centrala %s running, state in %s", __version__, self.state_dir)
        await self._stop.wait()
        watcher.cancel()
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
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def stop(self) -> None:
        log.info("stopping")
        self._stop.set()

    # -- configuration -----------------------------------------------------------
    def reload(self) -> bool:
        """Load the configuration again; keep the running one if it is invalid."""
        try:
            config = load_config(self.config_dir)
        except ConfigError as exc:
            log.error("configuration refused, keeping the last good one:")
            for issue in exc.issues:
                log.error("  %s", issue)
            return False
        if config.listen != self.config.listen:
            log.warning("listen addresses changed: they take effect on restart")
        self.config = config
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
                self.reload()

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
        if self.endpoint is not None:
            await self.endpoint.close()
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
