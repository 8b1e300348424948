"""The benchmark report: ``bench/RESULTS.md`` and ``bench/results.json``.

    python -m bench.results [--dir bench] [--md bench/RESULTS.md] [--json bench/results.json]

Reads the JSON each benchmark of ``make bench`` wrote (``parser.json``,
``register.json``, ``cps.json``, ``media.json`` and ``transcode.json``, the
cost of a transcoded call, which has no target) and writes one report: the
machine, the command lines, every figure as min / median / max of its runs
with the ratio to the peer measured
in the same run, and the targets of the feature issues, each met or NOT met
with the measured ratio.  A missing file is reported as "not measured yet".

``media.json`` gives the relay target through its per-run packets per
core-second of Centrala's relay and of the bare uvloop forwarder
(``relay.packets_per_s``, ``forwarder.packets_per_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.common import SIPP_BUFF_SIZE, summary, taskset

BENCH_DIR = Path(__file__).resolve().parent
MIN_RUNS = 3
PARSER_TARGET = 5.0  # x sippy, parse + serialise with a rewrite
REGISTER_TARGET = 0.5  # x Kamailio, REGISTER with digest
CPS_TARGET = 6.0  # x sippy's b2bua
RELAY_TARGET = 0.75  # of the bare forwarder's packet rate
BINDING_BYTES_TARGET = 2 * 1024
CALL_BYTES_TARGET = 50 * 1024
UNSATURATED = " (limit not reached)"

Data = dict[str, Any]


@dataclass
class Figure:
    bench: str
    system: str
    unit: str
    runs: list[float]
    peer: str | None = None
    peer_runs: list[float] | None = None

    @property
    def stats(self) -> tuple[float, float, float]:
        return summary(self.runs)

    @property
    def ratio(self) -> float | None:
        if not self.peer_runs:
            return None
        base = summary(self.peer_runs)[1]
        return self.stats[1] / base if base > 0 else None


@dataclass
class Target:
    name: str
    required: str
    measured: str = "not measured yet"
    ratio: float | None = None
    met: bool | None = None  # None: not measured

    @property
    def status(self) -> str:
        if self.met is None:
            return "inconclusive" if self.ratio is not None else "not measured yet"
        return "met" if self.met else "NOT met"


# -- the machine -----------------------------------------------------------------------
def _first_line(cmd: Sequence[str], pattern: str) -> str | None:
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(pattern, out.stdout + out.stderr)
    return found.group(1) if found else None


def _package(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    cores = os.cpu_count() or 1
    pinned = cores >= 2 and bool(taskset(1))
    return {
        "cpu_model": _cpu_model(),
        "cores": cores,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uvloop": _package("uvloop"),
        "sipp": _first_line(["sipp", "-v"], r"SIPp (v\S+?)\.?\s"),
        "kamailio": _first_line(["kamailio", "-v"], r"version: kamailio (\S+)"),
        "sippy": _package("sippy"),
        "pinning": "SIPp on core 0, the server on core 1 (taskset)" if pinned
                   else "not pinned (fewer than 2 cores, or no taskset)",
        "sipp_buff_size": SIPP_BUFF_SIZE,
    }


def commit() -> str:
    """The commit measured, ``+dirty`` when the switch's code has uncommitted changes."""
    git = ["git", "-C", str(BENCH_DIR.parent)]
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", "--", "switch", "dialplan",
                                "media"], capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


# -- command lines ---------------------------------------------------------------------
def command_line(module: str, args: dict[str, Any]) -> str:
    """An equivalent ``python -m`` command line, from the arguments a bench recorded."""
    words = ["python", "-m", module]
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            words.append(flag)
        elif isinstance(value, list):
            words += [flag, ",".join(str(v) for v in value)]
        else:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return " ".join(words)


def commands(loaded: dict[str, Data]) -> list[str]:
    out = []
    if "parser" in loaded:
        p = loaded["parser"]
        out.append(command_line("bench.parser", {"seconds": p["seconds_per_run"],
                                                 "runs": p["runs"], "json": "bench/parser.json"}))
    for name in ("register", "cps", "media", "transcode"):
        if name in loaded and isinstance(loaded[name].get("args"), dict):
            out.append(command_line(f"bench.{name}", loaded[name]["args"]))
    return out


# -- figures and targets, per benchmark ------------------------------------------------
def _searched(data: Data, server: str) -> tuple[list[float], bool]:
    """The confirmation runs' rates of a stepped search, and whether the search reached a
    failing step (if not, the best rate is the search's ceiling, not the server's limit)."""
    search = data.get(server, {}).get("search") or {}
    limited = any(not s["passed"] for s in search.get("steps") or [])
    return [s["achieved"] for s in search.get("confirm") or []], limited


