"""Helpers shared by the end-to-end media tests: tones, their analysis, SDP peeks and
the switch's RTP port count.

* ``write_tone`` makes a WAV of one frequency (8 kHz mono unless told);
  ``dominant_frequency`` finds the strongest frequency of the loudest second of
  a recording's channel (Goertzel, one DFT bin per 20 Hz step), with its RMS.
* ``sipp_call_rtp`` runs a SIPp caller scenario against a SIPp callee whose
  SDP names a socket of the test (``@RTP_PORT@``), and returns the RTP that
  reached that socket.
* ``sdp_port``/``sdp_line``/``body`` read SIP and SDP text as the peers logged it.
* ``udptl_packets``/``write_pcap``: T.38 UDPTL packets (``media/udptl.py``) and a
  pcap of them (Ethernet/IPv4/UDP) for SIPp's ``play_pcap_image``: sip-tester
  ships no T.38 capture, so the test makes its own.
* ``status``/``ports_released`` ask ``centrala status`` whether any RTP port is
  still allocated; ``registered`` whether a phone is in the registrar.
"""

from __future__ import annotations

import json
import math
import re
import socket
import struct
import wave
from pathlib import Path

from media.udptl import UdptlPacket
from tests.e2e.calls_support import DOMAIN, Background, dial, register, reports, udp_bound
from tests.e2e.conftest import Centrala, rtp_ports
from tests.e2e.registrar_support import cli, wait_for
from tests.e2e.sipp import SCENARIO_DIR, SippResult, run_sipp

RATE = 8000


# --------------------------------------------------------------------------- audio


def write_tone(path: Path, freq: float, seconds: float, rate: int = RATE,
               channels: int = 1) -> Path:
    """A tone WAV; baresip's aufile wants the rate and channels of the codec it feeds
    (48 kHz stereo for opus, 16 kHz for G.722)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(
            struct.pack("<h", round(12000 * math.sin(2 * math.pi * freq * i / rate))) * channels
            for i in range(int(rate * seconds))))
    return path


def _goertzel(samples: list[int], rate: int, freq: float) -> float:
    """Power of ``freq`` in ``samples`` (one DFT bin, Goertzel's recurrence)."""
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + k * s1 - s2, s1
    return s1 * s1 + s2 * s2 - k * s1 * s2


def dominant_frequency(path: Path, channel: int = 0) -> tuple[float, float]:
    """(dominant frequency in 100..3900 Hz, RMS) of the loudest second of a WAV
    (of one channel, the first unless told)."""
    with wave.open(str(path)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        frames = w.readframes(w.getnframes())
    frames = frames[: len(frames) // (2 * channels) * 2 * channels]
    samples = list(struct.unpack(f"<{len(frames) // 2}h", frames))[channel::channels]
    seconds = [samples[i:i + rate] for i in range(0, max(len(samples) - rate + 1, 1), rate)]
    loudest = max(seconds, key=lambda s: sum(x * x for x in s))
    rms = math.sqrt(sum(x * x for x in loudest) / max(len(loudest), 1))
    window = loudest[: rate // 2]
    best = max(range(100, 3901, 20), key=lambda f: _goertzel(window, rate, f))
    return float(best), rms


# --------------------------------------------------------------------------- T.38


def udptl_packets(first_seq: int, count: int) -> list[bytes]:
    """UDPTL packets as a fax gateway sends them: each with a new primary IFP (a T.30
    indicator, then HDLC data; opaque to the relay) and the two before it as
    redundancy (``t38UDPRedundancy``)."""
    ifps = [bytes([0x02 if n == first_seq else 0xC0 | n % 8, n & 0xFF, 0x7E, 0x55 ^ n & 0xFF])
            for n in range(first_seq - 2, first_seq + count)]
    return [bytes(UdptlPacket(first_seq + i, ifps[i + 2], (ifps[i + 1], ifps[i])))
            for i in range(count)]


def _ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(payload: bytes, src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """Ethernet II / IPv4 / UDP carrying ``payload`` (UDP checksum 0: none, RFC 768)."""
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, socket.IPPROTO_UDP,
                     0, socket.inet_aton(src[0]), socket.inet_aton(dst[0]))
    ip = ip[:10] + struct.pack("!H", _ipv4_checksum(ip)) + ip[12:]
    return b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp


def write_pcap(path: Path, payloads: list[bytes], interval_s: float = 0.02,
               src: tuple[str, int] = ("127.0.0.1", 6004),
               dst: tuple[str, int] = ("127.0.0.1", 6006)) -> Path:
    """A classic pcap file (microsecond timestamps, link type 1: Ethernet) with one UDP
    datagram per payload, ``interval_s`` apart; SIPp replays them with that timing
    and its own addresses."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, payload in enumerate(payloads):
        frame = _frame(payload, src, dst)
        usec = round(i * interval_s * 1_000_000)
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame),
                               len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


# --------------------------------------------------------------------------- the switch


def status(c: Centrala) -> dict[str, int]:
    out = cli("status", "-c", str(c.config_dir), "--state", str(c.state_dir))
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def ports_released(c: Centrala) -> bool:
    return wait_for(lambda: status(c)["rtp_ports_in_use"] == 0, 5.0)


def rtp_range() -> range:
    low, high = map(int, rtp_ports().split("-"))
    return range(low, high + 1)


def registered(c: Centrala, number: str) -> bool:
    out = cli("registrations", "-c", str(c.config_dir), "--state", str(c.state_dir))
    return f"{number}@{DOMAIN}" in out.stdout


# --------------------------------------------------------------------------- SIP and SDP text


def sdp_port(sdp: str) -> int:
    m = re.search(r"^m=audio (\d+) ", sdp, re.MULTILINE)
    assert m, sdp
    return int(m.group(1))


def sdp_line(sdp: str, kind: str) -> str:
    m = re.search(rf"^{kind}=(.*?)\s*$", sdp, re.MULTILINE)
    assert m, sdp
    return m.group(1)


def body(message: str) -> str:
    return re.split(r"\r?\n\r?\n", message, maxsplit=1)[1]


# --------------------------------------------------------------------------- SIPp with RTP


Datagram = tuple[bytes, tuple[str, int]]


def sipp_call_rtp(c: Centrala, tmp_path: Path, uac: str, uas: str
                  ) -> tuple[SippResult, SippResult, list[Datagram]]:
    """100 calls 101 with SIPp scenarios ``uac`` and ``uas`` (both must succeed): their
    results and the datagrams (with their sources) that 101's SDP port, a socket of
    this test (``@RTP_PORT@``), received."""
    phone = register(c, "101")
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    rtp.setblocking(False)
    workdir = tmp_path / "uas"
    workdir.mkdir()
    scenario = workdir / uas
    scenario.write_text((SCENARIO_DIR / uas).read_text().replace(
        "@RTP_PORT@", str(rtp.getsockname()[1])))
    callee = Background(lambda: run_sipp(
        scenario, None, timeout_s=15, workdir=workdir, local_port=phone.port, trace_msg=True,
        extra=["-i", phone.host]), workdir)
    assert wait_for(lambda: udp_bound(phone.host, phone.port), 5.0, 0.02)
    packets: list[Datagram] = []
    try:
        caller = dial(c, "100", "101", tmp_path / "uac", scenario=uac, timeout_s=15)
        answered = callee.result()
        assert caller.returncode == 0 and answered.returncode == 0, reports(caller, answered)
        while True:
            try:
                packets.append(rtp.recvfrom(2048))
            except BlockingIOError:
                break
    finally:
        rtp.close()
    return caller, answered, packets
