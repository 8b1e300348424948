"""The routing engine, the dialplan settings' validation and ``centrala route``."""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from dialplan.decisions import (
    ANONYMOUS_URI,
    Feature,
    FeatureCode,
    ForwardChain,
    Refused,
    ToAnnouncement,
    ToExtension,
    ToGroup,
    ToTrunk,
    ToVoicemail,
)
from dialplan.loader import ConfigError, ConfigIssue, format_issues, load_config
from dialplan.routing import Router
from dialplan.schema import Config
from switch.route_cli import route_command

REPO = Path(__file__).resolve().parents[2]
T = "a.test"


def ext(number: int, name: str, **more: Any) -> dict[str, Any]:
    return {"number": number, "name": name, "password": "pw", **more}


TENANT: dict[str, Any] = {
    "domain": T,
    "name": "A Ltd",
    "settings": {
        "country_code": "48",
        "currency": "PLN",
        "permission": "national",
        "speed_dials": {"01": "0048221234567", "02": "0221234567"},
    },
    "extensions": [
        ext(100, "Alice", permission="international"),
        ext(101, "Bob"),  # tenant default: national
        ext(102, "Carol", permission="internal"),
        ext(103, "Dave", permission="international", max_price_per_minute=0.5, pin="1234"),
        ext(104, "Erin", voicemail=True, external_caller_id="restricted"),
        ext(105, "Frank", internal_caller_id={"number": 200, "name": "Boss"},
            external_caller_id="+48221234562"),
        ext(110, "Fwd", forward={"unconditional": {"to": "extension:111"}}),
        ext(111, "Target", voicemail=True,
            forward={"busy": "voicemail", "no_answer": {"to": "group:600"},
                     "no_answer_after_s": 10, "return_after_s": 30}),
        ext(120, "LoopA", forward={"unconditional": "extension:121"}),
        ext(121, "LoopB", forward={"unconditional": "extension:120"}),
        *[ext(130 + i, f"Hop{i}", forward={"unconditional": f"extension:{131 + i}"})
          for i in range(6)],
        ext(136, "HopEnd"),
        ext(140, "NationalFwd", forward={"unconditional": "external:00441632960001"}),
        ext(141, "MobileFwd", forward={"unconditional": "external:0221234567"}),
        ext(142, "VmFwd", voicemail=True, forward={"unconditional": "voicemail"}),
        ext(143, "GroupFwd", forward={"unavailable": "group:600", "busy": "extension:100"}),
    ],
    "groups": [
        {"number": 600, "name": "Sales", "members": [100, 101],
         "caller_id": "group_name_caller_number"},
        {"number": 601, "name": "Support", "members": [102], "caller_id": "group"},
    ],
    "trunks": [
        {"name": "main", "host": "192.0.2.1", "trusted": True},
        {"name": "backup", "host": "192.0.2.2", "number_format": "national"},
        {"name": "intl", "host": "192.0.2.3", "number_format": "international",
         "max_channels": 30},
    ],
    "rates": [
        {"prefix": "48", "per_minute": 0.02, "name": "Poland fixed"},
        {"prefix": "+485", "per_minute": 0.08, "name": "Poland mobile"},
        {"prefix": "0044", "per_minute": 0.10, "name": "UK"},
        {"prefix": "+882", "per_minute": 1.20, "name": "Premium"},
    ],
    "credit": {"limit": 100},
    "outbound_routes": [
        {"name": "emergency", "match": "112", "trunks": ["main"], "emergency": True},
        {"name": "national", "match": "_0[1-9]XXXXXXXX", "strip": 1, "prepend": "+48",
         "trunks": ["main", "backup", "intl"]},
        {"name": "international", "match": "_00.", "trunks": ["intl", "main"]},
        {"name": "service", "match": "re:^80[0-9]{4}$", "trunks": ["backup"],
         "caller_id": "+48221234560", "permission": "international"},
        {"name": "denmark", "match": "_95XXXXXXXX", "strip": 2, "prepend": "0045",
         "trunks": ["backup", "main"]},
    ],
    "inbound": [
        {"did": "+48221234560", "to": "group:600"},
        {"did": "+48 22 123 45 61", "to": "extension:101"},
        {"did": "+48221234564", "to": "voicemail:104"},
        {"did": "+48221234569", "to": "announcement:closed"},
        {"did": "+48221234562", "to": "extension:105"},
        {"did": "48221234570", "to": "extension:110"},
        {"did": "+48221234571", "to": "extension:120"},
        {"did": "+48221234572", "to": "extension:103"},
    ],
}


