"""Signed licence files: format, signing and verification.

A licence file (``*.lic``) is a small YAML document written by a licence
authority (``centrala licence issue``)::

    # Centrala licence, signed by a licence authority: any edit voids it.
    format: centrala-licence/1
    key_id: 5d1c0a7e9b3f2c41
    signature: 3q2+7w...==
    payload: |
      {
        "issued": "2025-01-01",
        "issuer": "Centrala demo licence authority",
        "items": [
          {
            "count": 10,
            "type": "PBX-Port",
            "version": 1
          }
        ],
        "node": null,
        "serial": "demo-0001",
        "tenant": "demo.centrala.test"
      }

``payload`` is the canonical JSON of a :class:`Licence` (sorted keys, two-space
indent, ASCII, one trailing newline); :func:`canonical_payload` produces it and
a payload that is not canonical is refused, so there is exactly one byte string
for every licence.  ``signature`` is the base64 Ed25519 signature of
``FORMAT NUL key_id NUL payload`` (:func:`signed_bytes`); ``key_id`` names the
authority key (:func:`key_id`, the first 16 hex digits of the SHA-256 of the
raw public key).  Changing any byte of ``key_id``, ``payload`` or
``signature`` makes :func:`verify` refuse the file; comments and the YAML
layout around them are not signed and may change freely.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError

__all__ = [
    "FORMAT",
    "Licence",
    "LicenceError",
    "LicenceItem",
    "TrustedKeys",
    "UntrustedLicence",
    "canonical_payload",
    "generate_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_pem",
    "sign",
    "signed_bytes",
    "trusted_keys",
    "verify",
]

FORMAT = "centrala-licence/1"
"""Value of the ``format`` key; also the first part of the signed bytes."""

TrustedKeys = Mapping[str, Ed25519PublicKey]
"""Trusted authority keys by :func:`key_id`."""

_FILE_KEYS = ("format", "key_id", "signature", "payload")
_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,63}")
_NODE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


class LicenceError(ValueError):
    """A licence file is unusable. ``line`` is 1-based; 0 means the whole file."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class UntrustedLicence(LicenceError):
    """The signature does not verify against any trusted authority key."""


# --------------------------------------------------------------------------- payload


def _check_type(value: str) -> str:
    if not _TYPE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a licence type name such as PBX-Port")
    return value


def _check_domain(value: str) -> str:
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in value.split(".")):
        raise ValueError(f"{value!r} is not a lower-case SIP domain")
    return value


def _check_node(value: str) -> str:
    if not _NODE_NAME.fullmatch(value):
        raise ValueError(f"{value!r}: use letters, digits, '_', '.' and '-'")
    return value


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class LicenceItem(_Frozen):
    """``count`` licences of one ``type`` for software of licence ``version`` or lower."""

    type: Annotated[str, AfterValidator(_check_type)] = Field(
        description="Licence type, e.g. PBX-Port or PBX-VoicemailUser."
    )
    count: int = Field(ge=1, le=1_000_000, description="How many licences.")
    version: int = Field(ge=0, le=1000, description="Licence generation served (and lower).")


class Licence(_Frozen):
    """The signed content of one licence file: items for one tenant, maybe one node."""

    serial: str = Field(min_length=1, max_length=64, description="Unique serial number.")
    issuer: str = Field(min_length=1, max_length=200, description="Licence authority name.")
    issued: date = Field(description="Date of issue.")
    tenant: Annotated[str, AfterValidator(_check_domain)] = Field(
        description="SIP domain of the tenant (project) the items belong to."
    )
    node: Annotated[str, AfterValidator(_check_node)] | None = Field(
        default=None, description="Node the items are bound to; None: any node."
    )
    items: tuple[LicenceItem, ...] = Field(min_length=1, description="What is licensed.")


def canonical_payload(licence: Licence) -> str:
    """The one text that is signed for ``licence``."""
    data = licence.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


def _parse_payload(text: str) -> Licence:
    """The licence in an already verified payload; it must be canonical."""
    try:
        licence = Licence.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(step) for step in first["loc"])
        raise LicenceError(f"payload {where}: {first['msg']}".replace(" : ", ": ")) from None
    if canonical_payload(licence) != text:
        raise LicenceError("payload is not in canonical form")
    return licence


# --------------------------------------------------------------------------- keys


