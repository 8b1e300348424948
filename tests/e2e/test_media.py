"""Media anchored in the real switch, with real peers on loopback.

* Two baresip phones (``baresip.py``) register; 100 calls 101, PCMU both sides.
  100 plays a 1 kHz tone, 101 (auto-answer) a 400 Hz one; each records what
  it decodes.  The SDP each phone received names the switch's ports (from
  this test process's RTP range, not the other phone's), and each recording's
  dominant frequency is the other phone's tone: audio went through the relay
  both ways.
* SIPp: 100 calls 101 and plays RFC 4733 digits from sip-tester's pcaps
  (``play_pcap_audio``) to the switch; 101's SIPp answers with an SDP naming a
  socket of this test.  Digit 1 arrives from the switch's B-side port; then
  100 holds (re-INVITE sendonly, answered recvonly): digit 2 must not reach
  101; 100 resumes (sendrecv): digit 3 arrives.  The re-INVITEs reuse the
  anchor ports and bump the o= version.
* After the calls, ``centrala status`` shows no RTP port in use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.e2e.baresip import Baresip
from tests.e2e.calls_support import (
    CREDENTIALS,
    DOMAIN,
    call_config,
    invites,
    reports,
)
from tests.e2e.conftest import Centrala
from tests.e2e.media_support import (
    body,
    dominant_frequency,
    ports_released,
    registered,
    rtp_range,
    sdp_line,
    sdp_port,
    sipp_call_rtp,
    status,
    write_tone,
)
from tests.e2e.registrar_support import received_messages, wait_for
from tests.e2e.sipp import free_port

StartCentrala = Callable[..., Centrala]
ConfigCopy = Callable[..., Path]


# --------------------------------------------------------------------------- baresip


def test_baresip_phones_hear_each_other_through_the_anchor(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = start_centrala(call_config(config_copy))
    callee = Baresip.start(
        tmp_path / "101", user="101", password=CREDENTIALS["101"][1], domain=DOMAIN,
        server=c.target, sip_ip="127.0.0.4", sip_port=free_port("127.0.0.4"),
        source=write_tone(tmp_path / "400hz.wav", 400, 10), seconds=10,
    )
    caller: Baresip | None = None
    try:
        assert wait_for(lambda: registered(c, "101"), 5.0), callee.report()
        caller = Baresip.start(
            tmp_path / "100", user="100", password=CREDENTIALS["100"][1], domain=DOMAIN,
            server=c.target, sip_ip="127.0.0.3", sip_port=free_port("127.0.0.3"),
            source=write_tone(tmp_path / "1khz.wav", 1000, 4), seconds=8,
            dial=f"sip:101@{DOMAIN}",  # hangs up when its 4 s tone ends
        )
        caller.wait()
        callee.wait()
    finally:
        for phone in (caller, callee):
            if phone is not None:
                phone.stop()
    assert caller is not None
    report = caller.report() + "\n" + callee.report() + "\n" + c.log_tail()

    # the SDP each phone received names the switch: its anchor ports, not the other phone's
    (offer_to_101,) = callee.received_sdps()
    answer_to_100 = caller.received_sdps()[-1]
    ports = rtp_range()
    assert sdp_port(offer_to_101) in ports and sdp_port(answer_to_100) in ports, report
    assert sdp_port(offer_to_101) != sdp_port(answer_to_100), report
    assert sdp_line(offer_to_101, "o").startswith("- "), offer_to_101  # our origin
    assert "PCMU/8000" in offer_to_101 and "PCMU/8000" in answer_to_100

    # each heard the other's tone
    for phone, tone in ((callee, 1000.0), (caller, 400.0)):
        freq, rms = dominant_frequency(phone.recording())
        assert rms > 1000 and abs(freq - tone) <= 40, (phone.home, freq, rms, report)
    assert ports_released(c), status(c)


# --------------------------------------------------------------------------- SIPp: RTP, hold


def test_sipp_rtp_is_anchored_and_hold_stops_it(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = start_centrala(call_config(config_copy))
    caller, callee, packets = sipp_call_rtp(c, tmp_path, "media_uac_hold.xml",
                                            "media_uas_hold.xml")

    # three INVITEs reached 101, all naming the same anchor of the switch
    sdps = [body(m) for m in invites(callee)]
    assert len(sdps) == 3, reports(callee)
    b_port = sdp_port(sdps[0])
    assert {sdp_port(s) for s in sdps} == {b_port} and b_port in rtp_range(), sdps
    assert {sdp_line(s, "c") for s in sdps} == {"IN IP4 127.0.0.1"}, sdps
    versions = [int(sdp_line(s, "o").split()[2]) for s in sdps]
    assert versions == [versions[0], versions[0] + 1, versions[0] + 2], versions
    assert [re.findall(r"^a=(sendonly|sendrecv)", s, re.MULTILINE) for s in sdps] == [
        ["sendrecv"], ["sendonly"], ["sendrecv"]], sdps
    answers = [body(m) for m in received_messages(caller.messages)
               if m.startswith("SIP/2.0 200") and "application/sdp" in m]
    assert {sdp_port(a) for a in answers} - {b_port} and all(
        sdp_port(a) in rtp_range() for a in answers), answers

    # RTP reached 101 from the switch's B-side port, except while it was held
    assert packets, f"no RTP reached 101's socket\n{c.log_tail()}"
    assert {addr for _, addr in packets} == {("127.0.0.1", b_port)}, packets[:3]
    events = {data[12] for data, _ in packets if data[1] & 0x7F == 101}
    assert events == {1, 3}, f"digits relayed: {sorted(events)} (2 was sent on hold)"
    assert ports_released(c), status(c)
