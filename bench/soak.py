"""Soak under faults: mixed traffic through two gateway processes while things break.

    bench/soak.sh [--minutes 10] [--clients 12] [--rss-growth-mb 25] [--json-out FILE] [--keep-scratch]

Starts its own pieces (all on 127.0.0.1): a `redis-server` on a spare port (no
persistence), two fake upstreams (bench/slow_upstream.py: `up-a`, the one that fails,
and `up-b`), a scratch PostgreSQL database (bench/run.py's Gateway, as `--postgres`)
configured from bench/soak.yaml with four keys in two teams (two keys with their own
budget, one team budget), and two uvicorn gateway processes (one worker each) sharing
the database and Redis. `--clients` clients send chat completions, half streamed,
spread over the keys, the routes `soak-fallback` (up-a then up-b), `soak-a` and
`soak-b`, and both gateways, until `--minutes` are up. Meanwhile, in cycles of at
most two minutes: Redis is restarted, up-a answers 503 (or, every other cycle, hangs:
timeouts) for a while and recovers, and gateway B is SIGKILLed and restarted.

At the end it prints (and exits 1 unless all pass) the checks of bench/soak_checks.py:
every complete response has exactly one usage record, budgets held within the
documented slack, up-a's breaker opened and closed, no reservation stranded in Redis,
gateway A's RSS did not grow beyond `--rss-growth-mb`. docs/operations/soak.md has the
figures of a 10-minute run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shlex
import signal
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiohttp  # noqa: E402

import pg_scratch  # noqa: E402
import soak_checks  # noqa: E402
from chat_client import Outcome, body, send  # noqa: E402
from procs import Procs, clean_up, free_port, rss_kb, run_main, wait_http  # noqa: E402
from run import SERVERS, Gateway  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAX_TOKENS = 40
PRICE_IN, PRICE_OUT = Decimal("10") / 10**6, Decimal("30") / 10**6  # bench/soak.yaml, per token
ROUTES = [("soak-fallback", 0.5), ("soak-a", 0.25), ("soak-b", 0.25)]
LEASE_MARGIN_S = 5.0  # GATEWAY_LEASE_MARGIN_S for the soak: leases of killed requests expire soon
ROUTE_TIMEOUT_S = 5.0  # bench/soak.yaml


def log(msg: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Soak:
    def __init__(self, args, procs: Procs, scratch: Path) -> None:
        self.args, self.procs, self.scratch = args, procs, scratch
        self.t0 = time.time()
        self.events: list[tuple[float, str]] = []
        self.faults: list[tuple[float, float]] = []
        self.outcomes: list[Outcome] = []
        self.rss: list[tuple[float, int]] = []
        self.last_kill: float | None = None
        self.gw = Gateway(SimpleNamespace(postgres=False, redis=False, guardrails=None, gateway_cmd=None,
                                          server="uvicorn"), procs, scratch)
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.gw.env.update(REDIS_URL=self.redis_url, GATEWAY_LEASE_MARGIN_S=str(LEASE_MARGIN_S))
        self.ports = [free_port(), free_port()]
        self.gateways: list = [None, None]

    def event(self, what: str) -> None:
        self.events.append((time.time() - self.t0, what))
        log(what)

    # --- pieces --------------------------------------------------------------------------
    def start_redis(self) -> None:
        self.redis = self.procs.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                                "--save", "", "--appendonly", "no"])
        deadline = time.monotonic() + 20
        import redis

        while True:
            try:
                redis.Redis.from_url(self.redis_url).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def start_upstreams(self) -> None:
        self.up_ports = {}
        for name in ("a", "b"):
            port = free_port()
            proc = self.procs.start(f"upstream-{name}", [sys.executable, str(HERE / "slow_upstream.py"), "--port",
                                                         str(port), "--ttft-ms", "100:300", "--tps", "50:100",
                                                         "--tokens", f"10:{MAX_TOKENS}"])
            wait_http(port, "/health", proc, timeout=20)
            self.up_ports[name] = port

    def configure(self) -> dict[str, str]:
        log("scratch PostgreSQL database (from the migrated template), bench/soak.yaml, four keys")
        pg_scratch.attach(self.gw, f"gw_soak_{os.getpid()}", log)
        config = self.scratch / "soak.yaml"
        config.write_text((HERE / "soak.yaml").read_text().replace("UP_A_PORT", str(self.up_ports["a"]))
                          .replace("UP_B_PORT", str(self.up_ports["b"]))
                          .replace("TEAM_BUDGET", str(self.team_budget)))
        keys = {}
        for name, team, budget in (("soak-k1", "soak-alpha", self.key_budget), ("soak-k2", "soak-alpha", None),
                                   ("soak-k3", "soak-beta", self.key_budget), ("soak-k4", "soak-beta", None)):
            extra = ["--budget", str(budget), "--budget-period", "total"] if budget else []
            keys[name] = ["--name", name, "--team", team, *extra]
        return pg_scratch.configure(self.gw, config, keys)

    def start_gateway(self, *which: int) -> None:
        """Start these gateways (A = 0, B = 1) at once, then wait until each answers."""
        for i in which:
            cmd = shlex.split(SERVERS["uvicorn"].format(host="127.0.0.1", port=self.ports[i], workers=1,
                                                        app="gateway_project.asgi:application"))
            self.gateways[i] = self.procs.start(f"gateway-{'AB'[i]}", cmd, env=self.gw.env, cwd=str(ROOT))
        for i in which:
            wait_http(self.ports[i], "/healthz", self.gateways[i], timeout=120)

    def kill_gateway(self, i: int) -> None:
        proc = self.gateways[i]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        self.procs.live.remove(proc)
        self.last_kill = time.time()

    def fault(self, mode: str, seconds: float) -> None:
        url = f"http://127.0.0.1:{self.up_ports['a']}/control/fault?mode={mode}&seconds={seconds}"
        urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5).read()

    # --- the run -------------------------------------------------------------------------
    async def faults_loop(self, duration: float) -> None:
        """Per cycle (at most 120 s): Redis restarted at 10%, up-a's fault from 25% for 15%
        of the cycle (at least 3 s; 503s, every other cycle timeouts), gateway B SIGKILLed at
        50% (restarted 3 s later, in the background: its start-up must not shift the
        schedule). The kill comes after the Redis restart, so the leases the killed process
        held are still in Redis at the end for the lease check; the rest of the cycle lets
        the breaker close again."""
        cycle = min(duration, 120.0)
        start = time.monotonic()
        restarts = []
        n = 0
        while n * cycle + 0.75 * cycle <= duration + 0.01:  # every fault of a cycle fits in the run
            base = start + n * cycle
            await _until(base + 0.10 * cycle)
            self.event("restarting Redis")
            await asyncio.to_thread(self.procs.stop, self.redis)
            await asyncio.sleep(1.0)
            await asyncio.to_thread(self.start_redis)
            self.event("Redis back")
            await _until(base + 0.25 * cycle)
            mode, length = ("error" if n % 2 == 0 else "timeout"), max(3.0, 0.15 * cycle)
            t = time.time()
            await asyncio.to_thread(self.fault, mode, length)
            self.faults.append((t, t + length))
            self.event(f"up-a fault: {mode} for {length:.0f} s")
            await _until(base + 0.50 * cycle)
            self.event("SIGKILL gateway B")
            await asyncio.to_thread(self.kill_gateway, 1)
            restarts.append(asyncio.create_task(self.restart_b(min(3.0, 0.1 * cycle))))
            n += 1
        await asyncio.gather(*restarts)

    async def restart_b(self, after: float) -> None:
        await asyncio.sleep(after)
        await asyncio.to_thread(self.start_gateway, 1)
        self.event("gateway B restarted (answering /healthz)")

    async def client(self, session: aiohttp.ClientSession, keys: dict[str, str], idx: int, stop_at: float) -> None:
        rng = random.Random(idx)
        names = sorted(keys)
        key = names[idx % len(names)]
        n = 0
        while time.monotonic() < stop_at:
            route = rng.choices([r for r, _ in ROUTES], [w for _, w in ROUTES])[0]
            gw = (idx + n) % 2
            payload = body(route, f"Soak client {idx} request {n}: say something short.", stream=rng.random() < 0.5,
                           max_tokens=MAX_TOKENS)
            out = await send(session, f"http://127.0.0.1:{self.ports[gw]}/v1/chat/completions", keys[key], payload,
                             key=key, timeout_s=20)
            out.extra["gateway"] = "AB"[gw]
            self.outcomes.append(out)
            n += 1
            if not out.complete:
                await asyncio.sleep(0.2)  # a refused or failed request: do not spin

    async def rss_loop(self, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            self.rss.append((time.time() - self.t0, rss_kb([self.gateways[0].pid])))
            await asyncio.sleep(5)

    async def traffic(self, keys: dict[str, str], duration: float) -> None:
        stop_at = time.monotonic() + duration
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await asyncio.gather(self.faults_loop(duration), self.rss_loop(stop_at),
                                 *(self.client(session, keys, i, stop_at) for i in range(self.args.clients)))
        self.rss.append((time.time() - self.t0, rss_kb([self.gateways[0].pid])))

    def settle(self) -> None:
        """Until the ledger stops changing (streams settle after their last byte)."""
        last = None
        for _ in range(40):
            now = soak_checks._pg(self.gw.db_url, "SELECT COUNT(*) FROM billing_usagerecord")[0][0]
            if now == last:
                return
            last = now
            time.sleep(1)

    def metrics(self) -> str:
        """Gateway A's /metrics ("" when it cannot be read: the breaker check then rests on
        the attempt logs alone)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[0]}/metrics", timeout=10) as resp:
                return resp.read().decode()
        except OSError as exc:
            log(f"/metrics not read: {exc}")
            return ""


