"""The per-route debug setting for content in spans (Route.trace_content): off by
default, a checkbox in the route's admin form, `trace_content: true` in the config file
(exported only when on), and what the gateway's routing table reads."""

from __future__ import annotations

import pytest
from django.urls import reverse

from routing.catalog import load_table
from routing.config import export_config, import_config
from routing.models import Route
from tests.admin_helpers import untouched_form
from tests.config_helpers import load_routing
from tests.factories import ModelFactory

pytestmark = pytest.mark.django_db


def test_off_unless_ticked_in_the_admin(admin_client):
    url = reverse("admin:routing_route_add")
    data = untouched_form(admin_client.get(url))
    data.update({"name": ["chat-default"], "targets-0-model": [str(ModelFactory().pk)]})
    assert admin_client.post(url, data).status_code == 302
    route = Route.objects.get(name="chat-default")
    assert route.trace_content is False and load_table().routes["chat-default"].trace_content is False
    change = reverse("admin:routing_route_change", args=[route.pk])
    page = admin_client.get(change).content.decode()
    assert 'name="trace_content"' in page and "Prompts and answers in traces" in page
    data = untouched_form(admin_client.get(change))
    data["trace_content"] = ["on"]
    assert admin_client.post(change, data).status_code == 302
    route.refresh_from_db()
    assert route.trace_content is True and load_table().routes["chat-default"].trace_content is True


def test_the_config_file_sets_it_and_exports_it_only_when_on():
    data = load_routing()
    name = data["routes"][0]["name"]
    data["routes"][0]["trace_content"] = True
    import_config(data)
    assert Route.objects.get(name=name).trace_content is True
    routes = {r["name"]: r for r in export_config()["routes"]}
    assert routes[name]["trace_content"] is True
    assert all("trace_content" not in r for n, r in routes.items() if n != name)
