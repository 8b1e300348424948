"""Calls through the real switch: SIPp phones and a SIPp carrier on loopback.

Phones register from a UDP port with digest, then a SIPp server scenario on
that port answers (``calls_support.register`` / ``Background.uas``); callers
are SIPp clients that answer the 407 with MD5.  Trunks are SIPp runs on
127.0.0.2, the demo trunks' address (calls from it are the carrier's), on
free ports written into the config copy so parallel runs cannot collide.
Each test checks what the peers saw and the CDR the switch wrote; outbound,
inbound and refused calls are also compared with ``centrala route`` on the
same configuration (what the simulator says is what the call did).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.calls_support import (
    TRUNK_IP,
    Background,
    Phone,
    RouteAnswer,
    Silent,
    call_config,
    cancels,
    cdrs,
    dial,
    dial_in_background,
    edit_tenant,
    extension,
    header,
    invites,
    move_trunks_to_free_ports,
    register,
    reports,
    request_user,
    responses,
    route,
    trunk,
    trunk_call,
)
from tests.e2e.conftest import Centrala
from tests.e2e.registrar_support import cli

StartCentrala = Callable[..., Centrala]
ConfigCopy = Callable[..., Path]


def _switch(start_centrala: StartCentrala, config_copy: ConfigCopy,
            edit: Callable[[dict[str, Any]], None] | None = None) -> Centrala:
    config = call_config(config_copy)
    if edit is not None:
        edit_tenant(config, edit)
    return start_centrala(config)


# --------------------------------------------------------------------------- 1. basic call


def test_extension_calls_extension_caller_hangs_up(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = _switch(start_centrala, config_copy)
    phone = register(c, "101")
    uas = Background.uas(phone, "call_uas_answer.xml", tmp_path / "uas")
    caller = dial(c, "100", "101", tmp_path / "uac")
    callee = uas.result()
    assert caller.returncode == 0 and callee.returncode == 0, reports(caller, callee)
    assert len(invites(callee)) == 1
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["caller"], cdr["callee"], cdr["dialed"]) == (
        "answered", "100", "101", "101"), cdr
    assert (cdr["hangup_side"], cdr["hangup_cause"], cdr["direction"]) == (
        "caller", 200, "internal"), cdr
    assert cdr["answer"] is not None and cdr["start"] <= cdr["answer"] <= cdr["end"], cdr
    assert cdr["billed_s"] >= 0, cdr


def test_extension_calls_extension_callee_hangs_up(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = _switch(start_centrala, config_copy)
    phone = register(c, "101")
    uas = Background.uas(phone, "call_uas_answer_bye.xml", tmp_path / "uas", pause_ms=300)
    caller = dial(c, "100", "101", tmp_path / "uac", scenario="call_uac_wait_bye.xml")
    callee = uas.result()
    assert caller.returncode == 0 and callee.returncode == 0, reports(caller, callee)
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["caller"], cdr["callee"]) == ("answered", "100", "101"), cdr
    assert (cdr["hangup_side"], cdr["hangup_cause"]) == ("callee", 200), cdr
    assert cdr["billed_s"] >= 0, cdr


# --------------------------------------------------------------------------- 2. forking


def test_two_devices_one_answers_other_cancelled_completed_elsewhere(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = _switch(start_centrala, config_copy)
    answering, losing = register(c, "101"), register(c, "101")
    # the losing fork checks the CANCEL's Reason itself (check_it in the scenario)
    loser = Background.uas(losing, "call_uas_ring_elsewhere.xml", tmp_path / "loser")
    winner = Background.uas(answering, "call_uas_answer.xml", tmp_path / "winner")
    caller = dial(c, "100", "101", tmp_path / "uac")
    won, lost = winner.result(), loser.result()
    assert caller.returncode == 0 and won.returncode == 0 and lost.returncode == 0, reports(
        caller, won, lost)
    assert len(invites(won)) == 1 and len(invites(lost)) == 1
    (cancel,) = cancels(lost)
    assert header(cancel, "Reason") == 'SIP;cause=200;text="Call completed elsewhere"', cancel
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["callee"], cdr["hangup_side"]) == (
        "answered", "101", "caller"), cdr


# --------------------------------------------------------------------------- 3. caller cancels


def test_caller_cancels_while_ringing(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = _switch(start_centrala, config_copy)
    phone = register(c, "101")
    uas = Background.uas(phone, "call_uas_ring.xml", tmp_path / "uas")
    caller = dial(c, "100", "101", tmp_path / "uac", scenario="call_uac_cancel.xml",
                  pause_ms=300)
    callee = uas.result()
    assert caller.returncode == 0 and callee.returncode == 0, reports(caller, callee)
    assert 200 in responses(caller) and responses(caller)[-1] == 487, responses(caller)
    (cancel,) = cancels(callee)
    assert "completed elsewhere" not in cancel, cancel  # the caller gave up: no Reason 200
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["hangup_cause"], cdr["answer"], cdr["billed_s"]) == (
        "cancelled", 487, None, 0), cdr
    assert cdr["hangup_side"] == "caller", f"the caller cancelled, the CDR says {cdr}"


# --------------------------------------------------------------------------- 4. busy


def test_callee_busy(start_centrala: StartCentrala, config_copy: ConfigCopy,
                     tmp_path: Path) -> None:
    # 102 has no busy forward (101 forwards busy calls to group 600)
    c = _switch(start_centrala, config_copy)
    phone = register(c, "102")
    uas = Background.uas(phone, "call_uas_reject.xml", tmp_path / "uas", status=486)
    caller = dial(c, "100", "102", tmp_path / "uac", scenario="call_uac_reject.xml",
                  status=486)
    callee = uas.result()
    assert caller.returncode == 0 and callee.returncode == 0, reports(caller, callee)
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["hangup_cause"], cdr["answer"]) == ("busy", 486, None), cdr


# --------------------------------------------------------------------------- 5. call waiting


def test_call_waiting_off_second_caller_gets_busy(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = _switch(start_centrala, config_copy)
    phone = register(c, "103")  # call_waiting: false
    uas = Background.uas(phone, "call_uas_answer.xml", tmp_path / "uas", calls=1)
    first = dial_in_background(c, "100", "103", tmp_path / "first", pause_ms=2500)
    assert uas.wait_received(r"^ACK "), f"first call not answered\n{first.result().report()}"
    second = dial(c, "102", "103", tmp_path / "second", scenario="call_uac_reject.xml",
                  status=486, timeout_s=4)
    first_res, callee = first.result(), uas.result()
    assert second.returncode == 0, (
        "103 (call waiting off) is in a call: a second caller must get 486 at once\n"
        + reports(second))
    assert 180 not in responses(second), "the second call rang"
    assert first_res.returncode == 0 and callee.returncode == 0, reports(first_res, callee)
    assert len(invites(callee)) == 1, "103's phone was offered a second call"
    answered, busy = sorted(cdrs(c, 2), key=lambda r: r["caller"])
    assert (answered["caller"], answered["disposition"]) == ("100", "answered"), answered
    assert (busy["caller"], busy["disposition"], busy["hangup_cause"]) == (
        "102", "busy", 486), busy


def test_call_waiting_on_second_call_rings(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = _switch(start_centrala, config_copy)
    phone = register(c, "101")  # call waiting on (the default)
    uas = Background.uas(phone, "call_uas_answer.xml", tmp_path / "uas", calls=2)
    first = dial_in_background(c, "100", "101", tmp_path / "first", pause_ms=2000)
    assert uas.wait_received(r"^ACK "), f"first call not answered\n{first.result().report()}"
    second = dial(c, "102", "101", tmp_path / "second", pause_ms=200)
    first_res, callee = first.result(), uas.result()
    assert first_res.returncode == 0 and second.returncode == 0 and callee.returncode == 0, (
        reports(first_res, second, callee))
    assert len(invites(callee)) == 2, "the second call did not reach 101's phone"
    one, two = sorted(cdrs(c, 2), key=lambda r: r["answer"] or 0)
    assert one["disposition"] == two["disposition"] == "answered", (one, two)
    assert two["answer"] < one["end"], f"the calls did not overlap: {one} {two}"


# --------------------------------------------------------------------------- 6. forwarding

# RFC 5806 §4 diversion-reason of each forward
DIVERSION_REASON = {"busy": "user-busy", "no_answer": "no-answer", "unavailable": "unavailable",
                    "unconditional": "unconditional"}


def _forwards(**by_number: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A tenant edit: replace the forward settings of extensions, given as
    ``x102={...}`` (a keyword cannot start with a digit)."""
    def edit(data: dict[str, Any]) -> None:
        for number, forward in by_number.items():
            extension(data, number.removeprefix("x"))["forward"] = forward
    return edit


