"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) at 1366x768
against the live gateway, on a configuration the size a small company has: the main
admin pages fit a laptop screen (nothing wider than the window, no table that has to
be scrolled sideways) and load without a single 4xx (a favicon included).

Screenshots go to var/screenshots/admin-*.png (git-ignored) for a human look."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from billing.keys import issue_key
from billing.models import Budget, UsageRecord
from guardrails.models import Guardrail, Violation
from providers.models import Model, Provider
from tests.factories import (
    BudgetFactory, HealthCheckFactory, RouteFactory, RouteTargetFactory, TeamFactory, UsageRecordFactory,
)
from tests.test_guardrail_admin_browser import SCROLLED
from tests.test_reports_browser import CHROMIUM, chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
WIDTH, HEIGHT = 1366, 768
MODELS = {
    "openai-prod": ("openai", [("gpt-4o", "gpt-4o-2024-11-20", "2.50", "10.00", 128_000, 90),
                               ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "0.15", "0.60", 128_000, 70),
                               ("o3-mini", "o3-mini-2025-01-31", "1.10", "4.40", 200_000, 85)]),
    "anthropic-main": ("anthropic", [("claude-sonnet-4-6", "claude-sonnet-4-6-20260101", "3.00", "15.00", 200_000, 92),
                                     ("claude-haiku-4-5", "claude-haiku-4-5-20251001", "1.00", "5.00", 200_000, 75)]),
    "ollama-local": ("ollama", [("llama3.1-8b", "llama3.1:8b-instruct-q4_K_M", "0", "0", 8_192, 50)]),
}


def company_config() -> dict:
    """Three providers (one switched off), six routes, keys in teams, budgets, guardrails,
    a page of usage rows and health checks."""
    models: dict[str, Model] = {}
    for name, (kind, rows) in MODELS.items():
        provider = Provider.objects.create(name=name, kind=kind, base_url="http://127.0.0.1:9/v1",
                                           api_key="sk-test-screenshot-0000", enabled=kind != "ollama")
        for model, upstream, price_in, price_out, window, quality in rows:
            models[model] = Model.objects.create(
                provider=provider, name=model, upstream_id=upstream, input_price_per_mtok=Decimal(price_in),
                output_price_per_mtok=Decimal(price_out), context_window=window, quality_score=quality)
    routes = {}
    for name, strategy, targets in [
        ("chat-default", "fallback", ["gpt-4o-mini", "claude-haiku-4-5", "llama3.1-8b"]),
        ("chat-premium", "fallback", ["claude-sonnet-4-6", "gpt-4o", "o3-mini"]),
        ("ab-test-sonnet-vs-4o", "loadbalance", ["claude-sonnet-4-6", "gpt-4o"]),
        ("fast-answers", "least_latency", ["gpt-4o-mini", "claude-haiku-4-5"]),
        ("cheapest-good-enough", "cost", ["gpt-4o-mini", "claude-haiku-4-5", "gpt-4o", "claude-sonnet-4-6"]),
        ("code-or-chat", "task", ["o3-mini", "gpt-4o-mini"]),
    ]:
        cache = {"fast-answers": "exact", "chat-default": "semantic"}.get(name, "off")
        route = routes[name] = RouteFactory(name=name, strategy=strategy, description=f"The {name} route.",
                                            cache_mode=cache)
        for order, model in enumerate(targets):
            RouteTargetFactory(route=route, model=models[model], order=order)
    keys = []
    for team_name, key_names in [("search", ["search-backend-prod", "search-backend-staging"]),
                                 ("support-assistant", ["support-bot-eu", "support-bot-us"]),
                                 ("data-science", ["notebook-jane.doe", "batch-summaries-nightly"])]:
        team = TeamFactory(name=team_name, rpm_limit=600, tpm_limit=200_000)
        for key_name in key_names:
            keys.append(issue_key(key_name, team=team, routes=list(routes.values())[:3], rpm_limit=120).key)
        BudgetFactory(scope=Budget.Scope.TEAM, team=team, amount_usd=Decimal("500"))
    now = timezone.now()
    for i in range(30):
        key = keys[i % len(keys)]
        UsageRecordFactory(
            request_id=uuid.uuid4().hex, created_at=now - timedelta(minutes=7 * i), key=key, key_prefix=key.prefix,
            team=key.team, team_name=key.team.name, route_name="cheapest-good-enough" if i % 3 else "chat-default",
            provider_name="anthropic-main", model_name="anthropic-main/claude-haiku-4-5", prompt_tokens=1234 + i,
            completion_tokens=456, cost_usd=Decimal("0.0035") * (i + 1), latency_ms=2345, ttft_ms=412, attempts=1,
            status=UsageRecord.Status.ERROR if i % 9 == 4 else UsageRecord.Status.SUCCESS,
            error_kind="rate_limited" if i % 9 == 4 else "", usage_estimated=i % 5 == 0, stream=i % 2 == 0)
    UsageRecordFactory(request_id=uuid.uuid4().hex, created_at=now, key_prefix="admin", route_name="chat-premium",
                       provider_name="openai-prod", model_name="openai-prod/gpt-4o", prompt_tokens=12,
                       completion_tokens=80, cost_usd=Decimal("0.00083"), latency_ms=1800)  # a staff test call
    for model in models.values():
        HealthCheckFactory(model=model, ok=model.name != "o3-mini", latency_ms=380,
                           error_kind="" if model.name != "o3-mini" else "timeout",
                           message="" if model.name != "o3-mini" else "no answer within 5 s")
    pii = Guardrail.objects.create(name="pii-default", kind="pii", action="redact", restore=True)
    pii.routes.add(routes["chat-default"], routes["chat-premium"])
    Guardrail.objects.create(name="secrets-block", kind="secrets", action="block")
    words = Guardrail.objects.create(name="project-codenames", kind="keywords", action="flag",
                                     params={"words": ["Project Falcon"]})
    words.teams.add(*(k.team for k in keys[::2]))
    Violation.objects.create(guardrail=pii, guardrail_name=pii.name, stage="input", action="redact",
                             outcome="redacted", request_id=uuid.uuid4().hex, entities={"email": 2})
    return {"provider": models["gpt-4o"].provider, "route": routes["chat-default"],
            "usage": UsageRecord.objects.filter(usage_estimated=True).first()}


