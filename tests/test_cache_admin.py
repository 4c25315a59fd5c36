"""The answer cache in the admin: the route form's cache section, the list's cache
column and filter, and the 'Purge the cache' action (epoch raised, stored answers
deleted, nothing older served)."""

from __future__ import annotations

import asyncio

import pytest
from django.urls import reverse

from routing.cache.store import get_cache_store
from routing.models import Route

from .admin_helpers import config, untouched_form  # noqa: F401 - fixture
from .factories import RouteFactory

pytestmark = pytest.mark.django_db


def test_the_route_form_has_a_cache_section_that_saves(admin_client, config):  # noqa: F811
    route = config["route"]
    url = reverse("admin:routing_route_change", args=[route.pk])
    page = admin_client.get(url)
    html = page.content.decode()
    assert "Answer cache" in html and "x-gateway-cache: bypass" in html
    assert "measured default" in html
    form = untouched_form(page)
    form.update({"cache_mode": ["exact"], "cache_ttl_s": ["900"], "cache_scope": ["key"]})
    response = admin_client.post(url, {k: v for k, v in form.items()})
    assert response.status_code == 302, response.content.decode()[:3000]
    route.refresh_from_db()
    assert (route.cache_mode, route.cache_ttl_s, route.cache_scope) == ("exact", 900, "key")


def test_an_out_of_range_threshold_is_refused_on_the_form(admin_client, config):  # noqa: F811
    route = config["route"]
    url = reverse("admin:routing_route_change", args=[route.pk])
    form = untouched_form(admin_client.get(url))
    form.update({"cache_mode": ["semantic"], "cache_threshold": ["1.7"]})
    response = admin_client.post(url, form)
    assert response.status_code == 200
    assert "less than or equal to 1" in response.content.decode()


def test_the_list_shows_each_routes_cache_briefly(admin_client):
    RouteFactory(name="cached", cache_mode="exact", cache_ttl_s=3600)
    RouteFactory(name="plain")
    html = admin_client.get(reverse("admin:routing_route_changelist")).content.decode()
    assert '<td class="field-cache_short">exact, 1 h, per team</td>' in html
    assert '<td class="field-cache_short">—</td>' in html


def test_purge_raises_the_epoch_and_deletes_the_routes_answers(admin_client):
    route = RouteFactory(name="cached", cache_mode="exact")
    other = RouteFactory(name="other", cache_mode="exact")
    store = get_cache_store()
    asyncio.run(store.set(f"gw:cache:v1:{route.pk}:abc", b"x", 60))
    asyncio.run(store.set(f"gw:cache:v1:{other.pk}:abc", b"y", 60))
    response = admin_client.post(reverse("admin:routing_route_changelist"),
                                 {"action": "purge_cache", "_selected_action": [route.pk]}, follow=True)
    assert "Cache purged for cached" in response.content.decode()
    assert "1 stored answers deleted" in response.content.decode()
    assert Route.objects.get(pk=route.pk).cache_epoch == 1
    assert Route.objects.get(pk=other.pk).cache_epoch == 0
    assert asyncio.run(store.get(f"gw:cache:v1:{route.pk}:abc")) is None
    assert asyncio.run(store.get(f"gw:cache:v1:{other.pk}:abc")) == b"y"