def _forwarded_call(reason: str, start_centrala: StartCentrala, config_copy: ConfigCopy,
                    tmp_path: Path) -> str:
    """100 calls 102, which forwards to 101 for ``reason``; 101 answers. Checks where
    the call went; returns the INVITE 101 received."""
    forward: dict[str, Any] = {reason: {"to": "extension:101"}}
    if reason == "no_answer":
        forward["no_answer_after_s"] = 1
    c = _switch(start_centrala, config_copy, _forwards(x102=forward))
    target = Background.uas(register(c, "101"), "call_uas_answer.xml", tmp_path / "target")
    forwarder: Background | Silent | None = None
    if reason == "busy":
        forwarder = Background.uas(register(c, "102"), "call_uas_reject.xml", tmp_path / "102",
                                   status=486)
    elif reason == "no_answer":
        forwarder = Background.uas(register(c, "102"), "call_uas_ring.xml", tmp_path / "102")
    elif reason == "unconditional":
        forwarder = Silent(register(c, "102"))  # registered, must not even ring
    # unavailable: 102 is not registered
    caller = dial(c, "100", "102", tmp_path / "uac")
    answered = target.result()
    assert caller.returncode == 0 and answered.returncode == 0, reports(caller, answered)
    (invite,) = invites(answered)
    if isinstance(forwarder, Background):
        first = forwarder.result()
        assert first.returncode == 0, reports(first)
        assert len(invites(first)) == 1, f"102 should have been tried first ({reason})"
    elif isinstance(forwarder, Silent):
        got = forwarder.received()
        forwarder.close()
        assert not got, f"unconditional forward: 102's phone still got {got[0][:200]}"
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["dialed"], cdr["callee"]) == ("answered", "102", "101"), cdr
    return invite


