"""Single sign-on in real headless Chromium (Debian's /usr/bin/chromium via Playwright)
against the live gateway and the local provider (tests/fakes/oidc_provider.py): the
login page's button, the provider's redirect back, the admin; then the admin's Log out
button, whose form answer redirects to the provider's end_session_endpoint - allowed by
the Content-Security-Policy only because the provider's origin is in form-action (the
settings block adds it), and blocked by Chromium without it.
Screenshots go to var/screenshots/sso-*.png."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from gateway_admin import oidc
from gateway_admin.roles import FINANCE, ROUTE_EDITORS
from tests.fakes.oidc_provider import FakeOIDCProvider
from tests.test_reports_browser import CHROMIUM, chromium

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"),
]
SHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


@pytest.fixture
def idp(settings, gateway):
    with FakeOIDCProvider(redirect_uris=[f"{gateway}/oidc/callback/"]) as provider:
        settings.OIDC_RP_CLIENT_ID = provider.client_id
        settings.OIDC_RP_CLIENT_SECRET = provider.client_secret
        settings.OIDC_OP_ISSUER = provider.issuer
        settings.GATEWAY_OIDC_ROLE_MAP = f"gw-routes={ROUTE_EDITORS},gw-finance={FINANCE}"
        settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", oidc.BACKEND_PATH]
        oidc.reset_caches()
        yield provider
        oidc.reset_caches()
        assert not provider.errors, provider.errors[0]


def _form_action(settings, *sources: str) -> None:
    policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
    if policy is None:
        pytest.skip("no Content-Security-Policy in this tree")
    policy = copy.deepcopy(policy)
    policy["DIRECTIVES"]["form-action"] = ["'self'", *sources]
    settings.CONTENT_SECURITY_POLICY = policy


def _sign_in(page, gateway: str) -> None:
    page.goto(f"{gateway}/admin/")
    assert page.url.startswith(f"{gateway}/admin/login/")
    page.wait_for_selector("a.sso-button")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "sso-login.png"))
    page.click("a.sso-button")
    page.wait_for_url(f"{gateway}/admin/")


def test_sign_in_and_out_in_chromium(settings, gateway, idp):
    origin = idp.base_url
    _form_action(settings, origin)
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        page.set_default_timeout(20_000)
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        _sign_in(page, gateway)
        assert "ADA" in page.inner_text("#user-tools").upper()
        page.screenshot(path=str(SHOTS / "sso-admin.png"))
        page.click("#logout-form button")
        page.wait_for_url(f"{gateway}/admin/login/")
        assert page.is_visible("a.sso-button")
        assert len(idp.calls("/logout")) == 1 and violations == []
        page.goto(f"{gateway}/admin/")
        assert page.url.startswith(f"{gateway}/admin/login/")  # the session is gone


def test_without_the_provider_in_form_action_chromium_blocks_the_logout_redirect(settings, gateway, idp):
    _form_action(settings)
    with chromium() as browser:
        page = browser.new_context().new_page()
        page.set_default_timeout(20_000)
        violations: list[str] = []
        page.on("console", lambda m: violations.append(m.text) if "form-action" in m.text else None)
        _sign_in(page, gateway)
        page.click("#logout-form button")
        page.wait_for_timeout(1500)
        assert idp.calls("/logout") == [] and violations, violations


def test_a_refused_sign_in_shows_why_on_the_login_page(settings, gateway, idp):
    idp.user["groups"] = ["contractors"]
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{gateway}/admin/login/?next=/admin/")
        page.click("a.sso-button")
        page.wait_for_selector(".messagelist .error")
        assert page.url.startswith(f"{gateway}/admin/login/")
        assert "none of your groups there grants a role" in page.inner_text(".messagelist")
        page.screenshot(path=str(SHOTS / "sso-refused.png"))
        page.goto(f"{gateway}/admin/")
        assert page.url.startswith(f"{gateway}/admin/login/")
