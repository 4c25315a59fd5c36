"""A and B gateways side by side, measured in alternation: what an extra YAML
document (guardrails) adds, with the machine's drift cancelled round by round.

    bench/interleave.sh --rounds 12 --prompt-bytes 2048 --guardrails bench/guardrails.yaml [--upstream-words trailing]

Whole back-to-back runs (pairs.py) are minutes apart; on a shared machine others'
load comes and goes within that. Here both gateways run at once, each with its own
scratch SQLite database and key, both pinned to core 0 (only the one being measured
is busy), and each round measures A and B (alternating which goes first) a few
seconds apart: c=1 latency (wrk), c=32 requests/s and CPU per request (wrk, CPU of
the gateway's process during it), CPU per request and per stream at c=8 (exact
counts), stream TTFT / last token at c=1; the direct figures (client to the fake
upstream) once per round. The table has the medians over rounds of A, of B and of
the per-round differences; `--write-section NAME` stores it in BENCHMARKS.md
(results.json "sections").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402
from load import Target, count_run, run_async, run_wrk, stream_run  # noqa: E402
from measure import _pinned_stream, log, tree_of, upstream_capacity  # noqa: E402
from procs import NoiseMeter, Procs, cpu_seconds, tree, wait_quiet  # noqa: E402
from run import Gateway, guardrails_check, start_upstream  # noqa: E402

LC = "1"  # load generators' core (with the fake upstream)

FIGURES = [  # key, heading, digits
    ("c1_p50", "added p50 c=1 (ms)", 3),
    ("c1_p99", "added p99 c=1 (ms)", 2),
    ("rps32", "req/s c=32, 1 core", 0),
    ("cpu32", "CPU ms/request c=32", 3),
    ("cpu_json", "CPU ms/request c=8 JSON", 3),
    ("cpu_stream", "CPU ms/stream c=8", 3),
    ("ttft1", "added TTFT p50 c=1 (ms)", 3),
    ("ttlt1", "added last token p50 c=1 (ms)", 3),
]


def _args(guardrails: str | None) -> argparse.Namespace:
    return argparse.Namespace(postgres=False, redis=False, gateway_cmd=None, server="uvicorn", guardrails=guardrails)


def measure_side(target: Target, pids, direct: dict, o: argparse.Namespace) -> dict:
    c1 = run_wrk(target, 1, o.c1_seconds, cpus=LC)
    before = cpu_seconds(tree_of(pids))
    c32 = run_wrk(target, 32, o.c32_seconds, threads=1, cpus=LC)
    cpu32 = (cpu_seconds(tree_of(pids)) - before) / max(1, c32["requests"]) * 1000
    cpu = {}
    for key, stream, n in (("cpu_json", False, o.count_n), ("cpu_stream", True, o.count_n // 2)):
        before = cpu_seconds(tree_of(pids))
        res = run_async(count_run(target, 8, n, stream=stream))
        if sum(v for k, v in res["statuses"].items() if str(k) == "200") != n:
            raise RuntimeError(f"{target.name}: {res['statuses']}")
        cpu[key] = (cpu_seconds(tree_of(pids)) - before) / n * 1000
    s1 = _pinned_stream(target, 1, o.stream_n, LC)
    if c1["non2xx"] + c1["errors"] + c32["non2xx"] + c32["errors"] or s1["ok"] != s1["n"]:
        raise RuntimeError(f"{target.name}: errors in the timed runs")
    return {"c1_p50": c1["p50_ms"] - direct["c1"]["p50_ms"], "c1_p99": c1["p99_ms"] - direct["c1"]["p99_ms"],
            "rps32": c32["rps"], "cpu32": cpu32, **cpu,
            "ttft1": s1["ttft_p50_ms"] - direct["s1"]["ttft_p50_ms"],
            "ttlt1": s1["ttlt_p50_ms"] - direct["s1"]["ttlt_p50_ms"]}


def render(rounds: list[tuple[dict, dict]], a_name: str, b_name: str) -> list[str]:
    head = ["", *(h for _, h, _ in FIGURES)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, pick in (("A: " + a_name, lambda a, b, k: a[k]), ("B: " + b_name, lambda a, b, k: b[k]),
                        ("**B - A**", lambda a, b, k: b[k] - a[k])):
        cells = [label]
        for key, _, d in FIGURES:
            values = [pick(a, b, key) for a, b in rounds]
            med = statistics.median(values)
            cell = f"{med:+.{d}f}" if label.startswith("**") else f"{med:.{d}f}"
            if label.startswith("**"):
                q = statistics.quantiles(values, n=4) if len(values) >= 4 else [min(values), med, max(values)]
                cell = f"**{cell}** ({q[0]:+.{d}f} .. {q[-1]:+.{d}f})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description="A/B gateways measured in alternation (see the module docstring).")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--guardrails", required=True, metavar="FILE", help="B's extra YAML document")
    p.add_argument("--prompt-bytes", type=int, default=2048)
    p.add_argument("--upstream-words", choices=["leading", "trailing"], default="leading")
    p.add_argument("--c1-seconds", type=float, default=3)
    p.add_argument("--c32-seconds", type=float, default=3)
    p.add_argument("--count-n", type=int, default=800, help="requests per side and round at c=8 (streams: half)")
    p.add_argument("--stream-n", type=int, default=120, help="streams at c=1 per side and round")
    p.add_argument("--wait-quiet", type=float, default=60, metavar="S")
    p.add_argument("--write-section", metavar="NAME", help="store the table as a BENCHMARKS.md section")
    p.add_argument("--title", default="Guardrails: added cost, A and B measured in alternation")
    p.add_argument("--note", action="append", default=[], help="a line under the section's table (repeatable)")
    p.add_argument("--keep-scratch", action="store_true")
    o = p.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="gw-bench-ab-"))
    procs = Procs(scratch)
    gws: dict[str, Gateway] = {}
    ok = False
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    try:
        quiet = wait_quiet(o.wait_quiet) if o.wait_quiet else None
        noise = NoiseMeter()
        upstream, up_port, up_proc = start_upstream(procs, prompt_bytes=o.prompt_bytes, words=o.upstream_words)
        capacity = upstream_capacity(upstream, 3, cpus="0")  # also a gauge of the machine's speed today
        targets: dict[str, Target] = {}
        for side, doc in (("A", None), ("B", o.guardrails)):
            (scratch / side).mkdir()
            gw = gws[side] = Gateway(_args(doc), procs, scratch / side)
            key = gw.configure(up_port)
            gw.start(1, cpus="0")
            targets[side] = Target(side, f"http://127.0.0.1:{gw.port}/v1/chat/completions", "bench",
                                   {"Authorization": f"Bearer {key}"}, o.prompt_bytes)
            log(f"{side}: warm-up")
            run_async(count_run(targets[side], 8, 1000))
            run_async(stream_run(targets[side], 4, 250))
        rounds: list[tuple[dict, dict]] = []
        for i in range(o.rounds):
            direct = {"c1": run_wrk(upstream, 1, o.c1_seconds, cpus=LC), "s1": _pinned_stream(upstream, 1, o.stream_n, LC)}
            got = {}
            for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                got[side] = measure_side(targets[side], gws[side].pids, direct, o)
            rounds.append((got["A"], got["B"]))
            a, b = rounds[-1]
            log(f"round {i + 1}: added p50 c=1 {a['c1_p50']:+.3f} / {b['c1_p50']:+.3f} ms, c=32 {a['rps32']:.0f} / "
                f"{b['rps32']:.0f} req/s, CPU c=8 {a['cpu_json']:.3f} / {b['cpu_json']:.3f} ms, TTFT c=1 "
                f"{a['ttft1']:+.3f} / {b['ttft1']:+.3f} ms")
        checked = guardrails_check(gws["B"].guardrail_decisions(), o.guardrails)
        n = noise.report(cpu_seconds(tree(up_proc.pid)) + sum(cpu_seconds(tree_of(g.pids)) for g in gws.values()))
        prompt = f"{o.prompt_bytes / 1024:g} KB prompt" if o.prompt_bytes else "one-line prompt"
        lines = render(rounds, f"{prompt}, no guardrails", f"{prompt} + `{o.guardrails}`")
        words = ("answer chunks end with a space (`--upstream-words trailing`: no PII-like tail)"
                 if o.upstream_words == "trailing" else "LLM-like answer chunks (\" from\")")
        lines += ["", f"Medians over {o.rounds} rounds; B - A: median of the per-round differences (quartiles in "
                  f"brackets). Measured {started} with `bench/interleave.sh {' '.join(sys.argv[1:])}`: both "
                  f"gateways uvicorn, 1 worker, pinned to core 0, scratch SQLite each; {words}; per side and round "
                  f"wrk c=1 {o.c1_seconds:g} s, wrk c=32 {o.c32_seconds:g} s, {o.count_n} requests and "
                  f"{o.count_n // 2} streams at c=8, {o.stream_n} streams at c=1. The fake upstream alone served "
                  f"{capacity['json_rps']:.0f} JSON req/s on its core (a gauge of the machine's speed). "
                  "Other processes used "
                  f"{n['other_cpu_pct_of_machine']}% of the machine meanwhile (busy {quiet}% at the start). "
                  f"Guardrails at work in B: {checked['detail'] if checked else 'n/a'}.", *o.note]
        print("\n".join(lines))
        if o.write_section:
            data = report.load_results()
            data.setdefault("sections", {})[o.write_section] = {"title": o.title, "lines": lines}
            report.write(data)
            log(f"BENCHMARKS.md: section '{o.title}' written")
        ok = bool(checked and checked["ok"])
    finally:
        for gw in gws.values():
            gw.cleanup()
        procs.stop_all()
        if o.keep_scratch or not ok:
            log(f"logs kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: everything this run started has been stopped", file=sys.stderr)
        sys.exit(130)
