"""Report freshness: today's spend is the rollups plus the ledger rows created since
the last rollup, each request counted once; every page says how fresh it is; money
is shown by one rule that never turns a non-zero ledger into $0.00."""

from __future__ import annotations

import csv
import importlib
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from billing.models import CostRollup, RollupCoverage
from billing.reports import live as live_mod
from billing.reports import queries
from billing.reports.formatting import usd
from billing.rollups import day_bounds, recompute_day, recompute_range, recompute_recent
from tests.test_reports import finance_client  # noqa: F401 - fixture
from tests.test_rollups import ledger_row

pytestmark = pytest.mark.django_db


def today() -> date:
    return timezone.now().astimezone(UTC).date()


def today_total() -> queries.Row:
    return queries.daily(today(), today())[-1]


def spend_csv_total(client, start: date, end: date) -> dict:
    response = client.get(f"/reports/csv/spend/?start={start}&end={end}")
    return list(csv.DictReader(io.StringIO(response.content.decode())))[-1]


# --- live figures, counted once ------------------------------------------------------------
def test_a_request_made_now_is_in_todays_total_before_any_rollup(finance_client):  # noqa: F811
    ledger_row(timezone.now(), cost_usd=Decimal("0.0123456789"))
    assert not CostRollup.objects.exists()
    row = today_total()
    assert (row.requests, row.cost) == (1, Decimal("0.0123456789"))
    html = finance_client.get("/reports/").content.decode()
    assert 'id="total-cost" title="0.0123456789"' in html
    assert Decimal(spend_csv_total(finance_client, today(), today())["cost_usd"]) == Decimal("0.0123456789")


def test_after_a_rollup_the_total_is_the_same_not_doubled(finance_client):  # noqa: F811
    costs = [Decimal("0.1"), Decimal("0.2"), Decimal("0.0000000001")]
    for cost in costs:
        ledger_row(timezone.now(), cost_usd=cost)
    before = today_total()
    recompute_recent()
    assert CostRollup.objects.filter(day=today()).exists()
    after = today_total()
    assert (after.requests, after.cost) == (before.requests, before.cost) == (3, sum(costs))
    ledger_row(timezone.now(), cost_usd=Decimal("1"))  # after the rollup: live again
    assert (today_total().requests, today_total().cost) == (4, sum(costs) + 1)
    assert Decimal(spend_csv_total(finance_client, today(), today())["cost_usd"]) == sum(costs) + 1
    recompute_recent()
    assert (today_total().requests, today_total().cost) == (4, sum(costs) + 1)


def test_the_rollup_and_the_live_rows_split_at_the_recorded_cutoff():
    cutoff = max(timezone.now() - timedelta(seconds=30), day_bounds(today())[0] + timedelta(seconds=1))
    tick = timedelta(microseconds=1)
    ledger_row(cutoff - tick, cost_usd=Decimal("1"))  # before: the rollup's
    ledger_row(cutoff, cost_usd=Decimal("10"))  # at the cutoff: live
    ledger_row(cutoff + tick, cost_usd=Decimal("100"))  # after: live
    recompute_day(today(), now=cutoff)
    assert RollupCoverage.objects.get(day=today()).covered_until == cutoff
    assert CostRollup.objects.get(day=today()).cost_usd == Decimal("1")
    live = live_mod.read_live(live_mod.coverage(today(), today()))
    assert (live.requests, sum(c["cost_usd"] for c in live.cells)) == (2, Decimal("110"))
    assert today_total().cost == Decimal("111")


def test_a_row_written_late_behind_the_cutoff_is_counted_once_by_the_next_rollup():
    cutoff = timezone.now()
    recompute_day(today(), now=cutoff)
    ledger_row(cutoff - timedelta(seconds=1), cost_usd=Decimal("2"))  # settled before, committed after
    assert today_total().cost == Decimal("0")  # neither side has it yet: at most one rollup interval
    recompute_recent()
    assert today_total().cost == Decimal("2")


def test_a_rollup_committing_during_a_read_does_not_double_count():
    ledger_row(timezone.now(), cost_usd=Decimal("5"))
    calls = []

    def build(live):
        if not calls:  # the rollup commits after the live rows were read, before the rollups are
            recompute_recent()
        calls.append(live)
        return queries.daily_rows(live)

    days, live = live_mod.consistent(today(), today(), build)
    assert len(calls) == 2  # the coverage changed: read again
    assert (days[-1].requests, days[-1].cost) == (1, Decimal("5"))
    assert live.requests == 0  # the second read found it rolled up


