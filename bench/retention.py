"""Usage retention at scale: 1,000,000 usage records on PostgreSQL, pruned while a
concurrent writer keeps inserting.

    .venv/bin/python bench/retention.py [--rows 1000000] [--days 60] [--keep 14] [--batch 1000]

Uses (and creates, when missing) the scratch database gw_bench_retention on
127.0.0.1:5432 unless DATABASE_URL names another one; refuses any database whose
name lacks "bench", since it wipes the usage, rollup, budget, key and team tables.
It loads the ledger with COPY (bench/reports_1m.py's generator: 20 teams, 200 keys,
10 routes, 15 models, times uniform over --days, ids in random time order, the worst
case for locality), rolls every day up as the beat task would have, then runs
billing.retention.prune_usage(--keep) while a second connection inserts one usage
row every 5 ms (autocommit, as the gateway does) and times each insert.

Prints: prune time, rows/s, per-batch delete transaction p50/p99/max, the longest
recompute_day (per pruned day), the writer's insert latency p50/p99/max during the
prune against a baseline taken just before, and whether every report CSV totals
the same before and after. --json FILE writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/gw_bench_retention"
os.environ.setdefault("DATABASE_URL", DEFAULT_URL)
os.environ.setdefault("SECRET_KEY", "bench-only")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")


def ensure_database(url: str) -> None:
    """CREATE DATABASE for the default scratch URL (before Django connects)."""
    import psycopg

    if url != DEFAULT_URL:
        return
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'gw_bench_retention'").fetchone():
            conn.execute("CREATE DATABASE gw_bench_retention")


ensure_database(os.environ["DATABASE_URL"])

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

import billing.retention as retention  # noqa: E402
from bench import reports_1m  # noqa: E402
from billing.models import Budget, BudgetAlert, CostRollup, Team, UsageRecord, VirtualKey  # noqa: E402
from billing.reports import exports  # noqa: E402
from billing.rollups import recompute_range  # noqa: E402

CSV_VIEWS = ["spend", "team", "key", "route", "model", "provider", "savings"]


def ledger_rows(rng, keys, n: int, days: int, now: datetime) -> Iterator[tuple[list[str], tuple]]:
    """`n` usage rows over the past `days` days in time order (ids follow time, as in
    production), keys and routes drawn like bench/reports_1m.py's ledger."""
    fields = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    defaults = {f.attname: f.get_default() for f in fields}
    defaults = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in defaults.items()}
    weights = [w for _, _, w in keys]
    span = days * 86400
    for i in range(n):
        key, key_routes, _ = rng.choices(keys, weights)[0]
        route_id, route_name, targets = rng.choice(key_routes)
        model = targets[0] if rng.random() < 0.85 else rng.choice(targets)
        prompt, completion = rng.randint(20, 4000), rng.randint(0, 1200)
        error = rng.random() < 0.03
        cost = ((prompt * model[3] + completion * model[4]) / 1_000_000).quantize(reports_1m.PLACES)
        row = {
            **defaults, "request_id": f"bench-{i}", "created_at": now - timedelta(seconds=span * (1 - i / n)),
            "key_id": key.id, "key_prefix": key.prefix, "team_id": key.team_id, "team_name": key.team.name,
            "route_id": route_id, "route_name": route_name, "provider_id": reports_1m.PROVIDERS.index(model[1]) + 1,
            "provider_name": model[1], "model_id": model[0], "model_name": model[2],
            "status": "error" if error else "success", "http_status": 502 if error else 200,
            "prompt_tokens": prompt, "completion_tokens": 0 if error else completion,
            "input_price_per_mtok": model[3], "output_price_per_mtok": model[4], "cost_usd": cost,
            "baseline_cost_usd": cost, "latency_ms": rng.randint(80, 9000),
        }
        yield columns, tuple(row[f.attname] for f in fields)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Writer(threading.Thread):
    """Inserts a usage row every `interval` s on its own connection; records latencies."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval, self.stop, self.latencies = interval, threading.Event(), []
        db = connection.settings_dict
        self.conn = psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"],
                                    port=db["PORT"] or 5432, password=db["PASSWORD"] or None, autocommit=True)

    def run(self) -> None:
        sql = (f"INSERT INTO {UsageRecord._meta.db_table} (request_id, created_at, key_prefix, team_name, route_name,"
               " provider_name, model_name, status, error_kind, http_status, stream, prompt_tokens, completion_tokens,"
               " usage_estimated, cache_read_tokens, cache_write_tokens, endpoint, client_session,"
               " input_price_per_mtok, output_price_per_mtok, cost_usd, baseline_cost_usd, cache_saved_usd,"
               " latency_ms, attempts, attempt_log, strategy, task_type, candidates, annotations)"
               " VALUES (%s, %s, '', '', 'live', '', '', 'success', '', 200, false, 1, 1, false, 0, 0, 'chat', '',"
               " 0, 0, 0, 0, 0, 1, 1, '[]', '', '', '[]', '{}')")
        while not self.stop.is_set():
            t0 = time.perf_counter()
            self.conn.execute(sql, [f"live-{uuid.uuid4().hex}", datetime.now(UTC)])
            self.latencies.append(time.perf_counter() - t0)
            time.sleep(self.interval)
        self.conn.close()


class LockWatch(threading.Thread):
    """Polls pg_locks every 20 ms: how often any session waited for a lock, so insert
    latency spikes can be told apart from I/O and CPU contention."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop, self.samples, self.waiting = threading.Event(), 0, 0
        db = connection.settings_dict
        self.conn = psycopg.connect(dbname=db["NAME"], user=db["USER"], host=db["HOST"],
                                    port=db["PORT"] or 5432, password=db["PASSWORD"] or None, autocommit=True)

    def run(self) -> None:
        while not self.stop.is_set():
            blocked = self.conn.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND database = "
                                        "(SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()[0]
            self.samples += 1
            self.waiting += bool(blocked)
            time.sleep(0.02)
        self.conn.close()


