"""HTTP Digest authentication for SIP, sans-IO (RFC 3261 §22, RFC 7616, RFC 8760).

Theory of operation
-------------------
``DigestAuth`` issues challenges and checks credentials; it reads no clock and
opens no socket: the caller passes ``now`` (wall-clock epoch seconds) and a
``lookup(username) -> Credentials | None`` callable, and turns the result into
a response (``401``/``407`` with ``challenge()`` values, or on to the registrar).

Nonces are self-validating, so issuing one costs no memory::

    nonce = base64url(timestamp_ms (8) || random (8) || MAC(secret, ts || rnd || realm) (16))

The MAC is keyed BLAKE2b (RFC 7693 §2.5, a PRF like HMAC, at a third of
HMAC-SHA256's cost here: a challenge makes two nonces, one per algorithm).
The random part keeps two challenges issued in the same millisecond apart,
so their nonce-counts are tracked separately.  The MAC binds a nonce to its
realm; its age gives ``STALE`` (RFC 7616 §3.3: only when the response was
otherwise right).  Persist ``secret`` and nonces survive a restart.

Replay protection (RFC 7616 §3.4, §5.3): after a *verified* response, the
nonce-count is recorded per nonce and must strictly increase; an RFC 2069
response (no ``qop``, no ``nc``) uses its nonce up.  The table is bounded:
expired nonces are forgotten first; when still full, the least recently
first-used nonce is evicted and its issue time raises a floor under which an
untracked nonce is answered ``STALE`` — a replay after eviction can never
pass, a legitimate client merely gets a fresh nonce.

Account enumeration (CVE-2011-2536 family): an unknown user and a wrong
password both give ``FAILED`` after the same amount of hashing (a dummy
``Credentials`` stands in for the unknown user); only ``reason`` — for the
log — differs.  The caller must answer both with ``challenge_for(result)``,
which depends on the outcome alone, never on the user.

Authorisation is the caller's job (CVE-2009-3727): ``AuthResult.username`` is
the *authenticated* identity, and the registrar must check that this user owns
the AOR in the To header (the proxy: the From identity) before acting on it.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from switch.sip.grammar import TOKEN_CHARS, quote
from switch.sip.message import Request
from switch.sip.randomness import token_bytes

# -- bounds on what a peer controls (BAD_INPUTS.md item 11) ---------------------
MAX_HEADER_LEN = 4096  # Kamailio sanity uses 2048/8192; 4 KiB fits every real client
MAX_USERNAME_LEN = 256


class _Hash(Protocol):
    def hexdigest(self) -> str: ...


HashFn = Callable[[bytes], _Hash]

# RFC 7616 §3.2 / RFC 8760 §2: the registry of digest algorithms; a "-sess"
# variant uses the same hash with the session HA1 of RFC 7616 §3.4.2.
HASHES: dict[str, HashFn] = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
_HEX_LEN = {"MD5": 32, "SHA-256": 64}


def _b(text: str) -> bytes:
    """Bytes as they came off the wire (the SIP parser decodes with surrogateescape)."""
    return text.encode("utf-8", "surrogateescape")


def _h(algorithm: str, data: str) -> str:
    return HASHES[algorithm](_b(data)).hexdigest()


# ---------------------------------------------------------------------------
# Credentials and results
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the user store knows about one user: ``HA1`` per algorithm, in hex.

    RFC 7616 §3.4.2: ``HA1 = H(username ":" realm ":" password)``.  ``ha1``
    maps an algorithm name (``"MD5"``, ``"SHA-256"``) to its HA1; ``ha1_for``
    reads it (a field and a method cannot both be called ``ha1``).

    Operators that keep only HA1 values must store one per algorithm offered
    in the realm's challenge: a client answers the first challenge whose
    algorithm it supports (RFC 8760 §2.4), so a user with only an MD5 HA1
    cannot log in from a SHA-256-capable client while SHA-256 is offered —
    configure ``DigestAuth(algorithms=("MD5",))`` for such a realm.
    """

    username: str
    realm: str
    ha1: dict[str, str]

    def __post_init__(self) -> None:
        object.__setattr__(self, "ha1", {alg: v.lower() for alg, v in self.ha1.items()})

    @classmethod
    def from_password(cls, username: str, realm: str, password: str) -> Credentials:
        a1 = f"{username}:{realm}:{password}"
        return cls(username, realm, {alg: _h(alg, a1) for alg in HASHES})

    @classmethod
    def from_ha1(
        cls, username: str, realm: str, md5: str | None = None, sha256: str | None = None
    ) -> Credentials:
        pairs = (("MD5", md5), ("SHA-256", sha256))
        return cls(username, realm, {alg: v for alg, v in pairs if v is not None})

    def ha1_for(self, algorithm: str) -> str | None:
        """HA1 for ``algorithm`` (``"-sess"`` variants use their base HA1), or None."""
        return self.ha1.get(algorithm.upper().removesuffix("-SESS"))