def config_of(*tenants: dict[str, Any]) -> Config:
    return Config.model_validate({"listen": ["udp:127.0.0.1"], "tenants": list(tenants)})


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(config_of(TENANT))


def refused(decision: object, status: int) -> Refused:
    assert isinstance(decision, Refused), decision
    assert decision.status == status, decision
    return decision


def trunk_call(decision: object) -> ToTrunk:
    assert isinstance(decision, ToTrunk), decision
    return decision


# --------------------------------------------------------------------------- feature codes


@pytest.mark.parametrize(
    ("dialed", "feature", "argument"),
    [
        ("*8101", Feature.INTERCOM, "101"),
        ("*70", Feature.PARK, ""),
        ("*703", Feature.PARK, "3"),
        ("*713", Feature.RETRIEVE, "3"),
        ("*60", Feature.PICKUP, ""),
        ("*60600", Feature.PICKUP, "600"),
        ("**101", Feature.DIRECTED_PICKUP, "101"),
    ],
)
def test_feature_codes(router: Router, dialed: str, feature: Feature, argument: str) -> None:
    decision = router.route_internal(T, "100", dialed)
    assert isinstance(decision, FeatureCode), decision
    assert (decision.feature, decision.argument, decision.tenant) == (feature, argument, T)
    assert decision.trace[-1].startswith(f"feature code {feature.value}")


@pytest.mark.parametrize(
    ("dialed", "reason"),
    [
        ("*8999", "intercom: 999 is not another extension"),
        ("*8100", "intercom: 100 is not another extension"),
        ("*8", "intercom: nothing is not another extension"),
        ("**555", "directed_pickup: 555 is not another extension"),
        ("*60101", "pickup: 101 is not a group"),
        ("*71*", "retrieve: slot '*' is not digits"),
        ("*907", "speed dial '07' is not set"),
    ],
)
def test_bad_feature_arguments(router: Router, dialed: str, reason: str) -> None:
    assert reason in refused(router.route_internal(T, "100", dialed), 404).reason


def test_speed_dial_is_expanded_and_routed(router: Router) -> None:
    call = trunk_call(router.route_internal(T, "100", "*901"))
    assert (call.route_name, call.number_e164) == ("international", "+48221234567")
    assert call.trace[1] == "speed dial 01 -> 0048221234567"
    national = trunk_call(router.route_internal(T, "100", "*902"))
    assert national.route_name == "national"


# --------------------------------------------------------------------------- internal numbers


def test_extension(router: Router) -> None:
    decision = router.route_internal(T, "100", "101")
    assert isinstance(decision, ToExtension)
    assert (decision.number, decision.name, decision.ring_time_s) == ("101", "Bob", 20)
    assert decision.forwarded_from == ()
    assert decision.caller_id is not None and decision.caller_id.number == "100"
    assert decision.trace == (
        "100 (Alice) dials 101 in a.test",
        "101 is extension 'Bob'",
        "ring extension 101 for 20s",
    )


def test_group_and_its_caller_id_mode(router: Router) -> None:
    sales = router.route_internal(T, "102", "600")
    assert isinstance(sales, ToGroup) and (sales.number, sales.name) == ("600", "Sales")
    assert sales.caller_id is not None
    assert (sales.caller_id.number, sales.caller_id.name) == ("102", "Sales")
    support = router.route_internal(T, "100", "601")
    assert isinstance(support, ToGroup) and support.caller_id is not None
    assert (support.caller_id.number, support.caller_id.name) == ("601", "Support")


