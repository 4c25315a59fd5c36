"""Single sign-on's configuration (gateway_admin/oidc.py, the settings block, manage.py
oidc_check): the role map's format, claims, usernames, secret references, and that
without the environment variables nothing changes."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command

from gateway_admin import oidc
from gateway_admin.roles import AUDITORS, FINANCE, KEY_MANAGERS, ROUTE_EDITORS
from tests.fakes.oidc_provider import FakeOIDCProvider

ROOT = Path(__file__).resolve().parent.parent


def test_role_map_format():
    assert oidc.parse_role_map(f" idp-admins = {ROUTE_EDITORS} ; {KEY_MANAGERS} , finance-team={FINANCE},") == {
        "idp-admins": (ROUTE_EDITORS, KEY_MANAGERS), "finance-team": (FINANCE,)}
    assert oidc.parse_role_map("/gateway/admins=Auditors,a=Finance,a=Auditors") == {
        "/gateway/admins": (AUDITORS,), "a": (FINANCE, AUDITORS)}
    assert oidc.parse_role_map(json.dumps({"CN=Ops,OU=Groups": [FINANCE, AUDITORS], "x=y": FINANCE})) == {
        "CN=Ops,OU=Groups": (FINANCE, AUDITORS), "x=y": (FINANCE,)}
    assert oidc.parse_role_map("") == {}


@pytest.mark.parametrize("text, says", [
    ("admins=Route editor", "'Route editor'"),
    ("admins", "is not 'idp-group=Role'"),
    ("=Finance", "is not 'idp-group=Role'"),
    ("admins=", "no role"),
    ('{"admins": 3}', "must be a name or a list"),
    ("{not json", "not valid JSON"),
])
def test_role_map_errors_name_the_problem_and_the_roles(text, says):
    with pytest.raises(ImproperlyConfigured) as caught:
        oidc.parse_role_map(text)
    assert says in str(caught.value)
    if "Route editor'" in says or "no role" in says:
        assert "Route editors, Key managers, Finance, Auditors, Playground users" in str(caught.value)


def test_group_claims():
    assert oidc.claim_values({"groups": ["a", 1, "b"]}, "groups") == ["a", "b"]
    assert oidc.claim_values({"groups": "a"}, "groups") == ["a"]
    assert oidc.claim_values({"groups": {"a": 1}}, "groups") == []
    assert oidc.claim_values({"realm_access": {"roles": ["gw"]}}, "realm_access.roles") == ["gw"]
    assert oidc.claim_values({"https://example.com/groups": ["g"]}, "https://example.com/groups") == ["g"]
    assert oidc.claim_values({}, "a.b.c") == []


def test_usernames_from_sub():
    assert oidc.username_for("00u1ab2CD3ef") == "oidc+00u1ab2CD3ef"
    hashed = oidc.username_for("x" * 200)
    assert hashed.startswith("oidc+sha256-") and len(hashed) <= 150
    assert oidc.username_for("a b") != oidc.username_for("a_b")


def test_secret_references(monkeypatch, tmp_path):
    monkeypatch.setenv("OIDC_TEST_SECRET", "from-the-environment")
    assert oidc.resolve_secret("env:OIDC_TEST_SECRET") == "from-the-environment"
    (tmp_path / "secret").write_text("from-a-file\n")
    assert oidc.resolve_secret(f"file:{tmp_path / 'secret'}") == "from-a-file"
    assert oidc.resolve_secret("plain") == "plain"
    with pytest.raises(ImproperlyConfigured, match="OIDC_TEST_UNSET is not set"):
        oidc.resolve_secret("env:OIDC_TEST_UNSET")
    with pytest.raises(ImproperlyConfigured, match="looks like env:VARNAME"):
        oidc.resolve_secret("env:not a name")
    with pytest.raises(ImproperlyConfigured, match="cannot read"):
        oidc.resolve_secret(f"file:{tmp_path / 'missing'}")


def test_the_client_secret_is_scrubbed_from_logs(settings, caplog):
    from providers.secrets import ScrubSecrets

    settings.OIDC_RP_CLIENT_ID = "gw"
    settings.OIDC_OP_ISSUER = "https://idp.example.com"
    settings.OIDC_RP_CLIENT_SECRET = "s3cret-client-value-42"
    oidc.config()
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "token call with %s failed", ("s3cret-client-value-42",), None)
    ScrubSecrets().filter(record)
    assert "s3cret-client-value-42" not in record.getMessage()


@pytest.mark.parametrize("name, value, says", [
    ("GATEWAY_OIDC_ALGORITHMS", ["HS256"], "HS256 not allowed"),
    ("GATEWAY_OIDC_ALGORITHMS", ["none"], "none not allowed"),
    ("GATEWAY_OIDC_TOKEN_AUTH", "private_key_jwt", "GATEWAY_OIDC_TOKEN_AUTH"),
    ("OIDC_RP_SCOPES", "email profile", "must include openid"),
])
def test_unsafe_or_unknown_settings_are_refused(settings, name, value, says):
    settings.OIDC_RP_CLIENT_ID = "gw"
    settings.OIDC_OP_ISSUER = "https://idp.example.com"
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=says):
        oidc.config()


def test_plain_http_is_refused_except_on_loopback(settings):
    settings.OIDC_RP_CLIENT_ID = "gw"
    settings.OIDC_OP_ISSUER = "http://idp.example.com/realms/x"
    with pytest.raises(oidc.OIDCError, match="must be https"):
        oidc.metadata()


def _settings_in_a_process(**env: str) -> dict:
    """What gateway_project.settings makes of this environment, in a fresh process."""
    script = ("import json, django.conf as c; from gateway_project import settings as s; "
              "print(json.dumps({'backends': getattr(s, 'AUTHENTICATION_BACKENDS', None), "
              "'form_action': getattr(s, 'GATEWAY_CSP_FORM_ACTION', None)}))")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OIDC_", "GATEWAY_OIDC_", "GATEWAY_CSP_"))}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True,
                          timeout=60)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_settings_block_is_off_without_the_environment_and_on_with_it():
    off = _settings_in_a_process()
    assert off["backends"] is None  # Django's default: ModelBackend alone
    on = _settings_in_a_process(OIDC_RP_CLIENT_ID="gw", OIDC_OP_ISSUER="https://login.example.com/realms/x")
    assert on["backends"] == ["django.contrib.auth.backends.ModelBackend", oidc.BACKEND_PATH]
    if on["form_action"] is not None:  # the logout redirect to the provider is allowed by the CSP
        assert "https://login.example.com" in on["form_action"]
    half = _settings_in_a_process(OIDC_RP_CLIENT_ID="gw")
    assert "set OIDC_OP_ISSUER or OIDC_OP_DISCOVERY_URL" in half["error"]


# --- manage.py oidc_check ----------------------------------------------------------------
@pytest.fixture
def provider(settings):
    with FakeOIDCProvider() as fake:
        settings.OIDC_RP_CLIENT_ID = fake.client_id
        settings.OIDC_RP_CLIENT_SECRET = fake.client_secret
        settings.OIDC_OP_DISCOVERY_URL = fake.issuer + "/.well-known/openid-configuration"
        settings.GATEWAY_OIDC_ROLE_MAP = f"gw-routes={ROUTE_EDITORS}"
        oidc.reset_caches()
        yield fake
        oidc.reset_caches()


def test_oidc_check_prints_what_to_register(provider):
    out = StringIO()
    call_command("oidc_check", "--base-url", "https://gw.example.com", stdout=out)
    text = out.getvalue()
    assert f"issuer:                 {provider.issuer}" in text
    assert "redirect URI:           https://gw.example.com/oidc/callback/" in text
    assert f"gw-routes -> {ROUTE_EDITORS}" in text and "single sign-on: OK" in text
    assert provider.client_secret not in text


def test_oidc_check_fails_naming_the_problem(provider, settings):
    settings.GATEWAY_OIDC_ROLE_MAP = ""
    with pytest.raises(CommandError, match="nobody could sign in"):
        call_command("oidc_check", stdout=StringIO())
    settings.GATEWAY_OIDC_ALGORITHMS = ["PS256"]
    settings.GATEWAY_OIDC_ROLE_MAP = f"a={FINANCE}"
    with pytest.raises(CommandError, match="has no key for PS256"):
        call_command("oidc_check", stdout=StringIO())
    settings.OIDC_OP_DISCOVERY_URL = provider.base_url + "/nowhere"
    with pytest.raises(CommandError, match="unreachable: the discovery document .* answered HTTP 404"):
        call_command("oidc_check", stdout=StringIO())
