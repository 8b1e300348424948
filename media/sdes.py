"""SDES: SRTP keys in SDP, the ``a=crypto`` attribute (RFC 4568).

Theory of operation
-------------------
``CryptoAttribute.parse(value)`` reads the value of one ``a=crypto`` line::

    a=crypto:<tag> <crypto-suite> <key-params> [<session-param> ...]   ; §9.1
    key-params = "inline:" <key||salt base64> ["|" <lifetime>] ["|" <MKI>:<length>]

and ``str()`` writes it back exactly (the lifetime keeps its ``2^n`` or
decimal spelling, session parameters stay verbatim).  Anything that is not
that, an unknown suite, base64 that does not decode to the suite's 30 bytes,
a lifetime or MKI out of range, raises ``SdpError`` with 488: the line is
SDP, just not one the switch can key SRTP from (RFC 3261 §21.4.26).

Offer/answer (§5, §7): an offer lists one or more ``a=crypto`` lines in
preference order.  ``answer_crypto`` takes the first one Centrala can honour
(a known suite, a single key without MKI, no session parameter other than
``WSH``; lines it cannot parse or use are skipped, §7.1.1) and returns it
with our answer line: same tag and suite, a fresh key from ``secrets``.
When no line qualifies the stream is refused with 488 (§7.1.2).  Our own
offers come from ``offer_crypto`` and the answer to them is checked by
``accept_crypto`` (§7.1.3: same tag, same suite as offered).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from .sdp import NOT_ACCEPTABLE_HERE, SdpError
from .srtp import SrtpKeys, SrtpProfile

MAX_KEYS = 16  # key-params per line (§9.1 allows any number; we use one)
MAX_SESSION_PARAMS = 16
MAX_MKI_LENGTH = 128  # bytes (§6.1)
MAX_LIFETIME_EXPONENT = 48  # RFC 3711 §9.2: 2^48 SRTP packets (2^31 for SRTCP)

_TAG_RE = re.compile(r"[0-9]{1,9}\Z")
_LIFETIME_RE = re.compile(r"(2\^)?([0-9]{1,20})\Z")
_MKI_RE = re.compile(r"([0-9]{1,20}):([0-9]{1,3})\Z")
_SESSION_PARAM_RE = re.compile(r"[\x21-\x7e]+\Z")  # VCHAR (§9.1), kept verbatim
HONOURED_SESSION_PARAMS = ("WSH=",)  # window size hint only: it asks nothing of us


def _refuse(reason: str) -> SdpError:
    return SdpError(reason, NOT_ACCEPTABLE_HERE)


@dataclass(frozen=True, slots=True)
class KeyParams:
    """``inline:<key||salt>[|<lifetime>][|<MKI>:<length>]`` (§6.1)."""

    master: bytes = field(repr=False)  # master key || master salt
    lifetime: str | None = None  # as written: "2^31" or "1048576"
    mki: int | None = None
    mki_length: int | None = None

    @classmethod
    def parse(cls, text: str, profile: SrtpProfile) -> KeyParams:
        method, colon, info = text.partition(":")
        if method != "inline" or not colon:
            raise _refuse(f"a=crypto key method is not inline: {text[:40]!r}")
        parts = info.split("|")
        if len(parts) > 3:
            raise _refuse("a=crypto key-info with more than lifetime and MKI")
        master = _decode_key(parts[0], profile)
        lifetime = mki = mki_length = None
        for part in parts[1:]:
            if ":" in part and mki is None:
                mki, mki_length = _mki(part)
            elif lifetime is None and mki is None:
                lifetime = _lifetime(part)
            else:
                raise _refuse(f"a=crypto key-info in the wrong order: {info[:60]!r}")
        return cls(master, lifetime, mki, mki_length)

    def __str__(self) -> str:
        text = "inline:" + base64.b64encode(self.master).decode("ascii")
        if self.lifetime is not None:
            text += f"|{self.lifetime}"
        if self.mki is not None:
            text += f"|{self.mki}:{self.mki_length}"
        return text

    @property
    def lifetime_packets(self) -> int | None:
        """The key's lifetime as a number of packets."""
        if self.lifetime is None:
            return None
        return 2 ** int(self.lifetime[2:]) if self.lifetime.startswith("2^") else int(self.lifetime)


def _decode_key(text: str, profile: SrtpProfile) -> bytes:
    try:
        master = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise _refuse(f"a=crypto key is not base64: {text[:40]!r}") from None
    expected = profile.key_length + profile.salt_length
    if len(master) != expected:
        raise _refuse(f"{profile.sdes_name} key and salt are {expected} bytes, not {len(master)}")
    return master


