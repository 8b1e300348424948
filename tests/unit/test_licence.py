"""Licensing: signed licence files, the policy, the authority CLI, the loader."""

from __future__ import annotations

import logging
import stat
from datetime import date
from pathlib import Path
from textwrap import dedent
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from dialplan.loader import ConfigError, ConfigIssue, format_issues, load_config
from switch.licence import SOFTWARE_LICENCE_VERSION
from switch.licence.cli import app as licence_app
from switch.licence.document import (
    FORMAT,
    Licence,
    LicenceError,
    LicenceItem,
    UntrustedLicence,
    canonical_payload,
    key_id,
    public_key_pem,
    sign,
    signed_bytes,
    trusted_keys,
    verify,
)
from switch.licence.policy import LicencePolicy, LicenceType, TotalKey, report

REPO = Path(__file__).resolve().parents[2]
DEMO = "demo.centrala.test"


@pytest.fixture(scope="module")
def authority() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def licence(
    tenant: str = "a.test",
    items: tuple[tuple[str, int, int], ...] = (("PBX-Port", 10, 1),),
    node: str | None = None,
    serial: str = "s-1",
) -> Licence:
    return Licence(
        serial=serial,
        issuer="Test authority",
        issued=date(2025, 1, 1),
        tenant=tenant,
        node=node,
        items=tuple(LicenceItem(type=t, count=c, version=v) for t, c, v in items),
    )


# --------------------------------------------------------------------------- document


def test_sign_verify_round_trip(authority: Ed25519PrivateKey) -> None:
    original = licence(items=(("PBX-Port", 10, 1), ("PBX-VoicemailUser", 5, 1)), node="pbx1")
    text = sign(original, authority)
    assert verify(text, trusted_keys([authority.public_key()])) == original
    assert f"format: {FORMAT}\n" in text and f'key_id: "{key_id(authority.public_key())}"' in text
    assert '    "type": "PBX-VoicemailUser",' in text  # the payload is readable as is


def test_comments_are_not_signed(authority: Ed25519PrivateKey) -> None:
    text = "# installed 2025-02-01 by ops\n" + sign(licence(), authority)
    assert verify(text, trusted_keys([authority.public_key()])) == licence()


def test_every_byte_of_key_id_signature_and_payload_is_covered(
    authority: Ed25519PrivateKey,
) -> None:
    text = sign(licence(items=(("PBX-Port", 10, 1), ("PBX-Fax", 2, 1))), authority)
    keys = trusted_keys([authority.public_key()])
    start = text.index("format:")
    for i in range(start, len(text)):
        changed = text[:i] + ("y" if text[i] == "x" else "x") + text[i + 1 :]
        with pytest.raises(LicenceError):
            verify(changed, keys)


def test_signature_has_one_spelling(authority: Ed25519PrivateKey) -> None:
    """The last base64 digit carries unused bits: other spellings are refused."""
    import string

    text = sign(licence(), authority)
    keys = trusted_keys([authority.public_key()])
    signature = _value(text, "signature")
    last = len(signature.rstrip("=")) - 1
    for digit in string.ascii_letters + string.digits + "+/":
        if digit != signature[last]:
            other = signature[:last] + digit + signature[last + 1 :]
            with pytest.raises(UntrustedLicence):
                verify(text.replace(signature, other), keys)


def test_tampered_payload_is_refused_at_the_signature_line(authority: Ed25519PrivateKey) -> None:
    text = sign(licence(), authority).replace('"count": 10', '"count": 99')
    with pytest.raises(UntrustedLicence, match="not signed by a trusted licence authority") as e:
        verify(text, trusted_keys([authority.public_key()]))
    assert text.splitlines()[e.value.line - 1].startswith("signature:")


def test_signature_of_another_licence_is_refused(authority: Ed25519PrivateKey) -> None:
    ten, hundred = sign(licence(), authority), sign(licence(serial="s-2"), authority)
    swapped = ten.replace(_value(ten, "signature"), _value(hundred, "signature"))
    with pytest.raises(UntrustedLicence):
        verify(swapped, trusted_keys([authority.public_key()]))


