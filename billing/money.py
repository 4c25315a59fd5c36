"""Money: the one home for what a request may cost, what it cost, and what a budget spent.

    reservation_estimate(req, models)  before the call: the most the request may use
        (tokens for the rate limits, USD for the budget reservation). The cost
        strategy, the admin's dry run and admission all use it.
    actual_cost(price, usage)          after the call: what it cost (never below 0).
    spent_in_period(budget, now)       what a budget has spent in its current period,
        from the ledger, rotated keys' spend included. The limit store is seeded from
        it; budget alerts, the finance burn report and the admin's budget page read it.

Everything that multiplies what a request generates is one row of MULTIPLIERS, so a
new parameter of that kind (like ``n``) is one line here, not a change in every caller.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol

from django.conf import settings
from django.utils import timezone

from providers.tokens import estimate_prompt_tokens
from providers.types import ChatRequest, Price, Usage

from .keys import key_lineage
from .limits import DEFAULT_LEASE_S
from .models import UsageRecord
from .rollups import as_usd, exact_sum

ZERO = Decimal(0)
# A reservation is a lease: it expires by itself GATEWAY_LEASE_MARGIN_S after the
# request's own deadline (the route's timeout_s), so a process killed mid-request cannot
# keep a budget blocked; a stream, which may run past that deadline, renews it.
# DEFAULT_LEASE_S (billing.limits): used when the caller knows no deadline.
__all__ = [
    "DEFAULT_LEASE_S", "MULTIPLIERS", "Estimate", "Multiplier", "actual_cost", "budget_rows",
    "completion_bound", "estimated_cost", "lease_seconds", "period_bounds", "period_key", "reservation_estimate",
    "spent_between", "spent_in_period",
]


class Priced(Protocol):
    """What an estimate needs of a model (providers.catalog.ModelInfo has it)."""

    price: Price
    context_window: int | None


# --- before the call --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Multiplier:
    """A request parameter whose integer value multiplies what the request is billed."""

    param: str
    prompt: bool  # multiplies the prompt tokens too (no current parameter does)
    completion: bool
    why: str


MULTIPLIERS: tuple[Multiplier, ...] = (
    Multiplier("n", prompt=False, completion=True, why="n choices, each up to max_tokens; the prompt is billed once"),
)


def _factor(req: ChatRequest, part: str) -> int:
    factor = 1
    for row in MULTIPLIERS:
        if getattr(row, part):
            value: Any = req.params.get(row.param)
            # The request schema already refuses anything else; a bad value never lowers the estimate.
            if isinstance(value, int) and not isinstance(value, bool) and value > 1:
                factor *= value
    return factor


@dataclass(frozen=True, slots=True)
class Estimate:
    tokens: int  # for tpm: prompt + max_tokens (0 when unset: settled to the actual count), multiplied
    cost: Decimal  # for the budget: at the priciest model, completion bounded as below, multiplied
    prompt_tokens: int
    completion_tokens: int  # per choice, at the priciest model (what the cost assumed)


def completion_bound(model: Priced, prompt_tokens: int, max_tokens: int | None) -> int:
    """The most one choice may generate on `model`: max_tokens, or without it the
    configured reserve (GATEWAY_RESERVE_COMPLETION_TOKENS); never more than the
    context window leaves after the prompt."""
    completion = max_tokens if max_tokens is not None else settings.GATEWAY_RESERVE_COMPLETION_TOKENS
    if model.context_window:
        completion = max(0, min(completion, model.context_window - prompt_tokens))
    return completion


def reservation_estimate(
    req: ChatRequest, models: Iterable[Priced], *, prompt_tokens: int | None = None
) -> Estimate:
    """The most `req` may use on any of the candidate `models` (the priciest one).
    Zero cost when there is no candidate. `prompt_tokens` saves re-estimating it."""
    prompt = estimate_prompt_tokens(req.messages) if prompt_tokens is None else prompt_tokens
    prompt_x, completion_x = _factor(req, "prompt"), _factor(req, "completion")
    billed_prompt = prompt * prompt_x
    best: tuple[Decimal, int] | None = None
    for model in models:
        per_choice = completion_bound(model, prompt, req.max_tokens)
        cost = model.price.cost(Usage(billed_prompt, per_choice * completion_x))
        if best is None or cost > best[0]:
            best = (cost, per_choice)
    cost, completion = best or (ZERO, 0)
    tokens = billed_prompt + (req.max_tokens or 0) * completion_x
    return Estimate(tokens=tokens, cost=cost, prompt_tokens=prompt, completion_tokens=completion)


def estimated_cost(model: Priced, req: ChatRequest, *, prompt_tokens: int | None = None) -> Decimal:
    """reservation_estimate() on one model: what the cost strategy ranks by."""
    return reservation_estimate(req, [model], prompt_tokens=prompt_tokens).cost


def lease_seconds(timeout_s: float | Decimal | None) -> float:
    """How long a reservation lives (unless renewed): the route's deadline plus
    GATEWAY_LEASE_MARGIN_S (which covers settling after the deadline: the ledger write)."""
    return DEFAULT_LEASE_S if timeout_s is None else float(timeout_s) + settings.GATEWAY_LEASE_MARGIN_S


# --- after the call ---------------------------------------------------------------------
def actual_cost(price: Price, usage: Usage) -> Decimal:
    """What `usage` cost at `price` (exact); a provider's impossible negative count
    never yields a negative cost."""
    return max(ZERO, price.cost(usage))


# --- what a budget spent ----------------------------------------------------------------
class BudgetLike(Protocol):
    """billing.models.Budget and billing.admission.BudgetInfo both have these."""

    scope: str
    key_id: int | None
    team_id: int | None
    period: str


def _utc(now: datetime | None) -> datetime:
    return (now or timezone.now()).astimezone(UTC)


def period_key(period: str, now: datetime | None = None) -> str:
    """The period `now` falls in: '2026-11-05' (day), '2026-11' (month), 'total'."""
    now = _utc(now)
    if period == "day":
        return now.strftime("%Y-%m-%d")
    if period == "month":
        return now.strftime("%Y-%m")
    return "total"


def period_bounds(period: str, now: datetime | None = None) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the UTC period `now` falls in; (None, None) for 'total'."""
    now = _utc(now)
    if period == "day":
        start = datetime.combine(now.date(), time.min, tzinfo=UTC)
        return start, start + timedelta(days=1)
    if period == "month":
        start = datetime(now.year, now.month, 1, tzinfo=UTC)
        return start, datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    return None, None


def budget_rows(budget: BudgetLike):
    """The ledger rows a budget covers, any period: a key budget covers the key and
    every key it replaced (rotation moves the budget row to the new key, and the old
    key's spend, before and during its grace period, still counts)."""
    rows = UsageRecord.objects.all()
    if budget.scope == "key":
        return rows.filter(key_id__in=key_lineage(budget.key_id))
    if budget.scope == "team":
        return rows.filter(team_id=budget.team_id)
    return rows


def spent_between(budget: BudgetLike, start: datetime | date | None, end: datetime | None = None) -> Decimal:
    """Exact spend of what `budget` covers in [start, end) (None: unbounded)."""
    if isinstance(start, date) and not isinstance(start, datetime):
        start = datetime.combine(start, time.min, tzinfo=UTC)
    rows = budget_rows(budget)
    if start is not None:
        rows = rows.filter(created_at__gte=start)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    return as_usd(rows.aggregate(spent=exact_sum("cost_usd"))["spent"])


def spent_in_period(budget: BudgetLike, now: datetime | None = None) -> Decimal:
    """What `budget` has spent in the period `now` falls in (exact, from the ledger)."""
    start, end = period_bounds(budget.period, now)
    return spent_between(budget, start, end)
