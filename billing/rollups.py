"""Cost rollups: the usage ledger summed per day x team x key x route x provider x model.

Reports read CostRollup rows, never the ledger, so they stay fast however large the
ledger grows. A day's rows are a pure function of that day's ledger rows:
recompute_day() can run any number of times (beat task, management command, two at
once) and always converges on the same rows, with the same primary keys.

Each run also records what it covered (RollupCoverage, same transaction): the day's
ledger rows created before the moment it started. Reports add the rows created since,
read live from the ledger, so today's spend shows at once and nothing is counted twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Aggregate, BigIntegerField, Count, F, Max, Q, Sum, Value
from django.db.models.functions import Cast, Round
from django.utils import timezone

from .models import CostRollup, RollupCoverage, UsageRecord

log = logging.getLogger("gateway.rollups")

# Costs have 10 decimal places everywhere (UsageRecord, CostRollup, BudgetAlert).
COST_PLACES = Decimal("0.0000000001")
COST_SCALE = 10**10
ZERO = Decimal("0E-10")

# The cell a rollup row describes (CostRollup's unique constraint, in order).
CELL = ("day", "team_id", "key_id", "route_name", "provider_name", "model_name")
MEASURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_usd", "baseline_cost_usd",
            "cache_hits", "cache_saved_usd")
LEDGER_CELL = ("team_id", "key_id", "route_name", "provider_name", "model_name")


def exact_sum(field: str) -> Aggregate:
    """SUM of a 10-decimal money column, exact on every backend; read it with as_usd().

    PostgreSQL sums NUMERIC exactly. SQLite stores decimals as doubles and sums them as
    doubles, which drifts in the last places, so there each value is first turned
    into integer units of 1e-10 USD (exact for values up to 15 significant digits)
    and the integers are summed (exact up to 2^63 units, about $900M).
    """
    from django.db import connection

    if connection.vendor == "sqlite":
        return Sum(Cast(Round(F(field) * Value(COST_SCALE)), BigIntegerField()))
    return Sum(field)


def as_usd(value: int | Decimal | None) -> Decimal:
    """The Decimal of an exact_sum() result (integer units on SQLite, NUMERIC elsewhere)."""
    if value is None:
        return ZERO
    if isinstance(value, int):
        return (Decimal(value) / COST_SCALE).quantize(COST_PLACES)
    return Decimal(value).quantize(COST_PLACES)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def ledger_measures() -> dict[str, Aggregate]:
    """What a rollup cell sums over its ledger rows (costs as exact_sum: read with as_usd)."""
    return {
        # Labels: names are copied into each ledger row; if a team or key was
        # renamed during the day, MAX picks one deterministically.
        "team_label": Max("team_name"),
        "key_label": Max("key_prefix"),
        "requests": Count("id"),
        "errors": Count("id", filter=Q(status=UsageRecord.Status.ERROR)),
        "prompt_tokens": Sum("prompt_tokens"),
        "completion_tokens": Sum("completion_tokens"),
        "cost_usd": exact_sum("cost_usd"),
        "baseline_cost_usd": exact_sum("baseline_cost_usd"),
        "cache_hits": Count("id", filter=Q(status=UsageRecord.Status.CACHE_HIT)),
        "cache_saved_usd": exact_sum("cache_saved_usd"),
    }


def ledger_cells(start: datetime, end: datetime) -> list[dict]:
    """One dict per rollup cell for ledger rows created in [start, end): a single
    GROUP BY in the database, ordered so the result is deterministic."""
    rows = (
        UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
        .values(*LEDGER_CELL)
        .annotate(**ledger_measures())
        .order_by(*LEDGER_CELL)
    )
    return list(rows)


def _rollup(day: date, cell: dict) -> CostRollup:
    # A NULL team/key (none, or deleted since: the ledger keeps the id NULL) is
    # stored as 0, because NULLs would defeat the unique constraint.
    team_id, key_id = cell["team_id"] or 0, cell["key_id"] or 0
    return CostRollup(
        day=day,
        team_id=team_id,
        team_name=cell["team_label"] if team_id else "",
        key_id=key_id,
        key_prefix=cell["key_label"] if key_id else "",
        route_name=cell["route_name"],
        provider_name=cell["provider_name"],
        model_name=cell["model_name"],
        requests=cell["requests"],
        errors=cell["errors"],
        prompt_tokens=cell["prompt_tokens"] or 0,
        completion_tokens=cell["completion_tokens"] or 0,
        cost_usd=as_usd(cell["cost_usd"]),
        baseline_cost_usd=as_usd(cell["baseline_cost_usd"]),
        cache_hits=cell["cache_hits"],
        cache_saved_usd=as_usd(cell["cache_saved_usd"]),
    )


def ledger_complete(day: date, now: datetime | None = None) -> bool:
    """False when retention pruning may already have removed part of `day`'s ledger:
    recomputing it would then shrink (or erase) the only remaining history."""
    days = settings.GATEWAY_USAGE_RETENTION_DAYS
    if days <= 0:
        return True
    return day_bounds(day)[0] >= (now or timezone.now()) - timedelta(days=days)


def coverage_cutoff(day: date, now: datetime) -> datetime:
    """Where a rollup of `day` run at `now` stops: now, within the day's bounds."""
    start, end = day_bounds(day)
    return min(max(now, start), end)


