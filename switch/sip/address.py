"""Where a message came from or goes to: transport, host, port, and flow.

``conn_id`` names the TCP/TLS connection a request arrived on, so that its
responses go back on the same connection (RFC 3261 §18.2.2) and later
requests reuse the flow (RFC 5626).  UDP addresses have no ``conn_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

RELIABLE_TRANSPORTS = frozenset({"tcp", "tls", "ws", "wss", "sctp"})


@dataclass(frozen=True, slots=True)
class Address:
    transport: str  # "udp", "tcp" or "tls", lower case
    host: str  # IP address, IPv6 without brackets
    port: int
    conn_id: int | None = None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, transport: str, host: str, port: int, conn_id: int | None = None) -> None:
        self.transport = transport  # type: ignore[misc]
        self.host = host  # type: ignore[misc]
        self.port = port  # type: ignore[misc]
        self.conn_id = conn_id  # type: ignore[misc]

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE_TRANSPORTS

    @property
    def host_port(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        return f"{self.transport}:{self.host_port}"
