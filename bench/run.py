"""Benchmark this gateway against a fake upstream; print the table, rewrite BENCHMARKS.md.

    bench/run.sh [--quick] [--server daphne|uvicorn] [--all-workers 2] [--postgres] [--redis]
                 [--prompt-bytes 2048] [--guardrails bench/guardrails.yaml]

Starts everything it needs (fake upstream on core 1, the gateway on core 0, then
unpinned with several workers), measures, and stops what it started, also on Ctrl-C
or an error. The production-like path is on: a virtual key with rpm/tpm limits and a
blocking budget, usage records, metrics. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402
from prompt import prose  # noqa: E402
from load import Target  # noqa: E402
from measure import Opts, log, measure_all_cores, measure_system, upstream_capacity  # noqa: E402
from procs import (NoiseMeter, Procs, clean_up, cpu_seconds, free_port, machine_info, run_main, tree,  # noqa: E402
                   wait_http, wait_quiet)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
APP = "gateway_project.asgi:application"
SERVERS = {
    # The README's production commands.
    "daphne": "daphne -b {host} -p {port} " + APP,
    "uvicorn": "uvicorn " + APP + " --host {host} --port {port} --workers {workers} --no-access-log",
}
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_BENCH_URL = "redis://127.0.0.1:6379/9"  # the tests use databases 10-15


def start_upstream(procs: Procs, cpus: str = "1", prompt_bytes: int = 0, words: str = "leading"
                   ) -> tuple[Target, int, subprocess.Popen]:
    """The fake upstream, and the direct target (same prompt as the gateway's requests)."""
    port = free_port()
    proc = procs.start("upstream", [sys.executable, str(HERE / "upstream.py"), "--port", str(port),
                                    "--words", words], cpus=cpus)
    wait_http(port, "/health", proc, timeout=20)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return Target("direct", url, "gpt-4o-mini", prompt_bytes=prompt_bytes), port, proc


class Gateway:
    """Scratch database, configuration, key, and the gateway processes."""

    def __init__(self, args, procs: Procs, scratch: Path) -> None:
        self.args, self.procs, self.scratch = args, procs, scratch
        self.env = dict(os.environ, GATEWAY_VAR_DIR=str(scratch), SECRET_KEY="bench-only-secret-key-" + "x" * 30)
        self.env["PATH"] = f"{BIN}:{self.env.get('PATH', '')}"
        self.pg_db: str | None = None
        if args.postgres:
            self.pg_db = f"gw_bench_{os.getpid()}"
            self._pg(f"CREATE DATABASE {self.pg_db}")
            self.env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{self.pg_db}"
        elif not os.environ.get("DATABASE_URL"):
            self.env["DATABASE_URL"] = f"sqlite:///{scratch / 'gateway.sqlite3'}"
        if args.redis:
            import redis

            redis.Redis.from_url(REDIS_BENCH_URL).flushdb()
            self.env["REDIS_URL"] = REDIS_BENCH_URL
        self.db_url = self.env["DATABASE_URL"]
        self.procs_running: list[subprocess.Popen] = []
        self.listener: socket.socket | None = None

    def describe_db(self) -> str:
        kind = "SQLite (scratch file)" if self.db_url.startswith("sqlite") else "PostgreSQL 15 (local)"
        shared = "Redis (local) for limits, budgets, breakers" if self.env.get("REDIS_URL") else "in-process state"
        return f"{kind}; {shared}"

    def _pg(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql)

    def manage(self, *args: str) -> str:
        proc = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def configure(self, upstream_port: int) -> str:
        log("migrating the scratch database, importing bench/bench.yaml, issuing the key")
        self.manage("migrate", "--noinput")
        config = self.scratch / "bench.yaml"
        config.write_text((HERE / "bench.yaml").read_text().replace("UPSTREAM_PORT", str(upstream_port)))
        self.manage("gateway_import", str(config))
        if self.args.guardrails:  # a second document, after the route and team it may scope to exist
            log(f"importing {self.args.guardrails}")
            self.manage("gateway_import", str(Path(self.args.guardrails).resolve()))
        # Limits high enough never to refuse, but enforced (counted) on every request;
        # tpm fits PostgreSQL's integer column.
        return self.manage("issue_key", "--name", "bench-client", "--team", "bench", "--routes", "bench",
                           "--rpm", "100000000", "--tpm", "2000000000", "--budget", "1000000",
                           "--budget-period", "month").strip()

    def command(self, workers: int) -> list[str]:
        template = self.args.gateway_cmd or SERVERS[self.args.server]
        return shlex.split(template.format(host="127.0.0.1", port=self.port, workers=workers, app=APP))

    def start(self, workers: int, cpus: str | None) -> str:
        """Start the gateway; returns the command line (for the report)."""
        self.port = free_port()
        if self.args.server == "daphne" and not self.args.gateway_cmd and workers > 1:
            # Several daphne processes on one listening socket (daphne --fd), as a
            # process manager (systemd socket, supervisord fcgi-program) would run them.
            self.listener = socket.socket()
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(("127.0.0.1", self.port))
            self.listener.listen(1024)
            fd = self.listener.fileno()
            cmd = ["daphne", "--fd", str(fd), APP]
            for i in range(workers):
                self.procs_running.append(self.procs.start(f"gateway-{workers}w-{i}", cmd, cpus=cpus, env=self.env,
                                                           cwd=str(ROOT), pass_fds=(fd,)))
            shown = f"{workers} x {' '.join(cmd)} (one shared listening socket)"
        else:
            cmd = self.command(workers)
            self.procs_running.append(self.procs.start(f"gateway-{workers}w", cmd, cpus=cpus, env=self.env,
                                                       cwd=str(ROOT)))
            shown = " ".join(cmd)
        for proc in self.procs_running:
            wait_http(self.port, "/healthz", proc, timeout=90)
        return (f"taskset -c {cpus} " if cpus else "") + shown

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs_running]

    def stop(self) -> None:
        for proc in self.procs_running:
            self.procs.stop(proc)
        self.procs_running = []
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def records(self) -> dict:
        """UsageRecord counts by status, straight from the database."""
        sql = "SELECT status, COUNT(*) FROM billing_usagerecord GROUP BY status"
        if self.db_url.startswith("sqlite"):
            import sqlite3

            with sqlite3.connect(self.db_url.split("sqlite:///", 1)[1], timeout=30) as conn:
                return dict(conn.execute(sql).fetchall())
        import psycopg

        with psycopg.connect(self.db_url.replace("postgres://", "postgresql://")) as conn:
            return dict(conn.execute(sql).fetchall())

    def settled_records(self) -> dict:
        """Counts once they stop changing (abandoned streams settle in the background)."""
        last = self.records()
        for _ in range(20):
            time.sleep(0.5)
            now = self.records()
            if now == last:
                return now
            last = now
        return last

    def metrics_total(self) -> float:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("gateway_requests_total{"))

    def guardrail_decisions(self) -> dict[str, float]:
        """`gateway_guardrail_decisions_total` by "guardrail/stage/outcome" (this worker's)."""
        import re
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        out: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("gateway_guardrail_decisions_total{"):
                labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}", 1)[0]))
                name = f"{labels.get('guardrail')}/{labels.get('stage')}/{labels.get('outcome')}"
                out[name] = out.get(name, 0) + float(line.rsplit(" ", 1)[1])
        return out

    def cleanup(self) -> None:
        self.stop()
        if self.pg_db:
            try:
                self._pg(f"DROP DATABASE IF EXISTS {self.pg_db} WITH (FORCE)")
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop {self.pg_db}: {exc}")