@pytest.mark.parametrize(
    ("tenant", "caller", "dialed", "status", "reason"),
    [
        (T, "100", "999", 404, "999: no such number"),
        (T, "100", "0123", 404, "0123: no such number"),
        (T, "999", "101", 403, "999 is not an extension of a.test"),
        ("b.test", "100", "101", 404, "no tenant b.test"),
    ],
)
def test_unknown(
    router: Router, tenant: str, caller: str, dialed: str, status: int, reason: str
) -> None:
    assert refused(router.route_internal(tenant, caller, dialed), status).reason == reason


# --------------------------------------------------------------------------- outbound


def test_national_strip_prepend_e164_and_formats_per_trunk(router: Router) -> None:
    call = trunk_call(router.route_internal(T, "101", "0221234567"))
    assert (call.route_name, call.number_e164, call.call_class) == (
        "national", "+48221234567", "national")
    assert call.trunks == ("main", "backup", "intl")  # failover order as configured
    assert [a.number_sent for a in call.attempts] == [
        "+48221234567", "0221234567", "0048221234567"]
    assert call.number_sent == "+48221234567"
    assert (call.price_per_minute, call.rate_name, call.currency) == (
        Decimal("0.02"), "Poland fixed", "PLN")
    assert "route 'national' matches _0[1-9]XXXXXXXX: strip 1, prepend '+48' -> +48221234567" \
        in call.trace


def test_international_first_trunk_format(router: Router) -> None:
    call = trunk_call(router.route_internal(T, "100", "00441632960001"))
    assert (call.number_e164, call.call_class, call.trunks) == (
        "+441632960001", "international", ("intl", "main"))
    assert call.number_sent == "00441632960001"
    assert call.attempts[1].number_sent == "+441632960001"
    assert call.price_per_minute == Decimal("0.10")


def test_national_number_via_international_route_is_national(router: Router) -> None:
    call = trunk_call(router.route_internal(T, "101", "0048221234567"))
    assert (call.call_class, call.number_sent) == ("national", "0048221234567")


def test_foreign_number_to_national_format_trunk_goes_international(router: Router) -> None:
    call = trunk_call(router.route_internal(T, "100", "9512345678"))
    assert (call.route_name, call.number_e164) == ("denmark", "+4512345678")
    assert call.number_sent == "004512345678"  # backup is national-format: no other way
    assert call.attempts[1].number_sent == "+4512345678"


def test_route_permission_overrides_derived_class(router: Router) -> None:
    decision = router.route_internal(T, "101", "801234")
    assert refused(decision, 403).reason == "international calls not permitted for 101"
    call = trunk_call(router.route_internal(T, "100", "801234"))
    assert (call.number_e164, call.number_sent, call.call_class) == (
        None, "801234", "international")


@pytest.mark.parametrize(
    ("caller", "dialed", "reason"),
    [
        ("101", "00441632960001", "international calls not permitted for 101"),
        ("102", "0221234567", "national calls not permitted for 102"),
        ("102", "00441632960001", "international calls not permitted for 102"),
    ],
)
def test_permission_refusals(router: Router, caller: str, dialed: str, reason: str) -> None:
    decision = refused(router.route_internal(T, caller, dialed), 403)
    assert decision.reason == reason
    assert "refused" in decision.trace[-1] and decision.tenant == T


def test_tenant_default_permission() -> None:
    tenant = copy.deepcopy(TENANT)
    tenant["settings"]["permission"] = "international"
    router = Router(config_of(tenant))
    call = trunk_call(router.route_internal(T, "101", "00441632960001"))
    assert "permission: 101 may call international (tenant default); international call " \
        "allowed" in call.trace
    refused(router.route_internal(T, "102", "0221234567"), 403)  # own setting wins


