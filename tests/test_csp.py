"""The Content-Security-Policy of the Django pages (django-csp via streaming/csp.py,
settings.CONTENT_SECURITY_POLICY), without a browser: the header on the admin, reports,
playground and API docs pages; the nonce where a page has an inline script; and no
template of the project with an inline script, an inline event handler or a javascript:
URL (they would be blocked). tests/test_csp_browser.py checks the pages in Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = [ROOT / "templates", *[p for p in ROOT.glob("*/templates") if ".venv" not in p.parts]]


def directives(header: str) -> dict[str, list[str]]:
    parts = (d.strip().split() for d in header.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.fixture
def root_client(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("root", password="x-pass-123", is_staff=True,
                                                             is_superuser=True))
    return client


def templates() -> list[Path]:
    found = [p for d in TEMPLATE_DIRS for p in d.rglob("*.html")]
    assert len(found) > 20, TEMPLATE_DIRS
    return found


def test_no_template_has_an_inline_script_or_handler():
    inline, handlers = [], []
    for path in templates():
        text = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text, flags=re.I):
            if "src=" not in tag and "nonce=" not in tag:
                inline.append(f"{path.relative_to(ROOT)}: {tag}")
        for match in re.findall(r"<[a-z][^>]*\s(on[a-z]+\s*=|href\s*=\s*[\"']?javascript:)", text, flags=re.I):
            handlers.append(f"{path.relative_to(ROOT)}: {match}")
    assert inline == [], "inline scripts (move them to a static file): " + "\n".join(inline)
    assert handlers == [], "inline handlers (use addEventListener in a static file): " + "\n".join(handlers)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/", "/admin/routing/route/add/", "/admin/providers/model/add/",
                                  "/admin/guardrails/guardrail/add/", "/reports/", "/reports/me/", "/playground/",
                                  "/admin/login/"])
def test_the_pages_carry_the_policy(root_client, path):
    response = root_client.get(path)

    assert response.status_code in (200, 302), path
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline script on these pages: not even a nonce
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", "ws://testserver", "wss://testserver"]  # the playground's socket
    assert "'unsafe-eval'" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response["Referrer-Policy"] == "same-origin"


@pytest.mark.django_db
def test_the_swagger_page_s_inline_script_carries_the_response_s_nonce(root_client):
    response = root_client.get("/api/docs/")

    assert response.status_code == 200
    nonces = [s for s in directives(response["Content-Security-Policy"])["script-src"] if s.startswith("'nonce-")]
    assert len(nonces) == 1
    nonce = nonces[0][len("'nonce-"):-1]
    assert f'<script nonce="{nonce}">' in response.content.decode()
    assert nonce != directives(root_client.get("/api/docs/")["Content-Security-Policy"])["script-src"][1]  # per response


@pytest.mark.django_db
def test_the_redoc_page_loads_nothing_from_third_parties(root_client):
    response = root_client.get("/api/redoc/")

    assert response.status_code == 200
    assert "fonts.googleapis.com" not in response.content.decode()


@pytest.mark.django_db
def test_the_websocket_host_follows_the_host_asked_for(root_client, settings):
    settings.ALLOWED_HOSTS = ["gw.example.org"]

    response = root_client.get("/playground/", HTTP_HOST="gw.example.org")
    refused = root_client.get("/playground/", HTTP_HOST="evil.example")

    assert directives(response["Content-Security-Policy"])["connect-src"][1:] == ["ws://gw.example.org",
                                                                                 "wss://gw.example.org"]
    assert refused.status_code == 400 and "evil.example" not in refused.get("Content-Security-Policy", "")
