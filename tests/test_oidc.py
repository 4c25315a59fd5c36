"""Single sign-on with OpenID Connect (gateway_admin/oidc.py; docs/security/sso.md),
against a real provider on 127.0.0.1 (tests/fakes/oidc_provider.py): the full
authorization-code flow with PKCE through the gateway's own views signs a user in with
the mapped roles; every hostile answer signs nobody in, creates no account, and leaks
no code, token or secret into the log or the page."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from gateway_admin import oidc
from gateway_admin.roles import AUDITORS, FINANCE, KEY_MANAGERS, ROUTE_EDITORS
from tests.fakes.oidc_provider import FakeOIDCProvider, s256

pytestmark = pytest.mark.django_db

ROLE_MAP = f"gw-routes={ROUTE_EDITORS},gw-keys={KEY_MANAGERS};{AUDITORS},gw-finance={FINANCE}"
BACKENDS = ["django.contrib.auth.backends.ModelBackend", oidc.BACKEND_PATH]
User = get_user_model()
_AT_PROVIDER = httpx.Client(follow_redirects=False, timeout=10)  # the browser's visit to the provider


@pytest.fixture(scope="module")
def _idp_server():
    with FakeOIDCProvider() as provider:
        yield provider


@pytest.fixture
def idp(_idp_server):
    _idp_server.reset()
    yield _idp_server
    assert not _idp_server.errors, _idp_server.errors[0]


@pytest.fixture
def sso(settings, idp):
    """Single sign-on configured against the fake provider (what the settings block
    does from the environment)."""
    settings.OIDC_RP_CLIENT_ID = idp.client_id
    settings.OIDC_RP_CLIENT_SECRET = idp.client_secret
    settings.OIDC_OP_ISSUER = idp.issuer
    settings.GATEWAY_OIDC_ROLE_MAP = ROLE_MAP
    settings.GATEWAY_OIDC_SUPERUSER_GROUPS = ["gw-root"]
    settings.AUTHENTICATION_BACKENDS = BACKENDS
    oidc.reset_caches()
    yield settings
    oidc.reset_caches()


def start(client, next_url="/admin/"):
    """The browser clicks "Sign in with single sign-on": the gateway's redirect to the provider."""
    response = client.get("/oidc/authenticate/", {"next": next_url})
    assert response.status_code == 302, response.content[:300]
    return response["Location"]


def at_provider(authorize_url: str, host: str = "testserver") -> str:
    """The provider signs the user in and redirects back: the callback path and query."""
    answer = _AT_PROVIDER.get(authorize_url)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    assert back.netloc == host, back
    return f"{back.path}?{back.query}"


def sign_in(client, next_url="/admin/"):
    return client.get(at_provider(start(client, next_url)))


def signed_in_user(client):
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def role_names(user) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


def assert_refused(client, response, message: str, idp=None, caplog=None) -> str:
    """Not signed in, back on the login page with `message`, nothing secret shown or logged."""
    assert response.status_code == 302, response.content[:300]
    assert urlsplit(response["Location"]).path == "/admin/login/"
    assert signed_in_user(client) is None
    page = client.get(response["Location"]).content.decode()
    assert message in page, page[:2000]
    if idp is not None:
        leaks = [idp.client_secret, *idp.issued, *(r.form.get("code_verifier", "") for r in idp.calls("/token"))]
        logged = caplog.text if caplog is not None else ""
        for secret in filter(None, leaks):
            assert secret not in page and secret not in logged
    return page


# --- the flow -----------------------------------------------------------------------------
def test_full_flow_signs_in_with_the_mapped_roles_and_reaches_the_admin(sso, idp, client):
    idp.user["groups"] = ["gw-routes", "gw-keys", "unrelated-idp-group"]
    authorize_url = start(client, "/admin/routing/route/")
    query = parse_qs(urlsplit(authorize_url).query)
    assert authorize_url.startswith(idp.issuer + "/protocol/openid-connect/auth?")
    assert query["response_type"] == ["code"] and query["client_id"] == [idp.client_id]
    assert query["redirect_uri"] == ["http://testserver/oidc/callback/"]
    assert set(query["scope"][0].split()) >= {"openid", "email", "profile"}
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32

    response = client.get(at_provider(authorize_url))
    assert response.status_code == 302 and response["Location"] == "/admin/routing/route/"
    user = signed_in_user(client)
    assert user is not None and user.username == "oidc+f3c1b2a0-user-1"
    assert role_names(user) == {ROUTE_EDITORS, KEY_MANAGERS, AUDITORS}
    assert user.is_staff and not user.is_superuser and not user.has_usable_password()
    assert (user.email, user.first_name, user.last_name) == ("ada@example.com", "Ada", "Lovelace")

    # The token request carried the PKCE verifier of this sign-in's challenge, and client auth.
    (token_call,) = idp.calls("/token")
    assert s256(token_call.form["code_verifier"]) == query["code_challenge"][0]
    assert token_call.headers["authorization"].startswith("Basic ")
    assert "client_secret" not in token_call.form

    admin = client.get("/admin/")
    assert admin.status_code == 200 and "Ada" in admin.content.decode()
    assert client.session.get_expiry_age() <= 8 * 3600


