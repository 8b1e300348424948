"""Typed configuration of the switch.

The configuration directory holds ``centrala.yaml`` (global settings, the
:class:`Config` fields except ``tenants``) and ``tenants/*.yaml`` (one
:class:`Tenant` per file).  :func:`dialplan.loader.load_config` reads both and
validates them into a :class:`Config`; core code only ever sees these models.

Every model forbids unknown keys so that a typo is an error, not a silently
ignored setting.  Checks that span several entries (unique numbers, group
members that must exist, ...) raise a ``reference_error`` whose context carries
``problems``: a tuple of ``(loc, message)`` pairs, ``loc`` relative to the
model that raised, so the loader can point at the offending line.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from dialplan.base import (
    Digits,
    Loc,
    Name,
    Problem,
    Secret,
    duplicates,
    raise_problems,
    scalar_to_str,
)
from dialplan.base import Model as _Model
from dialplan.checks import dialplan_problems, did_problems
from dialplan.numbers import NumberFormat
from dialplan.plan import (
    CallerIdSetting,
    Credit,
    ExtensionPermission,
    Forwarding,
    InboundDid,
    InternalCallerId,
    Money,
    OutboundRoute,
    Pin,
    Rate,
    TenantSettings,
)
from switch.licence.document import Licence
from switch.licence.policy import LicencePolicy

Transport = Literal["udp", "tcp", "tls"]
HexDigest = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]+$", to_lower=True)]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
Encryption = Literal["off", "optional", "required"]  # SRTP on a leg, switch/b2bua/srtp_legs.py

_DEFAULT_PORTS: dict[str, int] = {"udp": 5060, "tcp": 5060, "tls": 5061}
_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_hostname(text: str) -> bool:
    """True if ``text`` is a syntactically valid DNS host name (RFC 1123)."""
    labels = text.split(".")
    return len(text) <= 253 and all(_HOSTNAME_LABEL.match(label) for label in labels)


def _check_host(value: str) -> str:
    """Accept an IP address or host name; host names are lower-cased."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not is_hostname(value):
        raise ValueError(f"{value!r} is neither an IP address nor a host name")
    return value.lower()


def _parse_network(value: object) -> object:
    """``10.0.0.1`` or ``10.0.0.0/8`` (host bits must be clear) to a network."""
    if isinstance(value, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an IP address or CIDR network such as 10.0.0.0/8")
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IP address or CIDR network ({exc})") from None


Host = Annotated[
    str,
    BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
    StringConstraints(min_length=1),
]
Network = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, BeforeValidator(_parse_network)]
Port = Annotated[int, Field(ge=1, le=65535)]


# --------------------------------------------------------------------------- global


class ListenAddress(_Model):
    """A socket the switch listens on, written ``proto:host:port`` in YAML.

    Examples: ``udp:127.0.0.1:5060``, ``tcp:[::1]:5060``, ``tls:0.0.0.0:5061``.
    The port may be left out (5060 for udp/tcp, 5061 for tls).
    """

    proto: Transport = Field(description="Transport protocol: udp, tcp or tls.")
    host: Host = Field(description="IP address or host name to bind to (IPv6 without brackets).")
    port: Port = Field(description="Port to bind to, 1..65535.")

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """Parse ``proto:host[:port]``; raises ``pydantic.ValidationError``."""
        return cls.model_validate(text)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return _split_listen(data) if isinstance(data, str) else data

    @field_validator("host")
    @classmethod
    def _valid_host(cls, value: str) -> str:
        return _check_host(value)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.proto}:{host}:{self.port}"


def _split_listen(text: str) -> dict[str, str | int]:
    """``udp:[::1]:5060`` -> ``{"proto": "udp", "host": "::1", "port": "5060"}``."""
    example = "expected proto:host:port such as udp:127.0.0.1:5060 or tcp:[::1]:5060"
    proto, sep, rest = text.strip().partition(":")
    if not sep or not rest:
        raise ValueError(f"{text!r}: {example}")
    proto = proto.lower()
    match = re.fullmatch(r"\[([^\]]+)\](?::(\w+))?|([^:\[\]]+)(?::(\w+))?", rest)
    if match is None:
        hint = " (put IPv6 addresses in brackets)" if rest.count(":") > 1 else ""
        raise ValueError(f"{text!r}: {example}{hint}")
    host = match.group(1) or match.group(3)
    port = match.group(2) or match.group(4) or _DEFAULT_PORTS.get(proto, 0)
    if match.group(1) is not None and ":" not in host:
        raise ValueError(f"{text!r}: brackets are only for IPv6 addresses")
    return {"proto": proto, "host": host, "port": port}


