"""Report queries. Spend comes from CostRollup plus the ledger rows the rollups have
not covered yet (billing.reports.live: normally the minutes since the last rollup), so
a page costs a few GROUP BYs over at most a few thousand rows per day of range
whatever the ledger's size, and still shows a request made a second ago. Budget burn
is the exception: a budget's spend is billing.money.spent_in_period (the ledger,
rotated keys included), the figure that enforcement and alerts use, one aggregate per
enabled budget. Money is exact Decimal throughout.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import Max, QuerySet, Sum
from django.utils import timezone

from billing import money
from billing.alerts import owner_label
from billing.models import Budget, CostRollup, VirtualKey
from billing.rollups import ZERO, as_usd, exact_sum

from .live import Live, consistent

HUNDRED = Decimal(100)
# Breakdown dimension -> (grouping column, rollup label column or None for "itself",
# the live cell's label key).
DIMENSIONS: dict[str, tuple[str, str | None, str | None]] = {
    "team": ("team_id", "team_name", "team_label"),
    "key": ("key_id", "key_prefix", "key_label"),
    "route": ("route_name", None, None),
    "model": ("model_name", None, None),
    "provider": ("provider_name", None, None),
}
NO_OWNER = {"team": "(no team)", "key": "(no key)"}


@dataclass
class Row:
    """Measures of one group (a day, a team, a route...) or of the whole range."""

    label: str = ""
    group: object = None  # the grouping value (id, name or day)
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = ZERO
    baseline: Decimal = ZERO  # the same tokens on each route's first target
    cache_hits: int = 0  # requests the cache answered (cost 0, baseline 0)
    cache_saved: Decimal = ZERO  # what those cached answers had cost when they were stored
    detail: str = ""  # e.g. a key's name

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def savings(self) -> Decimal:
        """Saved by routing: first-target cost minus actual (a cache hit adds 0 to both)."""
        return self.baseline - self.cost

    @property
    def savings_pct(self) -> Decimal | None:
        return _pct(self.savings, self.baseline)

    @property
    def total_saved(self) -> Decimal:
        """Routing and cache savings together: each request's saving counts once."""
        return self.savings + self.cache_saved

    @property
    def total_saved_pct(self) -> Decimal | None:
        """Of what these requests would have cost with neither (baseline + cache_saved)."""
        return _pct(self.total_saved, self.baseline + self.cache_saved)

    def add(self, other: Row) -> None:
        for name in ("requests", "errors", "prompt_tokens", "completion_tokens", "cost", "baseline",
                     "cache_hits", "cache_saved"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _pct(part: Decimal, whole: Decimal) -> Decimal | None:
    return None if not whole else (part * HUNDRED / whole).quantize(Decimal("0.01"))


def rollups(start: date, end: date, key_ids: list[int] | None = None) -> QuerySet:
    rows = CostRollup.objects.filter(day__gte=start, day__lte=end)
    return rows if key_ids is None else rows.filter(key_id__in=key_ids)


def _measures() -> dict:
    return {
        "r": Sum("requests"),
        "e": Sum("errors"),
        "p": Sum("prompt_tokens"),
        "c": Sum("completion_tokens"),
        "cost": exact_sum("cost_usd"),
        "base": exact_sum("baseline_cost_usd"),
        "hits": Sum("cache_hits"),
        "cache": exact_sum("cache_saved_usd"),
    }


def _row(values: dict, **kw) -> Row:
    return Row(
        requests=values["r"] or 0,
        errors=values["e"] or 0,
        prompt_tokens=values["p"] or 0,
        completion_tokens=values["c"] or 0,
        cost=as_usd(values["cost"]),
        baseline=as_usd(values["base"]),
        cache_hits=values["hits"] or 0,
        cache_saved=as_usd(values["cache"]),
        **kw,
    )


def _cell_row(cell: dict, **kw) -> Row:
    """A live ledger cell (billing.reports.live) as a Row."""
    return Row(
        requests=cell["requests"], errors=cell["errors"], prompt_tokens=cell["prompt_tokens"],
        completion_tokens=cell["completion_tokens"], cost=cell["cost_usd"], baseline=cell["baseline_cost_usd"],
        cache_hits=cell["cache_hits"], cache_saved=cell["cache_saved_usd"], **kw,
    )


def _rollups_of(live: Live) -> QuerySet:
    return rollups(live.coverage.start, live.coverage.end, live.key_ids)


def daily_rows(live: Live) -> list[Row]:
    """One row per day of the live read's range, days without spend included (as
    zeros): rollups plus the live rows."""
    found = {v["day"]: _row(v) for v in _rollups_of(live).values("day").annotate(**_measures()).order_by("day")}
    for cell in live.cells:
        found.setdefault(cell["day"], Row()).add(_cell_row(cell))
    start, end = live.coverage.start, live.coverage.end
    out, day = [], start
    while day <= end:
        row = found.get(day) or Row()
        row.group, row.label = day, day.isoformat()
        out.append(row)
        day += timedelta(days=1)
    return out


def breakdown_rows(dimension: str, live: Live) -> list[Row]:
    """Rows per team / key / route / model / provider, most expensive first."""
    column, label_column, live_label = DIMENSIONS[dimension]
    extra = {"lbl": Max(label_column)} if label_column else {}
    groups: dict[object, Row] = {}
    labels: dict[object, str] = {}  # MAX of the labels seen, like the rollups' own MAX
    for v in _rollups_of(live).values(column).annotate(**_measures(), **extra).order_by(column):
        groups[v[column]] = _row(v)
        if label_column:
            labels[v[column]] = v["lbl"] or ""
    for cell in live.cells:
        group = cell[column]
        groups.setdefault(group, Row()).add(_cell_row(cell))
        if live_label:
            labels[group] = max(labels.get(group, ""), cell[live_label] or "")
    rows = []
    for group, row in groups.items():
        label = labels.get(group) if label_column else group
        if label_column and not group:
            label = NO_OWNER[dimension]
        row.group, row.label = group, label or NO_OWNER.get(dimension, "(none)")
        rows.append(row)
    if dimension == "key":
        names = dict(VirtualKey.objects.filter(id__in=[r.group for r in rows if r.group]).values_list("id", "name"))
        for r in rows:
            r.detail = names.get(r.group, "(deleted)" if r.group else "")
    # Most expensive first; equal costs by label, so the order is stable.
    rows.sort(key=lambda r: (-r.cost, r.label))
    return rows


def daily(start: date, end: date, key_ids: list[int] | None = None) -> list[Row]:
    """daily_rows() of one consistent read (billing.reports.live.consistent)."""
    return consistent(start, end, daily_rows, key_ids)[0]


def breakdown(dimension: str, start: date, end: date) -> list[Row]:
    """breakdown_rows() of one consistent read."""
    return consistent(start, end, lambda live: breakdown_rows(dimension, live))[0]


@dataclass
class Report:
    """Everything the overview page shows of a range, from one consistent read."""

    days: list[Row]
    tables: dict[str, list[Row]]
    live: Live
    total: Row = field(init=False)

    def __post_init__(self) -> None:
        self.total = sum_rows(self.days)


def report(start: date, end: date, dimensions: Iterable[str] = DIMENSIONS) -> Report:
    def build(live: Live) -> tuple[list[Row], dict[str, list[Row]]]:
        return daily_rows(live), {dim: breakdown_rows(dim, live) for dim in dimensions}

    (days, tables), live = consistent(start, end, build)
    return Report(days=days, tables=tables, live=live)


def sum_rows(rows: list[Row], label: str = "Total") -> Row:
    total = Row(label=label)
    for r in rows:
        total.add(r)
    return total


# --- budget burn ----------------------------------------------------------------------
@dataclass
class Burn:
    budget: Budget
    owner: str
    period_key: str
    spent: Decimal
    pct_used: Decimal | None
    daily_burn: Decimal
    forecast: Decimal | None  # spend at period end, linear; None for 'total' budgets
    status: str
    period_end: date | None = None


def _money(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.0001"))


def budget_burn(now: datetime | None = None, budgets: QuerySet | None = None) -> list[Burn]:
    """Each enabled budget (of `budgets`, default all): spent this period
    (billing.money), % used, daily burn rate and, for day/month budgets, the
    period-end forecast by linear extrapolation."""
    now = (now or timezone.now()).astimezone(UTC)
    today = now.date()
    out = []
    budgets = Budget.objects.all() if budgets is None else budgets
    for budget in budgets.filter(enabled=True).select_related("key", "team"):
        start, end = money.period_bounds(budget.period, now)
        spent = money.spent_in_period(budget, now)
        if start is not None:
            # Fractional days elapsed (at least an hour, so 00:05 does not extrapolate
            # five minutes of spend over a whole month).
            elapsed = max((now - start).total_seconds(), 3600) / 86400
            length = (end - start).total_seconds() / 86400
            daily_burn = spent / Decimal(repr(elapsed))
            forecast = _money(daily_burn * Decimal(repr(length)))
            forecast = max(forecast, _money(spent))
        else:  # a 'total' budget never resets: burn rate over the last 30 days
            daily_burn = money.spent_between(budget, today - timedelta(days=29), now) / 30
            forecast = None
        amount = budget.amount_usd
        pct = (spent * HUNDRED / amount).quantize(Decimal("0.1")) if amount else None
        out.append(
            Burn(
                budget=budget,
                owner=owner_label(budget),
                period_key=money.period_key(budget.period, now),
                spent=spent,
                pct_used=pct,
                daily_burn=_money(daily_burn),
                forecast=forecast,
                status=_status(spent, amount, forecast, budget.alert_threshold_pct),
                period_end=(end - timedelta(days=1)).date() if end else None,
            )
        )
    return out


def _status(spent: Decimal, amount: Decimal, forecast: Decimal | None, threshold: int) -> str:
    if spent > 0 and spent >= amount:
        return "exceeded"
    if spent > 0 and spent * 100 >= amount * threshold:
        return "alert"
    if forecast is not None and forecast > amount:
        return "on track to exceed"
    return "ok"
