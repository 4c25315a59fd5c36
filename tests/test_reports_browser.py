"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) against the
live gateway: a finance user logs in through the admin form and sees the chart and
totals (a request made after the last rollup included) and their own My usage page; a
staff user without the permission gets the 403 page. Screenshots at 1366x768 go to
var/screenshots/reports-*.png (git-ignored)."""

from __future__ import annotations

import os
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.models import UsageRecord
from billing.playground import playground_key
from billing.rollups import recompute_recent
from tests.test_rollups import ledger_row

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
WIDTH, HEIGHT = 1366, 768
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


@contextmanager
def chromium():
    """Started only after the test's ORM work: the sync Playwright API runs an event
    loop in this thread, and Django refuses ORM calls while one is running."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def shot(page, name: str) -> None:
    """A full-page screenshot, after checking nothing sticks out to the right."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"reports-{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{name}: the page is {width}px wide in a {WIDTH}px window"


def log_in(browser, base_url: str, username: str, password: str):
    """A fresh browser context, logged in through the admin login form, on /reports/."""
    page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}/reports/")
    assert "/admin/login/" in page.url  # anonymous: sent to log in first
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")
    return page


def test_finance_user_sees_chart_and_totals_and_others_are_refused(gateway, django_user_model):
    finance = django_user_model.objects.create_user("finance", password="finance-pass-123", is_staff=True)
    finance.user_permissions.add(Permission.objects.get(codename="view_finance_reports"))
    django_user_model.objects.create_user("operator", password="operator-pass-123", is_staff=True)
    now = timezone.now()
    ledger_row(now, cost_usd=Decimal("12.3456789012"), team_name="search", team_id=1)
    ledger_row(now, cost_usd=Decimal("0.6543210988"))
    ledger_row(now, cost_usd=Decimal("0"), status=UsageRecord.Status.CACHE_HIT, cache_saved_usd=Decimal("0.75"),
               team_name="search", team_id=1)  # a cache hit: free, and what it saved
    recompute_recent(now)
    key = playground_key(finance)
    ledger_row(timezone.now(), cost_usd=Decimal("0.000003"), key_id=key.pk, key_prefix=key.prefix,
               route_name="playground-route")  # after the rollup: read live

    with chromium() as browser:
        page = log_in(browser, gateway, "finance", "finance-pass-123")
        assert page.url.endswith("/reports/")
        chart = page.locator("#spend-chart")
        chart.wait_for(state="visible")
        assert page.locator("#spend-chart rect.bar").count() == now.day  # this month, one bar per day
        assert page.locator("#total-cost").inner_text() == "$13.00"
        assert page.locator("#total-requests").inner_text() == "4"
        assert page.locator("#total-cache-saved").inner_text() == "$0.75"
        assert "Figures as of" in page.locator("#freshness").inner_text()
        assert "today's figures are live" in page.locator("#freshness").inner_text()
        assert page.locator("#by-team").get_by_text("search").is_visible()
        tooltip = page.locator("#spend-chart rect.bar title").last.text_content()
        assert tooltip.startswith(now.date().isoformat()) and "$13.00 " in tooltip
        shot(page, "overview")

        with page.expect_navigation():
            page.click("#my-usage-link")
        assert page.url.endswith("/reports/me/")
        assert page.locator("#spend-today .figure").inner_text() == "$0.000003"
        assert page.locator("#recent").get_by_text("playground-route").is_visible()
        shot(page, "my-usage")

        refused = log_in(browser, gateway, "operator", "operator-pass-123")
        response = refused.goto(f"{gateway}/reports/")
        assert response.status == 403
        assert refused.get_by_role("heading", name="403 Forbidden").is_visible()
        assert refused.locator("#spend-chart").count() == 0
