"""A minimal SIP device on a raw UDP socket: registers with digest, answers OPTIONS.

For the end-to-end tests that need to control exactly what a phone does at
each step (answer a qualify or not, die after a REGISTER).  Loopback only.
"""

from __future__ import annotations

import hashlib
import re
import socket
import uuid

DOMAIN = "demo.centrala.test"


def _h(alg: str, text: str) -> str:
    return (hashlib.sha256 if alg == "SHA-256" else hashlib.md5)(text.encode()).hexdigest()


class SipDevice:
    def __init__(self, server: tuple[str, int], user: str, password: str,
                 host: str = "127.0.0.1") -> None:
        self.server = server
        self.user = user
        self.password = password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(3)
        self.host, self.port = self.sock.getsockname()
        self.call_id = f"{uuid.uuid4().hex}@{host}"
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def _register(self, expires: int, authorization: str | None) -> str:
        self.cseq += 1
        lines = [
            f"REGISTER sip:{DOMAIN} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.host}:{self.port};branch=z9hG4bK{uuid.uuid4().hex};rport",
            "Max-Forwards: 70",
            f"From: <sip:{self.user}@{DOMAIN}>;tag={self.port}",
            f"To: <sip:{self.user}@{DOMAIN}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} REGISTER",
            f"Contact: <sip:{self.user}@{self.host}:{self.port}>",
            f"Expires: {expires}",
        ]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        lines += ["Content-Length: 0", "", ""]
        self.sock.sendto("\r\n".join(lines).encode(), self.server)
        return self.final_response()

    def final_response(self) -> str:
        while True:
            data = self.sock.recv(65535).decode(errors="replace")
            if data.startswith("SIP/2.0 ") and not data.startswith("SIP/2.0 1"):
                return data

    def register(self, expires: int = 300) -> str:
        """REGISTER, answer the challenge; the final response's text."""
        first = self._register(expires, None)
        if not first.startswith("SIP/2.0 401"):
            return first
        challenge = re.search(r"WWW-Authenticate: Digest ([^\r\n]*)", first)
        assert challenge is not None, first
        p = dict(re.findall(r'(\w+)="?([^",]+)"?', challenge.group(1)))
        alg, uri, cnonce = p["algorithm"], f"sip:{DOMAIN}", uuid.uuid4().hex[:8]
        ha1 = _h(alg, f"{self.user}:{p['realm']}:{self.password}")
        ha2 = _h(alg, f"REGISTER:{uri}")
        resp = _h(alg, f"{ha1}:{p['nonce']}:00000001:{cnonce}:auth:{ha2}")
        auth = (f'Digest username="{self.user}", realm="{p["realm"]}", nonce="{p["nonce"]}", '
                f'uri="{uri}", response="{resp}", algorithm={alg}, qop=auth, nc=00000001, '
                f'cnonce="{cnonce}"')
        return self._register(expires, auth)

    def drain(self) -> int:
        """Forget every datagram already queued (a silent phone's backlog)."""
        self.sock.setblocking(False)
        dropped = 0
        try:
            while True:
                self.sock.recv(65535)
                dropped += 1
        except BlockingIOError:
            return dropped
        finally:
            self.sock.settimeout(3)

    def answer_options(self, count: int) -> int:
        """Answer up to ``count`` OPTIONS with 200 (until a 3 s silence)."""
        answered = 0
        while answered < count:
            try:
                data = self.sock.recv(65535).decode(errors="replace")
            except TimeoutError:
                break
            if not data.startswith("OPTIONS "):
                continue
            head = data.split("\r\n\r\n", 1)[0].split("\r\n")
            keep = [h for h in head[1:] if h.split(":", 1)[0].lower()
                    in ("via", "from", "to", "call-id", "cseq")]
            reply = "\r\n".join(["SIP/2.0 200 OK", *keep, "Content-Length: 0", "", ""])
            self.sock.sendto(reply.encode(), self.server)
            answered += 1
        return answered
