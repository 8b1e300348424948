"""The asyncio adapter around ``SipCore``: sockets in, sockets out, one timer.

Theory of operation
-------------------
Every listening socket and connection feeds bytes to the core with
``loop.time()`` as ``now`` and writes whatever ``Send`` outputs come back.
UDP addresses carry the index of the local socket as ``conn_id`` so answers
leave from the socket the request reached; stream addresses carry the
connection id, so responses return on the request's connection (RFC 3261
§18.2.2) and requests to a peer reuse its flow.  The core's earliest
deadline is armed as a single ``loop.call_at``, rounded up to a
``TIMER_GRID_S`` step: under load a transaction ends every few hundred
microseconds (Timer J/K/H/I, 5 s-32 s after its request), and one wake-up
per deadline cost more than the SIP work itself; on the grid one wake-up
handles every deadline of its step.  10 ms is far below any SIP timer (T1
is 500 ms; Kamailio ticks every 62.5 ms).  Per-source limits are
applied before a byte is parsed.  Nothing raised while handling one message
may escape: it is logged and that message is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import ssl
from dataclasses import dataclass
from typing import Callable, Iterable

from ..limits import ConnectionLimiter, RateLimiter
from ..sip.address import Address
from ..sip.core import SipCore
from ..sip.errors import SipError
from ..sip.events import Send
from ..sip.framing import PONG, FramedMessage, FramingFailed, Ping, StreamFramer
from ..sip.message import Request, parse_message

log = logging.getLogger("centrala.transport")

TIMER_GRID_S = 0.01  # timers fire on this grid, late by less than one step


@dataclass(frozen=True, slots=True)
class EndpointLimits:
    max_message_bytes: int = 65536
    requests_per_second: float = 200.0
    request_burst: float = 400.0
    max_connections_per_source: int = 64
    max_connections: int = 4096
    tcp_idle_timeout_s: float = 300.0
    udp_receive_buffer_bytes: int = 1024 * 1024


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, endpoint: "Endpoint", index: int) -> None:
        self.endpoint = endpoint
        self.index = index
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[type-arg]
        self.endpoint.received(data, Address("udp", addr[0], addr[1], self.index))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp socket error: %s", exc)


class _Stream(asyncio.Protocol):
    """One TCP or TLS connection, accepted or opened by Centrala."""

    def __init__(self, endpoint: "Endpoint", proto: str) -> None:
        self.endpoint = endpoint
        self.proto = proto
        self.framer = StreamFramer(endpoint.limits.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.address: Address | None = None
        self.last_activity = 0.0
        self.counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.address = self.endpoint.register_connection(self, self.proto, peer[0], peer[1])
        if self.address is None:
            transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.endpoint.loop.time()
        for event in self.framer.feed(data):
            if isinstance(event, FramedMessage):
                self.endpoint.received(event.data, self.address)  # type: ignore[arg-type]
            elif isinstance(event, Ping):
                self.write(PONG)
            elif isinstance(event, FramingFailed):
                self.endpoint.framing_failed(event, self.address)  # type: ignore[arg-type]
                self.close()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.endpoint.forget_connection(self)


class Endpoint:
    """Binds the core to sockets; owns the connections and the core's timer."""

    def __init__(
        self,
        core: SipCore,
        limits: EndpointLimits,
        *,
        server_ssl: ssl.SSLContext | None = None,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.core = core
        self.limits = limits
        self.loop = asyncio.get_running_loop()
        self.server_ssl = server_ssl
        self.client_ssl = client_ssl
        self.rate = RateLimiter(limits.requests_per_second, limits.request_burst)
        self.conn_limit = ConnectionLimiter(limits.max_connections_per_source, limits.max_connections)
        self._udp: list[_Udp] = []
        self._servers: list[tuple[asyncio.Server, str]] = []
        self._conns: dict[int, _Stream] = {}
        self._flows: dict[tuple[str, str, int], int] = {}
        self._next_conn = 1
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._housekeeping: asyncio.TimerHandle | None = None
        self.dropped_rate = 0
        self.dropped_banned = 0
        self.errors = 0
        self.blocked: Callable[[str], bool] = lambda ip: False  # bans, set by the app

    # -- listening -------------------------------------------------------------
    async def listen(self, proto: str, host: str, port: int) -> Address:
        if proto == "udp":
            index = len(self._udp)
            _, protocol = await self.loop.create_datagram_endpoint(
                lambda: _Udp(self, index), local_addr=(host, port)
            )
            self._udp.append(protocol)
            self._size_receive_buffer(protocol.transport)  # type: ignore[arg-type]
            sock = protocol.transport.get_extra_info("sockname")  # type: ignore[union-attr]
        else:
            ctx = self.server_ssl if proto == "tls" else None
            server = await self.loop.create_server(
                lambda: _Stream(self, proto), host, port, ssl=ctx, reuse_address=True
            )
            self._servers.append((server, proto))
            sock = server.sockets[0].getsockname()
        self._schedule_housekeeping()
        log.info("listening on %s:%s:%s", proto, host, sock[1])
        return Address(proto, sock[0], sock[1])

    def _size_receive_buffer(self, transport: asyncio.DatagramTransport) -> None:
        """Room for the datagrams that arrive while the loop is busy (a burst, a
        slow handler): the default (~200 KB, a few hundred small datagrams) is
        gone in a fraction of a second at a few thousand packets per second,
        and what overflows it is lost, to be retransmitted 500 ms later."""
        sock = transport.get_extra_info("socket")
        want = self.limits.udp_receive_buffer_bytes
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < want:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, want)
            got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        except OSError as exc:
            log.warning("cannot size the UDP receive buffer: %s", exc)
            return
        if got < want:  # Linux reports twice what it grants, capped by rmem_max
            log.info("UDP receive buffer %d bytes (asked %d; raise net.core.rmem_max)",
                     got, want)

    # -- input -------------------------------------------------------------------
    def received(self, data: bytes, source: Address) -> None:
        now = self.loop.time()
        if self.blocked(source.host):
            self.dropped_banned += 1
            return
        if not self.rate.allow(source.host, now):
            self.dropped_rate += 1
            return
        try:
            sends = self.core.receive(data, source, now)
        except Exception:  # a bug must cost one message, never the switch
            self.errors += 1
            log.exception("error handling a message from %s", source)
            return
        self.send_all(sends)

    def framing_failed(self, event: FramingFailed, source: Address) -> None:
        """Answer what can be answered of an unframeable stream message."""
        log.info("closing %s: %s", source, event.reason)
        try:
            msg = parse_message(event.head + b"\r\n\r\n")
        except SipError:
            return
        if isinstance(msg, Request):
            self.send_all(self.core.reject(msg, source, SipError(event.reason, event.status)))

    # -- output ------------------------------------------------------------------
    def send_all(self, sends: Iterable[Send]) -> None:
        for send in sends:
            self.send(send)
        self._arm_timer()

    def send(self, out: Send) -> None:
        data = bytes(out.message)
        dest = out.dest
        if dest.transport == "udp":
            self._send_udp(data, dest)
            return
        conn = self._conns.get(dest.conn_id or 0) or self._flow(dest)
        if conn is not None:
            conn.write(data)
        else:
            self.loop.create_task(self._connect_and_send(dest, data))

    def _send_udp(self, data: bytes, dest: Address) -> None:
        if not self._udp:
            return
        sock = self._udp[dest.conn_id] if dest.conn_id is not None else self._udp_for(dest)
        if sock.transport is not None:
            sock.transport.sendto(data, (dest.host, dest.port))

    def _udp_for(self, dest: Address) -> _Udp:
        v6 = ":" in dest.host
        for sock in self._udp:
            local = sock.transport.get_extra_info("sockname") if sock.transport else None
            if local and (":" in local[0]) == v6:
                return sock
        return self._udp[0]

    def _flow(self, dest: Address) -> _Stream | None:
        conn_id = self._flows.get((dest.transport, dest.host, dest.port))
        return self._conns.get(conn_id) if conn_id else None

    async def _connect_and_send(self, dest: Address, data: bytes) -> None:
        ctx = self.client_ssl if dest.transport == "tls" else None
        try:
            _, conn = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: _Stream(self, dest.transport), dest.host, dest.port, ssl=ctx
                ),
                timeout=10,
            )
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as exc:
            log.info("cannot connect to %s: %s", dest, exc)
            self.send_all(self.core.transport_error(dest, self.loop.time()))
            return
        conn.write(data)

    def local_address(self, dest: Address) -> tuple[str, str, int]:
        """(transport, host, port) this switch uses toward ``dest``, for a Via."""
        if dest.transport == "udp" and self._udp:
            sock = self._udp[dest.conn_id] if dest.conn_id is not None else self._udp_for(dest)
            if sock.transport is not None:
                name = sock.transport.get_extra_info("sockname")
                return "udp", name[0], name[1]
        conn = self._conns.get(dest.conn_id or 0) or self._flow(dest)
        if conn is not None and conn.transport is not None:
            name = conn.transport.get_extra_info("sockname")
            return dest.transport, name[0], name[1]
        for server, proto in self._servers:
            if proto == dest.transport:
                name = server.sockets[0].getsockname()
                return proto, name[0], name[1]
        return dest.transport, "127.0.0.1", 5060

    # -- connections ------------------------------------------------------------
    def register_connection(self, conn: _Stream, proto: str, host: str, port: int) -> Address | None:
        if not self.conn_limit.acquire(host):
            log.warning("connection limit reached for %s", host)
            return None
        conn.counted = True
        conn_id = self._next_conn
        self._next_conn += 1
        self._conns[conn_id] = conn
        self._flows[(proto, host, port)] = conn_id
        conn.last_activity = self.loop.time()
        return Address(proto, host, port, conn_id)

    def forget_connection(self, conn: _Stream) -> None:
        addr = conn.address
        if addr is None or not conn.counted:
            return
        conn.counted = False
        self.conn_limit.release(addr.host)
        self._conns.pop(addr.conn_id or 0, None)
        if self._flows.get((addr.transport, addr.host, addr.port)) == addr.conn_id:
            del self._flows[(addr.transport, addr.host, addr.port)]

    @property
    def connections(self) -> int:
        return len(self._conns)

    def _schedule_housekeeping(self) -> None:
        if self._housekeeping is None:
            self._housekeeping = self.loop.call_later(1.0, self._housekeep)

    def _housekeep(self) -> None:
        self._housekeeping = None
        deadline = self.loop.time() - self.limits.tcp_idle_timeout_s
        for conn in [c for c in self._conns.values() if c.last_activity < deadline]:
            log.debug("closing idle connection %s", conn.address)
            conn.close()
        self._schedule_housekeeping()

    # -- the core's one timer -----------------------------------------------------
    def _arm_timer(self) -> None:
        deadline = self.core.next_timer()
        if deadline is not None:
            deadline = math.ceil(deadline / TIMER_GRID_S) * TIMER_GRID_S
        if deadline == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = None if deadline is None else self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = self._timer_at = None
        try:
            sends = self.core.handle_timer(self.loop.time())
        except Exception:
            self.errors += 1
            log.exception("error in SIP timers")
            sends = []
        self.send_all(sends)

    # -- shutdown -----------------------------------------------------------------
    def stop_listening(self) -> None:
        """Accept no new connections; UDP stays open for transactions in flight."""
        for server, _ in self._servers:
            server.close()

    async def close(self) -> None:
        self.stop_listening()
        for conn in list(self._conns.values()):
            conn.close()
        for sock in self._udp:
            if sock.transport is not None:
                sock.transport.close()
        if self._timer is not None:
            self._timer.cancel()
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            self._housekeeping = None
