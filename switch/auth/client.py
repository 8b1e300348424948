"""Digest on the client side: answering a provider's 401/407 (RFC 3261 §22.2,
RFC 7616, RFC 8760).

Used where Centrala is the UA: registering a trunk to a carrier and sending
INVITEs to a trunk that challenges.  The strongest algorithm offered wins
(SHA-256 over MD5); ``qop=auth`` is used whenever the server offers it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from ..sip.message import Response
from .digest import MalformedDigest, parse_auth_params

_HASHES = {"SHA-256": hashlib.sha256, "MD5": hashlib.md5}
_PREFERENCE = ("SHA-256", "MD5")


@dataclass(frozen=True, slots=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str
    qop: str | None
    opaque: str | None
    stale: bool


def pick_challenge(resp: Response) -> tuple[str, Challenge] | None:
    """The header to answer (``Authorization`` or ``Proxy-Authorization``) and the
    strongest usable challenge of a 401/407, or None if none is usable."""
    header, answer = (
        ("www-authenticate", "Authorization")
        if resp.status == 401
        else ("proxy-authenticate", "Proxy-Authorization")
    )
    found: list[Challenge] = []
    for value in resp.get_all(header):
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "digest":
            continue
        try:
            params = parse_auth_params(rest)
        except MalformedDigest:
            continue
        algorithm = params.get("algorithm", "MD5").upper()
        qops = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
        if algorithm not in _HASHES or "realm" not in params or "nonce" not in params:
            continue
        if qops and "auth" not in qops:
            continue
        found.append(Challenge(
            params["realm"], params["nonce"], algorithm, "auth" if qops else None,
            params.get("opaque"), params.get("stale", "").lower() == "true",
        ))
    if not found:
        return None
    found.sort(key=lambda c: _PREFERENCE.index(c.algorithm))
    return answer, found[0]


def authorization(
    challenge: Challenge, method: str, uri: str, username: str, password: str, nc: int = 1
) -> str:
    """The value of the Authorization / Proxy-Authorization header."""
    h = _HASHES[challenge.algorithm]

    def hx(text: str) -> str:
        return h(text.encode()).hexdigest()

    ha1 = hx(f"{username}:{challenge.realm}:{password}")
    ha2 = hx(f"{method}:{uri}")
    parts = [
        f'username="{username}"', f'realm="{challenge.realm}"', f'nonce="{challenge.nonce}"',
        f'uri="{uri}"', f"algorithm={challenge.algorithm}",
    ]
    if challenge.qop:
        cnonce, count = secrets.token_hex(8), f"{nc:08x}"
        response = hx(f"{ha1}:{challenge.nonce}:{count}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={count}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{hx(f"{ha1}:{challenge.nonce}:{ha2}")}"')
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)