def test_price_cap_and_longest_prefix(router: Router) -> None:
    fixed = trunk_call(router.route_internal(T, "103", "0221234567"))
    mobile = trunk_call(router.route_internal(T, "103", "0512345678"))
    assert (fixed.price_per_minute, mobile.price_per_minute) == (Decimal("0.02"), Decimal("0.08"))
    assert mobile.rate_name == "Poland mobile" and "price cap 0.50 PLN/min: ok" in mobile.trace
    over = refused(router.route_internal(T, "103", "00882123456"), 403)
    assert over.reason == "destination price 1.20/min over the cap of 0.50"
    unrated = refused(router.route_internal(T, "103", "0033123456789"), 403)
    assert unrated.reason == "no rate for +33123456789 while 103 has a price cap of 0.50"
    uncapped = trunk_call(router.route_internal(T, "100", "00882123456"))
    assert uncapped.price_per_minute == Decimal("1.20")
    assert router.rate_for(T, "+4851") is not None and router.rate_for(T, "+33") is None


def test_pin_flag(router: Router) -> None:
    assert trunk_call(router.route_internal(T, "103", "0221234567")).pin_required
    assert not trunk_call(router.route_internal(T, "100", "0221234567")).pin_required


def test_emergency_skips_every_check(router: Router) -> None:
    for caller in ("102", "103"):  # internal-only; capped with a PIN
        call = trunk_call(router.route_internal(T, caller, "112"))
        assert (call.call_class, call.number_e164, call.number_sent) == ("emergency", None, "112")
        assert not call.pin_required
        assert "emergency route: permission, price and PIN checks skipped" in call.trace


# --------------------------------------------------------------------------- inbound


@pytest.mark.parametrize("did", ["+48221234561", "48221234561", "+48 22 123-45-61"])
def test_inbound_extension(router: Router, did: str) -> None:
    decision = router.route_inbound(did)
    assert isinstance(decision, ToExtension) and decision.number == "101"
    assert decision.caller_id is None and decision.tenant == T


def test_inbound_targets(router: Router) -> None:
    group = router.route_inbound("+48221234560")
    assert isinstance(group, ToGroup) and group.number == "600"
    mailbox = router.route_inbound("+48221234564")
    assert isinstance(mailbox, ToVoicemail) and mailbox.mailbox == "104"
    closed = router.route_inbound("+48221234569")
    assert isinstance(closed, ToAnnouncement) and closed.name == "closed"
    assert closed.trace[1] == "DID +48221234569 belongs to tenant a.test: to announcement:closed"


def test_inbound_unknown(router: Router) -> None:
    assert refused(router.route_inbound("+48221234599"), 404).reason == (
        "DID +48221234599 is not in service")
    refused(router.route_inbound("not a number"), 404)


def test_inbound_follows_forwards(router: Router) -> None:
    forwarded = router.route_inbound("+48221234570")
    assert isinstance(forwarded, ToExtension)
    assert (forwarded.number, forwarded.forwarded_from) == ("111", ("110",))
    refused(router.route_inbound("+48221234571"), 482)


# --------------------------------------------------------------------------- forwarding


def test_forward_plan(router: Router) -> None:
    busy = router.forward_plan(T, "111", "busy")
    no_answer = router.forward_plan(T, "111", "no_answer")
    assert busy is not None and no_answer is not None
    assert (str(busy.target), busy.after_s, busy.fallback) == ("voicemail", None, "voicemail")
    assert (str(no_answer.target), no_answer.after_s, no_answer.return_after_s) == (
        "group:600", 10, 30)
    assert router.forward_plan(T, "111", "unavailable") is None
    assert router.forward_plan(T, "999", "busy") is None
    unavailable = router.forward_plan(T, "143", "unavailable")
    assert unavailable is not None and unavailable.fallback == "hangup"  # no voicemail


