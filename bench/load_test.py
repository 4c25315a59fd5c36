"""Load test: many concurrent users against a model-like fake provider, every stage on.

    bench/load_test.sh [--users 100] [--requests 1000] [--long] [--write-section] [--json-out FILE]

Starts (all on 127.0.0.1): bench/slow_upstream.py as the provider (300-800 ms to the
first token, 20-50 tokens/s, 20-60 tokens an answer) and a second one as the OTLP
collector sink, its own `redis-server`, a scratch PostgreSQL database (bench/pg_scratch.py)
configured from bench/load.yaml, and one gateway process (uvicorn, one worker, pinned
to core 0; the fake provider, the sink and the clients share core 1). Guardrails (PII
both sides with restore, secrets), the exact answer cache on route `lt-cache`, the key's
rate limits and budget and the team's budget, usage records, metrics and tracing
(OTEL_EXPORTER_OTLP_ENDPOINT set to the sink) are all on.

`--users` clients share `--requests` requests (`--long`: 10,000), half of them streamed;
one in five goes to `lt-cache` with one of ten prompts at temperature 0 (cache hits
after the first), the others to `lt` with a new prompt each. Reported: end-to-end
P50/P95/P99 (to the last byte: JSON body read, or `data: [DONE]`), time to first token,
and the gateway's overhead per request = end to end as the client saw it minus the fake
provider's own time for that request (`GET /timings`, by the `bench_id` body field the
gateway passes through), on route `lt` (cache hits have no provider time: their end to
end is reported on its own); also `gateway_overhead_seconds` from /metrics, the
gateway's own account. Targets: P95 < 2 s and P99 < 5 s end to end, overhead P99 < 10 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiohttp  # noqa: E402

import load_report  # noqa: E402
import pg_scratch  # noqa: E402
from chat_client import Outcome, body, send  # noqa: E402
from procs import NoiseMeter, Procs, clean_up, cpu_seconds, free_port, machine_info, run_main, tree, wait_http  # noqa: E402
from run import SERVERS, Gateway  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOPICS = ["tide pools", "bread baking", "orbital mechanics", "tea ceremonies", "river deltas", "glass blowing",
          "beekeeping", "sundials", "lighthouses", "coral reefs", "desert plants", "paper making"]
CACHED_PROMPTS = [f"In two sentences, what is interesting about {t}?" for t in TOPICS[:10]]


def log(msg: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


class LoadTest:
    def __init__(self, args, procs: Procs, scratch: Path) -> None:
        self.args, self.procs, self.scratch = args, procs, scratch
        self.gw = Gateway(SimpleNamespace(postgres=False, redis=False, guardrails=None, gateway_cmd=None,
                                          server="uvicorn"), procs, scratch)
        self.outcomes: list[Outcome] = []

    def start(self) -> str:
        self.up_port, self.sink_port, redis_port = free_port(), free_port(), free_port()
        up = self.procs.start("upstream", [sys.executable, str(HERE / "slow_upstream.py"), "--port", str(self.up_port),
                                           "--ttft-ms", self.args.ttft_ms, "--tps", self.args.tps,
                                           "--tokens", self.args.tokens, "--seed", "15"], cpus="1")
        sink = self.procs.start("otlp-sink", [sys.executable, str(HERE / "slow_upstream.py"), "--port",
                                              str(self.sink_port)], cpus="1")
        self.procs.start("redis", ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no"], cpus="1")
        wait_http(self.up_port, "/health", up, timeout=20)
        wait_http(self.sink_port, "/health", sink, timeout=20)
        log("scratch PostgreSQL database (from the migrated template), bench/load.yaml, the key")
        pg_scratch.attach(self.gw, f"gw_load_{os.getpid()}", log)
        config = self.scratch / "load.yaml"
        text = (HERE / "load.yaml").read_text().replace("UPSTREAM_PORT", str(self.up_port))
        if "guardrails" in self.args.without:  # to see what a stage costs (the figures say it was off)
            import yaml

            doc = yaml.safe_load(text)
            doc.pop("guardrails")
            text = yaml.safe_dump(doc, sort_keys=False)
        config.write_text(text)
        self.key = pg_scratch.configure(self.gw, config, {"load": [
            "--name", "load-client", "--team", "load", "--rpm", "100000000", "--tpm", "2000000000",
            "--budget", "1000", "--budget-period", "month"]})["load"]
        self.gw.env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        if "tracing" not in self.args.without:
            self.gw.env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{self.sink_port}",
                               OTEL_SERVICE_NAME="gateway-load-test")
        self.port = free_port()
        cmd = shlex.split(SERVERS["uvicorn"].format(host="127.0.0.1", port=self.port, workers=1,
                                                    app="gateway_project.asgi:application"))
        self.gateway = self.procs.start("gateway", cmd, cpus="0", env=self.gw.env, cwd=str(ROOT))
        wait_http(self.port, "/healthz", self.gateway, timeout=120)
        return "taskset -c 0 " + " ".join(cmd)

    def payload(self, i: int, rng: random.Random, tag: str) -> dict:
        stream = rng.random() < 0.5
        if rng.random() < 0.2:
            n = rng.randrange(len(CACHED_PROMPTS))
            # One bench_id per prompt: the cache key includes the body, so hits need the same one.
            return body("lt-cache", CACHED_PROMPTS[n], stream=stream, max_tokens=64, temperature=0,
                        bench_id=f"{tag}-cache-{n}")
        topic = TOPICS[i % len(TOPICS)]
        return body("lt", f"Request {tag} {i}: tell me briefly about {topic}, in plain words.", stream=stream,
                    max_tokens=64, bench_id=f"{tag}-{i}")

    async def run(self, n: int, users: int, tag: str, keep: bool, ramp_s: float = 0.0) -> float:
        """n requests shared by `users` concurrent clients, the k-th of which starts k/users of
        `ramp_s` in (a load test's ramp-up: 0 = all at the same instant); returns the wall time."""
        url = f"http://127.0.0.1:{self.port}/v1/chat/completions"
        counter = iter(range(n))
        rng = random.Random(tag)

        async def user(session: aiohttp.ClientSession, k: int) -> None:
            if ramp_s > 0:
                await asyncio.sleep(ramp_s * k / users)
            for i in counter:
                out = await send(session, url, self.key, self.payload(i, rng, tag), timeout_s=60)
                if keep:
                    self.outcomes.append(out)

        t0 = time.perf_counter()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await asyncio.gather(*(user(session, k) for k in range(users)))
        return time.perf_counter() - t0

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as resp:
            return resp.read().decode()


def main() -> None:
    p = argparse.ArgumentParser(description="Load test the gateway (see bench/load_test.py).")
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--requests", type=int, help="default 1,000 (--long: 10,000)")
    p.add_argument("--long", action="store_true", help="the longer variant: 10,000 requests")
    p.add_argument("--warmup", type=int, default=50, help="requests before measuring (not counted)")
    p.add_argument("--ttft-ms", default="300:800")
    p.add_argument("--tps", default="20:50")
    p.add_argument("--tokens", default="20:60")
    p.add_argument("--ramp-s", type=float, default=1.5,
                   help="users start spread over this many seconds (ramp-up; about one request's length); "
                        "0 = all at once, a burst of --users requests on one core")
    p.add_argument("--without", type=lambda v: {x for x in v.split(",") if x}, default=set(),
                   help="comma-separated stages to leave off, to see what they cost: guardrails, tracing")
    p.add_argument("--write-section", action="store_true",
                   help="store the table as BENCHMARKS.md's section issue15-load (bench/report.py --section)")
    p.add_argument("--note", default="", help="a line under the table")
    p.add_argument("--json-out", metavar="FILE")
    p.add_argument("--keep-scratch", action="store_true")
    args = p.parse_args()
    n = args.requests or (10_000 if args.long else 1_000)
    try:
        os.sched_setaffinity(0, {1})  # the clients on the load core, next to the fake provider
    except OSError:
        pass
    scratch = Path(tempfile.mkdtemp(prefix="gw-load-"))
    procs = Procs(scratch)
    lt = LoadTest(args, procs, scratch)
    ok = False
    try:
        start_cmd = lt.start()
        log(f"warm-up: {args.warmup} requests")
        asyncio.run(lt.run(args.warmup, min(args.users, 10), "warm", keep=False))
        _get_json(f"http://127.0.0.1:{lt.up_port}/timings?clear=1")
        metrics_before = lt.metrics()
        noise = NoiseMeter()
        ours = [pid for proc in procs.live for pid in tree(proc.pid)]  # gateway, fake provider, sink, Redis
        ours0, cpu0 = cpu_seconds(ours), cpu_seconds(tree(lt.gateway.pid))
        log(f"{n} requests, {args.users} concurrent users")
        wall = asyncio.run(lt.run(n, args.users, "run", keep=True, ramp_s=args.ramp_s))
        cpu = cpu_seconds(tree(lt.gateway.pid)) - cpu0
        others = noise.report(cpu_seconds(ours) - ours0)  # "other": none of this run's processes
        time.sleep(2)  # the span exporter's batch, the last records
        timings = _get_json(f"http://127.0.0.1:{lt.up_port}/timings")
        result = load_report.figures(lt.outcomes, timings, metrics_before, lt.metrics(), wall, cpu)
        result.update(users=args.users, requests=n, ramp_s=args.ramp_s, start_cmd=start_cmd, machine=machine_info(),
                      noise=others, date=time.strftime("%Y-%m-%d %H:%M %Z"),
                      command="bench/load_test.sh " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
                      upstream={"ttft_ms": args.ttft_ms, "tps": args.tps, "tokens": args.tokens},
                      otlp_sink=_get_json(f"http://127.0.0.1:{lt.sink_port}/control/stats"),
                      without=sorted(args.without))
        lines = load_report.markdown(result, args.note)
        print("\n".join(lines))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result, indent=1, default=str) + "\n")
        if args.write_section:
            section = scratch / "section.md"
            section.write_text("\n".join(lines) + "\n")
            import subprocess

            subprocess.run([sys.executable, str(HERE / "report.py"), "--section", "issue15-load", "--title",
                            "Load test (issue 15)", str(section)], check=True, cwd=ROOT)
        ok = result["errors"] == 0
    finally:
        clean_up(procs, [lt.gw], scratch, keep=args.keep_scratch, ok=ok, what="load test logs")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    run_main(main)