class AuthOutcome(enum.Enum):
    OK = "ok"
    NO_CREDENTIALS = "no-credentials"  # no Authorization for this realm: challenge
    STALE = "stale"  # right password, expired nonce: challenge with stale=true
    FAILED = "failed"  # unknown user, wrong password, replay, bad nonce...: challenge
    MALFORMED = "malformed"  # unparseable credentials: 400 (or challenge)


@dataclass(frozen=True, slots=True)
class AuthResult:
    """Outcome of ``DigestAuth.check``.

    ``username`` is the Digest username (also on failures, for the log and the
    ban list); on ``OK`` it is the authenticated identity, which the caller
    must match against the AOR (CVE-2009-3727).  ``reason`` is for logs only
    and must never reach the peer.
    """

    outcome: AuthOutcome
    username: str | None = None
    reason: str = ""

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, outcome: AuthOutcome, username: str | None = None, reason: str = "") -> None:
        self.outcome = outcome  # type: ignore[misc]
        self.username = username  # type: ignore[misc]
        self.reason = reason  # type: ignore[misc]

    @property
    def ok(self) -> bool:
        return self.outcome is AuthOutcome.OK


Lookup = Callable[[str], Credentials | None]


class Authenticator(Protocol):
    """What the registrar and the B2BUA need of digest authentication."""

    def check(self, request: Request, realm: str, lookup: Lookup, now: float, *,
              header: str = "authorization") -> AuthResult: ...

    def challenge_for(self, result: AuthResult, realm: str, now: float) -> list[str]: ...


# ---------------------------------------------------------------------------
# Parsing the credentials (RFC 7616 §3.4, RFC 3261 §25.1 digest-response)
# ---------------------------------------------------------------------------


class MalformedDigest(ValueError):
    """Credentials that cannot be parsed; never leaves this module."""


_REQUIRED = ("username", "realm", "nonce", "uri", "response")

# The scanners below replace the regular expressions this module used (kept
# as oracles in tests/unit/test_parser_scanners.py): compiled by mypyc, a loop
# over ``ord()`` costs nanoseconds where an ``re`` call costs a microsecond,
# and every authenticated request parses one of these headers.


def _skip_blanks(text: str, i: int, end: int) -> int:
    while i < end and (ord(text[i]) == 32 or ord(text[i]) == 9):
        i += 1
    return i


def _unescape(quoted: str) -> str:
    """A quoted-string's content with its ``\\x`` quoted-pairs resolved."""
    out: list[str] = []
    i, n = 0, len(quoted)
    while i < n:
        c = quoted[i]
        if c == "\\" and i + 1 < n:
            i += 1
            c = quoted[i]
        out.append(c)
        i += 1
    return "".join(out)


