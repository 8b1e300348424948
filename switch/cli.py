"""The ``centrala`` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError

from dialplan.loader import ConfigError, load_config
from dialplan.schema import Config, ListenAddress

from . import __version__
from .licence.cli import app as licence_app

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Centrala SIP softswitch.")
app.add_typer(licence_app, name="licence")

ConfigDir = Annotated[
    Path, typer.Option("-c", "--config", help="Configuration directory.", show_default=True)
]
StateDir = Annotated[
    Optional[Path],
    typer.Option("--state", help="State directory (default: state_dir of the configuration)."),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"centrala {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Centrala: an asyncio SIP softswitch and hosted virtual PBX."""


def _load_or_exit(config_dir: Path) -> Config:
    try:
        return load_config(config_dir)
    except ConfigError as exc:
        for issue in exc.issues:
            typer.echo(str(issue), err=True)
        typer.echo(f"{len(exc.issues)} error(s) in {config_dir}", err=True)
        raise typer.Exit(1) from None


def _parse_listen(values: list[str]) -> list[ListenAddress]:
    out = []
    for value in values:
        try:
            out.append(ListenAddress.parse(value))
        except ValidationError as exc:
            typer.echo(f"-l {value}: {exc.errors()[0]['msg']}", err=True)
            raise typer.Exit(2) from None
    return out


@app.command()
def run(
    config: ConfigDir = Path("config"),
    state: StateDir = None,
    listen: Annotated[
        Optional[list[str]],
        typer.Option("-l", "--listen", help="PROTO:HOST:PORT, repeatable; replaces the config's."),
    ] = None,
) -> None:
    """Run the switch on a configuration directory."""
    cfg = _load_or_exit(config)
    addresses = _parse_listen(listen) if listen else cfg.listen
    logging.basicConfig(
        level=cfg.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from .app import Switch, state_dir_of

    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        uvloop = None
    switch = Switch(config.resolve(), cfg, state_dir_of(cfg, state), addresses)
    runner = uvloop.run if uvloop is not None else asyncio.run
    raise typer.Exit(runner(switch.run()))


@app.command()
def check(config: ConfigDir = Path("config")) -> None:
    """Validate a configuration; print every error with file and line."""
    cfg = _load_or_exit(config)
    typer.echo(f"{config}: OK ({len(cfg.tenants)} tenant(s), {len(cfg.listen)} listen address(es))")


@app.command()
def reload(config: ConfigDir = Path("config"), state: StateDir = None) -> None:
    """Validate the configuration, then tell the running switch to load it."""
    from .app import read_pid, state_dir_of

    cfg = _load_or_exit(config)
    pid = read_pid(state_dir_of(cfg, state))
    if pid is None:
        typer.echo("centrala is not running (no pid file in the state directory)", err=True)
        raise typer.Exit(1)
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        typer.echo(f"centrala (pid {pid}) is not running", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"reload signalled to pid {pid}")


def _storage_of(cfg: Config, state: Optional[Path]) -> Any:
    from .app import state_dir_of
    from .storage import open_storage, sqlite_url

    return open_storage(cfg.storage_url or sqlite_url(state_dir_of(cfg, state)))


async def _with_storage(cfg: Config, state: Optional[Path], action: Any) -> Any:
    storage = _storage_of(cfg, state)
    await storage.open()
    try:
        return await action(storage)
    finally:
        await storage.close()


@app.command()
def bans(
    config: ConfigDir = Path("config"),
    state: StateDir = None,
    remove: Annotated[
        Optional[str], typer.Option("--remove", help="Lift the ban of this address.")
    ] = None,
) -> None:
    """List the addresses banned for failed authentications, or lift a ban."""
    from .app import state_dir_of
    from .control import call

    cfg = _load_or_exit(config)
    if remove is not None:
        try:
            removed = call(state_dir_of(cfg, state), "unban", ip=remove)
        except ConnectionError:  # not running: the database is all there is
            removed = asyncio.run(_with_storage(cfg, state, lambda s: s.delete_ban(remove)))
        typer.echo(f"ban of {remove} lifted" if removed else f"{remove} is not banned")
        raise typer.Exit(0 if removed else 1)
    now = time.time()
    rows = asyncio.run(_with_storage(cfg, state, lambda s: s.load_bans(now)))
    if not rows:
        typer.echo("no address is banned")
        return
    for ban in sorted(rows, key=lambda b: b.ip):
        until = datetime.fromtimestamp(ban.until, timezone.utc).isoformat(timespec="seconds")
        typer.echo(f"{ban.ip}\tuntil {until}\t{ban.failures} failures\t{ban.reason}")


@app.command()
def licences(
    config: ConfigDir = Path("config"),
    state: StateDir = None,
    tenant: Annotated[Optional[str], typer.Option("--tenant", help="Only this tenant.")] = None,
) -> None:
    """Licences installed, in use and free, per tenant, type and version."""
    from .licence.policy import report

    cfg = _load_or_exit(config)
    holdings = asyncio.run(_with_storage(cfg, state, lambda s: s.licence_holders(tenant)))
    in_use: dict[str, dict[str, int]] = {}
    for h in holdings:
        kinds = in_use.setdefault(h.tenant, {})
        kinds[h.kind] = kinds.get(h.kind, 0) + 1
    tenants = [t for t in cfg.tenants if tenant is None or t.domain == tenant]
    typer.echo(report(cfg.licences, tenants, in_use, standby=cfg.standby))


@app.command()
def registrations(
    config: ConfigDir = Path("config"),
    state: StateDir = None,
    tenant: Annotated[Optional[str], typer.Option("--tenant", help="Only this tenant.")] = None,
) -> None:
    """Registered devices of the running switch."""
    from .app import state_dir_of
    from .control import call

    cfg = _load_or_exit(config)
    try:
        aors = call(state_dir_of(cfg, state), "registrations", tenant=tenant)
    except ConnectionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for aor in aors:
        for c in aor["contacts"]:
            state_text = "ok" if c["reachable"] else "UNREACHABLE"
            typer.echo(f"{aor['aor']}\t{c['uri']}\t{c['expires']}s\t{c['source']}\t{state_text}")


@app.command()
def trunks(config: ConfigDir = Path("config"), state: StateDir = None) -> None:
    """Trunks that register to their providers, and how that goes."""
    from .app import state_dir_of
    from .control import call

    cfg = _load_or_exit(config)
    try:
        lines = call(state_dir_of(cfg, state), "trunks")
    except ConnectionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    if not lines:
        typer.echo("no trunk registers to a provider")
    for line in lines:
        expiry = f", {line['expires_in']}s left" if line["expires_in"] is not None else ""
        error = f", last error: {line['error']}" if line["error"] else ""
        licence = ", port licence" if line["licensed"] else ""
        typer.echo(f"{line['tenant']}\t{line['trunk']}\t{line['host']}\t{line['state']}"
                   f"{expiry}{licence}{error}")


@app.command()
def status(
    config: ConfigDir = Path("config"),
    state: StateDir = None,
    collect: Annotated[
        bool, typer.Option("--gc", help="Run a full garbage collection first (for RSS).")
    ] = False,
) -> None:
    """Counters of the running switch as JSON: calls, transactions, tasks, bindings, fds."""
    import json

    from .app import state_dir_of
    from .control import call

    cfg = _load_or_exit(config)
    try:
        counters = call(state_dir_of(cfg, state), "status", gc=collect)
    except ConnectionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(counters, indent=2))