def generate_key() -> Ed25519PrivateKey:
    """A new authority key."""
    return Ed25519PrivateKey.generate()


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM; keep it off the switch."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """SubjectPublicKeyInfo PEM, as installed in ``licences/*.pub``."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_private_key(data: bytes) -> Ed25519PrivateKey:
    """Parse an unencrypted PEM Ed25519 private key; ``ValueError`` if it is not one."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")  # noqa: TRY004 (a bad file, not a bug)
    return key


def load_public_key(data: bytes) -> Ed25519PublicKey:
    """Parse a PEM Ed25519 public key; ``ValueError`` if it is not one."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")  # noqa: TRY004 (a bad file, not a bug)
    return key


def trusted_keys(keys: Iterable[Ed25519PublicKey]) -> dict[str, Ed25519PublicKey]:
    """``{key_id: key}`` for :func:`verify`."""
    return {key_id(key): key for key in keys}


# --------------------------------------------------------------------------- sign / verify


def signed_bytes(kid: str, payload: str) -> bytes:
    """What the signature covers: format, key id and the exact payload bytes."""
    return b"\0".join((FORMAT.encode(), kid.encode("ascii"), payload.encode("utf-8")))


def sign(licence: Licence, key: Ed25519PrivateKey) -> str:
    """The text of a licence file for ``licence``, signed with ``key``."""
    kid = key_id(key.public_key())
    payload = canonical_payload(licence)
    signature = base64.b64encode(key.sign(signed_bytes(kid, payload))).decode("ascii")
    body = "".join(f"  {line}\n" for line in payload.splitlines())
    return (
        "# Centrala licence, signed by a licence authority: any edit of key_id,\n"
        "# signature or payload voids it.  Inspect: centrala licence show FILE --pub KEY.pub\n"
        f"format: {FORMAT}\n"
        f'key_id: "{kid}"\n'  # quoted: 16 hex digits may read as a YAML number
        f"signature: {signature}\n"
        f"payload: |\n{body}"
    )


@dataclass(frozen=True, slots=True)
class _Fields:
    """The four top-level values of a licence file and the line of each key."""

    values: dict[str, str]
    lines: dict[str, int]


def verify(text: str, trusted: TrustedKeys) -> Licence:
    """The licence in file ``text`` if a trusted key signed it.

    Raises :class:`UntrustedLicence` for an unknown key or a signature that
    does not verify (the file was altered, or signed by another authority), and
    :class:`LicenceError` for a malformed file.  Nothing of a refused file counts.
    """
    fields = _read_fields(text)
    if fields.values["format"] != FORMAT:
        raise LicenceError(
            f"unsupported format {fields.values['format']!r} (expected {FORMAT})",
            fields.lines["format"],
        )
    kid = fields.values["key_id"]
    key = trusted.get(kid)
    if key is None:
        raise UntrustedLicence(
            f"not signed by a trusted licence authority (key id {kid!r} is not among "
            "the trusted keys in licences/*.pub)",
            fields.lines["key_id"],
        )
    signature = _signature(fields)
    try:
        key.verify(signature, signed_bytes(kid, fields.values["payload"]))
    except InvalidSignature:
        raise UntrustedLicence(
            "not signed by a trusted licence authority (the signature does not match: "
            "the file was altered or signed with another key)",
            fields.lines["signature"],
        ) from None
    try:
        return _parse_payload(fields.values["payload"])
    except LicenceError as exc:
        raise LicenceError(exc.message, fields.lines["payload"]) from None


def _read_fields(text: str) -> _Fields:
    """Parse the YAML and check that exactly the four string keys are present."""
    try:
        root: Any = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise LicenceError(f"YAML syntax error: {exc.problem}", mark.line + 1 if mark else 0) from None
    except YAMLError as exc:
        raise LicenceError(f"YAML error: {type(exc).__name__}") from None
    if not isinstance(root, CommentedMap):
        raise LicenceError("not a licence file: expected format, key_id, signature, payload", 1)
    lines = {str(k): _key_line(root, k) for k in root}
    extra = [str(k) for k in root if k not in _FILE_KEYS]
    if extra:
        raise LicenceError(f"unknown key {extra[0]!r}", lines[extra[0]])
    missing = [k for k in _FILE_KEYS if k not in root]
    if missing:
        raise LicenceError(f"missing {', '.join(missing)}", 0)
    for name in _FILE_KEYS:
        if not isinstance(root[name], str):
            raise LicenceError(f"{name}: expected a string (quote it)", lines[name])
    return _Fields({k: str(root[k]) for k in _FILE_KEYS}, lines)


def _key_line(root: CommentedMap, key: Any) -> int:
    try:
        return int(root.lc.key(key)[0]) + 1
    except (KeyError, IndexError, TypeError):
        return 0


def _signature(fields: _Fields) -> bytes:
    text = fields.values["signature"]
    try:
        signature = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    # Canonical base64 only: unused trailing bits must not give a second spelling.
    if len(signature) != 64 or base64.b64encode(signature).decode("ascii") != text:
        raise UntrustedLicence(
            "not signed by a trusted licence authority (signature is not a base64 "
            "Ed25519 signature)",
            fields.lines["signature"],
        )
    return signature
