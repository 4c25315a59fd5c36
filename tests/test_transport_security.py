"""Transport security of the Django side: production mode's cookie, HSTS and header
settings (each overridable from the environment), `manage.py check --deploy`, the
headers a production server actually sends, and CSRF on the admin, the playground, the
reports' forms and the management API's session auth.

Production mode = DEBUG off with a non-SQLite database: settings are imported in a
subprocess with a PostgreSQL DATABASE_URL (nothing connects to it), SECRET_KEY set."""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.test import Client

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgres://postgres@127.0.0.1:5432/h_transport"
# The variables this module's subprocesses set or read: never inherited from the test's own environment.
OURS = ("DEBUG", "DATABASE_URL", "SECRET_KEY", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER",
        "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE", "X_FRAME_OPTIONS", "SECURE_REFERRER_POLICY")
NAMES = ["DEBUG", "GATEWAY_PRODUCTION", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SESSION_COOKIE_HTTPONLY",
         "SESSION_COOKIE_SAMESITE", "CSRF_COOKIE_SAMESITE", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
         "SECURE_HSTS_PRELOAD", "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SECURE_CONTENT_TYPE_NOSNIFF",
         "SECURE_REFERRER_POLICY", "SECURE_CROSS_ORIGIN_OPENER_POLICY", "X_FRAME_OPTIONS"]


def environment(production: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OURS and not k.startswith("GATEWAY_CORS_")}
    env["DJANGO_SETTINGS_MODULE"] = "gateway_project.settings"
    env["GATEWAY_KEY_PEPPER"] = secrets.token_urlsafe(32)  # issue 16's key hashing check (billing) is not ours
    if production:
        env.update(DEBUG="0", DATABASE_URL=PG_URL, DATABASE_POOL="0", SECRET_KEY=secrets.token_urlsafe(50))
    env.update(extra)
    return env


