"""Music on hold, transcoding and DTMF conversion in the real switch, with real peers.

* Hold: SIPp 100 calls SIPp 101 and sends RFC 4733 digits 1, then 2 while
  holding 101 (re-INVITE sendonly), then 3 after resuming.  101's RTP socket
  (a socket of this test) gets 1, then the tenant's music on hold in PCMU
  (non-silent), then 3, never 2, all as one RTP stream (one SSRC, sequence
  numbers going on by one).  (baresip cannot be the held party here: on the
  hold re-INVITE it re-creates its aubridge player and stops decoding.)
* Transcoding: 100 with only PCMU (module g711, extension codecs [PCMU]) calls
  101 with only opus loaded (extension codecs [opus]); then PCMA against
  G.722.  Each phone plays a tone and each must hear the other's (dominant
  frequency of its recording).
* INFO -> RFC 4733: SIPp 100 calls SIPp 101 (both with telephone-event) and
  presses 5 by SIP INFO (application/dtmf-relay); the switch answers the INFO
  and 101's RTP socket (a socket of this test) gets telephone-event 5 packets;
  101 never sees the INFO.
* RFC 4733 -> INFO: SIPp 100 (with telephone-event) calls SIPp 101 (PCMU
  only) and sends digit 7 as RFC 4733 packets; 101 gets an INFO
  (application/dtmf-relay, Signal=7) and no telephone-event packet.
* After every call, no RTP port is left allocated.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from media.codecs import PCMU
from tests.e2e.baresip import Baresip
from tests.e2e.calls_support import CREDENTIALS, DOMAIN, call_config, edit_tenant, extension
from tests.e2e.conftest import Centrala
from tests.e2e.media_support import (
    dominant_frequency,
    ports_released,
    registered,
    sipp_call_rtp,
    status,
    write_tone,
)
from tests.e2e.registrar_support import wait_for
from tests.e2e.sipp import free_port

StartCentrala = Callable[..., Centrala]
ConfigCopy = Callable[..., Path]


# --------------------------------------------------------------------------- helpers


def phone(tmp_path: Path, number: str, c: Centrala, ip: str, source: Path, **kwargs: Any
          ) -> Baresip:
    return Baresip.start(
        tmp_path / number, user=number, password=CREDENTIALS[number][1], domain=DOMAIN,
        server=c.target, sip_ip=ip, sip_port=free_port(ip), source=source, **kwargs)


def codecs_of(config_dir: Path, caller: list[str], callee: list[str]) -> None:
    def edit(data: dict[str, Any]) -> None:
        extension(data, "100")["codecs"] = caller
        extension(data, "101")["codecs"] = callee
    edit_tenant(config_dir, edit)


def call_between(c: Centrala, tmp_path: Path, caller_kwargs: dict[str, Any],
                 callee_kwargs: dict[str, Any]) -> tuple[Baresip, Baresip, str]:
    """101 (auto-answer) is called by 100; both run until their ``seconds`` are up."""
    callee = phone(tmp_path, "101", c, "127.0.0.4", **callee_kwargs)
    caller: Baresip | None = None
    try:
        assert wait_for(lambda: registered(c, "101"), 5.0), callee.report()
        caller = phone(tmp_path, "100", c, "127.0.0.3", dial=f"sip:101@{DOMAIN}",
                       **caller_kwargs)
        caller.wait()
        callee.wait()
    finally:
        for p in (caller, callee):
            if p is not None:
                p.stop()
    assert caller is not None
    return caller, callee, caller.report() + "\n" + callee.report() + "\n" + c.log_tail()


# --------------------------------------------------------------------------- hold


def test_hold_plays_music_to_the_held_party_as_one_stream_with_the_call(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    """SIPp 100 calls SIPp 101 and sends digits 1, 2 (while holding 101) and 3
    (resumed); 101's RTP socket must get digits 1 and 3 and, in between, the
    tenant's music in PCMU, all from the switch's port as one RTP stream."""
    c = start_centrala(call_config(config_copy))
    _, _, received = sipp_call_rtp(c, tmp_path, "media_uac_hold.xml", "media_uas_hold.xml")
    packets = [data for data, _ in received]
    report = c.log_tail()
    kinds = ["E" if p[1] & 0x7F == 101 else "A" if p[1] & 0x7F == 0 else "?" for p in packets]
    events = [p[12] for p in packets if p[1] & 0x7F == 101]
    assert set(events) == {1, 3}, (events, report)
    first_3 = next(i for i, p in enumerate(packets) if p[1] & 0x7F == 101 and p[12] == 3)
    last_1 = max(i for i, p in enumerate(packets) if p[1] & 0x7F == 101 and p[12] == 1)
    music = [p for p in packets[last_1:first_3] if p[1] & 0x7F == 0]
    assert len(music) >= 25, ("".join(kinds), report)  # half a second of it, at least
    pcm = b"".join(PCMU.decoder().decode(p[12:]) for p in music)
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    rms = math.sqrt(sum(x * x for x in samples) / len(samples))
    assert rms > 300, rms  # music, not silence
    # one stream for the phone: one SSRC, sequence numbers without a leap (sip-tester's
    # pcaps repeat the sequence number of an event's end packets, RFC 4733 §2.5.1.4)
    assert len({p[8:12] for p in packets}) == 1, {p[8:12].hex() for p in packets}
    seqs = [int.from_bytes(p[2:4], "big") for p in packets]
    leaps = [(i, a, b) for i, (a, b) in enumerate(zip(seqs, seqs[1:], strict=False))
             if (b - a) & 0xFFFF != 1 and not (a == b and kinds[i] == kinds[i + 1] == "E")]
    assert not leaps, ("".join(kinds), leaps)
    assert ports_released(c), status(c)


# --------------------------------------------------------------------------- transcoding


def _transcoded_call(start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path,
                     caller_codec: str, callee_codec: str, callee_module: str,
                     callee_rate: int, callee_account: str, channels: int = 1) -> None:
    config = call_config(config_copy)
    codecs_of(config, [caller_codec], [callee_codec])
    c = start_centrala(config)
    caller, callee, report = call_between(
        c, tmp_path,
        {"source": write_tone(tmp_path / "1khz.wav", 1000, 5), "seconds": 8,
         "codecs": caller_codec},
        {"source": write_tone(tmp_path / "400hz.wav", 400, 10, callee_rate, channels),
         "seconds": 10, "codecs": callee_account, "codec_modules": (callee_module,)})
    offer_to_101 = callee.received_sdps()[0]
    assert callee_codec.lower() in offer_to_101.lower(), (offer_to_101, report)
    assert caller_codec in caller.received_sdps()[-1], report
    for p, tone in ((callee, 1000.0), (caller, 400.0)):
        freq, rms = dominant_frequency(p.recording())
        assert rms > 500 and abs(freq - tone) <= 40, (p.home, freq, rms, report)
    assert ports_released(c), status(c)


def test_pcmu_caller_and_opus_callee_hear_each_other_transcoded(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    _transcoded_call(start_centrala, config_copy, tmp_path, "PCMU", "opus", "opus", 48000,
                     "opus/48000/2", channels=2)


def test_pcma_caller_and_g722_callee_hear_each_other_transcoded(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    _transcoded_call(start_centrala, config_copy, tmp_path, "PCMA", "G722", "g722", 16000,
                     "G722")


# --------------------------------------------------------------------------- DTMF


def test_info_becomes_rfc4733_events_on_the_other_leg(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = start_centrala(call_config(config_copy))
    _, _, received = sipp_call_rtp(c, tmp_path, "media_uac_info.xml", "media_uas_info.xml")
    packets = [data for data, _ in received]
    events = [p for p in packets if p[1] & 0x7F == 101]
    assert events, f"no telephone-event reached 101\n{c.log_tail()}"
    assert {p[12] for p in events} == {5}, [p[12:16].hex() for p in events]
    assert any(p[13] & 0x80 for p in events), "no end-of-event packet"
    assert len({p[4:8] for p in events}) == 1  # one event, one timestamp
    assert ports_released(c), status(c)


def test_rfc4733_events_become_info_for_a_leg_without_telephone_event(
    start_centrala: StartCentrala, config_copy: ConfigCopy, tmp_path: Path
) -> None:
    c = start_centrala(call_config(config_copy))
    _, answered, received = sipp_call_rtp(c, tmp_path, "media_uac_4733.xml",
                                          "media_uas_no_event.xml")
    assert "Signal=7" in answered.messages, f"101 got no INFO for 7\n{c.log_tail()}"
    assert not [data for data, _ in received if data[1] & 0x7F != 0], \
        "a packet other than PCMU reached 101"
    assert ports_released(c), status(c)
