"""Helpers for the registrar, licence and security end-to-end tests.

* a test licence authority (``centrala licence keygen`` / ``issue``, the real CLI)
  and :func:`licensed_config`: a copied configuration whose tenant
  ``demo.centrala.test`` has N generated extensions and is licensed only by
  that authority;
* :func:`cli` / :func:`registrations` / :func:`port_licence_counts`: the
  ``centrala`` operator commands against a running process;
* :class:`SipUdpClient`: a small REGISTER client (UDP, digest MD5 or SHA-256)
  for exact checks of single responses; load and brute force use SIPp;
* :func:`received_messages`: the messages SIPp received, from its trace.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from tests.e2e.conftest import Centrala, centrala_bin

DOMAIN = "demo.centrala.test"
FIRST_NUMBER = 2000
CLI_TIMEOUT_S = 30.0


def number(i: int) -> str:
    """The i-th generated extension (0-based)."""
    return str(FIRST_NUMBER + i)


def password(user: str) -> str:
    return f"pw-{user}-secret"


# --------------------------------------------------------------------------- CLI


def cli(
    *args: str, check: bool = True, timeout: float = CLI_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``centrala ARGS``; with ``check`` a non-zero exit fails with its output."""
    proc = subprocess.run(
        [str(centrala_bin()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check:
        assert proc.returncode == 0, (
            f"centrala {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc


def ops(
    c: Centrala, command: str, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """An operator command against the running process ``c`` (its config and state)."""
    return cli(command, "-c", str(c.config_dir), "--state", str(c.state_dir), *args, check=check)


@dataclass(frozen=True)
class Registration:
    aor: str
    contact: str
    expires: int
    source: str
    state: str


def registrations(c: Centrala, tenant: str | None = None) -> list[Registration]:
    """``centrala registrations``, parsed (``aor<TAB>contact<TAB>Ns<TAB>source<TAB>state``)."""
    out = ops(c, "registrations", *(["--tenant", tenant] if tenant else [])).stdout
    rows = []
    for line in out.splitlines():
        if not line.strip():
            continue
        aor, contact, expires, source, state = line.split("\t")
        assert expires.endswith("s"), line
        rows.append(Registration(aor, contact, int(expires[:-1]), source, state))
    return rows


def contacts_of(c: Centrala, user: str) -> dict[str, int]:
    """Contact URI -> remaining seconds of one AOR, from ``centrala registrations``."""
    aor = f"{user}@{DOMAIN}"
    return {r.contact: r.expires for r in registrations(c) if r.aor == aor}


def port_licence_counts(text: str, kind: str = "PBX-Port") -> tuple[int, int, str]:
    """(installed, valid, in use) of ``kind`` from ``centrala licences`` output."""
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == kind:
            return int(parts[1]), int(parts[2]), parts[3]
    raise AssertionError(f"no {kind} line in:\n{text}")


def start_on_state(
    start_centrala: Callable[..., Centrala], config_dir: Path, state_dir: Path
) -> Centrala:
    """Start centrala on an existing state directory (the CLI's last ``--state`` wins)."""
    c = start_centrala(config_dir, extra_args=["--state", str(state_dir)])
    c.state_dir = state_dir
    return c


# --------------------------------------------------------------------------- licences


@dataclass(frozen=True)
class Authority:
    """A licence authority made by ``centrala licence keygen``."""

    folder: Path

    @classmethod
    def create(cls, folder: Path) -> Authority:
        cli("licence", "keygen", "--out", str(folder))
        return cls(folder)

    @property
    def key(self) -> Path:
        return self.folder / "authority.key"

    @property
    def pub(self) -> Path:
        return self.folder / "authority.pub"

    def issue(
        self, out: Path, *items: str, tenant: str = DOMAIN, serial: str | None = None
    ) -> Path:
        args = ["licence", "issue", "--key", str(self.key), "--tenant", tenant, "--out", str(out)]
        for item in items:
            args += ["--item", item]
        if serial:
            args += ["--serial", serial]
        cli(*args)
        return out


def write_tenant(config_dir: Path, users: int, max_contacts: int = 5) -> list[str]:
    """Replace the demo tenant by one with ``users`` generated extensions; their numbers."""
    numbers = [number(i) for i in range(users)]
    lines = [f"domain: {DOMAIN}", "name: Generated Test Tenant", "extensions:"]
    for n in numbers:
        lines += [
            f"  - number: {n}",
            f"    name: User {n}",
            f"    password: {password(n)}",
            f"    max_contacts: {max_contacts}",
        ]
    (config_dir / "tenants" / "demo.yaml").write_text("\n".join(lines) + "\n")
    return numbers


def licensed_config(
    config_copy: Callable[..., Path],
    authority: Authority,
    *,
    users: int,
    ports: str,
    max_contacts: int = 5,
    **overrides: Any,
) -> Path:
    """A config copy: ``users`` generated extensions, licensed only by ``authority``
    with one licence of ``PBX-Port:<ports>`` (``COUNT[:VERSION]``)."""
    config = config_copy(**overrides)
    licences = config / "licences"
    for path in (licences / "demo.lic", licences / "authority.pub"):
        path.unlink()
    shutil.copy(authority.pub, licences / "test-authority.pub")
    authority.issue(licences / "test.lic", f"PBX-Port:{ports}")
    write_tenant(config, users, max_contacts)
    return config


SIPP_SECURITY = {"digest_algorithms": ["MD5"]}  # SIPp 3.6.1: MD5, first challenge only
NO_RATE_LIMIT = {"requests_per_second": 100000.0, "request_burst": 100000}
NO_QUALIFY = {"qualify_interval_s": 0}  # no OPTIONS to the test's devices


# --------------------------------------------------------------------------- SIPp traces


def received_messages(trace: str) -> list[str]:
    """The SIP messages SIPp received, in order, from its ``-trace_msg`` file."""
    chunks = re.split(r"^-{20,}.*$", trace, flags=re.MULTILINE)
    out = []
    for chunk in chunks:
        m = re.search(r"message received \[\d+\] bytes :\s*\n\n(.*)", chunk, flags=re.DOTALL)
        if m:
            out.append(m.group(1).strip())
    return out


def header_values(message: str, name: str) -> list[str]:
    """Every value of header ``name`` (case-insensitive) in one SIP message text."""
    values = []
    for line in message.splitlines()[1:]:
        if not line.strip():
            break
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            values.append(value.strip())
    return values


def write_users_csv(path: Path, users: Sequence[str]) -> Path:
    """SIPp injection file: ``user;[authentication username=.. password=..]`` (BENCH gotcha 2)."""
    rows = ["SEQUENTIAL"]
    rows += [f"{u};[authentication username={u} password={password(u)}]" for u in users]
    path.write_text("\n".join(rows) + "\n")
    return path


# --------------------------------------------------------------------------- a UDP client


@dataclass
class SipResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    raw: str = ""

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def one(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def contact_expires(self) -> dict[str, int]:
        """Contact URI -> ``expires`` parameter, over every Contact of the response."""
        out = {}
        for value in self.all("Contact"):
            for part in _split_commas(value):
                m = re.match(r"\s*(?:\"[^\"]*\"\s*)?<([^>]*)>(.*)", part)
                assert m, f"unparsed Contact {part!r} in\n{self.raw}"
                e = re.search(r";\s*expires=(\d+)", m.group(2))
                assert e, f"Contact without expires: {part!r}\n{self.raw}"
                out[m.group(1)] = int(e.group(1))
        return out


def _split_commas(value: str) -> list[str]:
    parts, depth, cur, quoted = [], 0, "", False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p for p in parts + [cur] if p.strip()]


def parse_response(data: bytes) -> SipResponse:
    text = data.decode("utf-8", "replace")
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.split("\r\n")
    version, status, *reason = lines[0].split(" ", 2)
    assert version == "SIP/2.0", f"not a response: {lines[0]!r}"
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return SipResponse(int(status), reason[0] if reason else "", headers, text)


def _digest_params(header: str) -> dict[str, str]:
    return {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in re.finditer(r'([A-Za-z-]+)=(?:"([^"]*)"|([^,\s]+))', header)
    }


class SipUdpClient:
    """One "device": a UDP socket on ``local_ip`` whose port is in its Contact."""

    def __init__(self, target: tuple[str, int], local_ip: str = "127.0.0.1") -> None:
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, 0))
        self.local = self.sock.getsockname()
        self.call_id = f"{secrets.token_hex(8)}@{local_ip}"
        self.cseq = 0
        self.tag = secrets.token_hex(4)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def contact_uri(self, user: str) -> str:
        return f"sip:{user}@{self.local[0]}:{self.local[1]}"

    def request(
        self,
        user: str,
        *,
        contact: str | None = "",
        expires: int | None = None,
        authorization: str | None = None,
        call_id: str | None = None,
        cseq: int | None = None,
        timeout: float = 2.0,
    ) -> SipResponse | None:
        """Send one REGISTER; the final response, or None when nothing came back.

        ``contact=""`` is this device's own Contact, ``None`` no Contact (a query).
        """
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        contact = f"<{self.contact_uri(user)}>" if contact == "" else contact
        branch = "z9hG4bK" + secrets.token_hex(8)
        lines = [
            f"REGISTER sip:{DOMAIN} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.local[0]}:{self.local[1]};rport;branch={branch}",
            "Max-Forwards: 70",
            f"From: <sip:{user}@{DOMAIN}>;tag={self.tag}",
            f"To: <sip:{user}@{DOMAIN}>",
            f"Call-ID: {call_id or self.call_id}",
            f"CSeq: {cseq} REGISTER",
        ]
        if contact is not None:
            lines.append(f"Contact: {contact}")
        if expires is not None:
            lines.append(f"Expires: {expires}")
        if authorization is not None:
            lines.append(f"Authorization: {authorization}")
        lines += ["User-Agent: centrala-e2e", "Content-Length: 0", "", ""]
        data = "\r\n".join(lines).encode()
        return self._transact(data, branch, timeout)

    def _transact(self, data: bytes, branch: str, timeout: float) -> SipResponse | None:
        deadline = time.monotonic() + timeout
        interval = 0.5  # T1; retransmit like a UAC would (RFC 3261 §17.1.2.2)
        self.sock.sendto(data, self.target)
        next_send = time.monotonic() + interval
        while (now := time.monotonic()) < deadline:
            self.sock.settimeout(max(0.01, min(next_send, deadline) - now))
            try:
                reply, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                if time.monotonic() >= next_send:
                    self.sock.sendto(data, self.target)
                    interval = min(interval * 2, 4.0)
                    next_send = time.monotonic() + interval
                continue
            if not reply.startswith(b"SIP/2.0 "):
                continue  # a request to this device (a qualify OPTIONS): not ours to check
            resp = parse_response(reply)
            if branch not in (resp.one("Via") or "") or resp.status < 200:
                continue  # a stray answer to an earlier request, or provisional
            return resp
        return None

    def register(
        self,
        user: str,
        secret: str,
        *,
        algorithm: str = "MD5",
        **kwargs: Any,
    ) -> SipResponse | None:
        """REGISTER, answer the 401 with digest credentials; the final response.

        ``kwargs`` go to both requests (``cseq`` is the first one's; the
        authenticated one uses the next number)."""
        first = self.request(user, **kwargs)
        if first is None or first.status != 401:
            return first
        cseq = kwargs.pop("cseq", None)
        if cseq is not None:
            kwargs["cseq"] = cseq + 1
        auth = digest_authorization(first, user, secret, algorithm=algorithm)
        return self.request(user, authorization=auth, **kwargs)


def expect(resp: SipResponse | None, status: int) -> SipResponse:
    """``resp`` when it is a final response with ``status``; fails with it otherwise."""
    assert resp is not None, f"no final response (expected {status})"
    assert resp.status == status, f"expected {status}, got:\n{resp.raw}"
    return resp


def digest_authorization(
    challenge: SipResponse,
    user: str,
    secret: str,
    *,
    algorithm: str = "MD5",
    method: str = "REGISTER",
) -> str:
    """RFC 7616 credentials (qop=auth) answering the challenge for ``algorithm``."""
    chosen = None
    for value in challenge.all("WWW-Authenticate"):
        params = _digest_params(value)
        if params.get("algorithm", "MD5").upper() == algorithm:
            chosen = params
            break
    assert chosen is not None, f"no {algorithm} challenge in\n{challenge.raw}"
    h = hashlib.md5 if algorithm == "MD5" else hashlib.sha256
    uri = f"sip:{DOMAIN}"
    realm, nonce = chosen["realm"], chosen["nonce"]
    cnonce, nc = secrets.token_hex(8), "00000001"
    ha1 = h(f"{user}:{realm}:{secret}".encode()).hexdigest()
    ha2 = h(f"{method}:{uri}".encode()).hexdigest()
    response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}".encode()).hexdigest()
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc}, cnonce="{cnonce}"'
    )


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds passed (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
