"""What the cache benchmarks (bench/cache.py, bench/cache_replay.py) share: the gateway
with the cache routes of bench/cache.yaml, an HTTP client that keeps response headers
and bodies (the cache's outcome is the `x-gateway-cache` header), wrk with a body that
differs on every request (true misses), and the "Cache (issue 12)" section of
BENCHMARKS.md, rendered from bench/results.json["cache"].
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import subprocess
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

import report
from load import Target, _Conn, parse_wrk, pct
from run import Gateway

HERE = Path(__file__).resolve().parent
ROUTES = ("bench", "bench-exact", "bench-semantic")  # cache off / exact / semantic
SECTION = "issue12-cache"
TITLE = "Cache (issue 12)"


def gateway_args(postgres: bool = False, redis: bool = False) -> argparse.Namespace:
    return argparse.Namespace(postgres=postgres, redis=redis, gateway_cmd=None, server="uvicorn", guardrails=None)


class CacheGateway(Gateway):
    """bench.yaml (route `bench`, cache off) plus cache.yaml (`bench-exact`,
    `bench-semantic`), and a key that may call all three."""

    def configure(self, upstream_port: int) -> str:
        self.manage("migrate", "--noinput")
        config = self.scratch / "bench.yaml"
        config.write_text((HERE / "bench.yaml").read_text().replace("UPSTREAM_PORT", str(upstream_port)))
        self.manage("gateway_import", str(config))
        self.manage("gateway_import", str(HERE / "cache.yaml"))
        return self.manage("issue_key", "--name", "bench-cache-client", "--team", "bench", "--routes",
                           ",".join(ROUTES), "--rpm", "100000000", "--tpm", "2000000000", "--budget", "1000000",
                           "--budget-period", "month").strip()

    def metric(self, name: str) -> dict[tuple, float]:
        """One counter of /metrics by its labels' values (this worker's registry)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        out: dict[tuple, float] = {}
        for line in text.splitlines():
            if line.startswith(name + "{"):
                labels = tuple(sorted(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0])))
                out[labels] = float(line.rsplit(" ", 1)[1])
        return out

    def cache_counts(self, route: str) -> Counter:
        """gateway_cache_requests_total of one route, by result."""
        out: Counter = Counter()
        for labels, value in self.metric("gateway_cache_requests_total").items():
            d = dict(labels)
            if d.get("route") == route:
                out[d.get("result", "?")] += value
        return out


def chat_body(model: str, text: str, **extra) -> bytes:
    """A cacheable chat request: one user message, temperature 0 (the routes cache only
    deterministic requests)."""
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}], "temperature": 0, **extra},
                      separators=(",", ":")).encode()