def parse_auth_params(text: str) -> dict[str, str]:
    """The ``name=value`` list after the scheme; names lower-cased, values unquoted.

    A value is a quoted-string or runs to the next comma, quote or blank, which
    also accepts the unquoted uri some old clients send.  A duplicated
    parameter, an unterminated quote, or anything that is not a param list
    raises ``MalformedDigest``.
    """
    params: dict[str, str] = {}
    i, end = 0, len(text)
    while i < end:
        i = _skip_blanks(text, i, end)
        start = i
        while i < end and text[i] in TOKEN_CHARS:
            i += 1
        if i == start:
            raise MalformedDigest("bad parameter list")
        name = text[start:i].lower()
        i = _skip_blanks(text, i, end)
        if i == end or text[i] != "=":
            raise MalformedDigest("bad parameter list")
        i = _skip_blanks(text, i + 1, end)
        if i < end and text[i] == '"':
            start = i + 1
            i = start
            while i < end and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            if i >= end:
                raise MalformedDigest("bad parameter list")
            value = text[start:i]
            if "\\" in value:
                value = _unescape(value)
            i += 1
        else:
            start = i
            while i < end:
                c = text[i]
                o = ord(c)
                if o == 44 or o == 34 or (o < 128 and (o == 32 or 9 <= o <= 13 or 28 <= o <= 31)) \
                        or (o >= 128 and c.isspace()):
                    break
                i += 1
            if i == start:
                raise MalformedDigest("bad parameter list")
            value = text[start:i]
        i = _skip_blanks(text, i, end)
        if i < end:
            if text[i] != ",":
                raise MalformedDigest("bad parameter list")
            i += 1
            while i < end and (ord(text[i]) == 32 or ord(text[i]) == 9 or ord(text[i]) == 44):
                i += 1
        if name in params:
            raise MalformedDigest(f"duplicate parameter {name}")
        params[name] = value
    return params


def split_scheme(value: str) -> tuple[str, str]:
    """``("digest", params)`` from ``Digest username=...`` (scheme lower-cased)."""
    end = len(value)
    start = _skip_blanks(value, 0, end)
    i = start
    while i < end and value[i] in TOKEN_CHARS:
        i += 1
    if i == start:
        raise MalformedDigest("no auth scheme")
    rest = _skip_blanks(value, i, end)
    if rest == i and i < end:
        raise MalformedDigest("no auth scheme")
    return value[start:i].lower(), value[rest:]


def _is_hex(text: str) -> bool:
    """Non-empty and only ASCII hex digits."""
    if not text:
        return False
    for c in text:
        o = ord(c)
        if not (48 <= o <= 57 or 97 <= o <= 102 or 65 <= o <= 70):
            return False
    return True


def _has_control(text: str) -> bool:
    for c in text:
        o = ord(c)
        if o < 32 or o == 127:
            return True
    return False


@dataclass(frozen=True, slots=True)
class DigestResponse:
    """The credentials of one ``Authorization: Digest`` header (RFC 7616 §3.4)."""

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str
    qop: str | None
    nc: str | None
    cnonce: str | None

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(
        self,
        username: str,
        realm: str,
        nonce: str,
        uri: str,
        response: str,
        algorithm: str,
        qop: str | None,
        nc: str | None,
        cnonce: str | None,
    ) -> None:
        self.username = username  # type: ignore[misc]
        self.realm = realm  # type: ignore[misc]
        self.nonce = nonce  # type: ignore[misc]
        self.uri = uri  # type: ignore[misc]
        self.response = response  # type: ignore[misc]
        self.algorithm = algorithm  # type: ignore[misc]
        self.qop = qop  # type: ignore[misc]
        self.nc = nc  # type: ignore[misc]
        self.cnonce = cnonce  # type: ignore[misc]

    @classmethod
    def parse(cls, params: dict[str, str]) -> DigestResponse:
        for name in _REQUIRED:
            if name not in params:
                raise MalformedDigest(f"missing {name}")
        username = params["username"]
        if not username or len(username) > MAX_USERNAME_LEN or _has_control(username):
            raise MalformedDigest("bad username")
        qop, nc, cnonce = params.get("qop"), params.get("nc"), params.get("cnonce")
        if qop is not None and (nc is None or cnonce is None or len(nc) != 8 or not _is_hex(nc)):
            raise MalformedDigest("qop without valid nc/cnonce")  # RFC 7616 §3.4
        if qop is None and (nc is not None or cnonce is not None):
            raise MalformedDigest("nc/cnonce without qop")
        response = params["response"]
        if not _is_hex(response):
            raise MalformedDigest("response not hex")
        for value in params.values():
            if not value.isascii():
                _b(value)  # lone surrogates cannot be hashed: reject them here
        return cls(
            username=username,
            realm=params["realm"],
            nonce=params["nonce"],
            uri=params["uri"],
            response=response.lower(),
            algorithm=params.get("algorithm", "MD5").upper(),  # RFC 7616 §3.4: MD5 if absent
            qop=qop,
            nc=nc,
            cnonce=cnonce,
        )