async def _until(t: float) -> None:
    await asyncio.sleep(max(0.0, t - time.monotonic()))


def summary(soak: Soak) -> dict:
    outs = soak.outcomes
    by_error: dict[str, int] = {}
    for o in outs:
        if not o.complete:
            by_error[o.error or "?"] = by_error.get(o.error or "?", 0) + 1
    done = [o for o in outs if o.complete]
    return {"requests": len(outs), "complete": len(done), "streams_complete": sum(o.stream for o in done),
            "not_complete_by_reason": dict(sorted(by_error.items(), key=lambda kv: -kv[1]))}


def main() -> None:
    p = argparse.ArgumentParser(description="Soak the gateway under faults (see bench/soak.py).")
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=12)
    p.add_argument("--rss-growth-mb", type=float, default=25.0, help="allowed RSS growth of the surviving gateway")
    p.add_argument("--json-out", metavar="FILE", help="write the figures and checks as JSON")
    p.add_argument("--keep-scratch", action="store_true")
    args = p.parse_args()
    duration = args.minutes * 60
    scratch = Path(tempfile.mkdtemp(prefix="gw-soak-"))
    procs = Procs(scratch)
    soak = Soak(args, procs, scratch)
    # A key's clients spend about $0.001 a request at ~2 requests/s each: budgets that
    # run out about half way through, so the refusals are part of the soak.
    per_key_clients = max(1, args.clients // 4)
    soak.key_budget = Decimal(str(round(max(0.02, 0.0015 * per_key_clients * duration / 2), 4)))
    soak.team_budget = Decimal(str(round(float(soak.key_budget) * 1.5, 4)))
    ok = False
    try:
        soak.start_redis()
        soak.start_upstreams()
        keys = soak.configure()
        soak.start_gateway(0, 1)
        soak.t0 = time.time()
        log(f"traffic for {duration:.0f} s: {args.clients} clients, 4 keys, 3 routes, 2 gateways")
        asyncio.run(soak.traffic(keys, duration))
        log("clients stopped; waiting for the ledger to settle")
        soak.settle()
        max_cost = PRICE_IN * 64 + PRICE_OUT * MAX_TOKENS  # prompt tokens as counted, generously
        checks = {
            "ledger": soak_checks.ledger(soak.gw.db_url, soak.outcomes),
            "budgets": soak_checks.budgets(soak.gw.db_url, {
                "key soak-k1": ("key", "soak-k1", soak.key_budget, per_key_clients),
                "key soak-k3": ("key", "soak-k3", soak.key_budget, per_key_clients),
                "team soak-alpha": ("team", "soak-alpha", soak.team_budget, 2 * per_key_clients)}, max_cost),
            "breakers": soak_checks.breakers(soak.outcomes, soak.faults, "up-a/model-a", soak.metrics()),
            "leases": soak_checks.leases(soak.redis_url, ROUTE_TIMEOUT_S + LEASE_MARGIN_S, soak.last_kill),
            "rss": soak_checks.rss(soak.rss, args.rss_growth_mb),
        }
        result = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "minutes": args.minutes, "clients": args.clients,
                  "traffic": summary(soak), "events": soak.events, "checks": checks,
                  "budgets_usd": {"key": str(soak.key_budget), "team": str(soak.team_budget)},
                  "outcomes": [[round(o.started - soak.t0, 2), o.extra.get("gateway"), o.key, o.route, o.stream,
                                o.status, o.complete, o.error, o.attempt_log, round(o.e2e_ms)] for o in soak.outcomes]}
        print(json.dumps(result["traffic"], indent=1))
        for name, check in checks.items():
            print(f"{'PASS' if check['ok'] else 'FAIL'} {name}: {check['detail']}")
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(result, indent=1, default=str) + "\n")
        ok = all(c["ok"] for c in checks.values())
    finally:
        clean_up(procs, [soak.gw], scratch, keep=args.keep_scratch, ok=ok, what="soak logs")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    run_main(main)
