"""The sans-IO registrar: RFC 3261 §10.3 step by step, without sockets or clocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialplan.loader import load_config
from switch.auth.digest import DigestAuth
from switch.directory import Directory
from switch.registrar.location import Location
from switch.registrar.registrar import Plan, Registrar, RegistrarSettings, Reject
from switch.sip.address import Address
from switch.sip.message import Request, new_request

from .test_auth import client_authorization

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "demo.centrala.test"
NOW = 1_800_000_000.0
PHONE = Address("udp", "203.0.113.5", 5060)


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory(load_config(REPO / "config"))


@pytest.fixture
def registrar(directory: Directory) -> Registrar:
    return Registrar(directory, Location(), DigestAuth(b"k" * 32), RegistrarSettings(min_expires=60))


def register(
    reg: Registrar,
    user: str = "100",
    password: str = "demo-pass-100",
    *,
    contacts: tuple[str, ...] = ("<sip:100@203.0.113.5:5060>",),
    expires: int | None = 600,
    call_id: str = "c1",
    cseq: int = 1,
    auth_user: str | None = None,
    now: float = NOW,
) -> Request:
    """A REGISTER that has already been challenged once (the first 401 is tested apart)."""
    headers: list[tuple[str, object]] = [
        ("Via", "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKr1;rport"),
        ("Max-Forwards", 70),
        ("From", f"<sip:{user}@{DOMAIN}>;tag=t1"),
        ("To", f"<sip:{user}@{DOMAIN}>"),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} REGISTER"),
    ]
    headers += [("Contact", c) for c in contacts]
    if expires is not None:
        headers.append(("Expires", expires))
    challenge = reg.auth.challenge(DOMAIN, now)[0]
    auth = client_authorization(
        challenge, auth_user or user, password, uri=f"sip:{DOMAIN}", cnonce=f"cn{cseq}"
    )
    headers.append(("Authorization", auth))
    return new_request("REGISTER", f"sip:{DOMAIN}", headers)


def ok(reg: Registrar, req: Request, now: float = NOW) -> tuple[Plan, list[tuple[str, object]]]:
    plan = reg.process(req, PHONE, now)
    assert isinstance(plan, Plan), plan
    return plan, reg.commit(plan, now)


def contacts_of(headers: list[tuple[str, object]]) -> list[str]:
    return [str(v) for k, v in headers if k == "Contact"]


def test_no_credentials_gets_a_challenge_for_the_tenant_realm(registrar: Registrar) -> None:
    req = register(registrar)
    req.remove("Authorization")
    reject = registrar.process(req, PHONE, NOW)
    assert isinstance(reject, Reject) and reject.status == 401
    values = [str(v) for k, v in reject.headers if k == "WWW-Authenticate"]
    assert len(values) == 2 and all(f'realm="{DOMAIN}"' in v for v in values)
    assert reject.auth_failure is None  # no attempt made: nothing to count for bans


def test_unknown_user_and_wrong_password_get_the_same_answer(registrar: Registrar) -> None:
    wrong = registrar.process(register(registrar, password="nope"), PHONE, NOW)
    unknown = registrar.process(register(registrar, user="9999", password="x"), PHONE, NOW)
    assert isinstance(wrong, Reject) and isinstance(unknown, Reject)
    assert (wrong.status, [k for k, _ in wrong.headers]) == (401, ["WWW-Authenticate"] * 2)
    assert (unknown.status, [k for k, _ in unknown.headers]) == (401, ["WWW-Authenticate"] * 2)
    assert wrong.auth_failure is not None and unknown.auth_failure is not None


def test_register_refresh_and_unregister(registrar: Registrar) -> None:
    plan, headers = ok(registrar, register(registrar))
    assert plan.first and not plan.last
    assert contacts_of(headers) == ["<sip:100@203.0.113.5:5060>;expires=600"]
    plan, headers = ok(registrar, register(registrar, cseq=2, expires=300), now=NOW + 100)
    assert not plan.first and contacts_of(headers) == ["<sip:100@203.0.113.5:5060>;expires=300"]
    assert len(registrar.location) == 1
    plan, headers = ok(registrar, register(registrar, cseq=3, expires=0), now=NOW + 200)
    assert plan.last and contacts_of(headers) == [] and len(registrar.location) == 0


def test_contact_expires_parameter_wins_and_long_asks_are_clamped(registrar: Registrar) -> None:
    req = register(registrar, contacts=("<sip:100@203.0.113.5>;expires=120",), expires=900)
    assert contacts_of(ok(registrar, req)[1]) == ["<sip:100@203.0.113.5>;expires=120"]
    req = register(registrar, contacts=("<sip:100@203.0.113.6>",), expires=99999, cseq=2)
    assert "<sip:100@203.0.113.6>;expires=3600" in contacts_of(ok(registrar, req)[1])


def test_interval_too_brief(registrar: Registrar) -> None:
    reject = registrar.process(register(registrar, expires=30), PHONE, NOW)
    assert isinstance(reject, Reject) and reject.status == 423
    assert ("Min-Expires", 60) in reject.headers


def test_out_of_order_cseq_is_rejected(registrar: Registrar) -> None:
    ok(registrar, register(registrar, cseq=5))
    reject = registrar.process(register(registrar, cseq=4), PHONE, NOW)
    assert isinstance(reject, Reject) and reject.status == 500
    ok(registrar, register(registrar, cseq=4, call_id="after-reboot"))  # a new Call-ID is fine


def test_star_removes_all_and_needs_expires_zero(registrar: Registrar) -> None:
    ok(registrar, register(registrar, contacts=("<sip:100@10.0.0.1>", "<sip:100@10.0.0.2>")))
    assert len(registrar.location) == 2
    reject = registrar.process(register(registrar, contacts=("*",), cseq=2), PHONE, NOW)
    assert isinstance(reject, Reject) and reject.status == 400
    plan, _ = ok(registrar, register(registrar, contacts=("*",), expires=0, cseq=3))
    assert plan.last and len(registrar.location) == 0


def test_max_contacts_replaces_the_soonest_expiring(registrar: Registrar) -> None:
    max_contacts = registrar.directory.find(DOMAIN, "100").max_contacts  # type: ignore[union-attr]
    for i in range(max_contacts):
        ok(registrar, register(registrar, contacts=(f"<sip:100@10.0.0.{i}>",), call_id=f"d{i}",
                               expires=600 + i))
    _, headers = ok(registrar, register(registrar, contacts=("<sip:100@10.0.1.1>",), call_id="new"))
    uris = contacts_of(headers)
    assert len(uris) == max_contacts and not any("10.0.0.0>" in u for u in uris)
    registrar.settings = RegistrarSettings(replace_when_full=False)
    reject = registrar.process(
        register(registrar, contacts=("<sip:100@10.0.2.2>",), call_id="newer"), PHONE, NOW
    )
    assert isinstance(reject, Reject) and reject.status == 403


def test_instance_id_replaces_its_own_flow(registrar: Registrar) -> None:
    inst = '+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1'
    ok(registrar, register(registrar, contacts=(f"<sip:100@10.0.0.1:5060>;{inst}",)))
    _, headers = ok(registrar, register(registrar, contacts=(f"<sip:100@10.0.0.9:6000>;{inst}",),
                                         call_id="rebooted"))
    assert len(contacts_of(headers)) == 1 and "10.0.0.9" in contacts_of(headers)[0]


def test_a_user_cannot_register_someone_elses_aor(registrar: Registrar) -> None:
    req = register(registrar, user="101", password="demo-pass-100", auth_user="100")
    reject = registrar.process(req, PHONE, NOW)
    assert isinstance(reject, Reject) and reject.status == 403


def test_unknown_domain_and_non_sip_to(registrar: Registrar) -> None:
    req = register(registrar)
    req.uri = "sip:other.example.com"
    assert registrar.process(req, PHONE, NOW) == Reject(404, "Domain not served here")
    req = register(registrar)
    req.set("To", "<tel:+123>")
    reject = registrar.process(req, PHONE, NOW)
    assert isinstance(reject, Reject) and reject.status == 400


def test_expiry_removes_bindings_and_reports_the_last(registrar: Registrar) -> None:
    changes = []
    registrar.location.listeners.append(changes.append)
    ok(registrar, register(registrar, expires=60))
    assert registrar.location.next_expiry() == NOW + 60
    assert registrar.location.expire(NOW + 59) == []
    (change,) = registrar.location.expire(NOW + 60)
    assert change.last and len(registrar.location) == 0
    assert [c.first for c in changes] == [True, False]


def test_refreshes_do_not_grow_the_expiry_heap_without_bound(registrar: Registrar) -> None:
    for i in range(3000):
        ok(registrar, register(registrar, cseq=i + 1, expires=600))
    assert len(registrar.location._heap) <= 2 * len(registrar.location) + 1024