def _rate_part(data: Data, bench: str, unit: str, peer: tuple[str, str],
               target: Target, threshold: float) -> list[Figure]:
    """Centrala vs ``peer`` (JSON key, label) from two stepped rate searches."""
    runs, limited = _searched(data, "centrala")
    peer_runs, peer_limited = _searched(data, peer[0])
    figures = []
    if runs:
        figures.append(Figure(bench, "centrala" + ("" if limited else UNSATURATED), unit, runs,
                              peer[1] if peer_runs else None, peer_runs or None))
    if peer_runs:
        figures.append(Figure(bench, peer[1] + ("" if peer_limited else UNSATURATED), unit,
                              peer_runs))
    ratio = figures[0].ratio if runs else None
    if ratio is not None:
        target.measured = f"{figures[0].stats[1]:,.0f} vs {summary(peer_runs)[1]:,.0f} {unit}"
        target.ratio, target.met = ratio, ratio >= threshold
        # a side whose search never failed ran at the search's ceiling, not at its limit
        if (not limited and not target.met) or (not peer_limited and target.met):
            target.met = None
            target.measured += " (inconclusive: a rate search never reached a failing step)"
    elif "centrala" in data:
        target.measured, target.met = "no rate passed", False
    return figures


def parser_part(data: Data) -> tuple[list[Figure], list[Target]]:
    figures, rewrites = [], []
    for label, impls in data.get("results", {}).items():
        peer = impls.get("sippy")
        for name, runs in impls.items():
            if name == "sippy":
                continue
            figure = Figure("parser", f"{name}, {label}", "messages/s", runs,
                            "sippy" if peer else None, peer)
            figures.append(figure)
            if name == "centrala rewrite" and figure.ratio is not None:
                rewrites.append((figure.ratio, label, figure))
    target = Target("parser", f">= {PARSER_TARGET:g}x sippy (parse + serialise with a rewrite, "
                    "worst message)")
    if rewrites:
        ratio, label, worst = min(rewrites, key=lambda r: r[0])
        target.measured = (f"{worst.stats[1]:,.0f} vs {summary(worst.peer_runs or [])[1]:,.0f} "
                           f"messages/s ({label})")
        target.ratio, target.met = ratio, ratio >= PARSER_TARGET
    return figures, [target]


def register_part(data: Data) -> tuple[list[Figure], list[Target]]:
    rate = Target("REGISTER", f">= {REGISTER_TARGET:g}x Kamailio (digest auth)")
    figures = _rate_part(data, "register", "REGISTER/s", ("kamailio", "kamailio"), rate,
                         REGISTER_TARGET)
    memory = Target("memory per binding", f"<= {BINDING_BYTES_TARGET // 1024} KB")
    per = [(m["method"], m["bindings"], m["bytes_per_binding"]) for m in data.get("memory", [])
           if m.get("bytes_per_binding") is not None]
    if per:
        worst = max(b for _, _, b in per)
        memory.measured = "; ".join(f"{b:,.0f} B ({m}, {n:,})" for m, n, b in per)
        memory.ratio, memory.met = worst / BINDING_BYTES_TARGET, worst <= BINDING_BYTES_TARGET
    return figures, [rate, memory]


def cps_part(data: Data) -> tuple[list[Figure], list[Target]]:
    rate = Target("CPS", f">= {CPS_TARGET:g}x sippy b2bua")
    figures = _rate_part(data, "cps", "calls/s", ("sippy", "sippy b2bua"), rate, CPS_TARGET)
    memory = Target("memory per call", f"<= {CALL_BYTES_TARGET // 1024} KB per established call")
    per = (data.get("centrala", {}).get("memory") or {}).get("bytes_per_call")
    if per is not None:
        memory.measured = f"{per / 1024:,.1f} KB"
        memory.ratio, memory.met = per / CALL_BYTES_TARGET, per <= CALL_BYTES_TARGET
    return figures, [rate, memory]


def media_part(data: Data) -> tuple[list[Figure], list[Target]]:
    target = Target("relay", f">= {RELAY_TARGET:.0%} of the bare forwarder's packet rate")
    if not data:
        return [], [target]
    relay, peer = (data.get(k) or {} for k in ("relay", "forwarder"))
    runs, peer_runs = relay.get("packets_per_s"), peer.get("packets_per_s")
    if not runs or not peer_runs:
        target.measured = "no relay and forwarder runs in media.json"
        return [], [target]
    unit = f"packets / core-s at {data.get('compare_calls')} calls"
    figures = [Figure("media", "centrala relay", unit, runs, "bare forwarder", peer_runs),
               Figure("media", "bare forwarder", unit, peer_runs)]
    ratio = figures[0].ratio
    if ratio is not None:
        limited = ", generator-limited: a lower bound" if data.get("generator_limited") else ""
        target.measured = (f"{figures[0].stats[1]:,.0f} vs {summary(peer_runs)[1]:,.0f} "
                           f"packets/core-s; relay max {relay.get('max_calls')} calls at zero "
                           f"loss{limited}")
        target.ratio, target.met = ratio, ratio >= RELAY_TARGET
    return figures, [target]


def transcode_part(data: Data) -> tuple[list[Figure], list[Target]]:
    """The cost of a transcoded call, for operators (the issue sets no target for it)."""
    runs = [r["calls_per_core"] for r in data.get("runs", [])]
    if not runs:
        return [], []
    cpu = [100 * r["cpu_per_call"] for r in data["runs"]]
    return [Figure("transcode", "centrala PCMU<->Opus call", "calls / core", runs),
            Figure("transcode", "centrala PCMU<->Opus call", "% of a core per call", cpu)], []