def _find_credentials(values: Iterable[str], realm: str) -> DigestResponse | None:
    """The Digest credentials for ``realm`` among the header values (§22.3).

    Other schemes and other realms are skipped; two Digest credentials for the
    same realm are malformed (one request must not test two passwords).
    """
    found: DigestResponse | None = None
    for value in values:
        if len(value) > MAX_HEADER_LEN:
            raise MalformedDigest("header too long")
        scheme, rest = split_scheme(value)
        if scheme != "digest":
            continue  # RFC 4475 §3.3.7: an unknown scheme is no credentials
        creds = DigestResponse.parse(parse_auth_params(rest))
        if creds.realm != realm:
            continue
        if found is not None:
            raise MalformedDigest("several credentials for the realm")
        found = creds
    return found


# ---------------------------------------------------------------------------
# Nonces
# ---------------------------------------------------------------------------

_TS = struct.Struct(">Q")
_RAND_LEN = 8
_MAC_LEN = 16
NONCE_LEN = 43  # base64url of 32 bytes, unpadded
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{43}\Z")
_RFC2069_USED = 1 << 32  # above any 8-hex-digit nc: the nonce is used up


@dataclass(frozen=True, slots=True)
class _Nonce:
    issued: float  # epoch seconds
    value: str

    # Written out: mypyc compiles this one, not the one @dataclass generates.
    def __init__(self, issued: float, value: str) -> None:
        self.issued = issued  # type: ignore[misc]
        self.value = value  # type: ignore[misc]


class NonceCodec:
    """Makes and validates self-validating nonces (no per-nonce state)."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret needs at least 16 bytes")
        # BLAKE2b takes a key of up to 64 bytes: a longer secret is hashed to one.
        self._secret = secret if len(secret) <= 64 else hashlib.blake2b(secret).digest()

    def _encode(self, ts_ms: int, rand: bytes, realm: str) -> str:
        head = _TS.pack(ts_ms) + rand
        mac = hashlib.blake2b(head + _b(realm), key=self._secret, digest_size=_MAC_LEN).digest()
        return base64.urlsafe_b64encode(head + mac).rstrip(b"=").decode("ascii")

    def make(self, realm: str, now: float) -> str:
        ts_ms = max(0, min(int(now * 1000), (1 << 64) - 1))
        return self._encode(ts_ms, token_bytes(_RAND_LEN), realm)

    def validate(self, nonce: str, realm: str) -> _Nonce | None:
        """The nonce's issue time if we made it for ``realm``, else None."""
        if not _NONCE_RE.match(nonce):
            return None
        raw = base64.urlsafe_b64decode(nonce + "=")
        (ts_ms,) = _TS.unpack_from(raw)
        expected = self._encode(ts_ms, raw[8 : 8 + _RAND_LEN], realm)
        if not hmac.compare_digest(expected, nonce):  # also rejects non-canonical base64
            return None
        return _Nonce(ts_ms / 1000, nonce)


