"""Port licences of the real process: floating PBX-Port per registered user,
the software licence version rule, and tampered licence files."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Centrala, centrala_bin
from tests.e2e.registrar_support import (
    NO_QUALIFY,
    Authority,
    SipResponse,
    SipUdpClient,
    cli,
    contacts_of,
    licensed_config,
    number,
    ops,
    password,
    port_licence_counts,
    wait_for,
)
from tests.e2e.sipp import LOCAL_IP, free_port

StartCentrala = Callable[..., Centrala]
ConfigCopy = Callable[..., Path]
RUN_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("authority"))


def _register(c: Centrala, phone: SipUdpClient, user: str, **kwargs: object) -> SipResponse:
    resp = phone.register(user, password(user), **kwargs)  # type: ignore[arg-type]
    assert resp is not None, f"no answer to REGISTER {user}\n{c.log_tail()}"
    return resp


def test_port_licences_limit_registered_users(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority
) -> None:
    config = licensed_config(config_copy, authority, users=5, ports="3", registrar=NO_QUALIFY)
    c = start_centrala(config)
    target = (c.host, c.udp_port)
    users = [number(i) for i in range(5)]
    phones = {u: SipUdpClient(target) for u in users}
    second_desk = SipUdpClient(target)
    try:
        for u in users[:3]:
            ok = _register(c, phones[u], u, expires=300)
            assert ok.status == 200, ok.raw
        refused = _register(c, phones[users[3]], users[3], expires=300)
        assert refused.status == 403, refused.raw
        warning = refused.one("Warning") or ""
        assert warning.startswith("399 ") and "No port licence is free" in warning, refused.raw
        assert contacts_of(c, users[3]) == {}

        # a second device of a licensed user needs no second licence
        ok = _register(c, second_desk, users[0], expires=300)
        assert ok.status == 200, ok.raw
        assert len(ok.contact_expires()) == 2, ok.raw
        report = ops(c, "licences").stdout
        assert port_licence_counts(report) == (3, 3, "3"), report

        # unregistering the only device of a user frees its licence
        gone = _register(c, phones[users[1]], users[1], expires=0)
        assert gone.status == 200 and gone.all("Contact") == [], gone.raw
        now_ok = _register(c, phones[users[3]], users[3], expires=300)
        assert now_ok.status == 200, now_ok.raw
        still_full = _register(c, phones[users[4]], users[4], expires=300)
        assert still_full.status == 403, still_full.raw

        # removing one of two devices keeps the licence
        gone = _register(c, second_desk, users[0], expires=0)
        assert gone.status == 200 and len(gone.contact_expires()) == 1, gone.raw
        still_full = _register(c, phones[users[4]], users[4], expires=300)
        assert still_full.status == 403, still_full.raw
        report = ops(c, "licences").stdout
        assert port_licence_counts(report) == (3, 3, "3"), report
    finally:
        for phone in [*phones.values(), second_desk]:
            phone.close()


def test_port_licences_below_the_software_version_refuse_registrations(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority
) -> None:
    config = licensed_config(config_copy, authority, users=2, ports="5:0", registrar=NO_QUALIFY)
    c = start_centrala(config)
    user = number(0)
    with SipUdpClient((c.host, c.udp_port)) as phone:
        refused = _register(c, phone, user, expires=300)
    assert refused.status == 403, refused.raw
    warning = refused.one("Warning") or ""
    for text in (refused.reason, warning):
        assert "version 0" in text and "software licence version 1" in text, refused.raw
    assert contacts_of(c, user) == {}
    report = ops(c, "licences").stdout
    assert "port licences NOT valid" in report and "version 0" in report, report
    assert port_licence_counts(report) == (5, 0, "-"), report


def _tamper(lic: Path) -> None:
    """Flip one byte of the signed payload: the port count 7 becomes 9."""
    text = lic.read_text()
    assert text.count('"count": 7') == 1, text
    lic.write_text(text.replace('"count": 7', '"count": 9'))


def test_tampered_licence_file_is_refused(
    config_copy: ConfigCopy, authority: Authority, tmp_path: Path
) -> None:
    config = licensed_config(config_copy, authority, users=2, ports="7")
    good = cli("check", "-c", str(config), check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    lic = config / "licences" / "test.lic"
    _tamper(lic)

    bad = cli("check", "-c", str(config), check=False)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert str(lic) in bad.stderr and "licence refused" in bad.stderr, bad.stderr

    # the whole configuration is refused: the switch does not start on it
    port = free_port(LOCAL_IP, span=2)
    cmd = [
        str(centrala_bin()),
        "run",
        "-c",
        str(config),
        "--state",
        str(tmp_path / "state"),
        "-l",
        f"udp:{LOCAL_IP}:{port}",
    ]
    try:
        run = subprocess.run(
            cmd, check=False, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as exc:  # it started (and was killed by run())
        started = f"centrala run kept running on a tampered licence: {exc.stderr!r}"
        raise AssertionError(started) from None
    assert run.returncode == 1, run.stdout + run.stderr
    assert str(lic) in run.stderr and "licence refused" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr, run.stderr


def test_expired_registration_frees_its_licence(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority
) -> None:
    registrar = {**NO_QUALIFY, "min_expires": 1, "default_expires": 60}
    config = licensed_config(config_copy, authority, users=2, ports="1", registrar=registrar)
    c = start_centrala(config)
    first, second = number(0), number(1)
    with SipUdpClient((c.host, c.udp_port)) as a, SipUdpClient((c.host, c.udp_port)) as b:
        assert _register(c, a, first, expires=1).status == 200
        assert _register(c, b, second, expires=300).status == 403
        # the housekeeping tick (1 s) removes the binding and frees the licence
        assert wait_for(
            lambda: _register(c, b, second, expires=300).status == 200, timeout=5, interval=0.5
        ), c.log_tail()
        assert contacts_of(c, first) == {}
        assert list(contacts_of(c, second)) == [b.contact_uri(second)]
