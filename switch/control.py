"""The control socket: how ``centrala`` commands talk to the running switch.

A Unix socket in the state directory (mode 0600: only the switch's user),
one JSON request per line, one JSON answer per line:
``{"cmd": "bans"}`` -> ``{"ok": true, "result": ...}``.  Commands are
registered by the parts of the switch that own the data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import hashlib
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("centrala.control")

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024
_SUN_PATH_MAX = 100  # sockaddr_un holds 108 bytes


def socket_path(state_dir: Path) -> Path:
    """``<state>/control.sock``, or a short stand-in under the temp directory when
    the state directory's path is too long for a Unix socket address."""
    path = state_dir.resolve() / SOCKET_NAME
    if len(os.fsencode(path)) < _SUN_PATH_MAX:
        return path
    digest = hashlib.sha256(os.fsencode(path)).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / f"centrala-{os.getuid()}"
    return folder / f"{digest}.sock"

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class ControlServer:
    def __init__(self, state_dir: Path) -> None:
        self.path = socket_path(state_dir)
        self.handlers: dict[str, Handler] = {}
        self._server: asyncio.AbstractServer | None = None

    def register(self, cmd: str, handler: Handler) -> None:
        self.handlers[cmd] = handler

    async def start(self) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=10)
            writer.write(json.dumps(await self._answer(line)).encode() + b"\n")
            await writer.drain()
        except (asyncio.TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line[:MAX_REQUEST])
            handler = self.handlers[request["cmd"]]
        except (ValueError, KeyError, TypeError):
            return {"ok": False, "error": "unknown or malformed command"}
        try:
            return {"ok": True, "result": await handler(request)}
        except Exception as exc:  # a failing command must not take the switch down
            log.exception("control command %s failed", request.get("cmd"))
            return {"ok": False, "error": str(exc)}


def call(state_dir: Path, cmd: str, timeout: float = 10.0, **args: Any) -> Any:
    """Client side (blocking, for the CLI). Raises ``ConnectionError`` if the
    switch is not running, ``RuntimeError`` if the command failed."""
    path = socket_path(state_dir)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ConnectionError(f"centrala is not running (no {path})") from exc
        s.sendall(json.dumps({"cmd": cmd, **args}).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    answer = json.loads(data)
    if not answer.get("ok"):
        raise RuntimeError(answer.get("error", "command failed"))
    return answer["result"]
