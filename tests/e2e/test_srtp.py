"""SRTP per leg through the real switch, with baresip phones on loopback.

* 100 (``mediaenc=srtp-mand``: RTP/SAVP with ``a=crypto``, SDES) calls 101
  (plain RTP).  101's offer is plain RTP/AVP without any crypto line; 100's
  answer carries one ``a=crypto`` line with the switch's own key (not the one
  100 offered).  Each phone hears the other's tone, so the relay decrypted
  100's SRTP for 101 and encrypted 101's RTP for 100.
* 101 with ``encryption: required`` and ``srtp-mand`` is called by a plain
  100: the switch offers 101 RTP/SAVP with its own keys only, and the call
  works both ways.
* 100 with ``encryption: required`` on a plain phone calls out: 488, and
  nothing rings.
* After the calls no RTP port is left allocated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.baresip import _BLOCK, Baresip
from tests.e2e.calls_support import CREDENTIALS, DOMAIN, call_config, edit_tenant, extension
from tests.e2e.conftest import Centrala
from tests.e2e.media_support import (
    dominant_frequency,
    ports_released,
    registered,
    rtp_range,
    sdp_port,
    status,
    write_tone,
)
from tests.e2e.registrar_support import wait_for
from tests.e2e.sipp import free_port

StartCentrala = Callable[..., Centrala]
ConfigCopy = Callable[..., Path]


def crypto_keys(sdp: str) -> list[str]:
    """The inline key of each ``a=crypto`` line."""
    return re.findall(r"^a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)", sdp, re.MULTILINE)


def proto(sdp: str) -> str:
    m = re.search(r"^m=audio \d+ (\S+) ", sdp, re.MULTILINE)
    assert m, sdp
    return m.group(1)


def sent_sdps(phone: Baresip) -> list[str]:
    """SDP bodies of the SIP messages the phone sent (from its ``-s`` trace)."""
    sent = [m["msg"].replace("\r\n", "\n") for m in _BLOCK.finditer(phone.log())
            if m["src"] == phone.sip]
    return [msg.split("\n\n", 1)[1] for msg in sent if "application/sdp" in msg and "\n\n" in msg]


def phone(home: Path, number: str, c: Centrala, ip: str, source: Path, seconds: float,
          **kw: Any) -> Baresip:
    return Baresip.start(home, user=number, password=CREDENTIALS[number][1], domain=DOMAIN,
                         server=c.target, sip_ip=ip, sip_port=free_port(ip), source=source,
                         seconds=seconds, **kw)


def call_and_record(c: Centrala, tmp_path: Path, caller_enc: str | None,
                    callee_enc: str | None) -> tuple[Baresip, Baresip, str]:
    """100 (1 kHz) calls 101 (400 Hz); both bounded; returns the phones and a report."""
    callee = phone(tmp_path / "101", "101", c, "127.0.0.4",
                   write_tone(tmp_path / "400hz.wav", 400, 10), 10, mediaenc=callee_enc)
    caller: Baresip | None = None
    try:
        assert wait_for(lambda: registered(c, "101"), 5.0), callee.report()
        caller = phone(tmp_path / "100", "100", c, "127.0.0.3",
                       write_tone(tmp_path / "1khz.wav", 1000, 4), 8,
                       dial=f"sip:101@{DOMAIN}", mediaenc=caller_enc)
        caller.wait()
        callee.wait()
    finally:
        for p in (caller, callee):
            if p is not None:
                p.stop()
    assert caller is not None
    return caller, callee, caller.report() + "\n" + callee.report() + "\n" + c.log_tail()


def switch_with(start_centrala: StartCentrala, config_copy: ConfigCopy,
                **encryption: str) -> Centrala:
    """The switch with ``encryption`` set per extension: ``switch_with(..., e101="required")``."""
    config = call_config(config_copy)
    for key, value in encryption.items():
        edit_tenant(config, lambda data, n=key[1:], v=value: extension(data, n).update(
            encryption=v))
    return start_centrala(config)


def status_lines(phone: Baresip) -> list[str]:
    return [m.split("\n", 1)[0] for m in phone.received() if m.startswith("SIP/2.0")]


def heard_each_other(caller: Baresip, callee: Baresip, report: str) -> None:
    for p, tone in ((callee, 1000.0), (caller, 400.0)):
        freq, rms = dominant_frequency(p.recording())
        assert rms > 1000 and abs(freq - tone) <= 40, (p.home, freq, rms, report)


def test_sdes_caller_and_plain_callee_hear_each_other(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = switch_with(start_centrala, config_copy)
    caller, callee, report = call_and_record(c, tmp_path, "srtp-mand", None)

    (offer_to_101,) = callee.received_sdps()
    assert proto(offer_to_101) == "RTP/AVP" and "a=crypto" not in offer_to_101, offer_to_101
    assert "a=fingerprint" not in offer_to_101 and sdp_port(offer_to_101) in rtp_range()
    offer_from_100 = sent_sdps(caller)[0]
    assert proto(offer_from_100) == "RTP/SAVP" and crypto_keys(offer_from_100), offer_from_100
    answer_to_100 = caller.received_sdps()[-1]
    assert proto(answer_to_100) == "RTP/SAVP", answer_to_100
    (ours,) = crypto_keys(answer_to_100)
    assert ours not in crypto_keys(offer_from_100), (answer_to_100, offer_from_100)
    assert not crypto_keys(sent_sdps(callee)[0])  # 101 answered plain: nothing of it to copy

    heard_each_other(caller, callee, report)
    assert ports_released(c), status(c)


def test_required_callee_gets_srtp_from_a_plain_caller(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = switch_with(start_centrala, config_copy, e101="required")
    caller, callee, report = call_and_record(c, tmp_path, None, "srtp-mand")

    (offer_to_101,) = callee.received_sdps()
    assert proto(offer_to_101) == "RTP/SAVP" and crypto_keys(offer_to_101), offer_to_101
    answer_to_100 = caller.received_sdps()[-1]
    assert proto(answer_to_100) == "RTP/AVP" and "a=crypto" not in answer_to_100, answer_to_100
    heard_each_other(caller, callee, report)
    assert ports_released(c), status(c)


def test_required_caller_offering_plain_rtp_gets_488(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = switch_with(start_centrala, config_copy, e100="required")
    caller, callee, report = call_and_record(c, tmp_path, None, None)
    responses = status_lines(caller)
    assert any(r.startswith("SIP/2.0 488") for r in responses), (responses, report)
    assert not callee.received_sdps(), report  # nothing rang
    assert ports_released(c), status(c)


def test_dtls_srtp_caller_and_plain_callee_hear_each_other(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = switch_with(start_centrala, config_copy)
    caller, callee, report = call_and_record(c, tmp_path, "dtls_srtp", None)

    (offer_to_101,) = callee.received_sdps()
    assert proto(offer_to_101) == "RTP/AVP", offer_to_101
    assert "a=fingerprint" not in offer_to_101 and "a=setup" not in offer_to_101, offer_to_101
    offer_from_100 = sent_sdps(caller)[0]
    assert proto(offer_from_100).startswith("UDP/TLS/RTP/SAVP"), offer_from_100
    answer_to_100 = caller.received_sdps()[-1]
    theirs = re.findall(r"^a=fingerprint:(.*?)\s*$", offer_from_100, re.MULTILINE)
    ours = re.findall(r"^a=fingerprint:(.*?)\s*$", answer_to_100, re.MULTILINE)
    assert len(ours) == 1 and ours[0] not in theirs, (answer_to_100, offer_from_100)
    assert "a=setup:active" in answer_to_100, answer_to_100

    heard_each_other(caller, callee, report)
    assert ports_released(c), status(c)


def test_required_callee_on_a_plain_phone_is_never_offered_plain_rtp(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = switch_with(start_centrala, config_copy, e101="required")
    caller, callee, report = call_and_record(c, tmp_path, None, None)
    offers = callee.received_sdps()
    assert offers and all(proto(o) == "RTP/SAVP" and crypto_keys(o) for o in offers), report
    responses = status_lines(caller)
    assert any(r.startswith("SIP/2.0 488") for r in responses), (responses, report)
    assert ports_released(c), status(c)
