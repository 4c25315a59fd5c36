"""rpm_limit / tpm_limit mean the same from every entry point: blank / null = no limit,
0 = nothing allowed, checked by one function (billing.keys.validate_rate_limits).
Each entry point is driven as its users drive it: the admin's forms, the management
API, `manage.py issue_key`, `gateway_import`; and what 0 means is admission's answer."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.admission import rate_limits
from billing.keys import MAX_RATE_LIMIT, hash_key, issue_key, load_key, save_team, update_key, validate_rate_limits
from billing.limits import RateLimit
from billing.models import Team, VirtualKey
from routing.config import ConfigError, export_config, import_config
from tests.admin_helpers import untouched_form
from tests.factories import TeamFactory

pytestmark = pytest.mark.django_db

BAD = [-1, MAX_RATE_LIMIT + 1, 10**30, True, 1.5, "5"]


# --- the one function ------------------------------------------------------------------------
@pytest.mark.parametrize("value", [None, 0, 1, MAX_RATE_LIMIT])
def test_none_zero_and_counts_are_limits(value):
    validate_rate_limits(value, value)


@pytest.mark.parametrize("value", BAD)
def test_anything_else_is_refused_naming_the_field(value):
    with pytest.raises(ValidationError) as exc:
        validate_rate_limits(rpm_limit=value)
    assert list(exc.value.message_dict) == ["rpm_limit"]
    with pytest.raises(ValidationError) as exc:
        validate_rate_limits(5, tpm_limit=value)
    assert list(exc.value.message_dict) == ["tpm_limit"]


def test_billing_functions_call_it():
    with pytest.raises(ValidationError, match="rpm_limit"):
        issue_key("k", rpm_limit=MAX_RATE_LIMIT + 1)
    key = issue_key("k", rpm_limit=0).key
    with pytest.raises(ValidationError, match="tpm_limit"):
        update_key(key, tpm_limit=-1)
    with pytest.raises(ValidationError, match="rpm_limit"):
        save_team(Team(name="t", rpm_limit=-1))
    assert save_team(Team(name="t", rpm_limit=0)).rpm_limit == 0


# --- what 0 means: admission -------------------------------------------------------------------
def test_zero_is_a_limit_and_none_is_not():
    team = TeamFactory(rpm_limit=None, tpm_limit=0)
    secret = issue_key("k", team=team, rpm_limit=0).secret
    info = load_key(hash_key(secret))
    assert rate_limits(info) == [RateLimit(f"key:{info.id}", 0, None), RateLimit(f"team:{team.id}", None, 0)]
    Team.objects.filter(pk=team.pk).update(tpm_limit=None)
    VirtualKey.objects.filter(pk=info.id).update(rpm_limit=None)
    assert rate_limits(load_key(hash_key(secret))) == []


# --- admin ---------------------------------------------------------------------------------------
def _submit(admin_client, url: str, **values):
    form = untouched_form(admin_client.get(url))
    form.update({k: [str(v)] for k, v in values.items()})
    return admin_client.post(url, form)


def test_admin_key_form_saves_zero_as_zero_and_blank_as_no_limit(admin_client):
    answer = _submit(admin_client, "/admin/billing/virtualkey/add/", name="paused", rpm_limit=0, tpm_limit="")
    assert answer.status_code == 302
    key = VirtualKey.objects.get(name="paused")
    assert (key.rpm_limit, key.tpm_limit) == (0, None)
    answer = _submit(admin_client, f"/admin/billing/virtualkey/{key.pk}/change/", rpm_limit="", tpm_limit=0)
    assert answer.status_code == 302
    key.refresh_from_db()
    assert (key.rpm_limit, key.tpm_limit) == (None, 0)


def test_admin_refuses_a_negative_limit(admin_client):
    answer = _submit(admin_client, "/admin/billing/virtualkey/add/", name="bad", rpm_limit=-1)
    assert answer.status_code == 200 and "greater than or equal to 0" in answer.content.decode()
    assert not VirtualKey.objects.exists()


def test_admin_team_form_saves_zero_as_zero(admin_client):
    team = TeamFactory()
    answer = _submit(admin_client, f"/admin/billing/team/{team.pk}/change/", rpm_limit=0, tpm_limit="")
    assert answer.status_code == 302
    team.refresh_from_db()
    assert (team.rpm_limit, team.tpm_limit) == (0, None)


# --- management API ----------------------------------------------------------------------------
@pytest.fixture
def api(admin_user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    return client


def test_api_keys_take_zero_and_null(api):
    made = api.post("/api/keys/", {"name": "paused", "rpm_limit": 0, "tpm_limit": None}, format="json")
    assert made.status_code == 201 and (made.json()["rpm_limit"], made.json()["tpm_limit"]) == (0, None)
    changed = api.patch(f"/api/keys/{made.json()['id']}/", {"rpm_limit": None, "tpm_limit": 0}, format="json")
    assert changed.status_code == 200
    assert VirtualKey.objects.values_list("rpm_limit", "tpm_limit").get() == (None, 0)


@pytest.mark.parametrize("value", [-1, MAX_RATE_LIMIT + 1, 10**30, 1.5, "many"])
def test_api_refuses_other_limits_with_a_400_naming_the_field(api, value):
    made = api.post("/api/keys/", {"name": "k", "rpm_limit": value}, format="json")
    assert made.status_code == 400 and "rpm_limit" in made.json()
    team = TeamFactory()
    changed = api.patch(f"/api/teams/{team.pk}/", {"tpm_limit": value}, format="json")
    assert changed.status_code == 400 and "tpm_limit" in changed.json()
    created = api.post("/api/teams/", {"name": "t2", "rpm_limit": value}, format="json")
    assert created.status_code == 400 and "rpm_limit" in created.json()
    assert not VirtualKey.objects.exists() and Team.objects.count() == 1


def test_api_teams_take_zero_and_null(api):
    made = api.post("/api/teams/", {"name": "t", "rpm_limit": 0}, format="json")
    assert made.status_code == 201 and (made.json()["rpm_limit"], made.json()["tpm_limit"]) == (0, None)
    changed = api.patch(f"/api/teams/{made.json()['id']}/", {"tpm_limit": 0}, format="json")
    assert changed.status_code == 200 and (changed.json()["rpm_limit"], changed.json()["tpm_limit"]) == (0, 0)


def test_api_schema_documents_what_zero_means(api):
    schema = api.get("/api/schema/?format=json").json()["components"]["schemas"]
    for component in ("KeyCreate", "Team"):
        help_text = schema[component]["properties"]["rpm_limit"]["description"]
        assert "0 = nothing allowed" in help_text and "no limit" in help_text


# --- issue_key ------------------------------------------------------------------------------------
def _issue(*args: str) -> tuple[VirtualKey, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("issue_key", "--name", "ci", *args, stdout=out, stderr=err)
    return VirtualKey.objects.get(key_hash=hash_key(out.getvalue().strip())), err.getvalue()


def test_issue_key_takes_zero_as_nothing_allowed():
    key, err = _issue("--rpm", "0", "--tpm", "0")
    assert (key.rpm_limit, key.tpm_limit) == (0, 0)
    assert "0 requests/min (no requests allowed)" in err
    key, _ = _issue()
    assert (key.rpm_limit, key.tpm_limit) == (None, None)


@pytest.mark.parametrize("flag,value", [("--rpm", "-1"), ("--tpm", str(MAX_RATE_LIMIT + 1))])
def test_issue_key_refuses_other_limits_naming_the_flag(flag, value):
    with pytest.raises(CommandError, match=f"{flag}: Must be a whole number"):
        _issue(flag, value)
    assert not VirtualKey.objects.exists()


# --- gateway_import -------------------------------------------------------------------------------
def test_yaml_zero_is_imported_and_exported_as_zero():
    import_config({"teams": [{"name": "paused", "rpm_limit": 0, "tpm_limit": None}, {"name": "open"}]})
    assert dict(Team.objects.values_list("name", "rpm_limit")) == {"paused": 0, "open": None}
    exported = {t["name"]: t for t in export_config()["teams"]}
    assert exported["paused"]["rpm_limit"] == 0 and "rpm_limit" not in exported["open"]
    import_config({"teams": list(exported.values())})
    assert dict(Team.objects.values_list("name", "rpm_limit")) == {"paused": 0, "open": None}


@pytest.mark.parametrize("value", [-1, MAX_RATE_LIMIT + 1, 10**30])
def test_yaml_refuses_other_limits_at_the_key(value):
    with pytest.raises(ConfigError) as exc:
        import_config({"teams": [{"name": "t", "tpm_limit": value}]})
    assert exc.value.path == "teams[t].tpm_limit" and "Must be a whole number" in exc.value.message
    assert not Team.objects.exists()
