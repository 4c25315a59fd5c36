"""What the answer cache costs and saves at the gateway: exact hits against the direct
upstream and the miss path at c=1, hit and miss throughput on one core at c=32, and
(when the semantic cache is installed) the semantic lookup's cost.

    bench/cache.sh [--rounds 2000] [--c32-rounds 5] [--c32-seconds 4] [--sem-rounds 1000] [--no-write]

One gateway (uvicorn, 1 worker, pinned to core 0) with three routes (bench/cache.yaml):
`bench` (cache off), `bench-exact`, `bench-semantic`; the fake upstream, this client and
wrk on core 1. Every request has `temperature: 0` (cacheable).

c=1, request by request: each round sends one request to every target in turn (the
order rotating), so the machine's drift lands on all of them alike:
  direct     the fake upstream itself
  off        route `bench`: the gateway's whole path without a cache
  bypass     `bench-exact` with `x-gateway-cache: bypass` (the cacheability check only)
  miss       `bench-exact`, a prompt never sent before (key, lookup, flight, upstream, store)
  hit        `bench-exact`, the same prompt every time (every request after the first a hit)
  sem_exact  `bench-semantic`, the same prompt every time: exact hits on a semantic route
  sem_hit    `bench-semantic`, a new wording of a stored question every time (a greeting,
             a thank-you, lower case: bench/cache_workload/generate.py's decorations)
  sem_miss   `bench-semantic`, a question never asked (the one-off questions of the workload)
Each response's `x-gateway-cache` must be what the target expects; others are counted
and left out of its latencies.

Phases, in this order (`--only` picks some; the others keep their last figures):
  c1        direct, off, bypass, miss, hit (--rounds)
  c32       below
  semantic  --seeds questions of the workload stored on `bench-semantic`, then direct,
            miss, hit, sem_exact, sem_hit, sem_miss (--sem-rounds); semantic lookup =
            p50(sem_hit) - p50(sem_exact). Last, so that the embedder (numpy, with its
            BLAS threads) has not run in the process while the exact figures are taken.

c=32: wrk -t1 for --c32-seconds per target and round (off, bypass, miss with a new
prompt on every request via bench/wrk_unique.lua, hit), the order rotating; requests/s,
latency and the gateway's CPU per request; the hit/miss ratio is the median of the
rounds' ratios. The gateway's own cache counters (/metrics) confirm what each run was.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "cache_workload"))

from cache_common import (CacheGateway, Client, chat_body, gateway_args, percentiles, run_wrk_body,  # noqa: E402
                          save_part)
from load import Target, run_async  # noqa: E402
from measure import log, tree_of, upstream_capacity  # noqa: E402
from procs import NoiseMeter, Procs, cpu_seconds, tree, wait_quiet, clean_up, run_main  # noqa: E402
from run import start_upstream  # noqa: E402

HERE = Path(__file__).resolve().parent
LC = "1"  # the load core (with the fake upstream)
PROMPT = "Say hello in one short sentence."
PHASES = ("c1", "c32", "semantic")
EXPECT = {"off": None, "bypass": "bypass", "miss": "miss", "hit": "hit", "sem_exact": "hit", "sem_hit": "semantic",
          "sem_miss": "miss", "direct": None}


def workload_questions() -> tuple[list[str], list[str]]:
    """(core questions to store and ask again in other words, new questions: drawn
    like the workload's one-offs, none of them a text of the workload)."""
    import random

    import generate

    rows = [json.loads(line) for line in (HERE / "cache_workload" / "intents.jsonl").read_text().splitlines()]
    core = [r["texts"][0] for r in rows if r["kind"] == "core" and r["texts"][0].endswith("?")]
    taken = {t for r in rows for t in r["texts"]}
    oneoff = [i["texts"][0] for i in generate.one_offs(random.Random(99), taken, 5000)]
    return core, oneoff


def wordings(question: str) -> list[str]:
    """New wordings of a stored question: greetings and thank-yous around it (as
    people type them), each one text the cache has not seen."""
    import generate

    out = []
    for greeting in ["", *generate.GREETINGS]:
        body = question
        if greeting.rstrip().endswith((",", ":")) and question.split(" ", 1)[0] in generate.SENTENCE_STARTS:
            body = question[0].lower() + question[1:]
        for thanks in ["", *generate.THANKS]:
            text = greeting + body + thanks
            if text != question:
                out.append(text)
    return out


class Bodies:
    """The next request body of each target."""

    def __init__(self, run_tag: str, semantic_seeds: list[str], oneoffs: list[str]) -> None:
        self.tag, self.n = run_tag, 0
        self.variants = [w for q in semantic_seeds for w in wordings(q)]
        import random

        random.Random(7).shuffle(self.variants)
        self.oneoffs = list(oneoffs)

    def next(self, name: str) -> bytes:
        if name == "direct":
            return chat_body("gpt-4o-mini", PROMPT)
        if name in ("off", "bypass", "hit"):
            return chat_body("bench" if name == "off" else "bench-exact", PROMPT)
        if name == "miss":
            self.n += 1
            return chat_body("bench-exact", f"{PROMPT} (request {self.tag}-{self.n})")
        if name == "sem_exact":
            return chat_body("bench-semantic", PROMPT)
        if name == "sem_hit":
            return chat_body("bench-semantic", self.variants.pop())
        if name == "sem_miss":
            return chat_body("bench-semantic", self.oneoffs.pop())
        raise KeyError(name)

    def left(self, name: str) -> int:
        return len(self.variants) if name == "sem_hit" else len(self.oneoffs) if name == "sem_miss" else 1 << 30


async def alternate(targets: dict[str, Target], bodies: Bodies, rounds: int) -> dict[str, dict]:
    client = Client()
    names = list(targets)
    times: dict[str, list[float]] = {n: [] for n in names}
    outcomes: dict[str, Counter] = {n: Counter() for n in names}
    try:
        for i in range(rounds):
            for k in range(len(names)):
                name = names[(i + k) % len(names)]
                if bodies.left(name) <= 0:
                    continue
                status, headers, _, dt = await client.send(targets[name], bodies.next(name))
                got = headers.get("x-gateway-cache") if name != "direct" else None
                outcomes[name][f"{status} {got or '-'}"] += 1
                if status == 200 and got == EXPECT[name]:
                    times[name].append(dt * 1000)
    finally:
        client.close()
    out = {}
    for name in names:
        expected = f"200 {EXPECT[name] or '-'}"
        out[name] = {**percentiles(times[name]), "outcomes": dict(outcomes[name]),
                     "unexpected": sum(v for k, v in outcomes[name].items() if k != expected)}
    direct = out["direct"]
    for name in names:
        if name != "direct":
            for p in (50, 95, 99):
                out[name][f"added_p{p}_ms"] = out[name][f"p{p}_ms"] - direct[f"p{p}_ms"]
    return out


async def store_prompt(target: Target, model: str) -> None:
    """Ask the hit prompt once, so that every later request for it is a hit."""
    client = Client()
    try:
        await client.send(target, chat_body(model, PROMPT))
    finally:
        client.close()
    await asyncio.sleep(0.5)  # the store lands after the answer (after_answer)


async def seed(targets: dict[str, Target], questions: list[str]) -> Counter:
    """Store the semantic seeds (each asked once, exactly) and the semantic route's hit prompt."""
    client = Client()
    got: Counter = Counter()
    try:
        for q in [*questions, PROMPT]:
            status, headers, _, _ = await client.send(targets["sem_exact"], chat_body("bench-semantic", q))
            got[f"{status} {headers.get('x-gateway-cache')}"] += 1
    finally:
        client.close()
    return got


async def probe_semantic(target: Target, questions: list[str], n: int = 20) -> Counter:
    client = Client()
    got: Counter = Counter()
    try:
        for q in questions[:n]:
            _, headers, _, _ = await client.send(target, chat_body("bench-semantic", wordings(q)[3]))
            got[headers.get("x-gateway-cache", "-")] += 1
    finally:
        client.close()
    return got


def c1_phase(targets: dict[str, Target], names: list[str], bodies: Bodies, rounds: int) -> dict:
    """c=1 request by request over these targets, from the load core; 300 rounds of
    warm-up first (not kept)."""
    mask = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(LC)})
    try:
        run_async(alternate({n: targets[n] for n in names}, bodies, 300))
        log(f"c=1: {rounds} rounds over {', '.join(names)}")
        out = run_async(alternate({n: targets[n] for n in names}, bodies, rounds))
    finally:
        os.sched_setaffinity(0, mask)
    for name in names:
        r = out[name]
        log(f"  {name}: p50 {r['p50_ms']:.3f} ms ({r.get('added_p50_ms', 0):+.3f}), p99 {r['p99_ms']:.3f}, "
            f"{r['n']} timed, outcomes {r['outcomes']}")
    out["rounds"] = rounds
    return out


