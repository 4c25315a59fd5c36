"""CPU, Redis commands and SQL transactions per request of one gateway process: figures
that a loaded machine does not distort much (unlike wall-clock latency).

    .venv/bin/python bench/perf_cpu.py [--postgres] [--redis] [--config bench|load] [-n 2000]
                                       [--kinds json,stream] [--profile DIR] [--json-out FILE]

Starts its own processes on 127.0.0.1: the fake upstream (bench/upstream.py for
`--config bench`, the route `bench` of bench/bench.yaml as bench/run.py measures it;
for `--config load` bench/slow_upstream.py with no delays but the load test's answer
lengths, 20-60 tokens, each its own chunk, and bench/load.yaml: guardrails, cache,
budgets, tracing to a sink as bench/load_test.py runs it), its own `redis-server` on a
spare port (`--redis`: so INFO commandstats counts this gateway's commands only), a
scratch database (SQLite file, or `--postgres`: a copy of bench/pg_scratch.py's
template) and one uvicorn worker pinned to core 0.

For each kind of request it warms up, then sends `-n` requests at concurrency 8 and
reports the gateway process's CPU (utime + stime from /proc) per request, Redis
commands per request (by command, from INFO commandstats), and PostgreSQL transactions
per request (xact_commit + xact_rollback of the scratch database: with autocommit,
one per statement outside the ledger's group commit). `--profile DIR` records each
measured run with py-spy (must be on PATH or in /tmp/tools/bin) and writes the
collapsed stacks and a top-N table of own and inclusive time per function.

Kinds: json, stream (route bench, or `lt` with --config load), and with --config load
also cache_json / cache_stream (route lt-cache, one prompt: hits after the first) and
mix (bench/load_test.py's payload mix).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aiohttp  # noqa: E402

import pg_scratch  # noqa: E402
from chat_client import body, send  # noqa: E402
from procs import Procs, clean_up, cpu_seconds, free_port, run_main, tree, wait_http  # noqa: E402
from run import SERVERS, Gateway  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOPICS = ["tide pools", "bread baking", "orbital mechanics", "tea ceremonies", "river deltas", "glass blowing"]


def log(msg: str) -> None:
    print(f"[perf {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _migrations_hash(tree: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(tree.glob("*/migrations/*.py")):
        digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _migrate(env: dict, tree: Path, database_url: str) -> None:
    subprocess.run([sys.executable, str(tree / "manage.py"), "migrate", "--noinput"], cwd=tree,
                   env=dict(env, DATABASE_URL=database_url), check=True, capture_output=True, timeout=900)


def _database(gw: Gateway, tree: Path, postgres: bool, scratch: Path) -> None:
    """A scratch database migrated by `tree`'s code: a copy of a template kept per set
    of migrations (a fresh migration takes a minute on a busy machine)."""
    digest = _migrations_hash(tree)
    if postgres:
        template = f"gw_perf_tpl_{digest}"
        if not pg_scratch._sql(f"SELECT 1 FROM pg_database WHERE datname = '{template}'"):
            log(f"migrating a template PostgreSQL database {template}")
            building = f"{template}_{os.getpid()}"
            pg_scratch._sql(f"CREATE DATABASE {building}")
            try:
                _migrate(gw.env, tree, f"postgres://postgres@127.0.0.1:5432/{building}")
                pg_scratch._sql(f"ALTER DATABASE {building} RENAME TO {template}")
            except Exception:
                pg_scratch._sql(f"DROP DATABASE IF EXISTS {building} WITH (FORCE)")
                raise
        gw.pg_db = f"gw_perf_{os.getpid()}"
        pg_scratch._sql(f"CREATE DATABASE {gw.pg_db} TEMPLATE {template}")
        gw.env["DATABASE_URL"] = gw.db_url = f"postgres://postgres@127.0.0.1:5432/{gw.pg_db}"
        return
    path = Path(tempfile.gettempdir()) / f"gw_perf_sqlite_{digest}.sqlite3"
    if not path.exists():
        log(f"migrating a template SQLite database {path}")
        building = path.with_suffix(f".{os.getpid()}.tmp")
        _migrate(gw.env, tree, f"sqlite:///{building}")
        building.rename(path)
    db = scratch / "gateway.sqlite3"
    shutil.copyfile(path, db)
    gw.env["DATABASE_URL"] = gw.db_url = f"sqlite:///{db}"


def _configure(gw: Gateway, tree: Path, config: Path, key_args: list[str]) -> str:
    """Import `config` and issue one key, with `tree`'s code (one Django process)."""
    specs = json.dumps([{"name": "k", "args": key_args}])
    proc = subprocess.run([sys.executable, "-c", "import django, os, sys; os.environ.setdefault("
                           "'DJANGO_SETTINGS_MODULE', 'gateway_project.settings'); django.setup(); "
                           f"exec({pg_scratch.CONFIGURE!r})", str(config), specs],
                          cwd=tree, env=gw.env, capture_output=True, text=True, timeout=300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("KEYS=")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"configuring failed:\n{proc.stdout}\n{proc.stderr}")
    return json.loads(line[5:])["k"]