def test_foreign_key_is_refused(authority: Ed25519PrivateKey) -> None:
    foreign = Ed25519PrivateKey.generate()
    text = sign(licence(), foreign)
    keys = trusted_keys([authority.public_key()])
    with pytest.raises(UntrustedLicence, match="not signed by a trusted licence authority"):
        verify(text, keys)
    # Claiming the trusted key's id does not help: the signature does not match it.
    forged = text.replace(key_id(foreign.public_key()), key_id(authority.public_key()))
    with pytest.raises(UntrustedLicence, match="signature does not match"):
        verify(forged, keys)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list\n", "not a licence file"),
        ("format: [unclosed\n", "YAML syntax error"),
        (f"format: {FORMAT}\nkey_id: x\npayload: y\n", "missing signature"),
        ("format: centrala-licence/9\nkey_id: a\nsignature: b\npayload: c\nx: 1\n", "unknown"),
        ("format: centrala-licence/9\nkey_id: a\nsignature: b\npayload: c\n", "unsupported"),
    ],
)
def test_malformed_files(text: str, message: str) -> None:
    with pytest.raises(LicenceError, match=message):
        verify(text, {})


def test_signed_but_malformed_payload_is_refused(authority: Ed25519PrivateKey) -> None:
    keys = trusted_keys([authority.public_key()])
    good = canonical_payload(licence())
    for payload, message in [
        (good.replace("\n  ", "\n   "), "canonical"),
        (good.replace('"count": 10', '"count": 0'), "items.0.count"),
        (good.replace('"tenant": "a.test"', '"tenant": "A.TEST"'), "tenant"),
        ("[]\n", "payload"),
    ]:
        with pytest.raises(LicenceError, match=message) as caught:
            verify(_file(authority, payload), keys)
        assert not isinstance(caught.value, UntrustedLicence)


def _file(key: Ed25519PrivateKey, payload: str) -> str:
    """A licence file around an arbitrary payload, validly signed by ``key``."""
    import base64

    kid = key_id(key.public_key())
    signature = base64.b64encode(key.sign(signed_bytes(kid, payload))).decode()
    body = "".join(f"  {line}\n" for line in payload.splitlines())
    return f"format: {FORMAT}\nkey_id: \"{kid}\"\nsignature: {signature}\npayload: |\n{body}"


def _value(text: str, key: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"{key}: ")).split(": ")[1]


# --------------------------------------------------------------------------- CLI


def test_keygen_issue_show(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(licence_app, ["keygen", "--out", str(tmp_path / "ca")])
    assert result.exit_code == 0, result.output
    private, public = tmp_path / "ca/authority.key", tmp_path / "ca/authority.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert "PRIVATE KEY" in private.read_text() and "PUBLIC KEY" in public.read_text()

    out = tmp_path / "a.lic"
    args = ["issue", "--key", str(private), "--tenant", "A.Test", "--item", "PBX-Port:10"]
    args += ["--item", "PBX-Fax:2:3", "--node", "pbx1", "--serial", "X-1", "--out", str(out)]
    result = runner.invoke(licence_app, args)
    assert result.exit_code == 0, result.output
    from switch.licence.document import load_public_key

    issued = verify(out.read_text(), trusted_keys([load_public_key(public.read_bytes())]))
    assert (issued.tenant, issued.node, issued.serial) == ("a.test", "pbx1", "X-1")
    assert issued.items == (
        LicenceItem(type="PBX-Port", count=10, version=SOFTWARE_LICENCE_VERSION),
        LicenceItem(type="PBX-Fax", count=2, version=3),
    )
    shown = runner.invoke(licence_app, ["show", str(out), "--pub", str(public)])
    assert shown.exit_code == 0 and "valid licence, serial X-1" in shown.output

    again = runner.invoke(licence_app, ["keygen", "--out", str(tmp_path / "ca")])
    assert again.exit_code == 1 and "--force" in again.output
    assert runner.invoke(licence_app, [*args, "--force"]).exit_code == 0


def test_issue_rejects_bad_items(tmp_path: Path) -> None:
    runner = CliRunner()
    runner.invoke(licence_app, ["keygen", "--out", str(tmp_path)])
    base = ["issue", "--key", str(tmp_path / "authority.key"), "--tenant", "a.test"]
    base += ["--out", str(tmp_path / "x.lic")]
    for item, message in [
        ("PBX-Prot:10", "did you mean PBX-Port"),
        ("PBX-Port", "TYPE:COUNT"),
        ("PBX-Port:ten", "whole numbers"),
        ("PBX-Port:0", "greater than or equal to 1"),
    ]:
        result = runner.invoke(licence_app, [*base, "--item", item])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "x.lic").exists()


