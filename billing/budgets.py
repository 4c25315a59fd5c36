"""Budgets: the one place budget rows are created, changed, copied and deleted.

Every entry point (admin, management API, `issue_key`, `gateway_import`) calls these,
so validation (Budget.full_clean) and the key cache invalidation happen every time:
a key's KeyInfo lists the ids of the budgets that apply to it (billing.keys.load_key).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction

from .models import Budget, Team, VirtualKey

# Settings a caller may pass to the upsert helpers besides amount, period and action.
OPTION_FIELDS = ("alert_threshold_pct", "alert_emails", "webhook_url")
# Which of an owner's budgets `primary_budget` picks (the YAML export shows one).
PERIOD_PREFERENCE = (Budget.Period.MONTH, Budget.Period.DAY, Budget.Period.TOTAL)


@dataclass(frozen=True, slots=True)
class Upsert:
    budget: Budget
    created: bool
    changed: bool  # created, or an existing row's values changed


def _invalidate_keys() -> None:
    """A key's budget ids are cached with the key: drop the cache now (this process)
    and again after commit, so a read between the two cannot keep the old ids."""
    from .keys import key_cache  # keys imports this module

    key_cache.clear()
    transaction.on_commit(key_cache.clear)


def save_budget(budget: Budget) -> Budget:
    """Validate (scope/owner, amount, threshold) and save. Raises ValidationError."""
    budget.full_clean()
    budget.save()
    _invalidate_keys()
    return budget


def delete_budget(budget: Budget) -> None:
    """Delete a budget (and its alert history). Prefer `enabled=False` to keep the history."""
    budget.delete()
    _invalidate_keys()


def find_budget(*, key: VirtualKey | None = None, team: Team | None = None, period: str) -> Budget | None:
    """The owner's budget for `period`: an enabled one first, then the oldest."""
    scope = Budget.Scope.KEY if key is not None else Budget.Scope.TEAM
    rows = Budget.objects.filter(scope=scope, key=key, team=team, period=period)
    return rows.order_by("-enabled", "id").first()


def primary_budget(budgets: list[Budget]) -> Budget | None:
    """Of one owner's budgets, the enabled one the YAML export shows: monthly first,
    then daily, then total; the oldest of a period (the row `find_budget` upserts)."""
    enabled = sorted((b for b in budgets if b.enabled), key=lambda b: b.id)
    for period in PERIOD_PREFERENCE:
        for budget in enabled:
            if budget.period == period:
                return budget
    return None


@transaction.atomic
def _upsert(
    *, key: VirtualKey | None, team: Team | None, amount_usd: Decimal, period: str, action: str | None,
    options: dict[str, Any],
) -> Upsert:
    unknown = set(options) - set(OPTION_FIELDS)
    if unknown:
        raise TypeError(f"unknown budget options: {', '.join(sorted(unknown))}")
    budget = find_budget(key=key, team=team, period=period)
    created = budget is None
    if created:
        scope = Budget.Scope.KEY if key is not None else Budget.Scope.TEAM
        budget = Budget(scope=scope, key=key, team=team, period=period, action=action or Budget.Action.BLOCK)
    wanted = {"amount_usd": Decimal(amount_usd), "enabled": True, **options}
    if action is not None:
        wanted["action"] = action
    changed = created or any(getattr(budget, f) != v for f, v in wanted.items())
    for field, value in wanted.items():
        setattr(budget, field, value)
    if changed:
        save_budget(budget)
    return Upsert(budget, created, changed)


def set_key_budget(
    key: VirtualKey, amount_usd: Decimal, period: str = Budget.Period.MONTH, *, action: str | None = None,
    **options: Any,
) -> Upsert:
    """Give `key` a budget of `amount_usd` per `period` (upsert: its budget for that
    period is updated and enabled, or created). `action` None = block for a new budget,
    unchanged for an existing one. Raises ValidationError on bad values."""
    return _upsert(key=key, team=None, amount_usd=amount_usd, period=period, action=action, options=options)


def set_team_budget(
    team: Team, amount_usd: Decimal, period: str = Budget.Period.MONTH, *, action: str | None = None,
    **options: Any,
) -> Upsert:
    """Like set_key_budget, for a team (all its keys together)."""
    return _upsert(key=None, team=team, amount_usd=amount_usd, period=period, action=action, options=options)


def disable_team_budget(team: Team, period: str) -> bool:
    """Switch off the team's budget for `period` (history kept); whether anything changed."""
    budget = find_budget(team=team, period=period)
    if budget is None or not budget.enabled:
        return False
    budget.enabled = False
    save_budget(budget)
    return True
