"""Finance reports at scale: 1,000,000 usage records, rollups, report timings.

    createdb -h 127.0.0.1 -U postgres gw_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gw_bench SECRET_KEY=bench \\
        .venv/bin/python bench/reports_1m.py [--rows 1000000] [--days 60]

Wipes the usage, rollup, budget, key and team tables of the database it is given
(refused unless its name contains "bench"), migrates it, generates a realistic
ledger (20 teams, 200 keys each using 1-3 of 10 routes, 15 models on 5 providers,
a route's traffic mostly on its first target), then times recompute_range() over
all days and the report queries, pages and CSV exports against the rollups.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Sum  # noqa: E402
from django.test import Client  # noqa: E402

from billing.models import Budget, BudgetAlert, CostRollup, Team, UsageRecord, VirtualKey  # noqa: E402
from billing.reports import queries  # noqa: E402
from billing.reports.chart import spend_chart  # noqa: E402
from billing.rollups import recompute_range, recompute_recent  # noqa: E402

PLACES = Decimal("0.0000000001")
PROVIDERS = ["openai", "anthropic", "mistral", "groq", "ollama"]


def catalog(rng: random.Random):
    models = []  # (id, provider, name, input $/Mtok, output $/Mtok)
    for i in range(15):
        price = Decimal(rng.choice(["0.15", "0.5", "1.1", "2.5", "3", "10"]))
        models.append((i + 1, PROVIDERS[i % 5], f"{PROVIDERS[i % 5]}/model-{i}", price, price * 4))
    routes = [(i + 1, f"route-{i}", rng.sample(models, rng.randint(1, 3))) for i in range(10)]
    return models, routes


def setup_owners(rng: random.Random, routes) -> list[tuple]:
    Team.objects.bulk_create([Team(name=f"team-{i:02d}") for i in range(20)])
    teams = list(Team.objects.order_by("id"))
    VirtualKey.objects.bulk_create([
        VirtualKey(name=f"key-{i:03d}", key_hash=uuid.uuid4().hex * 2, prefix=f"sk-gw-{i:06d}", team=teams[i % 20])
        for i in range(200)
    ])
    keys = []
    for key in VirtualKey.objects.select_related("team").order_by("id"):
        keys.append((key, rng.sample(routes, rng.choice([1, 1, 2, 3])), rng.paretovariate(1.2)))
    for team in teams[:5]:
        Budget.objects.create(scope="team", team=team, amount_usd=Decimal("500"), period="month")
    for key, _, _ in keys[:20]:
        Budget.objects.create(scope="key", key=key, amount_usd=Decimal("20"), period="day")
    Budget.objects.create(scope="global", amount_usd=Decimal("20000"), period="month")
    return keys


def ledger_rows(rng: random.Random, keys, n: int, days: int, now: datetime):
    """Tuples in the column order of UsageRecord's concrete fields (id excluded)."""
    fields = [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    columns = [f.column for f in fields]
    weights = [w for _, _, w in keys]
    span = days * 86400
    for i in range(n):
        key, key_routes, _ = rng.choices(keys, weights)[0]
        route_id, route_name, targets = rng.choice(key_routes)
        model = targets[0] if rng.random() < 0.85 else rng.choice(targets)  # fallbacks now and then
        first = targets[0]
        prompt, completion = rng.randint(20, 4000), rng.randint(0, 1200)
        error = rng.random() < 0.03
        if error:
            completion = 0
        cost = ((prompt * model[3] + completion * model[4]) / 1_000_000).quantize(PLACES)
        baseline = ((prompt * first[3] + completion * first[4]) / 1_000_000).quantize(PLACES)
        row = {
            "request_id": f"bench-{i}", "created_at": now - timedelta(seconds=rng.random() * span),
            "key_id": key.id, "key_prefix": key.prefix, "team_id": key.team_id, "team_name": key.team.name,
            "route_id": route_id, "route_name": route_name, "provider_id": PROVIDERS.index(model[1]) + 1,
            "provider_name": model[1], "model_id": model[0], "model_name": model[2],
            "status": "error" if error else "success", "error_kind": "upstream_5xx" if error else "",
            "http_status": 502 if error else 200, "stream": rng.random() < 0.3, "prompt_tokens": prompt,
            "completion_tokens": completion, "usage_estimated": False, "input_price_per_mtok": model[3],
            "output_price_per_mtok": model[4], "cost_usd": cost, "baseline_cost_usd": baseline,
            "latency_ms": rng.randint(80, 9000), "ttft_ms": None, "attempts": 1, "attempt_log": "[]",
            "strategy": "fallback", "task_type": "", "candidates": "[]",
        }
        yield columns, tuple(_value(row, f) for f in fields)


def _value(row: dict, field):
    """The row's value for a column, else the field's default (columns added since this
    script was written: cache_read_tokens, reasoning_tokens, annotations ...)."""
    if field.attname in row:
        return row[field.attname]
    if field.name in row:
        return row[field.name]
    value = field.get_default()
    return json.dumps(value) if isinstance(value, (dict, list)) else value


def load(rows, batch: int = 20_000) -> None:
    first = next(rows)
    columns, table = first[0], UsageRecord._meta.db_table
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        ) as copy:
            copy.write_row(first[1])
            for _, values in rows:
                copy.write_row(values)
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
        return
    names = [f.attname for f in UsageRecord._meta.concrete_fields if not f.primary_key]
    chunk = [first[1]]
    for _, values in rows:
        chunk.append(values)
        if len(chunk) == batch:
            UsageRecord.objects.bulk_create([UsageRecord(**dict(zip(names, v))) for v in chunk])
            chunk = []
    UsageRecord.objects.bulk_create([UsageRecord(**dict(zip(names, v))) for v in chunk])


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def overview_queries(start, end):
    days = queries.daily(start, end)
    out = [spend_chart(days), queries.sum_rows(days), queries.budget_burn()]
    out += [queries.breakdown(d, start, end) for d in queries.DIMENSIONS]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    name = str(connection.settings_dict["NAME"])
    if "bench" not in name:
        sys.exit(f"refusing to wipe {name!r}: use a scratch database whose name contains 'bench'")

    call_command("migrate", verbosity=0)
    _truncate()
    for model in (BudgetAlert, Budget, CostRollup, VirtualKey, Team):
        model.objects.all().delete()
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    _, routes = catalog(rng)
    keys = setup_owners(rng, routes)
    results: list[tuple[str, float, str]] = []

    t0 = time.perf_counter()
    load(ledger_rows(rng, keys, args.rows, args.days, now))
    results.append((f"generate + load {args.rows:,} ledger rows", time.perf_counter() - t0, connection.vendor))

    today = now.date()
    first_day = today - timedelta(days=args.days)
    t0 = time.perf_counter()
    cells = recompute_range(first_day, today)
    results.append((f"recompute_range, {args.days + 1} days (first run)", time.perf_counter() - t0, f"{cells:,} rows"))
    elapsed, cells = timed(lambda: recompute_range(first_day, today), repeat=1)
    results.append(("recompute_range again (idempotent)", elapsed, f"{cells:,} rows"))
    elapsed, cells = timed(recompute_recent)
    results.append(("recompute_recent (the 10-minute beat task)", elapsed, f"{cells:,} rows"))

    ranges = {"this month": (today.replace(day=1), today), f"last {args.days} days": (first_day, today)}
    client = Client()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.filter(username="bench-finance").first() or \
        get_user_model().objects.create_superuser("bench-finance", password=uuid.uuid4().hex)
    client.force_login(user)
    for label, (start, end) in ranges.items():
        elapsed, _ = timed(lambda: overview_queries(start, end))
        results.append((f"overview queries, {label}", elapsed, "rollups"))
        page = f"/reports/?start={start}&end={end}"
        elapsed, response = timed(lambda: client.get(page))
        results.append((f"GET /reports/ (render), {label}", elapsed, f"HTTP {response.status_code}"))
        for view in ("key", "spend"):
            url = f"/reports/csv/{view}/?start={start}&end={end}"
            elapsed, response = timed(lambda: client.get(url))
            results.append((f"GET /reports/csv/{view}/, {label}", elapsed, f"{len(response.content):,} bytes"))

    start, end = ranges[f"last {args.days} days"]
    ledger = UsageRecord.objects.filter(created_at__date__gte=start, created_at__date__lte=end)
    elapsed, ledger_total = timed(lambda: ledger.aggregate(c=Sum("cost_usd"), n=Count("id")), repeat=1)
    results.append((f"for comparison: ledger SUM over {args.days} days", elapsed, f"{ledger_total['n']:,} rows"))
    elapsed, _ = timed(lambda: list(ledger.values("team_id").annotate(c=Sum("cost_usd")).order_by()), repeat=1)
    results.append((f"for comparison: ledger GROUP BY team, {args.days} days", elapsed, "ledger"))
    report_total = queries.sum_rows(queries.daily(start, end))
    exact = report_total.cost == ledger_total["c"] and report_total.requests == ledger_total["n"]

    print(f"\n{'step':<52} {'seconds':>9}  note")
    print("-" * 80)
    for label, seconds, note in results:
        print(f"{label:<52} {seconds:>9.3f}  {note}")
    print("-" * 80)
    print(f"rollup rows: {CostRollup.objects.count():,}   ledger rows: {UsageRecord.objects.count():,}")
    print(f"report total ${report_total.cost} == ledger total ${ledger_total['c']}: {exact}")


def _truncate() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {UsageRecord._meta.db_table}")
    else:
        UsageRecord.objects.all().delete()


if __name__ == "__main__":
    main()
