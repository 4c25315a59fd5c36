"""Headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) at 1366x768
against the live gateway: an editor picks a kind on the guardrail add page and sees only
that kind's settings, saves a keywords guardrail, and tries it in the sandbox.

Screenshots of each step go to var/screenshots/guardrail-*.png (git-ignored) for a
human look at the layout; the test itself checks that nothing is wider than the window."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from guardrails.models import Guardrail, Violation
from tests.factories import RouteFactory, TeamFactory
from tests.test_reports_browser import CHROMIUM, chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
WIDTH, HEIGHT = 1366, 768


def open_logged_in(browser, base_url: str, path: str, username: str, password: str):
    """A fresh 1366x768 context, logged in through the admin login form, on `path`."""
    page = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}).new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{base_url}{path}")
    assert "/admin/login/" in page.url
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("input[type=submit]")
    assert page.url.endswith(path), page.url
    return page


# Boxes whose content is wider than they are and that scroll sideways (the admin's
# changelist table sits in one): a column only reachable by scrolling is cut off too.
SCROLLED = """() => [...document.querySelectorAll('*')]
  .filter(e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX) && e.scrollWidth > e.clientWidth + 1)
  .map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className}: ${e.scrollWidth}px in ${e.clientWidth}px`)"""


def shot(page, name: str) -> None:
    """A full-page screenshot, after checking nothing sticks out to the right."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky nav sidebar is drawn mid-page
    page.screenshot(path=str(SCREENSHOTS / f"guardrail-{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"{name}: the page is {width}px wide in a {WIDTH}px window"
    assert page.evaluate(SCROLLED) == [], f"{name}: content cut off, reachable only by scrolling sideways"


def visible_kind_fieldsets(page) -> list[str]:
    return page.eval_on_selector_all(
        "fieldset.guardrail-kind",
        "els => els.filter(e => e.offsetParent !== null).map(e => e.className.match(/guardrail-kind-(\\S+)/)[1])",
    )


def test_an_editor_picks_a_kind_saves_a_keywords_guardrail_and_tries_it_in_the_sandbox(gateway, django_user_model):
    django_user_model.objects.create_superuser("editor", password="editor-pass-123")
    pii = Guardrail.objects.create(name="pii-default", kind="pii", action="redact", restore=True)
    pii.routes.add(RouteFactory(name="chat-eu"))
    pii.teams.add(*(TeamFactory(name=f"team-{i}") for i in range(4)))
    text = "Status of Project Falcon for an.nguyen@example.com? Deploy on C4 S3 EKS."

    with chromium() as browser:
        page = open_logged_in(browser, gateway, "/admin/guardrails/guardrail/add/", "editor", "editor-pass-123")
        assert visible_kind_fieldsets(page) == []  # no kind chosen yet: no kind's settings
        shot(page, "add-empty")

        page.select_option("#id_kind", "pii")
        assert visible_kind_fieldsets(page) == ["pii"]
        assert page.get_by_role("heading", name="Personal data (PII) settings").is_visible()
        assert page.locator("#id_pii__entities").is_visible()
        assert not page.locator("#id_keywords__words").is_visible()
        shot(page, "add-pii")

        page.select_option("#id_kind", "keywords")
        assert visible_kind_fieldsets(page) == ["keywords"]
        assert page.locator("#id_keywords__words").is_visible()
        assert not page.locator("#id_pii__entities").is_visible()
        page.fill("#id_name", "falcon-words")
        page.fill("#id_keywords__words", "Project Falcon\nacme-internal")
        page.select_option("#id_action", "redact")
        shot(page, "add-keywords")
        with page.expect_navigation():
            page.click("input[name=_save]")
        assert page.url.endswith("/admin/guardrails/guardrail/")
        assert page.locator("ul.messagelist").get_by_text("falcon-words").is_visible()
        row = page.locator("#result_list tbody tr", has_text="falcon-words")
        assert row.locator("td.field-scope_summary").inner_text() == "global"
        scoped = page.locator("#result_list tbody tr", has_text="pii-default").locator("td.field-scope_summary")
        assert scoped.inner_text() == "routes: chat-eu; teams: team-0, team-1, team-2 +1"
        shot(page, "changelist")

        page.goto(f"{gateway}/admin/guardrails/guardrail/add/")
        page.fill("#id_name", "project-codes")
        page.select_option("#id_kind", "regex")
        page.fill("#id_regex__patterns", "PRJ-(\\d+")
        with page.expect_navigation():
            page.click("input[name=_save]")
        assert visible_kind_fieldsets(page) == ["regex"]  # the refused kind's settings, with the error
        error = page.locator(".form-row.field-regex__patterns ul.errorlist")
        assert error.is_visible() and "does not compile" in error.inner_text()
        assert page.input_value("#id_regex__patterns") == "PRJ-(\\d+"
        shot(page, "add-refused")
        page.goto(f"{gateway}/admin/guardrails/guardrail/")
        row = page.locator("#result_list tbody tr", has_text="falcon-words")

        row.get_by_role("link", name="falcon-words").click()
        page.wait_for_selector("#id_keywords__words")
        assert visible_kind_fieldsets(page) == ["keywords"]  # the stored kind's settings on load
        assert page.input_value("#id_keywords__words") == "Project Falcon\nacme-internal"
        with page.expect_navigation():
            page.get_by_role("link", name="Try in the sandbox").click()
        assert page.get_by_label("falcon-words").is_checked()  # preselected from the guardrail's page
        shot(page, "sandbox-empty")

        page.fill("#id_text", text)
        page.get_by_label("pii-default").check()
        with page.expect_navigation():
            page.click("#sandbox-form input[type=submit]")
        assert page.locator("#sandbox-result").inner_text() == "Findings: keyword ×1, email ×1"
        rows = page.locator("table.sandbox-findings tbody tr")
        assert rows.count() == 2
        cells = {rows.nth(i).locator("td").first.inner_text(): rows.nth(i).locator("td") for i in range(2)}
        assert cells["falcon-words"].nth(2).inner_text() == "redacted"
        assert cells["falcon-words"].nth(3).inner_text() == f"keyword: Project Falcon at {text.index('Project')}"
        assert cells["pii-default"].nth(3).inner_text() == f"email: an.nguyen@example.com at {text.index('an.nguyen')}"
        assert page.locator("#sandbox-sent").inner_text() == (
            "Status of [KEYWORD_1] for [EMAIL_1]? Deploy on C4 S3 EKS.")
        assert page.locator("#sandbox-answer").inner_text() == (
            "Status of [KEYWORD_1] for an.nguyen@example.com? Deploy on C4 S3 EKS.")  # only pii restores
        assert page.input_value("#id_text") == text  # kept for another try
        shot(page, "sandbox-result")

    saved = Guardrail.objects.get(name="falcon-words")
    assert (saved.kind, saved.action, saved.params) == ("keywords", "redact",
                                                        {"words": ["Project Falcon", "acme-internal"]})
    assert not Violation.objects.exists()