@app.command()
def cdr(
    config: ConfigDir = Path("config"),
    state: StateDir = None,
    tenant: Annotated[Optional[str], typer.Option("--tenant", help="Only this tenant.")] = None,
    since: Annotated[
        Optional[str],
        typer.Option("--since", help="Only calls ended after this ISO date/time (UTC if no zone)."),
    ] = None,
    csv_out: Annotated[bool, typer.Option("--csv", help="Comma-separated, with a header.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many records.")] = 1000,
) -> None:
    """Call detail records, oldest first."""
    import csv
    from dataclasses import asdict

    cfg = _load_or_exit(config)
    start = None
    if since is not None:
        try:
            when = datetime.fromisoformat(since)
        except ValueError:
            typer.echo(f"--since {since!r}: expected an ISO date such as 2026-11-23T08:00", err=True)
            raise typer.Exit(2) from None
        start = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
    rows = asyncio.run(_with_storage(cfg, state, lambda s: s.load_cdrs(tenant, start, limit)))
    if csv_out:
        writer = csv.writer(sys.stdout)
        fields = ["call_ref", "tenant", "direction", "caller", "callee", "dialed", "trunk",
                  "start", "answer", "end", "duration_s", "billed_s", "disposition",
                  "hangup_cause", "hangup_side", "cost", "recording"]
        writer.writerow(fields)
        for rec in rows:
            data = asdict(rec) | {"duration_s": round(rec.duration_s, 3)}
            for key in ("start", "answer", "end"):
                if data[key] is not None:
                    data[key] = _iso(data[key])
            writer.writerow([data[f] for f in fields])
        return
    for rec in rows:
        cost = f" cost {rec.cost}" if rec.cost else ""
        trunk = f" via {rec.trunk}" if rec.trunk else ""
        recording = f" recording {rec.recording}" if rec.recording else ""
        typer.echo(
            f"{_iso(rec.start)} {rec.tenant} {rec.direction} {rec.caller} -> {rec.callee}"
            f" (dialled {rec.dialed}){trunk}: {rec.disposition} {rec.hangup_cause}"
            f" by {rec.hangup_side}, {rec.duration_s:.1f}s, billed {rec.billed_s}s{cost}"
            f"{recording}"
        )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")


@app.command()
def route(
    from_: Annotated[
        str,
        typer.Option(
            "--from",
            help="Calling extension, or the caller's number for an inbound call to a DID.",
        ),
    ],
    to: Annotated[str, typer.Option("--to", help="Dialled number (or DID).")],
    config: ConfigDir = Path("config"),
    tenant: Annotated[
        Optional[str], typer.Option("--tenant", help="Tenant domain (default: that of --from).")
    ] = None,
) -> None:
    """Show exactly what the dialplan would do with a call (exit 0 routed, 2 refused)."""
    from .route_cli import route_command

    raise typer.Exit(route_command(config, from_, to, tenant))


def main() -> None:
    app()