def usage_check(before: dict, after: dict, tally, fixed: list[tuple[str, int, int]]) -> dict:
    total = sum(after.values()) - sum(before.values())
    lo, hi = tally.completed, tally.completed + tally.in_flight_max
    exact = all(got == want for _, got, want in fixed)
    fixed_txt = ", ".join(f"{name} {got}/{want}" for name, got, want in fixed)
    ok = exact and lo <= total <= hi
    by_status = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {
        "ok": ok, "verdict": f"yes ({fixed_txt})" if ok else f"**NO** ({fixed_txt}; whole run {total} for {lo}-{hi})",
        "detail": (f"fixed-count runs (records written / requests sent): {fixed_txt}; whole run: {total} records "
                   f"for {lo} responses counted by the clients (up to {tally.in_flight_max} more were in flight "
                   f"when wrk stopped); by status {by_status}"),
    }


def guardrails_check(decisions: dict[str, float] | None, path: str | None) -> dict | None:
    """What the guardrails did during the run: the benchmark measures checks that find
    nothing (the prompt and the fake answers have no PII), so anything but `passed`
    means the figures include redaction or blocking and is reported as such."""
    if not path:
        return None
    if decisions is None:
        return {"ok": None, "detail": "not read (more than one worker: per-process metrics)"}
    other = {k: v for k, v in decisions.items() if not k.endswith("/passed")}
    shown = ", ".join(f"{k} {v:.0f}" for k, v in sorted(decisions.items())) or "none"
    return {"ok": bool(decisions) and not other, "decisions": decisions,
            "detail": f"gateway_guardrail_decisions_total: {shown}"
                      + ("" if decisions and not other else " (**not only passes**)" if decisions else
                         " (**no guardrail ran**)")}


