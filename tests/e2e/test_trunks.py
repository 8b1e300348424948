"""A trunk registers to its provider (a SIPp registrar that checks the digest)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable

from ruamel.yaml import YAML

from tests.e2e.conftest import Centrala, centrala_bin

PROVIDER = "127.0.0.2"


def cli(*args: str) -> str:
    return subprocess.run([str(centrala_bin()), *args], capture_output=True, text=True,
                          timeout=30, check=True).stdout


def registering_trunk(config: Path, port: int, password: str) -> None:
    yaml = YAML()
    path = config / "tenants" / "demo.yaml"
    tenant = yaml.load(path)
    trunk = tenant["trunks"][0]
    trunk.update({"host": PROVIDER, "port": port, "register": True, "username": "trunk1",
                  "password": password})
    yaml.dump(tenant, path)


def test_trunk_registers_with_digest_and_takes_a_port_licence(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path], tmp_path: Path
) -> None:
    from tests.e2e.sipp import free_port

    port = free_port(PROVIDER)
    config = config_copy(registrar={"qualify_interval_s": 0})
    registering_trunk(config, port, "s3cret")
    provider = subprocess.Popen(  # answers the first registration, then stops
        ["sipp", "-sf", str(Path(__file__).parent / "scenarios" / "provider_registrar.xml"),
         "-i", PROVIDER, "-p", str(port), "-m", "1", "-timeout", "20s", "-timeout_error",
         "-trace_err", "-nostdin"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    c = start_centrala(config)
    try:
        code = provider.wait(timeout=25)
        errors = "".join(p.read_text() for p in tmp_path.glob("*errors.log"))
        assert code == 0, f"the provider's SIPp failed:\n{errors}"
    finally:
        if provider.poll() is None:
            provider.kill()
    status = cli("trunks", "-c", str(config), "--state", str(c.state_dir))
    (line,) = [row for row in status.splitlines() if "placeholder" in row]
    assert "\tregistered" in line and "port licence" in line, status
    time.sleep(0.5)  # the licence is persisted with the next flush
    licences = cli("licences", "-c", str(config), "--state", str(c.state_dir))
    port_row = next(r for r in licences.splitlines() if r.split()[:1] == ["PBX-Port"])
    assert port_row.split()[-1] == "1", licences


def test_wrong_trunk_password_is_reported(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path], tmp_path: Path
) -> None:
    from tests.e2e.sipp import free_port

    port = free_port(PROVIDER)
    config = config_copy(registrar={"qualify_interval_s": 0})
    registering_trunk(config, port, "wrong")
    provider = subprocess.Popen(
        ["sipp", "-sf", str(Path(__file__).parent / "scenarios" / "provider_registrar.xml"),
         "-i", PROVIDER, "-p", str(port), "-m", "1", "-timeout", "20s", "-nostdin"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    c = start_centrala(config)
    try:
        provider.wait(timeout=25)
    finally:
        if provider.poll() is None:
            provider.kill()
    deadline = time.monotonic() + 5
    while True:
        status = cli("trunks", "-c", str(config), "--state", str(c.state_dir))
        if "failed" in status or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert "\tfailed" in status and "403" in status, status
    assert "registration failed (403" in c.log_text()