class HConn(_Conn):
    """load._Conn that also keeps the response's headers and body."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: dict[str, str] = {}
        self.data = bytearray()

    def on_message_begin(self) -> None:
        self.headers, self.data = {}, bytearray()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self.data += body


async def connect(target: Target) -> HConn:
    _, conn = await asyncio.get_running_loop().create_connection(HConn, *target.addr)
    return conn


class Client:
    """One keep-alive connection per target, reopened when the server closes it."""

    def __init__(self) -> None:
        self.conns: dict[str, HConn] = {}

    async def send(self, target: Target, body: bytes) -> tuple[int, dict, bytes, float]:
        """(status, headers, body, seconds from writing the request to its last byte)."""
        conn = self.conns.get(target.name)
        if conn is None or conn.closed or not conn.keep:
            if conn is not None and conn.transport is not None:
                conn.transport.close()
            conn = self.conns[target.name] = await connect(target)
        raw = target.raw(body)
        t0 = time.perf_counter()
        status = await conn.request(raw)
        return status, conn.headers, bytes(conn.data), time.perf_counter() - t0

    def close(self) -> None:
        for conn in self.conns.values():
            if conn.transport is not None:
                conn.transport.close()
        self.conns = {}


def percentiles(values: list[float]) -> dict:
    return {"n": len(values), **{f"p{p}_ms": pct(values, p) for p in (50, 95, 99)}}


def run_wrk_body(target: Target, body: bytes, concurrency: int, seconds: float, cpus: str | None = None,
                 unique_tag: str | None = None) -> dict:
    """wrk --latency -t1 with this body; with `unique_tag`, the word UNIQUE in the body
    becomes "<tag>-<counter>" on every request (bench/wrk_unique.lua): every request a
    different prompt, so every one a cache miss."""
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as f:
        f.write(body)
    env = dict(os.environ, WRK_BODY_FILE=f.name, WRK_AUTH=target.headers.get("Authorization", ""),
               WRK_LUA_DIR=str(HERE), WRK_UNIQUE_TAG=unique_tag or "")
    extra = [a for k, v in target.headers.items() if k != "Authorization" for a in ("-H", f"{k}: {v}")]
    script = HERE / ("wrk_unique.lua" if unique_tag else "wrk_post.lua")
    cmd = ["wrk", "--latency", "-t1", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "10s", "-s", str(script),
           *extra, target.url]
    if cpus:
        cmd = ["taskset", "-c", cpus, *cmd]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 60).stdout
    finally:
        os.unlink(f.name)
    return parse_wrk(out)


# --- the BENCHMARKS.md section -----------------------------------------------------------

def _f(x, d: int = 2, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.{d}f}" if signed else f"{x:.{d}f}"


def _pc(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def save_part(name: str, part: dict, write: bool) -> list[str]:
    """Store one benchmark's results under results.json["cache"][name] and re-render
    the section (and BENCHMARKS.md) from all parts; returns the section's lines."""
    data = report.load_results()
    parts = data.setdefault("cache", {})
    parts[name] = part
    lines = section_lines(parts)
    if write:
        data.setdefault("sections", {})[SECTION] = {"title": TITLE, "lines": lines}
        report.write(data)
    return lines


def _holds(ok: bool | None) -> str:
    return "n/a" if ok is None else "yes" if ok else "**no**"


def section_lines(parts: dict) -> list[str]:
    speed = parts.get("speed")
    rows = ["| target (issue 12) | measured | holds? |", "|---|---|---|"]
    if speed:
        c1 = speed["c1"]
        hit, miss, off = c1.get("hit"), c1.get("miss"), c1.get("off")
        rows.append(
            f"| Exact hit at c=1: ≤ 1 ms p50 added over direct | hit **{_f(hit['added_p50_ms'], 3, True)} ms** "
            f"(p95 {_f(hit['added_p95_ms'], 3, True)}, p99 {_f(hit['added_p99_ms'], 3, True)}); the miss path "
            f"{_f(miss['added_p50_ms'], 3, True)}, cache off {_f(off['added_p50_ms'], 3, True)}; "
            f"{c1['rounds']} rounds, request by request | {_holds(hit['added_p50_ms'] <= 1.0)} |")
        t = speed["c32"]
        rows.append(
            f"| Hit throughput per core ≥ 1.5x the miss path's (c=32, 1 core) | hit {_f(t['hit']['rps'], 0)} req/s, "
            f"miss {_f(t['miss']['rps'], 0)} req/s: **{_f(t['ratio'], 2)}x** (median of {t['rounds']} rounds, "
            f"range {_f(t['ratio_min'], 2)}-{_f(t['ratio_max'], 2)}); CPU {_f(t['hit']['cpu_ms'], 3)} vs "
            f"{_f(t['miss']['cpu_ms'], 3)} ms/request; against the route with the cache off "
            f"({_f(t['off']['rps'], 0)} req/s) {_f(t.get('ratio_off'), 2)}x | {_holds(t['ratio'] >= 1.5)} |")
    for mode in ("exact", "semantic"):
        r = parts.get(f"replay-{mode}")
        if not r:
            continue
        s = r["summary"]
        how = (f"exact {_pc(s['exact_rate'])} + semantic {_pc(s['semantic_rate'])}" if mode == "semantic"
               else f"exact hits only; {_pc(s['exact_ceiling'])} of the requests repeat an earlier text")
        rows.append(f"| Replayed workload, `cache: {{mode: {mode}}}`: hit rate > 15% | **{_pc(s['hit_rate'])}** "
                    f"({how}; {s['n']} requests) | {_holds(s['hit_rate'] > 0.15)} |")
        right = (f"exact {_pc(s['exact_right'])} of {s['exact_hits']}, semantic {_pc(s['semantic_right'])} of "
                 f"{s['semantic_hits']}" if mode == "semantic" else f"{s['exact_hits']} exact hits")
        rows.append(f"| ... share of hits that were right > 95% | **{_pc(s['right_share'])}** ({right}) | "
                    f"{_holds(None if s['right_share'] is None else s['right_share'] > 0.95)} |")
    if speed and speed.get("semantic"):
        sem = speed["semantic"]
        rows.append(f"| Semantic lookup p50 ≤ 15 ms incl. the embedding (semantic hit minus exact hit, p50) | "
                    f"**{_f(sem['lookup_p50_ms'], 2)} ms** (p95 {_f(sem['lookup_p95_ms'], 2)}; "
                    f"{sem['hits']} semantic hits of {sem['sent']} asked) | {_holds(sem['lookup_p50_ms'] <= 15)} |")
    elif speed:
        rows.append(f"| Semantic lookup p50 ≤ 15 ms incl. the embedding | not measured: "
                    f"{speed.get('semantic_note', 'no semantic hits')} | n/a |")
    lines = ["Figures from `bench/cache.sh` (speed) and `bench/cache_replay.sh` (the replayed Q&A workload); "
             "how they are measured: [bench/README.md](bench/README.md#cache-issue-12).", "", *rows, ""]
    if speed:
        lines += _speed_details(speed)
    for mode in ("exact", "semantic"):
        if parts.get(f"replay-{mode}"):
            lines += _replay_details(parts[f"replay-{mode}"], mode)
    return lines