def test_no_answer_after_defaults_to_ring_time() -> None:
    tenant = copy.deepcopy(TENANT)
    tenant["extensions"][7]["forward"].pop("no_answer_after_s")
    tenant["extensions"][7]["ring_time_s"] = 25
    step = Router(config_of(tenant)).forward_plan(T, "111", "no_answer")
    assert step is not None and step.after_s == 25


def test_forward_chain(router: Router) -> None:
    chain = router.follow_forwards(T, "143", "busy")
    assert isinstance(chain, ForwardChain)
    assert [(s.extension, str(s.target)) for s in chain.steps] == [("143", "extension:100")]
    chain = router.follow_forwards(T, "131", "unconditional")  # 5 hops: the limit
    assert isinstance(chain, ForwardChain) and len(chain.steps) == 5
    assert chain.steps[-1].target.value == "136"
    empty = router.follow_forwards(T, "100", "busy")
    assert isinstance(empty, ForwardChain) and empty.steps == ()


def test_forward_loop_and_hop_limit(router: Router) -> None:
    loop = refused(router.follow_forwards(T, "120", "unconditional"), 482)
    assert loop.reason == "forwarding loop 120 -> 121 -> 120"
    assert refused(router.route_internal(T, "100", "121"), 482).reason == (
        "forwarding loop 121 -> 120 -> 121")
    too_long = refused(router.route_internal(T, "100", "130"), 483)
    assert too_long.reason == "too many forwards (more than 5) from 130"
    longer = Router(config_of(TENANT), max_forward_hops=6).route_internal(T, "100", "130")
    assert isinstance(longer, ToExtension)
    assert (longer.number, longer.forwarded_from) == (
        "136", ("130", "131", "132", "133", "134", "135"))


def test_dialling_a_forwarded_extension(router: Router) -> None:
    decision = router.route_internal(T, "100", "110")
    assert isinstance(decision, ToExtension)
    assert (decision.number, decision.forwarded_from) == ("111", ("110",))
    assert "110 forwards (unconditional) to extension:111" in decision.trace
    mailbox = router.route_internal(T, "100", "142")
    assert isinstance(mailbox, ToVoicemail) and mailbox.mailbox == "142"


def test_external_forward_uses_the_forwarders_rights(router: Router) -> None:
    call = trunk_call(router.route_internal(T, "102", "141"))  # 102 may not call out itself
    assert (call.number_e164, call.forwarded_from) == ("+48221234567", ("141",))
    assert "external forward: routed as if 141 dialled 0221234567" in call.trace
    denied = refused(router.route_internal(T, "100", "140"), 403)
    assert denied.reason == "international calls not permitted for 140"


# --------------------------------------------------------------------------- caller ID


def test_internal_caller_id(router: Router) -> None:
    frank = router.caller_id(T, "105", "internal")
    assert frank is not None and (frank.number, frank.name) == ("200", "Boss")
    bob = router.caller_id(T, "101", "internal")
    assert bob is not None and (bob.number, bob.name, bob.restricted) == ("101", "Bob", False)
    assert router.caller_id(T, "999", "internal") is None


def test_external_caller_id_choice(router: Router) -> None:
    chosen = router.caller_id(T, "105", "trunk", "main")
    assert chosen is not None and chosen.number == "+48221234562"
    own_did = router.caller_id(T, "101", "trunk", "main")  # the DID routed to 101
    assert own_did is not None and own_did.number == "+48221234561"
    first = router.caller_id(T, "100", "trunk", "main")  # no DID of its own: the first
    assert first is not None and first.number == "+48221234560"


def test_route_caller_id_override() -> None:
    tenant = copy.deepcopy(TENANT)
    tenant["extensions"][5]["permission"] = "international"
    call = trunk_call(Router(config_of(tenant)).route_internal(T, "105", "801234"))
    assert call.caller_id.number == "+48221234560"