def test_next_pointing_elsewhere_is_ignored(sso, idp, client):
    response = sign_in(client, next_url="https://evil.example.com/phish")
    assert response["Location"] == "/admin/" and signed_in_user(client) is not None


def test_a_superuser_group_makes_a_superuser(sso, idp, client):
    idp.user["groups"] = ["gw-root"]
    sign_in(client)
    user = signed_in_user(client)
    assert user.is_superuser and user.is_staff and role_names(user) == set()
    assert client.get("/admin/providers/provider/").status_code == 200


def test_es256_tokens_are_accepted(sso, idp, client):
    idp.sign_with = "ec"
    sign_in(client)
    assert role_names(signed_in_user(client)) == {ROUTE_EDITORS}


def test_the_audit_trail_names_the_single_sign_on_that_made_the_account(sso, idp, client):
    from gateway_admin.models import AuditEntry

    idp.user["groups"] = ["gw-finance"]
    sign_in(client)
    user = signed_in_user(client)
    entries = AuditEntry.objects.filter(object_type="auth.user", object_id=str(user.pk))
    assert entries.exists()
    for entry in entries:
        assert entry.actor == f"single sign-on of {user.username}" and entry.via == "oidc", entry.actor
        assert entry.username == user.username and entry.remote_addr == "127.0.0.1"


def test_roles_follow_the_idp_at_every_sign_in(sso, idp, client):
    idp.user["groups"] = ["gw-routes", "gw-keys"]
    sign_in(client)
    user = signed_in_user(client)
    assert role_names(user) == {ROUTE_EDITORS, KEY_MANAGERS, AUDITORS}
    newsletter = Group.objects.create(name="Newsletter")  # not a role: the IdP does not own it
    user.groups.add(newsletter)

    client.logout()
    idp.user["groups"] = ["gw-finance"]
    sign_in(client)
    user = signed_in_user(client)
    assert role_names(user) == {FINANCE, "Newsletter"} and user.is_staff

    client.logout()
    idp.user["groups"] = ["gw-root"]
    sign_in(client)
    user.refresh_from_db()
    assert user.is_superuser and role_names(user) == {"Newsletter"}

    client.logout()
    idp.user["groups"] = ["contractors"]  # removed from every mapped group
    response = sign_in(client)
    assert_refused(client, response, "none of your groups there grants a role")
    user.refresh_from_db()
    assert role_names(user) == {"Newsletter"} and not user.is_staff and not user.is_superuser
    assert User.objects.filter(username__startswith="oidc+").count() == 1


def test_one_account_per_subject_and_profile_updated(sso, idp, client):
    sign_in(client)
    client.logout()
    idp.user.update(email="ada.lovelace@example.com", given_name="Augusta")
    sign_in(client)
    (user,) = User.objects.filter(username__startswith="oidc+")
    assert (user.email, user.first_name) == ("ada.lovelace@example.com", "Augusta")


def test_two_first_sign_ins_at_once_make_one_account(sso, idp, client, monkeypatch):
    """The other tab created the account between this sign-in's lookup and its insert."""
    sign_in(client)
    client.logout()
    real, raced = oidc.GatewayOIDCBackend.find_user, []

    def find_user(self, cfg, claims):
        if not raced:
            raced.append(True)
            return None  # as it was a moment before the other tab's insert
        return real(self, cfg, claims)

    monkeypatch.setattr(oidc.GatewayOIDCBackend, "find_user", find_user)
    sign_in(client)
    assert raced and signed_in_user(client) is not None
    assert User.objects.filter(username__startswith="oidc+").count() == 1


