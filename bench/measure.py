"""The measurement sequence, the same for this gateway and for the peers (compare.py).

Every gateway figure comes with a direct (client -> fake upstream) figure taken right
before it in the same run; the table shows the difference as "added".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import load
from load import Target, count_run, run_async, run_wrk, stream_run
from procs import cpu_seconds, hwm_kb, rss_kb, tree

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Opts:
    c1_seconds: float = 10
    c32_seconds: float = 15
    stream_n1: int = 300
    stream_n8: int = 800
    cpu_n: int = 3000
    warmup_n: int = 2000  # JIT (Node.js), caches, connection pools: warm before measuring
    soak_seconds: float = 600
    soak_sample_s: float = 10
    load_cpus: str = "1"  # where wrk and the asyncio client run (with the fake upstream)

    @classmethod
    def make(cls, quick: bool, soak_seconds: float | None) -> "Opts":
        opts = cls(5, 8, 150, 400, 1500, 1000, 60) if quick else cls()
        if soak_seconds is not None:
            opts.soak_seconds = soak_seconds
        return opts


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _ok(statuses: dict) -> int:
    return sum(v for k, v in statuses.items() if str(k) == "200")


def upstream_capacity(upstream: Target, seconds: float, cpus: str) -> dict:
    """The fake upstream's own rate (it is pinned to its core; wrk runs on `cpus`)."""
    res = run_wrk(upstream, 64, seconds, threads=1, cpus=cpus)
    stream = run_wrk(upstream, 64, seconds, threads=1, cpus=cpus, stream=True)
    return {"json_rps": res["rps"], "json_p99_ms": res["p99_ms"], "stream_rps": stream["rps"],
            "errors": res["errors"] + res["non2xx"] + stream["errors"] + stream["non2xx"]}


class Tally:
    """Responses this run got from the system under test, for the usage-record check."""

    def __init__(self) -> None:
        self.completed = 0  # responses counted by the load tools
        self.in_flight_max = 0  # requests wrk may have left open when it stopped
        self.non_ok = 0

    def wrk(self, res: dict, concurrency: int) -> dict:
        self.completed += res["requests"]
        self.non_ok += res["non2xx"]
        self.in_flight_max += concurrency
        return res

    def counted(self, res: dict) -> dict:
        ok = _ok(res["statuses"])
        self.completed += sum(v for k, v in res["statuses"].items() if k != "incomplete")
        self.non_ok += res["n"] - ok
        return res


