"""One answer to "what has this budget spent": enforcement (admission's seeding),
alerts, the finance burn report and the admin's budget page all read billing.money,
so a key rotation cannot make them disagree."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from django.utils import timezone

from billing import admission, money
from billing.alerts import check_budget
from billing.keys import hash_key, issue_key, load_key, rotate_key
from billing.limits import get_limit_store, to_units
from billing.models import Budget, BudgetAlert
from billing.reports.queries import budget_burn
from tests.factories import TeamFactory
from tests.test_rollups import ledger_row

pytestmark = pytest.mark.django_db(transaction=True)  # admission reads the database from its own thread


def _rotated_key_with_six_dollars_spent():
    """A key with a $10 monthly budget spends $6, then is rotated (billing.keys.rotate_key)."""
    old = issue_key("search", budget_usd=Decimal("10"), budget_period="month")
    budget = Budget.objects.get(key=old.key)
    budget.alert_threshold_pct = 50
    budget.save()
    ledger_row(timezone.now(), key_id=old.key.id, cost_usd=Decimal("4"))
    ledger_row(timezone.now(), key_id=old.key.id, cost_usd=Decimal("2"))
    new = rotate_key(old.key, grace_seconds=600)
    budget.refresh_from_db()
    assert budget.key_id == new.key.id  # the budget row moved to the new key
    return old, new, budget


def test_after_a_rotation_enforcement_alerts_report_and_admin_agree_on_the_spend(admin_client):
    old, new, budget = _rotated_key_with_six_dollars_spent()
    six = Decimal("6")
    assert money.spent_in_period(budget) == six

    # enforcement: the store is seeded from the ledger on the new key's first request
    info = load_key(hash_key(new.secret))

    async def enforce():
        refused = None
        try:
            await admission.admit(info, 10, Decimal("4.01"))
        except admission.BudgetExceeded as exc:
            refused = exc
        admitted = await admission.admit(info, 10, Decimal("4"))
        usage = await get_limit_store().usage(admitted.slots)
        return refused, usage[admitted.slots[0].key]

    refused, usage = asyncio.run(enforce())
    assert refused is not None and refused.code == "key_budget_exceeded"
    assert usage.spent == to_units(six) and usage.reserved == to_units(Decimal("4"))

    # alerts: the 50% threshold was crossed with $6
    alerts = check_budget(budget)
    assert [(a.threshold_pct, a.spent_usd) for a in alerts] == [(50, six)]
    assert BudgetAlert.objects.get(budget=budget).spent_usd == six

    # the finance report's budget burn
    (burn,) = [b for b in budget_burn() if b.budget.pk == budget.pk]
    assert burn.spent == six and burn.pct_used == Decimal("60.0") and burn.status == "alert"

    # the admin's budget page explains the same figure
    html = admin_client.get(f"/admin/billing/budget/{budget.pk}/change/").content.decode()
    assert "$6.0000000000 of $10.0000 (60.0%)" in html


def test_the_old_key_spends_against_the_same_budget_during_its_grace_period():
    old, new, budget = _rotated_key_with_six_dollars_spent()
    ledger_row(timezone.now(), key_id=old.key.id, cost_usd=Decimal("1"))  # still used during the grace period
    ledger_row(timezone.now(), key_id=new.key.id, cost_usd=Decimal("0.5"))
    assert money.spent_in_period(budget) == Decimal("7.5")
    again = rotate_key(new.key, grace_seconds=0)  # a second rotation keeps the whole lineage
    budget.refresh_from_db()
    assert budget.key_id == again.key.id and money.spent_in_period(budget) == Decimal("7.5")


def test_spend_is_per_scope_and_period():
    team = TeamFactory()
    ledger_row(timezone.now(), team_id=team.id, cost_usd=Decimal("1.1111111111"))
    ledger_row(timezone.now(), cost_usd=Decimal("0.0000000001"))
    ledger_row(timezone.now() - timezone.timedelta(days=40), team_id=team.id, cost_usd=Decimal("5"))
    team_month = Budget(scope="team", team=team, period="month", amount_usd=1)
    team_total = Budget(scope="team", team=team, period="total", amount_usd=1)
    whole = Budget(scope="global", period="month", amount_usd=1)
    assert money.spent_in_period(team_month) == Decimal("1.1111111111")
    assert money.spent_in_period(team_total) == Decimal("6.1111111111")
    assert money.spent_in_period(whole) == Decimal("1.1111111112")
