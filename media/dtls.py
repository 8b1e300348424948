"""DTLS-SRTP (RFC 5763, RFC 5764): certificates, ``a=fingerprint``, ``a=setup``,
a sans-IO handshake, and telling DTLS from RTP and STUN on one socket.

Theory of operation
-------------------
The SDP carries the identity and the roles: ``a=fingerprint`` (RFC 8122 §5)
is the hash of the certificate each side will present, ``a=setup`` (RFC 4145
§4, RFC 5763 §5) who opens the DTLS connection.  The offerer says
``actpass``; the answerer picks ``active`` (recommended: its handshake can
start with the answer) or ``passive``.  ``dtls_role(local, remote)`` turns a
negotiated pair into our ``DtlsRole``: active is the DTLS client.

``DtlsSession`` is the handshake over pyOpenSSL with memory BIOs, driven by
datagrams and nothing else: ``start()`` (the client's first flight),
``receive(datagram)`` for every DTLS datagram arriving on the RTP socket,
``handle_timeout()`` when ``timeout()`` says so; each returns the datagrams
to send.  OpenSSL's records are packed whole into datagrams of at most
``mtu`` bytes (it is told that MTU, so it fragments handshake messages to
fit), and a datagram received is handed to OpenSSL only if it is a sequence
of whole DTLS 1.2 records; anything else is a counted drop, so junk cannot
desynchronise the stream-oriented memory BIO.  DTLS 1.2 is the highest
version offered: it is what SIP phones and WebRTC speak, and the record
layer checked here.  The one clock in this module is OpenSSL's own, for its
retransmission timer; ``timeout()`` reports it in seconds from now.

When the handshake completes, the peer's certificate is checked against
the fingerprints of its SDP (all those with a hash we know must match, and
there must be one).  The SDP may come after the handshake (an ``active``
answerer's ClientHello can beat its 200 OK, RFC 5763 §6.6), so the session
then waits in ``AWAITING_FINGERPRINT`` until ``set_remote_fingerprints``.
Only ``CONNECTED`` releases the keys: ``srtp_keys()`` exports 60 bytes with
the label ``EXTRACTOR-dtls_srtp`` and splits them (RFC 5764 §4.2) into the
client's and the server's key and salt, for the negotiated profile.

State changes go through ``_set_state`` and the ``TRANSITIONS`` table:

    NEW --start--> CONNECTING --handshake done--> AWAITING_FINGERPRINT
    AWAITING_FINGERPRINT --fingerprint matches--> CONNECTED
    NEW | CONNECTING | AWAITING_FINGERPRINT --error or mismatch--> FAILED
    any but FAILED --close or close_notify--> CLOSED

``classify(datagram)`` demultiplexes a socket shared by STUN, DTLS, RTP and
RTCP by the first byte (RFC 7983 §7).
"""

from __future__ import annotations

import datetime
import enum
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL

from .rtp import is_rtcp
from .sdp import NOT_ACCEPTABLE_HERE, SdpError
from .srtp import SrtpKeys, SrtpProfile

log = logging.getLogger("centrala.media.dtls")

DEFAULT_MTU = 1200  # leaves room for IPv6, UDP and a TURN channel header
MAX_FINGERPRINTS = 8
DTLS1_2_VERSION = 0xFEFD  # RFC 6347 §4.1; pyOpenSSL has no name for it
EXPORTER_LABEL: Final = b"EXTRACTOR-dtls_srtp"  # RFC 5764 §4.2
CERTIFICATE_DAYS = 30

# RFC 8122 §5 hash functions that can be checked; md2/md5 are not allowed any more.
HASHES: Final[dict[str, hashes.HashAlgorithm]] = {
    "sha-1": hashes.SHA1(), "sha-224": hashes.SHA224(), "sha-256": hashes.SHA256(),
    "sha-384": hashes.SHA384(), "sha-512": hashes.SHA512(),
}
_HASH_NAME_RE = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]{1,32}\Z")  # a token
_FINGERPRINT_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){0,63}\Z")