def measure_system(target: Target, direct: Target, pids: Callable[[], list[int]], opts: Opts,
                   records: Callable[[], dict] | None = None, fixed: list | None = None) -> dict:
    """Warm up, then CPU per request, c1 latency, c32 throughput, streams, peak RSS, soak."""
    tally = Tally()
    out: dict = {"tally": tally}
    lc = opts.load_cpus
    log(f"{target.name}: warm-up ({opts.warmup_n} requests + {opts.warmup_n // 4} streams)")
    tally.counted(run_async(count_run(target, 8, opts.warmup_n)))
    tally.counted(run_async(stream_run(target, 4, opts.warmup_n // 4)))

    log(f"{target.name}: CPU per request ({opts.cpu_n} requests at c=8, then {opts.cpu_n // 2} streams)")
    for key, stream, n in (("cpu", False, opts.cpu_n), ("cpu_stream", True, opts.cpu_n // 2)):
        rec0 = sum(records().values()) if records else 0
        before = cpu_seconds(tree_of(pids))
        res = tally.counted(run_async(count_run(target, 8, n, stream=stream)))
        used = cpu_seconds(tree_of(pids)) - before
        if records and fixed is not None:  # one usage record per request, exactly
            fixed.append(("JSON" if not stream else "streams", sum(records().values()) - rec0, n))
        out[key] = {"n": n, "ok": _ok(res["statuses"]), "statuses": res["statuses"], "cpu_s": round(used, 3),
                    "ms_per_request": round(used / n * 1000, 3), "rps": round(n / res["elapsed_s"], 1)}

    log(f"{target.name}: concurrency 1, {opts.c1_seconds:g} s (direct, then through the gateway)")
    out["direct_c1"] = run_wrk(direct, 1, opts.c1_seconds, cpus=lc)
    out["c1"] = tally.wrk(run_wrk(target, 1, opts.c1_seconds, cpus=lc), 1)

    log(f"{target.name}: concurrency 32, {opts.c32_seconds:g} s")
    before = cpu_seconds(tree_of(pids))
    out["c32"] = tally.wrk(run_wrk(target, 32, opts.c32_seconds, threads=1, cpus=lc), 32)
    used = cpu_seconds(tree_of(pids)) - before  # saturated: ~100% of its core, or waiting on something
    out["c32"].update(cpu_pct=round(used / out["c32"]["duration_s"] * 100, 1),
                      cpu_ms_per_request=round(used / max(1, out["c32"]["requests"]) * 1000, 3))
    c = out["c32"]
    log(f"{target.name}: c=32: {c['rps']:.0f} req/s, p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms; "
        f"its CPU {c['cpu_pct']}% of a core, {c['cpu_ms_per_request']} ms/request "
        f"(at c=8: {out['cpu']['ms_per_request']} ms/request)")

    for c, n in ((1, opts.stream_n1), (8, opts.stream_n8)):
        log(f"{target.name}: {n} streams at concurrency {c} (direct, then through the gateway)")
        out[f"direct_stream_c{c}"] = _pinned_stream(direct, c, n, lc)
        out[f"stream_c{c}"] = tally.counted(_pinned_stream(target, c, n, lc))

    out["peak_rss_kb"] = hwm_kb(tree_of(pids))
    out["rss_after_measurements_kb"] = rss_kb(tree_of(pids))
    if opts.soak_seconds > 0:
        out["soak"] = soak(target, pids, opts, tally)
        out["peak_rss_after_soak_kb"] = hwm_kb(tree_of(pids))
    return out


def measure_all_cores(target: Target, opts: Opts) -> dict:
    """c32 with the system unpinned (and several workers): wrk shares the 2 cores."""
    tally = Tally()
    log(f"{target.name}: all cores: warm-up, then concurrency 32 for {opts.c32_seconds:g} s, unpinned")
    tally.counted(run_async(count_run(target, 8, opts.warmup_n)))
    res = tally.wrk(run_wrk(target, 32, opts.c32_seconds, threads=2), 32)
    return {"c32": res, "tally": tally}


def tree_of(pids: Callable[[], list[int]]) -> list[int]:
    out: list[int] = []
    for pid in pids():
        out.extend(p for p in tree(pid) if p not in out)
    return out


def _pinned_stream(target: Target, concurrency: int, n: int, cpus: str) -> dict:
    """The streaming client in its own process on the load core (like wrk)."""
    cmd = ["taskset", "-c", cpus, sys.executable, os.path.join(HERE, "load.py"), "stream", target.url,
           "--model", target.model, "-c", str(concurrency), "-n", str(n)]
    cmd += [a for k, v in target.headers.items() for a in ("-H", f"{k}: {v}")]
    cmd += ["--prompt-bytes", str(target.prompt_bytes)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"stream client failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def soak(target: Target, pids: Callable[[], list[int]], opts: Opts, tally: Tally) -> dict:
    """Mixed continuous load (JSON, streams, streams abandoned mid-way) for soak_seconds,
    sampling the resident set every soak_sample_s."""
    log(f"{target.name}: soak {opts.soak_seconds:g} s (RSS every {opts.soak_sample_s:g} s)")
    cmd = ["taskset", "-c", opts.load_cpus, sys.executable, os.path.join(HERE, "load.py"), "soak", target.url,
           "--model", target.model, "-d", str(opts.soak_seconds)]
    cmd += [a for k, v in target.headers.items() for a in ("-H", f"{k}: {v}")]
    cmd += ["--prompt-bytes", str(target.prompt_bytes)]
    start = time.monotonic()
    samples = [(0.0, rss_kb(tree_of(pids)))]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None:
            time.sleep(min(opts.soak_sample_s, max(0.1, start + opts.soak_seconds + 30 - time.monotonic())))
            samples.append((round(time.monotonic() - start, 1), rss_kb(tree_of(pids))))
            if time.monotonic() > start + opts.soak_seconds + 60:
                proc.kill()
        stdout, stderr = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        raise RuntimeError(f"soak client failed: {stderr[-2000:]}")
    counts = json.loads(stdout)
    completed = sum(v for k, v in counts.items() if not k.endswith("_error") and k != "aborted_failed")
    tally.completed += completed
    tally.non_ok += sum(v for k, v in counts.items() if not (k.endswith("_200") or k == "aborted_ok"))
    tally.in_flight_max += 4 + 2  # steady clients cut off at the end
    first, last = samples[1][1] if len(samples) > 1 else samples[0][1], samples[-1][1]
    return {
        "seconds": opts.soak_seconds, "counts": counts, "requests": completed,
        "rps": round(completed / max(1e-9, samples[-1][0]), 1),
        "rss_start_kb": samples[0][1], "rss_first_sample_kb": first, "rss_end_kb": last,
        "rss_max_kb": max(s[1] for s in samples),
        "growth_pct": round((last - samples[0][1]) / samples[0][1] * 100, 1) if samples[0][1] else None,
        "growth_after_first_sample_pct": round((last - first) / first * 100, 1) if first else None,
        "samples": samples,
    }


__all__ = ["Opts", "measure_system", "measure_all_cores", "upstream_capacity", "log", "load"]