def _speed_details(speed: dict) -> list[str]:
    c1 = speed["c1"]
    out = [f"Speed, measured {speed['date']} with `{speed['command']}` ({speed['db']}): the gateway (uvicorn, 1 "
           "worker) pinned to core 0; the fake upstream and the clients on core 1. All requests carry "
           "`temperature: 0` and the one-line prompt.", "",
           "| c=1, request by request | p50 | p95 | p99 | added p50 over direct | requests timed |",
           "|---|---|---|---|---|---|"]
    labels = {"direct": "direct to the fake upstream", "off": "route with the cache off",
              "bypass": "exact route, `x-gateway-cache: bypass`",
              "miss": "exact route, miss (a new prompt each time: lookup, upstream, store)",
              "hit": "exact route, hit", "sem_exact": "semantic route, exact hit",
              "sem_hit": "semantic route, semantic hit (a new wording of a stored question each time)",
              "sem_miss": "semantic route, miss (a new question each time)"}
    out += _c1_rows(c1, labels, ("direct", "off", "bypass", "miss", "hit"))
    sem = speed.get("c1_semantic")
    if sem:
        when = (speed.get("phase_dates") or {}).get("semantic", speed["date"])
        run = ("after every other figure of this run" if when == speed["date"]
               else f"{when}, after the exact figures of that run")
        out += ["", f"Semantic route, measured {run} (the embedder runs only from then on), "
                f"{sem['rounds']} rounds request by request; the semantic lookup is sem. hit minus exact hit on "
                "the same route.", "", "| c=1, request by request | p50 | p95 | p99 | added p50 over direct | "
                "requests timed |", "|---|---|---|---|---|---|"]
        out += _c1_rows(sem, labels, ("direct", "miss", "hit", "sem_exact", "sem_hit", "sem_miss"))
        extra = speed["semantic"]["miss_extra_p50_ms"]
        out += ["", f"A semantic miss costs {_f(extra, 2, True)} ms p50 over an exact-route miss in the same rounds: "
                "the embedding and the search on the way in (the index is added to after the answer is sent)."]
    t = speed["c32"]
    when = (speed.get("phase_dates") or {}).get("c32", speed["date"])
    out += ["", f"c=32 on one core{'' if when == speed['date'] else ', measured ' + when} (wrk -t1, "
            f"{t['seconds']:g} s per target and round, {t['rounds']} rounds, "
            "the targets' order rotating): medians of the rounds.", "",
            "| c=32, 1 core | req/s | p50 / p99 (ms) | CPU ms/request | gateway's cache counters during the runs |",
            "|---|---|---|---|---|"]
    for key, label in (("off", "cache off"), ("bypass", "exact route, bypass header"),
                       ("miss", "exact route, miss (new prompt every request)"), ("hit", "exact route, hit")):
        r = t.get(key)
        if r:
            out.append(f"| {label} | {_f(r['rps'], 0)} | {_f(r['p50_ms'], 1)} / {_f(r['p99_ms'], 1)} | "
                       f"{_f(r['cpu_ms'], 3)} | {r.get('counters', '')} |")
    out += ["", *speed.get("notes", []), ""]
    return out


