"""The audit trail records every change of the audited models from every entry point --
admin add/change/delete and actions, the management API with a token, gateway_import,
management commands, Celery tasks, role changes -- exactly one entry per change, with
who, from where, and before/after (secrets masked). docs/security/audit.md."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from celery import shared_task
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from billing.budgets import set_key_budget
from billing.keys import issue_key, revoke_key, rotate_key
from billing.models import Budget, Team, VirtualKey
from gateway_admin import audit
from gateway_admin.models import AuditEntry
from providers.models import HealthCheck, Model, ModelPrice, Provider
from providers.prices import apply_due_prices, schedule_price
from routing.models import Route, RouteTarget
from tests.admin_helpers import errors_text, untouched_form
from tests.audit_helpers import Since, after, audit_table_text, before
from tests.factories import BudgetFactory, ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory, TeamFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-audit-provider-secret-4c1d"


def _post_form(client, url: str, **changes):
    page = client.get(url)
    assert page.status_code == 200, url
    data = untouched_form(page)
    for name in [n for n in data if n.endswith("-TOTAL_FORMS")]:  # no extra (empty) inline rows
        data[name] = data[name.replace("-TOTAL_FORMS", "-INITIAL_FORMS")]
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value if isinstance(value, list) else [value]
    return client.post(url, data)


# --- the admin ----------------------------------------------------------------------------


def test_admin_add_change_and_delete_of_a_provider_are_one_entry_each(admin_client, admin_user):
    mark = Since()
    response = _post_form(admin_client, reverse("admin:providers_provider_add"),
                          name="openai-prod", kind="openai", api_key=SECRET, timeout_s="30")
    assert response.status_code == 302, errors_text(response)
    provider = Provider.objects.get(name="openai-prod")
    created = mark.one()
    assert (created.action, created.object_type, created.object_id) == ("create", "providers.provider", str(provider.pk))
    assert (created.actor_type, created.actor, created.user_id, created.username) == (
        "user", "admin", admin_user.pk, "admin")
    assert (created.via, created.remote_addr) == ("admin", "127.0.0.1")
    assert created.source == "POST /admin/providers/provider/add/"
    assert after(created)["api_key"] == "[secret: set]" and after(created)["timeout_s"] == "30.0"
    assert created.before == ""

    mark = Since()
    url = reverse("admin:providers_provider_change", args=[provider.pk])
    response = _post_form(admin_client, url, timeout_s="12", api_key="sk-live-another-secret-9e2b")
    assert response.status_code == 302, errors_text(response)
    changed = mark.one()
    assert changed.action == "update"
    assert before(changed) == {"api_key": "[secret]", "timeout_s": "30.0"}
    assert after(changed) == {"api_key": "[secret: changed]", "timeout_s": "12.0"}

    mark = Since()
    response = admin_client.post(reverse("admin:providers_provider_delete", args=[provider.pk]), {"post": "yes"})
    assert response.status_code == 302
    deleted = mark.one()
    assert deleted.action == "delete" and deleted.after == ""
    assert before(deleted)["name"] == "openai-prod" and before(deleted)["api_key"] == "[secret]"
    assert SECRET not in audit_table_text() and "sk-live-another-secret-9e2b" not in audit_table_text()


def test_a_save_that_changes_nothing_writes_no_entry(admin_client):
    provider = ProviderFactory(name="quiet", api_key=SECRET)
    mark = Since()
    url = reverse("admin:providers_provider_change", args=[provider.pk])
    assert _post_form(admin_client, url).status_code == 302
    provider.refresh_from_db()
    provider.save()
    assert mark.entries() == []


def test_admin_key_issue_with_routes_is_one_entry_and_the_secret_is_nowhere(admin_client):
    route = RouteFactory(name="chat-default")
    mark = Since()
    response = _post_form(admin_client, reverse("admin:billing_virtualkey_add"), name="search-backend",
                          allowed_routes=[str(route.pk)], rpm_limit="60")
    assert response.status_code == 302, errors_text(response)
    key = VirtualKey.objects.get(name="search-backend")
    entry = mark.one()
    assert (entry.action, entry.object_type, entry.object_id) == ("create", "billing.virtualkey", str(key.pk))
    assert after(entry)["allowed_routes"] == [{"id": route.pk, "name": "chat-default"}]
    assert after(entry)["rpm_limit"] == 60
    assert "key_hash" not in after(entry)
    text = audit_table_text()
    assert key.key_hash not in text
    shown = [m.message for m in response.wsgi_request._messages]
    secret = next(word for m in shown for word in m.split("<code>")[1:]).split("</code>")[0]
    assert secret.startswith("sk-gw-") and secret not in text


def test_admin_key_change_of_name_and_routes_is_one_entry(admin_client):
    a, b = RouteFactory(name="route-a"), RouteFactory(name="route-b")
    key = issue_key("k", routes=[a]).key
    mark = Since()
    url = reverse("admin:billing_virtualkey_change", args=[key.pk])
    response = _post_form(admin_client, url, name="renamed", allowed_routes=[str(b.pk)])
    assert response.status_code == 302, errors_text(response)
    entry = mark.one()
    assert entry.action == "update"
    assert before(entry) == {"name": "k", "allowed_routes": [{"id": a.pk, "name": "route-a"}]}
    assert after(entry) == {"name": "renamed", "allowed_routes": [{"id": b.pk, "name": "route-b"}]}


def test_admin_route_with_inline_targets_records_the_route_and_each_target(admin_client):
    model = ModelFactory()
    route = RouteFactory(name="chat")
    RouteTargetFactory(route=route, model=model, order=0)
    other = ModelFactory()
    mark = Since()
    url = reverse("admin:routing_route_change", args=[route.pk])
    page = admin_client.get(url)
    data = untouched_form(page)
    data["description"] = ["now with a second target"]
    prefix = "targets"
    n = int(data[f"{prefix}-TOTAL_FORMS"][0])
    data[f"{prefix}-TOTAL_FORMS"] = [str(n + 1)]
    data[f"{prefix}-{n}-model"] = [str(other.pk)]
    data[f"{prefix}-{n}-order"] = ["1"]
    data[f"{prefix}-{n}-weight"] = ["1"]
    data[f"{prefix}-{n}-enabled"] = ["on"]
    response = admin_client.post(url, data)
    assert response.status_code == 302, errors_text(response)
    entries = mark.entries()
    assert [(e.action, e.object_type) for e in entries] == [("update", "routing.route"), ("create", "routing.routetarget")]
    assert after(entries[0]) == {"description": "now with a second target"}
    assert after(entries[1])["model"]["id"] == other.pk


def test_admin_actions_revoke_and_purge_the_cache_are_recorded(admin_client):
    keys = [issue_key(f"k{i}").key for i in range(2)]
    mark = Since()
    response = admin_client.post(reverse("admin:billing_virtualkey_changelist"), {
        "action": "revoke_selected", "_selected_action": [str(k.pk) for k in keys], "post": "yes"})
    assert response.status_code == 302
    entries = mark.entries()
    assert sorted((e.action, e.object_id) for e in entries) == [("update", str(k.pk)) for k in keys]
    assert all(before(e) == {"revoked_at": None} and after(e)["revoked_at"] for e in entries)
    assert {e.via for e in entries} == {"admin"}

    route = RouteFactory(name="cached", cache_mode="exact")
    mark = Since()
    response = admin_client.post(reverse("admin:routing_route_changelist"), {
        "action": "purge_cache", "_selected_action": [str(route.pk)]})
    assert response.status_code == 302
    purge = mark.one()  # a QuerySet.update(cache_epoch=F(...) + 1): no signal, still recorded
    assert (purge.object_type, before(purge), after(purge)) == ("routing.route", {"cache_epoch": 0}, {"cache_epoch": 1})


def test_admin_role_change_via_user_groups_is_one_entry(admin_client):
    editors, _ = Group.objects.get_or_create(name="Route editors")
    auditors, _ = Group.objects.get_or_create(name="Auditors")
    user = User.objects.create_user("jane", password="x", is_staff=True)
    user.groups.add(editors)
    mark = Since()
    url = reverse("admin:auth_user_change", args=[user.pk])
    response = _post_form(admin_client, url, groups=[str(auditors.pk)])
    assert response.status_code == 302, errors_text(response)
    entry = mark.one()
    assert (entry.action, entry.object_type, entry.object_repr) == ("update", "auth.user", "jane")
    assert before(entry) == {"groups": [{"id": editors.pk, "name": "Route editors"}]}
    assert after(entry) == {"groups": [{"id": auditors.pk, "name": "Auditors"}]}


def test_role_permissions_and_membership_from_either_side_are_recorded():
    group = Group.objects.create(name="Testers")
    perm = Permission.objects.get(codename="view_route")
    users = [User.objects.create_user(f"u{i}") for i in range(2)]
    TeamFactory()  # the group's create is no longer the newest entry: its permissions are a change of their own
    mark = Since()
    group.permissions.add(perm)
    group.user_set.add(*users)  # the reverse side: an entry per user
    entries = mark.entries()
    assert [(e.object_type, e.object_repr) for e in entries] == [("auth.group", "Testers"), ("auth.user", "u0"),
                                                                 ("auth.user", "u1")]
    assert after(entries[0]) == {"permissions": [{"id": perm.pk, "name": "routing.view_route"}]}
    assert after(entries[1]) == {"groups": [{"id": group.pk, "name": "Testers"}]}
    mark = Since()
    group.delete()  # membership ends with it: recorded on each user
    assert [(e.action, e.object_type) for e in mark.entries()] == [
        ("update", "auth.user"), ("update", "auth.user"), ("delete", "auth.group")]


def test_a_user_password_change_is_masked_and_a_login_is_not_a_change(client):
    user = User.objects.create_user("bob", password="first-password-1", is_staff=True)
    mark = Since()
    assert client.login(username="bob", password="first-password-1")
    assert mark.entries() == []  # last_login is bookkeeping
    user.set_password("second-password-2")
    user.save()
    entry = mark.one()
    assert before(entry) == {"password": "[secret]"} and after(entry) == {"password": "[secret: changed]"}
    assert "second-password-2" not in audit_table_text() and user.password not in audit_table_text()


def test_scheduled_prices_are_recorded_and_automatic_history_rows_are_not():
    model = ModelFactory(input_price_per_mtok=Decimal("1"))
    mark = Since()
    model.input_price_per_mtok = Decimal("2")
    model.save()  # writes a ModelPrice row by itself: not a change of its own
    assert [(e.object_type, before(e), after(e)) for e in mark.entries()] == [
        ("providers.model", {"input_price_per_mtok": "1.000000"}, {"input_price_per_mtok": "2.000000"})]
    mark = Since()
    when = timezone.now() + timedelta(days=3)
    row = schedule_price(model, when, {"input_price_per_mtok": Decimal("3"), "output_price_per_mtok": Decimal("4")})
    entry = mark.one()
    assert (entry.action, entry.object_type, entry.object_id) == ("create", "providers.modelprice", str(row.pk))
    # The date comes: apply_due_prices copies it with a QuerySet.update, recorded as the model's change.
    mark = Since()
    assert apply_due_prices(when + timedelta(seconds=1)) == [model.pk]
    entry = mark.one()
    assert (entry.object_type, after(entry)["input_price_per_mtok"]) == ("providers.model", "3.000000")
    assert ModelPrice.objects.filter(model=model).count() == 3


# --- keys: issue, rotate, revoke (billing.keys) --------------------------------------------


def test_rotation_records_the_new_key_the_moved_budget_and_the_old_key():
    old = issue_key("svc").key
    budget = set_key_budget(old, Decimal("10")).budget
    mark = Since()
    issued = rotate_key(old, 60)
    entries = mark.entries()
    assert [(e.action, e.object_type, e.object_id) for e in entries] == [
        ("create", "billing.virtualkey", str(issued.key.pk)),
        ("update", "billing.budget", str(budget.pk)),  # Budget.objects.update(key=...): no signal, still recorded
        ("update", "billing.virtualkey", str(old.pk)),
    ]
    assert before(entries[1])["key"]["id"] == old.pk and after(entries[1])["key"]["id"] == issued.key.pk
    assert issued.secret not in audit_table_text()


def test_first_use_rehash_and_authentication_write_nothing():
    key = issue_key("hot").key
    mark = Since()
    VirtualKey.objects.filter(pk=key.pk).update(key_hash="0" * 64)  # what a rehash on first use writes
    key.refresh_from_db()
    key.save(update_fields=["key_hash"])
    assert mark.entries() == []


def test_deleting_a_route_records_the_keys_that_lose_it():
    route, other = RouteFactory(name="gone"), RouteFactory(name="kept")
    key = issue_key("limited", routes=[route, other]).key
    mark = Since()
    route.delete()
    entries = mark.entries()
    assert [(e.action, e.object_type) for e in entries] == [("update", "billing.virtualkey"), ("delete", "routing.route")]
    assert after(entries[0]) == {"allowed_routes": [{"id": other.pk, "name": "kept"}]}
    assert entries[0].object_id == str(key.pk)


# --- the management API, with a token -----------------------------------------------------


@pytest.fixture
def api_token(admin_user):
    token = Token.objects.create(user=admin_user)
    client = APIClient(REMOTE_ADDR="10.1.2.3")
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client, token


def test_management_api_create_update_delete_are_recorded_with_the_token(api_token):
    client, token = api_token
    team = TeamFactory(name="search")
    mark = Since()
    response = client.post("/api/keys/", {"name": "ci", "team": team.pk, "rpm_limit": 60,
                                          "budget": {"amount_usd": "25", "period": "day"}}, format="json")
    assert response.status_code == 201, response.content
    secret, key_id = response.json()["secret"], response.json()["id"]
    entries = mark.entries()
    assert [(e.action, e.object_type) for e in entries] == [("create", "billing.virtualkey"), ("create", "billing.budget")]
    entry = entries[0]
    assert (entry.actor_type, entry.username, entry.via, entry.remote_addr) == ("token", "admin", "api", "10.1.2.3")
    assert entry.actor == f"admin (API token {token.key[:8]}…)"
    assert entry.source == "POST /api/keys/"

    mark = Since()
    assert client.patch(f"/api/keys/{key_id}/", {"rpm_limit": 120}, format="json").status_code == 200
    entry = mark.one()
    assert (before(entry), after(entry)) == ({"rpm_limit": 60}, {"rpm_limit": 120})

    mark = Since()
    assert client.delete(f"/api/keys/{key_id}/").status_code == 204  # DELETE revokes
    entry = mark.one()
    assert before(entry) == {"revoked_at": None} and after(entry)["revoked_at"]

    budget_id = Budget.objects.get(key_id=key_id).pk
    mark = Since()
    assert client.patch(f"/api/budgets/{budget_id}/", {"amount_usd": "30"}, format="json").status_code == 200
    assert client.delete(f"/api/budgets/{budget_id}/").status_code == 204
    assert [(e.action, e.object_type) for e in mark.entries()] == [("update", "billing.budget"), ("delete", "billing.budget")]

    mark = Since()
    assert client.post("/api/teams/", {"name": "ops", "rpm_limit": 5}, format="json").status_code == 201
    assert mark.one().object_repr == "ops"
    text = audit_table_text()
    assert secret not in text and token.key not in text


def test_management_api_tokens_are_recorded_by_prefix_only(admin_user):
    mark = Since()
    token = Token.objects.create(user=admin_user)
    entry = mark.one()
    assert (entry.action, entry.object_type, entry.object_id) == ("create", "authtoken.token", token.key[:8])
    assert token.key not in audit_table_text()
    mark = Since()
    token.delete()
    assert mark.one().action == "delete"


# --- gateway_import and other management commands -----------------------------------------

YAML = """
providers:
  - name: upstream
    kind: openai
    base_url: http://127.0.0.1:18080/v1
    api_key: %s
    models:
      - name: gpt-4o-mini
        input_price_per_mtok: "0.15"
        output_price_per_mtok: "0.60"
