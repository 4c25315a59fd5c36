"""Report queries. Spend breakdowns come from CostRollup, never from the ledger, so a
page costs a few GROUP BYs over at most a few thousand rows per day of range whatever
the ledger's size. Budget burn is the exception: a budget's spend is
billing.money.spent_in_period (the ledger, rotated keys included), the figure that
enforcement and alerts use, one aggregate per enabled budget. Money is exact Decimal
throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import Max, QuerySet, Sum
from django.utils import timezone

from billing import money
from billing.alerts import owner_label
from billing.models import Budget, CostRollup, VirtualKey
from billing.rollups import ZERO, as_usd, exact_sum

HUNDRED = Decimal(100)
# Breakdown dimension -> (grouping column, label column or None for "itself").
DIMENSIONS: dict[str, tuple[str, str | None]] = {
    "team": ("team_id", "team_name"),
    "key": ("key_id", "key_prefix"),
    "route": ("route_name", None),
    "model": ("model_name", None),
    "provider": ("provider_name", None),
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
    baseline: Decimal = ZERO
    detail: str = ""  # e.g. a key's name

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def savings(self) -> Decimal:
        return self.baseline - self.cost

    @property
    def savings_pct(self) -> Decimal | None:
        return None if not self.baseline else (self.savings * HUNDRED / self.baseline).quantize(Decimal("0.01"))

    def add(self, other: Row) -> None:
        for name in ("requests", "errors", "prompt_tokens", "completion_tokens", "cost", "baseline"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def rollups(start: date, end: date) -> QuerySet:
    return CostRollup.objects.filter(day__gte=start, day__lte=end)


def _measures() -> dict:
    return {
        "r": Sum("requests"),
        "e": Sum("errors"),
        "p": Sum("prompt_tokens"),
        "c": Sum("completion_tokens"),
        "cost": exact_sum("cost_usd"),
        "base": exact_sum("baseline_cost_usd"),
    }


def _row(values: dict, **kw) -> Row:
    return Row(
        requests=values["r"] or 0,
        errors=values["e"] or 0,
        prompt_tokens=values["p"] or 0,
        completion_tokens=values["c"] or 0,
        cost=as_usd(values["cost"]),
        baseline=as_usd(values["base"]),
        **kw,
    )


def daily(start: date, end: date) -> list[Row]:
    """One row per day of the range, days without spend included (as zeros)."""
    found = {v["day"]: _row(v) for v in rollups(start, end).values("day").annotate(**_measures()).order_by("day")}
    out, day = [], start
    while day <= end:
        row = found.get(day) or Row()
        row.group, row.label = day, day.isoformat()
        out.append(row)
        day += timedelta(days=1)
    return out


def breakdown(dimension: str, start: date, end: date) -> list[Row]:
    """Rows per team / key / route / model / provider, most expensive first."""
    column, label_column = DIMENSIONS[dimension]
    extra = {"lbl": Max(label_column)} if label_column else {}
    values = rollups(start, end).values(column).annotate(**_measures(), **extra).order_by(column)
    rows = []
    for v in values:
        group = v[column]
        label = (v["lbl"] if label_column else group) or NO_OWNER.get(dimension, "(none)")
        if label_column and not group:
            label = NO_OWNER[dimension]
        rows.append(_row(v, label=label, group=group))
    if dimension == "key":
        names = dict(VirtualKey.objects.filter(id__in=[r.group for r in rows if r.group]).values_list("id", "name"))
        for r in rows:
            r.detail = names.get(r.group, "(deleted)" if r.group else "")
    # Most expensive first; equal costs by label, so the order is stable.
    rows.sort(key=lambda r: (-r.cost, r.label))
    return rows


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


def budget_burn(now: datetime | None = None) -> list[Burn]:
    """Each enabled budget: spent this period (billing.money), % used, daily burn rate
    and, for day/month budgets, the period-end forecast by linear extrapolation."""
    now = (now or timezone.now()).astimezone(UTC)
    today = now.date()
    out = []
    for budget in Budget.objects.filter(enabled=True).select_related("key", "team"):
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
