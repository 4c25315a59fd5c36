"""The playground in real headless Chromium (Debian's /usr/bin/chromium, Playwright)
against the live gateway and a slow streaming fake provider: the answer grows token by
token, Stop stops it (the provider sees the disconnect), compare mode streams two
routes side by side, and "Test this route" streams live. Screenshots (1366x768) go to
var/screenshots/playground-*.png."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for
from tests.test_reports_browser import CHROMIUM, chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]
SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


def sign_in(browser, base: str, username: str, password: str):
    page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base}/playground/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.url.endswith("/playground/")
    page.wait_for_selector("#conn.ok")
    return page


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"playground-{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"{name}: the page is {width}px wide"


def lengths_while_streaming(page, selector: str, seconds: float) -> list[int]:
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = page.locator(selector).last.inner_text()
        if not seen or len(text) != seen[-1]:
            seen.append(len(text))
        if page.locator(selector + " ~ .figures").count() or page.locator(".msg.assistant.streaming").count() == 0:
            break
        time.sleep(0.05)
    return seen


def test_a_prompt_streams_stops_and_compares(gateway, build, fake_openai, fake_openai_b, django_user_model):
    build.openai_route(fake_openai)
    build.openai_route(fake_openai_b, name="chat-b", provider_name="p-b")
    django_user_model.objects.create_user("tester", password="tester-pass-123", is_staff=True, is_superuser=True)
    fake_openai.chunk_delay = fake_openai_b.chunk_delay = 0.08
    fake_openai.reply(" ".join(f"token{i}" for i in range(25)))
    fake_openai.reply(" ".join(f"slow{i}" for i in range(200)))
    fake_openai.reply("left pane answer")
    fake_openai_b.reply("right pane answer")
    try:
        with chromium() as browser:
            page = sign_in(browser, gateway, "tester", "tester-pass-123")
            page.wait_for_function("() => document.querySelectorAll('#route-a option').length === 2", timeout=10000)  # the routes frame
            assert page.locator("#route-a option").count() == 2
            page.select_option("#route-a", "chat-default")
            page.fill("#system", "You are terse.")
            page.fill("#prompt", "Count for me")
            page.click("#send")
            seen = lengths_while_streaming(page, ".msg.assistant .text", 10)
            page.wait_for_selector(".msg.assistant .figures")
            assert len(set(seen)) >= 4, seen  # the answer grew in several steps
            figures = page.locator(".msg.assistant .figures").last.inner_text()
            assert "TTFT" in figures and "cost" in figures and "tokens in/out" in figures
            shot(page, "answer")

            page.fill("#prompt", "Now write a lot")
            page.click("#send")
            page.wait_for_function("() => document.querySelectorAll('.msg.assistant .text')[1].textContent.length > 10")
            page.click("#stop")
            page.wait_for_selector("text=STOPPED")
            stopped_at = len(page.locator(".msg.assistant .text").nth(1).inner_text())
            time.sleep(0.5)
            assert len(page.locator(".msg.assistant .text").nth(1).inner_text()) == stopped_at
            assert wait_for(lambda: fake_openai.aborted_streams >= 1, timeout=10)

            page.click("#clear")
            page.check("#compare")
            page.select_option("#route-b", "chat-b")
            page.fill("#prompt", "Hello both")
            page.click("#send")
            page.wait_for_function("() => document.querySelectorAll('.figures').length >= 2")
            assert "left pane answer" in page.locator("#pane-a").inner_text()
            assert "right pane answer" in page.locator("#pane-b").inner_text()
            shot(page, "compare")
    finally:
        fake_openai.chunk_delay = fake_openai_b.chunk_delay = 0
    # (the ORM is refused while Playwright's loop runs in this thread)
    assert wait_for(lambda: UsageRecord.objects.filter(status="client_closed").exists(), timeout=10)


def test_test_this_route_streams_live_from_the_admin(gateway, build, fake_openai, django_user_model):
    route, _ = build.openai_route(fake_openai)
    django_user_model.objects.create_user("editor", password="editor-pass-123", is_staff=True, is_superuser=True)
    fake_openai.chunk_delay = 0.05
    fake_openai.reply(" ".join(f"live{i}" for i in range(20)))
    fake_openai.reply("draft answer")
    try:
        with chromium() as browser:
            page = sign_in(browser, gateway, "editor", "editor-pass-123")
            page.goto(f"{gateway}/admin/routing/route/{route.pk}/test/")
            page.fill("#id_prompt", "Say things")
            page.click("#stream-live")
            page.wait_for_function("() => document.getElementById('live-figures').textContent.includes('TTFT')")
            assert page.locator("#live-text").inner_text().startswith("live0 live1")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "playground-admin-test-live.png"), full_page=True)

            page.goto(f"{gateway}/admin/routing/route/{route.pk}/change/")
            page.fill("#draft-prompt", "Try the draft")
            page.click("#draft-go")
            page.wait_for_function("() => document.getElementById('draft-figures').textContent.includes('TTFT')")
            assert page.locator("#draft-text").inner_text() == "draft answer"
            page.locator("#draft-test").screenshot(path=str(SHOTS / "playground-admin-draft.png"))
    finally:
        fake_openai.chunk_delay = 0