routes:
  - name: chat-default
    strategy: fallback
    targets:
      - model: upstream/gpt-4o-mini
teams:
  - name: research
    budget_usd: 100
""" % SECRET


def _import(tmp_path, text: str, *args: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    call_command("gateway_import", str(path), *args, stdout=io.StringIO())


def test_gateway_import_records_each_change_once_as_the_command(tmp_path):
    mark = Since()
    _import(tmp_path, YAML)
    entries = mark.entries()
    assert [(e.action, e.object_type) for e in entries] == [
        ("create", "providers.provider"), ("create", "providers.model"), ("create", "billing.team"),
        ("create", "billing.budget"), ("create", "routing.route"), ("create", "routing.routetarget"),
    ]
    assert {e.actor_type for e in entries} == {"command"}
    assert all(e.actor.startswith("command:gateway_import (OS user ") for e in entries)
    assert {e.via for e in entries} == {"command"} and {e.remote_addr for e in entries} == {""}
    assert after(entries[0])["api_key"] == "[secret: set]"
    assert SECRET not in audit_table_text()

    mark = Since()
    _import(tmp_path, YAML)  # the same file again: nothing changes, nothing recorded
    assert mark.entries() == []
    _import(tmp_path, YAML.replace('"0.60"', '"0.70"'), "--dry-run")  # rolled back: so is its entry
    assert mark.entries() == []
    _import(tmp_path, YAML.replace('"0.60"', '"0.70"'))
    entry = mark.one()
    assert (entry.object_type, before(entry), after(entry)) == (
        "providers.model", {"output_price_per_mtok": "0.600000"}, {"output_price_per_mtok": "0.700000"})


def test_issue_key_command_is_recorded_as_the_command():
    RouteFactory(name="chat-default")
    mark = Since()
    out = io.StringIO()
    call_command("issue_key", "--name", "cli-key", "--routes", "chat-default", stdout=out, stderr=io.StringIO())
    entry = mark.one()
    assert (entry.action, entry.object_type, entry.actor_type) == ("create", "billing.virtualkey", "command")
    assert entry.actor.startswith("command:issue_key (OS user ") and entry.source.startswith("manage.py issue_key on ")
    assert after(entry)["allowed_routes"][0]["name"] == "chat-default"
    assert out.getvalue().strip() not in audit_table_text()


@shared_task(name="tests.test_audit_entry_points.rename_team")
def rename_team(team_id: int, name: str) -> None:
    Team.objects.filter(pk=team_id).update(name=name)


def test_a_celery_task_is_recorded_as_the_task():
    team = TeamFactory(name="before")
    mark = Since()
    rename_team.apply(args=[team.pk, "after"])
    entry = mark.one()
    assert (entry.actor_type, entry.actor, entry.via) == ("task", "task:tests.test_audit_entry_points.rename_team", "task")
    assert (before(entry), after(entry)) == ({"name": "before"}, {"name": "after"})


def test_anything_else_is_the_system():
    mark = Since()
    TeamFactory(name="from-a-script")
    assert (mark.one().actor_type, mark.one().actor, mark.one().via) == ("system", "system", "system")


# --- secrets in structured fields ----------------------------------------------------------


def test_webhook_urls_and_secret_headers_are_masked():
    provider = ProviderFactory(options={"headers": {"X-Org": "research", "Authorization": "Bearer hdr-secret-1"}})
    team = TeamFactory()
    mark = Since()
    budget = BudgetFactory(scope="team", team=team,
                           webhook_url="https://hooks.slack.com/services/T000/B000/whk-secret-2")
    provider.options = {"headers": {"X-Org": "research", "Authorization": "Bearer hdr-secret-3"}}
    provider.save()
    entries = {e.object_type: e for e in mark.entries()}
    assert after(entries["billing.budget"])["webhook_url"] == "https://hooks.slack.com/… [secret: set]"
    assert before(entries["providers.provider"]) == {"options": {"headers": {"Authorization": "[secret]",
                                                                              "X-Org": "[secret]"}}}
    assert after(entries["providers.provider"])["options"]["headers"]["Authorization"] == "[secret: changed]"
    budget.webhook_url = "https://evil.example.com/collect"
    budget.save()
    entry = Since().start and AuditEntry.objects.order_by("-seq").first()
    assert after(entry)["webhook_url"] == "https://evil.example.com/… [secret: changed]"
    text = audit_table_text()
    for secret in ("hdr-secret-1", "whk-secret-2", "hdr-secret-3", "/collect"):
        assert secret not in text


def test_secret_references_are_shown_as_they_are():
    provider = ProviderFactory(api_key="env:OPENAI_API_KEY")
    entry = AuditEntry.objects.filter(object_type="providers.provider", object_id=str(provider.pk)).get()
    assert after(entry)["api_key"] == "env:OPENAI_API_KEY"


# --- atomicity and the failure policy ---------------------------------------------------------


def test_a_rolled_back_change_leaves_no_entry():
    mark = Since()
    with pytest.raises(RuntimeError), transaction.atomic():
        TeamFactory(name="never")
        raise RuntimeError("rolled back")
    assert mark.entries() == [] and not Team.objects.filter(name="never").exists()


@pytest.mark.django_db(transaction=True)
def test_a_change_the_trail_cannot_record_is_refused(monkeypatch, caplog):
    team = TeamFactory(name="steady")

    def broken(values):
        raise OSError("disk full")

    monkeypatch.setattr(audit, "compute_hash", broken)
    team.description = "unrecorded"
    with pytest.raises(audit.AuditError):
        team.save()  # autocommit code: the save and its entry are one transaction all the same
    assert Team.objects.get(pk=team.pk).description == ""
    assert "could not record update of billing.team" in caplog.text
    with pytest.raises(audit.AuditError):
        Team.objects.filter(pk=team.pk).update(description="unrecorded")
    with pytest.raises(audit.AuditError):
        team.delete()
    assert Team.objects.get(pk=team.pk).description == ""


def test_one_set_of_a_many_to_many_is_one_entry_and_a_net_nothing_is_none():
    a, b = RouteFactory(name="ra"), RouteFactory(name="rb")
    key = issue_key("k", routes=[a]).key
    TeamFactory()
    mark = Since()
    key.allowed_routes.set([b])  # a remove, then an add: one change
    entry = mark.one()
    assert (before(entry), after(entry)) == ({"allowed_routes": [{"id": a.pk, "name": "ra"}]},
                                             {"allowed_routes": [{"id": b.pk, "name": "rb"}]})
    TeamFactory()
    mark = Since()
    with transaction.atomic():
        key.allowed_routes.remove(b)
        key.allowed_routes.add(b)
    assert mark.entries() == []


def test_separate_saves_of_one_object_stay_separate_entries():
    team = TeamFactory(name="t", description="a")
    mark = Since()
    with transaction.atomic():
        team.description = "b"
        team.save()
        team.rpm_limit = 5
        team.save()
    assert [(before(e), after(e)) for e in mark.entries()] == [
        ({"description": "a"}, {"description": "b"}), ({"rpm_limit": None}, {"rpm_limit": 5})]


def test_a_rolled_back_savepoint_keeps_the_chain_straight():
    from gateway_admin.audit_chain import verify

    with transaction.atomic():
        TeamFactory(name="kept-1")
        with pytest.raises(RuntimeError), transaction.atomic():
            TeamFactory(name="dropped")
            raise RuntimeError
        TeamFactory(name="kept-2")
        revoke_key(issue_key("k").key)
    assert verify().ok
    assert not AuditEntry.objects.filter(object_repr="dropped").exists()


def test_models_and_targets_are_recorded_when_a_provider_cascades():
    provider = ProviderFactory(name="p")
    ModelFactory(provider=provider, name="m1")
    ModelFactory(provider=provider, name="m2")
    mark = Since()
    provider.delete()
    assert sorted((e.action, e.object_type) for e in mark.entries()) == [
        ("delete", "providers.model"), ("delete", "providers.model"), ("delete", "providers.provider")]
    assert not Model.objects.exists() and not RouteTarget.objects.exists() and not Route.objects.exists()


# --- who, from where ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_the_request_is_the_actor_under_asgi_too(admin_user):
    """The middleware runs as async middleware under ASGI (no thread hop of its own)."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    token = await sync_to_async(Token.objects.create)(user=admin_user)
    client = AsyncClient()
    mark = await sync_to_async(Since)()
    response = await client.post("/api/teams/", {"name": "async-team"}, content_type="application/json",
                                 headers={"Authorization": f"Token {token.key}"})
    assert response.status_code == 201, response.content
    entry = (await sync_to_async(mark.entries)(object_type="billing.team"))[0]
    assert (entry.actor_type, entry.username, entry.via) == ("token", "admin", "api")
    assert entry.remote_addr == "127.0.0.1"