class Timers(_Model):
    """SIP transaction timers, RFC 3261 §17.1.1.1 (table 4). Rarely changed."""

    t1_ms: int = Field(
        default=500, ge=1, description="T1: RTT estimate; base of retransmit intervals."
    )
    t2_ms: int = Field(
        default=4000, ge=1, description="T2: cap on non-INVITE / response retransmits."
    )
    t4_ms: int = Field(
        default=5000, ge=0, description="T4: how long a message may linger in the network."
    )

    @model_validator(mode="after")
    def _t2_not_below_t1(self) -> Self:
        if self.t2_ms < self.t1_ms:
            raise ValueError(f"t2_ms ({self.t2_ms}) must not be below t1_ms ({self.t1_ms})")
        return self


class Limits(_Model):
    """Bounds on what a peer may make the switch hold or process."""

    max_message_bytes: int = Field(
        default=65536, ge=1024, description="Largest SIP message accepted."
    )
    max_headers: int = Field(default=100, ge=10, description="Most header fields in one message.")
    max_line_bytes: int = Field(
        default=8192, ge=256, description="Longest start line or header line."
    )
    requests_per_second: float = Field(
        default=50.0,
        gt=0,
        description="Sustained requests per second allowed from one source address.",
    )
    request_burst: int = Field(
        default=100, ge=1, description="Burst of requests allowed per source."
    )
    max_connections_per_source: int = Field(
        default=64, ge=1, description="Concurrent TCP/TLS connections from one source address."
    )
    max_connections: int = Field(
        default=4096, ge=1, description="Concurrent TCP/TLS connections in total."
    )
    udp_receive_buffer_bytes: int = Field(
        default=1024 * 1024, ge=65536,
        description="Receive buffer asked for each UDP socket (the kernel caps it at "
        "net.core.rmem_max): datagrams that arrive while the switch is busy wait there.",
    )
    tcp_idle_timeout_s: float = Field(
        default=300, gt=0, description="Close a TCP/TLS connection idle for this many seconds."
    )


class TlsSettings(_Model):
    """Certificate for TLS listeners. Leave both unset to generate a self-signed one.

    Relative paths are relative to the configuration directory.
    """

    cert: Path | None = Field(default=None, description="PEM certificate chain file.")
    key: Path | None = Field(default=None, description="PEM private key file.")

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.cert is None) != (self.key is None):
            raise ValueError("set both cert and key, or neither (self-signed)")
        return self


class RegistrarSettings(_Model):
    """How registrations are accepted and watched (RFC 3261 §10.3)."""

    min_expires: int = Field(
        default=60, ge=1, description="Shorter registrations are refused with 423.")
    max_expires: int = Field(
        default=3600, ge=1, description="Longer registrations are shortened to this.")
    default_expires: int = Field(
        default=3600, ge=1, description="Used when a REGISTER asks for no duration.")
    when_full: Literal["replace", "reject"] = Field(
        default="replace",
        description="At an extension's max_contacts: replace the binding that expires "
        "soonest (a rebooted phone is never locked out by its own stale binding) or "
        "reject the new one with 403.")
    qualify_interval_s: float = Field(
        default=60, ge=0,
        description="Send OPTIONS to every registered device this often (0: never).")
    qualify_failures: int = Field(
        default=3, ge=1, description="Unanswered qualifies in a row that make a device unreachable.")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need min_expires <= default_expires <= max_expires")
        return self