def c32_rounds(gw: CacheGateway, targets: dict[str, Target], o: argparse.Namespace) -> dict:
    """wrk c=32 rounds; medians per target and of the per-round hit/miss ratio."""
    names = ["off", "bypass", "miss", "hit"]
    runs: dict[str, list[dict]] = {n: [] for n in names}
    ratios, ratios_off = [], []
    for i in range(o.c32_rounds):
        got = {}
        for k in range(len(names)):
            name = names[(i + k) % len(names)]
            route = "bench" if name == "off" else "bench-exact"
            text = f"{PROMPT} (request UNIQUE)" if name == "miss" else PROMPT
            before_cpu, before_counts = cpu_seconds(tree_of(gw.pids)), gw.cache_counts(route)
            res = run_wrk_body(targets[name], chat_body(route, text), 32, o.c32_seconds, cpus=LC,
                               unique_tag=f"c32r{i}" if name == "miss" else None)
            counts = gw.cache_counts(route) - before_counts
            if res["non2xx"] + res["errors"]:
                raise RuntimeError(f"{name}: errors in a timed run: {res}")
            got[name] = {"rps": res["rps"], "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"],
                         "requests": res["requests"], "counts": dict(counts),
                         "cpu_ms": (cpu_seconds(tree_of(gw.pids)) - before_cpu) / max(1, res["requests"]) * 1000}
            runs[name].append(got[name])
        ratios.append(got["hit"]["rps"] / got["miss"]["rps"])
        ratios_off.append(got["hit"]["rps"] / got["off"]["rps"])
        log(f"c=32 round {i + 1}: " + ", ".join(f"{n} {got[n]['rps']:.0f} req/s" for n in names)
            + f"; hit/miss {ratios[-1]:.2f}")
    out: dict = {"rounds": o.c32_rounds, "seconds": o.c32_seconds, "ratio": statistics.median(ratios),
                 "ratio_min": min(ratios), "ratio_max": max(ratios), "ratios": ratios,
                 "ratio_off": statistics.median(ratios_off)}
    for name in names:
        rs = runs[name]
        counts: Counter = Counter()
        for r in rs:
            counts.update(r["counts"])
        total = sum(r["requests"] for r in rs)
        out[name] = {k: statistics.median(r[k] for r in rs) for k in ("rps", "p50_ms", "p99_ms", "cpu_ms")}
        out[name]["counters"] = (", ".join(f"{k} {v:.0f}" for k, v in sorted(counts.items()))
                                 + f" for {total} responses") if counts else f"none (cache off) for {total} responses"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description="The answer cache's speed at the gateway (see the module docstring).")
    p.add_argument("--rounds", type=int, default=2000, help="c=1 rounds (one request to every target each)")
    p.add_argument("--c32-rounds", type=int, default=5)
    p.add_argument("--c32-seconds", type=float, default=4)
    p.add_argument("--seeds", type=int, default=80, help="questions stored for the semantic hits (x55 wordings each)")
    p.add_argument("--sem-rounds", type=int, default=1000, help="c=1 rounds of the semantic phase")
    p.add_argument("--only", default=",".join(PHASES), help="phases to run: c1, c32, semantic (comma-separated)")
    p.add_argument("--postgres", action="store_true", help="scratch database on the local PostgreSQL")
    p.add_argument("--redis", action="store_true", help="cache and shared state in the local Redis (db 9, flushed)")
    p.add_argument("--wait-quiet", type=float, default=60, metavar="S")
    p.add_argument("--note", action="append", default=[], help="a line under the details (repeatable)")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md and results.json alone")
    p.add_argument("--keep-scratch", action="store_true")
    o = p.parse_args()
    only = set(o.only.split(","))
    if not only or only - set(PHASES):
        p.error(f"--only: phases are {', '.join(PHASES)}")
    scratch = Path(tempfile.mkdtemp(prefix="gw-bench-cache-"))
    procs = Procs(scratch)
    gw = CacheGateway(gateway_args(o.postgres, o.redis), procs, scratch)
    ok = False
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    try:
        quiet = wait_quiet(o.wait_quiet) if o.wait_quiet else None
        noise = NoiseMeter()
        upstream, up_port, up_proc = start_upstream(procs)
        capacity = upstream_capacity(upstream, 3, cpus="0")
        log("migrating, importing bench/bench.yaml and bench/cache.yaml, issuing the key")
        key = gw.configure(up_port)
        gw.start(1, cpus="0")
        url = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
        auth = {"Authorization": f"Bearer {key}"}
        targets = {"direct": Target("direct", upstream.url, "gpt-4o-mini")}
        for name in ("off", "bypass", "miss", "hit", "sem_exact", "sem_hit", "sem_miss"):
            headers = {**auth, "x-gateway-cache": "bypass"} if name == "bypass" else auth
            targets[name] = Target(name, url, "bench", headers)
        core, oneoffs = workload_questions()
        seeds = core[: o.seeds]
        bodies = Bodies(time.strftime("%H%M%S"), seeds, oneoffs)
        part: dict = {"date": started, "command": "bench/cache.sh " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                      "db": gw.describe_db().replace("limits, budgets, breakers", "limits, budgets, breakers, cache"),
                      "upstream_rps": capacity["json_rps"], "notes": list(o.note)}
        # Exact figures first: nothing has asked the semantic route yet, so its embedder
        # has not run in this process (its numpy/BLAS threads could not disturb them).
        run_async(store_prompt(targets["hit"], "bench-exact"))
        if "c1" in only:
            part["c1"] = c1_phase(targets, ["direct", "off", "bypass", "miss", "hit"], bodies, o.rounds)
        if "c32" in only:
            part["c32"] = c32_rounds(gw, targets, o)
        if "semantic" in only:
            log(f"storing {len(seeds)} questions on the semantic route")
            seeded = run_async(seed(targets, seeds))
            time.sleep(1)  # stores land after the answers (after_answer)
            probed = run_async(probe_semantic(targets["sem_hit"], seeds))
            log(f"semantic cache: probe {dict(probed)}; seeding {dict(seeded)}")
            if probed.get("semantic", 0) > 0:
                names = ["direct", "miss", "hit", "sem_exact", "sem_hit", "sem_miss"]
                sem = c1_phase(targets, names, bodies, o.sem_rounds)
                sh, se = sem["sem_hit"], sem["sem_exact"]
                part["c1_semantic"] = sem
                part["semantic"] = {"lookup_p50_ms": sh["p50_ms"] - se["p50_ms"],
                                    "lookup_p95_ms": sh["p95_ms"] - se["p95_ms"], "hits": sh["n"],
                                    "sent": sum(sh["outcomes"].values()),
                                    "miss_extra_p50_ms": sem["sem_miss"]["p50_ms"] - sem["miss"]["p50_ms"]}
            else:
                failed = {k: v for k, v in seeded.items() if not k.startswith("200")}
                part["semantic_note"] = (
                    f"no semantic hits on 20 new wordings of stored questions (outcomes {dict(probed)}"
                    + (f"; storing the questions on the semantic route answered {failed}" if failed else "")
                    + "): routing/cache/semantic is not installed or not available in this environment")
        n = noise.report(cpu_seconds(tree(up_proc.pid)) + cpu_seconds(tree_of(gw.pids)))
        records = gw.settled_records()
        part["notes"].insert(0, (
            f"The fake upstream alone served {capacity['json_rps']:.0f} JSON req/s on one core (a gauge of the "
            f"machine's speed that day); other processes used {n['other_cpu_pct_of_machine']}% of the machine during "
            f"the run" + (f" (busy {quiet}% at the start)" if quiet is not None else "")
            + f". Usage records written, by status: {records} (a hit writes one, status cache_hit)."))
        part["phase_dates"] = {k: started for k in only}
        if only != set(PHASES):  # keep the other phases' last figures, with when they were taken
            old = (json.loads((HERE / "results.json").read_text()).get("cache") or {}).get("speed") or {}
            for k in ("c1", "c32", "c1_semantic", "semantic", "semantic_note"):
                if k in old and k not in part:
                    part[k] = old[k]
            for phase in set(PHASES) - only:
                part["phase_dates"][phase] = (old.get("phase_dates") or {}).get(phase, old.get("date"))
        lines = save_part("speed", part, write=not o.no_write and bool(part.get("c1") and part.get("c32")))
        print("\n".join(lines))
        ok = True
    finally:
        clean_up(procs, [gw], scratch, keep=o.keep_scratch, ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    run_main(main)
