"""UDP, TCP, TLS and IPv6 listeners of the real process; per-source limits."""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path
from typing import Callable

from tests.e2e.conftest import Centrala, options_probe


def options_request(transport: str, host: str, local: tuple[str, int]) -> bytes:
    lhost = f"[{local[0]}]" if ":" in local[0] else local[0]
    return (
        f"OPTIONS sip:{host} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {lhost}:{local[1]};rport;branch=z9hG4bK{time.monotonic_ns()}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:t@example.com>;tag=1\r\nTo: <sip:t@example.com>\r\n"
        f"Call-ID: {time.monotonic_ns()}@t\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_options_over_tls_with_the_self_signed_certificate(centrala: Centrala) -> None:
    ctx = ssl.create_default_context(cafile=str(centrala.state_dir / "tls" / "self-signed.crt"))
    ctx.check_hostname = False  # the certificate names localhost/127.0.0.1; SNI is not needed
    with socket.create_connection((centrala.host, centrala.tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as tls:
            tls.sendall(options_request("TLS", centrala.host, tls.getsockname()))
            reply = tls.recv(65535)
            assert reply.startswith(b"SIP/2.0 200 OK"), reply
            # the flow stays open: a CRLF keep-alive ping gets its pong (RFC 5626 §4.4.1)
            tls.sendall(b"\r\n\r\n")
            assert tls.recv(16) == b"\r\n"


def free_udp6_port() -> int:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.bind(("::1", 0))
        return int(s.getsockname()[1])


def test_ipv6_listener(start_centrala: Callable[..., Centrala]) -> None:
    port = free_udp6_port()
    start_centrala(extra_args=["-l", f"udp:[::1]:{port}"])
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.bind(("::1", 0))
        s.sendto(options_request("UDP", "[::1]", s.getsockname()[:2]), ("::1", port))
        reply, _ = s.recvfrom(65535)
    assert reply.startswith(b"SIP/2.0 200 OK"), reply
    assert b"received=::1" in reply or b"rport=" in reply


def test_request_rate_limit_per_source(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path]
) -> None:
    config = config_copy(limits={"requests_per_second": 5.0, "request_burst": 10})
    c = start_centrala(config)
    time.sleep(2.5)  # the readiness probes spent tokens: let the bucket refill
    answered = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.5)
        for _ in range(40):  # bounded burst, loopback only
            s.sendto(options_request("UDP", c.host, s.getsockname()), (c.host, c.udp_port))
        try:
            while True:
                s.recvfrom(65535)
                answered += 1
        except TimeoutError:
            pass
    assert 8 <= answered <= 14, answered  # the burst, plus what refilled meanwhile
    time.sleep(1.0)
    assert options_probe(c.host, c.udp_port) == "SIP/2.0 200 OK"  # tokens came back


def test_connection_limit_per_source(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path]
) -> None:
    config = config_copy(limits={"max_connections_per_source": 3})
    c = start_centrala(config)
    conns = [socket.create_connection((c.host, c.tcp_port), timeout=3) for _ in range(5)]
    try:
        alive = []
        for conn in conns:
            conn.sendall(options_request("TCP", c.host, conn.getsockname()))
            try:
                alive.append(conn.recv(65535).startswith(b"SIP/2.0 200"))
            except (ConnectionResetError, TimeoutError):
                alive.append(False)
        assert alive.count(True) == 3, alive
    finally:
        for conn in conns:
            conn.close()
