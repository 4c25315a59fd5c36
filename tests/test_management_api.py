"""The management REST API (/api/...): staff by token or session, keys issued and
rotated with their secret shown once, budgets validated like the admin, usage
filtered, and a valid OpenAPI schema with self-hosted docs."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.keys import authenticate, hash_key, issue_key, key_cache
from billing.models import Budget, UsageRecord, VirtualKey
from gateway_admin.roles import FINANCE, KEY_MANAGERS, grant
from gateway_project.errors import AuthenticationFailed
from tests.factories import RouteFactory, TeamFactory

pytestmark = pytest.mark.django_db


def token_client(*, staff: bool = True) -> APIClient:
    user = User.objects.create_user(f"user-{User.objects.count()}", password="x", is_staff=staff)
    grant(user, KEY_MANAGERS, FINANCE)  # the roles the API's calls here need (docs/security/roles.md)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def api() -> APIClient:
    return token_client()


def auth(secret: str):
    key_cache.clear()  # what another process sees once its cache entry is older than the TTL
    return async_to_sync(authenticate)(f"Bearer {secret}")


def auth_error(secret: str) -> str:
    with pytest.raises(AuthenticationFailed) as exc:
        auth(secret)
    return exc.value.code


# --- the key lifecycle, end to end ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_issues_rotates_and_revokes_a_key_through_the_api():
    api = token_client()
    team, route = TeamFactory(name="search"), RouteFactory(name="chat-default")
    created = api.post(
        "/api/keys/",
        {"name": "ci", "team": team.pk, "allowed_routes": ["chat-default"], "rpm_limit": 60, "tags": ["prod"],
         "metadata": {"owner": "jane"}, "budget": {"amount_usd": "25", "period": "day"}},
        format="json",
    )
    assert created.status_code == 201, created.content
    first = created.json()
    info = auth(first["secret"])
    assert (info.id, info.team_id, info.rpm_limit, info.allowed_route_ids) == (first["id"], team.pk, 60, {route.pk})
    assert info.budget_ids == set(first["budgets"]) and len(first["budgets"]) == 1

    rotated = api.post(f"/api/keys/{first['id']}/rotate/", {"grace_seconds": 600}, format="json")
    assert rotated.status_code == 201, rotated.content
    second = rotated.json()
    assert second["secret"] != first["secret"] and second["id"] != first["id"]
    assert (second["name"], second["team"], second["allowed_routes"], second["rpm_limit"], second["tags"]) == (
        "ci", team.pk, ["chat-default"], 60, ["prod"]
    )
    assert second["metadata"] == {"owner": "jane"} and len(second["budgets"]) == 1
    assert second["old_key"]["id"] == first["id"] and second["old_key"]["replaced_by"] == second["id"]
    assert auth(first["secret"]).id == first["id"]  # the grace period: both work
    assert auth(second["secret"]).id == second["id"]

    VirtualKey.objects.filter(pk=first["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert auth_error(first["secret"]) == "expired_api_key"  # grace over
    assert auth(second["secret"]).id == second["id"]

    assert api.delete(f"/api/keys/{second['id']}/").status_code == 204
    assert auth_error(second["secret"]) == "revoked_api_key"
    assert api.get(f"/api/keys/{second['id']}/").json()["status"] == "revoked"
    assert VirtualKey.objects.count() == 2  # revoked, never deleted


def test_rotating_twice_or_a_revoked_key_is_a_conflict(api):
    key = issue_key("k").key
    assert api.post(f"/api/keys/{key.pk}/rotate/", {"grace_seconds": 0}, format="json").status_code == 201
    again = api.post(f"/api/keys/{key.pk}/rotate/", {}, format="json")
    assert again.status_code == 409 and "already rotated" in again.json()["detail"]
    revoked = issue_key("r").key
    assert api.post(f"/api/keys/{revoked.pk}/revoke/").json()["status"] == "revoked"
    assert api.post(f"/api/keys/{revoked.pk}/rotate/", {}, format="json").status_code == 409
    bad = api.post(f"/api/keys/{issue_key('g').key.pk}/rotate/", {"grace_seconds": -1}, format="json")
    assert bad.status_code == 400 and "grace_seconds" in bad.json()


def test_patch_changes_limits_routes_and_expiry(api):
    key = issue_key("k").key
    RouteFactory(name="chat-fast")
    url = f"/api/keys/{key.pk}/"
    body = {"rpm_limit": 10, "tpm_limit": 5000, "allowed_routes": ["chat-fast"], "tags": ["a", "b"]}
    changed = api.patch(url, body, format="json").json()
    assert (changed["rpm_limit"], changed["tpm_limit"], changed["allowed_routes"], changed["tags"]) == (
        10, 5000, ["chat-fast"], ["a", "b"]
    )
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    assert api.patch(url, {"expires_at": past}, format="json").json()["status"] == "expired"
    errors = api.patch(url, {"rpm_limit": -1, "allowed_routes": ["nope"], "metadata": [1]}, format="json")
    assert errors.status_code == 400 and {"rpm_limit", "allowed_routes", "metadata"} <= set(errors.json())
    assert api.put(url, {"name": "x"}, format="json").status_code == 405


def test_key_json_never_contains_the_hash_or_the_secret(api):
    created = api.post("/api/keys/", {"name": "k"}, format="json").json()
    secret = created["secret"]
    key_hash = hash_key(secret)
    assert key_hash not in json.dumps(created)
    pages = [
        api.get("/api/keys/").content, api.get(f"/api/keys/{created['id']}/").content,
        api.patch(f"/api/keys/{created['id']}/", {"name": "k2"}, format="json").content,
        api.post(f"/api/keys/{created['id']}/revoke/").content,
    ]
    for body in pages:
        assert secret.encode() not in body and key_hash.encode() not in body
        assert b'"secret"' not in body and b"key_hash" not in body


def test_a_new_key_is_validated(api):
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = api.post(
        "/api/keys/", {"name": "", "expires_at": past, "team": 999, "budget": {"amount_usd": "-1"}}, format="json"
    )
    assert response.status_code == 400
    assert {"name", "expires_at", "team", "budget"} <= set(response.json())
    assert not VirtualKey.objects.exists()


def test_lists_keys_by_team_and_status(api):
    team = TeamFactory()
    mine = issue_key("mine", team=team).key
    gone = issue_key("gone", team=team).key
    api.delete(f"/api/keys/{gone.pk}/")
    issue_key("other")
    names = lambda query: [k["name"] for k in api.get("/api/keys/", query).json()["results"]]  # noqa: E731
    assert set(names({"team": team.pk})) == {"mine", "gone"}
    assert names({"team": team.pk, "status": "active"}) == [mine.name]
    assert names({"status": "revoked"}) == ["gone"]
    assert api.get("/api/keys/", {"status": "bogus"}).status_code == 400


# --- permissions ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/api/keys/", "/api/teams/", "/api/budgets/", "/api/usage/", "/api/schema/"])
def test_anonymous_and_non_staff_callers_are_refused(url):
    anonymous = APIClient().get(url)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Token"
    assert token_client(staff=False).get(url).status_code == 403
    assert APIClient(HTTP_AUTHORIZATION="Token not-a-token").get(url).status_code == 401
    assert APIClient().post("/api/keys/", {"name": "x"}).status_code == 401
    assert not VirtualKey.objects.exists()


def test_a_staff_session_works_too(admin_client):
    assert admin_client.get("/api/keys/").status_code == 200


def test_unknown_ids_are_404(api):
    assert api.get("/api/keys/999/").status_code == 404
    assert api.post("/api/keys/999/rotate/", {}, format="json").status_code == 404
    assert api.patch("/api/teams/999/", {}, format="json").status_code == 404


# --- teams and budgets ----------------------------------------------------------------


def test_teams_are_created_and_changed(api):
    created = api.post("/api/teams/", {"name": "research", "rpm_limit": 600}, format="json")
    assert created.status_code == 201
    team = created.json()
    changed = api.patch(f"/api/teams/{team['id']}/", {"tpm_limit": 90000}, format="json").json()
    assert (changed["rpm_limit"], changed["tpm_limit"]) == (600, 90000)
    assert api.post("/api/teams/", {"name": "research"}, format="json").status_code == 400  # unique
    assert api.post("/api/teams/", {"name": "bad name!"}, format="json").status_code == 400
    assert api.delete(f"/api/teams/{team['id']}/").status_code == 405


def test_budgets_crud_with_scope_validation(api):
    key, team = issue_key("k").key, TeamFactory()
    created = api.post("/api/budgets/", {"scope": "key", "key": key.pk, "amount_usd": "10.5"}, format="json")
    assert created.status_code == 201, created.content
    budget = created.json()
    assert (budget["period"], budget["action"], budget["amount_usd"]) == ("month", "block", "10.5000")

    for body, field in [
        ({"scope": "key", "team": team.pk, "amount_usd": "1"}, "key"),  # key budget without a key
        ({"scope": "team", "key": key.pk, "team": team.pk, "amount_usd": "1"}, "key"),
        ({"scope": "global", "team": team.pk, "amount_usd": "1"}, "team"),
        ({"scope": "global", "amount_usd": "-1"}, "amount_usd"),
        ({"scope": "global", "amount_usd": "1", "alert_threshold_pct": 0}, "alert_threshold_pct"),
    ]:
        response = api.post("/api/budgets/", body, format="json")
        assert response.status_code == 400 and field in response.json(), (body, response.content)

    url = f"/api/budgets/{budget['id']}/"
    assert api.patch(url, {"team": team.pk}, format="json").status_code == 400  # would name key and team
    assert api.patch(url, {"amount_usd": "20", "enabled": False}, format="json").json()["enabled"] is False
    assert api.get("/api/budgets/").json()["count"] == 1
    assert api.delete(url).status_code == 204
    assert not Budget.objects.exists()


# --- usage ----------------------------------------------------------------------------


def test_usage_is_listed_newest_first_and_filtered(api):
    team = TeamFactory()
    key = issue_key("k", team=team).key
    now = timezone.now()
    rows = [
        ("r1", now - timedelta(days=3), key, team, "chat-default"),
        ("r2", now - timedelta(days=1), key, team, "chat-fast"),
        ("r3", now - timedelta(hours=1), None, None, "chat-default"),
    ]
    for request_id, at, k, t, route in rows:
        UsageRecord.objects.create(
            request_id=request_id, created_at=at, key=k, key_prefix=k.prefix if k else "", team=t, route_name=route,
            status="success", http_status=200, prompt_tokens=3, completion_tokens=4,
        )
    ids = lambda **q: [r["request_id"] for r in api.get("/api/usage/", q).json()["results"]]  # noqa: E731
    assert ids() == ["r3", "r2", "r1"]
    assert ids(team=team.pk) == ["r2", "r1"]
    assert ids(key=key.pk, route="chat-default") == ["r1"]
    assert ids(since=(now - timedelta(days=2)).isoformat()) == ["r3", "r2"]
    assert ids(until=(now - timedelta(days=2)).isoformat()) == ["r1"]
    first = api.get("/api/usage/", {"page_size": 2}).json()
    assert [r["request_id"] for r in first["results"]] == ["r3", "r2"]
    assert [r["request_id"] for r in api.get(first["next"]).json()["results"]] == ["r1"]
    assert api.get("/api/usage/", {"since": "yesterday"}).status_code == 400
    assert api.post("/api/usage/", {}).status_code == 405


# --- OpenAPI ----------------------------------------------------------------------------


def test_the_schema_generates_without_warnings_and_validates(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    text = (tmp_path / "schema.yaml").read_text()
    for path in ("/api/keys/{id}/rotate/", "/api/usage/", "/api/budgets/{id}/", "tokenAuth"):
        assert path in text


def test_the_schema_is_served_to_staff(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert "/api/keys/" in json.loads(response.content)["paths"]


@pytest.mark.parametrize("url,asset", [("/api/docs/", "swagger-ui-dist"), ("/api/redoc/", "redoc")])
def test_the_docs_use_the_bundled_assets(admin_client, url, asset):
    response = admin_client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert f"/static/drf_spectacular_sidecar/{asset}" in html
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert APIClient().get(url).status_code == 401


def test_drf_create_token_makes_a_working_token(admin_user):
    out = io.StringIO()
    call_command("drf_create_token", admin_user.username, stdout=out)
    token = Token.objects.get(user=admin_user).key
    assert token in out.getvalue()
    assert APIClient(HTTP_AUTHORIZATION=f"Token {token}").get("/api/teams/").status_code == 200