Part = Callable[[Data], tuple[list[Figure], list[Target]]]
# each part reads its bench's JSON ({} when the file is missing: targets not measured yet)
PARTS: dict[str, Part] = {
    "parser": parser_part, "register": register_part, "cps": cps_part, "media": media_part,
    "transcode": transcode_part,
}


def collect(loaded: dict[str, Data]) -> tuple[list[Figure], list[Target]]:
    figures: list[Figure] = []
    targets: list[Target] = []
    for name, part in PARTS.items():
        f, t = part(loaded.get(name, {}))
        figures += f
        targets += t
    return figures, targets


# -- the report ------------------------------------------------------------------------
def _num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"


def _details(name: str, data: Data) -> str:
    """The benchmark's own report of its JSON (its full tables), if it can make one."""
    try:
        module = __import__(f"bench.{name}", fromlist=["report"])
        return str(module.report(data))
    except (ImportError, AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        # a report that cannot read this JSON (an older shape) must not lose the rest
        return f"(no detailed report: {type(exc).__name__}: {exc})"


def markdown(report: Data, loaded: dict[str, Data]) -> str:
    m = report["machine"]
    sources = ", ".join(f"`bench/{n}.json`" for n in report["sources"])
    lines = [
        "# Centrala benchmark results",
        "",
        (f"Generated {report['generated']} by `python -m bench.results` (the last step of "
         f"`make bench`) from {sources}; commit {report['commit']}."),
        "",
        "## Machine",
        "",
        "| CPU | cores | kernel | Python | uvloop | SIPp | Kamailio | sippy |",
        "|---|---:|---|---|---|---|---|---|",
        "| " + " | ".join(str(m[k]) for k in ("cpu_model", "cores", "kernel", "python", "uvloop",
                                              "sipp", "kamailio", "sippy")) + " |",
        "",
        (f"Pinning: {m['pinning']}. SIPp runs with `-buff_size {m['sipp_buff_size']}`; "
         "all traffic is on loopback."),
        "",
        "## Targets",
        "",
        "| target | required | measured | ratio | status |",
        "|---|---|---|---:|---|",
    ]
    for t in report["targets"]:
        ratio = "" if t["ratio"] is None else f"{t['ratio']:.2f}x"
        status = t["status"] if t["met"] is not False else f"**{t['status']}**"
        lines.append(f"| {t['name']} | {t['required']} | {t['measured']} | {ratio} | {status} |")
    lines += [
        "",
        "## Figures",
        "",
        ("Each figure is min / median / max of its runs; the ratio is Centrala's median over "
         "the peer's median, both measured in the same `make bench` run."),
        "",
        "| bench | system | unit | runs | min | median | max | peer | ratio |",
        "|---|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for f in report["figures"]:
        runs = f"{f['runs']}" + ("" if f["runs"] >= MIN_RUNS else f" (< {MIN_RUNS}!)")
        ratio = "" if f["ratio"] is None else f"{f['ratio']:.2f}x"
        lines.append(
            f"| {f['bench']} | {f['system']} | {f['unit']} | {runs} | {_num(f['min'])} "
            f"| {_num(f['median'])} | {_num(f['max'])} | {f['peer'] or ''} | {ratio} |")
    lines += ["", "## Command lines", "", "```sh", *report["commands"], "```"]
    for name, data in loaded.items():
        lines += ["", f"## Details: {name}", "", _details(name, data)]
    return "\n".join(lines) + "\n"


def build(bench_dir: Path) -> tuple[Data, dict[str, Data]]:
    loaded = {name: json.loads((bench_dir / f"{name}.json").read_text())
              for name in PARTS if (bench_dir / f"{name}.json").exists()}
    figures, targets = collect(loaded)
    report: Data = {
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "sources": list(loaded),
        "machine": machine(),
        "commands": commands(loaded),
        "figures": [
            {**asdict(f), "runs": len(f.runs), "min": f.stats[0], "median": f.stats[1],
             "max": f.stats[2], "ratio": f.ratio, "run_values": f.runs}
            for f in figures
        ],
        "targets": [{**asdict(t), "status": t.status} for t in targets],
    }
    for f in report["figures"]:
        f.pop("peer_runs")
    return report, loaded


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--dir", type=Path, default=BENCH_DIR, help="where the bench JSON files are")
    p.add_argument("--md", type=Path, help="report to write (default: DIR/RESULTS.md)")
    p.add_argument("--json", type=Path, help="JSON to write (default: DIR/results.json)")
    args = p.parse_args(argv)
    report, loaded = build(args.dir)
    if not loaded:
        print(f"bench.results: no benchmark JSON in {args.dir}", file=sys.stderr)
        return 1
    (args.md or args.dir / "RESULTS.md").write_text(markdown(report, loaded))
    (args.json or args.dir / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    for t in report["targets"]:
        ratio = "" if t["ratio"] is None else f" ({t['ratio']:.2f}x)"
        print(f"{t['name']:20} {t['required']:55} {t['status']}{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