def _refuse(reason: str) -> SdpError:
    return SdpError(reason, NOT_ACCEPTABLE_HERE)


# -- SDP: a=fingerprint and a=setup --------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Fingerprint:
    """``a=fingerprint:<hash-func> <XX:XX:...>`` (RFC 8122 §5); ``str()`` is
    canonical (upper-case hex, RFC 8122 §5 "UHEX")."""

    algorithm: str  # lower case: "sha-256"
    digest: bytes

    @classmethod
    def parse(cls, value: str) -> Fingerprint:
        """One line; a hash we cannot check or a digest of the wrong size is 488."""
        name, _, hexes = value.strip().partition(" ")
        algorithm = name.lower()
        if not _HASH_NAME_RE.match(name) or not _FINGERPRINT_RE.match(hexes):
            raise _refuse(f"malformed a=fingerprint: {value[:60]!r}")
        if algorithm not in HASHES:
            raise _refuse(f"a=fingerprint hash {name[:32]!r} cannot be checked")
        digest = bytes.fromhex(hexes.replace(":", ""))
        if len(digest) != HASHES[algorithm].digest_size:
            raise _refuse(f"a=fingerprint {algorithm} of {len(digest)} bytes")
        return cls(algorithm, digest)

    @classmethod
    def of(cls, certificate: x509.Certificate, algorithm: str = "sha-256") -> Fingerprint:
        return cls(algorithm, certificate.fingerprint(HASHES[algorithm]))

    def __str__(self) -> str:
        return f"{self.algorithm} {self.digest.hex(':').upper()}"


def remote_fingerprints(values: Iterable[str]) -> list[Fingerprint]:
    """The checkable fingerprints of an SDP's ``a=fingerprint`` values (media level,
    else session level): lines with an unknown hash are skipped, malformed ones
    and a list without any usable line refused with 488."""
    found: list[Fingerprint] = []
    for value in values:
        name = value.strip().partition(" ")[0].lower()
        if _HASH_NAME_RE.match(name) and name not in HASHES:
            continue  # RFC 8122 §5: a hash function we cannot check; the others must do
        found.append(Fingerprint.parse(value))
        if len(found) > MAX_FINGERPRINTS:
            raise _refuse(f"over {MAX_FINGERPRINTS} a=fingerprint lines")
    if not found:
        raise _refuse("DTLS-SRTP without an a=fingerprint we can check (RFC 5763 §5)")
    return found


class Setup(enum.StrEnum):
    """``a=setup`` (RFC 4145 §4)."""

    ACTIVE = "active"
    PASSIVE = "passive"
    ACTPASS = "actpass"
    HOLDCONN = "holdconn"

    @classmethod
    def parse(cls, value: str) -> Setup:
        try:
            return cls(value.strip())
        except ValueError:
            raise _refuse(f"a=setup is not active, passive, actpass or holdconn: "
                          f"{value[:40]!r}") from None


class DtlsRole(enum.Enum):
    CLIENT = "client"  # a=setup:active, sends the ClientHello
    SERVER = "server"  # a=setup:passive


_OPPOSITE = {Setup.ACTIVE: Setup.PASSIVE, Setup.PASSIVE: Setup.ACTIVE}


def answer_setup(offered: Setup) -> Setup:
    """Our ``a=setup`` in an answer (RFC 5763 §5): active whenever we may be."""
    if offered is Setup.HOLDCONN:
        raise _refuse("a=setup:holdconn: no DTLS connection to set up")
    return Setup.PASSIVE if offered is Setup.ACTIVE else Setup.ACTIVE