def imported_settings(**env) -> dict:
    code = ("import json, django; django.setup(); from django.conf import settings; "
            f"print(json.dumps({{n: getattr(settings, n, None) for n in {NAMES!r}}}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment(**env), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_mode_secures_cookies_and_sends_hsts():
    values = imported_settings()

    assert values["DEBUG"] is False and values["GATEWAY_PRODUCTION"] is True
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_SAMESITE"] == "Lax" and values["CSRF_COOKIE_SAMESITE"] == "Lax"
    assert values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False and values["SECURE_HSTS_PRELOAD"] is False
    assert values["SECURE_SSL_REDIRECT"] is False  # health probes and in-cluster calls speak plain HTTP
    assert values["SECURE_PROXY_SSL_HEADER"] is None  # only when configured
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["SECURE_REFERRER_POLICY"] == "same-origin"
    assert values["SECURE_CROSS_ORIGIN_OPENER_POLICY"] == "same-origin"
    assert values["X_FRAME_OPTIONS"] == "DENY"


def test_the_embedded_default_keeps_plain_http_cookies():
    """`make run` on http://localhost: Secure cookies would never come back (no login)."""
    values = imported_settings(production=False)

    assert values["GATEWAY_PRODUCTION"] is False
    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SESSION_COOKIE_HTTPONLY"] is True and values["X_FRAME_OPTIONS"] == "DENY"


def test_every_setting_is_overridable_from_the_environment():
    values = imported_settings(
        SESSION_COOKIE_SECURE="0", CSRF_COOKIE_SECURE="0", SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1", SECURE_HSTS_PRELOAD="1", SECURE_SSL_REDIRECT="1",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https", SESSION_COOKIE_SAMESITE="Strict",
        X_FRAME_OPTIONS="SAMEORIGIN", SECURE_REFERRER_POLICY="no-referrer",
    )

    assert values["SESSION_COOKIE_SECURE"] is False and values["CSRF_COOKIE_SECURE"] is False
    assert values["SECURE_HSTS_SECONDS"] == 600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True and values["SECURE_HSTS_PRELOAD"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SESSION_COOKIE_SAMESITE"] == "Strict"
    assert values["X_FRAME_OPTIONS"] == "SAMEORIGIN" and values["SECURE_REFERRER_POLICY"] == "no-referrer"


def test_a_malformed_proxy_ssl_header_is_refused_at_startup():
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env=environment(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"))

    assert result.returncode != 0
    assert "SECURE_PROXY_SSL_HEADER must be HTTP_<HEADER>,<value>" in result.stderr


def check_deploy(**env) -> set[str]:
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=ROOT, env=environment(**env),
                            capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]  # warnings only: no error
    return set(re.findall(r"\(([\w.]+\.[EWC]\d+)\)", output))


@pytest.mark.slow
def test_check_deploy_leaves_only_the_documented_choices():
    """The three left are choices an operator makes (docs/security/transport.md):
    HSTS for subdomains and preloading commit the whole domain, and the redirect to
    HTTPS belongs to the TLS-terminating proxy (health probes speak plain HTTP)."""
    assert check_deploy() == {"security.W005", "security.W008", "security.W021"}
    assert check_deploy(SECURE_HSTS_INCLUDE_SUBDOMAINS="1", SECURE_HSTS_PRELOAD="1", SECURE_SSL_REDIRECT="1") == set()


@pytest.fixture
def production_server():
    """uvicorn serving the gateway in production mode (nothing here touches the database)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway_project.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--no-access-log", "--lifespan", "off"],
        cwd=ROOT, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("uvicorn did not start:\n" + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.slow
def test_a_production_server_sends_the_security_headers(production_server):
    """Behind a TLS-terminating proxy (X-Forwarded-Proto from 127.0.0.1, which uvicorn
    trusts by default): HSTS, Secure cookies, CSP and the rest on the admin's pages."""
    https = {"x-forwarded-proto": "https"}

    login = httpx.get(f"{production_server}/admin/login/", headers=https)
    plain = httpx.get(f"{production_server}/admin/login/")
    api = httpx.get(f"{production_server}/v1/models", headers=https)

    assert login.status_code == 200
    assert login.headers["strict-transport-security"] == "max-age=31536000"
    assert plain.status_code == 200 and "strict-transport-security" not in plain.headers  # not over plain HTTP
    cookie = login.headers["set-cookie"]
    assert cookie.startswith("csrftoken=") and "; Secure" in cookie and "SameSite=Lax" in cookie
    assert login.headers["x-frame-options"] == "DENY"
    assert login.headers["x-content-type-options"] == "nosniff"
    assert login.headers["referrer-policy"] == "same-origin"
    assert login.headers["cross-origin-opener-policy"] == "same-origin"
    csp = login.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert api.status_code == 401 and api.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in api.headers


# --- CSRF -------------------------------------------------------------------------
pytest_db = pytest.mark.django_db


@pytest.fixture
def admin_client_csrf(django_user_model):
    """A signed-in superuser whose client enforces CSRF like a browser's request would meet it."""
    user = django_user_model.objects.create_user("root", password="root-pass-123", is_staff=True, is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_token(client: Client, url: str) -> str:
    page = client.get(url)
    assert page.status_code == 200, url
    return client.cookies["csrftoken"].value


@pytest_db
def test_the_admin_login_refuses_a_post_without_the_token():
    client = Client(enforce_csrf_checks=True)

    response = client.post("/admin/login/", {"username": "root", "password": "x"})

    assert response.status_code == 403
    assert b"CSRF" in response.content


@pytest_db
def test_a_cross_site_post_to_an_admin_change_form_is_refused(admin_client_csrf, django_user_model):
    token = csrf_token(admin_client_csrf, "/admin/auth/user/add/")
    form = {"username": "added", "password1": "Str0ng-pass-9876", "password2": "Str0ng-pass-9876",
            "usable_password": "true", "csrfmiddlewaretoken": token}

    no_token = admin_client_csrf.post("/admin/auth/user/add/", {k: v for k, v in form.items()
                                                                 if k != "csrfmiddlewaretoken"})
    foreign = admin_client_csrf.post("/admin/auth/user/add/", form, HTTP_ORIGIN="http://evil.example")
    foreign_port = admin_client_csrf.post("/admin/auth/user/add/", form, HTTP_ORIGIN="http://testserver:8001")
    same = admin_client_csrf.post("/admin/auth/user/add/", form, HTTP_ORIGIN="http://testserver")

    assert no_token.status_code == 403 and foreign.status_code == 403 and foreign_port.status_code == 403
    assert same.status_code == 302  # the same form from the admin's own origin goes through
    assert list(django_user_model.objects.filter(username="added").values_list("username", flat=True)) == ["added"]


@pytest_db
def test_a_trusted_origin_may_post(admin_client_csrf, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://gateway.example.org"]
    token = csrf_token(admin_client_csrf, "/admin/auth/group/add/")

    response = admin_client_csrf.post("/admin/auth/group/add/", {"name": "g", "csrfmiddlewaretoken": token},
                                      HTTP_ORIGIN="https://gateway.example.org", secure=True,
                                      HTTP_REFERER="https://gateway.example.org/admin/")

    assert response.status_code == 302


@pytest_db
def test_the_route_test_page_and_the_playground_refuse_posts_without_the_token(admin_client_csrf):
    from tests.factories import RouteFactory

    route = RouteFactory(name="r1")

    test_page = admin_client_csrf.post(f"/admin/routing/route/{route.pk}/test/", {"prompt": "hi", "_send": "1"})
    playground = admin_client_csrf.post("/playground/", {"anything": "1"})
    logout = admin_client_csrf.post("/admin/logout/")  # the reports' "Log out" form posts here

    assert test_page.status_code == 403 and playground.status_code == 403 and logout.status_code == 403
    assert admin_client_csrf.get("/reports/me/").status_code == 200  # still signed in


@pytest_db
def test_the_management_api_needs_the_token_with_a_session_not_with_an_api_token(admin_client_csrf, django_user_model):
    from rest_framework.authtoken.models import Token

    with_session = admin_client_csrf.post("/api/teams/", {"name": "t1"}, content_type="application/json")
    token = Token.objects.create(user=django_user_model.objects.get(username="root"))
    with_token = Client(enforce_csrf_checks=True).post("/api/teams/", {"name": "t2"}, content_type="application/json",
                                                       HTTP_AUTHORIZATION=f"Token {token.key}")

    assert with_session.status_code == 403 and "CSRF" in with_session.json()["detail"]
    assert with_token.status_code == 201  # not a browser's ambient credential: no CSRF token needed
