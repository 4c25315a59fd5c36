"""Config as code, teams: rate limits and a budget per team, imported and exported
(round trip), with errors naming the team and the key."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from billing.budgets import set_team_budget
from billing.models import Budget, Team
from routing.config import ConfigError, dump_config, export_config, import_config, load_config_text
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

TEAMS = """
teams:
  - name: research
    description: The research team.
    rpm_limit: 600
    tpm_limit: 100000
    budget_usd: "500"
    budget_period: month
  - name: search
    budget_usd: 12.5
    budget_period: day
  - name: plain
"""


def teams_state() -> dict:
    return {
        "teams": list(Team.objects.order_by("pk").values()),
        "budgets": list(Budget.objects.order_by("pk").values()),
    }


def test_import_sets_limits_and_team_budgets():
    report = import_config(load_config_text(TEAMS))

    assert report.count("created", "team") == 3
    research = Team.objects.get(name="research")
    assert (research.rpm_limit, research.tpm_limit) == (600, 100000)
    budget = research.budgets.get()
    assert (budget.scope, budget.amount_usd, budget.period, budget.action, budget.enabled) == (
        "team", Decimal("500"), "month", "block", True
    )
    assert Team.objects.get(name="search").budgets.get().amount_usd == Decimal("12.5")
    assert not Team.objects.get(name="plain").budgets.exists()
    assert Team.objects.get(name="plain").rpm_limit is None


def test_export_round_trips_and_a_second_import_changes_nothing(tmp_path):
    import_config(load_config_text(TEAMS))
    before = teams_state()
    text = dump_config(export_config())
    exported = {t["name"]: t for t in load_config_text(text)["teams"]}
    assert exported["research"] == {
        "name": "research", "description": "The research team.", "rpm_limit": 600, "tpm_limit": 100000,
        "budget_usd": "500.00", "budget_period": "month",
    }
    assert exported["search"]["budget_usd"] == "12.50" and exported["search"]["budget_period"] == "day"
    assert exported["plain"] == {"name": "plain"}

    report = import_config(load_config_text(text))
    assert (report.created, report.updated) == (0, 0)
    assert teams_state() == before

    # ...and into an empty database, through the commands, to the same text.
    Team.objects.all().delete()
    path = tmp_path / "teams.yaml"
    path.write_text(text)
    call_command("gateway_import", str(path), stdout=io.StringIO())
    out = io.StringIO()
    call_command("gateway_export", stdout=out)
    assert out.getvalue() == text


def test_changing_the_amount_updates_the_budget_and_null_switches_it_off():
    import_config(load_config_text(TEAMS))
    budget = Budget.objects.get(team__name="search")

    report = import_config({"teams": [{"name": "search", "budget_usd": "20", "budget_period": "day"}]})
    assert report.count("updated", "team") == 1
    budget.refresh_from_db()
    assert (budget.amount_usd, budget.enabled) == (Decimal("20"), True)

    import_config({"teams": [{"name": "search", "budget_usd": None, "budget_period": "day"}]})
    budget.refresh_from_db()
    assert budget.enabled is False and Budget.objects.filter(team__name="search").count() == 1
    assert "budget_usd" not in next(t for t in export_config()["teams"] if t["name"] == "search")


def test_absent_budget_keys_leave_budgets_made_elsewhere_alone():
    team = TeamFactory(name="ops")
    alert_only = set_team_budget(team, Decimal("40"), "month", action="alert", alert_emails="ops@example.com").budget
    set_team_budget(team, Decimal("3"), "day")

    report = import_config({"teams": [{"name": "ops"}]})

    assert report.count("unchanged", "team") == 1
    assert team.budgets.count() == 2
    # The file shows one budget (monthly first); re-importing it keeps the alert-only action.
    exported = export_config()["teams"][0]
    assert (exported["budget_usd"], exported["budget_period"]) == ("40.00", "month")
    import_config({"teams": [exported]})
    alert_only.refresh_from_db()
    assert (alert_only.action, alert_only.alert_emails) == ("alert", "ops@example.com")


@pytest.mark.parametrize(
    "item,path,message",
    [
        ({"budget_usd": "-1"}, "teams[t].budget_usd", "must be at least 0"),
        ({"budget_usd": "1.00001"}, "teams[t].budget_usd", "at most 10 digits before and 4 after"),
        ({"budget_usd": "lots"}, "teams[t].budget_usd", "not a number"),
        ({"budget_usd": 5, "budget_period": "week"}, "teams[t].budget_period", "unknown budget period 'week'"),
        ({"budget_period": "day"}, "teams[t].budget_period", "needs budget_usd"),
        ({"rpm_limit": "many"}, "teams[t].rpm_limit", "expected an integer"),
        ({"tpm_limit": -5}, "teams[t].tpm_limit", "greater than or equal to 0"),
        ({"budget": 5}, "teams[t].budget", "unknown key"),
    ],
)
def test_errors_name_the_team_and_the_key_and_change_nothing(item, path, message):
    with pytest.raises(ConfigError) as exc:
        import_config({"teams": [{"name": "ok", "budget_usd": "1"}, {"name": "t", **item}]})
    assert exc.value.path == path and message in exc.value.message, exc.value.errors
    assert not Team.objects.exists() and not Budget.objects.exists()