# RTP payload formats the switch knows by name (RFC 3551 and the IANA media types
# registry), with their RTP clock rates; a ``codecs:`` entry naming another one is
# a typo.  Auxiliary formats (telephone-event, CN) are kept whatever a list says.
KNOWN_CODECS: dict[str, tuple[int, ...]] = {
    "pcmu": (8000,), "pcma": (8000,), "g722": (8000,), "opus": (48000,), "g729": (8000,),
    "gsm": (8000,), "ilbc": (8000,), "speex": (8000, 16000, 32000), "g726-32": (8000,),
    "amr": (8000,), "amr-wb": (16000,), "l16": (8000, 16000, 44100, 48000),
    "telephone-event": (8000, 16000, 48000), "cn": (8000, 16000, 32000, 48000),
}
DEFAULT_CODECS = ("opus", "G722", "PCMA", "PCMU")


def _check_codec(value: str) -> str:
    """``NAME[/RATE[/CHANNELS]]`` with a known name and, when given, its clock rate."""
    name, *numbers = value.strip().split("/")
    rates = KNOWN_CODECS.get(name.lower())
    if rates is None:
        known = ", ".join(sorted(KNOWN_CODECS))
        raise ValueError(f"unknown codec {name!r} (known: {known})")
    if len(numbers) > 2 or not all(n.isdigit() for n in numbers):
        raise ValueError(f"{value!r}: write NAME, NAME/RATE or NAME/RATE/CHANNELS (opus/48000/2)")
    if numbers and int(numbers[0]) not in rates:
        raise ValueError(f"{name} runs at {' or '.join(map(str, rates))} Hz, not {numbers[0]}")
    return value.strip()


CodecName = Annotated[str, AfterValidator(_check_codec)]
CodecList = Annotated[list[CodecName], Field(min_length=1)]


def _parse_port_range(value: object) -> object:
    """``20000-29999`` to ``(20000, 29999)``."""
    if isinstance(value, str):
        low, sep, high = value.partition("-")
        if not sep or not (low.strip().isdigit() and high.strip().isdigit()):
            raise ValueError(f"{value!r}: write LOW-HIGH, e.g. 20000-29999")
        return int(low), int(high)
    return value


def _check_port_range(value: tuple[int, int]) -> tuple[int, int]:
    low, high = value
    if not 1024 <= low < high <= 65535:
        raise ValueError(f"RTP ports {low}-{high}: need 1024 <= LOW < HIGH <= 65535")
    if high - (low + low % 2) < 1:
        raise ValueError(f"RTP ports {low}-{high} hold no even/odd pair (RFC 3550 §11)")
    return value


PortRange = Annotated[
    tuple[int, int], BeforeValidator(_parse_port_range), AfterValidator(_check_port_range)
]


def _check_ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


IpAddress = Annotated[str, AfterValidator(_check_ip)]


class MediaSettings(_Model):
    """RTP anchoring: every call's media runs through the switch (RFC 3264, 3550)."""

    anchor: bool = Field(
        default=True,
        description="Relay every call's RTP through the switch; false lets SDP pass unchanged "
        "(the phones send media to each other).")
    rtp_ports: PortRange = Field(
        default=(20000, 29999),
        description="UDP ports for RTP (even) and RTCP (odd), written LOW-HIGH; each "
        "relayed stream takes two pairs, one per leg. Read at start.")
    bind: IpAddress = Field(
        default="0.0.0.0", description="Address the RTP sockets bind to. Read at start.")
    advertise: IpAddress | None = Field(
        default=None,
        description="Address written into the SDP we send (c=, o=); null: the local address "
        "facing each peer, as in our SIP Contact (set it behind a 1:1 NAT).")
    codecs: CodecList = Field(
        default=list(DEFAULT_CODECS),
        description="Codecs let through when neither the tenant nor the extension says "
        "otherwise, e.g. [PCMU, PCMA, G722/8000, opus/48000/2].")


class CallSettings(_Model):
    """Limits on calls crossing the switch."""

    max_duration_s: float = Field(
        default=4 * 3600, gt=0, description="A call longer than this is ended on both sides.")