def writer_for(seconds: float | None, during=None) -> tuple[list[float], object, LockWatch]:
    writer, watch = Writer(), LockWatch()
    writer.start()
    watch.start()
    result = during() if during else time.sleep(seconds)
    writer.stop.set()
    watch.stop.set()
    writer.join()
    watch.join()
    return writer.latencies, result, watch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60, help="the ledger spans this many past days")
    parser.add_argument("--keep", type=int, default=14, help="retention days for the prune")
    parser.add_argument("--batch", type=int, default=retention.DEFAULT_BATCH)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    name = str(connection.settings_dict["NAME"])
    if connection.vendor != "postgresql" or "bench" not in name:
        sys.exit(f"refusing {name!r}: a scratch PostgreSQL database whose name contains 'bench' is needed")

    call_command("migrate", verbosity=0)
    reports_1m._truncate()
    for model in (BudgetAlert, Budget, CostRollup, VirtualKey, Team):
        model.objects.all().delete()
    import random

    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    keys = reports_1m.setup_owners(rng, reports_1m.catalog(rng)[1])
    t0 = time.perf_counter()
    reports_1m.load(ledger_rows(rng, keys, args.rows, args.days, now))
    load_s = time.perf_counter() - t0
    today = now.date()
    first = today.fromordinal(today.toordinal() - args.days)
    t0 = time.perf_counter()
    recompute_range(first, today)
    rollup_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {UsageRecord._meta.db_table}")
    # The pruned period's reports (later days change anyway: the writer adds to today).
    cutoff = retention.prune_cutoff(args.keep, now)
    last = cutoff.date().fromordinal(cutoff.date().toordinal() - 1)
    before = {v: exports.render(v, first, last) for v in CSV_VIEWS}
    doomed = UsageRecord.objects.filter(created_at__lt=cutoff).count()

    # recompute_day per pruned day, timed (its upsert transaction is inside it).
    recompute_s: list[float] = []
    original = retention.recompute_day

    def timed_recompute(*a, **kw):
        t = time.perf_counter()
        try:
            return original(*a, **kw)
        finally:
            recompute_s.append(time.perf_counter() - t)

    retention.recompute_day = timed_recompute
    baseline, _, _ = writer_for(5.0)
    during, report, watch = writer_for(None, lambda: retention.prune_usage(args.keep, batch=args.batch, now=now))
    retention.recompute_day = original
    after = {v: exports.render(v, first, last) for v in CSV_VIEWS}
    left_old = UsageRecord.objects.filter(created_at__lt=cutoff).count()

    figures = {
        "rows": args.rows, "days": args.days, "keep_days": args.keep, "batch": args.batch,
        "load_s": round(load_s, 1), "rollup_all_days_s": round(rollup_s, 1),
        "pruned_days": len(report.days), "deleted": report.deleted, "expected": doomed, "left_before_cutoff": left_old,
        "kept": UsageRecord.objects.filter(request_id__startswith="bench-").count(),
        "prune_s": round(report.seconds, 2), "rows_per_s": round(report.deleted / report.seconds),
        "batches": report.batches,
        "batch_ms_p50": round(statistics.median(report.batch_s) * 1000, 1),
        "batch_ms_p99": round(pct(report.batch_s, 0.99) * 1000, 1),
        "batch_ms_max": round(report.longest_batch_s * 1000, 1),
        "recompute_day_ms_max": round(max(recompute_s) * 1000, 1),
        "recompute_day_ms_p50": round(statistics.median(recompute_s) * 1000, 1),
        "writer_baseline_ms": {"n": len(baseline), "p50": round(pct(baseline, .5) * 1000, 2),
                               "p99": round(pct(baseline, .99) * 1000, 2), "max": round(max(baseline) * 1000, 2)},
        "writer_during_ms": {"n": len(during), "p50": round(pct(during, .5) * 1000, 2),
                             "p99": round(pct(during, .99) * 1000, 2), "max": round(max(during) * 1000, 2)},
        "lock_wait_samples": f"{watch.waiting} of {watch.samples}",
        "load_average": os.getloadavg()[0],
        "reports_equal": after == before,
        "date": now.isoformat(timespec="seconds"),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1) + "\n")
    if not figures["reports_equal"] or left_old or report.deleted != doomed:
        sys.exit("FAILED: reports changed or rows left")


if __name__ == "__main__":
    main()
