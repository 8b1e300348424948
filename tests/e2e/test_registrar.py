"""The registrar of the real process (RFC 3261 §10.3), driven by SIPp and a UDP client.

Every test runs a licensed copy of the configuration whose tenant has
generated extensions (see ``registrar_support``) and checks both what the
peer was answered and what the operator sees (``centrala registrations``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.conftest import Centrala
from tests.e2e.registrar_support import (
    DOMAIN,
    NO_QUALIFY,
    NO_RATE_LIMIT,
    SIPP_SECURITY,
    Authority,
    SipUdpClient,
    contacts_of,
    expect,
    header_values,
    licensed_config,
    number,
    ops,
    password,
    port_licence_counts,
    received_messages,
    registrations,
    start_on_state,
    write_users_csv,
)
from tests.e2e.sipp import SippResult, run_sipp

pytestmark = pytest.mark.usefixtures("sipp")  # fails, never skips, without SIPp

LOAD_USERS = 1000
LOAD_RATE = 250  # new registrations per second (two requests each); see the report

StartCentrala = Callable[..., Centrala]
ConfigCopy = Callable[..., Path]


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    return Authority.create(tmp_path_factory.mktemp("authority"))


def _start(
    start_centrala: StartCentrala,
    config_copy: ConfigCopy,
    authority: Authority,
    *,
    users: int = 5,
    ports: str = "100",
    max_contacts: int = 5,
    registrar: dict[str, object] | None = None,
) -> Centrala:
    config = licensed_config(
        config_copy,
        authority,
        users=users,
        ports=ports,
        max_contacts=max_contacts,
        security=SIPP_SECURITY,
        limits=NO_RATE_LIMIT,
        registrar={**NO_QUALIFY, **(registrar or {})},
    )
    return start_centrala(config)


def _target(c: Centrala) -> tuple[str, int]:
    return (c.host, c.udp_port)


# --------------------------------------------------------------------------- 1. load


def test_thousand_users_register_with_digest_from_csv(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority, tmp_path: Path
) -> None:
    c = _start(start_centrala, config_copy, authority, users=LOAD_USERS, ports=str(LOAD_USERS))
    users = [number(i) for i in range(LOAD_USERS)]
    csv = write_users_csv(tmp_path / "users.csv", users)
    res = run_sipp(
        "register_users.xml",
        c.target,
        calls=LOAD_USERS,
        rate=LOAD_RATE,
        timeout_s=30,
        extra=["-inf", str(csv), "-auth_uri", DOMAIN],
        workdir=tmp_path / "sipp",
    )
    assert res.returncode == 0, res.report()
    assert res.successful == LOAD_USERS, res.report()

    regs = registrations(c)
    by_aor = {r.aor: r for r in regs}
    assert len(regs) == LOAD_USERS, f"{len(regs)} bindings listed, {len(by_aor)} AORs"
    assert sorted(by_aor) == sorted(f"{u}@{DOMAIN}" for u in users)
    for u in users:
        r = by_aor[f"{u}@{DOMAIN}"]
        assert r.contact.startswith(f"sip:{u}@127.0.0.1:"), r
        assert 560 <= r.expires <= 600, r
        assert r.state == "ok", r
    installed, valid, in_use = port_licence_counts(ops(c, "licences").stdout)
    assert (installed, valid, in_use) == (LOAD_USERS, LOAD_USERS, str(LOAD_USERS))


# --------------------------------------------------------------------------- 2. refresh, remove


def test_refresh_keeps_one_binding_and_unregister_removes_it(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority
) -> None:
    c = _start(start_centrala, config_copy, authority)
    user = number(0)
    with SipUdpClient(_target(c)) as phone:
        uri = phone.contact_uri(user)
        first = expect(phone.register(user, password(user), expires=300), 200)
        assert first.contact_expires() == {uri: 300}, first.raw
        call_id, cseq = phone.call_id, phone.cseq

        refresh = expect(phone.register(user, password(user), expires=120), 200)
        assert phone.call_id == call_id and phone.cseq > cseq
        assert refresh.contact_expires() == {uri: 120}, refresh.raw
        listed = contacts_of(c, user)
        assert list(listed) == [uri] and 115 <= listed[uri] <= 120, listed

        gone = expect(phone.register(user, password(user), contact=f"<{uri}>;expires=0"), 200)
        assert gone.all("Contact") == [], gone.raw
        assert contacts_of(c, user) == {}


def test_star_with_expires_zero_removes_every_binding(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority
) -> None:
    c = _start(start_centrala, config_copy, authority)
    user, other = number(0), number(1)
    with SipUdpClient(_target(c)) as desk, SipUdpClient(_target(c)) as soft:
        for phone in (desk, soft):
            ok = expect(phone.register(user, password(user), expires=300), 200)
        assert set(ok.contact_expires()) == {desk.contact_uri(user), soft.contact_uri(user)}
        with SipUdpClient(_target(c)) as bystander:  # another user's binding must stay
            expect(bystander.register(other, password(other), expires=300), 200)
        assert len(contacts_of(c, user)) == 2

        expect(desk.register(user, password(user), contact="*", expires=300), 400)  # §10.3 step 6
        assert len(contacts_of(c, user)) == 2

        star = expect(desk.register(user, password(user), contact="*", expires=0), 200)
        assert star.all("Contact") == [], star.raw
        assert contacts_of(c, user) == {}
        assert len(contacts_of(c, other)) == 1


# --------------------------------------------------------------------------- 3. expiry bounds


def test_too_brief_gets_423_and_too_long_is_clamped(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority
) -> None:
    c = _start(
        start_centrala,
        config_copy,
        authority,
        registrar={"min_expires": 120, "max_expires": 1800, "default_expires": 600},
    )
    user = number(0)
    with SipUdpClient(_target(c)) as phone:
        uri = phone.contact_uri(user)
        brief = expect(phone.register(user, password(user), expires=119), 423)
        assert brief.reason == "Interval Too Brief", brief.raw
        assert brief.all("Min-Expires") == ["120"], brief.raw
        # the contact's own expires parameter wins over the Expires header
        expect(
            phone.register(user, password(user), contact=f"<{uri}>;expires=60", expires=600), 423
        )
        assert contacts_of(c, user) == {}

        default = expect(phone.register(user, password(user)), 200)  # no Expires at all
        assert default.contact_expires() == {uri: 600}, default.raw
        at_min = expect(phone.register(user, password(user), expires=120), 200)
        assert at_min.contact_expires() == {uri: 120}, at_min.raw

        long = expect(phone.register(user, password(user), expires=86400), 200)
        assert long.contact_expires() == {uri: 1800}, long.raw
        listed = contacts_of(c, user)
        assert list(listed) == [uri] and 1795 <= listed[uri] <= 1800, listed


# --------------------------------------------------------------------------- 4. several devices


def _sipp_device(c: Centrala, user: str, expires: int, workdir: Path) -> SippResult:
    return run_sipp(
        "register_device.xml",
        c.target,
        calls=1,
        rate=100,
        timeout_s=10,
        extra=["-s", user, "-au", user, "-ap", password(user), "-auth_uri", DOMAIN]
        + ["-key", "expires", str(expires)],
        workdir=workdir,
        trace_msg=True,
    )


def _final(res: SippResult) -> str:
    """The last message SIPp received (the final response to its REGISTER)."""
    got = received_messages(res.messages)
    assert got, f"SIPp received nothing\n{res.report()}"
    return got[-1]


def _contact_ports(message: str) -> set[int]:
    ports = set()
    for value in header_values(message, "Contact"):
        for part in value.split(","):
            uri = part.split("<", 1)[1].split(">", 1)[0]
            ports.add(int(uri.rsplit(":", 1)[1]))
    return ports


def _device_port(res: SippResult) -> int:
    return int(res.cmd[res.cmd.index("-p") + 1])


def test_two_devices_then_full_replaces_soonest_expiring(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority, tmp_path: Path
) -> None:
    c = _start(start_centrala, config_copy, authority, max_contacts=2)
    user = number(3)
    desk = _sipp_device(c, user, 900, tmp_path / "desk")
    assert desk.returncode == 0, desk.report()
    mobile = _sipp_device(c, user, 300, tmp_path / "mobile")  # expires soonest
    assert mobile.returncode == 0, mobile.report()
    both = _final(mobile)
    assert both.startswith("SIP/2.0 200"), both
    assert _contact_ports(both) == {_device_port(desk), _device_port(mobile)}, both

    laptop = _sipp_device(c, user, 600, tmp_path / "laptop")
    assert laptop.returncode == 0, laptop.report()
    full = _final(laptop)
    assert _contact_ports(full) == {_device_port(desk), _device_port(laptop)}, full
    listed = {int(uri.rsplit(":", 1)[1]) for uri in contacts_of(c, user)}
    assert listed == {_device_port(desk), _device_port(laptop)}


def test_when_full_reject_refuses_the_newcomer_with_403(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority, tmp_path: Path
) -> None:
    c = _start(
        start_centrala, config_copy, authority, max_contacts=2, registrar={"when_full": "reject"}
    )
    user = number(3)
    first = _sipp_device(c, user, 300, tmp_path / "a")
    second = _sipp_device(c, user, 900, tmp_path / "b")
    assert first.returncode == 0 and second.returncode == 0, first.report() + second.report()
    third = _sipp_device(c, user, 600, tmp_path / "c")
    assert third.returncode != 0, third.report()
    assert _final(third).startswith("SIP/2.0 403"), third.report()
    listed = {int(uri.rsplit(":", 1)[1]) for uri in contacts_of(c, user)}
    assert listed == {_device_port(first), _device_port(second)}


# --------------------------------------------------------------------------- 5. CSeq order


def test_out_of_order_cseq_in_the_same_call_id_gets_500(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority
) -> None:
    c = _start(start_centrala, config_copy, authority)
    user = number(0)
    with SipUdpClient(_target(c)) as phone:
        uri = phone.contact_uri(user)
        expect(phone.register(user, password(user), expires=300, cseq=10), 200)  # 10, then 11
        # the authenticated request carries cseq + 1: 6 (older) and 11 (the same) as the binding's
        for cseq in (5, 10):
            expect(phone.register(user, password(user), expires=600, cseq=cseq), 500)
        listed = contacts_of(c, user)
        assert list(listed) == [uri] and 290 <= listed[uri] <= 300, listed  # unchanged
        newer = expect(phone.register(user, password(user), expires=600, cseq=20), 200)
        assert newer.contact_expires() == {uri: 600}, newer.raw


# --------------------------------------------------------------------------- 6. restart


def test_restart_keeps_unexpired_bindings(
    start_centrala: StartCentrala, config_copy: ConfigCopy, authority: Authority
) -> None:
    c = _start(start_centrala, config_copy, authority)
    users = [number(i) for i in range(3)]
    phones = [SipUdpClient(_target(c)) for _ in users]
    try:
        for user, phone in zip(users, phones, strict=True):
            expect(phone.register(user, password(user), expires=300), 200)
        registered_at = time.monotonic()
        before = {r.aor: r.contact for r in registrations(c)}
        assert len(before) == 3
        problems = c.stop()
        assert not problems, "\n".join(problems) + "\n" + c.log_tail()

        again = start_on_state(start_centrala, c.config_dir, c.state_dir)
        after = registrations(again)
        elapsed = time.monotonic() - registered_at
        assert {r.aor: r.contact for r in after} == before, again.log_tail()
        for r in after:
            assert 300 - elapsed - 2 <= r.expires < 300, (r, elapsed)
        # the restored AORs hold their port licences again
        assert port_licence_counts(ops(again, "licences").stdout)[2] == "3"
    finally:
        for phone in phones:
            phone.close()