def test_show_refuses_foreign_licence(tmp_path: Path, authority: Ed25519PrivateKey) -> None:
    (tmp_path / "a.lic").write_text(sign(licence(), Ed25519PrivateKey.generate()))
    (tmp_path / "ca.pub").write_bytes(public_key_pem(authority))
    result = CliRunner().invoke(
        licence_app, ["show", str(tmp_path / "a.lic"), "--pub", str(tmp_path / "ca.pub")]
    )
    assert result.exit_code == 1 and "not signed by a trusted licence authority" in result.output


# --------------------------------------------------------------------------- policy


def user(number: str, **flags: bool) -> SimpleNamespace:
    defaults = {"voicemail": False, "fax": False, "recording": False, "uc": False}
    return SimpleNamespace(number=number, **{**defaults, **flags})


def tenant(domain: str, *users: SimpleNamespace, recording: bool = False) -> SimpleNamespace:
    return SimpleNamespace(domain=domain, extensions=list(users), recording=recording)


def test_totals_per_tenant_and_node_binding() -> None:
    policy = LicencePolicy(
        (
            licence("a.test", (("PBX-Port", 10, 1), ("PBX-Fax", 2, 1)), serial="1"),
            licence("a.test", (("PBX-Port", 5, 1),), node="PBX1", serial="2"),
            licence("a.test", (("PBX-Port", 7, 1),), node="pbx2", serial="3"),
            licence("b.test", (("PBX-Port", 3, 2),), serial="4"),
        ),
        node="pbx1",
    )
    assert policy.installed("a.test", LicenceType.PORT) == 15  # pbx2's 7 do not count here
    assert policy.installed("A.TEST", LicenceType.FAX) == 2
    assert policy.ports("b.test").count == 3 and policy.ports("c.test").count == 0
    assert [x.serial for x in policy.elsewhere("a.test")] == ["3"]
    assert policy.tenants() == ("a.test", "b.test")
    assert policy.totals() == {
        TotalKey("a.test", "PBX-Fax", 1, None): 2,
        TotalKey("a.test", "PBX-Port", 1, None): 10,
        TotalKey("a.test", "PBX-Port", 1, "PBX1"): 5,
        TotalKey("a.test", "PBX-Port", 1, "pbx2"): 7,
        TotalKey("b.test", "PBX-Port", 2, None): 3,
    }
    on_pbx2 = LicencePolicy(policy.licences, node="pbx2")
    assert on_pbx2.installed("a.test", LicenceType.PORT) == 17


def test_version_rule_lowest_port_licence_decides() -> None:
    current = licence(items=(("PBX-Port", 10, 1),), serial="new")
    old = licence(items=(("PBX-Port", 2, 0),), serial="old")
    assert LicencePolicy((current,), "n").ports("a.test").valid
    ports = LicencePolicy((current, old), "n").ports("a.test")
    assert (ports.count, ports.effective_version, ports.valid, ports.usable) == (12, 0, False, 0)
    assert ports.reason is not None
    assert "version 0 (serial old)" in ports.reason and "software licence version 1" in ports.reason
    refusal = LicencePolicy((current, old), "n").port_refusal("a.test", in_use=0)
    assert refusal == ports.reason
    # A newer licence serves older software.
    assert LicencePolicy((licence(items=(("PBX-Port", 1, 5),)),), "n").ports("a.test").valid
    # An old licence bound to another node does not drag this node down.
    elsewhere = licence(items=(("PBX-Port", 2, 0),), node="other", serial="old")
    assert LicencePolicy((current, elsewhere), "n").ports("a.test").valid