def _lifetime(text: str) -> str:
    match = _LIFETIME_RE.match(text)
    if not match:
        raise _refuse(f"a=crypto lifetime is not a number: {text[:40]!r}")
    value = int(match[2])
    too_big = value > MAX_LIFETIME_EXPONENT if match[1] else value > 2**MAX_LIFETIME_EXPONENT
    if value == 0 or too_big:
        raise _refuse(f"a=crypto lifetime out of range: {text[:40]!r}")
    return text


def _mki(text: str) -> tuple[int, int]:
    match = _MKI_RE.match(text)
    length = int(match[2]) if match else 0
    if not match or not 1 <= length <= MAX_MKI_LENGTH or int(match[1]) >= 256**length:
        raise _refuse(f"a=crypto MKI is not <value>:<length 1..128>: {text[:40]!r}")
    return int(match[1]), length


@dataclass(frozen=True, slots=True)
class CryptoAttribute:
    """The value of one ``a=crypto`` line (§9.1)."""

    tag: int
    profile: SrtpProfile
    keys: tuple[KeyParams, ...]
    session_params: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: str) -> CryptoAttribute:
        fields = value.split(" ")
        if len(fields) < 3 or "" in fields:
            raise _refuse(f"a=crypto needs <tag> <suite> <key-params>: {value[:60]!r}")
        tag, suite, keys, *params = fields
        profile = SrtpProfile.from_sdes(suite)
        if not _TAG_RE.match(tag):
            raise _refuse(f"a=crypto tag is not 1 to 9 digits: {tag[:20]!r}")
        if profile is None:
            raise _refuse(f"unknown SRTP crypto suite: {suite[:40]!r}")
        key_list = keys.split(";")
        if len(key_list) > MAX_KEYS or len(params) > MAX_SESSION_PARAMS:
            raise _refuse("a=crypto with too many keys or session parameters")
        for param in params:
            if not _SESSION_PARAM_RE.match(param):
                raise _refuse(f"a=crypto session parameter: {param[:40]!r}")
        return cls(int(tag), profile, tuple(KeyParams.parse(k, profile) for k in key_list),
                   tuple(params))

    def __str__(self) -> str:
        keys = ";".join(str(k) for k in self.keys)
        return " ".join([str(self.tag), self.profile.sdes_name, keys, *self.session_params])

    @classmethod
    def generate(cls, tag: int, profile: SrtpProfile) -> CryptoAttribute:
        """A line with a fresh random master key and salt."""
        master = secrets.token_bytes(profile.key_length + profile.salt_length)
        return cls(tag, profile, (KeyParams(master),))

    @property
    def srtp_keys(self) -> SrtpKeys:
        """The first key, for an ``SrtpContext``."""
        return SrtpKeys(self.profile, self.keys[0].master)

    @property
    def usable(self) -> bool:
        """One key without MKI and no session parameter asking for more than
        pylibsrtp's plain policy can do (KDR, UNENCRYPTED_*, FEC_*)."""
        return (
            len(self.keys) == 1 and self.keys[0].mki is None
            and all(p.startswith(HONOURED_SESSION_PARAMS) for p in self.session_params)
        )


def offer_crypto(
    profiles: Iterable[SrtpProfile] = tuple(SrtpProfile),
) -> list[CryptoAttribute]:
    """Our offer's lines, tags 1, 2, ... in preference order, each with its own key."""
    return [CryptoAttribute.generate(tag, p) for tag, p in enumerate(profiles, start=1)]


def answer_crypto(
    offered: Iterable[str], profiles: Iterable[SrtpProfile] = tuple(SrtpProfile),
) -> tuple[CryptoAttribute, CryptoAttribute]:
    """(the offerer's line we use, our answer line) for the values of an offer's
    ``a=crypto`` lines; the first usable line of a suite in ``profiles`` wins."""
    allowed = frozenset(profiles)
    for value in offered:
        try:
            line = CryptoAttribute.parse(value)
        except SdpError:
            continue  # §7.1.1: an answerer ignores what it does not understand
        if line.profile in allowed and line.usable:
            return line, CryptoAttribute.generate(line.tag, line.profile)
    raise _refuse("no acceptable a=crypto line in the offer (RFC 4568 §7.1.2)")


def accept_crypto(offer: Iterable[CryptoAttribute], answered: Iterable[str]) -> CryptoAttribute:
    """The answerer's line for one of our offered lines: exactly one, with an
    offered tag and that tag's suite (§7.1.3); else 488."""
    values = list(answered)
    if len(values) != 1:
        raise _refuse(f"an SDES answer has one a=crypto line, not {len(values)}")
    line = CryptoAttribute.parse(values[0])
    ours = next((o for o in offer if o.tag == line.tag), None)
    if ours is None or ours.profile is not line.profile or not line.usable:
        raise _refuse(f"a=crypto answer does not match the offer: tag {line.tag}")
    return line
