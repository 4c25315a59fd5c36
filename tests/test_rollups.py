"""Cost rollups: grouped per day x team x key x route x provider x model, exact,
idempotent, and never rebuilt from a pruned ledger."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.models import CostRollup, UsageRecord
from billing.rollups import recompute_day, recompute_range, recompute_recent
from tests.factories import UsageRecordFactory

pytestmark = pytest.mark.django_db

DAY = date(2026, 3, 14)
NOON = datetime(2026, 3, 14, 12, tzinfo=UTC)
# Costs whose float sums drift: exactness must come from the database's decimals.
# (SQLite stores decimals as doubles: exact up to 15 significant digits per value.)
TRICKY = [Decimal("0.1"), Decimal("0.2"), Decimal("0.0000000001"), Decimal("0.3333333333"),
          Decimal("1.2345678901"), Decimal("0.0000012345"), Decimal("7.0000000003")]


def ledger_row(created_at: datetime | None = None, *, save: bool = True, **kw) -> UsageRecord:
    """A billed usage record (UsageRecordFactory's `billed` trait), saved or not."""
    make = UsageRecordFactory.create if save else UsageRecordFactory.build
    return make(billed=True, created_at=created_at or timezone.now(), **kw)


def test_groups_the_ledger_per_day_team_key_route_provider_and_model():
    team = {"team_id": 7, "team_name": "search"}
    ledger_row(NOON, **team, key_id=70, key_prefix="sk-gw-aaaa", cost_usd=Decimal("0.5"), prompt_tokens=100)
    ledger_row(NOON, **team, key_id=70, key_prefix="sk-gw-aaaa", cost_usd=Decimal("0.25"),
               status=UsageRecord.Status.ERROR, http_status=502)
    ledger_row(NOON, **team, key_id=71, key_prefix="sk-gw-bbbb", cost_usd=Decimal("1"))
    ledger_row(NOON, **team, key_id=70, key_prefix="sk-gw-aaaa", model_name="anthropic/claude", provider_name="anthropic")
    ledger_row(NOON, route_name="batch")  # no team, no key
    ledger_row(NOON + timedelta(days=1), **team, key_id=70, key_prefix="sk-gw-aaaa")

    assert recompute_range(DAY, DAY + timedelta(days=1)) == 5

    rows = {(r.day, r.team_id, r.key_id, r.route_name, r.model_name): r for r in CostRollup.objects.all()}
    cell = rows[(DAY, 7, 70, "chat", "openai/gpt-4o-mini")]
    assert (cell.requests, cell.errors, cell.prompt_tokens, cell.completion_tokens) == (2, 1, 110, 10)
    assert cell.cost_usd == Decimal("0.75") and cell.baseline_cost_usd == Decimal("0.004")
    assert (cell.team_name, cell.key_prefix, cell.provider_name) == ("search", "sk-gw-aaaa", "openai")
    assert rows[(DAY, 7, 71, "chat", "openai/gpt-4o-mini")].cost_usd == Decimal("1")
    assert rows[(DAY, 7, 70, "chat", "anthropic/claude")].provider_name == "anthropic"
    orphan = rows[(DAY, 0, 0, "batch", "openai/gpt-4o-mini")]
    assert (orphan.team_name, orphan.key_prefix, orphan.requests) == ("", "", 1)
    assert rows[(DAY + timedelta(days=1), 7, 70, "chat", "openai/gpt-4o-mini")].requests == 1


def test_recomputing_twice_gives_identical_rows_with_the_same_ids():
    for i, cost in enumerate(TRICKY):
        ledger_row(NOON, team_id=i % 2 + 1, team_name=f"t{i % 2}", key_id=i % 3 + 1, cost_usd=cost)
    recompute_day(DAY)
    first = list(CostRollup.objects.order_by("pk").values())
    assert recompute_day(DAY) == len(first)
    assert list(CostRollup.objects.order_by("pk").values()) == first


def test_cost_sums_are_exact_decimals():
    costs = [TRICKY[i % len(TRICKY)] for i in range(700)]
    UsageRecord.objects.bulk_create(
        [ledger_row(NOON + timedelta(seconds=i), save=False, cost_usd=c, baseline_cost_usd=c * 3)
         for i, c in enumerate(costs)]
    )
    recompute_day(DAY)
    cell = CostRollup.objects.get()
    assert cell.cost_usd == sum(costs)
    assert cell.baseline_cost_usd == sum(c * 3 for c in costs)


def test_cells_whose_ledger_rows_are_gone_are_deleted():
    ledger_row(NOON, route_name="a")
    gone = ledger_row(NOON, route_name="b")
    recompute_day(DAY)
    gone.delete()
    assert recompute_day(DAY) == 1
    assert list(CostRollup.objects.values_list("route_name", flat=True)) == ["a"]


def test_days_are_utc_days():
    ledger_row(datetime(2026, 3, 14, 23, 59, 59, 999999, tzinfo=UTC), cost_usd=Decimal("1"))
    ledger_row(datetime(2026, 3, 15, 0, 0, tzinfo=UTC), cost_usd=Decimal("2"))
    recompute_range(DAY, DAY + timedelta(days=1))
    assert dict(CostRollup.objects.values_list("day", "cost_usd")) == {DAY: 1, DAY + timedelta(days=1): 2}


def test_a_team_renamed_during_the_day_stays_one_cell():
    ledger_row(NOON, team_id=3, team_name="old-name")
    ledger_row(NOON, team_id=3, team_name="new-name")
    recompute_day(DAY)
    assert list(CostRollup.objects.values_list("team_id", "requests")) == [(3, 2)]


def test_recompute_recent_covers_today_and_yesterday_only():
    now = timezone.now()
    for age in (0, 1, 2):
        ledger_row(now - timedelta(days=age))
    recompute_recent(now)
    today = now.astimezone(UTC).date()
    assert set(CostRollup.objects.values_list("day", flat=True)) == {today, today - timedelta(days=1)}


def test_days_older_than_retention_are_left_alone(settings):
    old = timezone.now() - timedelta(days=40)
    ledger_row(old)
    recompute_day(old.date())
    UsageRecord.objects.all().delete()  # pruned
    settings.GATEWAY_USAGE_RETENTION_DAYS = 30
    assert recompute_day(old.date()) == 0
    assert CostRollup.objects.count() == 1  # history kept


def test_management_command_recomputes_the_last_n_days():
    now = timezone.now()
    ledger_row(now - timedelta(days=3))
    ledger_row(now)
    out = StringIO()
    call_command("recompute_rollups", "--days", "2", stdout=out)
    assert CostRollup.objects.count() == 1
    call_command("recompute_rollups", "--days", "4", stdout=out)
    assert CostRollup.objects.count() == 2
    assert "Recomputed 2 rollup rows" in out.getvalue()
