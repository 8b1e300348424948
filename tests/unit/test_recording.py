"""Call recording wired into calls (switch/b2bua/recording.py): which calls are
recorded, where their files go (one directory per tenant), the recorder following
a call through a re-INVITE and sharing a relay side with DTMF, the file finalised
however the call ends, the CDR naming it, and files a crash left open repaired.
Calls run through ``Call`` with a relay without sockets (test_media_features.py);
the recorder runs on a real event loop, fed paced packets."""

from __future__ import annotations

import asyncio
import struct
import wave
from array import array
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any

import pytest

from media.codecs import OPUS, PCMA, PCMU
from media.dtmf import TelephoneEvent
from media.recorder import UNKNOWN_SIZE, WAV_HEADER_SIZE, wav_header
from media.rtp import RtpPacket
from media.transcode import LegCodec
from switch.b2bua.call import Call
from switch.b2bua.manager import CallManager
from switch.b2bua.plan import CallContext
from switch.b2bua.recording import RecordingRules, recording_path, repair_open
from tests.unit.audio_support import dominant
from tests.unit.test_anchor import config, local_address
from tests.unit.test_call import FakeEnv
from tests.unit.test_media_features import (
    A_SDP,
    B_OPUS,
    B_PCMU,
    TENANT,
    FeatureFakeStream,
    answer_call,
    feature_call,
    reinvite,
)
from tests.unit.test_recorder import channel, rtp

ULAW, ALAW = LegCodec(PCMU, 0), LegCodec(PCMA, 8)
REL = PurePosixPath("recordings/demo.test/2026-11-23/call.wav")
BOTH_G711 = {**TENANT, "extensions": [{**e, "codecs": ["PCMU", "PCMA"]}  # type: ignore[attr-defined]
                                      for e in TENANT["extensions"]]}  # type: ignore[index]


# -- which calls, where -------------------------------------------------------------------
def test_rules_record_a_tenants_calls_or_an_extensions_calls_only() -> None:
    ext = {"name": "X", "password": "pw"}
    rules = RecordingRules(config([
        {"domain": "all.test", "name": "All", "recording": True,
         "extensions": [{"number": "100", **ext}]},
        {"domain": "some.test", "name": "Some", "extensions": [
            {"number": "200", "recording": True, **ext}, {"number": "201", **ext}]},
        {"domain": "none.test", "name": "None", "extensions": [{"number": "200", **ext}]},
    ]))
    assert rules.applies("all.test", (None, "trunk:carrier"))  # every call of the tenant
    assert rules.applies("some.test", ("200", "201"))  # the recorded extension calls
    assert rules.applies("some.test", (None, "200"))  # ...or answers a trunk's call
    assert not rules.applies("some.test", ("201", "trunk:carrier"))
    assert not rules.applies("none.test", ("200", "100"))  # another tenant's 200 records