def _c1_rows(c1: dict, labels: dict, keys: tuple) -> list[str]:
    out = []
    for key in keys:
        r = c1.get(key)
        if not r:
            continue
        added = "" if key == "direct" else _f(r["added_p50_ms"], 3, True)
        extra = f" ({r['unexpected']} other outcomes left out)" if r.get("unexpected") else ""
        out.append(f"| {labels[key]} | {_f(r['p50_ms'], 3)} | {_f(r['p95_ms'], 3)} | {_f(r['p99_ms'], 3)} | {added} | "
                   f"{r['n']}{extra} |")
    return out


def _replay_details(r: dict, mode: str) -> list[str]:
    s = r["summary"]
    out = [f"Replay, `cache: {{mode: {mode}}}`, measured {r['date']} with `{r['command']}` ({r['db']}): "
           f"{r['workload']}", "",
           "| requests by what the stream had before | requests | exact hits | semantic hits | right | wrong "
           "| misses |",
           "|---|---|---|---|---|---|---|"]
    for key, label in (("repeat", "exact repeat of an earlier text"),
                       ("paraphrase", "the same intent asked before in other words"),
                       ("new", "a new intent (a hit here is always wrong)"), ("all", "**all**")):
        b = r["by_seen"].get(key)
        if b:
            out.append(f"| {label} | {b['n']} | {b['hit']} | {b['semantic']} | {b['right']} | {b['wrong']} | "
                       f"{b['miss']} |")
    out += ["", f"Requests for look-alike intents (another number, name, negation or unit than a catalogue "
            f"question): {s['lookalike_requests']}, of which {s['lookalike_wrong']} were answered with another "
            f"intent's answer. Hit rate on paraphrases (semantic recall): {_pc(s.get('paraphrase_recall'))}. "
            f"Misses whose answer came from the upstream for another question: {s['foreign_misses']} (must be 0). "
            f"Latency p50 (absolute, c=1, not interleaved): miss {_f(s['miss_p50_ms'])} ms, exact hit "
            f"{_f(s['hit_p50_ms'])} ms, semantic hit {_f(s['semantic_p50_ms'])} ms."]
    if s.get("similarity"):
        sim = s["similarity"]
        out[-1] += (f" Similarity of right semantic hits: min {_f(sim['right_min'], 3)}, median "
                    f"{_f(sim['right_median'], 3)}; of wrong ones: max {_f(sim['wrong_max'], 3)}.")
    if r.get("wrong_examples"):
        out += ["", f"Wrong hits ({r['wrong_total']}) by the intent asked and the intent served, most frequent "
                "first: an example request → the question whose answer it got (how often; the highest "
                "similarity):", ""]
        for w in r["wrong_examples"]:
            sim = f", similarity up to {w['max_similarity']:.3f}" if w.get("max_similarity") else ""
            out.append(f"- {w['asked']!r} → {w['served']!r} ({w['count']}x, {w['header']}{sim})")
    out += ["", *r.get("notes", []), ""]
    return out