class SecuritySettings(_Model):
    """Digest authentication and brute-force protection."""

    digest_algorithms: list[Literal["SHA-256", "MD5"]] = Field(
        default=["SHA-256", "MD5"], min_length=1,
        description="Digest algorithms challenged, in order of preference (RFC 8760: the "
        "first a phone supports wins). Old phones that only read the first challenge "
        "need MD5 alone.")
    nonce_lifetime_s: int = Field(
        default=300, ge=10, description="A nonce older than this gets a stale=true challenge.")
    max_auth_failures: int = Field(
        default=5, ge=1, description="Failed authentications from one address before a ban.")
    max_failures_per_user: int = Field(
        default=20, ge=1, description="Failed authentications for one user (from anywhere) "
        "before the failing address is banned.")
    failure_window_s: float = Field(
        default=60, gt=0, description="Window in which failures are counted.")
    ban_s: float = Field(default=600, gt=0, description="How long a ban lasts.")


# --------------------------------------------------------------------------- tenants


class Extension(_Model):
    """A user of a tenant: one number, one SIP account, up to ``max_contacts`` phones."""

    number: Digits = Field(description="Dialled number, digits; quote it if it starts with 0.")
    name: str = Field(min_length=1, description="Display name shown to called parties.")
    username: str = Field(min_length=1, description="SIP auth user name; defaults to the number.")
    password: Secret | None = Field(
        default=None, description="SIP digest password; may be written ${VAR}.")
    ha1_md5: HexDigest | None = Field(
        default=None, description="Instead of a password: MD5(username:domain:password), "
        "32 hex digits, so the password itself is stored nowhere.")
    ha1_sha256: HexDigest | None = Field(
        default=None, description="Instead of a password: SHA-256(username:domain:password), "
        "64 hex digits (needed when SHA-256 is challenged).")
    max_contacts: int = Field(
        default=5, ge=1, le=100, description="Most phones registered at once."
    )
    ring_time_s: int = Field(
        default=20, ge=1, le=600, description="Seconds to ring before giving up."
    )
    call_waiting: bool = Field(
        default=True, description="Offer a second call while one is in progress."
    )
    voicemail: bool = Field(
        default=False,
        description="Send unanswered calls to voicemail; needs a PBX-VoicemailUser licence "
        "(or PBX-UC, or the tenant's PBX-Voicemail licences).",
    )
    fax: bool = Field(
        default=False,
        description="Fax for this user (I will send faxes): its calls are fax-safe, G.711 "
        "only when both legs allow it (relayed untouched: no transcoding, no jitter "
        "buffer) and never comfort noise; T.38 re-INVITEs are relayed for every call. "
        "Needs a PBX-Fax (or PBX-UC) licence."
    )
    recording: bool = Field(
        default=False,
        description="Record every call this user answers or makes (a stereo WAV under the "
        "state directory, named in the CDR); needs a PBX-Recording licence.",
    )
    uc: bool = Field(
        default=False,
        description="UC bundle (voicemail, fax, video, mobility, app sharing, myPBX); "
        "needs a PBX-UC licence.",
    )
    permission: ExtensionPermission = Field(
        default="tenant",
        description="Calls allowed: internal, national, international, or tenant "
        "(the tenant's settings.permission).",
    )
    max_price_per_minute: Money | None = Field(
        default=None,
        description="Refuse destinations dearer than this per minute (and those without "
        "a rate); in settings.currency.",
    )
    pin: Pin | None = Field(
        default=None, description="4 to 12 digits the user must enter before outgoing calls."
    )
    external_caller_id: CallerIdSetting | None = Field(
        default=None,
        description="Number shown on outgoing calls: one of the tenant's DIDs, or "
        "'restricted' to withhold it. Default: settings.external_caller_id.",
    )
    internal_caller_id: InternalCallerId | None = Field(
        default=None, description="Number and/or name shown to other extensions instead."
    )
    forward: Forwarding = Field(default_factory=Forwarding, description="Call forwarding.")
    codecs: CodecList | None = Field(
        default=None,
        description="Codecs this user's calls may use, e.g. [PCMU, PCMA]; default: the "
        "tenant's. Both legs' lists must share one, or the call gets 488.")
    encryption: Encryption = Field(
        default="optional",
        description="Call encryption (SRTP) on this user's media leg: off (plain RTP only; "
        "an SRTP-only offer gets 488), optional (SRTP offers are accepted and bridged to a "
        "plain other leg; calls to the user are offered plain RTP unless its leg used SRTP "
        "before) or required (calls to the user are offered SRTP only, and a call from it "
        "that offers no SRTP gets 488).")

    @model_validator(mode="before")
    @classmethod
    def _username_defaults_to_number(cls, data: Any) -> Any:
        if isinstance(data, dict) and "username" not in data and "number" in data:
            return {**data, "username": scalar_to_str(data["number"])}
        return data

    @model_validator(mode="after")
    def _has_credentials(self) -> Self:
        if self.password is None and self.ha1_md5 is None and self.ha1_sha256 is None:
            raise ValueError("give a password, or ha1_md5 and/or ha1_sha256")
        if self.password is not None and (self.ha1_md5 or self.ha1_sha256):
            raise ValueError("give either a password or HA1 values, not both")
        for field, length in (("ha1_md5", 32), ("ha1_sha256", 64)):
            value = getattr(self, field)
            if value is not None and len(value) != length:
                raise ValueError(f"{field} must be {length} hex digits")
        return self