def recompute_day(day: date, now: datetime | None = None, *, ledger_whole: bool = False) -> int:
    """Make `day`'s CostRollup rows equal a GROUP BY over its ledger rows created
    before now (all of them, for a past day); return how many.

    Upserts on the unique cell (ids stay stable, concurrent runs cannot collide),
    deletes cells that no longer have ledger rows and records the coverage, all in one
    transaction. The cutoff is taken before the GROUP BY reads, so every row the
    rollup counts is older than it and every row a report reads live is not.
    `now` is for tests: never later than the real clock, or rows written after the
    run but before `now` would be counted by neither side until the next run.
    `ledger_whole`: the caller has checked that none of the day's rows was pruned yet
    (billing.retention, just before pruning the day), so the age check is skipped.
    """
    if not ledger_whole and not ledger_complete(day):
        log.warning("rollups: %s is older than the usage retention period; kept as is", day)
        return 0
    now = now or timezone.now()
    start, _ = day_bounds(day)
    covered_until = coverage_cutoff(day, now)
    rows = [_rollup(day, cell) for cell in ledger_cells(start, covered_until)]
    keep = {tuple(getattr(row, f) for f in CELL[1:]) for row in rows}
    with transaction.atomic():
        if rows:
            CostRollup.objects.bulk_create(
                rows,
                batch_size=500,
                update_conflicts=True,
                unique_fields=list(CELL),
                update_fields=["team_name", "key_prefix", *MEASURES],
            )
        existing = CostRollup.objects.filter(day=day).values_list("pk", *CELL[1:])
        stale = [pk for pk, *cell in existing if tuple(cell) not in keep]
        for i in range(0, len(stale), 500):
            CostRollup.objects.filter(pk__in=stale[i : i + 500]).delete()
        RollupCoverage.objects.bulk_create(
            [RollupCoverage(day=day, covered_until=covered_until, computed_at=timezone.now())],
            update_conflicts=True, unique_fields=["day"], update_fields=["covered_until", "computed_at"],
        )
    return len(rows)


def recompute_range(start: date, end: date) -> int:
    """Recompute every day from `start` to `end` inclusive (one transaction per day)."""
    total, day = 0, start
    while day <= end:
        total += recompute_day(day)
        day += timedelta(days=1)
    return total


def recompute_recent(now: datetime | None = None) -> int:
    """Today and yesterday (UTC): the beat task's job. Yesterday is included so rows
    settled just after midnight, and the last minutes before it, are never missed."""
    today = (now or timezone.now()).astimezone(UTC).date()
    return recompute_range(today - timedelta(days=1), today)
