"""RTP port allocation: real UDP sockets from a bounded range.

Theory of operation
-------------------
The range ``low..high`` is cut into slots of two ports: an even port for RTP
and the next odd one for RTCP (RFC 3550 §11).  With rtcp-mux (RFC 5761) only
the even port is bound; the odd one stays reserved with its slot, so pairs
never interleave.  A slot is taken by binding its sockets for real
(non-blocking, ``SO_REUSEADDR`` off): a port another process holds fails to
bind and is skipped, so there is no separate "is it free?" check to race
against.  The search starts after the last slot handed out (round robin), so
a port just released is not reused at once and late packets of the previous
call do not reach the next one.  Every allocation scans at most the whole
range once; a full range raises ``PortsExhausted`` (503).  ``release`` is
idempotent and ``in_use()`` counts bound ports, for the port-leak check.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from dataclasses import dataclass

from switch.sip.errors import LocalError

_SKIP = (errno.EADDRINUSE, errno.EACCES)  # taken by someone else: try the next slot


class PortsExhausted(LocalError):
    """No free RTP port in the range: the call cannot be anchored."""

    status = 503


@dataclass(eq=False, slots=True)
class PortPair:
    """The bound sockets of one slot; ``rtcp`` is None with rtcp-mux."""

    port: int  # the even RTP port
    rtp: socket.socket
    rtcp: socket.socket | None
    released: bool = False

    @property
    def rtcp_port(self) -> int:
        return self.port if self.rtcp is None else self.port + 1

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return (self.rtp,) if self.rtcp is None else (self.rtp, self.rtcp)


class PortAllocator:
    """Even/odd UDP port pairs on ``host`` (an IPv4 or IPv6 literal) within ``low..high``."""

    def __init__(self, low: int, high: int, host: str) -> None:
        first = low + (low & 1)
        if not 0 < first < high <= 65535:
            raise ValueError(f"RTP port range {low}-{high} holds no even/odd pair")
        self.host = host
        self.family = (
            socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
        )
        self.low, self.high = first, high
        self.capacity = (high - first + 1) // 2  # slots
        self._cursor = 0  # index of the next slot to try
        self._held: set[int] = set()
        self._bound = 0

    def in_use(self) -> int:
        """Ports bound now (2 per pair, 1 with rtcp-mux)."""
        return self._bound

    def allocate(self, mux: bool = False) -> PortPair:
        """Bind the next free slot; ``PortsExhausted`` when every slot is busy."""
        for _ in range(self.capacity):
            port = self.low + 2 * self._cursor
            self._cursor = (self._cursor + 1) % self.capacity
            if port in self._held:
                continue
            pair = self._bind_slot(port, mux)
            if pair is not None:
                self._held.add(port)
                self._bound += len(pair.sockets)
                return pair
        raise PortsExhausted(f"no free RTP port in {self.host} {self.low}-{self.high}")

    def release(self, pair: PortPair) -> None:
        """Close the pair's sockets and free its slot; a second call does nothing."""
        if pair.released:
            return
        pair.released = True
        for sock in pair.sockets:
            sock.close()
        self._held.discard(pair.port)
        self._bound -= len(pair.sockets)

    def _bind_slot(self, port: int, mux: bool) -> PortPair | None:
        rtp = self._bind(port)
        if rtp is None:
            return None
        if mux:
            return PortPair(port, rtp, None)
        try:
            rtcp = self._bind(port + 1)
        except BaseException:
            rtp.close()
            raise
        if rtcp is None:
            rtp.close()
            return None
        return PortPair(port, rtp, rtcp)

    def _bind(self, port: int) -> socket.socket | None:
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
            sock.bind((self.host, port))
        except BaseException as exc:
            sock.close()
            if isinstance(exc, OSError) and exc.errno in _SKIP:
                return None
            raise
        return sock