def test_a_sub_django_would_refuse_as_a_username_is_hashed(sso, idp, client):
    idp.user["sub"] = "CN=Ada Lovelace/OU=People"
    sign_in(client)
    user = signed_in_user(client)
    assert user.username.startswith("oidc+sha256-") and len(user.username) == len("oidc+sha256-") + 64
    from django.contrib.auth.validators import UnicodeUsernameValidator

    UnicodeUsernameValidator()(user.username)  # the admin's user form accepts it


def test_signing_keys_rotated_at_the_provider_are_read_again(sso, idp, client):
    sign_in(client)
    client.logout()
    idp.rotate()
    sign_in(client)
    assert signed_in_user(client) is not None
    assert len(idp.calls("/certs")) == 2 and len(idp.calls("/openid-configuration")) == 1


def test_the_discovery_document_is_read_at_the_first_sign_in_only(sso, idp, client, admin_user):
    assert client.get("/admin/login/").status_code == 200
    client.post("/admin/login/", {"username": admin_user.username, "password": "password"})
    client.logout()
    assert idp.requests == []  # configured, but nothing fetched yet
    sign_in(client)
    client.logout()
    sign_in(client)
    assert len(idp.calls("/openid-configuration")) == 1 and len(idp.calls("/certs")) == 1


def test_client_secret_from_the_environment_and_post_authentication(sso, idp, client, monkeypatch):
    monkeypatch.setenv("TEST_OIDC_CLIENT_SECRET", idp.client_secret)
    sso.OIDC_RP_CLIENT_SECRET = "env:TEST_OIDC_CLIENT_SECRET"
    idp.token_auth = "post"
    try:
        sign_in(client)
    finally:
        idp.token_auth = "both"
    assert signed_in_user(client) is not None
    (token_call,) = idp.calls("/token")
    assert token_call.form["client_secret"] == idp.client_secret and "authorization" not in token_call.headers


def test_a_configured_redirect_uri_is_used_at_both_ends(sso, idp, client):
    sso.GATEWAY_OIDC_REDIRECT_URI = "https://gw.example.com/oidc/callback/"
    idp.redirect_uris.append(sso.GATEWAY_OIDC_REDIRECT_URI)
    try:
        authorize_url = start(client)
        assert parse_qs(urlsplit(authorize_url).query)["redirect_uri"] == [sso.GATEWAY_OIDC_REDIRECT_URI]
        client.get(at_provider(authorize_url, host="gw.example.com"))
    finally:
        idp.redirect_uris.remove(sso.GATEWAY_OIDC_REDIRECT_URI)
    assert signed_in_user(client) is not None
    assert idp.calls("/token")[0].form["redirect_uri"] == sso.GATEWAY_OIDC_REDIRECT_URI


def test_the_login_failed_signal_never_sees_the_verifier(sso, idp, client):
    from django.contrib.auth.signals import user_login_failed

    seen = []

    def receiver(sender, credentials, **kw):
        seen.append(credentials)

    user_login_failed.connect(receiver)
    try:
        idp.sign_with = "other-rsa"
        sign_in(client)
    finally:
        user_login_failed.disconnect(receiver)
    verifier = idp.calls("/token")[0].form["code_verifier"]
    assert seen and verifier not in repr(seen) and "oidc_state_secret" in seen[0]


def test_a_wrong_client_secret_signs_nobody_in(sso, idp, client, caplog):
    sso.OIDC_RP_CLIENT_SECRET = "not-the-secret-123456"
    with caplog.at_level(logging.INFO):
        response = sign_in(client)
    assert_refused(client, response, "could not be verified", idp, caplog)
    assert "invalid_client" in caplog.text and "not-the-secret-123456" not in caplog.text