def open_page(context, url: str, errors: list[str]):
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(url)
    return page


def shot(page, name: str) -> list[str]:
    """A full-page screenshot; what sticks out to the right (every page is shot even
    when one is too wide, so they can all be looked at)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / f"admin-{name}.png"), full_page=True)
    problems = [f"{name}: {box}, reachable only by scrolling sideways" for box in page.evaluate(SCROLLED)]
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > WIDTH:
        problems.append(f"{name}: the page is {width}px wide in a {WIDTH}px window")
    return problems


def test_the_main_admin_pages_fit_a_laptop_screen_and_load_without_errors(gateway, django_user_model):
    django_user_model.objects.create_superuser("operator", password="operator-pass-123")
    editor = django_user_model.objects.create_user("editor", password="editor-pass-123", is_staff=True)
    editor.user_permissions.add(*Permission.objects.exclude(
        content_type__app_label__in=["django_celery_beat", "authtoken", "auth", "admin", "sessions", "contenttypes"]))
    made = company_config()
    pages = {
        "home": "/admin/",
        "provider-change": f"/admin/providers/provider/{made['provider'].pk}/change/",
        "routes": "/admin/routing/route/",
        "keys": "/admin/billing/virtualkey/",
        "usage-records": "/admin/billing/usagerecord/",
        "model-health": "/admin/routing/targethealth/",
        "guardrails": "/admin/guardrails/guardrail/",
        # and the pages around them
        "providers": "/admin/providers/provider/",
        "models": "/admin/providers/model/",
        "route-change": f"/admin/routing/route/{made['route'].pk}/change/",
        "route-test": f"/admin/routing/route/{made['route'].pk}/test/",
        "teams": "/admin/billing/team/",
        "budgets": "/admin/billing/budget/",
        "usage-record": f"/admin/billing/usagerecord/{made['usage'].pk}/change/",
        "violations": "/admin/guardrails/violation/",
    }
    errors: list[str] = []
    too_wide: list[str] = []

    with chromium() as browser:
        context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        page = open_page(context, f"{gateway}/admin/", errors)
        too_wide += shot(page, "login")
        page.fill("#id_username", "operator")
        page.fill("#id_password", "operator-pass-123")
        with page.expect_navigation():
            page.click("input[type=submit]")
        for name, path in pages.items():
            page.goto(f"{gateway}{path}")
            assert page.url.endswith(path), page.url
            page.wait_for_load_state("networkidle")
            too_wide += shot(page, name)
        page.goto(f"{gateway}/admin/")
        assert page.locator("#site-name").inner_text().strip() == "LLM Gateway"
        assert page.locator(".app-scheduler").count() == 1  # a superuser sees the beat tables
        assert page.title() == "LLM Gateway admin | LLM Gateway"
        assert page.locator("#view-site").get_attribute("href") == "/playground/"
        icon = page.evaluate("fetch('/favicon.ico').then(r => [r.status, r.headers.get('content-type')])")
        assert icon == [200, "image/svg+xml"]
        # A route editor (staff, every gateway permission): no internals in the way.
        staff_page = open_page(browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}),
                               f"{gateway}/admin/", errors)
        staff_page.fill("#id_username", "editor")
        staff_page.fill("#id_password", "editor-pass-123")
        with staff_page.expect_navigation():
            staff_page.click("input[type=submit]")
        too_wide += shot(staff_page, "home-staff")
        captions = staff_page.locator("#content-main .module caption a.section").all_inner_texts()
        assert [c.strip().lower() for c in captions] == [
            "providers & models", "routes", "keys, teams & budgets", "guardrails", "usage & reports", "health",
            "people & access"]  # the audit trail (gateway_admin.view_auditentry; auth's own models are excluded)
    assert not too_wide, "\n".join(too_wide)
    assert not errors, "\n".join(errors)
