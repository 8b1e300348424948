"""Transcoding benchmark: CPU per transcoded PCMU<->Opus call, and the calls per core it implies.

    python -m bench.transcode [--seconds 30] [--runs 5] [--cpu 1] [--json bench/transcode.json]

What is measured
----------------
One transcoded call is a ``media.transcode.TranscodedStream`` between a
PCMU leg (side a, PT 0, telephone-event 101) and an Opus leg (side b,
PT 111, mono 32 kbit/s): both directions at 50 packets/s each, as two
phones with 20 ms ptime send.  The work per 20 ms is what the relay would
drive: ``push`` the PCMU packet from a and the Opus packet from b (RTP
parse, jitter buffer) and ``tick`` (jitter buffer out, decode, resample
8 <-> 48 kHz, encode, RTP build), i.e. the whole per-call cost of
transcoding except the socket calls, which are the relay's and measured by
``bench/media.py``.

The load is synthetic voice, not a sine (Opus works harder on a rich
signal): harmonics of a 140 Hz pitch up to 3.5 kHz under a 4 Hz syllable
envelope, plus noise, generated once at 8 and 48 kHz and encoded into the
two phones' packets before the clock starts; packets carry consecutive
sequence numbers and timestamps.  The clock given to the transcoder is
fake (frame k at k * 20 ms), so the loop runs flat out and measures CPU,
not waiting.

In-process, one thread, pinned to ``--cpu`` (``sched_setaffinity``, as
``taskset -c``): each run transcodes ``--seconds`` of call audio through a
fresh call and reads ``time.thread_time()`` around the loop.  ``--runs``
runs after one warm-up run, reported as min/median/max of

* CPU per call: CPU seconds per second of call, i.e. the share of one core
  a transcoded call takes; calls per core is its inverse (no headroom kept,
  and the relay's own cost per packet comes on top);
* the same for each direction alone (PCMU->Opus, Opus->PCMU), to show where
  the time goes;
* the processing time of one 20 ms step of the call (both pushes and the
  tick), p50 and p99 in microseconds of wall clock: the delay transcoding
  adds beyond the jitter buffer's (on a shared machine, p99 also shows
  other processes preempting this one).

Memory per transcoded call: RSS of this process before and after opening
``--memory-calls`` calls and running each for a few frames (FFmpeg's codec
contexts live outside the Python heap, so tracemalloc would miss them),
divided by the number of calls.  Everything runs in well under a minute.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import random
import time
from array import array
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import rss_bytes, summary
from media.codecs import OPUS, PCMU, AudioCodec
from media.rtp import RtpPacket
from media.transcode import LegCodec, TranscodedStream, Transcoder

FRAME_S = 0.02
ULAW_LEG = LegCodec(PCMU, 0, 101)
OPUS_LEG = LegCodec(OPUS, 111, 101)
VOICE_SECONDS = 2  # of synthetic voice, looped


@dataclass
class Run:
    call_seconds: float
    cpu_per_call: float  # CPU seconds per call-second, both directions
    cpu_ulaw_to_opus: float
    cpu_opus_to_ulaw: float
    step_p50_us: float
    step_p99_us: float

    @property
    def calls_per_core(self) -> float:
        return 1 / self.cpu_per_call


def voice(rate: int, seconds: float, seed: int = 7) -> bytes:
    """Synthetic voiced speech: harmonics of 140 Hz (1/h roll-off), a 4 Hz envelope, noise."""
    rnd = random.Random(seed)
    harmonics = [(140.0 * h, 1.0 / h, rnd.uniform(0, 2 * math.pi)) for h in range(1, 26)]
    out = array("h")
    for i in range(int(rate * seconds)):
        t = i / rate
        envelope = 0.55 + 0.45 * math.sin(2 * math.pi * 4 * t)
        value = sum(a * math.sin(2 * math.pi * f * t + p) for f, a, p in harmonics)
        out.append(max(-32767, min(32767, int(3000 * envelope * value + rnd.gauss(0, 300)))))
    return out.tobytes()


def packets(leg: LegCodec, pcm: bytes, frames: int, ssrc: int) -> list[bytes]:
    """``frames`` RTP packets of ``leg`` carrying ``pcm``, looped."""
    codec: AudioCodec = leg.codec
    encoder = codec.encoder()
    loop = len(pcm) // codec.frame_bytes
    payloads = [encoder.encode(pcm[k * codec.frame_bytes : (k + 1) * codec.frame_bytes])
                for k in range(loop)]
    return [bytes(RtpPacket(payload_type=leg.payload_type, sequence_number=k & 0xFFFF,
                            timestamp=(k * codec.timestamp_step) & 0xFFFFFFFF, ssrc=ssrc,
                            payload=payloads[k % loop]))
            for k in range(frames)]


def run_call(ulaw: list[bytes], opus: list[bytes]) -> tuple[float, list[int]]:
    """(CPU seconds, per-step nanoseconds) of one call through every packet."""
    stream = TranscodedStream(ULAW_LEG, OPUS_LEG)
    steps = []
    clock = time.perf_counter_ns
    cpu0 = time.thread_time()
    for k, (a, b) in enumerate(zip(ulaw, opus, strict=True)):
        now = k * FRAME_S
        t0 = clock()
        stream.push("a", a, now)
        stream.push("b", b, now)
        stream.tick(now)
        steps.append(clock() - t0)
    return time.thread_time() - cpu0, steps


def run_direction(src: LegCodec, dst: LegCodec, data: list[bytes]) -> float:
    transcoder = Transcoder(src, dst)
    cpu0 = time.thread_time()
    for k, packet in enumerate(data):
        transcoder.push(packet, k * FRAME_S)
        transcoder.tick(k * FRAME_S)
    return time.thread_time() - cpu0


def one_run(ulaw: list[bytes], opus: list[bytes]) -> Run:
    seconds = len(ulaw) * FRAME_S
    gc.collect()
    cpu, steps = run_call(ulaw, opus)
    steps.sort()
    return Run(
        call_seconds=seconds,
        cpu_per_call=cpu / seconds,
        cpu_ulaw_to_opus=run_direction(ULAW_LEG, OPUS_LEG, ulaw) / seconds,
        cpu_opus_to_ulaw=run_direction(OPUS_LEG, ULAW_LEG, opus) / seconds,
        step_p50_us=steps[len(steps) // 2] / 1000,
        step_p99_us=steps[int(len(steps) * 0.99)] / 1000,
    )


def memory_per_call(ulaw: list[bytes], opus: list[bytes], calls: int) -> float:
    gc.collect()
    before = rss_bytes(os.getpid())
    streams = []
    for _ in range(calls):
        stream = TranscodedStream(ULAW_LEG, OPUS_LEG)
        for k in range(10):  # fill the jitter buffers, FIFOs and codec states
            stream.push("a", ulaw[k], k * FRAME_S)
            stream.push("b", opus[k], k * FRAME_S)
            stream.tick(k * FRAME_S)
        streams.append(stream)
    gc.collect()
    return (rss_bytes(os.getpid()) - before) / calls


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    frames = round(args.seconds / FRAME_S)
    ulaw = packets(ULAW_LEG, voice(PCMU.sample_rate, VOICE_SECONDS), frames, 0x11111111)
    opus = packets(OPUS_LEG, voice(OPUS.sample_rate, VOICE_SECONDS), frames, 0x22222222)
    one_run(ulaw[:250], opus[:250])  # warm-up: imports, FFmpeg's first allocations
    runs = [one_run(ulaw, opus) for _ in range(args.runs)]
    per_call = [r.cpu_per_call for r in runs]
    return {
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "call": "PCMU (PT 0) <-> opus/48000/2 (PT 111, mono, 32 kbit/s), 20 ms, 50 pps each way",
        "runs": [asdict(r) | {"calls_per_core": r.calls_per_core} for r in runs],
        "cpu_per_call": summary(per_call),
        "calls_per_core": summary([1 / c for c in per_call]),
        "cpu_ulaw_to_opus": summary([r.cpu_ulaw_to_opus for r in runs]),
        "cpu_opus_to_ulaw": summary([r.cpu_opus_to_ulaw for r in runs]),
        "step_p50_us": summary([r.step_p50_us for r in runs]),
        "step_p99_us": summary([r.step_p99_us for r in runs]),
        "memory_per_call_bytes": memory_per_call(ulaw, opus, args.memory_calls),
    }


def report(data: dict[str, Any]) -> str:
    def fmt(values: list[float], scale: float = 1.0, unit: str = "") -> str:
        return " / ".join(f"{v * scale:,.2f}{unit}" for v in values)

    return "\n".join([
        f"transcoded call: {data['call']}",
        f"CPU per call (min/median/max): {fmt(data['cpu_per_call'], 100, ' %')} of a core",
        f"  PCMU -> Opus: {fmt(data['cpu_ulaw_to_opus'], 100, ' %')}",
        f"  Opus -> PCMU: {fmt(data['cpu_opus_to_ulaw'], 100, ' %')}",
        f"calls per core (min/median/max): {fmt(data['calls_per_core'])}",
        f"one 20 ms step, p50: {fmt(data['step_p50_us'], 1, ' us')}",
        f"one 20 ms step, p99: {fmt(data['step_p99_us'], 1, ' us')} (wall clock)",
        f"memory per call: {data['memory_per_call_bytes'] / 1024:,.0f} KiB",
    ])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--seconds", type=float, default=30.0, help="call audio per run")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--cpu", type=int, default=1 if (os.cpu_count() or 1) > 1 else None,
                   help="pin to this CPU")
    p.add_argument("--memory-calls", type=int, default=100)
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    data = run(args)
    print(report(data))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