class Group(_Model):
    """A hunt group: one number that rings several extensions."""

    number: Digits = Field(description="Dialled number of the group, digits only.")
    name: str = Field(min_length=1, description="Display name of the group.")
    strategy: Literal["sequential", "random", "simultaneous", "least_used"] = Field(
        default="sequential", description="Order in which members are rung."
    )
    members: list[Digits] = Field(min_length=1, description="Extension numbers of the members.")
    member_ring_time_s: int = Field(
        default=15, ge=1, le=600, description="Seconds to ring each member."
    )
    caller_id: Literal["keep", "group", "group_name_caller_number"] = Field(
        default="keep",
        description="Caller ID shown to members: the caller's, the group's, or "
        "the group name with the caller's number.",
    )
    pickup_allowed: bool = Field(
        default=True, description="Members may pick up a call ringing elsewhere."
    )


# ``Trunk.register`` shadows ``ABCMeta.register`` on the class only, never on
# instances, so pydantic's "shadows an attribute" warning is spurious here.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class Trunk(_Model):
        """A SIP trunk to a carrier or another PBX."""

        name: Name = Field(description="Unique trunk name within the tenant.")
        host: Host = Field(description="Carrier proxy: IP address or host name.")
        port: Port = Field(default=5060, description="Carrier port.")
        transport: Transport = Field(default="udp", description="Transport to the carrier.")
        username: str | None = Field(default=None, description="Auth user name at the carrier.")
        password: Secret | None = Field(
            default=None, description="Auth password at the carrier; may be written ${VAR}."
        )
        register: bool = Field(
            default=False, description="Register to the carrier (needs username and password)."
        )
        allowed_ips: list[Network] = Field(
            default_factory=list, description="Addresses (IP or CIDR) calls may come from."
        )
        trusted: bool = Field(
            default=False,
            description="Inside our trust domain: send it P-Asserted-Identity (RFC 3325).",
        )
        number_format: NumberFormat = Field(
            default="e164",
            description="How called numbers are sent: e164 (+48...), national (0...) or "
            "international (0048...).",
        )
        max_channels: int | None = Field(
            default=None, ge=1, description="Most simultaneous calls over this trunk."
        )
        encryption: Encryption = Field(
            default="off",
            description="Media encryption (SRTP) towards the carrier: off (plain RTP, the "
            "default: most carriers do not do SRTP), optional or required, as for extensions.")

        @field_validator("host")
        @classmethod
        def _valid_host(cls, value: str) -> str:
            return _check_host(value)

        @model_validator(mode="after")
        def _credentials_to_register(self) -> Self:
            if self.register and (self.username is None or self.password is None):
                raise ValueError("register: true needs username and password")
            return self