def test_port_refusal_counts_in_use() -> None:
    policy = LicencePolicy((licence(items=(("PBX-Port", 2, 1),)),), "n")
    assert policy.port_refusal("a.test", in_use=1) is None
    assert (
        policy.port_refusal("a.test", in_use=2) == "all 2 port licence(s) of the tenant are in use"
    )
    assert policy.port_refusal("z.test", in_use=0) is not None


def test_user_bound_over_count_lists_users() -> None:
    policy = LicencePolicy((licence(items=(("PBX-VoicemailUser", 2, 1),)),), "n")
    a = tenant("a.test", user("101"), *(user(n, voicemail=True) for n in ("102", "103", "104")))
    [problem] = policy.problems([a])
    assert problem.message == (
        "tenant a.test: 3 user(s) enable voicemail but only 2 PBX-VoicemailUser "
        "licence(s): 102, 103, 104 (1 over)"
    )
    assert (problem.flag, problem.first_over) == ("voicemail", "104")


def test_old_version_user_licences_do_not_count() -> None:
    policy = LicencePolicy((licence(items=(("PBX-Recording", 3, 0),)),), "n")
    [problem] = policy.problems([tenant("a.test", user("1", recording=True))])
    assert "only 0 PBX-Recording licence(s) (3 more below software licence version 1)" in (
        problem.message
    )


def test_uc_bundle_covers_voicemail_and_fax() -> None:
    a = tenant("a.test", user("1", uc=True, voicemail=True, fax=True), user("2", fax=True))
    policy = LicencePolicy((licence(items=(("PBX-UC", 1, 1), ("PBX-Fax", 1, 1))),), "n")
    assert policy.problems([a]) == []
    short = LicencePolicy((licence(items=(("PBX-Fax", 1, 1),)),), "n").problems([a])
    assert [p.flag for p in short] == ["uc"]  # user 1's fax is in the bundle


def test_old_voicemail_model_needs_as_many_as_ports() -> None:
    a = tenant("a.test", user("1", voicemail=True), user("2", voicemail=True))
    enough = licence(items=(("PBX-Port", 4, 1), ("PBX-Voicemail", 4, 1)))
    assert LicencePolicy((enough,), "n").problems([a]) == []
    short = licence(items=(("PBX-Port", 4, 1), ("PBX-Voicemail", 3, 1)))
    [problem] = LicencePolicy((short,), "n").problems([a])
    assert "needs as many licences as PBX-Port (4) and there are only 3: 1, 2" in problem.message


def test_mixed_voicemail_models() -> None:
    policy = LicencePolicy(
        (
            licence(items=(("PBX-Port", 2, 1), ("PBX-Voicemail", 2, 1)), serial="old"),
            licence(items=(("PBX-VoicemailUser", 2, 1),), serial="new"),
        ),
        "n",
    )
    [problem] = policy.problems([tenant("a.test")])
    assert problem.kind == "mixed_voicemail" and problem.serials == ("old", "new")
    assert "cannot be mixed" in problem.message


def test_standby_needs_standby_licences_for_every_port() -> None:
    ports = licence(items=(("PBX-Port", 10, 1), ("PBX-Standby", 5, 1)))
    policy = LicencePolicy((ports,), "pbx1")
    assert policy.problems([tenant("a.test")]) == []
    [problem] = policy.problems([tenant("a.test")], standby=True)
    assert problem.message == (
        "standby: true but tenant a.test has 10 PBX-Port and only 5 PBX-Standby licence(s) "
        "on node pbx1"
    )


