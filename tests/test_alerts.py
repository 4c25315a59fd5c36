"""Budget alerts: once per budget, period and threshold; delivered by log, email and
webhook; delivery failures never raise."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend

from billing.alerts import check_all_budgets, check_budget, period_bounds, period_key, spent_in_period
from billing.models import Budget, BudgetAlert
from tests.conftest import free_port
from tests.factories import BudgetFactory, TeamFactory
from tests.test_rollups import ledger_row

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


class Webhook:
    """A local HTTP server recording JSON POSTs; answers `status`."""

    def __init__(self, status: int = 204) -> None:
        self.posts: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append({"path": self.path, "json": json.loads(body), "type": self.headers["Content-Type"]})
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/budget?token=s3cret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


class BrokenEmailBackend(BaseEmailBackend):
    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp down")


def spend(amount: str, at: datetime = NOW, **kw) -> None:
    ledger_row(at, cost_usd=Decimal(amount), **kw)


def test_period_keys_and_bounds_are_utc():
    assert period_key("day", NOW) == "2026-11-20"
    assert period_key("month", NOW) == "2026-11"
    assert period_key("total", NOW) == "total"
    assert period_bounds("month", datetime(2026, 12, 31, 23, tzinfo=UTC)) == (
        datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    assert period_bounds("day", NOW) == (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    assert period_bounds("total", NOW) == (None, None)


def test_spent_in_period_follows_scope_and_period():
    team = TeamFactory()
    spend("1.1111111111", team_id=team.id, key_id=5)
    spend("2.2222222222", team_id=team.id, key_id=6)
    spend("4", key_id=5, at=NOW - timedelta(days=31))  # last month
    spend("0.0000000001")
    assert spent_in_period(BudgetFactory(scope="team", team=team), NOW) == Decimal("3.3333333333")
    assert spent_in_period(BudgetFactory(scope="global"), NOW) == Decimal("3.3333333334")
    key_budget = Budget(scope="key", key_id=5, period="total", amount_usd=1)
    assert spent_in_period(key_budget, NOW) == Decimal("5.1111111111")


def test_crossing_80_then_100_percent_alerts_once_each(webhook):
    budget = BudgetFactory(alert_emails="finance@example.com, ops@example.com", webhook_url=webhook.url)
    spend("7.99")
    assert check_budget(budget, now=NOW) == []

    spend("0.01")  # 8.00 = 80%
    [first] = check_budget(budget, now=NOW)
    assert (first.threshold_pct, first.period_key, first.spent_usd) == (80, "2026-11", Decimal("8"))
    assert check_budget(budget, now=NOW) == []

    spend("2.5")  # 10.50 = 105%
    [second] = check_budget(budget, now=NOW)
    assert second.threshold_pct == 100
    assert check_budget(budget, now=NOW) == [] and check_all_budgets(now=NOW) == 0
    assert BudgetAlert.objects.filter(budget=budget).count() == 2

    assert [m.to for m in mail.outbox] == [["finance@example.com", "ops@example.com"]] * 2
    assert "80%" in mail.outbox[0].subject and "Spent: $8" in mail.outbox[0].body
    assert [p["json"]["threshold_pct"] for p in webhook.posts] == [80, 100]
    assert webhook.posts[1]["json"] == {
        "budget": budget.pk, "scope": "global", "owner": "gateway", "period": "2026-11",
        "threshold_pct": 100, "spent_usd": "10.5000000000", "amount_usd": "10.0000",
    }
    assert webhook.posts[0]["type"] == "application/json"
    second.refresh_from_db()
    assert second.delivered == {
        "log": True, "email": {"ok": True, "to": 2}, "webhook": {"ok": True, "host": "127.0.0.1", "status": 204}
    }


def test_both_thresholds_at_once_and_again_next_period():
    budget = BudgetFactory(period="day", alert_threshold_pct=50)
    spend("12")
    assert [a.threshold_pct for a in check_budget(budget, now=NOW)] == [50, 100]
    spend("12", at=NOW + timedelta(days=1))
    tomorrow = check_budget(budget, now=NOW + timedelta(days=1))
    assert [(a.period_key, a.threshold_pct) for a in tomorrow] == [("2026-11-21", 50), ("2026-11-21", 100)]


def test_alert_for_a_team_names_the_team_in_the_log(caplog):
    team = TeamFactory(name="research")
    budget = BudgetFactory(scope="team", team=team, amount_usd=Decimal("1"))
    spend("1", team_id=team.id)
    with caplog.at_level(logging.WARNING, logger="gateway.budget"):
        check_budget(budget, now=NOW)
    assert "owner=research" in caplog.text and "threshold=100%" in caplog.text


def test_delivery_failures_are_logged_not_raised(settings, caplog):
    settings.EMAIL_BACKEND = "tests.test_alerts.BrokenEmailBackend"
    url = f"http://127.0.0.1:{free_port()}/hook?token=s3cret-token"  # nothing listens
    budget = BudgetFactory(alert_emails="finance@example.com", webhook_url=url)
    spend("10")
    with caplog.at_level(logging.WARNING, logger="gateway.budget"):
        alerts = check_budget(budget, now=NOW)
    assert len(alerts) == 2
    delivered = BudgetAlert.objects.get(threshold_pct=100).delivered
    assert delivered["email"] == {"ok": False, "to": 1, "error": "ConnectionRefusedError"}
    assert delivered["webhook"]["ok"] is False and delivered["webhook"]["error"] == "ConnectError"
    assert "webhook failed" in caplog.text and "email failed" in caplog.text
    assert "s3cret-token" not in caplog.text


def test_a_webhook_answering_an_error_is_recorded():
    hook = Webhook(status=500)
    try:
        budget = BudgetFactory(webhook_url=hook.url, alert_threshold_pct=100)
        spend("11")
        [alert] = check_budget(budget, now=NOW)
        assert alert.delivered["webhook"] == {"ok": False, "host": "127.0.0.1", "status": 500}
        assert len(hook.posts) == 1
    finally:
        hook.close()


def test_zero_budget_alerts_on_any_spend_and_check_all_skips_disabled():
    BudgetFactory(amount_usd=Decimal("0"), enabled=False)
    zero = BudgetFactory(amount_usd=Decimal("0"))
    assert check_all_budgets(now=NOW) == 0  # nothing spent yet
    spend("0.0000000001")
    assert check_all_budgets(now=NOW) == 2
    assert set(BudgetAlert.objects.values_list("budget_id", flat=True)) == {zero.pk}


def test_check_all_budgets_survives_one_broken_budget(monkeypatch):
    BudgetFactory()
    BudgetFactory()
    spend("20")
    calls = []

    def flaky(budget, spent=None, now=None, _real=check_budget):
        calls.append(budget.pk)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return _real(budget, spent, now)

    monkeypatch.setattr("billing.alerts.check_budget", flaky)
    assert check_all_budgets(now=NOW) == 2 and len(calls) == 2