class Tenant(_Model):
    """One customer of the hosted PBX, identified by its SIP domain."""

    domain: Host = Field(description="SIP domain of the tenant; unique across tenants.")
    name: str = Field(min_length=1, description="Customer name, for operators.")
    extensions: list[Extension] = Field(default_factory=list, description="Users.")
    groups: list[Group] = Field(default_factory=list, description="Hunt groups.")
    trunks: list[Trunk] = Field(default_factory=list, description="SIP trunks.")
    settings: TenantSettings = Field(
        default_factory=TenantSettings, description="Numbering plan, feature codes, defaults."
    )
    rates: list[Rate] = Field(
        default_factory=list, description="Prices per destination prefix (longest match)."
    )
    credit: Credit | None = Field(default=None, description="Credit limit of the tenant.")
    outbound_routes: list[OutboundRoute] = Field(
        default_factory=list, description="Outbound rules, tried in order; first match wins."
    )
    inbound: list[InboundDid] = Field(
        default_factory=list, description="The tenant's DIDs and where calls to them go."
    )
    codecs: CodecList | None = Field(
        default=None,
        description="Codecs the tenant's calls may use; default: media.codecs of the switch.")
    moh: Path | None = Field(
        default=None,
        description="Music on hold the tenant's held parties hear: a WAV or MP3 file (any "
        "rate), relative to the configuration directory; default: the shipped "
        "media/assets/moh-default.wav. A missing or non-audio file is refused at load.")
    recording: bool = Field(
        default=False,
        description="Record every call of the tenant (stereo WAV: the caller left, the callee "
        "right, under the state directory's recordings/<domain>/, named in the CDR); needs "
        "a PBX-Recording licence per extension of the tenant.")

    @field_validator("domain")
    @classmethod
    def _valid_domain(cls, value: str) -> str:
        return _check_host(value)

    @model_validator(mode="after")
    def _references(self) -> Self:
        raise_problems(tenant_problems(self))
        return self


def tenant_problems(tenant: Tenant) -> list[Problem]:
    """Cross-reference problems inside one tenant, located relative to it."""
    numbers = [(("extensions", i, "number"), e.number) for i, e in enumerate(tenant.extensions)]
    numbers += [(("groups", i, "number"), g.number) for i, g in enumerate(tenant.groups)]
    problems = duplicates(numbers, "number")
    problems += duplicates(
        ((("extensions", i, "username"), e.username) for i, e in enumerate(tenant.extensions)),
        "username",
    )
    problems += duplicates(
        ((("trunks", i, "name"), t.name) for i, t in enumerate(tenant.trunks)), "trunk name"
    )
    extensions = {e.number for e in tenant.extensions}
    for g, group in enumerate(tenant.groups):
        loc: Loc = ("groups", g, "members")
        problems += duplicates((((*loc, m), n) for m, n in enumerate(group.members)), "member")
        problems += [
            ((*loc, m), f"dangling reference: no extension {n!r} in this tenant")
            for m, n in enumerate(group.members)
            if n not in extensions
        ]
    return problems + dialplan_problems(tenant)


# --------------------------------------------------------------------------- root


def _hostname() -> str:
    """This machine's host name, the default ``node_name`` (``localhost`` if unusable)."""
    name = socket.gethostname().strip()
    return name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name) else "localhost"


