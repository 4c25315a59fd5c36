"""The admin Gateway status page in headless Chromium at 1366x768, on the small
company's configuration of the admin screenshot test with trouble added (an open
breaker, a failing model, dead letters, a stale and a live worker): reached from the
home page's Health group, fits a laptop screen, loads without a single 4xx.

The screenshot goes to var/screenshots/admin-status.png (git-ignored) for a human look."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from billing.models import UsageDeadLetter
from routing.breaker import get_breaker_store
from routing.catalog import breaker_key, breaker_policy
from routing.heartbeat import record
from routing.models import Route, RouteTarget
from tests.test_admin_screenshots_browser import HEIGHT, WIDTH, company_config, open_page, shot
from tests.test_reports_browser import CHROMIUM, chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


def trouble(dead_letter_file) -> None:
    route = Route.objects.get(name="chat-premium")
    first = RouteTarget.objects.filter(route=route).order_by("order").first()
    policy = breaker_policy(route)
    for _ in range(policy.failure_threshold):  # the live gateway shares this process's breaker store
        async_to_sync(get_breaker_store().record)(breaker_key(route.pk, first.model_id), policy, success=False)
    for n in range(3):
        UsageDeadLetter.objects.create(request_id=f"dead-{n}", occurred_at=timezone.now(), entry={},
                                       error="IntegrityError: value out of range")
    dead_letter_file.write_text("{}\n")
    record("celery@worker-eu-1")
    record("celery@worker-eu-2", now=timezone.now() - timedelta(minutes=12))


def test_the_status_page_fits_a_laptop_screen(gateway, django_user_model, settings, tmp_path):
    settings.GATEWAY_LEDGER_DEAD_LETTER_PATH = str(tmp_path / "dead.jsonl")
    django_user_model.objects.create_superuser("operator", password="operator-pass-123")
    company_config()
    trouble(tmp_path / "dead.jsonl")
    errors: list[str] = []

    with chromium() as browser:
        page = open_page(browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}), f"{gateway}/admin/", errors)
        page.fill("#id_username", "operator")
        page.fill("#id_password", "operator-pass-123")
        with page.expect_navigation():
            page.click("input[type=submit]")
        with page.expect_navigation():
            page.click(".app-health a:text('Gateway status')")
        assert page.url.endswith("/admin/routing/workerheartbeat/status/"), page.url
        page.wait_for_load_state("networkidle")
        too_wide = shot(page, "status")
        cards = page.locator("#status-summary .status-card").all_inner_texts()
        breakers = page.locator("#status-breakers tbody tr").first.inner_text()
        workers = page.locator("#status-heartbeat tbody tr").all_inner_texts()
        failed = page.locator("#status-errors tbody tr").count()

    assert [c.split("\n")[0] for c in cards] == [
        "Celery worker", "Queue depth", "Dead letters", "Breakers not closed", "Models failing checks",
        "Failed requests"]
    assert "alive" in cards[0] and "n/a" in cards[1] and "\n4\n" in cards[2]
    assert breakers.startswith("chat-premium") and "open" in breakers
    assert [w.split("\t")[0] for w in workers] == ["celery@worker-eu-1", "celery@worker-eu-2"]
    assert "alive" in workers[0] and "stale" in workers[1]
    assert failed == 3  # company_config's failed rows (all of the last day)
    assert not too_wide, "\n".join(too_wide)
    assert not errors, "\n".join(errors)
