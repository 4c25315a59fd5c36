"""My usage: one signed-in user's playground key, its spend, budgets and limits.

Only that key's data (and the keys it replaced, when it was rotated) is read: spend
from its rollups plus its live ledger rows, like the finance reports' "By key" row;
budgets of the key itself in full; team and gateway budgets that also apply only
by whether they still have room, since their spend is other people's too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db.models import Min, Q
from django.utils import timezone

from billing.keys import key_lineage
from billing.models import Budget, CostRollup, UsageRecord, VirtualKey

from . import queries
from .live import Live, consistent
from .queries import Burn, Row

RECENT = 20
RECENT_FIELDS = ["created_at", "route_name", "model_name", "prompt_tokens", "completion_tokens", "cost_usd",
                 "cache_saved_usd", "status", "http_status", "request_id"]


@dataclass
class Limit:
    owner: str  # "This key" or "Team <name>"
    rpm: int | None
    tpm: int | None


@dataclass
class BudgetLine:
    burn: Burn
    shared: bool  # a team or gateway budget: its spend is not only this user's

    @property
    def remaining(self) -> Decimal:
        return max(self.burn.budget.amount_usd - self.burn.spent, Decimal(0))

    @property
    def has_room(self) -> bool:
        return self.burn.status != "exceeded"


@dataclass
class MyUsage:
    key: VirtualKey
    today: Row
    month: Row
    total: Row
    budgets: list[BudgetLine]
    limits: list[Limit]
    recent: list[UsageRecord]
    live: Live

    @property
    def has_shared_budgets(self) -> bool:
        return any(line.shared for line in self.budgets)


def first_day(key_ids: list[int], today: date) -> date:
    """The first UTC day with spend of these keys (today when there is none)."""
    rolled = CostRollup.objects.filter(key_id__in=key_ids).aggregate(d=Min("day"))["d"]
    logged = UsageRecord.objects.filter(key_id__in=key_ids).aggregate(t=Min("created_at"))["t"]
    days = [d for d in (rolled, logged.astimezone(UTC).date() if logged else None) if d is not None]
    return min([*days, today])


def my_usage(key: VirtualKey, now: datetime | None = None) -> MyUsage:
    now = (now or timezone.now()).astimezone(UTC)
    today = now.date()
    key_ids = key_lineage(key.pk)
    days, live = consistent(first_day(key_ids, today), today, queries.daily_rows, key_ids)
    month = queries.sum_rows([d for d in days if d.group >= today.replace(day=1)], "This month")
    budgets = Budget.objects.filter(Q(scope=Budget.Scope.KEY, key=key) | Q(scope=Budget.Scope.GLOBAL)
                                    | (Q(scope=Budget.Scope.TEAM, team_id=key.team_id) if key.team_id else Q(pk__in=[])))
    lines = [BudgetLine(burn=b, shared=b.budget.scope != Budget.Scope.KEY) for b in queries.budget_burn(now, budgets)]
    lines.sort(key=lambda line: (line.shared, line.burn.budget.scope, line.burn.budget.pk))
    limits = [Limit("This key", key.rpm_limit, key.tpm_limit)]
    if key.team is not None:
        limits.append(Limit(f"Team {key.team.name}", key.team.rpm_limit, key.team.tpm_limit))
    recent = list(UsageRecord.objects.filter(key_id__in=key_ids).only(*RECENT_FIELDS).order_by("-created_at")[:RECENT])
    return MyUsage(
        key=key, today=days[-1], month=month, total=queries.sum_rows(days, "In total"),
        budgets=lines, limits=limits, recent=recent, live=live,
    )