def test_report() -> None:
    policy = LicencePolicy(
        (
            licence(items=(("PBX-Port", 10, 1), ("PBX-VoicemailUser", 5, 1))),
            licence("a.test", (("PBX-Port", 3, 1),), node="other", serial="bound"),
            licence("gone.test", serial="g"),
        ),
        "pbx1",
    )
    a = tenant("a.test", user("1", voicemail=True), user("2"))
    text = report(policy, [a], {"a.test": {"PBX-Port": 2}})
    assert text.splitlines()[:5] == [
        "node pbx1, software licence version 1, standby: no",
        "tenant a.test: port licences valid (effective licence version 1)",
        "  type                 installed  valid  in use",
        "  PBX-Port                    10     10       2",
        "  PBX-VoicemailUser            5      5       1",
    ]
    assert "not counted here: serial bound (bound to node other)" in text
    assert "tenants not configured here (ignored): gone.test" in text
    old = LicencePolicy((licence(items=(("PBX-Port", 1, 0),)),), "pbx1")
    assert "port licences NOT valid: port licences are version 0" in report(old, [a], {})


# --------------------------------------------------------------------------- loader

MAIN = "listen: [udp:127.0.0.1:5060]\nnode_name: pbx1\n"

TENANT = dedent("""\
    domain: a.test
    name: A Ltd
    extensions:
      - number: 101
        name: U101
        password: pw
      - number: 102
        name: U102
        password: pw
        voicemail: true
      - number: 103
        name: U103
        password: pw
        voicemail: true
      - number: 104
        name: U104
        password: pw
        voicemail: true
    """)


def config_dir(
    tmp: Path,
    key: Ed25519PrivateKey,
    licences: dict[str, str],
    main: str = MAIN,
    tenant_text: str = TENANT,
) -> Path:
    """A config with ``{name: licence text}`` under licences/ and ``key`` trusted."""
    (tmp / "tenants").mkdir(parents=True)
    (tmp / "licences").mkdir()
    (tmp / "centrala.yaml").write_text(main)
    (tmp / "tenants/a.yaml").write_text(tenant_text)
    (tmp / "licences/ca.pub").write_bytes(public_key_pem(key))
    for name, text in licences.items():
        (tmp / "licences" / name).write_text(text)
    return tmp


