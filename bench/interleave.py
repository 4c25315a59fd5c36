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
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402
from load import Target, alternate_run, count_run, run_async, run_wrk, stream_run  # noqa: E402
from measure import _pinned_stream, log, tree_of, upstream_capacity  # noqa: E402
from procs import NoiseMeter, Procs, cpu_seconds, tree, wait_quiet, clean_up, run_main  # noqa: E402
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


GROUPS = {"c1": ("c1_p50", "c1_p99"), "c32": ("rps32", "cpu32"), "cpu": ("cpu_json", "cpu_stream"),
          "stream": ("ttft1", "ttlt1")}


def measure_side(target: Target, pids, direct: dict, o: argparse.Namespace) -> dict:
    out: dict[str, float] = {}
    if "c1" in o.only:
        c1 = _checked(target, run_wrk(target, 1, o.c1_seconds, cpus=LC))
        out.update(c1_p50=c1["p50_ms"] - direct["c1"]["p50_ms"], c1_p99=c1["p99_ms"] - direct["c1"]["p99_ms"])
    if "c32" in o.only:
        before = cpu_seconds(tree_of(pids))
        c32 = _checked(target, run_wrk(target, 32, o.c32_seconds, threads=1, cpus=LC))
        out.update(rps32=c32["rps"], cpu32=(cpu_seconds(tree_of(pids)) - before) / max(1, c32["requests"]) * 1000)
    if "cpu" in o.only:
        for key, stream, n in (("cpu_json", False, o.count_n), ("cpu_stream", True, o.count_n // 2)):
            before = cpu_seconds(tree_of(pids))
            res = run_async(count_run(target, 8, n, stream=stream))
            if sum(v for k, v in res["statuses"].items() if str(k) == "200") != n:
                raise RuntimeError(f"{target.name}: {res['statuses']}")
            out[key] = (cpu_seconds(tree_of(pids)) - before) / n * 1000
    if "stream" in o.only:
        s1 = _pinned_stream(target, 1, o.stream_n, LC)
        if s1["ok"] != s1["n"]:
            raise RuntimeError(f"{target.name}: incomplete streams {s1['statuses']}")
        out.update(ttft1=s1["ttft_p50_ms"] - direct["s1"]["ttft_p50_ms"],
                   ttlt1=s1["ttlt_p50_ms"] - direct["s1"]["ttlt_p50_ms"])
    return out


def _checked(target: Target, res: dict) -> dict:
    if res["non2xx"] + res["errors"]:
        raise RuntimeError(f"{target.name}: errors in a timed run: {res}")
    return res


def render(rounds: list[tuple[dict, dict]], a_name: str, b_name: str) -> list[str]:
    figures = [f for f in FIGURES if f[0] in rounds[0][0]]
    head = ["", *(h for _, h, _ in figures)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, pick in (("A: " + a_name, lambda a, b, k: a[k]), ("B: " + b_name, lambda a, b, k: b[k]),
                        ("**B - A**", lambda a, b, k: b[k] - a[k])):
        cells = [label]
        for key, _, d in figures:
            values = [pick(a, b, key) for a, b in rounds]
            med = statistics.median(values)
            cell = f"{med:+.{d}f}" if label.startswith("**") else f"{med:.{d}f}"
            if label.startswith("**"):
                q = statistics.quantiles(values, n=4) if len(values) >= 4 else [min(values), med, max(values)]
                cell = f"**{cell}** ({q[0]:+.{d}f} .. {q[-1]:+.{d}f})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def alternate(upstream: Target, targets: dict[str, Target], n: int, delay_ms: float = 0) -> list[dict]:
    """alternate_run from the load core (this process moves there meanwhile)."""
    log(f"alternating: {n} requests, then {n // 2} streams, to direct, A and B in turn")
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(LC)})
    try:
        order = [upstream, targets["A"], targets["B"]]
        extra = {"bench_delay_ms": delay_ms} if delay_ms else {}
        return [run_async(alternate_run(order, n)), run_async(alternate_run(order, n // 2, stream=True, **extra))]
    finally:
        os.sched_setaffinity(0, mask)


def render_alternate(alternated: list, n: int, delay_ms: float = 0) -> list[str]:
    if not alternated:
        return []
    (dj, aj, bj), (ds, as_, bs) = alternated
    for res in (dj, aj, bj, ds, as_, bs):
        if res["ok"] != res["n"]:
            raise RuntimeError(f"alternating run: {res['name']} {res['statuses']}")

    def row(name: str, d: dict, x: dict, y: dict, key: str) -> str:
        cells = [name]
        for p in (50, 95, 99):
            k = f"{key}_p{p}_ms"
            cells.append(f"{x[k] - d[k]:+.3f} / {y[k] - d[k]:+.3f} (**{y[k] - x[k]:+.3f}**)")
        return "| " + " | ".join(cells) + " |"

    return ["", f"Request by request: {n} requests and {n // 2} streams at c=1 to direct, A and B in turn "
            "(rotating order)" + (f"; streams with {delay_ms:g} ms between the upstream's chunks" if delay_ms else "")
            + ". Cells: A / B added over direct (**B - A**), ms.", "",
            "| c=1, alternating | p50 | p95 | p99 |", "|---|---|---|---|",
            row("JSON latency", dj, aj, bj, "lat"), row("stream TTFT", ds, as_, bs, "ttft"),
            row("stream last token", ds, as_, bs, "ttlt")]


def main() -> None:
    p = argparse.ArgumentParser(description="A/B gateways measured in alternation (see the module docstring).")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--guardrails", required=True, metavar="FILE", help="B's extra YAML document")
    p.add_argument("--baseline", metavar="FILE",
                   help="A's extra YAML document (default none), e.g. input-only guardrails to isolate the output side")
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
    p.add_argument("--only", default="c1,c32,cpu,stream",
                   help="comma-separated groups to measure: c1 (latency), c32 (throughput), cpu (c=8), stream (c=1)")
    p.add_argument("--alternate", type=int, default=0, metavar="N",
                   help="after the rounds: N requests (and N/2 streams) at c=1 to each of direct, A and B, "
                        "alternating request by request (0 = skip)")
    p.add_argument("--stream-delay-ms", type=float, default=0, metavar="MS",
                   help="alternating streams only: the fake upstream waits MS between chunks (bench_delay_ms), "
                        "as a model does between tokens, so a held-back chunk shows in TTFT")
    p.add_argument("--keep-scratch", action="store_true")
    o = p.parse_args()
    o.only = set(o.only.split(","))
    if not o.only or o.only - set(GROUPS):
        p.error(f"--only: groups are {', '.join(GROUPS)}")
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
        for side, doc in (("A", o.baseline), ("B", o.guardrails)):
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
            direct = {"c1": run_wrk(upstream, 1, o.c1_seconds, cpus=LC) if "c1" in o.only else None,
                      "s1": _pinned_stream(upstream, 1, o.stream_n, LC) if "stream" in o.only else None}
            got = {}
            for side in ("A", "B") if i % 2 == 0 else ("B", "A"):
                got[side] = measure_side(targets[side], gws[side].pids, direct, o)
            rounds.append((got["A"], got["B"]))
            a, b = rounds[-1]
            log(f"round {i + 1}: " + ", ".join(f"{k} {a[k]:.3f} / {b[k]:.3f}" for k in a))
        alternated = alternate(upstream, targets, o.alternate, o.stream_delay_ms) if o.alternate else []
        checked = guardrails_check(gws["B"].guardrail_decisions(), o.guardrails)
        n = noise.report(cpu_seconds(tree(up_proc.pid)) + sum(cpu_seconds(tree_of(g.pids)) for g in gws.values()))
        prompt = f"{o.prompt_bytes / 1024:g} KB prompt" if o.prompt_bytes else "one-line prompt"
        a_name = f"{prompt} + `{o.baseline}`" if o.baseline else f"{prompt}, no guardrails"
        lines = render(rounds, a_name, f"{prompt} + `{o.guardrails}`") if rounds and rounds[0][0] else []
        lines += render_alternate(alternated, o.alternate, o.stream_delay_ms)
        words = ("answer chunks end with a space (`--upstream-words trailing`: no PII-like tail)"
                 if o.upstream_words == "trailing" else "LLM-like answer chunks (\" from\")")
        per_round = ", ".join(what for group, what in (
            ("c1", f"wrk c=1 {o.c1_seconds:g} s"), ("c32", f"wrk c=32 {o.c32_seconds:g} s"),
            ("cpu", f"{o.count_n} requests and {o.count_n // 2} streams at c=8"),
            ("stream", f"{o.stream_n} streams at c=1")) if group in o.only)
        how = [f"Measured {started} with `bench/interleave.sh {' '.join(sys.argv[1:])}`: both gateways uvicorn, "
               f"1 worker, pinned to core 0, scratch SQLite each; {words}."]
        if o.rounds:
            how.append(f"Rounds: {o.rounds}, per side and round {per_round}; B - A is the median of the per-round "
                       "differences (quartiles in brackets).")
        how.append(f"The fake upstream alone served {capacity['json_rps']:.0f} JSON req/s on its core (a gauge of "
                   f"the machine's speed). Other processes used {n['other_cpu_pct_of_machine']}% of the machine "
                   "meanwhile" + (f" (busy {quiet}% at the start)." if quiet is not None else ".")
                   + f" Guardrails at work in B: {checked['detail'] if checked else 'n/a'}.")
        lines += ["", " ".join(how), *o.note]
        print("\n".join(lines))
        if o.write_section:
            data = report.load_results()
            data.setdefault("sections", {})[o.write_section] = {"title": o.title, "lines": lines}
            report.write(data)
            log(f"BENCHMARKS.md: section '{o.title}' written")
        ok = bool(checked and checked["ok"])
    finally:
        clean_up(procs, gws.values(), scratch, keep=o.keep_scratch, ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    run_main(main)
