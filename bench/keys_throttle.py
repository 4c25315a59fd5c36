"""Wrong-key brute force against one gateway process, and a valid key from the same
address meanwhile (issue 16, docs/security/keys.md).

    .venv/bin/python bench/keys_throttle.py [--seconds 20] [--connections 32] [--postgres] [--redis]
                                            [--json-out FILE] [--env NAME=VALUE ...]

Starts its own gateway (one uvicorn worker on 127.0.0.1, a scratch SQLite database or
with --postgres a scratch PostgreSQL database; --redis: REDIS_URL=redis://127.0.0.1:6379/8,
flushed first), imports one route to the built-in mock provider and issues one key. Then:

1. baseline: the valid key alone, one request every 250 ms for 10 s (latency p50/p95);
2. attack: `--connections` concurrent connections (aiohttp, one keep-alive connection
   each) send POST /v1/chat/completions with a fresh random wrong key per request for
   `--seconds`; counted: answers per status per second. Meanwhile a second client from
   the same address sends the valid key every 250 ms and records status and latency.

Everything comes from 127.0.0.1, so it is all one source for the throttle. Prints a
JSON summary (and writes it to --json-out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiohttp  # noqa: E402

from procs import Procs, free_port, wait_http  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
SEED = """
providers:
  - name: mock
    kind: mock
    options: {latency_ms: 0, tokens_per_s: 0}
    models:
      - name: mock-smart
routes:
  - name: chat
    strategy: single
    targets:
      - model: mock/mock-smart
"""
BODY = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/8"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))] * 1000, 1)


async def valid_client(url: str, key: str, stop: asyncio.Event, every_s: float, out: list) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"}) as http:
        while not stop.is_set():
            t0 = time.perf_counter()
            async with http.post(url, json=BODY) as resp:
                await resp.read()
                out.append((resp.status, time.perf_counter() - t0))
            if every_s:
                try:
                    await asyncio.wait_for(stop.wait(), every_s)
                except TimeoutError:
                    pass


async def attacker(http: aiohttp.ClientSession, url: str, stop: asyncio.Event, counts: dict, started: float) -> None:
    while not stop.is_set():
        wrong = "sk-gw-" + secrets.token_urlsafe(32)
        try:
            async with http.post(url, json=BODY, headers={"Authorization": f"Bearer {wrong}"}) as resp:
                await resp.read()
                if stop.is_set():
                    return
                second = int(time.monotonic() - started)
                counts.setdefault(resp.status, {}).setdefault(second, 0)
                counts[resp.status][second] += 1
        except (aiohttp.ClientError, asyncio.TimeoutError):
            counts.setdefault("error", {}).setdefault(0, 0)
            counts["error"][0] += 1


async def run(url: str, key: str, seconds: float, connections: int) -> dict:
    baseline: list = []
    quiet = asyncio.Event()  # the valid key alone, at the cadence it keeps during the attack
    alone = asyncio.create_task(valid_client(url, key, quiet, 0.25, baseline))
    await asyncio.sleep(min(10.0, seconds / 2))
    quiet.set()
    await alone

    counts: dict = {}
    during: list = []
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        started = time.monotonic()
        tasks = [asyncio.create_task(attacker(http, url, stop, counts, started)) for _ in range(connections)]
        valid = asyncio.create_task(valid_client(url, key, stop, 0.25, during))
        await asyncio.sleep(seconds)
        stop.set()
        elapsed = time.monotonic() - started
        await valid
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    per_status = {str(status): sum(by_s.values()) for status, by_s in counts.items()}
    wrong_answers = sum(v for k, v in per_status.items() if k != "error")
    # The steady state: the last half of the run (the first seconds include the free allowance).
    half = int(seconds // 2)
    late = sum(n for status, by_s in counts.items() if status != "error" for s, n in by_s.items() if s >= half)
    late_span = max(1.0, elapsed - half)
    return {
        "connections": connections,
        "seconds": round(elapsed, 1),
        "wrong_key_answers": per_status,
        "wrong_key_answers_per_s": round(wrong_answers / elapsed, 1),
        "wrong_key_answers_per_s_second_half": round(late / late_span, 1),
        "valid_key_alone": {"statuses": sorted({s for s, _ in baseline}),
                            "p50_ms": pct([t for _, t in baseline], 50), "p95_ms": pct([t for _, t in baseline], 95)},
        "valid_key_during_attack": {
            "requests": len(during), "statuses": {str(s): sum(1 for x, _ in during if x == s) for s in {x for x, _ in during}},
            "p50_ms": pct([t for _, t in during], 50), "p95_ms": pct([t for _, t in during], 95),
            "max_ms": pct([t for _, t in during], 100),
        },
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--postgres", action="store_true")
    p.add_argument("--redis", action="store_true")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway process")
    p.add_argument("--json-out")
    args = p.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="gw-keys-bench-"))
    procs = Procs(scratch)
    env = dict(os.environ, GATEWAY_VAR_DIR=str(scratch), SECRET_KEY="bench-only-secret-key-" + "x" * 30,
               GATEWAY_ACCESS_LOG="false", LOG_LEVEL="WARNING")
    env["PATH"] = f"{Path(PY).parent}:{env.get('PATH', '')}"
    pg_db = None
    if args.postgres:
        import psycopg

        pg_db = f"gw_keys_bench_{os.getpid()}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {pg_db}")
        env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{pg_db}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{scratch / 'gateway.sqlite3'}"
    if args.redis:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        env["REDIS_URL"] = REDIS_URL
    for item in args.env:
        name, _, value = item.partition("=")
        env[name] = value

    def manage(*cmd: str) -> str:
        done = subprocess.run([PY, str(ROOT / "manage.py"), *cmd], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=300)
        if done.returncode:
            raise RuntimeError(f"manage.py {' '.join(cmd)}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    try:
        log(f"scratch {scratch}: migrate, import, issue_key")
        manage("migrate", "--noinput")
        (scratch / "seed.yaml").write_text(SEED)
        manage("gateway_import", str(scratch / "seed.yaml"))
        key = manage("issue_key", "--name", "bench").strip()
        port = free_port()
        proc = procs.start("gateway", [PY, "-m", "uvicorn", "gateway_project.asgi:application", "--host", "127.0.0.1",
                                       "--port", str(port), "--no-access-log", "--loop", "uvloop", "--http",
                                       "httptools"], env=env, cwd=str(ROOT))
        wait_http(port, "/healthz", proc, timeout=90)
        log(f"attack: {args.connections} connections, {args.seconds:g} s")
        result = asyncio.run(run(f"http://127.0.0.1:{port}/v1/chat/completions", key, args.seconds, args.connections))
        result["database"] = "postgresql" if args.postgres else "sqlite"
        result["redis"] = bool(args.redis)
        with aiohttp_get(f"http://127.0.0.1:{port}/metrics") as text:
            result["gateway_auth_failures_total"] = [line for line in text.splitlines()
                                                     if line.startswith("gateway_auth_failures_total")]
        print(json.dumps(result, indent=2))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        procs.stop_all()
        if pg_db:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")


class aiohttp_get:  # noqa: N801 - a tiny synchronous GET (urllib), as a context manager
    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> str:
        import urllib.request

        with urllib.request.urlopen(self.url, timeout=10) as resp:
            return resp.read().decode()

    def __exit__(self, *exc) -> None:
        return None


if __name__ == "__main__":
    main()