class Perf:
    def __init__(self, args, procs: Procs, scratch: Path) -> None:
        self.args, self.procs, self.scratch = args, procs, scratch
        self.gw = Gateway(SimpleNamespace(postgres=False, redis=False, guardrails=None, gateway_cmd=None,
                                          server="uvicorn"), procs, scratch)
        self.redis_port: int | None = None

    def start(self) -> None:
        a = self.args
        self.up_port = free_port()
        if a.config == "bench":
            up = self.procs.start("upstream", [sys.executable, str(HERE / "upstream.py"), "--port", str(self.up_port)],
                                  cpus="1")
        else:
            up = self.procs.start("upstream", [sys.executable, str(HERE / "slow_upstream.py"), "--port",
                                               str(self.up_port), "--ttft-ms", "0:0", "--tps", f"{a.tps}:{a.tps}",
                                               "--tokens", "20:60", "--seed", "15"], cpus="1")
        wait_http(self.up_port, "/health", up, timeout=20)
        if a.config == "load" and not a.no_tracing:
            self.sink_port = free_port()
            sink = self.procs.start("otlp-sink", [sys.executable, str(HERE / "slow_upstream.py"), "--port",
                                                  str(self.sink_port)], cpus="1")
            wait_http(self.sink_port, "/health", sink, timeout=20)
            self.gw.env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{self.sink_port}",
                               OTEL_SERVICE_NAME="gateway-perf")
        if a.redis:
            self.redis_port = free_port()
            self.procs.start("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no"], cpus="1")
            import redis

            client = redis.Redis(port=self.redis_port)
            for _ in range(100):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.1)
            self.gw.env["REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}/0"
        first = Path(a.trees[0][1])  # migrates and configures (the trees share the database)
        _database(self.gw, first, a.postgres, self.scratch)
        source = HERE / ("bench.yaml" if a.config == "bench" else "load.yaml")
        config = self.scratch / source.name
        config.write_text(source.read_text().replace("UPSTREAM_PORT", str(self.up_port)))
        team, routes = ("bench", ["--routes", "bench"]) if a.config == "bench" else ("load", [])
        self.key = _configure(self.gw, first, config, [
            "--name", "perf-client", "--team", team, *routes, "--rpm", "100000000", "--tpm", "2000000000",
            "--budget", "1000000" if a.config == "bench" else "1000", "--budget-period", "month"])
        self.gateways: dict[str, tuple[subprocess.Popen, str]] = {}
        for name, tree_dir in self.args.trees:
            port = free_port()
            cmd = shlex.split(SERVERS["uvicorn"].format(host="127.0.0.1", port=port, workers=1,
                                                        app="gateway_project.asgi:application"))
            proc = self.procs.start(f"gateway-{name}", cmd, cpus="0", env=self.gw.env, cwd=tree_dir)
            wait_http(port, "/healthz", proc, timeout=120)
            self.gateways[name] = (proc, f"http://127.0.0.1:{port}/v1/chat/completions")

    # --- what is sent -----------------------------------------------------------------
    def payload(self, kind: str, i: int, rng: random.Random) -> dict:
        route = "bench" if self.args.config == "bench" else "lt"
        if kind == "mix":  # bench/load_test.py's mix
            stream = rng.random() < 0.5
            if rng.random() < 0.2:
                n = rng.randrange(10)
                return body("lt-cache", f"In two sentences, what is interesting about {TOPICS[n % 6]} {n}?",
                            stream=stream, max_tokens=64, temperature=0, bench_id=f"cache-{n}")
            kind, route = ("stream" if stream else "json"), "lt"
        if kind.startswith("cache_"):
            return body("lt-cache", "In two sentences, what is interesting about sundials?",
                        stream=kind == "cache_stream", max_tokens=64, temperature=0, bench_id="cache-one")
        if self.args.config == "bench":
            return body(route, "Say hello in one short sentence.", stream=kind == "stream", max_tokens=64)
        return body(route, f"Request {i}: tell me briefly about {TOPICS[i % len(TOPICS)]}, in plain words.",
                    stream=kind == "stream", max_tokens=64, bench_id=f"p-{i}-{rng.random()}")

    async def _send_many(self, url: str, kind: str, n: int, concurrency: int, seed: str) -> collections.Counter:
        rng = random.Random(seed)
        counter = iter(range(n))
        outcomes: collections.Counter = collections.Counter()

        async def user(session: aiohttp.ClientSession) -> None:
            for i in counter:
                out = await send(session, url, self.key, self.payload(kind, i, rng), timeout_s=60)
                outcomes["complete" if out.complete else (out.error or str(out.status))] += 1

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await asyncio.gather(*(user(session) for _ in range(concurrency)))
        return outcomes

    # --- counters ---------------------------------------------------------------------
    def redis_stats(self) -> dict[str, int]:
        if self.redis_port is None:
            return {}
        import redis

        info = redis.Redis(port=self.redis_port).info("commandstats")
        return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}

    def pg_xacts(self) -> int | None:
        if not self.args.postgres:
            return None
        rows = pg_scratch._sql("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                               f"WHERE datname = '{self.gw.pg_db}'")
        return int(rows[0][0])

    def pg_tables(self) -> dict[str, int]:
        """Index and sequential scans per table of the scratch database (which tables the
        requests read), and rows inserted."""
        if not self.args.postgres:
            return {}
        import psycopg

        with psycopg.connect(self.gw.db_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
            rows = conn.execute("SELECT relname, COALESCE(idx_scan, 0) + COALESCE(seq_scan, 0), n_tup_ins "
                                "FROM pg_stat_user_tables").fetchall()
        out = {}
        for table, scans, inserted in rows:
            out[f"{table} scans"] = int(scans)
            out[f"{table} inserts"] = int(inserted)
        return out

    def measure(self, name: str, kind: str, n: int, round_no: int = 0) -> dict:
        gateway, url = self.gateways[name]
        pids = tree(gateway.pid)
        c = self.args.concurrency
        asyncio.run(self._send_many(url, kind, max(50, n // 5), c, f"warm-{kind}"))
        time.sleep(0.5)
        prof = None
        if self.args.profile:
            spy = shutil.which("py-spy") or "/tmp/tools/bin/py-spy"
            out = Path(self.args.profile) / f"{name}-{kind}-{round_no}.collapsed"
            env = dict(os.environ, PYTHONPATH="/tmp/tools")
            prof = subprocess.Popen([spy, "record", "-p", str(gateway.pid), "--format", "raw", "-o", str(out),
                                     "-r", "250", "--nonblocking", "--gil", *(["--native"] if self.args.native else [])], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        time.sleep(0.6)  # pg_stat_* are flushed by the backends at most every 0.5 s
        t_0 = self.pg_tables()
        r0, x0, c0 = self.redis_stats(), self.pg_xacts(), cpu_seconds(pids)
        t0 = time.perf_counter()
        outcomes = asyncio.run(self._send_many(url, kind, n, c, f"run-{kind}-{round_no}"))
        wall = time.perf_counter() - t0
        c1 = cpu_seconds(pids)
        time.sleep(1.0)  # the ledger's last batch, background settlement
        c2, r1, x1 = cpu_seconds(pids), self.redis_stats(), self.pg_xacts()
        t_1 = self.pg_tables()
        if prof is not None:
            prof.send_signal(2)
            prof.wait(60)
        redis_calls = {k: v - r0.get(k, 0) for k, v in r1.items() if v - r0.get(k, 0) > 0 and k != "info"}
        result = {
            "tree": name, "round": round_no, "kind": kind, "n": n, "outcomes": dict(outcomes), "wall_s": round(wall, 2),
            "cpu_ms_per_request": round((c1 - c0) / n * 1000, 3),
            "cpu_ms_per_request_incl_tail": round((c2 - c0) / n * 1000, 3),
            "redis_per_request": round(sum(redis_calls.values()) / n, 3),
            "redis_by_command": {k: round(v / n, 3) for k, v in sorted(redis_calls.items())},
            "pg_xacts_per_request": None if x0 is None else round((x1 - x0 - 2) / n, 3),  # -2: our own two reads
            "pg_tables_per_request": {k: round((v - t_0.get(k, 0)) / n, 3) for k, v in sorted(t_1.items())
                                      if v - t_0.get(k, 0) > 0},
        }
        log(f"{name} {kind}: {result['cpu_ms_per_request']} ms CPU/request ({result['cpu_ms_per_request_incl_tail']} "
            f"with the tail), redis {result['redis_per_request']}/request {result['redis_by_command']}, "
            f"pg xacts {result['pg_xacts_per_request']}/request {result['pg_tables_per_request']}, {dict(outcomes)}")
        if prof is not None:
            result["profile"] = summarize(Path(self.args.profile) / f"{name}-{kind}-{round_no}.collapsed", self.args.top)
        return result


def summarize(path: Path, top: int) -> dict:
    """Own and inclusive samples per function from py-spy's collapsed stacks."""
    own: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    incl_fn: collections.Counter = collections.Counter()  # by function, whatever the line
    total = 0
    if not path.exists():
        return {}
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
        for f in {_function(f) for f in frames}:
            incl_fn[f] += n
    table = path.with_suffix(".top.txt")
    with table.open("w") as fh:
        fh.write(f"{total} samples\n\n== own ==\n")
        for f, n in own.most_common(top):
            fh.write(f"{n / total * 100:6.2f}%  {f}\n")
        fh.write("\n== inclusive, by function ==\n")
        for f, n in incl_fn.most_common(top * 3):
            fh.write(f"{n / total * 100:6.2f}%  {f}\n")
        fh.write("\n== inclusive, by line ==\n")
        for f, n in incl.most_common(top * 2):
            fh.write(f"{n / total * 100:6.2f}%  {f}\n")
    return {"samples": total, "table": str(table)}


def _function(frame: str) -> str:
    """'name (path:line)' -> 'name (path)'."""
    head, _, where = frame.rpartition(" (")
    return f"{head} ({where.rsplit(':', 1)[0]})" if head else frame


def main() -> None:
    p = argparse.ArgumentParser(description="CPU and round trips per request (see bench/perf_cpu.py).")
    p.add_argument("--config", choices=["bench", "load"], default="bench")
    p.add_argument("--postgres", action="store_true")
    p.add_argument("--redis", action="store_true")
    p.add_argument("--tps", type=float, default=1000000,
                   help="--config load: the fake provider's tokens per second (1000: every chunk its own write)")
    p.add_argument("--no-tracing", action="store_true", help="--config load without the OTLP endpoint")
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("-c", "--concurrency", type=int, default=8, help="clients at once (the load test: 100)")
    p.add_argument("--kinds", default="json,stream")
    p.add_argument("--rounds", type=int, default=1, help="measure each tree and kind this many times, interleaved")
    p.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                   help="a gateway from this source tree (repeatable: A/B in alternation; default: this checkout)")
    p.add_argument("--profile", metavar="DIR")
    p.add_argument("--top", type=int, default=60)
    p.add_argument("--native", action="store_true", help="py-spy --native (C frames: uvloop, hiredis, orjson)")
    p.add_argument("--json-out", metavar="FILE")
    p.add_argument("--keep-scratch", action="store_true")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra gateway environment")
    args = p.parse_args()
    args.trees = [tuple(t.split("=", 1)) for t in args.tree] or [("this", str(ROOT))]
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    try:
        os.sched_setaffinity(0, {1})
    except OSError:
        pass
    scratch = Path(tempfile.mkdtemp(prefix="gw-perf-"))
    procs = Procs(scratch)
    perf = Perf(args, procs, scratch)
    for item in args.env:
        name, _, value = item.partition("=")
        perf.gw.env[name] = value
    ok = False
    try:
        perf.start()
        results = []
        for r in range(args.rounds):
            order = [name for name, _ in args.trees]
            if r % 2:
                order.reverse()  # neither tree always goes first
            for kind in args.kinds.split(","):
                for name in order:
                    results.append(perf.measure(name, kind, args.n, r))
        summary = {}
        for name, _ in args.trees:
            for kind in args.kinds.split(","):
                rows = [x for x in results if x["tree"] == name and x["kind"] == kind]
                summary[f"{name}/{kind}"] = {
                    "cpu_ms_per_request_median": round(statistics.median(x["cpu_ms_per_request"] for x in rows), 3),
                    "cpu_ms_per_request_all": [x["cpu_ms_per_request"] for x in rows],
                    "redis_per_request": rows[-1]["redis_per_request"],
                    "pg_xacts_per_request_median": (None if rows[-1]["pg_xacts_per_request"] is None else round(
                        statistics.median(x["pg_xacts_per_request"] for x in rows), 3)),
                }
        for key, value in summary.items():
            log(f"{key}: median {value['cpu_ms_per_request_median']} ms CPU/request {value['cpu_ms_per_request_all']}, "
                f"redis {value['redis_per_request']}/request, pg xacts {value['pg_xacts_per_request_median']}/request")
        doc = {"summary": summary,"config": args.config, "postgres": args.postgres, "redis": args.redis,
               "tracing": args.config == "load" and not args.no_tracing, "date": time.strftime("%Y-%m-%d %H:%M %Z"),
               "loadavg": os.getloadavg(), "results": results}
        print(json.dumps(doc, indent=1))
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(doc, indent=1) + "\n")
        ok = all(set(r["outcomes"]) == {"complete"} for r in results)
    finally:
        clean_up(procs, [perf.gw], scratch, keep=args.keep_scratch, ok=ok, what="perf logs")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    run_main(main)
