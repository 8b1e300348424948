"""``centrala licence``: run a licence authority.

``keygen`` makes an authority key pair; install ``authority.pub`` in
``<config>/licences/`` of every switch that should trust it and keep
``authority.key`` elsewhere.  ``issue`` signs a licence file for one tenant;
``show`` verifies one and prints what it grants.
"""

from __future__ import annotations

import difflib
import os
import secrets
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from . import SOFTWARE_LICENCE_VERSION
from .document import (
    Licence,
    LicenceError,
    LicenceItem,
    generate_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    sign,
    trusted_keys,
    verify,
)
from .policy import LicenceType

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run a licence authority: make keys, issue and check signed licence files.",
)

PRIVATE_KEY_FILE = "authority.key"
PUBLIC_KEY_FILE = "authority.pub"

Force = Annotated[bool, typer.Option("--force", help="Overwrite existing files.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _write(path: Path, data: bytes, mode: int, force: bool) -> None:
    """Create ``path`` with permissions ``mode`` (never wider, whatever the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise _fail(f"{path} exists; use --force to overwrite it") from None
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)
        handle.write(data)


@app.command()
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Directory for the key pair.")],
    force: Force = False,
) -> None:
    """Make an authority key pair: authority.key (mode 0600) and authority.pub."""
    out.mkdir(parents=True, exist_ok=True)
    existing = [p for p in (out / PRIVATE_KEY_FILE, out / PUBLIC_KEY_FILE) if p.exists()]
    if existing and not force:
        raise _fail(f"{existing[0]} exists; use --force to overwrite it")
    key = generate_key()
    _write(out / PRIVATE_KEY_FILE, private_key_pem(key), 0o600, force)
    _write(out / PUBLIC_KEY_FILE, public_key_pem(key), 0o644, force)
    typer.echo(f"key id {key_id(key.public_key())}: wrote {out / PRIVATE_KEY_FILE} (keep secret)")
    typer.echo(f"install {out / PUBLIC_KEY_FILE} as <config>/licences/<name>.pub to trust it")


def _parse_item(text: str) -> LicenceItem:
    """``TYPE:COUNT[:VERSION]``; the type must be one this software knows."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise _fail(f"--item {text!r}: expected TYPE:COUNT[:VERSION], e.g. PBX-Port:10:1", 2)
    kind, *numbers = parts
    known = [t.value for t in LicenceType]
    if kind not in known:
        close = difflib.get_close_matches(kind, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(known)}"
        raise _fail(f"--item {text!r}: unknown licence type {kind!r}{hint}", 2)
    if not all(n.isdigit() for n in numbers):
        raise _fail(f"--item {text!r}: COUNT and VERSION are whole numbers", 2)
    version = int(numbers[1]) if len(numbers) == 2 else SOFTWARE_LICENCE_VERSION
    try:
        return LicenceItem(type=kind, count=int(numbers[0]), version=version)
    except ValidationError as exc:
        raise _fail(f"--item {text!r}: {exc.errors()[0]['msg']}", 2) from None


def _read_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _fail(f"{path}: {exc.strerror or exc}") from None


@app.command()
def issue(
    key: Annotated[Path, typer.Option("--key", help="Authority private key (PEM).")],
    tenant: Annotated[str, typer.Option("--tenant", help="SIP domain of the tenant.")],
    item: Annotated[
        list[str],
        typer.Option(
            "--item",
            help="TYPE:COUNT[:VERSION], repeatable; VERSION defaults "
            f"to {SOFTWARE_LICENCE_VERSION}.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Licence file to write (*.lic).")],
    node: Annotated[
        str | None, typer.Option("--node", help="Bind the licence to this node name.")
    ] = None,
    serial: Annotated[
        str | None, typer.Option("--serial", help="Serial number (default: random).")
    ] = None,
    issuer: Annotated[
        str, typer.Option("--issuer", help="Authority name written into the licence.")
    ] = "Centrala licence authority",
    issued: Annotated[
        str | None, typer.Option("--issued", help="Date of issue, YYYY-MM-DD (default: today).")
    ] = None,
    force: Force = False,
) -> None:
    """Sign a licence file for one tenant (and optionally one node)."""
    try:
        private = load_private_key(_read_key(key))
    except ValueError as exc:
        raise _fail(f"{key}: {exc}") from None
    items = tuple(_parse_item(text) for text in item)
    seen = [(i.type, i.version) for i in items]
    if len(set(seen)) != len(seen):
        raise _fail("--item: give each TYPE:VERSION once (add the counts up)", 2)
    try:
        licence = Licence(
            serial=serial or f"{date.today():%Y%m%d}-{secrets.token_hex(4)}",
            issuer=issuer,
            issued=date.fromisoformat(issued) if issued else date.today(),
            tenant=tenant.strip().lower(),
            node=node,
            items=items,
        )
    except ValueError as exc:  # pydantic's ValidationError and fromisoformat's
        errors = exc.errors() if isinstance(exc, ValidationError) else None
        message = f"{errors[0]['loc'][0]}: {errors[0]['msg']}" if errors else str(exc)
        raise _fail(f"cannot issue: {message}", 2) from None
    _write(out, sign(licence, private).encode(), 0o644, force)
    typer.echo(f"wrote {out}: serial {licence.serial} for {licence.tenant}, {_summary(licence)}")


@app.command()
def show(
    file: Annotated[Path, typer.Argument(help="Licence file.")],
    pub: Annotated[
        list[Path], typer.Option("--pub", help="Trusted authority public key, repeatable.")
    ],
) -> None:
    """Verify a licence file against trusted keys and print what it grants."""
    try:
        keys = trusted_keys(load_public_key(_read_key(path)) for path in pub)
    except ValueError as exc:
        raise _fail(f"--pub: {exc}") from None
    try:
        licence = verify(_read_key(file).decode("utf-8", "replace"), keys)
    except LicenceError as exc:
        where = f"{file}:{exc.line}" if exc.line else str(file)
        raise _fail(f"{where}: {exc.message}") from None
    typer.echo(
        f"{file}: valid licence, serial {licence.serial}, issued {licence.issued} by "
        f"{licence.issuer}"
    )
    typer.echo(f"tenant {licence.tenant}, node {licence.node or '(any)'}")
    for i in licence.items:
        typer.echo(f"  {i.type:<20} {i.count:>6}  version {i.version}")


def _summary(licence: Licence) -> str:
    return ", ".join(f"{i.count} {i.type} v{i.version}" for i in licence.items)
