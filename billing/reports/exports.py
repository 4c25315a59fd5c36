"""CSV exports: one per report view, the page's figures (today's live part included),
costs as exact, unrounded decimals, with a totals row that equals the ledger's sum for
the range."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal

from billing.rollups import COST_PLACES

from . import queries
from .queries import Row

# savings_usd is routing's saving (baseline - cost); the cache's columns come last, so
# files read by column position before the cache existed read the same.
MEASURE_HEADER = [
    "requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens",
    "cost_usd", "baseline_cost_usd", "savings_usd", "cache_hits", "cache_saved_usd", "total_saved_usd",
]


def money(value: Decimal | None) -> str:
    return "" if value is None else format(Decimal(value).quantize(COST_PLACES), "f")


def text(value: object) -> str:
    """A label cell; a leading =, +, - or @ would be a formula in a spreadsheet."""
    value = "" if value is None else str(value)
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _measures(row: Row) -> list:
    return [row.requests, row.errors, row.prompt_tokens, row.completion_tokens, row.tokens,
            money(row.cost), money(row.baseline), money(row.savings), row.cache_hits, money(row.cache_saved),
            money(row.total_saved)]


def _table(header: list[str], labels: Callable[[Row], list], rows: list[Row]) -> Iterable[list]:
    yield header + MEASURE_HEADER
    for row in rows:
        yield [text(v) for v in labels(row)] + _measures(row)
    total = queries.sum_rows(rows, "TOTAL")
    yield ["TOTAL"] + [""] * (len(header) - 1) + _measures(total)


def spend(start: date, end: date) -> Iterable[list]:
    return _table(["day"], lambda r: [r.label], queries.daily(start, end))


def _dimension(dimension: str, header: list[str], labels: Callable[[Row], list]):
    def export(start: date, end: date) -> Iterable[list]:
        return _table(header, labels, queries.breakdown(dimension, start, end))

    return export


SAVINGS_HEADER = [
    "route", "cost_usd", "baseline_cost_usd", "savings_usd", "savings_pct", "requests",
    "cache_hits", "cache_saved_usd", "total_saved_usd", "total_saved_pct",
]


def _savings(row: Row) -> list:
    """Routing's saving (savings_usd, savings_pct), then the cache's and the two together."""
    return [money(row.cost), money(row.baseline), money(row.savings), _pct(row.savings_pct), row.requests,
            row.cache_hits, money(row.cache_saved), money(row.total_saved), _pct(row.total_saved_pct)]


def _pct(value: Decimal | None) -> object:
    return "" if value is None else value


def savings(start: date, end: date) -> Iterable[list]:
    rows = queries.breakdown("route", start, end)
    yield SAVINGS_HEADER
    for r in rows:
        yield [text(r.label)] + _savings(r)
    yield ["TOTAL"] + _savings(queries.sum_rows(rows, "TOTAL"))


def budgets(start: date, end: date) -> Iterable[list]:
    """Burn of each enabled budget in its current period (the date range does not
    apply; budgets overlap, so there is no totals row)."""
    yield ["budget_id", "scope", "owner", "period", "period_key", "amount_usd", "spent_usd", "pct_used",
           "daily_burn_usd", "forecast_usd", "status"]
    for b in queries.budget_burn():
        yield [b.budget.pk, b.budget.scope, text(b.owner), b.budget.period, b.period_key, money(b.budget.amount_usd),
               money(b.spent), b.pct_used if b.pct_used is not None else "", money(b.daily_burn), money(b.forecast),
               b.status]


VIEWS: dict[str, Callable[[date, date], Iterable[list]]] = {
    "spend": spend,
    "team": _dimension("team", ["team_id", "team"], lambda r: [r.group, r.label]),
    "key": _dimension("key", ["key_id", "key_prefix", "key_name"], lambda r: [r.group, r.label, r.detail]),
    "route": _dimension("route", ["route"], lambda r: [r.label]),
    "model": _dimension("model", ["model"], lambda r: [r.label]),
    "provider": _dimension("provider", ["provider"], lambda r: [r.label]),
    "savings": savings,
    "budgets": budgets,
}


def render(view: str, start: date, end: date) -> str:
    out = io.StringIO()
    csv.writer(out).writerows(VIEWS[view](start, end))
    return out.getvalue()
