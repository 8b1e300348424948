"""Parser benchmark: parse + serialise SIP messages per second, Centrala vs sippy.

    python -m bench.parser [--seconds 1.0] [--runs 3] [--json bench/parser.json]

Each case parses a message, reads the four headers every proxy reads (Via
branch, From tag, To, CSeq) and serialises it again.  Two Centrala variants:
``forward`` serialises the message unmodified (RFC 3261 allows forwarding the
received bytes; Centrala keeps them), ``rewrite`` first pushes a Via, which
forces a full re-serialisation -- the honest comparison with sippy, which
always rebuilds.  Figures are min/median/max over ``--runs`` runs; the runs
of the implementations alternate, so a busy machine slows them alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

from switch.sip.message import parse_message

# RFC 3261 §24.2 F1-style INVITE with an SDP body.
SDP = (
    b"v=0\r\no=alice 2890844526 2890844526 IN IP4 pc33.atlanta.com\r\ns=Session SDP\r\n"
    b"c=IN IP4 pc33.atlanta.com\r\nt=0 0\r\nm=audio 49172 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
INVITE = (
    b"INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: Bob <sip:bob@biloxi.com>\r\n"
    b"From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@pc33.atlanta.com>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: " + str(len(SDP)).encode() + b"\r\n\r\n" + SDP
)
REGISTER = (
    b"REGISTER sip:demo.centrala.test SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.10:5060;rport;branch=z9hG4bKnashds7\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:100@demo.centrala.test>;tag=456248\r\n"
    b"To: <sip:100@demo.centrala.test>\r\n"
    b"Call-ID: 843817637684230@998sdasdh09\r\n"
    b"CSeq: 1826 REGISTER\r\n"
    b"Contact: <sip:100@192.0.2.10:5060;transport=udp>;expires=3600\r\n"
    b'Authorization: Digest username="100", realm="demo.centrala.test", '
    b'nonce="ea9c8e88df84f1cec4341ae6cbe5a359", uri="sip:demo.centrala.test", '
    b'response="dfe56131d1958046689d83306477ecc", algorithm=MD5, cnonce="0a4f113b", '
    b"qop=auth, nc=00000001\r\n"
    b"User-Agent: Softphone/1.0\r\n"
    b"Expires: 3600\r\n"
    b"Content-Length: 0\r\n\r\n"
)
MESSAGES = {"INVITE (RFC 3261)": INVITE, "REGISTER + Authorization": REGISTER}


def centrala_forward(data: bytes) -> bytes:
    msg = parse_message(data)
    msg.top_via.branch, msg.from_.tag, msg.to, msg.cseq  # noqa: B018
    return bytes(msg)


def centrala_rewrite(data: bytes) -> bytes:
    msg = parse_message(data)
    msg.top_via.branch, msg.from_.tag, msg.to, msg.cseq  # noqa: B018
    msg.prepend("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKbench")
    return bytes(msg)


def sippy_case() -> Callable[[bytes], object] | None:
    try:
        from sippy.SipRequest import SipRequest
    except ImportError:
        return None

    def run(data: bytes) -> object:
        req = SipRequest(buf=data.decode())
        req.init_body()  # as sippy's own transaction manager does
        req.getHFBody("via").getBranch()
        req.getHFBody("from").getTag()
        req.getHFBody("to")
        req.getHFBody("cseq")
        return str(req).encode()

    return run


def rate(fn: Callable[[bytes], object], data: bytes, seconds: float) -> float:
    """Messages per second over about ``seconds`` (bounded in count and time)."""
    n = 0
    batch = 200
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn(data)
        n += batch
        now = time.perf_counter()
        if now >= deadline or n >= 5_000_000:
            return n / (now - start)


def measure(seconds: float, runs: int) -> dict[str, object]:
    impls: dict[str, Callable[[bytes], object]] = {
        "centrala forward": centrala_forward,
        "centrala rewrite": centrala_rewrite,
    }
    sippy = sippy_case()
    if sippy is not None:
        impls["sippy"] = sippy
    results: dict[str, dict[str, list[float]]] = {}
    for label, data in MESSAGES.items():
        results[label] = {name: [] for name in impls}
        for fn in impls.values():
            fn(data)  # warm up, and prove it works
        # Round-robin: on a shared machine, load that comes and goes then hits
        # every implementation alike instead of skewing one of them.
        for _ in range(runs):
            for name, fn in impls.items():
                results[label][name].append(rate(fn, data, seconds))
        for name in impls:
            results[label][name].sort()
    return {
        "python": platform.python_version(),
        "machine": platform.processor() or platform.machine(),
        "seconds_per_run": seconds,
        "runs": runs,
        "results": results,
    }


def report(data: dict[str, object]) -> str:
    lines = [
        f"Parser: parse + 4 headers + serialise, messages/s (min / median / max of {data['runs']})",
        "",
        "| message | implementation | min | median | max | vs sippy (median) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    results: dict[str, dict[str, list[float]]] = data["results"]  # type: ignore[assignment]
    for label, impls in results.items():
        base = statistics.median(impls["sippy"]) if "sippy" in impls else None
        for name, runs in impls.items():
            med = statistics.median(runs)
            ratio = f"{med / base:.1f}x" if base else "n/a"
            lines.append(
                f"| {label} | {name} | {runs[0]:,.0f} | {med:,.0f} | {runs[-1]:,.0f} | {ratio} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    data = measure(args.seconds, args.runs)
    print(report(data))
    if "sippy" not in next(iter(data["results"].values())):  # type: ignore[attr-defined]
        print("\nsippy is not installed: `pip install -e '.[bench]'` to compare")
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))


if __name__ == "__main__":
    main()
