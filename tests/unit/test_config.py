"""Configuration: schema, loader (file:line issues) and change fingerprint."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from dialplan.loader import ConfigError, ConfigIssue, format_issues, load_config
from dialplan.schema import Config, ListenAddress
from dialplan.watch import ConfigFingerprint

REPO = Path(__file__).resolve().parents[2]

MAIN = dedent("""\
    listen:
      - udp:127.0.0.1:5060
      - tcp:[::1]:5060
    limits:
      max_headers: 50
    """)

TENANT = dedent("""\
    domain: a.test
    name: A Ltd
    extensions:
      - number: 100
        name: Alice
        password: pw100
      - number: 101
        name: Bob
        password: pw101
    groups:
      - number: 600
        name: Sales
        members:
          - 100
          - 101
    trunks:
      - name: carrier
        host: sip.example.com
        allowed_ips: [192.0.2.1, 198.51.100.0/24]
    """)


def write(config_dir: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` under ``config_dir``; returns ``config_dir``."""
    for rel, text in files.items():
        path = config_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return config_dir


def issues_of(config_dir: Path, env: dict[str, str] | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as caught:
        load_config(config_dir, env={} if env is None else env)
    return caught.value.issues


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the ``nth`` line of ``text`` containing ``needle``."""
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return lines[nth - 1]


def col_of(text: str, needle: str) -> int:
    """1-based column of ``needle`` on its line."""
    return text.splitlines()[line_of(text, needle) - 1].index(needle) + 1


def single(issues: list[ConfigIssue]) -> ConfigIssue:
    assert len(issues) == 1, format_issues(issues)
    return issues[0]


# --------------------------------------------------------------------------- loading


def test_demo_config_loads() -> None:
    config = load_config(REPO / "config", env={"CENTRALA_DEMO_PW": "from-env"})
    assert [str(a) for a in config.listen] == [
        "udp:127.0.0.1:5060",
        "tcp:127.0.0.1:5060",
        "tls:127.0.0.1:5061",
    ]
    demo = config.tenant_by_domain("demo.centrala.test")
    assert demo is not None and demo.name == "Demo Ltd"
    assert [e.number for e in demo.extensions] == ["100", "101", "102", "103", "104"]
    assert demo.extensions[3].password.get_secret_value() == "from-env"
    assert demo.groups[0].strategy == "sequential"
    assert demo.groups[0].members == ["100", "101", "102"]
    trunk = demo.trunks[0]
    assert (trunk.host, trunk.port, trunk.register) == ("127.0.0.2", 5080, False)
    assert trunk.allowed_ips == [ipaddress.ip_network("127.0.0.2/32")]
    assert config.state_dir == REPO / "var"


def test_demo_env_default_used_when_unset() -> None:
    demo = load_config(REPO / "config", env={}).tenants[0]
    assert demo.extensions[3].password.get_secret_value() == "demo-pass-103"


def test_defaults_and_lookups(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": TENANT}), {})
    assert (config.timers.t1_ms, config.timers.t2_ms, config.timers.t4_ms) == (500, 4000, 5000)
    assert config.limits.max_headers == 50 and config.limits.max_message_bytes == 65536
    assert config.tls.cert is None and config.log_level == "INFO"
    assert config.user_agent == config.server_name == "Centrala"
    assert config.state_dir == tmp_path.resolve().parent / "var"
    tenant = config.tenant_by_domain("A.TEST")
    assert tenant is not None and config.tenant_by_domain("b.test") is None
    alice = tenant.extensions[0]
    assert (alice.username, alice.max_contacts, alice.ring_time_s) == ("100", 5, 20)
    assert alice.call_waiting and not alice.voicemail
    assert "pw100" not in repr(alice)


def test_no_tenants_directory_is_fine(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, {"centrala.yaml": MAIN}), {}).tenants == []


def test_relative_paths_resolve_against_config_dir(tmp_path: Path) -> None:
    main = MAIN + "state_dir: state\ntls:\n  cert: tls/c.pem\n  key: /etc/k.pem\n"
    config = load_config(write(tmp_path / "conf", {"centrala.yaml": main}), {})
    conf = (tmp_path / "conf").resolve()
    assert config.state_dir == conf / "state"
    assert config.tls.cert == conf / "tls/c.pem" and config.tls.key == Path("/etc/k.pem")


def test_env_substitution(tmp_path: Path) -> None:
    tenant = TENANT.replace("pw100", "${PW:-fallback}").replace("pw101", "a$${PW}-${USER_PW}")
    config = load_config(
        write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant}), env={"USER_PW": "s3"}
    )
    alice, bob = config.tenants[0].extensions
    assert alice.password.get_secret_value() == "fallback"
    assert bob.password.get_secret_value() == "a${PW}-s3"
    config = load_config(tmp_path, env={"PW": "given", "USER_PW": ""})
    assert config.tenants[0].extensions[0].password.get_secret_value() == "given"


# --------------------------------------------------------------------------- issues


def test_unknown_key_points_at_the_key(tmp_path: Path) -> None:
    main = MAIN + "timers:\n  t1_ms: 500\n  t3_ms: 9\n"
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": main})))
    assert (issue.file, issue.line, issue.column) == (
        tmp_path / "centrala.yaml",
        line_of(main, "t3_ms"),
        3,
    )
    assert "timers: unknown key 't3_ms'" in issue.message


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    tenant = TENANT.replace("    password: pw101", "    pasword: pw101")
    issues = issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant}))
    unknown = next(i for i in issues if "unknown key" in i.message)
    assert unknown.line == line_of(tenant, "pasword")
    assert unknown.message == "extensions[1]: unknown key 'pasword' (did you mean 'password'?)"


def test_wrong_type(tmp_path: Path) -> None:
    tenant = TENANT.replace("host: sip.example.com", "host: sip.example.com\n    port: abc")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert issue.file == tmp_path / "tenants" / "a.yaml"
    assert (issue.line, issue.column) == (line_of(tenant, "port: abc"), col_of(tenant, "abc"))
    assert issue.message.startswith("trunks[0].port: Input should be a valid integer")


def test_missing_field_points_at_the_item(tmp_path: Path) -> None:
    tenant = TENANT.replace("    name: Bob\n", "")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert issue.line == line_of(tenant, "number: 101")
    assert issue.column == col_of(tenant, "number: 101")
    assert issue.message == "extensions[1].name: required setting missing"


def test_credentials_password_or_ha1(tmp_path: Path) -> None:
    tenant = TENANT.replace("    password: pw101\n", "")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert issue.line == line_of(tenant, "number: 101")
    assert "give a password, or ha1_md5 and/or ha1_sha256" in issue.message
    ha1 = "    ha1_md5: " + "a" * 32 + "\n    ha1_sha256: " + "B" * 64 + "\n"
    config = load_config(write(tmp_path / "ok", {"centrala.yaml": MAIN,
                                                  "tenants/a.yaml": tenant.replace(
                                                      "    name: Bob\n", "    name: Bob\n" + ha1)}))
    ext = config.tenants[0].extensions[1]
    assert ext.password is None and ext.ha1_sha256 == "b" * 64
    md5_only = tenant.replace("    name: Bob\n", "    name: Bob\n    ha1_md5: " + "a" * 32 + "\n")
    issue = single(issues_of(write(tmp_path / "md5", {"centrala.yaml": MAIN,
                                                       "tenants/a.yaml": md5_only})))
    assert issue.line == line_of(tenant, "number: 101") and "ha1_sha256 missing" in issue.message
    short = tenant.replace("    name: Bob\n", "    name: Bob\n    ha1_md5: abc\n")
    issue = single(issues_of(write(tmp_path / "bad", {"centrala.yaml": MAIN, "tenants/a.yaml": short})))
    assert "ha1_md5 must be 32 hex digits" in issue.message


def test_missing_top_level_field(tmp_path: Path) -> None:
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": "log_level: debug\n"})))
    assert (issue.line, issue.message) == (1, "listen: required setting missing")


def test_dangling_group_member(tmp_path: Path) -> None:
    tenant = TENANT.replace("      - 101\n", "      - 101\n      - 105\n")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert issue.file == tmp_path / "tenants" / "a.yaml"
    assert (issue.line, issue.column) == (line_of(tenant, "- 105"), col_of(tenant, "105"))
    assert issue.message == (
        "groups[0].members[2]: dangling reference: no extension '105' in this tenant"
    )


def test_duplicate_number_across_extensions_and_groups(tmp_path: Path) -> None:
    tenant = TENANT.replace("number: 600", "number: 101")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert issue.line == line_of(tenant, "number: 101", nth=2)
    assert issue.message == (
        "groups[0].number: duplicate number '101' (first used at extensions[1].number)"
    )


def test_duplicate_tenant_domain(tmp_path: Path) -> None:
    other = "# second tenant\nname: B Ltd\ndomain: A.test\n"
    files = {"centrala.yaml": MAIN, "tenants/a.yaml": TENANT, "tenants/b.yaml": other}
    issue = single(issues_of(write(tmp_path, files)))
    assert (issue.file, issue.line) == (tmp_path / "tenants" / "b.yaml", 3)
    assert issue.message == "domain: duplicate tenant domain 'a.test' (also used by tenant 'A Ltd')"


def test_duplicate_trunk_name_and_username(tmp_path: Path) -> None:
    tenant = TENANT.replace("    password: pw101", "    username: '100'\n    password: pw101")
    tenant += "  - name: carrier\n    host: 192.0.2.9\n"
    issues = issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant}))
    assert [(i.line, i.message.split(":")[0]) for i in issues] == [
        (line_of(tenant, "username: '100'"), "extensions[1].username"),
        (line_of(tenant, "name: carrier", nth=2), "trunks[1].name"),
    ]


def test_bad_listen_string(tmp_path: Path) -> None:
    main = MAIN.replace("tcp:[::1]:5060", "tcp:::1:5060")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": main})))
    assert (issue.line, issue.column) == (3, 5)
    assert issue.message.startswith("listen[1]: 'tcp:::1:5060': expected proto:host:port")


def test_bad_allowed_ip(tmp_path: Path) -> None:
    tenant = TENANT.replace("198.51.100.0/24", "198.51.100.7/24")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert issue.line == line_of(tenant, "allowed_ips")
    assert issue.column == col_of(tenant, "198.51.100.7/24")
    assert "trunks[0].allowed_ips[1]: '198.51.100.7/24' is not" in issue.message


def test_yaml_syntax_error(tmp_path: Path) -> None:
    tenant = TENANT.replace("name: Bob", "name: [Bob")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert issue.file == tmp_path / "tenants" / "a.yaml"
    assert issue.line == line_of(tenant, "password: pw101")
    assert issue.message.startswith("YAML syntax error: ")


def test_duplicate_key_does_not_echo_values(tmp_path: Path) -> None:
    tenant = TENANT.replace("password: pw100", "password: pw100\n    password: secret-2")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert (issue.line, issue.message) == (line_of(tenant, "secret-2"), "duplicate key 'password'")
    assert "secret" not in str(issue) and "pw100" not in str(issue)


def test_secrets_not_in_type_errors(tmp_path: Path) -> None:
    tenant = TENANT.replace("password: pw100", "password: [hunter2]")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert issue.message.startswith("extensions[0].password: ")
    assert "hunter2" not in str(issue)


def test_missing_env_var(tmp_path: Path) -> None:
    tenant = TENANT.replace("pw101", "${BOB_PW}")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert (issue.line, issue.column) == (line_of(tenant, "BOB_PW"), col_of(tenant, "${BOB_PW}"))
    assert issue.message == "extensions[1].password: environment variable BOB_PW is not set"


def test_malformed_env_reference(tmp_path: Path) -> None:
    tenant = TENANT.replace("pw101", "${BOB PW}")
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": tenant})))
    assert "malformed variable reference '${BOB PW}'" in issue.message


def test_missing_main_file(tmp_path: Path) -> None:
    issue = single(issues_of(write(tmp_path, {"tenants/a.yaml": TENANT})))
    assert str(issue) == f"{tmp_path / 'centrala.yaml'}: file not found"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    issue = single(issues_of(write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": "- 1\n"})))
    assert (issue.line, issue.column) == (1, 1) and "mapping" in issue.message


def test_every_error_in_every_file_is_reported(tmp_path: Path) -> None:
    main = MAIN + "colour: blue\nshutdown_grace_s: soon\n"
    a = TENANT.replace("  - number: 101", "  - number: x101").replace("- 101", "- 999")
    b = TENANT.replace("a.test", "b.test").replace("      - 101\n", "      - 105\n")
    c = "domain: c.test\nname: C\nextensions:\n  - {number: 1, name: [x}\n"
    d = TENANT.replace("a.test", "d.test").replace("pw100", "${NOPE}")
    files = {
        "centrala.yaml": main,
        "tenants/a.yaml": a,
        "tenants/b.yaml": b,
        "tenants/c.yml": c,
        "tenants/d.yaml": d,
        "tenants/.e.yaml": "garbage: [",
    }
    issues = issues_of(write(tmp_path, files))
    where = [(i.file.relative_to(tmp_path).as_posix(), i.line) for i in issues]
    assert sorted(where) == [
        ("centrala.yaml", line_of(main, "colour")),
        ("centrala.yaml", line_of(main, "shutdown_grace_s")),
        ("tenants/a.yaml", line_of(a, "x101")),
        ("tenants/b.yaml", line_of(b, "- 105")),
        ("tenants/c.yml", 4),
        ("tenants/d.yaml", line_of(d, "NOPE")),
    ], format_issues(issues)


def test_issue_format(tmp_path: Path) -> None:
    issue = ConfigIssue(
        Path("config/tenants/demo.yaml"), 12, 7, "extensions[2].password: required setting missing"
    )
    assert str(issue) == (
        "config/tenants/demo.yaml:12:7: extensions[2].password: required setting missing"
    )
    later = ConfigIssue(Path("config/centrala.yaml"), 3, 1, "x")
    assert format_issues([issue, later]).splitlines() == [str(later), str(issue)]
    assert str(ConfigError([issue, later])) == format_issues([issue, later])


def test_config_model_checks_references_itself() -> None:
    tenant = {
        "domain": "a.test",
        "name": "A",
        "groups": [{"number": 600, "name": "G", "members": [100]}],
    }
    with pytest.raises(ValidationError, match="dangling reference"):
        Config.model_validate({"listen": ["udp:127.0.0.1"], "tenants": [tenant]})


# --------------------------------------------------------------------------- ListenAddress


@pytest.mark.parametrize(
    ("text", "proto", "host", "port", "canonical"),
    [
        ("udp:127.0.0.1:5060", "udp", "127.0.0.1", 5060, "udp:127.0.0.1:5060"),
        ("tcp:[::1]:5060", "tcp", "::1", 5060, "tcp:[::1]:5060"),
        ("tls:[2001:DB8::1]", "tls", "2001:db8::1", 5061, "tls:[2001:db8::1]:5061"),
        ("UDP:Sip.Example.com", "udp", "sip.example.com", 5060, "udp:sip.example.com:5060"),
    ],
)
def test_listen_address_parse(text: str, proto: str, host: str, port: int, canonical: str) -> None:
    address = ListenAddress.parse(text)
    assert (address.proto, address.host, address.port) == (proto, host, port)
    assert str(address) == canonical and ListenAddress.parse(canonical) == address


@pytest.mark.parametrize(
    "text",
    [
        "udp",
        "udp:",
        "sctp:127.0.0.1:5060",
        "udp:127.0.0.1:0",
        "udp:127.0.0.1:70000",
        "udp:::1:5060",
        "udp:[localhost]:5060",
        "udp:bad_host!:5060",
        "udp:127.0.0.1:x",
    ],
)
def test_listen_address_rejects(text: str) -> None:
    with pytest.raises(ValidationError):
        ListenAddress.parse(text)


@given(
    st.sampled_from(["udp", "tcp", "tls"]),
    st.ip_addresses(),
    st.integers(min_value=1, max_value=65535),
)
def test_listen_address_round_trip(
    proto: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int
) -> None:
    address = ListenAddress(proto=proto, host=str(ip), port=port)  # type: ignore[arg-type]
    assert ListenAddress.parse(str(address)) == address


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_tracks_changes(tmp_path: Path) -> None:
    write(tmp_path, {"centrala.yaml": MAIN, "tenants/a.yaml": TENANT})
    first = ConfigFingerprint.of(tmp_path)
    assert first == ConfigFingerprint.of(tmp_path)
    assert [name for name, _, _ in first.files] == ["centrala.yaml", "tenants/a.yaml"]

    stat = (tmp_path / "tenants/a.yaml").stat()
    os.utime(tmp_path / "tenants/a.yaml", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    touched = ConfigFingerprint.of(tmp_path)
    assert touched != first

    write(tmp_path, {"tenants/b.yaml": TENANT, "licence.key": "x"})
    added = ConfigFingerprint.of(tmp_path)
    assert added != touched and len(added.files) == 4


def test_fingerprint_ignores_dotfiles_and_missing_dir(tmp_path: Path) -> None:
    write(tmp_path, {"centrala.yaml": MAIN})
    before = ConfigFingerprint.of(tmp_path)
    write(tmp_path, {".centrala.yaml.swp": "x", ".git/HEAD": "ref", "tenants/.a.yaml~": "x"})
    assert ConfigFingerprint.of(tmp_path) == before
    assert ConfigFingerprint.of(tmp_path / "absent").files == ()