def test_restricted_caller_id_and_pai(router: Router) -> None:
    trusted = router.caller_id(T, "104", "trunk", "main")
    untrusted = router.caller_id(T, "104", "trunk", "backup")
    assert trusted is not None and untrusted is not None
    assert trusted.restricted and trusted.from_name == "Anonymous"
    assert trusted.from_uri("a.test") == ANONYMOUS_URI == "sip:anonymous@anonymous.invalid"
    assert trusted.privacy == "id"
    assert trusted.pai_uri("a.test") == "sip:+48221234560@a.test;user=phone"
    assert untrusted.pai_uri("a.test") is None and untrusted.privacy == "id"
    open_id = router.caller_id(T, "101", "trunk", "backup")
    assert open_id is not None and open_id.privacy is None and open_id.pai_uri("x") is None
    assert open_id.from_uri("a.test") == "sip:+48221234561@a.test"


def test_trunk_call_carries_caller_id_per_trunk(router: Router) -> None:
    call = trunk_call(router.route_internal(T, "104", "0221234567"))
    assert [a.caller_id.assert_identity for a in call.attempts] == [True, False, False]
    assert all(a.caller_id.restricted for a in call.attempts)


# --------------------------------------------------------------------------- validation

MAIN = "listen:\n  - udp:127.0.0.1:5060\n"
YAML_TENANT = dedent("""\
    domain: a.test
    name: A Ltd
    settings:
      country_code: "48"
      extension_length: 3
      pickup_prefix: "*60"
    extensions:
      - number: 100
        name: Alice
        password: pw
        external_caller_id: "+48221234560"
        forward:
          busy: {to: "extension:101"}
          no_answer: {to: "group:600"}
      - number: 101
        name: Bob
        password: pw
    groups:
      - number: 600
        name: Sales
        members: [100, 101]
    trunks:
      - name: carrier
        host: 192.0.2.1
    rates:
      - {prefix: "+48", per_minute: 0.02}
    outbound_routes:
      - name: national
        match: _0[1-9]XXXXXXXX
        trunks: [carrier]
    inbound:
      - did: "+48221234560"
        to: extension:100
    """)