def issues_of(path: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    return caught.value.issues


def single(issues: list[ConfigIssue]) -> ConfigIssue:
    assert len(issues) == 1, format_issues(issues)
    return issues[0]


def vm(count: int, **kw: str) -> Licence:
    return licence(items=(("PBX-Port", 10, 1), ("PBX-VoicemailUser", count, 1)), **kw)


def test_demo_config_loads_with_its_demo_licence() -> None:
    config = load_config(REPO / "config", env={})
    ports = config.licences.ports(DEMO)
    assert (ports.count, ports.valid, ports.effective_version) == (10, True, 1)
    assert config.licences.valid(DEMO, LicenceType.VOICEMAIL_USER) == 5
    assert config.licences.problems(config.tenants) == []
    assert not (REPO / "config/licences/authority.key").exists()


def test_loader_attaches_licences(tmp_path: Path, authority: Ed25519PrivateKey) -> None:
    path = config_dir(tmp_path, authority, {"a.lic": sign(vm(3), authority)})
    config = load_config(path, env={})
    assert config.node_name == "pbx1" and not config.standby
    assert config.licences.licences == (vm(3),) and config.licences.node == "pbx1"
    assert config.licences.ports("a.test").count == 10


def test_user_over_count_is_refused_at_the_first_user_over(
    tmp_path: Path, authority: Ed25519PrivateKey
) -> None:
    path = config_dir(tmp_path, authority, {"a.lic": sign(vm(2), authority)})
    issue = single(issues_of(path))
    assert issue.file == path / "tenants/a.yaml"
    assert issue.message == (
        "tenant a.test: 3 user(s) enable voicemail but only 2 PBX-VoicemailUser "
        "licence(s): 102, 103, 104 (1 over)"
    )
    line = TENANT.splitlines()[issue.line - 1]
    assert line.strip() == "voicemail: true" and TENANT.splitlines()[issue.line - 4].endswith("104")


def test_no_licences_at_all_refuses_user_bound_features(tmp_path: Path) -> None:
    path = config_dir(tmp_path, Ed25519PrivateKey.generate(), {})
    assert "only 0 PBX-VoicemailUser licence(s)" in single(issues_of(path)).message


def test_licence_bound_to_another_node_does_not_count(
    tmp_path: Path, authority: Ed25519PrivateKey
) -> None:
    licences = {"a.lic": sign(vm(3, node="pbx2"), authority)}
    issue = single(issues_of(config_dir(tmp_path, authority, licences)))
    assert "only 0 PBX-VoicemailUser" in issue.message
    other = config_dir(tmp_path / "b", authority, licences, main=MAIN.replace("pbx1", "pbx2"))
    assert load_config(other, env={}).licences.ports("a.test").count == 10


def test_tampered_licence_file_is_refused_and_does_not_count(
    tmp_path: Path, authority: Ed25519PrivateKey
) -> None:
    text = sign(vm(3), authority).replace('"count": 10', '"count": 99')
    refused = single(issues_of(config_dir(tmp_path, authority, {"a.lic": text})))
    assert refused.file.name == "a.lic" and refused.column == 1
    assert "licence refused: not signed by a trusted licence authority" in refused.message
    assert text.splitlines()[refused.line - 1].startswith("signature:")


def test_foreign_licence_is_refused(tmp_path: Path, authority: Ed25519PrivateKey) -> None:
    foreign = sign(vm(3), Ed25519PrivateKey.generate())
    issue = single(issues_of(config_dir(tmp_path, authority, {"a.lic": foreign})))
    assert issue.file.name == "a.lic" and issue.line == 4
    assert "not signed by a trusted licence authority" in issue.message


def test_malformed_licence_and_key_files(tmp_path: Path, authority: Ed25519PrivateKey) -> None:
    path = config_dir(tmp_path, authority, {"a.lic": sign(vm(3), authority), "b.lic": "nope\n"})
    (path / "licences/bad.pub").write_text("-----BEGIN PUBLIC KEY-----\nxx\n")
    issues = sorted(issues_of(path), key=lambda i: i.file.name)
    assert [(i.file.name, i.line) for i in issues] == [("b.lic", 1), ("bad.pub", 0)]
    assert "not a licence file" in issues[0].message
    assert "licence authority key: not a PEM public key" in issues[1].message


def test_duplicate_serial_counts_once(tmp_path: Path, authority: Ed25519PrivateKey) -> None:
    text = sign(vm(3), authority)
    issue = single(issues_of(config_dir(tmp_path, authority, {"a.lic": text, "b.lic": text})))
    assert issue.file.name == "b.lic" and "already installed from a.lic" in issue.message


def test_mixed_voicemail_models_refused(tmp_path: Path, authority: Ed25519PrivateKey) -> None:
    old = licence(items=(("PBX-Port", 3, 1), ("PBX-Voicemail", 3, 1)), serial="old")
    new = licence(items=(("PBX-VoicemailUser", 3, 1),), serial="new")
    licences = {"a.lic": sign(old, authority), "b.lic": sign(new, authority)}
    issue = single(issues_of(config_dir(tmp_path, authority, licences)))
    assert issue.file.name == "b.lic" and "cannot be mixed" in issue.message


def test_standby_shortfall(tmp_path: Path, authority: Ed25519PrivateKey) -> None:
    main = MAIN + "# standby node\nstandby: true\n"
    path = config_dir(tmp_path, authority, {"a.lic": sign(vm(3), authority)}, main=main)
    issue = single(issues_of(path))
    assert (issue.file.name, issue.line) == ("centrala.yaml", 4)
    assert "has 10 PBX-Port and only 0 PBX-Standby licence(s) on node pbx1" in issue.message
    enough = licence(items=(("PBX-Standby", 10, 1),), serial="sb")
    licences = {"a.lic": sign(vm(3), authority), "sb.lic": sign(enough, authority)}
    assert load_config(config_dir(tmp_path / "ok", authority, licences, main=main), {}).standby


def test_licence_for_unknown_tenant_is_a_warning(
    tmp_path: Path, authority: Ed25519PrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    licences = {"a.lic": sign(vm(3), authority)}
    licences["z.lic"] = sign(licence("z.test", serial="z"), authority)
    with caplog.at_level(logging.WARNING, logger="dialplan.loader"):
        config = load_config(config_dir(tmp_path, authority, licences), env={})
    assert "licence z is for tenant z.test, which is not configured" in caplog.text
    assert config.licences.tenants() == ("a.test", "z.test")


def test_licence_issues_wait_for_a_valid_config(
    tmp_path: Path, authority: Ed25519PrivateKey
) -> None:
    path = config_dir(tmp_path, authority, {}, main=MAIN + "bogus: 1\n")
    issue = single(issues_of(path))  # the unknown key, not the (unchecked) licences
    assert "unknown key 'bogus'" in issue.message


def test_a_key_id_made_only_of_digits_survives_yaml() -> None:
    """Key ids are hex: one may be all digits (or look like 1e5...), which YAML
    would read as a number if it were not quoted."""
    from switch.licence.document import generate_key, sign, trusted_keys, verify

    for _ in range(64):  # enough keys to meet ids of every shape, cheaply
        key = generate_key()
        text = sign(licence(), key)
        assert verify(text, trusted_keys([key.public_key()])) == licence()


def test_a_tenant_recording_every_call_needs_a_recording_licence_per_user() -> None:
    users = [user("1"), user("2", recording=True), user("3")]
    three = LicencePolicy((licence(items=(("PBX-Recording", 3, 1),)),), "n")
    assert three.problems([tenant("a.test", *users, recording=True)]) == []
    [problem] = LicencePolicy((licence(items=(("PBX-Recording", 2, 1),)),), "n").problems(
        [tenant("a.test", *users, recording=True)])
    assert problem.message == (
        "tenant a.test: has recording on for all 3 user(s) but only 2 PBX-Recording "
        "licence(s): 1, 2, 3 (1 over)")
    assert (problem.flag, problem.first_over) == ("recording", "3")
    one = LicencePolicy((licence(items=(("PBX-Recording", 1, 1),)),), "n")
    assert one.problems([tenant("a.test", *users)]) == []  # only user 2 records


def test_tenant_recording_over_the_licences_is_refused_at_the_tenants_key(
    tmp_path: Path, authority: Ed25519PrivateKey
) -> None:
    text = TENANT.replace("extensions:", "recording: true\nextensions:")
    licences = {"a.lic": sign(licence(items=(("PBX-Port", 10, 1), ("PBX-VoicemailUser", 3, 1),
                                             ("PBX-Recording", 3, 1))), authority)}
    issue = single(issues_of(config_dir(tmp_path, authority, licences, tenant_text=text)))
    assert "has recording on for all 4 user(s) but only 3 PBX-Recording" in issue.message
    assert text.splitlines()[issue.line - 1] == "recording: true"


def test_recording_needs_anchored_media(tmp_path: Path, authority: Ed25519PrivateKey) -> None:
    text = TENANT.replace("    voicemail: true\n", "    voicemail: true\n    recording: true\n", 1)
    licences = {"a.lic": sign(licence(items=(("PBX-Port", 10, 1), ("PBX-VoicemailUser", 3, 1),
                                             ("PBX-Recording", 1, 1))), authority)}
    assert load_config(config_dir(tmp_path / "ok", authority, licences, tenant_text=text), env={})
    path = config_dir(tmp_path / "no", authority, licences, tenant_text=text,
                      main=MAIN + "media: {anchor: false}\n")
    issue = single(issues_of(path))
    assert issue.message == (
        "extensions[1].recording: needs media.anchor: true (the RTP must cross the switch)")
    assert issue.file == path / "tenants/a.yaml"
    assert text.splitlines()[issue.line - 1].strip() == "recording: true"
