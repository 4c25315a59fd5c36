"""Finance reports: permission, CSV totals equal to the ledger, date ranges, burn."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.alerts import spent_in_period
from billing.models import UsageRecord
from billing.reports.chart import spend_chart
from billing.reports.forms import DateRangeForm
from billing.reports.queries import budget_burn, daily
from billing.rollups import recompute_range
from tests.factories import BudgetFactory, TeamFactory
from tests.test_rollups import TRICKY, ledger_row

pytestmark = pytest.mark.django_db

START, END = date(2026, 3, 10), date(2026, 3, 12)
RANGE = f"start={START}&end={END}"
BREAKDOWN_VIEWS = ["spend", "team", "key", "route", "model", "provider"]


def finance_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="billing", codename="view_finance_reports")


@pytest.fixture
def finance_client(client, django_user_model):
    user = django_user_model.objects.create_user("fin", password="pw-finance-1", is_staff=True)
    user.user_permissions.add(finance_permission())
    client.force_login(user)
    return client


@pytest.fixture
def ledger():
    """Tricky decimals over 3 teams, 4 keys, 3 routes, 4 models, 2 providers, in and
    around the range; rollups recomputed. Returns the ledger rows inside the range."""
    teams = [TeamFactory(name=f"team-{i}") for i in range(2)]
    models = [("openai", "openai/gpt-4o-mini"), ("openai", "openai/gpt-4o"), ("anthropic", "anthropic/haiku"),
              ("anthropic", "anthropic/sonnet")]
    for i in range(60):
        day = START + timedelta(days=i % 5 - 1)  # 9th .. 13th: a day either side is outside
        team = teams[i % 3] if i % 3 < 2 else None
        provider, model = models[i % 4]
        ledger_row(
            datetime(day.year, day.month, day.day, i % 24, i % 60, tzinfo=UTC),
            team_id=team.id if team else None, team_name=team.name if team else "",
            key_id=i % 4 + 1, key_prefix=f"sk-gw-k{i % 4}", route_name=["chat", "batch", "=cmd"][i % 3],
            provider_name=provider, model_name=model, cost_usd=TRICKY[i % len(TRICKY)],
            baseline_cost_usd=TRICKY[(i + 3) % len(TRICKY)], prompt_tokens=i * 7, completion_tokens=i * 3,
            status=UsageRecord.Status.ERROR if i % 11 == 0 else UsageRecord.Status.SUCCESS,
        )
    recompute_range(START - timedelta(days=1), END + timedelta(days=1))
    return list(UsageRecord.objects.filter(created_at__date__gte=START, created_at__date__lte=END))


def read_csv(response) -> list[dict]:
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


# --- permission --------------------------------------------------------------------------
def test_anonymous_users_are_sent_to_the_login_page(client):
    for url in ("/reports/", "/reports/csv/team/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next=/reports/")


def test_staff_without_the_permission_are_refused(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", password="x", is_staff=True))
    for url in ("/reports/", "/reports/csv/team/"):
        response = client.get(url)
        assert response.status_code == 403
    assert b"view_finance_reports" in response.content or b"Forbidden" in response.content


def test_the_permission_without_staff_status_is_refused(client, django_user_model):
    user = django_user_model.objects.create_user("outsider", password="x")
    user.user_permissions.add(finance_permission())
    client.force_login(user)
    assert client.get("/reports/").status_code == 403


def test_finance_users_and_superusers_see_the_reports(finance_client, client, django_user_model):
    assert finance_client.get("/reports/").status_code == 200
    client.force_login(django_user_model.objects.create_superuser("root", password="x"))
    response = client.get("/reports/")
    assert response.status_code == 200 and b'id="spend-chart"' in response.content


def test_the_admin_index_links_to_the_reports_for_finance_users_only(finance_client, client, django_user_model):
    assert b'href="/reports/"' in finance_client.get("/admin/").content
    client.force_login(django_user_model.objects.create_user("ops", password="x", is_staff=True))
    assert b'href="/reports/"' not in client.get("/admin/").content


def test_reports_are_read_only(finance_client):
    assert finance_client.post("/reports/").status_code == 405
    assert finance_client.get("/reports/csv/nope/").status_code == 404


# --- CSV totals equal the ledger ------------------------------------------------------------
@pytest.mark.parametrize("view", BREAKDOWN_VIEWS)
def test_csv_totals_equal_the_ledger(finance_client, ledger, view):
    rows = read_csv(finance_client.get(f"/reports/csv/{view}/?{RANGE}"))
    *body, total = rows
    assert list(total.values())[0] == "TOTAL"
    assert Decimal(total["cost_usd"]) == sum(r.cost_usd for r in ledger)
    assert Decimal(total["baseline_cost_usd"]) == sum(r.baseline_cost_usd for r in ledger)
    assert Decimal(total["savings_usd"]) == sum(r.baseline_cost_usd - r.cost_usd for r in ledger)
    assert int(total["requests"]) == len(ledger)
    assert int(total["errors"]) == sum(r.status == "error" for r in ledger)
    assert int(total["total_tokens"]) == sum(r.prompt_tokens + r.completion_tokens for r in ledger)
    assert sum(Decimal(r["cost_usd"]) for r in body) == Decimal(total["cost_usd"])
    assert all(re.fullmatch(r"-?\d+\.\d{10}", r["cost_usd"]) for r in rows)  # exact decimals, no floats


def test_breakdown_rows_match_the_ledger_per_group(finance_client, ledger):
    by_team = {r["team"]: Decimal(r["cost_usd"]) for r in read_csv(finance_client.get(f"/reports/csv/team/?{RANGE}"))}
    assert by_team["team-0"] == sum(r.cost_usd for r in ledger if r.team_name == "team-0")
    assert by_team["(no team)"] == sum(r.cost_usd for r in ledger if r.team_id is None)
    by_route = {r["route"]: r for r in read_csv(finance_client.get(f"/reports/csv/route/?{RANGE}"))}
    assert "'=cmd" in by_route  # a formula-looking label is defused for spreadsheets
    assert int(by_route["chat"]["requests"]) == sum(r.route_name == "chat" for r in ledger)


def test_savings_csv_compares_actual_with_first_target_cost(finance_client, ledger):
    *routes, total = read_csv(finance_client.get(f"/reports/csv/savings/?{RANGE}"))
    assert {r["route"] for r in routes} == {"chat", "batch", "'=cmd"}
    baseline, cost = sum(r.baseline_cost_usd for r in ledger), sum(r.cost_usd for r in ledger)
    assert (Decimal(total["baseline_cost_usd"]), Decimal(total["cost_usd"])) == (baseline, cost)
    assert Decimal(total["savings_usd"]) == baseline - cost
    assert Decimal(total["savings_pct"]) == ((baseline - cost) * 100 / baseline).quantize(Decimal("0.01"))


def test_budgets_csv_spend_equals_the_ledger(finance_client):
    team = TeamFactory()
    now = timezone.now()
    for cost in TRICKY:
        ledger_row(now, team_id=team.id, key_id=9, cost_usd=cost)
    recompute_range(now.date(), now.date())
    team_budget = BudgetFactory(scope="team", team=team, amount_usd=Decimal("5"), period="total")
    month_budget = BudgetFactory(scope="global", amount_usd=Decimal("100"), period="month")
    rows = {int(r["budget_id"]): r for r in read_csv(finance_client.get("/reports/csv/budgets/"))}
    for budget in (team_budget, month_budget):
        assert Decimal(rows[budget.pk]["spent_usd"]) == spent_in_period(budget) == sum(TRICKY)
    assert rows[team_budget.pk]["status"] == "exceeded"


# --- date ranges and the page ------------------------------------------------------------------
def test_the_page_shows_totals_chart_and_breakdowns_for_the_range(finance_client, ledger):
    html = finance_client.get(f"/reports/?{RANGE}").content.decode()
    assert html.count('<rect class="bar"') == 3  # one per day
    total = sum(r.cost_usd for r in ledger)
    assert f'id="total-cost" title="{total}"' in html
    for section in ("by-team", "by-key", "by-route", "by-model", "by-provider", "budget-burn", "savings"):
        assert f'id="{section}"' in html
    assert f"/reports/csv/team/?start={START}&amp;end={END}" in html


def test_dates_outside_the_range_are_excluded(finance_client, ledger):
    one_day = read_csv(finance_client.get(f"/reports/csv/spend/?start={START}&end={START}"))
    assert [r["day"] for r in one_day] == [str(START), "TOTAL"]
    assert Decimal(one_day[-1]["cost_usd"]) == sum(r.cost_usd for r in ledger if r.created_at.date() == START)
    assert read_csv(finance_client.get("/reports/csv/spend/?start=2020-01-01&end=2020-01-02"))[-1]["cost_usd"] == (
        "0.0000000000")


def test_presets_and_defaults():
    today = date(2026, 3, 15)
    def rng(**q):
        form = DateRangeForm(q, today=today)
        assert form.is_valid(), form.errors
        return form.cleaned_data["start"], form.cleaned_data["end"]
    assert rng() == (date(2026, 3, 1), today)
    assert rng(preset="last_7") == (date(2026, 3, 9), today)
    assert rng(preset="last_30") == (date(2026, 2, 14), today)
    assert rng(preset="last_month") == (date(2026, 2, 1), date(2026, 2, 28))
    assert rng(start="2026-01-05") == (date(2026, 1, 5), today)
    assert not DateRangeForm({"start": "2026-03-10", "end": "2026-03-01"}, today=today).is_valid()


def test_an_invalid_range_shows_an_error_and_this_month(finance_client):
    html = finance_client.get("/reports/?start=2026-03-10&end=2026-03-01").content.decode()
    assert "start date must not be after the end date" in html
    assert timezone.now().astimezone(UTC).date().replace(day=1).isoformat() in html


# --- chart and burn ---------------------------------------------------------------------------
def test_chart_has_a_bar_with_a_tooltip_per_day_and_per_month_for_long_ranges(ledger):
    chart = spend_chart(daily(START, END))
    assert len(chart.bars) == 3 and chart.bucket == "day"
    assert chart.bars[0].title.startswith(f"{START}: $") and "requests" in chart.bars[0].title
    long = spend_chart(daily(date(2026, 1, 1), date(2026, 6, 30)))
    assert long.bucket == "month" and len(long.bars) == 6
    assert spend_chart([]).bars == []


def test_budget_burn_forecasts_the_period_end_linearly():
    team = TeamFactory()
    for day in range(1, 10):  # $10 a day for 9 days of April
        ledger_row(datetime(2026, 4, day, 12, tzinfo=UTC), team_id=team.id, cost_usd=Decimal("10"))
    recompute_range(date(2026, 4, 1), date(2026, 4, 10))
    BudgetFactory(scope="team", team=team, amount_usd=Decimal("250"), period="month")
    BudgetFactory(scope="global", amount_usd=Decimal("80"), period="day", alert_threshold_pct=50)
    BudgetFactory(scope="global", amount_usd=Decimal("1000"), period="month", enabled=False)
    month, day = budget_burn(now=datetime(2026, 4, 10, tzinfo=UTC))
    if month.budget.period == "day":
        month, day = day, month
    assert (month.spent, month.daily_burn, month.forecast) == (Decimal("90"), Decimal("10"), Decimal("300"))
    assert month.pct_used == Decimal("36.0") and month.status == "on track to exceed"
    assert month.period_end == date(2026, 4, 30)
    assert (day.spent, day.status) == (Decimal("0"), "ok")