# --- hostile answers: nobody signed in, no account, nothing leaked ---------------------------
HOSTILE = {
    "signed by another key with the same kid": {"sign_with": "other-rsa-same-kid"},
    "signed by a key not in the JWKS": {"sign_with": "other-rsa"},
    "alg none": {"sign_with": "none"},
    "HS256 with the client secret": {"sign_with": "hs256-secret"},
    "HS256 with the public key (key confusion)": {"sign_with": "hs256-public-key"},
    "wrong audience": {"claims": {"aud": "another-client", "azp": None}},
    "wrong audience and azp": {"claims": {"aud": "another-client", "azp": "another-client"}},
    "audience list without this client": {"claims": {"aud": ["a", "b"], "azp": None}},
    "several audiences, no azp": {"claims": {"aud": ["llm-gateway", "other"], "azp": None}},
    "another authorized party": {"claims": {"aud": ["llm-gateway", "other"], "azp": "other"}},
    "wrong issuer": {"claims": {"iss": "http://127.0.0.1:9/realms/evil"}},
    "expired an hour ago": {"claims": {"exp": lambda now: now - 3600, "iat": lambda now: now - 7200}},
    "expired beyond the leeway": {"claims": {"exp": lambda now: now - 90, "iat": lambda now: now - 400}},
    "issued in the future": {"claims": {"iat": lambda now: now + 3600, "exp": lambda now: now + 7200}},
    "no expiry": {"claims": {"exp": None}},
    "wrong nonce": {"claims": {"nonce": "not-this-sign-ins-nonce"}},
    "no nonce": {"claims": {"nonce": None}},
    "no sub": {"claims": {"sub": None}},
    "userinfo about another subject": {"userinfo": {"sub": "someone-else"}},
}
HOSTILE_MESSAGE = "could not be verified"