class Config(_Model):
    """The whole switch configuration: ``centrala.yaml`` plus ``tenants/*.yaml``."""

    listen: list[ListenAddress] = Field(
        min_length=1, description="Sockets to listen on, e.g. udp:127.0.0.1:5060."
    )
    timers: Timers = Field(default_factory=Timers, description="SIP timers (RFC 3261 §17).")
    limits: Limits = Field(default_factory=Limits, description="Per-peer and global bounds.")
    tls: TlsSettings = Field(default_factory=TlsSettings, description="TLS certificate.")
    state_dir: Path | None = Field(
        default=None,
        description="Where runtime state lives. Default: var/ beside the config directory; "
        "relative paths are relative to the config directory. The loader "
        "always stores an absolute path here.",
    )
    shutdown_grace_s: float = Field(
        default=3.0, ge=0, description="Seconds to let calls end on shutdown."
    )
    log_level: LogLevel = Field(
        default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL."
    )
    user_agent: str = Field(
        default="Centrala", min_length=1, description="User-Agent header we send."
    )
    server_name: str = Field(default="Centrala", min_length=1, description="Server header we send.")
    node_name: Name = Field(
        default_factory=_hostname,
        description="Name of this node; licences bound to another node do not count here. "
        "Default: the machine's host name.",
    )
    standby: bool = Field(
        default=False,
        description="This node is a standby; needs as many PBX-Standby as PBX-Port licences.",
    )
    registrar: RegistrarSettings = Field(
        default_factory=RegistrarSettings, description="Registration rules and qualify.")
    security: SecuritySettings = Field(
        default_factory=SecuritySettings, description="Authentication and bans.")
    calls: CallSettings = Field(default_factory=CallSettings, description="Call limits.")
    media: MediaSettings = Field(
        default_factory=MediaSettings, description="RTP anchoring and codecs.")
    storage_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the database; default: SQLite file centrala.db in "
        "state_dir. Use postgresql://user:pass@host/db when several nodes share one pool.")
    tenants: list[Tenant] = Field(default_factory=list, description="One per tenants/*.yaml.")

    _by_domain: dict[str, Tenant] = PrivateAttr(default_factory=dict)
    _licences: tuple[Licence, ...] = PrivateAttr(default=())

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _references(self) -> Self:
        raise_problems(domain_problems(self.tenants) + self._ha1_problems()
                       + self._recording_problems())
        return self

    def _recording_problems(self) -> list[Problem]:
        """Recording needs the media to cross the switch."""
        if self.media.anchor:
            return []
        why = "needs media.anchor: true (the RTP must cross the switch)"
        problems: list[Problem] = []
        for i, tenant in enumerate(self.tenants):
            if tenant.recording:
                problems.append((("tenants", i, "recording"), why))
            problems += [(("tenants", i, "extensions", j, "recording"), why)
                         for j, ext in enumerate(tenant.extensions) if ext.recording]
        return problems

    def _ha1_problems(self) -> list[Problem]:
        """An extension given by HA1 needs one for every algorithm challenged."""
        fields = {"MD5": "ha1_md5", "SHA-256": "ha1_sha256"}
        problems: list[Problem] = []
        for i, tenant in enumerate(self.tenants):
            for j, ext in enumerate(tenant.extensions):
                if ext.password is not None:
                    continue
                missing = [fields[a] for a in self.security.digest_algorithms
                           if getattr(ext, fields[a]) is None]
                if missing:
                    problems.append((("tenants", i, "extensions", j), (
                        f"{', '.join(missing)} missing: security.digest_algorithms challenges "
                        f"{', '.join(self.security.digest_algorithms)}")))
        return problems

    def model_post_init(self, context: Any, /) -> None:
        self._by_domain = {tenant.domain: tenant for tenant in self.tenants}

    def tenant_by_domain(self, domain: str) -> Tenant | None:
        """The tenant serving SIP domain ``domain`` (case-insensitive), if any."""
        return self._by_domain.get(domain.lower())

    @property
    def licences(self) -> LicencePolicy:
        """The verified licences (``licences/*.lic``) and what they allow on this node.

        Empty unless the configuration came from :func:`dialplan.loader.load_config`.
        """
        return LicencePolicy(self._licences, self.node_name)

    def with_licences(self, licences: Iterable[Licence]) -> Self:
        """A copy carrying ``licences``, which must already be verified."""
        copy = self.model_copy()
        copy._licences = tuple(licences)
        return copy


def domain_problems(tenants: Sequence[Tenant]) -> list[Problem]:
    """Tenants sharing a domain, located as ``("tenants", index, "domain")``, and
    DIDs routed to more than one tenant (a DID reaches exactly one tenant)."""
    first: dict[str, Tenant] = {}
    problems: list[Problem] = []
    for i, tenant in enumerate(tenants):
        other = first.setdefault(tenant.domain, tenant)
        if other is not tenant:
            problems.append(
                (
                    ("tenants", i, "domain"),
                    f"duplicate tenant domain "
                    f"{tenant.domain!r} (also used by tenant {other.name!r})",
                )
            )
    return problems + did_problems(tenants)