def dtls_role(local: Setup, remote: Setup) -> DtlsRole:
    """Our role once both ``a=setup`` values are known, whichever side offered.

    One of them may be the offer's actpass; the other must then be active or
    passive, and otherwise they must be opposite (RFC 4145 §4.1)."""
    if local is Setup.ACTPASS and remote in _OPPOSITE:
        local = _OPPOSITE[remote]
    elif remote is Setup.ACTPASS and local in _OPPOSITE:
        remote = _OPPOSITE[local]
    if local not in _OPPOSITE or _OPPOSITE[local] is not remote:
        raise _refuse(f"a=setup {local} with {remote} gives no DTLS roles")
    return DtlsRole.CLIENT if local is Setup.ACTIVE else DtlsRole.SERVER


# -- certificates -------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DtlsCertificate:
    """A self-signed ECDSA P-256 certificate and its key: the identity the SDP's
    ``a=fingerprint`` vouches for (RFC 5763 §5)."""

    key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate

    @classmethod
    def generate(cls, days: int = CERTIFICATE_DAYS) -> DtlsCertificate:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, secrets.token_hex(16))])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256())
        )
        return cls(key, certificate)

    def fingerprint(self, algorithm: str = "sha-256") -> Fingerprint:
        return Fingerprint.of(self.certificate, algorithm)


# -- demultiplexing --------------------------------------------------------------------------
class PacketKind(enum.Enum):
    STUN = "stun"
    ZRTP = "zrtp"
    DTLS = "dtls"
    TURN_CHANNEL = "turn-channel"
    RTP = "rtp"
    RTCP = "rtcp"
    UNKNOWN = "unknown"


def classify(datagram: bytes | bytearray | memoryview) -> PacketKind:
    """What a datagram on a shared media socket is, by its first byte (RFC 7983 §7)."""
    if not datagram:
        return PacketKind.UNKNOWN
    first = datagram[0]
    if first <= 3:
        return PacketKind.STUN
    if 16 <= first <= 19:
        return PacketKind.ZRTP
    if 20 <= first <= 63:
        return PacketKind.DTLS
    if 64 <= first <= 79:
        return PacketKind.TURN_CHANNEL
    if 128 <= first <= 191:
        return PacketKind.RTCP if is_rtcp(datagram, len(datagram)) else PacketKind.RTP
    return PacketKind.UNKNOWN


# -- DTLS records ------------------------------------------------------------------------
_RECORD_HEADER = 13  # type, version (2), epoch (2), sequence number (6), length (2)
_CONTENT_TYPES = range(20, 26)  # change_cipher_spec .. tls12_cid (RFC 9146)


def _records(data: bytes) -> list[bytes] | None:
    """Whole DTLS 1.x records (RFC 6347 §4.1), or None if ``data`` is not made of them."""
    out, pos = [], 0
    while pos < len(data):
        if len(data) - pos < _RECORD_HEADER or data[pos] not in _CONTENT_TYPES or (
            data[pos + 1] != 0xFE
        ):
            return None
        end = pos + _RECORD_HEADER + int.from_bytes(data[pos + 11 : pos + 13], "big")
        if end > len(data):
            return None
        out.append(data[pos:end])
        pos = end
    return out


def _datagrams(records: list[bytes], mtu: int) -> list[bytes]:
    """Records packed in order into datagrams of at most ``mtu`` bytes (a record
    bigger than that goes alone)."""
    out: list[bytes] = []
    current = b""
    for record in records:
        if current and len(current) + len(record) > mtu:
            out.append(current)
            current = b""
        current += record
    return out + [current] if current else out


# -- the handshake -------------------------------------------------------------------------
class DtlsState(enum.Enum):
    NEW = "new"
    CONNECTING = "connecting"
    AWAITING_FINGERPRINT = "awaiting-fingerprint"  # handshake done, SDP not seen yet
    CONNECTED = "connected"
    FAILED = "failed"
    CLOSED = "closed"


class DtlsInput(enum.Enum):
    START = "start"
    HANDSHAKE_DONE = "handshake done"
    VERIFIED = "fingerprint matches"
    FAIL = "error or mismatch"
    CLOSE = "close"


