"""Live figures: the ledger rows the rollups have not covered yet, read consistently
with the rollups themselves.

A day's CostRollup rows count that day's ledger rows created before its
RollupCoverage.covered_until (billing.rollups records it in the rollup's own
transaction). The rest of the day, from covered_until to the day's end, or the whole
day when it was never rolled up, is read here straight from the ledger: normally the
minutes since the last rollup, one range scan of the UsageRecord.created_at index.
The two parts are split by created_at, so a request is counted once: by the rollup
when it was created before the cutoff, live otherwise.

A rollup that commits while a report is being read would pair new rollup rows with
old coverage; `consistent()` reads the coverage again afterwards and starts over
when it changed.
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from typing import TypeVar

from django.db.models import Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.models import RollupCoverage, UsageRecord
from billing.rollups import LEDGER_CELL, as_usd, day_bounds, ledger_measures

log = logging.getLogger("gateway.reports")
T = TypeVar("T")
ATTEMPTS = 3  # a rollup takes a fraction of a second every few minutes: one retry is already rare


@dataclass(frozen=True)
class Coverage:
    """Which part of each day of [start, end] the rollups cover."""

    start: date
    end: date
    marks: dict[date, tuple[datetime, datetime | None]]  # day -> (covered_until, computed_at)

    def live_since(self, day: date) -> datetime | None:
        """Where `day`'s live part starts (None: the rollups cover all of it)."""
        day_start, day_end = day_bounds(day)
        covered_until = self.marks[day][0] if day in self.marks else day_start
        return covered_until if covered_until < day_end else None

    def windows(self) -> list[tuple[datetime, datetime]]:
        """The [from, to) intervals not covered by any rollup, adjacent ones merged."""
        out: list[tuple[datetime, datetime]] = []
        day = self.start
        while day <= self.end:
            since = self.live_since(day)
            if since is not None:
                day_end = day_bounds(day)[1]
                if out and out[-1][1] == since:
                    out[-1] = (out[-1][0], day_end)
                else:
                    out.append((since, day_end))
            day += timedelta(days=1)
        return out

    @property
    def rolled_up_at(self) -> datetime | None:
        """When the newest rollup of these days ran (None if none recorded a time)."""
        times = [computed for _, computed in self.marks.values() if computed is not None]
        return max(times) if times else None


def coverage(start: date, end: date) -> Coverage:
    rows = RollupCoverage.objects.filter(day__gte=start, day__lte=end).values_list("day", "covered_until", "computed_at")
    return Coverage(start, end, {day: (until, computed) for day, until, computed in rows})


@dataclass
class Live:
    """The ledger rows after the rollups' coverage, per day and rollup cell."""

    coverage: Coverage
    as_of: datetime  # when they were read
    key_ids: list[int] | None = None  # only these keys' rows (None: every row)
    cells: list[dict] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(c["requests"] for c in self.cells)

    @property
    def today_since(self) -> datetime | None:
        """Where today's live part starts, when today is in the range and not covered."""
        today = self.as_of.astimezone(UTC).date()
        if not self.coverage.start <= today <= self.coverage.end:
            return None
        return self.coverage.live_since(today)


def _window_filter(windows: Iterable[tuple[datetime, datetime]]) -> Q:
    return reduce(operator.or_, (Q(created_at__gte=since, created_at__lt=until) for since, until in windows))


def read_live(cov: Coverage, key_ids: list[int] | None = None) -> Live:
    """One GROUP BY (day x rollup cell) over the ledger rows in the coverage's gaps.
    Cells look like rollup rows: no team or key is 0, costs are exact Decimals."""
    live = Live(coverage=cov, as_of=timezone.now(), key_ids=key_ids)
    windows = cov.windows()
    if not windows:
        return live
    rows = UsageRecord.objects.filter(_window_filter(windows))
    if key_ids is not None:
        rows = rows.filter(key_id__in=key_ids)
    values = (
        rows.annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day", *LEDGER_CELL)
        .annotate(**ledger_measures())
        .order_by("day", *LEDGER_CELL)
    )
    for v in values:
        team_id, key_id = v["team_id"] or 0, v["key_id"] or 0
        live.cells.append({
            **v,
            "team_id": team_id,
            "team_label": v["team_label"] if team_id else "",
            "key_id": key_id,
            "key_label": v["key_label"] if key_id else "",
            "prompt_tokens": v["prompt_tokens"] or 0,
            "completion_tokens": v["completion_tokens"] or 0,
            "cost_usd": as_usd(v["cost_usd"]),
            "baseline_cost_usd": as_usd(v["baseline_cost_usd"]),
            "cache_saved_usd": as_usd(v["cache_saved_usd"]),
        })
    return live


def consistent(start: date, end: date, build: Callable[[Live], T], key_ids: list[int] | None = None) -> tuple[T, Live]:
    """`build(live)` (which reads the rollups) with the live rows, retried if a rollup
    of one of these days committed meanwhile, so rollup rows and live rows always
    split the ledger at the same cutoff."""
    for _ in range(ATTEMPTS):
        cov = coverage(start, end)
        live = read_live(cov, key_ids)
        result = build(live)
        if coverage(start, end).marks == cov.marks:
            return result, live
    log.warning("reports: rollups of %s..%s kept changing while being read; figures may be off until reloaded",
                start, end)
    return result, live
