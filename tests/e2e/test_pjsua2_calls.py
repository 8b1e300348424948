"""Real softphones (pjsua2, pjsip 2.14.1) call each other through the real process.

Extension 100 (pjsua2 on 127.0.0.2) calls extension 104 (pjsua2 on 127.0.0.3);
both register with digest (SHA-256 then MD5 offered), the INVITE is challenged
with 407 and the B2BUA rings 104's registered contact.  SDP passes through
unchanged.  Each phone is a child process (tests/e2e/pjsua.py).

The configuration is a copy of config/ with three edits, so that nothing but
the B2BUA is under test: no qualify OPTIONS, the placeholder trunks moved off
127.0.0.2 (a call from a trunk's address is taken as the trunk's), and 104's
no-answer forward removed.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.e2e.conftest import Centrala, centrala_bin
from tests.e2e.pjsua import Softphone

DOMAIN = "demo.centrala.test"
WAIT_S = 10.0
CALLER_IP, CALLEE_IP = "127.0.0.2", "127.0.0.3"
TRUNK_IP = "127.0.0.9"  # the demo trunks' address in the copy, used by no phone


def cdrs(c: Centrala) -> list[dict[str, str]]:
    """``centrala cdr --csv`` of the running process."""
    cmd = [str(centrala_bin()), "cdr", "-c", str(c.config_dir), "--state", str(c.state_dir),
           "--csv"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=WAIT_S)
    assert out.returncode == 0, out.stderr
    return list(csv.DictReader(io.StringIO(out.stdout)))


def wait_cdrs(c: Centrala, count: int = 1) -> list[dict[str, str]]:
    """The CDRs once there are ``count`` of them; bounded wait."""
    deadline = time.monotonic() + WAIT_S
    while True:
        rows = cdrs(c)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


@dataclass
class Pair:
    centrala: Centrala
    caller: Softphone  # 100
    callee: Softphone  # 104

    def report(self) -> str:
        return (f"=== caller 100 ===\n{self.caller.report()}\n"
                f"=== callee 104 ===\n{self.callee.report()}\n{self.centrala.log_tail()}")

    def dial(self) -> None:
        """100 dials 104; both sides see the call come up to ringing."""
        self.caller.call(f"sip:104@{DOMAIN}")
        self.callee.wait_for("incoming")
        assert self.callee.wait_call("EARLY")["code"] == 180, self.report()
        assert self.caller.wait_call("EARLY")["code"] == 180, self.report()

    def connect(self) -> None:
        """Dial, 104 answers, both reach CONFIRMED."""
        self.dial()
        self.callee.answer(200)
        self.caller.wait_call("CONFIRMED")
        self.callee.wait_call("CONFIRMED")

    def the_cdr(self) -> dict[str, str]:
        rows = wait_cdrs(self.centrala)
        assert len(rows) == 1, (rows, self.centrala.log_tail())
        row = rows[0]
        assert (row["caller"], row["callee"], row["dialed"]) == ("100", "104", "104"), row
        assert row["direction"] == "internal" and row["tenant"] == DOMAIN, row
        return row


@pytest.fixture
def pair(
    start_centrala: Callable[..., Centrala], config_copy: Callable[..., Path], tmp_path: Path
) -> Iterator[Pair]:
    config = config_copy(registrar={"qualify_interval_s": 0})
    yaml = YAML()
    tenant_file = config / "tenants" / "demo.yaml"
    tenant = yaml.load(tenant_file)
    for trunk in tenant["trunks"]:
        trunk["host"] = TRUNK_IP
        trunk["allowed_ips"] = [f"{TRUNK_IP}/32"]
    erin = next(e for e in tenant["extensions"] if e["number"] == 104)
    erin.pop("forward", None)
    yaml.dump(tenant, tenant_file)
    c = start_centrala(config)

    caller = Softphone.start(user="100", password="demo-pass-100", domain=DOMAIN,
                             server=c.target, transport="udp", bind=CALLER_IP,
                             log_path=tmp_path / "pjsip-100.log")
    callee = Softphone.start(user="104", password="demo-pass-104", domain=DOMAIN,
                             server=c.target, transport="udp", bind=CALLEE_IP,
                             log_path=tmp_path / "pjsip-104.log")
    with caller, callee:
        p = Pair(c, caller, callee)
        for phone in (caller, callee):
            reg = phone.wait_reg()
            assert reg["code"] == 200 and reg["active"], p.report()
        yield p
    c.assert_alive()


def test_call_answered_and_caller_hangs_up(pair: Pair) -> None:
    pair.connect()
    for phone in (pair.caller, pair.callee):
        phone.wait_for("media", since=0, status="ACTIVE")

    pair.caller.hangup()
    assert pair.caller.wait_call("DISCONNECTED")["code"] == 200, pair.report()
    bye = pair.callee.wait_call("DISCONNECTED")
    assert bye["code"] == 200, pair.report()  # the BYE relayed by the B2BUA

    row = pair.the_cdr()
    assert row["disposition"] == "answered", row
    assert row["hangup_side"] == "caller", row
    assert row["answer"] and float(row["duration_s"]) >= 0, row


def test_hold_and_resume_cross_the_b2bua(pair: Pair) -> None:
    pair.connect()
    for phone in (pair.caller, pair.callee):
        phone.wait_for("media", since=0, status="ACTIVE")

    for action, direction, callee_sees, caller_sees in (
        (pair.caller.hold, "sendonly", "REMOTE_HOLD", "LOCAL_HOLD"),  # re-INVITE a=sendonly
        (pair.caller.unhold, "sendrecv", "ACTIVE", "ACTIVE"),  # re-INVITE a=sendrecv
    ):
        a, b = pair.caller.mark(), pair.callee.mark()
        action()
        reinvite = pair.caller.wait_for("tsx", since=a, role="UAC")
        assert reinvite["code"] == 200, (direction, pair.report())
        offer = pair.callee.wait_for("offer", since=b)  # relayed by the B2BUA
        assert offer["direction"] == direction, pair.report()
        answered = pair.callee.wait_for("tsx", since=b, role="UAS")
        assert answered["code"] == 200, (direction, pair.report())
        pair.callee.wait_for("media", since=b, status=callee_sees)
        pair.caller.wait_for("media", since=a, status=caller_sees)

    for phone in (pair.caller, pair.callee):  # still up: no DISCONNECTED so far
        states = [e["state"] for e in phone.seen_of("call")]
        assert "DISCONNECTED" not in states, pair.report()
        assert not phone.seen_of("error"), pair.report()

    pair.callee.hangup()
    assert pair.callee.wait_call("DISCONNECTED")["code"] == 200, pair.report()
    assert pair.caller.wait_call("DISCONNECTED")["code"] == 200, pair.report()

    row = pair.the_cdr()
    assert row["disposition"] == "answered", row
    assert row["hangup_side"] == "callee", row


def test_callee_rejects_busy(pair: Pair) -> None:
    pair.dial()
    pair.callee.hangup(486)
    assert pair.callee.wait_call("DISCONNECTED")["code"] == 486, pair.report()
    end = pair.caller.wait_call("DISCONNECTED")
    assert end["code"] == 486, pair.report()
    assert not pair.caller.seen_of("media") or all(
        m["status"] != "ACTIVE" for m in pair.caller.seen_of("media")), pair.report()

    row = pair.the_cdr()
    assert row["disposition"] == "busy", row
    assert row["hangup_cause"] == "486" and not row["answer"], row


def test_caller_cancels_while_ringing(pair: Pair) -> None:
    pair.dial()
    pair.caller.hangup()  # before any answer: CANCEL
    assert pair.caller.wait_call("DISCONNECTED")["code"] == 487, pair.report()
    gone = pair.callee.wait_call("DISCONNECTED")
    assert gone["code"] == 487, pair.report()  # the B2BUA's CANCEL reached 104

    row = pair.the_cdr()
    assert row["disposition"] == "cancelled", row
    assert row["hangup_side"] == "caller" and not row["answer"], row


def test_callee_holds_and_resumes(pair: Pair) -> None:
    """The other direction: re-INVITEs from the callee's leg reach the caller."""
    pair.connect()
    for action, direction, caller_sees in (
        (pair.callee.hold, "sendonly", "REMOTE_HOLD"),
        (pair.callee.unhold, "sendrecv", "ACTIVE"),
    ):
        a, b = pair.caller.mark(), pair.callee.mark()
        action()
        assert pair.callee.wait_for("tsx", since=b, role="UAC")["code"] == 200, pair.report()
        assert pair.caller.wait_for("offer", since=a)["direction"] == direction, pair.report()
        pair.caller.wait_for("media", since=a, status=caller_sees)
    pair.caller.hangup()
    pair.callee.wait_call("DISCONNECTED")
    assert pair.the_cdr()["hangup_side"] == "caller"