_S, _I = DtlsState, DtlsInput
TRANSITIONS: Final[dict[tuple[DtlsState, DtlsInput], DtlsState]] = {
    (_S.NEW, _I.START): _S.CONNECTING,
    (_S.CONNECTING, _I.HANDSHAKE_DONE): _S.AWAITING_FINGERPRINT,
    (_S.AWAITING_FINGERPRINT, _I.VERIFIED): _S.CONNECTED,
    **{(s, _I.FAIL): _S.FAILED for s in (_S.NEW, _S.CONNECTING, _S.AWAITING_FINGERPRINT)},
    **{(s, _I.CLOSE): _S.CLOSED for s in _S if s is not _S.FAILED},
}


class DtlsError(Exception):
    """A DTLS session used out of turn (keys before CONNECTED)."""


class DtlsSession:
    """One DTLS-SRTP association on one media socket (RFC 5764), sans-IO."""

    def __init__(
        self,
        certificate: DtlsCertificate,
        role: DtlsRole,
        remote_fingerprints: Sequence[Fingerprint] = (),
        *,
        profiles: Sequence[SrtpProfile] = tuple(SrtpProfile),
        mtu: int = DEFAULT_MTU,
        name: object = "-",
    ) -> None:
        self.role, self.mtu, self.name = role, mtu, name
        self.state = DtlsState.NEW
        self.failure: str | None = None
        self.dropped = 0  # datagrams that were not whole DTLS records, or refused by OpenSSL
        self._remote = list(remote_fingerprints)
        self._profiles = list(profiles)
        self._ssl = SSL.Connection(_context(certificate, self._profiles), None)
        self._ssl.set_ciphertext_mtu(mtu)
        if role is DtlsRole.CLIENT:
            self._ssl.set_connect_state()
        else:
            self._ssl.set_accept_state()

    # -- inputs ----------------------------------------------------------------------
    def start(self) -> list[bytes]:
        """Begin: a client's ClientHello; a server just waits for one."""
        if self.state is DtlsState.NEW:
            self._set_state(DtlsInput.START)
            self._handshake()
        return self._flush()

    def receive(self, datagram: bytes) -> list[bytes]:
        """A DTLS datagram from the peer; returns what to send back."""
        if self.state in (DtlsState.FAILED, DtlsState.CLOSED):
            return []
        data = bytes(datagram)
        if not _records(data):
            self.dropped += 1
            return []
        if self.state is DtlsState.NEW:
            self._set_state(DtlsInput.START)
        self._ssl.bio_write(data)
        if self.state is DtlsState.CONNECTING:
            self._handshake()
        else:
            self._read_records()
        return self._flush()

    def set_remote_fingerprints(self, fingerprints: Sequence[Fingerprint]) -> None:
        """The peer's fingerprints from its SDP, if not known at construction."""
        self._remote = list(fingerprints)
        if self.state is DtlsState.AWAITING_FINGERPRINT:
            self._verify()

    def timeout(self) -> float | None:
        """Seconds until ``handle_timeout()`` is due (OpenSSL's clock), or None."""
        if self.state is not DtlsState.CONNECTING:
            return None
        return self._ssl.DTLSv1_get_timeout()

    def handle_timeout(self) -> list[bytes]:
        """Retransmit the last flight if OpenSSL's timer expired (RFC 6347 §4.2.4)."""
        if self.state is not DtlsState.CONNECTING:
            return []
        try:
            self._ssl.DTLSv1_handle_timeout()
        except SSL.Error as exc:
            self._fail(f"retransmission failed: {exc}")
        return self._flush()

    def close(self) -> list[bytes]:
        """Send close_notify (when there is a connection) and stop."""
        if self.state in (DtlsState.FAILED, DtlsState.CLOSED):
            return []
        if self.state is not DtlsState.NEW:
            try:
                self._ssl.shutdown()
            except SSL.Error:
                pass
        self._set_state(DtlsInput.CLOSE)
        return self._flush()

    # -- output ----------------------------------------------------------------------
    @property
    def profile(self) -> SrtpProfile | None:
        """The SRTP profile the handshake agreed on (use_srtp, RFC 5764 §4.1.1)."""
        if self.state in (DtlsState.NEW, DtlsState.CONNECTING):
            return None
        return SrtpProfile.from_dtls(self._ssl.get_selected_srtp_profile())

    def srtp_keys(self) -> tuple[SrtpKeys, SrtpKeys]:
        """(our sending keys, the peer's sending keys), RFC 5764 §4.2."""
        profile = self.profile
        if self.state is not DtlsState.CONNECTED or profile is None:
            raise DtlsError(f"no SRTP keys in state {self.state.value}")
        k, s = profile.key_length, profile.salt_length
        material = self._ssl.export_keying_material(EXPORTER_LABEL, 2 * (k + s))
        client = SrtpKeys(profile, material[:k] + material[2 * k : 2 * k + s])
        server = SrtpKeys(profile, material[k : 2 * k] + material[2 * k + s :])
        return (client, server) if self.role is DtlsRole.CLIENT else (server, client)

    # -- internals ---------------------------------------------------------------------
    def _handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.Error as exc:
            self._fail(f"handshake failed: {exc}")
            return
        self._set_state(DtlsInput.HANDSHAKE_DONE)
        if self.profile is None:
            self._fail("no SRTP protection profile in common (RFC 5764 §4.1.2)")
        elif self._remote:
            self._verify()

    def _read_records(self) -> None:
        """Records after the handshake: retransmissions, alerts (no application data)."""
        try:
            self._ssl.recv(65535)
        except SSL.WantReadError:
            pass
        except SSL.ZeroReturnError:  # close_notify
            self._set_state(DtlsInput.CLOSE)
        except SSL.Error:
            self.dropped += 1

    def _verify(self) -> None:
        """RFC 5763 §5: the certificate must match every checkable fingerprint."""
        certificate = self._ssl.get_peer_certificate(as_cryptography=True)
        if certificate is None:
            self._fail("the peer sent no certificate")
        elif all(Fingerprint.of(certificate, f.algorithm) == f for f in self._remote):
            self._set_state(DtlsInput.VERIFIED)
        else:
            self._fail("the peer's certificate does not match its a=fingerprint")

    def _fail(self, reason: str) -> None:
        self.failure = reason
        self._set_state(DtlsInput.FAIL)

    def _flush(self) -> list[bytes]:
        data = b""
        while True:
            try:
                data += self._ssl.bio_read(65535)
            except SSL.WantReadError:
                break
        return _datagrams(_records(data) or [], self.mtu) if data else []

    def _set_state(self, event: DtlsInput) -> None:
        new = TRANSITIONS.get((self.state, event))
        if new is None:
            raise DtlsError(f"DTLS: {event.value} in state {self.state.value}")
        log.debug("[%s] DTLS %s -> %s%s", self.name, self.state.value, new.value,
                  f" ({self.failure})" if new is DtlsState.FAILED else "")
        self.state = new


def _context(certificate: DtlsCertificate, profiles: Sequence[SrtpProfile]) -> SSL.Context:
    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.set_max_proto_version(DTLS1_2_VERSION)
    ctx.set_options(SSL.OP_NO_TICKET | SSL.OP_NO_QUERY_MTU)
    # Self-signed certificates: the fingerprint check after the handshake is the trust.
    ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, lambda *_: True)
    ctx.use_certificate(certificate.certificate)
    ctx.use_privatekey(certificate.key)
    ctx.check_privatekey()
    ctx.set_tlsext_use_srtp(b":".join(p.dtls_name for p in profiles))
    return ctx