class NonceCounts:
    """Highest nonce-count seen per nonce (RFC 7616 §3.4.3), bounded.

    ``nc=None`` is an RFC 2069 response, which may use a nonce only once and
    only if nothing used it before.
    """

    __slots__ = ("_lifetime", "_max", "_seen", "floor")

    def __init__(self, max_tracked: int, lifetime: float) -> None:
        self._seen: dict[str, tuple[int, float]] = {}  # nonce -> (last nc, issued)
        self._max = max(1, max_tracked)
        self._lifetime = lifetime
        self.floor = -1.0  # untracked nonces issued at or before this are STALE

    def __len__(self) -> int:
        return len(self._seen)

    def is_evicted(self, nonce: _Nonce) -> bool:
        return nonce.issued <= self.floor and nonce.value not in self._seen

    def accept(self, nonce: _Nonce, nc: int | None, now: float) -> bool:
        """Record ``nc`` for ``nonce`` if higher than any seen; False on a replay."""
        entry = self._seen.get(nonce.value)
        if entry is not None:
            if nc is None or nc <= entry[0]:
                return False
            self._seen[nonce.value] = (nc, entry[1])
            return True
        self._make_room(now)
        self._seen[nonce.value] = (_RFC2069_USED if nc is None else nc, nonce.issued)
        return True

    def _make_room(self, now: float) -> None:
        seen = self._seen
        horizon = now - self._lifetime
        while seen:  # forget expired nonces, in first-use order
            oldest = next(iter(seen))
            if seen[oldest][1] > horizon:
                break
            del seen[oldest]
        while len(seen) >= self._max:  # still full: evict, and raise the floor
            oldest = next(iter(seen))
            self.floor = max(self.floor, seen.pop(oldest)[1])


# ---------------------------------------------------------------------------
# The authenticator
# ---------------------------------------------------------------------------


def _normalise_uri(uri: str) -> str:
    """Trivial normalisation for comparing ``uri`` with the Request-URI.

    Surrounding blanks and ``<>`` go; the scheme and the host part are
    case-insensitive (RFC 3261 §19.1.4).  The user part and parameters are
    compared as written.
    """
    uri = uri.strip()
    if uri[:1] == "<" and uri[-1:] == ">":
        uri = uri[1:-1].strip()
    scheme, colon, rest = uri.partition(":")
    if not colon:
        return uri
    user, at, hostpart = rest.rpartition("@")
    cut = len(hostpart)
    for sep in (";", "?"):
        idx = hostpart.find(sep)
        if idx >= 0:
            cut = min(cut, idx)
    return f"{scheme.lower()}:{user}{at}{hostpart[:cut].lower()}{hostpart[cut:]}"


