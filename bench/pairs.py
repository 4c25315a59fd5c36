"""Back-to-back pairs of benchmark runs, A without and B with an extra YAML document
(guardrails), and the medians of the differences: what one run cannot show on a
noisy machine (about +-0.6 ms at p50 from run to run).

    bench/pairs.sh --pairs 4 --prompt-bytes 2048 --guardrails bench/guardrails.yaml
    bench/pairs.sh ... --write-section guardrails   # + a section in BENCHMARKS.md

Each run is `bench/run.py --quick --soak-seconds 0 --all-workers 0 --no-write` (plus
any arguments after `--`); A and B alternate which goes first (AB, BA, AB ...) so a
drift of the machine does not land on one side. A pair in which either run saw other
processes use more than `--max-noise` % of the machine (others' tests on a shared
machine; bench/procs.NoiseMeter) is measured again, up to `--retries` times, and
kept (marked) if it never gets quiet. The table lists every pair, then the medians; with `--write-section NAME` the same lines become a section of
BENCHMARKS.md (kept in bench/results.json under "sections", re-rendered by every run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402
from measure import log  # noqa: E402

HERE = Path(__file__).resolve().parent

# (key, heading, digits): the figures of one run that the pairs compare
FIGURES = [
    ("c1_p50", "added p50 c=1 (ms)", 2),
    ("c1_p99", "added p99 c=1 (ms)", 2),
    ("rps32", "req/s c=32, 1 core", 0),
    ("cpu_json", "CPU ms/request c=8 JSON", 3),
    ("ttft1", "added TTFT p50 stream c=1 (ms)", 2),
    ("ttft8", "added TTFT p50 stream c=8 (ms)", 2),
    ("ttlt1", "added last token p50 c=1 (ms)", 2),
    ("cpu_stream", "CPU ms/stream c=8", 3),
]


def figures(run: dict) -> dict[str, float]:
    r = run["result"]
    return {
        "c1_p50": r["c1"]["p50_ms"] - r["direct_c1"]["p50_ms"],
        "c1_p99": r["c1"]["p99_ms"] - r["direct_c1"]["p99_ms"],
        "rps32": r["c32"]["rps"],
        "cpu_json": r["cpu"]["ms_per_request"],
        "ttft1": r["stream_c1"]["ttft_p50_ms"] - r["direct_stream_c1"]["ttft_p50_ms"],
        "ttft8": r["stream_c8"]["ttft_p50_ms"] - r["direct_stream_c8"]["ttft_p50_ms"],
        "ttlt1": r["stream_c1"]["ttlt_p50_ms"] - r["direct_stream_c1"]["ttlt_p50_ms"],
        "cpu_stream": r["cpu_stream"]["ms_per_request"],
        "noise_pct": run["noise"]["other_cpu_pct_of_machine"],
    }


def one_run(extra: list[str], guardrails: str | None, out: Path) -> dict:
    cmd = [sys.executable, str(HERE / "run.py"), "--quick", "--soak-seconds", "0", "--all-workers", "0",
           "--no-write", "--json-out", str(out), *extra]
    if guardrails:
        cmd += ["--guardrails", guardrails]
    log(("B (with " + guardrails + ")" if guardrails else "A (without)") + ": " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        raise RuntimeError(f"run failed (exit {proc.returncode}):\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    return json.loads(out.read_text())


def _cell(x: float, digits: int, signed: bool = False) -> str:
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def render(pairs: list[tuple[dict, dict]], a_name: str, b_name: str) -> list[str]:
    head = ["pair", *(h for _, h, _ in FIGURES), "machine busy (other processes)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, (a, b) in enumerate(pairs, 1):
        cells = [f"{i}"]
        for key, _, d in FIGURES:
            cells.append(f"{_cell(a[key], d)} / {_cell(b[key], d)} ({_cell(b[key] - a[key], d, True)})")
        cells.append(f"{a['noise_pct']}% / {b['noise_pct']}%")
        lines.append("| " + " | ".join(cells) + " |")
    cells = ["**median**"]
    for key, _, d in FIGURES:
        ma, mb = statistics.median(a[key] for a, _ in pairs), statistics.median(b[key] for _, b in pairs)
        md = statistics.median(b[key] - a[key] for a, b in pairs)
        cells.append(f"{_cell(ma, d)} / {_cell(mb, d)} (**{_cell(md, d, True)}**)")
    cells.append("")
    lines.append("| " + " | ".join(cells) + " |")
    return [f"Each cell: {a_name} / {b_name} (difference B - A); the median row has the medians of A, of B "
            "and of the per-pair differences.", "", *lines]


def main() -> None:
    p = argparse.ArgumentParser(description="A/B pairs of quick benchmark runs (see the module docstring).")
    p.add_argument("--pairs", type=int, default=4)
    p.add_argument("--guardrails", required=True, metavar="FILE", help="B's extra YAML document")
    p.add_argument("--prompt-bytes", type=int, default=2048)
    p.add_argument("--wait-quiet", type=float, default=30, metavar="S", help="per run (see run.py)")
    p.add_argument("--max-noise", type=float, default=10, metavar="PCT",
                   help="redo a pair if another process used more than PCT %% of the machine during a run")
    p.add_argument("--retries", type=int, default=3, help="redos of a noisy pair")
    p.add_argument("--write-section", metavar="NAME", help="store the table as a BENCHMARKS.md section")
    p.add_argument("--title", default="Guardrails: added cost, back-to-back pairs")
    p.add_argument("--note", action="append", default=[], help="a line under the section's table (repeatable)")
    p.add_argument("extra", nargs="*", help="after --: more run.py arguments for both sides")
    args = p.parse_args()
    extra = ["--prompt-bytes", str(args.prompt_bytes), "--wait-quiet", str(args.wait_quiet), *args.extra]
    pairs: list[tuple[dict, dict]] = []
    redone = 0
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    with tempfile.TemporaryDirectory(prefix="gw-bench-pairs-") as tmp:
        for i in range(args.pairs):
            order = [None, args.guardrails] if i % 2 == 0 else [args.guardrails, None]
            for attempt in range(args.retries + 1):
                got = {}
                for side in order:
                    got[side] = figures(one_run(extra, side, Path(tmp) / f"{i}-{'b' if side else 'a'}.json"))
                a, b = got[None], got[args.guardrails]
                noisy = max(a["noise_pct"], b["noise_pct"]) > args.max_noise
                log(f"pair {i + 1}{' (noisy)' if noisy else ''}: added p50 c=1 {a['c1_p50']:+.2f} / "
                    f"{b['c1_p50']:+.2f} ms, c=32 {a['rps32']:.0f} / {b['rps32']:.0f} req/s, added TTFT c=1 "
                    f"{a['ttft1']:+.2f} / {b['ttft1']:+.2f} ms; others used {a['noise_pct']}% / {b['noise_pct']}%")
                if not noisy or attempt == args.retries:
                    break
                redone += 1
            pairs.append((a, b))
    prompt = f"{args.prompt_bytes / 1024:g} KB prompt"
    lines = render(pairs, f"A = {prompt}, no guardrails", f"B = {prompt} + `{args.guardrails}`")
    command = "bench/pairs.sh " + " ".join(sys.argv[1:])
    lines += ["", f"Measured {started} with `{command}`: {args.pairs} pairs of `bench/run.py --quick --soak-seconds 0 "
              "--all-workers 0` (uvicorn, 1 worker on core 0, SQLite), A and B alternating which runs first; "
              f"{redone} pair(s) measured again because another process used more than {args.max_noise:g}% of "
              "the machine during one of its runs.",
              *args.note]
    print("\n".join(lines))
    if args.write_section:
        data = report.load_results()
        data.setdefault("sections", {})[args.write_section] = {"title": args.title, "lines": lines}
        report.write(data)
        log(f"BENCHMARKS.md: section '{args.title}' written")


if __name__ == "__main__":
    main()
