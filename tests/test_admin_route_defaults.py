"""A route created in the admin's add form keeps every default the docs promise for
the fields the editor did not touch (docs/config.md: retry_on defaults to
[rate_limited, timeout, unavailable, bad_response])."""

from __future__ import annotations

import pytest
from django.urls import reverse

from routing.models import Route, default_retry_on

from .admin_helpers import untouched_form
from .factories import ModelFactory

pytestmark = pytest.mark.django_db


def add_route_untouched(admin_client, **typed) -> Route:
    """GET the add form, type only a name and one target, POST the rest as rendered."""
    url = reverse("admin:routing_route_add")
    data = untouched_form(admin_client.get(url))
    data.update({"name": ["chat-default"], "targets-0-model": [str(ModelFactory().pk)]}, **typed)
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return Route.objects.get(name="chat-default")


def test_a_route_added_without_touching_retry_on_gets_the_documented_default(admin_client):
    route = add_route_untouched(admin_client)

    assert route.retry_on == default_retry_on() == ["rate_limited", "timeout", "unavailable", "bad_response"]


def test_the_add_form_shows_the_default_retry_kinds_ticked(admin_client):
    data = untouched_form(admin_client.get(reverse("admin:routing_route_add")))

    assert data["retry_on"] == default_retry_on()


def test_unticking_every_retry_kind_still_means_never_retry(admin_client):
    url = reverse("admin:routing_route_add")
    data = untouched_form(admin_client.get(url))
    data.pop("retry_on", None)
    data.update({"name": ["chat-default"], "targets-0-model": [str(ModelFactory().pk)]})

    assert admin_client.post(url, data).status_code == 302
    assert Route.objects.get().retry_on == []


def test_editing_a_route_keeps_its_own_retry_kinds(admin_client):
    route = add_route_untouched(admin_client)
    Route.objects.filter(pk=route.pk).update(retry_on=["timeout"])
    url = reverse("admin:routing_route_change", args=[route.pk])

    data = untouched_form(admin_client.get(url))

    assert data["retry_on"] == ["timeout"]
    assert admin_client.post(url, data).status_code == 302
    assert Route.objects.get().retry_on == ["timeout"]
