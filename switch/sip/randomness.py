"""Cryptographically random bytes for tags, branches, Call-IDs and nonces.

RFC 3261 §19.3 wants tags and Call-IDs "cryptographically random".  One
``os.urandom`` call per tag costs a system call (several µs on a VM); this
draws the same kernel randomness in 4 KiB blocks and hands out slices, each
byte used once.  A forked child starts with an empty pool, so parent and
child never share output.
"""

from __future__ import annotations

import os

_BLOCK = 4096
_pool = b""
_pos = 0


def token_bytes(n: int) -> bytes:
    global _pool, _pos
    if _pos + n > len(_pool):
        _pool, _pos = os.urandom(max(_BLOCK, n)), 0
    out = _pool[_pos : _pos + n]
    _pos += n
    return out


def token_hex(n: int) -> str:
    return token_bytes(n).hex()


def _forget() -> None:
    global _pool, _pos
    _pool, _pos = b"", 0


os.register_at_fork(after_in_child=_forget)
