"""Replay the shipped Q&A workload (bench/cache_workload/) through a caching route and
count the hits, and how many of them were right.

    bench/cache_replay.sh [--mode semantic|exact] [--concurrency 1] [--no-write]

The fake upstream runs with `--answer digest`: its answer to a question is
"answer:<sha256 of the question's text>", so the answer a client gets names the
question it was produced for. The workload labels every text with its intent
(intents.jsonl, requests.jsonl); a hit is *right* when the question whose answer was
served has the same intent as the one asked, and *wrong* otherwise (a look-alike's
answer, another number's, another name's). A miss must carry the answer to its own
question (counted: `foreign_misses`, must be 0).

`--mode semantic` (default) replays on route `bench-semantic` (`cache: {mode:
semantic}`); where the semantic cache is not installed that route caches exactly and
the figures say so. `--mode exact` replays on `bench-exact`. One gateway (uvicorn, 1
worker, pinned to core 0), a fresh scratch database and cache per run, requests in the
stream's order (`--concurrency N`: N at a time, still in order of sending).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
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

from cache_common import CacheGateway, Client, chat_body, gateway_args, save_part  # noqa: E402
from load import Target, pct, run_async  # noqa: E402
from measure import log, tree_of  # noqa: E402
from procs import NoiseMeter, Procs, cpu_seconds, free_port, tree, wait_http, wait_quiet, clean_up, run_main  # noqa: E402

HERE = Path(__file__).resolve().parent
WORKLOAD = HERE / "cache_workload"
ROUTE = {"semantic": "bench-semantic", "exact": "bench-exact"}


def digest(text: str) -> str:
    """What bench/upstream.py --answer digest answers to this question."""
    return "answer:" + hashlib.sha256(text.strip().encode()).hexdigest()[:16]


def load_workload() -> tuple[list[dict], dict[str, dict], dict[str, tuple[str, str]]]:
    """(requests, intents by id, answer -> (intent, question text))."""
    intents = {r["id"]: r for r in map(json.loads, (WORKLOAD / "intents.jsonl").read_text().splitlines())}
    requests = [json.loads(line) for line in (WORKLOAD / "requests.jsonl").read_text().splitlines()]
    answers: dict[str, tuple[str, str]] = {}
    for intent in intents.values():
        for text in intent["texts"]:
            answers[digest(text)] = (intent["id"], text)
    for r in requests:
        owner = answers.setdefault(digest(r["text"]), (r["intent"], r["text"]))
        if owner[0] != r["intent"]:
            raise SystemExit(f"workload: {r['text']!r} is labelled {r['intent']} and {owner[0]}")
    return requests, intents, answers


async def replay(target: Target, route: str, requests: list[dict], concurrency: int) -> list[dict]:
    """Send the stream in order, `concurrency` in flight; one result per request."""
    results: list[dict | None] = [None] * len(requests)
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(len(requests)):
        queue.put_nowait(i)

    async def worker() -> None:
        client = Client()
        try:
            while not queue.empty():
                i = queue.get_nowait()
                status, headers, body, dt = await client.send(target, chat_body(route, requests[i]["text"]))
                content = None
                if status == 200:
                    try:
                        content = json.loads(body)["choices"][0]["message"]["content"]
                    except (ValueError, KeyError, IndexError, TypeError):
                        content = None
                results[i] = {"status": status, "cache": headers.get("x-gateway-cache", "-"),
                              "similarity": headers.get("x-gateway-cache-similarity"),
                              "coalesced": headers.get("x-gateway-cache-coalesced") == "1",
                              "content": content, "ms": dt * 1000}
        finally:
            client.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [r for r in results if r is not None]


def score(requests: list[dict], results: list[dict], intents: dict[str, dict],
          answers: dict[str, tuple[str, str]]) -> tuple[dict, dict, list[dict]]:
    """Summary, breakdown by what the stream had before each request, wrong hits."""
    by_seen: dict[str, Counter] = {k: Counter() for k in ("repeat", "paraphrase", "new", "all")}
    lat: dict[str, list[float]] = {"hit": [], "semantic": [], "miss": []}
    sims_right: list[float] = []
    sims_wrong: list[float] = []
    wrong: list[dict] = []
    foreign = lookalike_wrong = lookalike_n = statuses_bad = 0
    for req, res in zip(requests, results):
        kind = res["cache"] if res["status"] == 200 else "error"
        served = answers.get(res["content"] or "")
        b = by_seen[req["seen"]]
        for c in (b, by_seen["all"]):
            c["n"] += 1
        if intents[req["intent"]]["kind"] == "lookalike":
            lookalike_n += 1
        if kind == "error":
            statuses_bad += 1
            continue
        if kind in lat:
            lat[kind].append(res["ms"])
        if kind not in ("hit", "semantic"):
            for c in (b, by_seen["all"]):
                c["miss"] += 1
            if served is None or served[1] != req["text"]:
                foreign += 1
            continue
        right = served is not None and served[0] == req["intent"]
        for c in (b, by_seen["all"]):
            c[kind] += 1
            c["right" if right else "wrong"] += 1
        sim = float(res["similarity"]) if res.get("similarity") else None
        if kind == "semantic" and sim is not None:
            (sims_right if right else sims_wrong).append(sim)
        if not right:
            if intents[req["intent"]]["kind"] == "lookalike":
                lookalike_wrong += 1
            wrong.append({"n": req["n"], "asked": req["text"], "intent": req["intent"],
                          "served": served[1] if served else res["content"],
                          "served_intent": served[0] if served else None, "header": kind,
                          "similarity": res.get("similarity")})
    a = by_seen["all"]
    n = a["n"]
    hits = a["hit"] + a["semantic"]
    exact_right = sum(1 for req, res in zip(requests, results) if res["cache"] == "hit"
                      and (answers.get(res["content"] or "") or ("",))[0] == req["intent"])
    sem_right = a["right"] - exact_right
    para = by_seen["paraphrase"]
    summary = {
        "n": n, "errors": statuses_bad, "hits": hits, "exact_hits": a["hit"], "semantic_hits": a["semantic"],
        "hit_rate": hits / n if n else None, "exact_rate": a["hit"] / n if n else None,
        "semantic_rate": a["semantic"] / n if n else None,
        "right_share": a["right"] / hits if hits else None,
        "exact_right": exact_right / a["hit"] if a["hit"] else None,
        "semantic_right": sem_right / a["semantic"] if a["semantic"] else None,
        "exact_ceiling": by_seen["repeat"]["n"] / n if n else None,
        "intent_ceiling": (by_seen["repeat"]["n"] + para["n"]) / n if n else None,
        "paraphrase_recall": para["right"] / para["n"] if para["n"] else None,
        "lookalike_requests": lookalike_n, "lookalike_wrong": lookalike_wrong, "foreign_misses": foreign,
        "coalesced": sum(1 for r in results if r["coalesced"]),
        "miss_p50_ms": pct(lat["miss"], 50), "hit_p50_ms": pct(lat["hit"], 50),
        "semantic_p50_ms": pct(lat["semantic"], 50),
    }
    if sims_right or sims_wrong:
        summary["similarity"] = {
            "right_min": min(sims_right) if sims_right else None,
            "right_median": statistics.median(sims_right) if sims_right else None,
            "wrong_max": max(sims_wrong) if sims_wrong else None, "wrong_n": len(sims_wrong)}
    breakdown = {k: {f: v.get(f, 0) for f in ("n", "hit", "semantic", "right", "wrong", "miss")}
                 for k, v in by_seen.items()}
    return summary, breakdown, wrong


def group_wrong(wrong: list[dict]) -> list[dict]:
    """Wrong hits by (intent asked, intent served), most frequent first: one example
    each, how often, the highest similarity."""
    groups: dict[tuple, dict] = {}
    for w in wrong:
        g = groups.setdefault((w["intent"], w["served_intent"]), {**w, "count": 0, "max_similarity": None})
        g["count"] += 1
        if w.get("similarity") and (g["max_similarity"] is None or float(w["similarity"]) > g["max_similarity"]):
            g["max_similarity"] = float(w["similarity"])
    return sorted(groups.values(), key=lambda g: (-g["count"], g["n"]))


def main() -> None:
    p = argparse.ArgumentParser(description="Replay the Q&A workload through the cache (see the module docstring).")
    p.add_argument("--mode", choices=sorted(ROUTE), default="semantic")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--limit", type=int, default=0, help="replay only the first N requests (0 = all)")
    p.add_argument("--postgres", action="store_true", help="scratch database on the local PostgreSQL")
    p.add_argument("--redis", action="store_true", help="cache and shared state in the local Redis (db 9, flushed)")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S")
    p.add_argument("--note", action="append", default=[], help="a line under the details (repeatable)")
    p.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md and results.json alone")
    p.add_argument("--json-out", metavar="FILE", help="also write every request's outcome to FILE")
    p.add_argument("--keep-scratch", action="store_true")
    o = p.parse_args()
    requests, intents, answers = load_workload()
    if o.limit:
        requests = requests[: o.limit]
    scratch = Path(tempfile.mkdtemp(prefix="gw-bench-replay-"))
    procs = Procs(scratch)
    gw = CacheGateway(gateway_args(o.postgres, o.redis), procs, scratch)
    ok = False
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    try:
        if o.wait_quiet:
            wait_quiet(o.wait_quiet)
        noise = NoiseMeter()
        port = free_port()
        up = procs.start("upstream", [sys.executable, str(HERE / "upstream.py"), "--port", str(port),
                                      "--answer", "digest"], cpus="1")
        wait_http(port, "/health", up, timeout=20)
        log("migrating, importing bench/bench.yaml and bench/cache.yaml, issuing the key")
        key = gw.configure(port)
        gw.start(1, cpus="0")
        route = ROUTE[o.mode]
        target = Target("gateway", f"http://127.0.0.1:{gw.port}/v1/chat/completions", route,
                        {"Authorization": f"Bearer {key}"})
        log(f"replaying {len(requests)} requests on {route} at c={o.concurrency}")
        t0 = time.perf_counter()
        results = run_async(replay(target, route, requests, o.concurrency))
        elapsed = time.perf_counter() - t0
        summary, breakdown, wrong = score(requests, results, intents, answers)
        counters = gw.cache_counts(route)
        records = gw.settled_records()
        n = noise.report(cpu_seconds(tree(up.pid)) + cpu_seconds(tree_of(gw.pids)))
        kinds = Counter(i["kind"] for i in intents.values())
        seen = Counter(r["seen"] for r in requests)
        semantic_seen = summary["semantic_hits"] > 0
        notes = [f"Gateway counters (gateway_cache_requests_total on {route}): "
                 + ", ".join(f"{k} {v:.0f}" for k, v in sorted(counters.items()))
                 + f"; usage records by status {records}; {summary['errors']} errors; {elapsed:.0f} s; other "
                 f"processes used {n['other_cpu_pct_of_machine']}% of the machine."]
        repeats_semantic = breakdown["repeat"]["semantic"]
        if repeats_semantic:
            notes.append(f"{repeats_semantic} exact repeats were answered by the semantic lookup, not the exact one: "
                         "a text first answered by a semantic hit is not stored under its own key, so each of its "
                         "repeats takes the semantic path again (and repeats a wrong hit, if it was one).")
        if o.mode == "semantic" and not semantic_seen:
            notes.append("**No semantic hits**: the semantic cache (routing/cache/semantic) is not installed or "
                         "not available here, so the semantic route cached exactly; these are exact-only figures.")
        part = {
            "date": started, "command": "bench/cache_replay.sh " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            "db": gw.describe_db().replace("limits, budgets, breakers", "limits, budgets, breakers, cache"),
            "workload": (f"{len(requests)} requests (bench/cache_workload/requests.jsonl, in order, c={o.concurrency}) "
                         f"over {kinds['core']} catalogue intents, {kinds['lookalike']} look-alikes and "
                         f"{kinds['oneoff']} one-off questions; before each request the stream had: the same text "
                         f"{seen['repeat']} times, the intent in other words only {seen['paraphrase']}, neither "
                         f"{seen['new']} (so at most {summary['exact_ceiling']:.1%} exact and "
                         f"{summary['intent_ceiling']:.1%} right hits are possible)."),
            "summary": summary, "by_seen": breakdown, "wrong_examples": group_wrong(wrong)[:15],
            "wrong_total": len(wrong),
            "notes": notes + list(o.note),
        }
        if o.json_out:
            Path(o.json_out).write_text(json.dumps({"part": part, "results": results, "wrong": wrong}, indent=1))
        lines = save_part(f"replay-{o.mode}", part, write=not o.no_write and not o.limit)
        print("\n".join(lines))
        ok = summary["errors"] == 0 and summary["foreign_misses"] == 0
    finally:
        clean_up(procs, [gw], scratch, keep=o.keep_scratch, ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    run_main(main)
