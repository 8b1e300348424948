"""baresip 1.0.0 (Debian ``baresip``) softphones for end-to-end media tests.

    phone = Baresip.start(tmp_path / "b", user="101", password=..., server=c.target,
                          sip_ip="127.0.0.4", source=tone_wav)
    ...
    phone.wait()                      # bounded; baresip quits after ``seconds``
    phone.received_sdps()             # SDP bodies of the SIP messages it received (-s trace)
    phone.recording()                 # what it decoded: sndfile's dump-*-dec.wav

Each phone gets a config directory (``-f``) with ``config`` and ``accounts``:
the codec modules of ``codec_modules`` only, ``g711`` by default (a codec is
really excluded only when its module is not loaded, PEERS.md; baresip's
aufile wants a WAV at the codec's rate and channels: 48 kHz stereo for opus,
16 kHz for G.722), ``aufile`` plays ``source`` as the microphone, ``aubridge``
is the player (it pulls the decoded audio in real time, nobody listens) and
``sndfile`` dumps what is sent and received into the directory.  The account
auto-answers.  ``mediaenc`` (``srtp``, ``srtp-mand``, ``dtls_srtp``) loads the
matching module and sets the account's media encryption.  ``dial`` places a
call at start (``-e "/dial ..."``); when the
source WAV ends baresip hangs up.  On a hold re-INVITE baresip re-creates its
aubridge player and its decoded dump stops: a held party is better a SIPp UAS.

Addresses: SIP listens on ``sip_ip`` (one loopback address per phone), but
baresip binds its RTP sockets to 0.0.0.0, so on loopback its RTP leaves from
127.0.0.1 whatever its SIP address is.  The switch drops RTP from an IP the
SDP did not name (RTP bleed), so the SDP names 127.0.0.1 (``net_interface``).
baresip's stdout is block-buffered into a file: read the log after ``wait``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

MEDIA_IP = "127.0.0.1"  # where baresip's RTP comes from on loopback
MODULES = "/usr/lib/baresip/modules"
_BLOCK = re.compile(r"\x1b\[36;1m#\s*\n(?P<proto>\w+) (?P<src>\S+) -> (?P<dst>\S+)\n(?P<msg>.*?)\x1b\[;m",
                    re.DOTALL)


def baresip_path() -> str:
    path = shutil.which("baresip")
    if path is None:
        pytest.fail("baresip is not installed: run `make test` (Debian package baresip)",
                    pytrace=False)
    return path


@dataclass
class Baresip:
    proc: subprocess.Popen[bytes]
    home: Path
    sip: str  # ip:port it listens on

    @classmethod
    def start(
        cls,
        home: Path,
        *,
        user: str,
        password: str,
        domain: str,
        server: str,
        sip_ip: str,
        sip_port: int,
        source: Path,
        seconds: float = 12,
        dial: str | None = None,
        codecs: str = "PCMU",
        rtp_ports: tuple[int, int] = (31700, 31899),
        mediaenc: str | None = None,
        codec_modules: tuple[str, ...] = ("g711",),
    ) -> Baresip:
        home.mkdir(parents=True)
        module = "" if mediaenc is None else (
            "module dtls_srtp.so\n" if mediaenc.startswith("dtls") else "module srtp.so\n")
        (home / "config").write_text(
            "poll_method epoll\n"
            f"sip_listen {sip_ip}:{sip_port}\n"
            f"net_interface {MEDIA_IP}\n"
            f"rtp_ports {rtp_ports[0]}-{rtp_ports[1]}\n"
            f"module_path {MODULES}\n"
            + "".join(f"module {m}.so\n" for m in codec_modules)
            + "module aufile.so\nmodule aubridge.so\nmodule sndfile.so\n"
            + f"{module}"
            "module_app account.so\nmodule_app menu.so\n"
            f"audio_source aufile,{source}\n"
            "audio_player aubridge,nobody\naudio_alert aubridge,nobody\n"
            f"snd_path {home}\n"
        )
        (home / "accounts").write_text(
            f'<sip:{user}@{domain}>;auth_pass={password};outbound="sip:{server}";regint=300;'
            f"answermode=auto;audio_codecs={codecs}"
            + ("" if mediaenc is None else f";mediaenc={mediaenc}") + "\n"
        )
        cmd = [baresip_path(), "-f", str(home), "-s", "-t", str(int(seconds))]
        if dial is not None:
            cmd += ["-e", f"/dial {dial}"]
        with open(home / "baresip.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        return cls(proc, home, f"{sip_ip}:{sip_port}")

    def wait(self, timeout: float = 30) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        path = self.home / "baresip.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def received(self) -> list[str]:
        """SIP messages this phone received, in order (from the ``-s`` trace)."""
        return [m["msg"].replace("\r\n", "\n") for m in _BLOCK.finditer(self.log())
                if m["dst"] == self.sip]

    def received_sdps(self) -> list[str]:
        return [msg.split("\n\n", 1)[1] for msg in self.received()
                if "application/sdp" in msg and "\n\n" in msg]

    def recording(self) -> Path:
        """What the phone received and decoded (sndfile)."""
        (path,) = self.home.glob("dump-*-dec.wav")
        return path

    def report(self) -> str:
        return f"--- baresip in {self.home} ---\n{self.log()[-6000:]}"