def main() -> None:
    p = argparse.ArgumentParser(description="Benchmark the gateway (see bench/README.md).")
    p.add_argument("--quick", action="store_true", help="shorter runs and a 60 s soak")
    p.add_argument("--soak-seconds", type=float, help="RSS soak length (default 600, --quick 60, 0 = skip)")
    p.add_argument("--server", choices=sorted(SERVERS), default="uvicorn",
                   help="uvicorn (default: the recommended server, and what `make run` uses) or daphne")
    p.add_argument("--workers", type=int, default=1, help="workers of the pinned (1-core) gateway")
    p.add_argument("--all-workers", type=int, default=2, help="workers for the all-cores run (0 = skip it)")
    p.add_argument("--gateway-cmd", help="server command template: {host} {port} {workers} {app}")
    p.add_argument("--postgres", action="store_true", help="scratch database on the local PostgreSQL")
    p.add_argument("--redis", action="store_true", help=f"shared state in the local Redis ({REDIS_BENCH_URL}, flushed)")
    p.add_argument("--wait-quiet", type=float, default=120, metavar="S",
                   help="wait up to S seconds for an idle machine before measuring (0 = don't)")
    p.add_argument("--note", default="", help="a line shown above the table in BENCHMARKS.md")
    p.add_argument("--column", help="results column to (re)write (default: gateway-<server>, e.g. gateway-uvicorn)")
    p.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md alone")
    p.add_argument("--keep-scratch", action="store_true", help="keep the scratch directory (logs, database)")
    p.add_argument("--prompt-bytes", type=int, default=0, metavar="N",
                   help="JSON and stream requests carry about N bytes of English prose (default: a one-line prompt)")
    p.add_argument("--guardrails", metavar="FILE",
                   help="a YAML document imported after bench/bench.yaml, e.g. bench/guardrails.yaml")
    p.add_argument("--upstream-words", choices=["leading", "trailing"], default="leading",
                   help="the fake answer's chunks: ' from' (default, LLM-like) or 'from ' (no chunk ends in a word)")
    p.add_argument("--column-note", default="", help="a line in this column's details only (not the headline)")
    p.add_argument("--json-out", metavar="FILE", help="also write this run's results (one column) to FILE")
    args = p.parse_args()
    args.column = args.column or ("gateway-custom" if args.gateway_cmd else f"gateway-{args.server}")
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    opts = Opts.make(args.quick, args.soak_seconds)
    scratch = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    procs = Procs(scratch)
    gw = Gateway(args, procs, scratch)
    ok, quiet = False, None
    if args.wait_quiet:
        quiet = wait_quiet(args.wait_quiet)
        log(f"machine busy {quiet}% of all cores when measurements started")
    noise = NoiseMeter()
    try:
        upstream, up_port, up_proc = start_upstream(procs, prompt_bytes=args.prompt_bytes,
                                                    words=args.upstream_words)
        log(f"fake upstream on :{up_port} (core 1); measuring its capacity with wrk on core 0")
        capacity = upstream_capacity(upstream, 3 if args.quick else 5, cpus="0")
        key = gw.configure(up_port)
        target = Target("gateway", "http://127.0.0.1:{}/v1/chat/completions", "bench",
                        {"Authorization": f"Bearer {key}"}, args.prompt_bytes)
        start_cmd = gw.start(args.workers, cpus="0")
        target.url = target.url.format(gw.port)
        before = gw.records()
        fixed: list = []

        def pids() -> list[int]:
            return gw.pids()

        result = measure_system(target, upstream, pids, opts, records=gw.records, fixed=fixed)
        after = gw.settled_records()
        tally = result.pop("tally")
        usage = usage_check(before, after, tally, fixed)
        metrics = gw.metrics_total() if args.workers == 1 else None
        guarded = guardrails_check(gw.guardrail_decisions() if args.workers == 1 else None, args.guardrails)
        gw.stop()
        all_cores = None
        if args.all_workers:
            log(f"all cores: {args.all_workers} workers, unpinned")
            cmd = gw.start(args.all_workers, cpus=None)
            target.url = f"http://127.0.0.1:{gw.port}/v1/chat/completions"
            all_cores = measure_all_cores(target, opts)
            all_cores.pop("tally")
            all_cores.update(start_cmd=cmd, workers_label=f"{args.all_workers} workers")
            gw.stop()
        server = "custom command" if args.gateway_cmd else args.server
        stack = ", PostgreSQL" if not gw.db_url.startswith("sqlite") else ""
        stack += ", Redis" if gw.env.get("REDIS_URL") else ""
        stack += f", {args.prompt_bytes / 1024:g} KB prompt" if args.prompt_bytes else ""
        stack += f", guardrails {Path(args.guardrails).name}" if args.guardrails else ""
        stack += ", answer chunks end with a space" if args.upstream_words == "trailing" else ""
        label = f"this gateway ({server}, {args.workers} worker{'s' if args.workers > 1 else ''}{stack})"
        run = {
            "label": label, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": "bench/run.sh " + " ".join(
                shlex.quote(a) for a in sys.argv[1:]), "server": f"{server}, {args.workers} worker(s) on 1 core; "
            f"all-cores run: {args.all_workers} worker(s) unpinned", "start_cmd": start_cmd, "db": gw.describe_db(),
            "upstream": capacity, "result": result, "all_cores": all_cores, "usage_check": usage,
            "metrics_check": (f"gateway_requests_total = {metrics:.0f} (records {sum(after.values())})"
                              if metrics is not None else None),
            "noise": {**noise.report(cpu_seconds(tree(up_proc.pid))), "busy_at_start_pct": quiet},
            "notes": [n for n in (args.note, args.column_note) if n],
            "prompt": ({"message_bytes": len(prose(args.prompt_bytes).encode()), "body_bytes": len(target.body()),
                        "stream_body_bytes": len(target.body(stream=True))} if args.prompt_bytes else None),
            "guardrails": _guardrails_doc(args.guardrails), "guardrails_check": guarded,
            "upstream_words": args.upstream_words,
        }
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(run, indent=1, default=str) + "\n")
        data = report.load_results()
        data["machine"] = machine_info()
        if args.column in ("litellm", "portkey"):
            sys.exit("--column: litellm and portkey are compare.py's columns")
        data.setdefault("runs", {})[args.column] = run
        if args.note:
            data["headline"] = args.note
        print(report.table(data) if args.no_write else report.write(data))
        print(f"\nusage records: {usage['detail']}")
        if guarded:
            print(f"guardrails: {guarded['detail']}")
        ok = usage["ok"] and (guarded is None or guarded["ok"] is not False)
    finally:
        clean_up(procs, [gw], scratch, keep=args.keep_scratch, ok=ok, what="logs and scratch database")
    sys.exit(0 if ok else 1)


def _guardrails_doc(path: str | None) -> dict | None:
    """The guardrails file as imported (for the report: name, kind, stage, action, scope)."""
    if not path:
        return None
    import yaml

    text = Path(path).read_text()
    items = (yaml.safe_load(text) or {}).get("guardrails") or []
    return {"file": path, "summary": "; ".join(
        f"{g.get('name')}: {g.get('kind')}, {g.get('stage', 'both')}, {g.get('action', 'flag')}"
        + (", restore" if g.get("restore") else "")
        + (f", scope {g['scope']}" if g.get("scope") else ", global") for g in items)}


if __name__ == "__main__":
    run_main(main)