def load_issues(tmp_path: Path, tenant: str, **others: str) -> list[ConfigIssue]:
    (tmp_path / "tenants").mkdir(parents=True, exist_ok=True)
    (tmp_path / "centrala.yaml").write_text(MAIN)
    (tmp_path / "tenants" / "a.yaml").write_text(tenant)
    for name, text in others.items():
        (tmp_path / "tenants" / f"{name}.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    return sorted(caught.value.issues, key=lambda i: (str(i.file), i.line))


def line(text: str, needle: str, nth: int = 1) -> int:
    return [i for i, ln in enumerate(text.splitlines(), 1) if needle in ln][nth - 1]


def test_valid_yaml_tenant_loads(tmp_path: Path) -> None:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "centrala.yaml").write_text(MAIN)
    (tmp_path / "tenants" / "a.yaml").write_text(YAML_TENANT)
    tenant = load_config(tmp_path, env={}).tenants[0]
    assert tenant.settings.intercom_prefix == "*8" and tenant.settings.permission == "national"
    assert tenant.inbound[0].did == "+48221234560" and str(tenant.inbound[0].to) == "extension:100"
    assert tenant.rates[0].per_minute == Decimal("0.02")
    assert tenant.trunks[0].number_format == "e164" and not tenant.trunks[0].trusted


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("trunks: [carrier]", "trunks: [carrier, nowhere]", "trunks: [carrier, nowhere]",
         "outbound_routes[0].trunks[1]: dangling reference: no trunk 'nowhere' in this tenant"),
        ('{to: "extension:101"}', '{to: "extension:109"}', "extension:109",
         "extensions[0].forward.busy.to: dangling reference: no extension '109' in this tenant"),
        ('{to: "group:600"}', '{to: "group:609"}', "group:609",
         "extensions[0].forward.no_answer.to: dangling reference: no group '609' in this tenant"),
        ('{to: "extension:101"}', '{to: "extension:100"}', "extension:100\"",
         "extensions[0].forward.busy.to: extension 100 forwards to itself"),
        ('{to: "group:600"}', "voicemail", "no_answer: voicemail",
         "extensions[0].forward.no_answer.to: voicemail is not enabled for extension 100"),
        ("to: extension:100", "to: voicemail:101", "voicemail:101",
         "inbound[0].to: voicemail is not enabled for extension 101"),
        ("to: extension:100", "to: group:700", "group:700",
         "inbound[0].to: dangling reference: no group '700' in this tenant"),
        ('external_caller_id: "+48221234560"', 'external_caller_id: "+48221234599"',
         "+48221234599",
         ("extensions[0].external_caller_id: '+48221234599' is not one of this tenant's DIDs "
         "(inbound)")),
        ('pickup_prefix: "*60"', 'pickup_prefix: "*707"', 'pickup_prefix: "*707"',
         ("settings.pickup_prefix: '*707' conflicts with park_prefix '*70': one is a prefix "
         "of the other, so one feature could never be dialled")),
        ('pickup_prefix: "*60"', 'pickup_prefix: "1000"', 'pickup_prefix: "1000"',
         ("settings.pickup_prefix: '1000' conflicts with number '100' at extensions[0].number: "
         "one is a prefix of the other")),
        ("groups:\n", "  - {number: 1020, name: Long, password: pw}\ngroups:\n", "number: 1020",
         "extensions[2].number: '1020' is not 3 digits (settings.extension_length)"),
        ('country_code: "48"', 'country_code: "48"\n  speed_dials: {1: "0221234567"}',
         "speed_dials",
         ("settings.speed_dials.1: speed-dial slot '1' must be 2 digits "
         "(settings.speed_dial_length); quote slots with a leading 0")),
        ("to: extension:100", "to: mailbox:100", "mailbox:100",
         ("inbound[0].to: 'mailbox:100': unknown target; expected extension:100, group:600, "
         "voicemail:100 or announcement:closed")),
        ('did: "+48221234560"', 'did: "048221234560"', "048221234560",
         ("inbound[0].did: '048221234560' is not an E.164 number (+ and up to 15 digits, no "
         "leading 0)")),
    ],
)
def test_reference_errors_point_at_the_line(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    assert old in YAML_TENANT
    tenant = YAML_TENANT.replace(old, new, 1)
    issues = load_issues(tmp_path, tenant)
    assert len(issues) == 1, format_issues(issues)
    assert (issues[0].line, issues[0].message) == (line(tenant, needle), message)


def test_country_code_needed_for_outbound_routes(tmp_path: Path) -> None:
    tenant = YAML_TENANT.replace('  country_code: "48"\n', "")
    [issue] = load_issues(tmp_path, tenant)
    assert issue.line == line(tenant, "outbound_routes:")
    assert "set settings.country_code" in issue.message


def test_price_cap_without_rates(tmp_path: Path) -> None:
    tenant = YAML_TENANT.replace("rates:\n  - {prefix: \"+48\", per_minute: 0.02}\n", "")
    tenant = tenant.replace("    name: Bob\n", "    name: Bob\n    max_price_per_minute: 0.5\n")
    [issue] = load_issues(tmp_path, tenant)
    assert issue.line == line(tenant, "max_price_per_minute")
    assert "a price cap needs rates" in issue.message


def test_duplicate_did_within_and_across_tenants(tmp_path: Path) -> None:
    other = YAML_TENANT.replace("a.test", "b.test").replace("A Ltd", "B Ltd")
    issues = load_issues(tmp_path, YAML_TENANT, b=other)
    assert [(i.file.name, i.line, i.message) for i in issues] == [(
        "b.yaml", line(other, "did:"),
        ("inbound[0].did: DID '+48221234560' is already routed to tenant 'A Ltd' (a.test); "
        "a DID reaches exactly one tenant"),
    )]
    twice = YAML_TENANT + '  - did: "+48 22 123 45 60"\n    to: extension:101\n'
    [issue] = load_issues(tmp_path / "twice", twice)
    assert issue.line == line(twice, "+48 22 123 45 60")
    assert "duplicate DID '+48221234560'" in issue.message


def test_unknown_key_in_settings_suggests(tmp_path: Path) -> None:
    tenant = YAML_TENANT.replace("pickup_prefix", "pikcup_prefix")
    [issue] = load_issues(tmp_path, tenant)
    assert issue.message == "settings: unknown key 'pikcup_prefix' (did you mean 'pickup_prefix'?)"


# --------------------------------------------------------------------------- demo and CLI


def run_route(
    capsys: pytest.CaptureFixture[str], caller: str, to: str, tenant: str | None = None
) -> tuple[int, str]:
    status = route_command(REPO / "config", caller, to, tenant, env={})
    return status, capsys.readouterr().out


def test_demo_routes_as_documented() -> None:
    router = Router(load_config(REPO / "config", env={}))
    demo = "demo.centrala.test"
    assert isinstance(router.route_internal(demo, "101", "00441632960001"), Refused)  # national
    assert isinstance(router.route_internal(demo, "102", "00882123456"), Refused)  # price cap
    assert trunk_call(router.route_internal(demo, "103", "0221234567")).pin_required
    assert router.caller_id(demo, "103", "trunk", "placeholder").restricted  # type: ignore[union-attr]
    assert trunk_call(router.route_internal(demo, "101", "112")).call_class == "emergency"


def test_cli_outbound(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_route(capsys, "100", "0048221234567")
    assert status == 0
    assert out.splitlines()[0] == "call:       100 -> 0048221234567 (tenant demo.centrala.test)"
    summary = out[out.index("result:"):].splitlines()
    assert summary == [
        "result:     ROUTED to trunk via route 'international'",
        "number:     +48221234567 (E.164), call class national",
        "trunks:     1. placeholder sends +48221234567",
        "            2. backup      sends 0221234567",
        'caller ID:  1. +48221234560 "Alice Reception", P-Asserted-Identity',
        '            2. +48221234560 "Alice Reception", no P-Asserted-Identity',
        "price:      0.02 PLN/min (Poland fixed)",
        "PIN:        not required",
    ]
    assert "  4. permission: 100 may call international (own setting); national call allowed" \
        in out


def test_cli_refused(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_route(capsys, "101", "00441632960001", "demo.centrala.test")
    assert status == 2
    assert out.splitlines()[-1] == (
        "result:     REFUSED 403 international calls not permitted for 101")
    status, out = run_route(capsys, "102", "00882123456")
    assert (status, out.splitlines()[-1]) == (
        2, "result:     REFUSED 403 destination price 1.20/min over the cap of 0.50")


def test_cli_pin_restricted_and_feature(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_route(capsys, "103", "0221234567")
    assert status == 0 and "PIN:        required" in out
    assert 'caller ID:  1. restricted: From "Anonymous" <sip:anonymous@anonymous.invalid>, ' \
        "Privacy: id, P-Asserted-Identity +48221234560" in out
    status, out = run_route(capsys, "100", "*8101")
    assert (status, out.splitlines()[-1]) == (0, "result:     FEATURE intercom 101")


def test_cli_inbound_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = run_route(capsys, "+48600000000", "+48221234561")
    assert status == 0
    assert out.splitlines()[0] == "call:       +48600000000 -> +48221234561 (inbound from a trunk)"
    assert out.splitlines()[-1] == "result:     ROUTED to extension 101 (Bob Sales), ring 20s"
    status = route_command(REPO / "config", "100", "101", "nope.test", env={})
    assert status == 1 and "no tenant 'nope.test'" in capsys.readouterr().err
    status = route_command(REPO / "config", "555", "101", env={})
    assert status == 1 and "555 is no tenant's extension" in capsys.readouterr().err
