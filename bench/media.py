"""Media relay benchmark: relayed G.711 calls per core, Centrala's relay vs a bare forwarder.

    python -m bench.media [--calls 200,400,700,1000,1400] [--seconds 5] [--runs 3]
                          [--kinds relay,forwarder,forwarder-protocol] [--json bench/media.json]

What is measured
----------------
N concurrent G.711 calls: 20 ms ptime, so 50 packets/s in each direction of
each call, 172-byte packets (12 bytes of RTP header, 160 of payload), i.e.
100 * N packets/s through the server under test.  Three servers, each a
fresh process alone on core 1 (``taskset -c 1``), serving the same load:

* ``relay``: Centrala's ``MediaRelay`` on uvloop, N streams opened with
  ``relay.open``, both remotes set as the B2BUA would from the SDPs; every
  packet goes through the real hot path (source check against the latch,
  RTP version check, counters; no PT map).  RTP and RTCP ports per side, as
  without rtcp-mux: 4 sockets per call;
* ``forwarder``: the ceiling, a bare uvloop UDP forwarder: two sockets per
  call, ``loop.add_reader`` + ``recv_into`` + ``sendto`` to a fixed address,
  no check of any kind;
* ``forwarder-protocol``: the same bare forwarder written with
  ``create_datagram_endpoint(sock=...)``, ``datagram_received`` and
  ``transport.sendto``: the other way of doing UDP on uvloop, measured to
  choose the relay's mechanism.

The load generator is this process, pinned to core 0 (``sched_setaffinity``,
as ``taskset -c 0``), synchronous (no event loop): one socket plays every
call's side a, another every side b; each 20 ms period is cut into 20 slots
of 1 ms and each call sends in its own slot, so the load is spread evenly as
real phones' is, not in bursts.  Each packet carries its send time
(``perf_counter_ns``) in its first 8 payload bytes; the generator reads every
packet relayed back, counts it per direction and records the delay: the two
loopback hops plus the server, an upper bound on the delay the server adds
(it includes the generator's own lateness in reading).  After the run the
generator drains for ``--drain-seconds``; anything not back by then is lost.

A step passes with zero loss, p99 delay < 5 ms and the generator having kept
its schedule (>= 97 % of the planned packet rate).  N steps up through
``--calls`` until a step fails: the largest N that passed is "calls per core
at zero loss", as long as the server's CPU share was near 1 (if the generator
ran out of CPU first, the report says so and the figure is a lower bound).

CPU is the server process's utime + stime from ``/proc/PID/stat`` over the
sending window (BENCH-NOTES gotcha 6: steal time).  "Packets per core" is the
packets relayed per CPU-second of the server: its capacity on one core,
comparable between servers even when the generator cannot saturate them.
The ratio relay / forwarder is taken at the same load: ``--runs`` runs of
each server, alternated, at the largest N both passed (``--compare-calls``
to choose it), min/median/max of packets per core; ``packets_per_s`` in the
JSON holds these per-run figures.  Target (from the issue): the relay at
>= 75 % of the bare forwarder's rate, about 700 G.711 calls per core.

Loopback only; every run is bounded by ``--seconds`` plus start-up and
drain, and every server process is stopped at the end of its run.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import os
import platform
import select
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import LOCAL_IP, CpuMeter, stop_process, summary, taskset

REPO_ROOT = Path(__file__).resolve().parents[1]
GENERATOR_CPU, SERVER_CPU = 0, 1
KINDS = ("relay", "forwarder", "forwarder-protocol")
PTIME_NS = 20_000_000  # 20 ms: 50 packets/s per direction
SLOTS = 20  # the period is cut into 1 ms slots, calls spread over them
PACKET_SIZE = 172  # RTP header + 160 bytes of G.711
SAMPLES = 160
MAX_P99_MS = 5.0
MIN_KEPT_SCHEDULE = 0.97
RELAY_PORTS = (16384, 32767)  # below Linux's ephemeral range, where the generator binds
SOCKET_BUFFER = 4 * 1024 * 1024
READY_TIMEOUT_S = 30.0
_STAMP = struct.Struct("!HIIq")  # at offset 2: seq, timestamp, SSRC, send time (payload)


# -- the servers under test (run in the child process) ---------------------------------
def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def _text(addr: tuple[str, int]) -> str:
    return f"{addr[0]}:{addr[1]}"


def _bare_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind((LOCAL_IP, 0))
    return sock


def _forward(recv_into: Callable[[bytearray], int], sendto: Callable[..., int],
             dst: tuple[str, int], buf: bytearray, view: memoryview) -> None:
    try:
        n = recv_into(buf)
        sendto(view[:n], dst)
    except OSError:
        pass


class _ForwardProtocol(asyncio.DatagramProtocol):
    def __init__(self, dst: tuple[str, int]) -> None:
        self.dst = dst
        self.out: asyncio.DatagramTransport | None = None

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.out.sendto(data, self.dst)  # type: ignore[union-attr]


async def _serve(kind: str, calls: int, peer_a: tuple[str, int], peer_b: tuple[str, int]
                 ) -> dict[str, int]:
    """Set up ``calls`` calls, print their ports, relay until stdin closes."""
    loop = asyncio.get_running_loop()
    ports: list[tuple[int, int]] = []
    keep: list[Any] = []
    if kind == "relay":
        from media.ports import PortAllocator
        from media.relay import MediaRelay

        relay = MediaRelay(PortAllocator(*RELAY_PORTS, LOCAL_IP))
        for i in range(calls):
            stream = relay.open(i)
            stream.set_remote("a", peer_a)
            stream.set_remote("b", peer_b)
            keep.append(stream)
            ports.append((stream.local("a")[1], stream.local("b")[1]))
    else:
        buf = bytearray(65535)
        view = memoryview(buf)
        for _ in range(calls):
            sa, sb = _bare_socket(), _bare_socket()
            keep += [sa, sb]
            ports.append((sa.getsockname()[1], sb.getsockname()[1]))
            if kind == "forwarder":
                loop.add_reader(sa.fileno(), _forward, sa.recv_into, sb.sendto, peer_b, buf, view)
                loop.add_reader(sb.fileno(), _forward, sb.recv_into, sa.sendto, peer_a, buf, view)
            else:
                pa, pb = _ForwardProtocol(peer_b), _ForwardProtocol(peer_a)
                ta, _ = await loop.create_datagram_endpoint(lambda p=pa: p, sock=sa)  # type: ignore[misc]
                tb, _ = await loop.create_datagram_endpoint(lambda p=pb: p, sock=sb)  # type: ignore[misc]
                pa.out, pb.out = tb, ta
    print(json.dumps({"ports": ports}), flush=True)
    done: asyncio.Future[None] = loop.create_future()

    def stdin_closed() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(sys.stdin.fileno(), stdin_closed)
    await done
    if kind != "relay":
        return {}
    sides = [s.counters(side) for s in keep for side in ("a", "b")]
    return {"dropped": sum(c.dropped for c in sides),
            "relayed": sum(c.packets_out for c in sides)}


def serve_main(args: argparse.Namespace) -> None:
    import uvloop

    counters = uvloop.run(_serve(args.serve, args.calls[0], _addr(args.peer_a), _addr(args.peer_b)))
    print(json.dumps(counters), flush=True)


# -- the load generator (this process) -------------------------------------------------
@dataclass
class Step:
    kind: str
    calls: int
    seconds: float
    sent: int
    received: int
    lost: int
    offered_pps: float  # what the generator managed to send
    relayed_pps: float
    delay_p50_ms: float
    delay_p99_ms: float
    delay_max_ms: float
    server_cpu_share: float
    generator_cpu_share: float
    packets_per_core: float  # relayed packets per CPU-second of the server
    server_dropped: int | None

    @property
    def kept_schedule(self) -> bool:
        return self.offered_pps >= MIN_KEPT_SCHEDULE * 2 * self.calls * 1e9 / PTIME_NS

    @property
    def passed(self) -> bool:
        return self.lost == 0 and self.delay_p99_ms < MAX_P99_MS and self.kept_schedule


class Generator:
    """Plays side a of every call on one socket and side b on another."""

    def __init__(self) -> None:
        self.a, self.b = self._socket(), self._socket()
        self.buf = bytearray(2048)

    @staticmethod
    def _socket() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        sock.bind((LOCAL_IP, 0))
        return sock

    def close(self) -> None:
        self.a.close()
        self.b.close()

    def run(self, kind: str, calls: int, seconds: float, drain_s: float) -> Step:
        proc, ports = self._start_server(kind, calls)
        try:
            step = self._load(kind, calls, ports, seconds, drain_s, proc.pid)
        finally:
            assert proc.stdin is not None
            proc.stdin.close()
            tail = proc.stdout.read() if proc.stdout is not None else ""
            stop_process(proc)  # type: ignore[arg-type]
        counters = json.loads(tail.strip().splitlines()[-1]) if tail.strip() else {}
        step.server_dropped = counters.get("dropped")
        return step

    def _start_server(self, kind: str, calls: int
                      ) -> tuple[subprocess.Popen[str], list[tuple[int, int]]]:
        cmd = [*taskset(SERVER_CPU), sys.executable, "-m", "bench.media", "--serve", kind,
               "--calls", str(calls), "--peer-a", _text(self.a.getsockname()),
               "--peer-b", _text(self.b.getsockname())]
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], READY_TIMEOUT_S)
        line = proc.stdout.readline() if ready else ""
        if not line:
            stop_process(proc)  # type: ignore[arg-type]
            raise RuntimeError(f"{kind} server with {calls} calls did not start")
        return proc, [tuple(p) for p in json.loads(line)["ports"]]  # type: ignore[misc]

    def _load(self, kind: str, calls: int, ports: Sequence[tuple[int, int]], seconds: float,
              drain_s: float, pid: int) -> Step:
        delays = array.array("q")
        slots = [[(i, (LOCAL_IP, ports[i][0]), (LOCAL_IP, ports[i][1]))
                  for i in range(s, calls, SLOTS)] for s in range(SLOTS)]
        packet = bytearray(PACKET_SIZE)
        packet[0] = 0x80  # V=2, PT 0 (PCMU)
        pack, now_ns = _STAMP.pack_into, time.perf_counter_ns
        send_a, send_b = self.a.sendto, self.b.sendto
        meter, me = CpuMeter(pid, tree=False), CpuMeter(os.getpid(), tree=False)
        total = int(seconds * 1e9 / PTIME_NS) * SLOTS
        sent = 0
        meter.start()
        me.start()
        start = now_ns() + 5_000_000
        for k in range(total):
            self._drain(delays, start + k * (PTIME_NS // SLOTS))
            seq = k // SLOTS
            for i, to_a, to_b in slots[k % SLOTS]:
                pack(packet, 2, seq & 0xFFFF, (seq * SAMPLES) & 0xFFFFFFFF, i, now_ns())
                send_a(packet, to_a)
                pack(packet, 2, seq & 0xFFFF, (seq * SAMPLES) & 0xFFFFFFFF, i, now_ns())
                send_b(packet, to_b)
                sent += 2
        wall_ns = now_ns() - start
        meter.stop()
        me.stop()
        self._drain(delays, now_ns() + int(drain_s * 1e9))
        return self._step(kind, calls, sent, delays, wall_ns / 1e9, meter, me)

    def _drain(self, delays: array.array[int], until_ns: int) -> None:
        """Read everything relayed back until ``until_ns``, recording each delay."""
        buf, now_ns, unpack = self.buf, time.perf_counter_ns, struct.Struct("!q").unpack_from
        socks = [self.a, self.b]
        while True:
            for sock in socks:
                recv_into = sock.recv_into
                while True:
                    try:
                        recv_into(buf)
                    except BlockingIOError:
                        break
                    delays.append(now_ns() - unpack(buf, 12)[0])
            left = until_ns - now_ns()
            if left <= 0:
                return
            select.select(socks, [], [], left / 1e9)

    @staticmethod
    def _step(kind: str, calls: int, sent: int, delays: array.array[int], wall: float,
              meter: CpuMeter, me: CpuMeter) -> Step:
        ordered = sorted(delays)

        def pct(q: float) -> float:
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6 if ordered else 0.0

        received = len(ordered)
        return Step(
            kind, calls, round(wall, 2), sent, received, sent - received,
            sent / wall, received / wall, pct(0.5), pct(0.99), pct(1.0),
            round(meter.share, 3), round(me.share, 3),
            received / meter.cpu if meter.cpu > 0 else 0.0, None,
        )


# -- the method ------------------------------------------------------------------------
def search(gen: Generator, kind: str, calls: Sequence[int], args: argparse.Namespace
           ) -> list[Step]:
    """Step N up until a step fails (BENCH-NOTES gotcha 5: search by stepping)."""
    steps = []
    for n in calls:
        step = gen.run(kind, n, args.seconds, args.drain_seconds)
        steps.append(step)
        print(_step_line(step), flush=True)
        if not step.passed:
            break
    return steps


def compare(gen: Generator, kinds: Sequence[str], calls: int, args: argparse.Namespace
            ) -> dict[str, list[Step]]:
    """``--runs`` runs of each server at the same load, alternated."""
    runs: dict[str, list[Step]] = {k: [] for k in kinds}
    for _ in range(args.runs):
        for kind in kinds:
            step = gen.run(kind, calls, args.seconds, args.drain_seconds)
            runs[kind].append(step)
            print(_step_line(step, "compare"), flush=True)
    return runs


def _step_line(s: Step, what: str = "step") -> str:
    verdict = "ok" if s.passed else ("generator late" if not s.kept_schedule else "FAIL")
    return (f"{what:7} {s.kind:18} N={s.calls:5} {s.relayed_pps:9,.0f} pkt/s lost={s.lost:6} "
            f"p50={s.delay_p50_ms:6.2f} p99={s.delay_p99_ms:6.2f} ms "
            f"cpu server={s.server_cpu_share:4.0%} gen={s.generator_cpu_share:4.0%} "
            f"{s.packets_per_core:9,.0f} pkt/core-s  {verdict}")


def _max_passed(steps: Sequence[Step]) -> Step | None:
    passed = [s for s in steps if s.passed]
    return max(passed, key=lambda s: s.calls) if passed else None


def report(data: dict[str, Any]) -> str:
    header = (f"{'server':19} {'max N passed':>12}  {'server CPU':>10}  "
              f"{'packets/core-s (min/median/max)':>32}  {'calls/core (projected)':>22}")
    lines = [header]
    for kind in data["kinds"]:
        part = data[kind.replace("-", "_")]
        best, per_core = part.get("max_calls"), part.get("packets_per_s") or []
        cpu = f"{part['max_calls_cpu_share']:.0%}" if best else "-"
        stats = "/".join(f"{v:,.0f}" for v in summary(per_core)) if per_core else "-"
        projected = f"{summary(per_core)[1] / 100:,.0f}" if per_core else "-"
        lines.append(f"{kind:19} {best or '-':>12}  {cpu:>10}  {stats:>32}  {projected:>22}")
    if data.get("ratio") is not None:
        lines.append(f"relay / forwarder at N={data['compare_calls']}: {data['ratio']:.0%} "
                     "(target >= 75 %)")
    if data.get("generator_limited"):
        lines.append("note: the generator could not saturate the server (its CPU share is near "
                     "1, the server's is not): the max N are lower bounds; packets per core "
                     "still hold")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    kinds = [k for k in args.kinds.split(",") if k]
    data: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "kinds": kinds,
    }
    if hasattr(os, "sched_setaffinity") and taskset(GENERATOR_CPU):
        os.sched_setaffinity(0, {GENERATOR_CPU})
    gen = Generator()
    try:
        found = {kind: search(gen, kind, args.calls, args) for kind in kinds}
        passed_all = [_max_passed(found[k]) for k in kinds]
        compare_calls = args.compare_calls or min(
            (s.calls for s in passed_all if s is not None), default=args.calls[0])
        runs = compare(gen, kinds, compare_calls, args) if args.runs else {}
    finally:
        gen.close()
    for kind in kinds:
        best = _max_passed(found[kind])
        data[kind.replace("-", "_")] = {
            "steps": [asdict(s) for s in found[kind]],
            "max_calls": best.calls if best else None,
            "max_calls_cpu_share": best.server_cpu_share if best else None,
            "runs": [asdict(s) for s in runs.get(kind, [])],
            "packets_per_s": [s.packets_per_core for s in runs.get(kind, [])],
        }
    data["compare_calls"] = compare_calls
    rates = {k: data[k.replace("-", "_")]["packets_per_s"] for k in ("relay", "forwarder")}
    if all(rates.get(k) for k in ("relay", "forwarder")):
        data["ratio"] = summary(rates["relay"])[1] / summary(rates["forwarder"])[1]
    every = [s for steps in found.values() for s in steps]
    data["generator_limited"] = any(
        not s.kept_schedule or (s.generator_cpu_share > 0.9 and s.server_cpu_share < 0.9)
        for s in every)
    return data


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--calls", type=lambda t: [int(x) for x in t.split(",") if x.strip()],
                   default=[200, 400, 700, 1000, 1400], help="N to step through, ascending")
    p.add_argument("--seconds", type=float, default=5.0, help="length of a run")
    p.add_argument("--drain-seconds", type=float, default=0.3,
                   help="wait for the last packets after a run; later ones count as lost")
    p.add_argument("--runs", type=int, default=3, help="runs of each server for the ratio")
    p.add_argument("--compare-calls", type=int,
                   help="N for the ratio (default: the largest N every server passed)")
    p.add_argument("--kinds", default=",".join(KINDS), help="servers to measure")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    p.add_argument("--serve", choices=KINDS, help=argparse.SUPPRESS)  # the child process
    p.add_argument("--peer-a", help=argparse.SUPPRESS)
    p.add_argument("--peer-b", help=argparse.SUPPRESS)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if args.serve:
        serve_main(args)
        return
    data = run(args)
    print(report(data))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
