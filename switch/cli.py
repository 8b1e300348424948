"""The ``centrala`` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from dialplan.loader import ConfigError, load_config
from dialplan.schema import Config, ListenAddress

from . import __version__

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Centrala SIP softswitch.")

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


def main() -> None:
    app()