def test_each_tenant_has_its_own_directory_and_names_are_one_path_component() -> None:
    when = datetime(2026, 11, 23, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    assert recording_path("Demo.Test", "0a1b", when) == PurePosixPath(
        "recordings/demo.test/2026-11-23/0a1b.wav")
    other = recording_path("other.test", "0a1b", when)
    assert other.parts[1] == "other.test" and other.parts[1:] != REL.parts[1:]
    for evil in ("..", "../x", "a/../../b", "."):
        path = recording_path(evil, evil, when)
        assert len(path.parts) == 4 and not {"..", "."} & set(path.parts), path
        assert all("/" not in part for part in path.parts)


# -- a call recorded --------------------------------------------------------------------------
def feed(stream: FeatureFakeStream, side: str, packets: list[bytes]) -> None:
    watcher = stream.watchers.get(side)
    assert watcher is not None, f"nobody watches side {side}"
    for packet in packets:
        watcher(memoryview(packet))


async def paced(stream: FeatureFakeStream, a: list[bytes], b: list[bytes]) -> None:
    """Both sides' packets, one of each every 20 ms, as the relay would show them."""
    for x, y in zip(a, b, strict=True):
        feed(stream, "a", [x])
        feed(stream, "b", [y])
        await asyncio.sleep(0.02)


def read_stereo(path: Path) -> tuple[bytes, bytes, int]:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (2, 2)
        assert w.getnframes() * 4 + WAV_HEADER_SIZE == path.stat().st_size  # finalised
        pcm = w.readframes(w.getnframes())
        return channel(pcm, 0), channel(pcm, 1), w.getframerate()


async def _recorded_through_a_codec_change(tmp_path: Path) -> tuple[Call, FakeEnv, list[Any]]:
    loop = asyncio.get_running_loop()
    call, env, relay = feature_call(loop, [BOTH_G711])
    answer_call(call, env, B_PCMU)  # B has no telephone-event: A's digits are watched
    (stream,) = relay.streams
    dtmf_watcher = stream.watchers["a"]
    assert call.media.record(tmp_path, REL)
    assert stream.watchers["a"] is not dtmf_watcher  # DTMF and the recorder share side a
    await paced(stream, rtp(ULAW, 1000.0, 30), rtp(ULAW, 500.0, 30, ssrc=9))
    digits_before = len(env.requests)
    for end in (False, True):  # a key press on side a still becomes an INFO
        event = TelephoneEvent(4, end, 10, 800)
        feed(stream, "a", [bytes(RtpPacket(payload_type=101, sequence_number=5, timestamp=800,
                                           ssrc=7, payload=bytes(event)))])
    infos = [r.method for r, _, _ in env.requests[digits_before:]]
    reinvite(call, env, A_SDP.replace(b" 0 101", b" 8 101"), B_PCMU.replace(b" 0\r\n", b" 8\r\n"),
             4)  # both legs move to PCMA
    await paced(stream, rtp(ALAW, 1000.0, 30, seq=2000), rtp(ALAW, 500.0, 30, ssrc=9, seq=2000))
    call.hangup(9.0, "caller", 200)  # BYE: the media is released, the file finalised
    return call, env, [stream, infos]


def test_a_call_is_recorded_in_stereo_through_a_codec_change_and_finalised_at_bye(
    tmp_path: Path
) -> None:
    call, _, (stream, infos) = asyncio.run(_recorded_through_a_codec_change(tmp_path))
    assert infos == ["INFO"]
    assert call.record.recording == str(REL)  # kept for the CDR when the call ended
    assert not list((tmp_path / "recordings" / ".open").iterdir())  # no marker left
    assert stream.closed and all(w is None for w in stream.watchers.values())
    left, right, rate = read_stereo(tmp_path / REL)
    assert rate == 8000 and len(left) >= 2 * 8000 * 0.9  # ~1.2 s of call, latency included
    half = len(left) // 2 // 2 * 2
    for part in (slice(800, half - 800), slice(half + 800, len(left) - 4000)):  # PCMU, PCMA
        assert dominant(left[part], 8000) == 1000.0 and dominant(right[part], 8000) == 500.0


async def _transcoded(tmp_path: Path) -> Call:
    loop = asyncio.get_running_loop()
    call, env, relay = feature_call(loop)  # 100 speaks PCMU, 101 opus only: transcoded
    answer_call(call, env, B_OPUS)
    assert call.media.record(tmp_path, REL)
    opus = LegCodec(OPUS, 111)
    await paced(relay.streams[0], rtp(ULAW, 1000.0, 30), rtp(opus, 500.0, 30, ssrc=9))
    call.hangup(9.0, "callee", 200)
    return call


def test_a_transcoded_call_is_recorded_each_side_in_its_own_codec(tmp_path: Path) -> None:
    asyncio.run(_transcoded(tmp_path))
    left, right, rate = read_stereo(tmp_path / REL)
    assert rate == 16000  # a wideband leg: the file keeps 16 kHz
    part = slice(3200, len(left) - 6400)
    assert dominant(left[part], rate) == 1000.0 and dominant(right[part], rate) == 500.0


async def _record_then(tmp_path: Path, end: Callable[[Call], object], before_answer: bool
                       ) -> tuple[Call, FeatureFakeStream]:
    loop = asyncio.get_running_loop()
    call, env, relay = feature_call(loop, [BOTH_G711])
    if before_answer:  # no codec known yet: it starts when the answer is applied
        assert call.media.record(tmp_path, REL)
        assert not (tmp_path / REL).exists()
    answer_call(call, env, B_PCMU)
    if not before_answer:
        call.media.record(tmp_path, REL)
    (stream,) = relay.streams
    assert (tmp_path / "recordings" / ".open" / call.ref).read_text().strip() == str(REL)
    await paced(stream, rtp(ULAW, 1000.0, 10), rtp(ULAW, 500.0, 10, ssrc=9))
    end(call)
    return call, stream


@pytest.mark.parametrize(("how", "before_answer"), [
    ("a handler fails", True), ("the session ends", False), ("a handler fails", False)])
def test_the_recording_is_finalised_however_the_call_ends(
    tmp_path: Path, how: str, before_answer: bool
) -> None:
    def fail() -> list[object]:
        raise RuntimeError("a bug in a call handler")

    def end(call: Call) -> None:
        if how == "a handler fails":
            call.guarded(fail, 8.0)  # the call is aborted with a 500/BYE
        else:
            call.media.release()
    call, stream = asyncio.run(_record_then(tmp_path, end, before_answer))
    recorded = call.record.recording or call.media.recorded()  # ended, or only released
    assert stream.closed and str(recorded) == str(REL)
    left, right, _ = read_stereo(tmp_path / REL)
    assert dominant(left[800:2400], 8000) == 1000.0 and dominant(right[800:2400], 8000) == 500.0
    assert not (tmp_path / "recordings" / ".open" / call.ref).exists()


def test_a_call_released_before_its_answer_records_nothing(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    try:
        call, _, _ = feature_call(loop, [BOTH_G711])
        assert call.media.record(tmp_path, REL)
        call.media.release()
        assert call.media.recorded() is None and not (tmp_path / REL).exists()
        assert not call.media.record(tmp_path, REL)  # over: nothing starts any more
    finally:
        loop.close()


# -- the manager: which answered call, and its CDR ------------------------------------------------
def manager(tmp_path: Path, tenants: list[object]) -> CallManager:
    """A call manager with just what ``answered`` and the CDR need."""
    busy = SimpleNamespace(enter=lambda *_: None, leave=lambda *_: None)
    core = SimpleNamespace(settings=SimpleNamespace(timers=None))
    return CallManager(
        config(tenants), core, None, SimpleNamespace(router=None, busy=busy),  # type: ignore[arg-type]
        None, None, local_address=local_address, call_at=None, send=None,  # type: ignore[arg-type]
        now=lambda: 9.0, spawn=None, state_dir=tmp_path)  # type: ignore[arg-type]


async def _managed(tmp_path: Path, callee_records: bool) -> tuple[Any, Call]:
    loop = asyncio.get_running_loop()
    extensions = [{**e, "recording": callee_records and e["number"] == "101"}
                  for e in BOTH_G711["extensions"]]  # type: ignore[attr-defined]
    tenants: list[object] = [{**BOTH_G711, "extensions": extensions}]
    mgr = manager(tmp_path, tenants)
    call, env, relay = feature_call(loop, tenants)
    ctx = CallContext("demo.test", '"A" <sip:100@demo.test>', "100", "101", None)  # type: ignore[arg-type]
    call.data["ctx"] = ctx
    answer_call(call, env, B_PCMU)
    mgr.answered(call)  # what the call's env does at the 2xx
    if callee_records:
        await paced(relay.streams[0], rtp(ULAW, 1000.0, 5), rtp(ULAW, 500.0, 5, ssrc=9))
    else:
        assert relay.streams[0].watchers.get("b") is None  # no recorder watches
    call.hangup(9.0, "caller", 200)
    return mgr._cdr(call, ctx), call


def test_the_cdr_names_the_recording_of_a_recorded_extensions_call(tmp_path: Path) -> None:
    cdr, call = asyncio.run(_managed(tmp_path, callee_records=True))
    (path,) = (tmp_path / "recordings" / "demo.test").glob("*/*.wav")
    assert cdr.recording == str(path.relative_to(tmp_path))
    assert path.name == f"{call.ref}.wav"
    assert cdr.recording.startswith("recordings/demo.test/")


def test_a_call_nobody_records_has_no_file_and_no_cdr_recording(tmp_path: Path) -> None:
    cdr, _ = asyncio.run(_managed(tmp_path, callee_records=False))
    assert cdr.recording is None and not (tmp_path / "recordings").exists()


# -- crash repair ----------------------------------------------------------------------------
def test_recordings_left_open_by_a_crash_are_repaired_at_start(tmp_path: Path) -> None:
    open_dir = tmp_path / "recordings" / ".open"
    open_dir.mkdir(parents=True)
    path = tmp_path / REL
    path.parent.mkdir(parents=True)
    pcm = array("h", [1000, -1000] * 800).tobytes()
    path.write_bytes(wav_header(8000, 2, None) + pcm + b"\x01")  # a frame cut short
    (open_dir / "call").write_text(f"{REL}\n")
    outside = tmp_path / "outside.wav"
    outside.write_bytes(wav_header(8000, 2, None) + pcm)
    (open_dir / "escape").write_text("recordings/../outside.wav\n")
    (tmp_path / "recordings" / "junk.wav").write_bytes(b"not a wav file at all" * 4)
    (open_dir / "junk").write_text("recordings/junk.wav\n")
    assert repair_open(tmp_path) == [path]
    assert list(open_dir.iterdir()) == []
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getnframes()) == (2, 800)
    assert struct.unpack_from("<I", outside.read_bytes(), 40)[0] == UNKNOWN_SIZE  # untouched
    assert repair_open(tmp_path) == [] and repair_open(tmp_path / "nowhere") == []
