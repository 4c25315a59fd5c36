"""Editing routes, providers and models in the admin: broken config is refused with
readable messages before anything is saved, provider keys never come back out."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.urls import reverse

from providers.models import Model, Provider
from routing.models import Route, RouteTarget

from .admin_helpers import errors_text
from .factories import ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory

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
