"""Usage ledger retention: whole UTC days older than GATEWAY_USAGE_RETENTION_DAYS are
rolled up and then deleted in small batches (0 keeps everything).

Finance reads CostRollup rows, so history survives the ledger: before a day's rows go,
that day's rollups are recomputed from them (billing.rollups.recompute_day, the one
rollup function) and its RollupCoverage marks the whole day covered, so reports for
the pruned period total exactly what they did before.

What makes that safe:
- A day's ledger only ever grows, except here. So a day whose rollups count no more
  requests than it has rows is whole and may be recomputed; one whose rollups count
  more was pruned before (a run stopped half way, or budget-protected rows were kept)
  and is never recomputed again: that would shrink the only remaining history.
- Rows replayed from the dead letters after a day's rollup ran are in no rollup:
  they are kept (`held`), never deleted uncounted.
- Rows an enabled "total" budget covers are kept: billing.money sums that budget's
  spend from the ledger, so deleting them would give the spend back. The current UTC
  month is never pruned, whatever the setting (monthly budgets read it).
- Deletes go by primary key, `batch` rows per short transaction, in id order; no
  statement touches more than one batch, so inserts never wait behind a long lock.
- One prune at a time: a PostgreSQL advisory lock (session level: released if the
  worker dies), or the cache (Redis in production) on other databases.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max, Min, Q, QuerySet, Sum
from django.utils import timezone

from .keys import key_lineage
from .models import Budget, CostRollup, RollupCoverage, UsageDeadLetter, UsageRecord
from .rollups import day_bounds, recompute_day

log = logging.getLogger("gateway.retention")

DEFAULT_BATCH = 1_000  # short row-lock holds first; a daily run deletes one day, throughput is ample
# pg_try_advisory_lock key: any fixed 64-bit number, "usage retention" in ASCII.
PG_LOCK_ID = 0x7573_6167_6572_6574
CACHE_LOCK_KEY = "gateway:retention:lock"
CACHE_LOCK_TTL_S = 6 * 3600  # longer than any prune; a dead worker's lock expires


@dataclass
class DayPrune:
    """What happened (or, in a dry run, would happen) to one day's ledger rows."""

    day: date
    rows: int  # ledger rows of the day before the prune
    rolled_up: int  # requests its rollups count (after the recompute, when there was one)
    recomputed: bool  # the ledger was whole: rollups rebuilt from it first
    deleted: int = 0  # would be deleted, in a dry run
    held: int = 0  # kept: budget-protected, or in no rollup (late dead-letter replays)


@dataclass
class PruneReport:
    cutoff: datetime | None  # rows created before this may go (None: retention is off)
    applied: bool  # False: a dry run, nothing written
    locked_out: bool = False  # another prune was running: this one did nothing
    days: list[DayPrune] = field(default_factory=list)
    batch_s: list[float] = field(default_factory=list)  # each delete transaction's duration
    seconds: float = 0.0

    @property
    def batches(self) -> int:
        return len(self.batch_s)

    @property
    def longest_batch_s(self) -> float:
        """The longest single delete transaction (the longest any row lock was held)."""
        return max(self.batch_s, default=0.0)

    @property
    def deleted(self) -> int:
        return sum(d.deleted for d in self.days)

    @property
    def held(self) -> int:
        return sum(d.held for d in self.days)


def prune_cutoff(days: int, now: datetime | None = None) -> datetime | None:
    """Start of the first UTC day kept: whole days ending at least `days` days ago go,
    never the current month. None when `days` is 0 (keep forever)."""
    if days < 0:
        raise ValueError("retention days must be 0 (forever) or more")
    if days == 0:
        return None
    now = (now or timezone.now()).astimezone(UTC)
    first_kept = day_bounds((now - timedelta(days=days)).date())[0]
    month_start = datetime(now.year, now.month, 1, tzinfo=UTC)
    return min(first_kept, month_start)


def protected() -> Q | None:
    """Rows that enabled "total" budgets sum from the ledger (None: every row is)."""
    totals = Budget.objects.filter(enabled=True, period=Budget.Period.TOTAL)
    if totals.filter(scope=Budget.Scope.GLOBAL).exists():
        return None
    teams = list(totals.filter(scope=Budget.Scope.TEAM).values_list("team_id", flat=True))
    keys = [k for key_id in totals.filter(scope=Budget.Scope.KEY).values_list("key_id", flat=True)
            for k in key_lineage(key_id)]
    keep = Q()
    if teams:
        keep |= Q(team_id__in=teams)
    if keys:
        keep |= Q(key_id__in=keys)
    return keep


def _day_rows(day: date) -> QuerySet:
    start, end = day_bounds(day)
    return UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)


def _rolled_up(day: date) -> int:
    return CostRollup.objects.filter(day=day).aggregate(n=Sum("requests"))["n"] or 0


def _late(day: date) -> QuerySet:
    """The day's rows replayed from the dead letters after its rollup last ran."""
    mark = RollupCoverage.objects.filter(day=day).values_list("computed_at", flat=True).first()
    letters = UsageDeadLetter.objects.filter(replayed_at__isnull=False)
    if mark is not None:
        letters = letters.filter(replayed_at__gte=mark)
    return _day_rows(day).filter(request_id__in=letters.values("request_id"))