@pytest.mark.parametrize("case", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_id_token_signs_nobody_in(sso, idp, client, caplog, case):
    idp.sign_with = case.get("sign_with", "rsa")
    idp.id_token_claims = case.get("claims", {})
    idp.userinfo_claims = case.get("userinfo", {})
    with caplog.at_level(logging.INFO):
        response = sign_in(client)
    assert_refused(client, response, HOSTILE_MESSAGE, idp, caplog)
    assert not User.objects.exists()
    assert "single sign-on refused (invalid_token)" in caplog.text


def test_a_token_expired_within_the_leeway_is_accepted(sso, idp, client):
    idp.id_token_claims = {"exp": lambda now: now - 30, "iat": lambda now: now - 330}
    sign_in(client)
    assert signed_in_user(client) is not None


@pytest.mark.parametrize("groups", [["contractors"], [], None, "contractors"], ids=["unknown", "empty", "no claim", "a string"])
def test_no_mapped_group_signs_nobody_in(sso, idp, client, caplog, groups):
    idp.user["groups"] = groups
    with caplog.at_level(logging.INFO):
        response = sign_in(client)
    page = assert_refused(client, response, "none of your groups there grants a role", idp, caplog)
    assert "Ask an administrator" in page
    assert not User.objects.exists()
    assert "single sign-on refused (unknown_group)" in caplog.text


def test_unknown_group_keeps_an_existing_account_signed_out(sso, idp, client):
    sign_in(client)
    user = signed_in_user(client)
    client.logout()
    idp.user["groups"] = ["contractors"]
    assert_refused(client, sign_in(client), "none of your groups there grants a role")
    user.refresh_from_db()
    assert not user.is_staff and role_names(user) == set()


def _tamper_verifier(client, value):
    session = client.session
    (state,) = session["oidc_states"]
    session["oidc_states"][state]["code_verifier"] = value
    session.save()


@pytest.mark.parametrize("verifier", [None, "a" * 64], ids=["missing", "wrong"])
def test_a_missing_or_wrong_pkce_verifier_signs_nobody_in(sso, idp, client, caplog, verifier):
    authorize_url = start(client)
    _tamper_verifier(client, verifier)
    with caplog.at_level(logging.INFO):
        response = client.get(at_provider(authorize_url))
    assert_refused(client, response, HOSTILE_MESSAGE, idp, caplog)
    assert "invalid_grant" in caplog.text and not User.objects.exists()


def test_a_stolen_code_replayed_in_another_browser_fails_pkce(sso, idp, client, django_user_model):
    from django.test import Client

    victim, attacker = client, Client()
    stolen = at_provider(start(victim))  # the victim's code, never redeemed by the victim
    start(attacker)  # the attacker's own sign-in: its own state and verifier
    attacker_state = next(iter(attacker.session["oidc_states"]))
    code = parse_qs(urlsplit(stolen).query)["code"][0]
    response = attacker.get("/oidc/callback/", {"code": code, "state": attacker_state})
    assert_refused(attacker, response, HOSTILE_MESSAGE)
    assert idp.calls("/token")[-1].form["code_verifier"] != ""
    assert not django_user_model.objects.exists()


def test_a_callback_replayed_signs_nobody_in_again(sso, idp, client):
    callback = at_provider(start(client))
    assert client.get(callback).status_code == 302 and signed_in_user(client) is not None
    client.logout()
    assert_refused(client, client.get(callback), "not started from this browser")


def test_the_provider_refuses_a_code_used_twice(idp):
    idp.redirect_uris.append("http://127.0.0.1/cb")
    verifier = "v" * 50
    answer = httpx.get(idp.issuer + "/protocol/openid-connect/auth", params={
        "client_id": idp.client_id, "redirect_uri": "http://127.0.0.1/cb", "response_type": "code", "scope": "openid",
        "state": "s", "nonce": "n", "code_challenge": s256(verifier), "code_challenge_method": "S256"})
    code = parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://127.0.0.1/cb", "code_verifier": verifier}
    auth = (idp.client_id, idp.client_secret)
    token = idp.issuer + "/protocol/openid-connect/token"
    assert httpx.post(token, data=form, auth=auth).status_code == 200
    again = httpx.post(token, data=form, auth=auth)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    idp.redirect_uris.remove("http://127.0.0.1/cb")


def test_a_callback_with_a_state_this_browser_did_not_start_signs_nobody_in(sso, idp, client):
    from django.test import Client

    other = Client()
    callback = at_provider(start(other))  # a login CSRF: someone else's code and state
    assert_refused(client, client.get(callback), "not started from this browser")
    assert idp.calls("/token") == []


def test_an_error_from_the_provider_is_shown(sso, idp, client):
    idp.deny = "access_denied"
    page = assert_refused(client, sign_in(client), "did not sign you in (access_denied)")
    assert "<script" not in page.split("messagelist")[-1][:400]


def test_a_discovery_document_for_another_issuer_is_refused(sso, idp, client):
    idp.discovery_overrides = {"issuer": "http://127.0.0.1:9/realms/evil"}
    response = client.get("/oidc/authenticate/")
    assert_refused(client, response, "not configured correctly")
    assert idp.calls("/auth") == []


def test_an_unreachable_provider_is_a_message_not_an_error_page(sso, client):
    sso.OIDC_OP_ISSUER = "http://127.0.0.1:9/realms/gone"
    assert_refused(client, client.get("/oidc/authenticate/"), "could not be reached")


def test_a_misconfigured_role_map_is_a_message_and_a_log_line(sso, idp, client, caplog):
    sso.GATEWAY_OIDC_ROLE_MAP = "gw-routes=Route editor"  # no such role
    with caplog.at_level(logging.ERROR):
        assert_refused(client, client.get("/oidc/authenticate/"), "not configured correctly")
    assert "'Route editor'" in caplog.text and "Route editors" in caplog.text


# --- accounts -------------------------------------------------------------------------------
def test_a_local_account_with_the_same_email_is_not_taken_over(sso, idp, client, django_user_model):
    local = django_user_model.objects.create_user("ada", email="ada@example.com", password="local-pass-123", is_staff=True)
    sign_in(client)
    user = signed_in_user(client)
    assert user.pk != local.pk and user.username.startswith("oidc+")
    local.refresh_from_db()
    assert role_names(local) == set() and local.check_password("local-pass-123")


def test_linking_by_verified_email_when_the_setting_says_so(sso, idp, client, django_user_model):
    sso.GATEWAY_OIDC_LINK_BY_EMAIL = True
    local = django_user_model.objects.create_user("ada", email="ADA@example.com", password="local-pass-123")
    idp.user["email_verified"] = False
    sign_in(client)
    assert signed_in_user(client).pk != local.pk  # unverified: a separate account
    client.logout()
    django_user_model.objects.filter(username__startswith="oidc+").delete()
    idp.user["email_verified"] = True
    sign_in(client)
    assert signed_in_user(client).pk == local.pk
    local.refresh_from_db()
    assert role_names(local) == {ROUTE_EDITORS} and local.is_staff and local.username == "ada"


def test_a_disabled_account_is_not_signed_in(sso, idp, client):
    sign_in(client)
    user = signed_in_user(client)
    client.logout()
    user.is_active = False
    user.save()
    assert_refused(client, sign_in(client), "your account in this gateway is disabled")


def test_local_accounts_still_log_in_and_sso_accounts_have_no_password(sso, idp, client, django_user_model):
    page = client.get("/admin/login/?next=/admin/").content.decode()
    assert "Sign in with single sign-on" in page and 'href="/oidc/authenticate/?next=%2Fadmin%2F"' in page
    assert 'name="password"' in page
    django_user_model.objects.create_user("local-admin", password="pw-local-456", is_staff=True)
    response = client.post("/admin/login/?next=/admin/", {"username": "local-admin", "password": "pw-local-456", "next": "/admin/"})
    assert response.status_code == 302 and signed_in_user(client).username == "local-admin"
    client.logout()

    sign_in(client)
    sso_user = signed_in_user(client)
    client.logout()
    response = client.post("/admin/login/", {"username": sso_user.username, "password": ""})
    assert signed_in_user(client) is None


def test_without_configuration_there_is_no_button_and_no_sso(client, settings):
    assert not oidc.enabled()
    assert "single sign-on" not in client.get("/admin/login/").content.decode()
    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


# --- logout -------------------------------------------------------------------------------------
def test_logout_ends_the_session_and_the_provider_session(sso, idp, client):
    sign_in(client)
    id_token = client.session["oidc_id_token"]
    response = client.post("/admin/logout/")
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == idp.issuer + "/protocol/openid-connect/logout"
    params = parse_qs(target.query)
    assert params["id_token_hint"] == [id_token] and params["client_id"] == [idp.client_id]
    assert params["post_logout_redirect_uri"] == ["http://testserver/admin/login/"]
    assert signed_in_user(client) is None
    assert client.get("/admin/").status_code == 302


def test_a_local_users_logout_is_the_admins(sso, client, admin_client):
    response = admin_client.post("/admin/logout/")
    assert response.status_code == 200 and "Logged out" in response.content.decode()
    assert admin_client.get("/admin/").status_code == 302
    assert admin_client.get("/admin/logout/").status_code == 405


# --- the real server ---------------------------------------------------------------------------
def test_the_whole_flow_over_http_with_a_browser_like_client(sso, idp, gateway):
    """The live gateway (uvicorn) and the provider, a cookie-keeping client following
    every redirect as a browser does: admin -> login page -> button -> provider -> callback
    -> admin; then logout at the gateway and at the provider, back on the login page."""
    sso.SESSION_COOKIE_SECURE = sso.CSRF_COOKIE_SECURE = False  # plain http here (production mode sets them)
    idp.redirect_uris.append(f"{gateway}/oidc/callback/")
    idp.user["groups"] = ["gw-finance"]
    try:
        with httpx.Client(follow_redirects=True, timeout=20) as browser:
            login = browser.get(f"{gateway}/admin/")
            assert urlsplit(str(login.url)).path == "/admin/login/"
            href = login.text.split('class="button sso-button" href="')[1].split('"')[0].replace("&amp;", "&")
            admin = browser.get(gateway + href)
            assert admin.status_code == 200 and urlsplit(str(admin.url)).path == "/admin/"
            assert [r.url.host for r in admin.history] == ["127.0.0.1"] * 3
            assert "Ada" in admin.text
            user = User.objects.get(username="oidc+f3c1b2a0-user-1")
            assert role_names(user) == {FINANCE}

            csrf = browser.cookies["csrftoken"]
            out = browser.post(f"{gateway}/admin/logout/", data={"csrfmiddlewaretoken": csrf},
                               headers={"Referer": f"{gateway}/admin/"})
            assert urlsplit(str(out.url)).path == "/admin/login/" and "sso-button" in out.text
            assert len(idp.calls("/logout")) == 1
            assert urlsplit(str(browser.get(f"{gateway}/admin/").url)).path == "/admin/login/"
    finally:
        idp.redirect_uris.remove(f"{gateway}/oidc/callback/")


def test_sign_in_takes_little_time(sso, idp, client):
    sign_in(client)  # the discovery document and JWKS read
    client.logout()
    rounds, callbacks = [], []
    for _ in range(10):
        began = time.perf_counter()
        callback = at_provider(start(client))
        middle = time.perf_counter()
        client.get(callback)
        rounds.append(time.perf_counter() - began)
        callbacks.append(time.perf_counter() - middle)
        assert signed_in_user(client) is not None
        client.logout()
    rounds.sort()
    callbacks.sort()
    print(f"\nsingle sign-on, median of 10 (metadata cached): whole round trip {rounds[5] * 1000:.1f} ms, "
          f"of which the gateway's callback (token exchange, ID token check, userinfo, account) "
          f"{callbacks[5] * 1000:.1f} ms")
    assert rounds[5] < 2.0
