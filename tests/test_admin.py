"""The admin as a route editor sees it: pages render, broken config is refused with
readable messages before anything is saved, secrets never come back out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from billing.keys import hash_key, issue_key
from billing.models import UsageRecord, VirtualKey
from providers.models import Model, Provider
from routing.models import Route, RouteTarget

from .factories import ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory, TeamFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-live-very-secret-provider-key-7f3a"


def management(prefix: str, total: int = 0, initial: int = 0) -> dict[str, int]:
    return {
        f"{prefix}-TOTAL_FORMS": total,
        f"{prefix}-INITIAL_FORMS": initial,
        f"{prefix}-MIN_NUM_FORMS": 0,
        f"{prefix}-MAX_NUM_FORMS": 1000,
    }


def provider_data(**overrides) -> dict:
    data = {
        "name": "openai-prod",
        "kind": "openai",
        "base_url": "",
        "api_key": SECRET,
        "timeout_s": "30",
        "options": "{}",
        "enabled": "on",
        **management("models"),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def route_data(targets: list[dict], **overrides) -> dict:
    data = {
        "name": "chat-default",
        "description": "",
        "strategy": "fallback",
        "timeout_s": "60",
        "enabled": "on",
        "max_attempts": "2",
        "backoff_base_ms": "200",
        "backoff_max_ms": "5000",
        "retry_after_cap_s": "10",
        "retry_on": ["rate_limited", "timeout"],
        **management("targets", total=len(targets)),
    }
    for i, target in enumerate(targets):
        for field, value in target.items():
            if value is not None:
                data[f"targets-{i}-{field}"] = value
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def target(model: Model, order: int = 0, enabled: bool = True, **extra) -> dict:
    return {"model": model.pk, "order": order, "weight": 1, "enabled": "on" if enabled else None, **extra}


def errors_text(response) -> str:
    return response.content.decode()


# --- every page renders -------------------------------------------------------------

CHANGELISTS = [
    "providers_provider",
    "providers_model",
    "routing_route",
    "billing_team",
    "billing_virtualkey",
    "billing_usagerecord",
]
ADD_PAGES = ["providers_provider", "providers_model", "routing_route", "billing_team", "billing_virtualkey"]


@pytest.fixture
def config():
    """A small but complete configuration: two providers, a route, a key, a usage row."""
    route = RouteFactory(name="chat-default")
    first = RouteTargetFactory(route=route, order=0)
    RouteTargetFactory(route=route, order=1, model=ModelFactory(provider=ProviderFactory(kind="mock", base_url="")))
    issued = issue_key("search-backend", team=TeamFactory(), routes=[route])
    UsageRecord.objects.create(
        request_id="req-123",
        route_name=route.name,
        provider_name=first.model.provider.name,
        model_name=str(first.model),
        status=UsageRecord.Status.SUCCESS,
        http_status=200,
        prompt_tokens=12,
        completion_tokens=34,
        attempts=2,
        attempt_log=[
            {"target": "p/a", "outcome": "timeout", "latency_ms": 5000, "status": None},
            {"target": "p/b", "outcome": "ok", "latency_ms": 321, "status": None},
        ],
    )
    return {"route": route, "key": issued.key, "model": first.model, "provider": first.model.provider}


def add_config(n: int) -> None:
    """One more route with two targets on their own providers, a key, a usage row."""
    route = RouteFactory()
    for order in range(2):
        RouteTargetFactory(route=route, order=order)
    issue_key(f"key-{n}", team=TeamFactory(), routes=[route])
    UsageRecord.objects.create(request_id=f"req-{n}", route_name=route.name, status="success", http_status=200)


@pytest.mark.parametrize("name", CHANGELISTS)
def test_it_renders_every_changelist(admin_client, config, name):
    assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200


@pytest.mark.parametrize("name", CHANGELISTS)
def test_it_lists_without_a_query_per_row(admin_client, name):
    url = reverse(f"admin:{name}_changelist")
    counts = []
    for rows in (1, 5):
        while Route.objects.count() < rows:
            add_config(Route.objects.count())
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], f"{name}: {counts[0]} queries for 1 row, {counts[1]} for 5"


@pytest.mark.parametrize("name", ADD_PAGES)
def test_it_renders_every_add_page(admin_client, name):
    assert admin_client.get(reverse(f"admin:{name}_add")).status_code == 200


def test_it_renders_every_change_page(admin_client, config):
    for name, obj in [
        ("providers_provider", config["provider"]),
        ("providers_model", config["model"]),
        ("routing_route", config["route"]),
        ("billing_team", config["key"].team),
        ("billing_virtualkey", config["key"]),
        ("billing_usagerecord", UsageRecord.objects.get()),
    ]:
        assert admin_client.get(reverse(f"admin:{name}_change", args=[obj.pk])).status_code == 200, name


def test_it_lists_route_targets_in_order(admin_client, config):
    html = admin_client.get(reverse("admin:routing_route_changelist")).content.decode()
    first, second = (str(t.model) for t in config["route"].targets.order_by("order"))
    assert f"{first} → {second}" in html


# --- routes ---------------------------------------------------------------------------


def test_it_refuses_an_enabled_route_whose_only_target_is_disabled(admin_client):
    model = ModelFactory()
    response = admin_client.post(reverse("admin:routing_route_add"), route_data([target(model, enabled=False)]))
    assert response.status_code == 200
    assert "Route &#x27;chat-default&#x27; is enabled but has no enabled target" in errors_text(response)
    assert not Route.objects.exists()
    assert not RouteTarget.objects.exists()


def test_it_refuses_an_enabled_route_without_targets(admin_client):
    response = admin_client.post(reverse("admin:routing_route_add"), route_data([]))
    assert "has no enabled target" in errors_text(response)
    assert not Route.objects.exists()


def test_it_refuses_a_route_whose_targets_all_point_at_disabled_models(admin_client):
    model = ModelFactory(enabled=False)
    response = admin_client.post(reverse("admin:routing_route_add"), route_data([target(model)]))
    assert "every enabled target points at a disabled model or provider" in errors_text(response)
    assert not Route.objects.exists()


def test_it_refuses_the_same_model_twice(admin_client):
    model = ModelFactory()
    response = admin_client.post(
        reverse("admin:routing_route_add"), route_data([target(model, 0), target(model, 1)])
    )
    assert "lists the same model twice" in errors_text(response)
    assert not Route.objects.exists()


def test_it_saves_a_valid_route_with_two_targets(admin_client):
    primary, backup = ModelFactory(), ModelFactory()
    response = admin_client.post(
        reverse("admin:routing_route_add"), route_data([target(primary, 0), target(backup, 1)])
    )
    assert response.status_code == 302, errors_text(response)
    route = Route.objects.get(name="chat-default")
    assert [t.model for t in route.targets.order_by("order")] == [primary, backup]
    assert route.retry_on == ["rate_limited", "timeout"]


def test_it_saves_a_disabled_route_without_targets(admin_client):
    response = admin_client.post(reverse("admin:routing_route_add"), route_data([], enabled=None))
    assert response.status_code == 302
    assert Route.objects.get().enabled is False


def test_it_refuses_deleting_the_last_target_of_an_enabled_route(admin_client):
    route = RouteFactory(name="chat-default")
    only = RouteTargetFactory(route=route)
    data = route_data([target(only.model, id=only.pk, route=route.pk, DELETE="on")])
    data.update(management("targets", total=1, initial=1))
    response = admin_client.post(reverse("admin:routing_route_change", args=[route.pk]), data)
    assert "has no enabled target" in errors_text(response)
    assert RouteTarget.objects.filter(pk=only.pk).exists()


def test_it_shows_retry_on_as_checkboxes_of_error_kinds(admin_client):
    html = admin_client.get(reverse("admin:routing_route_add")).content.decode()
    assert 'type="checkbox" name="retry_on" value="rate_limited"' in html
    assert 'value="content_policy"' in html


def test_it_saves_an_empty_retry_list(admin_client):
    data = route_data([target(ModelFactory())])
    del data["retry_on"]
    assert admin_client.post(reverse("admin:routing_route_add"), data).status_code == 302
    assert Route.objects.get().retry_on == []


# --- providers and models ---------------------------------------------------------------


def test_it_stores_the_provider_key_encrypted(admin_client):
    response = admin_client.post(reverse("admin:providers_provider_add"), provider_data())
    assert response.status_code == 302, errors_text(response)
    provider = Provider.objects.get(name="openai-prod")
    assert provider.api_key == SECRET
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM providers_provider WHERE id = %s", [provider.pk])
        (raw,) = cursor.fetchone()
    raw = bytes(raw) if not isinstance(raw, str) else raw.encode()
    assert SECRET.encode() not in raw
    assert b"very-secret" not in raw


def test_it_never_renders_the_provider_key(admin_client):
    provider = ProviderFactory(api_key=SECRET)
    html = admin_client.get(reverse("admin:providers_provider_change", args=[provider.pk])).content.decode()
    assert SECRET not in html
    assert "…7f3a" in html  # the masked tail tells which key is set
    assert SECRET not in admin_client.get(reverse("admin:providers_provider_changelist")).content.decode()


def test_it_never_renders_the_provider_key_to_view_only_users(client):
    provider = ProviderFactory(api_key=SECRET)
    viewer = User.objects.create_user("viewer", password="x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_provider"))
    client.force_login(viewer)
    response = client.get(reverse("admin:providers_provider_change", args=[provider.pk]))
    assert response.status_code == 200
    assert SECRET not in response.content.decode()
    assert "…7f3a" in response.content.decode()


def test_it_keeps_the_provider_key_when_left_blank(admin_client):
    provider = ProviderFactory(name="openai-prod", api_key=SECRET)
    response = admin_client.post(
        reverse("admin:providers_provider_change", args=[provider.pk]), provider_data(api_key="", timeout_s="12")
    )
    assert response.status_code == 302, errors_text(response)
    provider.refresh_from_db()
    assert provider.api_key == SECRET
    assert str(provider.timeout_s) == "12.0"


def test_it_replaces_or_clears_the_provider_key_on_request(admin_client):
    provider = ProviderFactory(name="openai-prod", api_key=SECRET)
    url = reverse("admin:providers_provider_change", args=[provider.pk])
    assert admin_client.post(url, provider_data(api_key="env:OPENAI_API_KEY")).status_code == 302
    provider.refresh_from_db()
    assert provider.api_key == "env:OPENAI_API_KEY"
    assert admin_client.post(url, provider_data(api_key="", clear_api_key="on")).status_code == 302
    provider.refresh_from_db()
    assert provider.api_key == ""


def test_it_warns_when_the_referenced_env_variable_is_not_set(admin_client, monkeypatch):
    monkeypatch.delenv("GATEWAY_TEST_UNSET_KEY", raising=False)
    response = admin_client.post(
        reverse("admin:providers_provider_add"), provider_data(api_key="env:GATEWAY_TEST_UNSET_KEY"), follow=True
    )
    assert Provider.objects.get().api_key == "env:GATEWAY_TEST_UNSET_KEY"
    assert "GATEWAY_TEST_UNSET_KEY is not set here" in response.content.decode()


def test_it_refuses_a_malformed_env_reference(admin_client):
    response = admin_client.post(reverse("admin:providers_provider_add"), provider_data(api_key="env:NOT VALID"))
    assert response.status_code == 200
    assert "An environment reference looks like env:VARNAME." in errors_text(response)
    assert not Provider.objects.exists()


def test_it_refuses_an_unknown_provider_kind(admin_client):
    response = admin_client.post(reverse("admin:providers_provider_add"), provider_data(kind="telepathy"))
    assert response.status_code == 200
    assert "Unknown provider kind “telepathy”" in errors_text(response)
    assert "kind &#x27;&#x27;" not in errors_text(response)  # no second message about a value nobody typed
    assert not Provider.objects.exists()


def test_it_refuses_a_missing_base_url(admin_client):
    response = admin_client.post(
        reverse("admin:providers_provider_add"), provider_data(kind="azure_openai_v1", base_url="")
    )
    assert response.status_code == 200
    assert "A base URL is required for kind &#x27;azure_openai_v1&#x27;." in errors_text(response)
    assert not Provider.objects.exists()


def test_it_refuses_bad_provider_options(admin_client):
    response = admin_client.post(
        reverse("admin:providers_provider_add"), provider_data(kind="mock", options='{"failure_rate": 3}')
    )
    assert response.status_code == 200
    assert "must be a number between 0 and 1" in errors_text(response)
    assert not Provider.objects.exists()


def test_it_refuses_a_negative_price(admin_client):
    provider = ProviderFactory()
    response = admin_client.post(
        reverse("admin:providers_model_add"),
        {
            "provider": provider.pk,
            "name": "gpt-4o",
            "upstream_id": "",
            "input_price_per_mtok": "-1",
            "output_price_per_mtok": "2",
            "context_window": "",
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "Prices cannot be negative." in errors_text(response)
    assert not Model.objects.exists()


def test_it_refuses_a_negative_price_in_the_provider_inline(admin_client):
    data = provider_data(**management("models", total=1))
    data.update(
        {
            "models-0-name": "gpt-4o",
            "models-0-input_price_per_mtok": "1",
            "models-0-output_price_per_mtok": "-5",
            "models-0-enabled": "on",
        }
    )
    response = admin_client.post(reverse("admin:providers_provider_add"), data)
    assert response.status_code == 200
    assert "Prices cannot be negative." in errors_text(response)
    assert not Provider.objects.exists()


def test_it_warns_when_disabling_a_provider_leaves_a_route_without_target(admin_client):
    route = RouteFactory(name="chat-default")
    provider = RouteTargetFactory(route=route).model.provider
    data = {**management("form", total=1, initial=1), "form-0-id": provider.pk, "_save": "Save"}
    response = admin_client.post(reverse("admin:providers_provider_changelist"), data, follow=True)
    provider.refresh_from_db()
    assert provider.enabled is False  # the emergency switch still works...
    assert "every enabled target points at a disabled model or provider" in response.content.decode()  # ...loudly


# --- virtual keys ---------------------------------------------------------------------


def test_it_issues_a_key_and_shows_its_secret_once(admin_client):
    route, team = RouteFactory(), TeamFactory()
    response = admin_client.post(
        reverse("admin:billing_virtualkey_add"),
        {"name": "search-backend", "team": team.pk, "allowed_routes": [route.pk], "expires_at_0": "", "expires_at_1": "", "metadata": "{}"},
        follow=True,
    )
    html = response.content.decode()
    secrets = set(re.findall(r"sk-gw-[A-Za-z0-9_-]{20,}", html))
    assert len(secrets) == 1
    secret = secrets.pop()
    assert "only this once" in html
    key = VirtualKey.objects.get()
    assert key.key_hash == hash_key(secret)
    assert key.team == team
    assert list(key.allowed_routes.all()) == [route]
    # Never again: not on the next page, not on the key's own page, and no hash either.
    for url in (reverse("admin:billing_virtualkey_changelist"), reverse("admin:billing_virtualkey_change", args=[key.pk])):
        page = admin_client.get(url).content.decode()
        assert secret not in page
        assert key.key_hash not in page
        assert key.prefix in page


def test_it_refuses_a_new_key_that_is_already_expired(admin_client):
    past = timezone.now() - timedelta(days=1)
    response = admin_client.post(
        reverse("admin:billing_virtualkey_add"),
        {"name": "late", "expires_at_0": past.strftime("%Y-%m-%d"), "expires_at_1": "00:00:00", "metadata": "{}"},
    )
    assert response.status_code == 200
    assert "must expire in the future" in errors_text(response)
    assert not VirtualKey.objects.exists()


def test_it_revokes_selected_keys_after_confirmation(admin_client):
    key = issue_key("search-backend").key
    url = reverse("admin:billing_virtualkey_changelist")
    action = {"action": "revoke_selected", "_selected_action": [key.pk]}

    confirm = admin_client.post(url, action)
    assert confirm.status_code == 200
    assert "Yes, revoke" in confirm.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None  # nothing happens before confirmation

    done = admin_client.post(url, {**action, "post": "yes"}, follow=True)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert "Revoked 1 key" in done.content.decode()


def test_it_revokes_one_key_from_its_page_after_confirmation(admin_client):
    key = issue_key("search-backend").key
    url = reverse("admin:billing_virtualkey_revoke", args=[key.pk])
    assert url in admin_client.get(reverse("admin:billing_virtualkey_change", args=[key.pk])).content.decode()
    assert "Yes, revoke" in admin_client.get(url).content.decode()
    key.refresh_from_db()
    assert key.revoked_at is None
    admin_client.post(url, {"post": "yes"})
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_it_lists_key_status(admin_client):
    issue_key("live-key")
    revoked = issue_key("gone-key").key
    revoked.revoked_at = timezone.now()
    revoked.save()
    issue_key("old-key", expires_at=timezone.now() - timedelta(days=1))
    url = reverse("admin:billing_virtualkey_changelist")
    names = {"live-key", "gone-key", "old-key"}
    for status, name in [("active", "live-key"), ("revoked", "gone-key"), ("expired", "old-key")]:
        html = admin_client.get(url, {"status": status}).content.decode()
        assert name in html, status
        assert not any(other in html for other in names - {name}), status


# --- usage ledger ---------------------------------------------------------------------


def test_it_forbids_adding_changing_and_deleting_usage_records(admin_client, config):
    record = UsageRecord.objects.get()
    assert admin_client.get(reverse("admin:billing_usagerecord_add")).status_code == 403
    change = reverse("admin:billing_usagerecord_change", args=[record.pk])
    assert admin_client.post(change, {"request_id": "forged", "status": "error"}).status_code == 403
    assert admin_client.get(reverse("admin:billing_usagerecord_delete", args=[record.pk])).status_code == 403
    assert admin_client.post(reverse("admin:billing_usagerecord_delete", args=[record.pk]), {"post": "yes"}).status_code == 403
    record.refresh_from_db()
    assert record.request_id == "req-123"


def test_it_shows_the_attempt_log_as_a_table(admin_client, config):
    record = UsageRecord.objects.get()
    html = admin_client.get(reverse("admin:billing_usagerecord_change", args=[record.pk])).content.decode()
    assert "<td>p/a</td><td>timeout</td><td>5000 ms</td>" in html
    assert "<td>p/b</td><td>ok</td><td>321 ms</td>" in html
    assert 'name="_save"' not in html  # read-only: no save button


def test_it_finds_usage_by_request_id(admin_client, config):
    html = admin_client.get(reverse("admin:billing_usagerecord_changelist"), {"q": "req-123"}).content.decode()
    assert "req-123" in html