def _days_before(cutoff: datetime) -> Iterator[date]:
    """Each UTC day before `cutoff` with ledger rows, oldest first (one index probe per
    day, however sparse the history)."""
    since = None
    while True:
        rows = UsageRecord.objects.filter(created_at__lt=cutoff)
        if since is not None:
            rows = rows.filter(created_at__gte=since)
        first = rows.aggregate(t=Min("created_at"))["t"]
        if first is None:
            return
        day = first.astimezone(UTC).date()
        yield day
        since = day_bounds(day)[1]


def _delete_batches(rows: QuerySet, batch: int, report: PruneReport, pause_s: float) -> int:
    """Delete `rows` by primary key, `batch` at a time in id order, one short
    transaction each; the ids are read outside it, so it locks only those rows."""
    deleted, last = 0, 0
    while True:
        ids = list(rows.filter(id__gt=last).order_by("id").values_list("id", flat=True)[:batch])
        if not ids:
            return deleted
        started = time.perf_counter()
        with transaction.atomic():
            # No signals or relations point at UsageRecord: one DELETE ... WHERE id IN.
            deleted += UsageRecord.objects.filter(id__in=ids).delete()[0]
        report.batch_s.append(time.perf_counter() - started)
        last = ids[-1]
        if pause_s:
            time.sleep(pause_s)


def _prune_day(day: date, keep: Q | None, apply: bool, batch: int, report: PruneReport, pause_s: float) -> DayPrune:
    rows = _day_rows(day)
    n, rolled = rows.count(), _rolled_up(day)
    if not n:  # deleted meanwhile (by hand: a second prune cannot run)
        return DayPrune(day=day, rows=0, rolled_up=rolled, recomputed=False)
    whole = rolled <= n
    if whole:
        # Rows written after this (late replays) have higher ids and wait for the next run.
        upto = rows.aggregate(m=Max("id"))["m"]
        doomed = rows.filter(id__lte=upto)
        if apply:
            recompute_day(day, ledger_whole=True)
            rolled = _rolled_up(day)
    else:
        log.warning("retention: %s was pruned before (rollups count %d requests, ledger has %d rows): "
                    "rollups kept as they are", day, rolled, n)
        doomed = rows.exclude(id__in=_late(day).values("id"))
    if keep:
        doomed = doomed.exclude(keep)
    result = DayPrune(day=day, rows=n, rolled_up=rolled, recomputed=whole and apply)
    if apply:
        result.deleted = _delete_batches(doomed, batch, report, pause_s)
        result.held = _day_rows(day).count()
    else:
        result.deleted = doomed.count()
        result.held = n - result.deleted
    return result


@contextmanager
def prune_lock() -> Iterator[bool]:
    """Yield True when this process holds the one prune lock, False when another does."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [PG_LOCK_ID])
            held = cursor.fetchone()[0]
        try:
            yield held
        finally:
            if held:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [PG_LOCK_ID])
        return
    token = uuid.uuid4().hex
    held = cache.add(CACHE_LOCK_KEY, token, timeout=CACHE_LOCK_TTL_S)
    try:
        yield held
    finally:
        if held and cache.get(CACHE_LOCK_KEY) == token:
            cache.delete(CACHE_LOCK_KEY)


def prune_usage(days: int | None = None, *, apply: bool = True, batch: int | None = None,
                pause_s: float = 0.0, now: datetime | None = None) -> PruneReport:
    """Roll up and delete the ledger's whole UTC days before prune_cutoff(days)
    (default GATEWAY_USAGE_RETENTION_DAYS), `batch` rows per transaction (default
    GATEWAY_USAGE_RETENTION_BATCH). `apply=False` counts, writes nothing. `pause_s`
    sleeps between batches (gives way to replicas or heavy traffic)."""
    batch = batch or getattr(settings, "GATEWAY_USAGE_RETENTION_BATCH", DEFAULT_BATCH)
    if batch < 1:
        raise ValueError("batch must be at least 1")
    days = settings.GATEWAY_USAGE_RETENTION_DAYS if days is None else days
    report = PruneReport(cutoff=prune_cutoff(days, now), applied=apply)
    if report.cutoff is None:
        return report
    started = time.perf_counter()
    with prune_lock() as held:
        if not held:
            log.info("retention: another prune is running; skipped")
            report.locked_out = True
            return report
        keep = protected()
        for day in _days_before(report.cutoff):
            if keep is None:
                log.warning("retention: an enabled total budget of the whole gateway sums the whole ledger; "
                            "nothing pruned")
                break
            report.days.append(_prune_day(day, keep, apply, batch, report, pause_s))
    report.seconds = time.perf_counter() - started
    log.info("retention: %s %d usage rows of %d days before %s (%d held) in %d batches, %.1f s",
             "deleted" if apply else "would delete", report.deleted, len(report.days), report.cutoff,
             report.held, report.batches, report.seconds)
    return report


def prune_usage_records(days: int | None = None, batch: int | None = None) -> int:
    """prune_usage(days) applied; how many rows it deleted (the beat task's result)."""
    return prune_usage(days, batch=batch).deleted