def test_who_is_read_from_the_request():
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    request = RequestFactory().post("/oidc/callback/", REMOTE_ADDR="2001:0db8:0000::0001")
    request.user = AnonymousUser()
    actor = audit.actor_from_request(request)
    assert (actor.type, actor.name, actor.via, actor.remote_addr, actor.source) == (
        "anonymous", "anonymous", "web", "2001:db8::1", "POST /oidc/callback/")
    request = RequestFactory().get("/admin/", REMOTE_ADDR="not an address", HTTP_X_FORWARDED_FOR="6.6.6.6")
    request.user = User(username="carol", pk=7)
    actor = audit.actor_from_request(request)
    assert (actor.type, actor.name, actor.user_id, actor.remote_addr) == ("user", "carol", 7, "")
    # X-Forwarded-For is the server's business (uvicorn, FORWARDED_ALLOW_IPS): never read here.
    request = RequestFactory().get("/admin/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6")
    request.user = User(username="carol", pk=7)
    assert audit.actor_from_request(request).remote_addr == "10.0.0.5"


def test_a_guardrail_with_its_scope_from_gateway_import_is_one_entry(tmp_path):
    route = RouteFactory(name="chat-default")
    team = TeamFactory(name="research")
    mark = Since()
    _import(tmp_path, """
guardrails:
  - name: pii-default
    kind: pii
    stage: both
    action: redact
    scope: {routes: [chat-default], teams: [research]}
""")
    entry = mark.one()
    assert (entry.action, entry.object_type, entry.object_repr) == ("create", "guardrails.guardrail", "pii-default")
    assert after(entry)["routes"] == [{"id": route.pk, "name": "chat-default"}]
    assert after(entry)["teams"] == [{"id": team.pk, "name": "research"}] and after(entry)["keys"] == []
    mark = Since()
    _import(tmp_path, """
guardrails:
  - name: pii-default
    kind: pii
    stage: both
    action: block
""")
    entry = mark.one()  # the action and the scope, one change
    assert before(entry)["action"] == "redact" and after(entry)["action"] == "block"
    assert after(entry)["routes"] == [] and after(entry)["teams"] == []


def test_the_public_hook_records_a_write_no_signal_sees():
    team = TeamFactory(name="raw", rpm_limit=1)
    mark = Since()
    with transaction.atomic():
        Team.objects.raw("SELECT 1")  # stands for raw SQL the hooks cannot see
        audit.record(team, "update", before={"rpm_limit": 1}, after={"rpm_limit": 2})
    entry = mark.one()
    assert (entry.action, before(entry), after(entry)) == ("update", {"rpm_limit": 1}, {"rpm_limit": 2})
    with pytest.raises(ValueError, match="not an audited model"):
        audit.record(HealthCheck(ok=True), "create")


def test_clearing_a_role_from_the_group_side_records_each_member():
    group = Group.objects.create(name="Finance-test")
    members = [User.objects.create_user(f"m{i}") for i in range(2)]
    group.user_set.add(*members)
    TeamFactory()
    mark = Since()
    group.user_set.clear()
    entries = mark.entries()
    assert sorted(e.object_repr for e in entries) == ["m0", "m1"]
    assert all(before(e) == {"groups": [{"id": group.pk, "name": "Finance-test"}]} and after(e) == {"groups": []}
               for e in entries)