class DigestAuth:
    """Digest challenges and checks for any number of realms (RFC 7616 §3.3–3.4)."""

    def __init__(
        self,
        secret: bytes,
        nonce_lifetime_s: float = 300,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        max_tracked_nonces: int = 100_000,
    ) -> None:
        unknown = [a for a in algorithms if a not in HASHES]
        if unknown or not algorithms:
            raise ValueError(f"unsupported digest algorithms: {unknown or 'none'}")
        self._nonces = NonceCodec(secret)
        self._lifetime = nonce_lifetime_s
        self._algorithms = tuple(algorithms)
        self._counts = NonceCounts(max_tracked_nonces, nonce_lifetime_s)
        # Stands in for unknown users so they cost the same hashing (random password).
        self._dummy = Credentials.from_password("", "", secrets.token_hex(16))

    @property
    def algorithms(self) -> tuple[str, ...]:
        return self._algorithms

    @property
    def tracked_nonces(self) -> int:
        return len(self._counts)

    # -- challenges -----------------------------------------------------------
    def challenge(self, realm: str, now: float, *, stale: bool = False) -> list[str]:
        """``WWW-Authenticate`` / ``Proxy-Authenticate`` values, preferred first.

        RFC 8760 §2.4: one challenge per algorithm, the server's preference
        first; each carries its own nonce.  Nothing here depends on a user.
        """
        tail = ", stale=true" if stale else ""
        realm_q = quote(realm)
        return [
            f'Digest realm={realm_q}, nonce="{self._nonces.make(realm, now)}", '
            f'qop="auth", algorithm={alg}{tail}'
            for alg in self._algorithms
        ]

    def challenge_for(self, result: AuthResult, realm: str, now: float) -> list[str]:
        """The challenge to answer a non-OK ``result`` with (same for every user)."""
        return self.challenge(realm, now, stale=result.outcome is AuthOutcome.STALE)

    # -- checking -------------------------------------------------------------
    def check(
        self,
        request: Request,
        realm: str,
        lookup: Lookup,
        now: float,
        *,
        header: str = "authorization",
    ) -> AuthResult:
        """Verify the request's Digest credentials for ``realm``; never raises."""
        try:
            creds = _find_credentials(request.get_all(header), realm)
        except (MalformedDigest, UnicodeError) as exc:
            return AuthResult(AuthOutcome.MALFORMED, None, f"malformed header: {exc}")
        if creds is None:
            return AuthResult(AuthOutcome.NO_CREDENTIALS, None, "no credentials")
        return self._verify(request, creds, realm, lookup, now)

    def _verify(
        self, request: Request, creds: DigestResponse, realm: str, lookup: Lookup, now: float
    ) -> AuthResult:
        user = creds.username
        fail = self._precheck(request, creds)
        if fail is not None:
            return AuthResult(AuthOutcome.FAILED, user, fail)
        nonce = self._nonces.validate(creds.nonce, realm)
        if nonce is None:
            return AuthResult(AuthOutcome.FAILED, user, "bad nonce")
        fail = self._check_response(request.method, creds, realm, lookup)
        if fail is not None:
            return AuthResult(AuthOutcome.FAILED, user, fail)
        # RFC 7616 §3.3: stale only once the response proved the password.
        age = now - nonce.issued
        if not 0 <= age < self._lifetime or self._counts.is_evicted(nonce):
            return AuthResult(AuthOutcome.STALE, user, "stale nonce")
        nc = None if creds.nc is None else int(creds.nc, 16)
        if not self._counts.accept(nonce, nc, now):
            return AuthResult(AuthOutcome.FAILED, user, "nonce replay")
        return AuthResult(AuthOutcome.OK, user, "ok")

    def _precheck(self, request: Request, creds: DigestResponse) -> str | None:
        """User-independent checks; a reason string on failure."""
        base = creds.algorithm.removesuffix("-SESS")
        if base not in self._algorithms:
            return "unsupported algorithm"
        if base != creds.algorithm and creds.cnonce is None:
            return "session algorithm without cnonce"
        if creds.qop is not None and creds.qop.lower() != "auth":
            return "unsupported qop"  # only qop="auth" is offered
        if len(creds.response) != _HEX_LEN[base]:
            return "bad response length"
        if _normalise_uri(creds.uri) != _normalise_uri(request.uri_text):
            return "uri mismatch"  # RFC 7616 §3.4.6: digest-uri is the Request-URI
        return None

    def _check_response(
        self, method: str, creds: DigestResponse, realm: str, lookup: Lookup
    ) -> str | None:
        """None if the response is right, else the log reason.

        Unknown users (and users without an HA1 for the algorithm) are hashed
        against a dummy HA1, so every path costs one lookup and the same hashes.
        """
        base = creds.algorithm.removesuffix("-SESS")
        known = lookup(creds.username)
        ha1 = known.ha1.get(base) if known is not None and known.realm == realm else None
        if known is None or known.realm != realm:
            why = "unknown user"
        elif ha1 is None:
            why = "no HA1 for algorithm"
        else:
            why = "wrong password"
        expected = expected_response(method, creds, self._dummy.ha1[base] if ha1 is None else ha1)
        matches = hmac.compare_digest(_b(expected), _b(creds.response))
        return None if matches and ha1 is not None else why


def expected_response(method: str, creds: DigestResponse, ha1: str) -> str:
    """``request-digest`` of RFC 7616 §3.4.1 (RFC 2069 form without qop)."""
    alg = creds.algorithm.removesuffix("-SESS")
    if alg != creds.algorithm:  # RFC 7616 §3.4.2: session HA1
        ha1 = _h(alg, f"{ha1}:{creds.nonce}:{creds.cnonce}")
    ha2 = _h(alg, f"{method}:{creds.uri}")  # RFC 7616 §3.4.3, qop=auth
    if creds.qop is None:
        return _h(alg, f"{ha1}:{creds.nonce}:{ha2}")
    return _h(alg, f"{ha1}:{creds.nonce}:{creds.nc}:{creds.cnonce}:{creds.qop}:{ha2}")


__all__ = [
    "HASHES",
    "MAX_HEADER_LEN",
    "MAX_USERNAME_LEN",
    "NONCE_LEN",
    "AuthOutcome",
    "AuthResult",
    "Credentials",
    "DigestAuth",
    "DigestResponse",
    "MalformedDigest",
    "expected_response",
    "parse_auth_params",
]