def invite_200s(log_path: Path, count: int) -> list[str]:
    """The 200 responses to INVITEs a phone received, once ``count`` are in its log."""
    deadline = time.monotonic() + WAIT_S
    while True:
        text = log_path.read_text(errors="replace")
        found = re.findall(
            r"RX \d+ bytes Response msg 200/INVITE/cseq=\d+ .*?\n(.*?)--end msg--", text, re.S)
        if len(found) >= count or time.monotonic() > deadline:
            return found


def test_reinvite_answer_keeps_the_session_timer(pair: Pair) -> None:
    """RFC 4028 §9: the 2xx to a refreshing re-INVITE carries Session-Expires, else
    (§7.4) "there is no session expiration" and the caller stops refreshing, while
    the switch still expects its refreshes and would end the call as unrefreshed."""
    pair.connect()
    a = pair.caller.mark()
    pair.caller.hold()
    assert pair.caller.wait_for("tsx", since=a, role="UAC")["code"] == 200, pair.report()
    initial, reinvite = invite_200s(pair.caller.log_path, 2)[:2]
    assert re.search(r"^Session-Expires: *1800", initial, re.M | re.I), initial
    assert re.search(r"^Session-Expires: *1800", reinvite, re.M | re.I), (
        f"the switch's 200 to the caller's re-INVITE has no Session-Expires:\n{reinvite}")