@pytest.mark.parametrize("reason", ["busy", "no_answer", "unavailable", "unconditional"])
def test_forward_lands_on_target(
    reason: str, start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    _forwarded_call(reason, start_centrala, config_copy, tmp_path)


@pytest.mark.parametrize("reason", ["busy", "unconditional"])
def test_forward_target_told_who_forwarded_and_why(
    reason: str, start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    """RFC 5806: the target's INVITE names the forwarding extension and the reason."""
    invite = _forwarded_call(reason, start_centrala, config_copy, tmp_path)
    diversion = header(invite, "Diversion")
    assert diversion is not None and "sip:102@" in diversion, (
        f"the forward target is not told who forwarded ({reason}):\n{invite}")
    assert f"reason={DIVERSION_REASON[reason]}" in diversion, (
        f"{reason} forward announced as {diversion!r} (RFC 5806 §4)")


@pytest.mark.parametrize("fallback", ["voicemail", "hangup"])
def test_forward_return_after_target_does_not_answer(
    fallback: str, start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    """104 rings 1 s, forwards to 101, which rings 1 s (return_after_s): the caller gets
    the fallback: 480 either way (voicemail is not there yet, hangup is 480)."""
    forward = {"no_answer": {"to": "extension:101"}, "no_answer_after_s": 1,
               "return_after_s": 1, "fallback": fallback}
    c = _switch(start_centrala, config_copy, _forwards(x104=forward))
    first = Background.uas(register(c, "104"), "call_uas_ring.xml", tmp_path / "104")
    target = Background.uas(register(c, "101"), "call_uas_ring.xml", tmp_path / "101")
    caller = dial(c, "100", "104", tmp_path / "uac", scenario="call_uac_reject.xml", status=480)
    rang, returned = first.result(), target.result()
    assert caller.returncode == 0, reports(caller)
    assert rang.returncode == 0 and returned.returncode == 0, reports(rang, returned)
    assert len(invites(rang)) == 1 and len(invites(returned)) == 1
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["hangup_cause"], cdr["answer"]) == ("no_answer", 480, None), cdr


def test_forwarding_loop_refused_with_482(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    config = call_config(config_copy)
    edit_tenant(config, _forwards(x101={"unconditional": {"to": "extension:102"}},
                                  x102={"unconditional": {"to": "extension:101"}}))
    checked = cli("check", "-c", str(config), check=False)
    assert checked.returncode == 0, (
        f"a forwarding loop is refused when routing, not by check:\n{checked.stdout}"
        f"{checked.stderr}")
    c = start_centrala(config)
    silent = [Silent(register(c, n)) for n in ("101", "102")]
    caller = dial(c, "100", "101", tmp_path / "uac", scenario="call_uac_reject.xml", status=482)
    got = [m for s in silent for m in s.received()]
    for s in silent:
        s.close()
    assert caller.returncode == 0, reports(caller)
    assert not got, f"a phone in the loop rang: {got[0][:200]}"
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["hangup_cause"]) == ("refused", 482), cdr
    simulated = route(config, "100", "101")
    assert simulated.refused_status == 482, simulated.text


# --------------------------------------------------------------------------- 7. outbound

NATIONAL = "0221234567"  # route 'national': strip 1, prepend +48


def _trunk_switch(
    start_centrala: StartCentrala, config_copy: ConfigCopy,
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Centrala, dict[str, int]]:
    """The demo switch with its trunks moved to free ports on 127.0.0.2."""
    ports: dict[str, int] = {}

    def moved(data: dict[str, Any]) -> None:
        ports.update(move_trunks_to_free_ports(data))
        if edit is not None:
            edit(data)

    return _switch(start_centrala, config_copy, moved), ports


def _trunk_uas(ports: dict[str, int], name: str, workdir: Path) -> Background:
    return Background.uas(Phone("trunk", TRUNK_IP, ports[name]), "call_uas_answer.xml", workdir)


def _outbound_call(
    c: Centrala, ports: dict[str, int], caller: str, trunk_name: str, tmp_path: Path
) -> tuple[str, dict[str, Any]]:
    """``caller`` dials NATIONAL; the SIPp trunk ``trunk_name`` answers. Its INVITE, the CDR."""
    carrier = _trunk_uas(ports, trunk_name, tmp_path / "trunk")
    call = dial(c, caller, NATIONAL, tmp_path / "uac")
    took = carrier.result()
    assert call.returncode == 0 and took.returncode == 0, reports(call, took)
    (invite,) = invites(took)
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["direction"], cdr["trunk"], cdr["caller"], cdr["dialed"]) == (
        "answered", "outbound", trunk_name, caller, NATIONAL), cdr
    return invite, cdr


def _route_line(simulated: RouteAnswer, trunk_name: str) -> str:
    """The caller ID line ``centrala route`` prints for a trunk of the route."""
    text = simulated.text
    n = [name for name, _ in simulated.trunks].index(trunk_name) + 1
    block = text[text.index("caller ID:"):]
    m = re.search(rf"^\s*(?:caller ID:)?\s+{n}\.\s+(.*)$", block, re.MULTILINE)
    assert m, f"no caller ID line {n} in:\n{text}"
    return m.group(1)


def test_outbound_national_number_to_trusted_trunk(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c, ports = _trunk_switch(start_centrala, config_copy)
    invite, cdr = _outbound_call(c, ports, "100", "placeholder", tmp_path)
    assert request_user(invite) == "+48221234567", invite  # e164 number_format
    assert f"@{TRUNK_IP}:{ports['placeholder']}" in invite.splitlines()[0], invite
    assert "sip:+48221234560@" in (header(invite, "From") or ""), invite  # tenant's caller ID
    assert header(invite, "Privacy") is None, invite
    assert header(invite, "P-Asserted-Identity") is not None, invite  # trusted trunk
    assert cdr["cost"] is not None and cdr["billed_s"] >= 0, cdr
    # 10. the simulator said the same
    simulated = route(c.config_dir, "100", NATIONAL)
    assert simulated.exit_code == 0 and simulated.trunks[0] == (
        "placeholder", request_user(invite)), simulated.text
    assert "P-Asserted-Identity" in _route_line(simulated, "placeholder"), simulated.text


def _no_pin(data: dict[str, Any]) -> None:
    """103 without its PIN: the caller-ID tests must not depend on how PINs are asked."""
    extension(data, "103").pop("pin")


def test_outbound_restricted_caller_id_trusted_trunk_gets_pai(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c, ports = _trunk_switch(start_centrala, config_copy, _no_pin)
    invite, _ = _outbound_call(c, ports, "103", "placeholder", tmp_path)
    assert (header(invite, "From") or "").split(";tag=")[0] == (
        '"Anonymous" <sip:anonymous@anonymous.invalid>'), invite
    assert header(invite, "Privacy") == "id", invite
    pai = header(invite, "P-Asserted-Identity")
    assert pai is not None and "+48221234560" in pai, invite  # RFC 3325: trusted trunk
    from_ = header(invite, "From") or ""
    assert "103" not in from_ and "Dave" not in invite, invite
    simulated = route(c.config_dir, "103", NATIONAL)
    assert simulated.trunks[0] == ("placeholder", request_user(invite)), simulated.text
    line = _route_line(simulated, "placeholder")
    assert "restricted" in line and "P-Asserted-Identity +48221234560" in line, simulated.text


def test_outbound_restricted_caller_id_untrusted_trunk_no_pai(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    """The national route goes to 'backup' only (untrusted, national number format)."""
    def backup_only(data: dict[str, Any]) -> None:
        next(r for r in data["outbound_routes"] if r["name"] == "national")["trunks"] = ["backup"]
        assert not trunk(data, "backup").get("trusted", False)
        _no_pin(data)

    c, ports = _trunk_switch(start_centrala, config_copy, backup_only)
    invite, _ = _outbound_call(c, ports, "103", "backup", tmp_path)
    assert request_user(invite) == NATIONAL, invite  # national number_format
    assert (header(invite, "From") or "").split(";tag=")[0] == (
        '"Anonymous" <sip:anonymous@anonymous.invalid>'), invite
    assert header(invite, "Privacy") == "id", invite
    assert header(invite, "P-Asserted-Identity") is None, f"identity leaked to untrusted:\n{invite}"
    assert "+48221234560" not in invite, invite
    simulated = route(c.config_dir, "103", NATIONAL)
    assert simulated.trunks == [("backup", request_user(invite))], simulated.text
    assert "P-Asserted-Identity" not in _route_line(simulated, "backup"), simulated.text


def test_outbound_call_needing_pin_does_not_reach_trunk_unasked(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    """103 has a PIN (``centrala route``: "PIN: required"): its outbound call must not
    be put through to a trunk before the PIN was entered, however it gets asked."""
    c, ports = _trunk_switch(start_centrala, config_copy)
    simulated = route(c.config_dir, "103", NATIONAL)
    assert re.search(r"^PIN:\s+required", simulated.text, re.MULTILINE), simulated.text
    carriers = [Silent(Phone("trunk", TRUNK_IP, p)) for p in ports.values()]
    call = dial(c, "103", NATIONAL, tmp_path / "uac", scenario="call_uac_reject.xml",
                status=403, timeout_s=3)
    reached = [m for s in carriers for m in s.received()]
    for s in carriers:
        s.close()
    assert not reached, (
        "103's call went to the trunk without its PIN being asked "
        f"(caller got {responses(call)}):\n{reached[0][:300]}")


# --------------------------------------------------------------------------- 8. inbound


def test_inbound_did_rings_extension_without_auth(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    did = "+48221234561"  # -> extension 101
    c, _ = _trunk_switch(start_centrala, config_copy)
    phone = Background.uas(register(c, "101"), "call_uas_answer.xml", tmp_path / "101")
    carrier = trunk_call(c, did, tmp_path / "trunk", caller_number="+48600111222")
    answered = phone.result()
    assert carrier.returncode == 0 and answered.returncode == 0, reports(carrier, answered)
    assert 407 not in responses(carrier) and 401 not in responses(carrier), responses(carrier)
    (invite,) = invites(answered)
    assert "+48600111222" in (header(invite, "From") or ""), invite
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["direction"], cdr["trunk"], cdr["callee"], cdr["dialed"]) == (
        "answered", "inbound", "placeholder", "101", did), cdr
    simulated = route(c.config_dir, "+48600111222", did)
    assert simulated.exit_code == 0 and simulated.extension == "101", simulated.text


# --------------------------------------------------------------------------- 9. refusals


@pytest.mark.parametrize(("caller", "dialed", "why"), [
    ("101", "00441632960001", "international calls not permitted"),  # national-only
    ("102", "008821234567", "over the cap"),  # +882 at 1.20/min, cap 0.50
])
def test_refused_call_403(
    caller: str, dialed: str, why: str,
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path,
) -> None:
    c, ports = _trunk_switch(start_centrala, config_copy)
    carriers = [Silent(Phone("trunk", TRUNK_IP, p)) for p in ports.values()]
    call = dial(c, caller, dialed, tmp_path / "uac", scenario="call_uac_reject.xml", status=403)
    reached = [m for s in carriers for m in s.received()]
    for s in carriers:
        s.close()
    assert call.returncode == 0, reports(call)
    assert not reached, f"a refused call reached a trunk: {reached[0][:200]}"
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["hangup_cause"], cdr["caller"], cdr["trunk"]) == (
        "refused", 403, caller, None), cdr
    simulated = route(c.config_dir, caller, dialed)
    assert (simulated.exit_code, simulated.refused_status) == (2, 403), simulated.text
    assert why in simulated.result, simulated.text


# --------------------------------------------------------------------------- credit limit


def test_credit_limit_ends_a_running_call_and_refuses_the_next(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    def tiny_credit(data: dict[str, Any]) -> None:
        data["credit"] = {"limit": 0.001}  # +48 costs 0.02/min: used up after 3 s

    c, ports = _trunk_switch(start_centrala, config_copy, tiny_credit)
    carrier = _trunk_uas(ports, "placeholder", tmp_path / "trunk")
    first = dial(c, "100", NATIONAL, tmp_path / "uac1", scenario="call_uac_wait_bye.xml")
    took = carrier.result()
    # the switch hung up both sides itself: the caller got BYE, the carrier got BYE
    assert first.returncode == 0 and took.returncode == 0, reports(first, took)
    (cdr,) = cdrs(c, 1)
    assert (cdr["disposition"], cdr["hangup_side"], cdr["hangup_cause"]) == (
        "answered", "system", 402), cdr
    assert 3 <= cdr["billed_s"] <= 5 and cdr["cost"] is not None, cdr
    assert "reached its credit limit" in c.log_text()
    second = dial(c, "100", NATIONAL, tmp_path / "uac2", scenario="call_uac_reject.xml",
                  status=402)
    assert second.returncode == 0, reports(second)
    (_, refused) = cdrs(c, 2)
    assert (refused["disposition"], refused["hangup_cause"]) == ("failed", 402), refused
