"""The 'Discover models' page in headless Chromium against the live gateway (ASGI: the
model list is read on the server's own event loop): it fits a laptop screen, and
ticking a model and pressing the button adds it. Screenshot: var/screenshots/admin-discover.png."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from providers.models import Model, Provider
from providers.prices import schedule_price
from tests.test_reports_browser import CHROMIUM, HEIGHT, SCREENSHOTS, WIDTH, chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]


def test_discover_page_lists_and_adds_models_in_a_browser(gateway, fake_anthropic, django_user_model, monkeypatch):
    monkeypatch.setattr(fake_anthropic, "known_models", {
        "claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5", "claude-haiku-4-5-20251001", "claude-internal-eval"})
    flags = {"image_input": {"supported": True}, "structured_outputs": {"supported": True},
             "thinking": {"supported": True}}
    monkeypatch.setattr(fake_anthropic, "model_details", {
        m: {"capabilities": flags, "max_input_tokens": 1_000_000 if "4-6" in m else 200_000, "max_tokens": 64_000}
        for m in fake_anthropic.known_models})
    django_user_model.objects.create_superuser("operator", password="operator-pass-123")
    provider = Provider.objects.create(name="anthropic-main", kind="anthropic", base_url=fake_anthropic.base_url,
                                       api_key=fake_anthropic.api_key)
    sonnet = Model.objects.create(provider=provider, name="sonnet", upstream_id="claude-sonnet-4-6",
                                  input_price_per_mtok=Decimal("2.5"), output_price_per_mtok=Decimal("12"))
    sonnet.input_price_per_mtok, sonnet.output_price_per_mtok = Decimal("3"), Decimal("15")
    sonnet.save()
    schedule_price(sonnet, timezone.now() + timedelta(days=14), {"input_price_per_mtok": Decimal("2"),
                                                                  "output_price_per_mtok": Decimal("10")})
    path = f"/admin/providers/provider/{provider.pk}/discover/"

    with chromium() as browser:
        page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{gateway}{path}")
        page.fill("#id_username", "operator")
        page.fill("#id_password", "operator-pass-123")
        with page.expect_navigation():
            page.click("input[type=submit]")
        assert page.url.endswith(path), page.url
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "admin-discover.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        body = page.locator("#content-main").inner_text()
        assert "claude-internal-eval" in body and "not in the catalogue" in body and "yes: sonnet" in body
        page.check("input[name=add][value=claude-opus-4-6]")
        with page.expect_navigation():
            page.click("input[type=submit][value='Add the ticked models']")
        assert "Added 1 model(s) to anthropic-main: claude-opus-4-6" in page.locator(".messagelist").inner_text()
        # The model page: its prices, the catalogue's line, the scheduled price and the history.
        page.goto(f"{gateway}/admin/providers/model/{sonnet.pk}/change/")
        page.screenshot(path=str(SCREENSHOTS / "admin-model-prices.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        text = page.locator("#content-main").inner_text().lower()  # headings are upper-cased by CSS
        assert "in effect" in text and "scheduled prices" in text and "checked 2026-12-03" in text
        # The add form says what the catalogue has as the editor types.
        page.goto(f"{gateway}/admin/providers/model/add/")
        page.select_option("#id_provider", str(provider.pk))
        page.fill("#id_name", "haiku")
        page.fill("#id_upstream_id", "claude-haiku-4-5-20251001")
        page.wait_for_function("() => document.getElementById('catalogue-hint').textContent.includes('checked')")
        assert "$1.00 in / $5.00 out per 1M" in page.locator("#catalogue-hint").inner_text()
        page.screenshot(path=str(SCREENSHOTS / "admin-model-add.png"), full_page=True)

    added = Model.objects.get(provider=provider, name="claude-opus-4-6")
    assert added.input_price_per_mtok == Decimal("5") and added.context_window == 1_000_000
    assert "thinking" in added.capabilities
