"""T.38 fax through the real switch, SIPp on both sides.

* T.38 accepted: SIPp 100 calls SIPp 101 with PCMU and sends digit 1 as RTP;
  then re-INVITEs with ``m=image udptl t38`` and T.38 attributes.  101 (a fax
  gateway scenario) must get an offer with the caller's attributes and answers
  T.38; 100 must get T.38 back.  100 plays UDPTL packets with SIPp's
  ``play_pcap_image`` from a pcap this test writes (``media_support.py``: no
  T.38 capture ships with sip-tester).  A session refresh follows (UPDATE
  without SDP, answered by the switch; then a re-INVITE with the same T.38
  SDP), and a second pcap of UDPTL; then a re-INVITE back to audio and digit 3.
  101's media address is a socket of this test: it must get every UDPTL packet
  byte for byte (sequence numbers and redundant IFPs as sent), in order, from
  the port of the switch named in 101's T.38 offer, and the RTP before and
  after the fax.
* T.38 refused: 101 answers the T.38 re-INVITE with 488; 100 gets 488 and the
  call goes on with its audio: digit 2, sent after the refusal, reaches 101 as
  RTP; no UDPTL does.  The call ends with BYE.
* After each call, ``centrala status`` shows no RTP port in use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.e2e.calls_support import call_config, invites, responses
from tests.e2e.conftest import Centrala
from tests.e2e.media_support import (
    Datagram,
    body,
    ports_released,
    sipp_call_rtp,
    status,
    udptl_packets,
    write_pcap,
)

StartCentrala = Callable[..., Centrala]
ConfigCopy = Callable[..., Path]


def _events(received: list[Datagram]) -> list[int]:
    """The RFC 4733 event codes of the RTP received (payload type 101), in order."""
    return [d[12] for d, _ in received if d[0] & 0xC0 == 0x80 and d[1] & 0x7F == 101]


def _udptl(received: list[Datagram]) -> list[Datagram]:
    """What is not RTP (version 2): the UDPTL packets, whose first octet is the high
    byte of a small sequence number."""
    return [(d, src) for d, src in received if d[0] & 0xC0 != 0x80]


def test_t38_reinvite_relays_udptl_survives_a_refresh_and_returns_to_audio(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = start_centrala(call_config(config_copy))
    first, second = udptl_packets(1, 12), udptl_packets(13, 8)
    (tmp_path / "uac").mkdir()
    write_pcap(tmp_path / "uac" / "udptl1.pcap", first)
    write_pcap(tmp_path / "uac" / "udptl2.pcap", second)
    caller, callee, received = sipp_call_rtp(c, tmp_path, "fax_uac_t38.xml", "fax_uas_t38.xml")
    report = c.log_tail()
    offers = [body(m) for m in invites(callee)]
    assert len(offers) == 4, (offers, report)  # the call, T.38, T.38 again, audio
    image = re.search(r"^m=image (\d+) udptl t38", offers[1], re.MULTILINE)
    assert image, offers[1]
    assert "a=T38FaxFillBitRemoval" in offers[1] and "a=T38MaxBitRate:14400" in offers[1]
    fax = _udptl(received)
    assert [d for d, _ in fax] == first + second, ([d.hex() for d, _ in fax], report)
    assert {src for _, src in fax} == {("127.0.0.1", int(image.group(1)))}
    events = _events(received)
    assert set(events) == {1, 3}, (events, report)
    order = [("U" if d[0] & 0xC0 != 0x80 else "R") for d, _ in received]
    last_udptl = max(i for i, kind in enumerate(order) if kind == "U")
    assert order.index("U") > order.index("R")  # digit 1 first, the fax after it
    assert any(kind == "R" for kind in order[last_udptl:]), "".join(order)  # audio again
    assert responses(caller).count(200) >= 6  # INVITE, 3 re-INVITEs, UPDATE, BYE
    assert ports_released(c), status(c)


def test_refused_t38_is_488_and_the_audio_goes_on(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = start_centrala(call_config(config_copy))
    caller, callee, received = sipp_call_rtp(
        c, tmp_path, "fax_uac_t38_refused.xml", "fax_uas_t38_refuse.xml")
    report = c.log_tail()
    assert 488 in responses(caller), (responses(caller), report)
    assert "m=image" in body(invites(callee)[1])
    events = _events(received)
    assert set(events) == {1, 2}, (events, report)  # digit 2 came after the 488
    assert _udptl(received) == []
    assert ports_released(c), status(c)