def test_breakdowns_merge_live_rows_into_the_rollup_groups():
    ledger_row(timezone.now(), team_id=3, team_name="search", route_name="chat", cost_usd=Decimal("1"))
    recompute_recent()
    ledger_row(timezone.now(), team_id=3, team_name="search", route_name="chat", cost_usd=Decimal("2"))
    ledger_row(timezone.now(), route_name="batch", cost_usd=Decimal("4"))
    teams = {r.label: (r.requests, r.cost) for r in queries.breakdown("team", today(), today())}
    assert teams == {"search": (2, Decimal("3")), "(no team)": (1, Decimal("4"))}
    routes = [r.label for r in queries.breakdown("route", today(), today())]
    assert routes == ["batch", "chat"]


def test_past_days_rolled_up_to_their_end_read_nothing_live():
    day = today() - timedelta(days=5)
    ledger_row(day_bounds(day)[0] + timedelta(hours=3), cost_usd=Decimal("7"))
    recompute_day(day)
    assert RollupCoverage.objects.get(day=day).covered_until == day_bounds(day)[1]
    cov = live_mod.coverage(day, day)
    assert cov.windows() == []
    assert queries.daily(day, day)[0].cost == Decimal("7")


def test_a_day_never_rolled_up_is_read_from_the_ledger():
    day = today() - timedelta(days=9)
    ledger_row(day_bounds(day)[0] + timedelta(hours=1), cost_usd=Decimal("3"))
    assert queries.daily(day, day)[0].cost == Decimal("3")


def test_days_rolled_up_before_coverage_existed_are_not_counted_twice():
    """The migration marks every day that already has rollups as covered to its end."""
    ledger_row(timezone.now(), cost_usd=Decimal("4"))
    recompute_recent()
    RollupCoverage.objects.all().delete()  # as before the migration
    importlib.import_module("billing.migrations.0010_rollup_coverage").backfill(apps, None)
    assert RollupCoverage.objects.get(day=today()).computed_at is None
    assert today_total().cost == Decimal("4")


# --- "figures as of" --------------------------------------------------------------------------
def test_the_page_says_when_the_rollups_ran_and_that_today_is_live(finance_client):  # noqa: F811
    ledger_row(timezone.now(), cost_usd=Decimal("1"))
    recompute_recent()
    computed = RollupCoverage.objects.get(day=today()).computed_at
    ledger_row(timezone.now(), cost_usd=Decimal("1"))
    html = finance_client.get("/reports/").content.decode()
    assert 'id="freshness"' in html and "Figures as of" in html
    assert f"Rollups last computed {computed:%Y-%m-%d %H:%M:%S} UTC" in html
    assert "today's figures are live" in html and "the 1 request made" in html


def test_a_fully_rolled_up_past_range_says_so(finance_client):  # noqa: F811
    day = today() - timedelta(days=40)
    ledger_row(day_bounds(day)[0] + timedelta(hours=2))
    recompute_range(day, day)
    computed = RollupCoverage.objects.get(day=day).computed_at
    html = finance_client.get(f"/reports/?start={day}&end={day}").content.decode()
    assert f"Figures as of <time datetime=\"{computed.isoformat()}\">{computed:%Y-%m-%d %H:%M:%S} UTC" in html
    assert "every day shown is fully rolled up" in html and "today's figures are live" not in html


def test_report_pages_link_to_my_usage(finance_client):  # noqa: F811
    assert 'href="/reports/me/"' in finance_client.get("/reports/").content.decode()


# --- rounding ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("amount", "shown"), [
    ("0", "$0.00"), ("0E-10", "$0.00"), ("0.000003", "$0.000003"), ("0.0000031415", "$0.0000031"),
    ("0.0000000001", "$0.0000000001"), ("0.004", "$0.004"), ("0.00999", "$0.01"), ("0.005", "$0.005"),
    ("0.015", "$0.02"), ("12.3456789012", "$12.35"), ("1234567.891", "$1,234,567.89"), ("-0.25", "-$0.25"),
    ("-0.0000012345", "-$0.0000012"),
])
def test_money_is_two_decimals_from_a_cent_up_and_two_significant_digits_below(amount, shown):
    assert usd(Decimal(amount)) == shown


def test_a_tiny_non_zero_ledger_never_shows_zero(finance_client):  # noqa: F811
    ledger_row(timezone.now(), cost_usd=Decimal("0.000003"), baseline_cost_usd=Decimal("0.000003"))
    html = finance_client.get("/reports/").content.decode()
    assert 'id="total-cost" title="0.0000030000">$0.000003<' in html
    assert "$0.00<" not in html.split('id="by-team"')[1].split("</section>")[0]
    assert "$0.000003" in html.split('id="spend-chart"')[1].split("</svg>")[0]  # the bar's tooltip
    assert spend_csv_total(finance_client, today(), today())["cost_usd"] == "0.0000030000"  # CSV: exact
