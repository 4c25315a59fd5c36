"""The admin "Model health" page: per model, the circuit breaker of each route that
uses it (state, rules in words), the model's latency and probes, and a reset that
closes every route's breaker of the model. Before, the page showed one breaker per
model read with the gateway-wide rules, whatever the routes' own rules were."""

from __future__ import annotations

import re

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from routing.breaker import State, get_breaker_store
from routing.catalog import breaker_key, breaker_policy, stats_key

from .factories import HealthCheckFactory, ModelFactory, RouteFactory, RouteTargetFactory

pytestmark = pytest.mark.django_db
LIST = "admin:routing_targethealth_changelist"
STRICT = {"breaker_failure_threshold": 2, "breaker_failure_rate": 0, "breaker_cooldown_s": 60}
OFF = {"breaker_failure_threshold": 0, "breaker_failure_rate": 0}


def on_routes(model, **routes):
    """`model` as a target of each named route (kwargs: name -> route fields)."""
    made = {name: RouteFactory(name=name, **fields) for name, fields in routes.items()}
    for route in made.values():
        RouteTargetFactory(route=route, model=model)
    return made


def fail(model, route, times: int) -> None:
    store, policy = get_breaker_store(), breaker_policy(route)
    for _ in range(times):
        async_to_sync(store.record)(breaker_key(route.pk, model.pk), policy, success=False)


def state(model, route) -> State:
    return async_to_sync(get_breaker_store().status)(breaker_key(route.pk, model.pk), breaker_policy(route)).state


def test_the_list_shows_each_routes_breaker_of_a_model(admin_client):
    flaky, steady, unused = ModelFactory(name="flaky"), ModelFactory(name="steady"), ModelFactory(name="unused")
    routes = on_routes(flaky, strict=STRICT, relaxed=OFF)
    on_routes(steady, other={})
    fail(flaky, routes["strict"], 2)
    fail(flaky, routes["relaxed"], 3)  # rules off: counted, never opens
    async_to_sync(get_breaker_store().record_latency)(stats_key(steady.pk), total_s=0.5, ttft_s=0.1)

    html = admin_client.get(reverse(LIST)).content.decode()

    assert re.search(r"strict: <strong[^>]*>● open</strong> <span class=\"help\">retry in \d+ s</span> "
                     r"<span class=\"help\">· 2 of 2 recent requests failed \(100%\)", html)
    assert re.search(r"relaxed: <strong[^>]*>● closed</strong> .*· 3 of 3 recent requests failed \(100%\)", html)
    assert re.search(r"other: <strong[^>]*>● closed</strong> .*· no recent requests", html)
    assert "no route uses this model" in html  # `unused`
    assert "500 ms total, 100 ms to first token" in html  # the model's latency
    assert unused.name in html


def test_the_detail_page_shows_each_routes_rules_in_words(admin_client):
    model = ModelFactory()
    routes = on_routes(model, strict=STRICT, relaxed=OFF, rated={"breaker_failure_threshold": 0,
                                                                 "breaker_failure_rate": "0.25",
                                                                 "breaker_min_requests": 8, "breaker_window_s": 30})
    fail(model, routes["strict"], 2)

    html = admin_client.get(reverse("admin:routing_targethealth_change", args=[model.pk])).content.decode()

    assert "opens after 2 failures in a row; a trial request after 60 s" in html
    assert "never opens (this route&#x27;s breaker rules are off)" in html
    assert "opens after 25% of at least 8 requests failing within 30 s" in html
    assert re.search(r"<td>strict</td><td><strong[^>]*>● open</strong>", html)
    assert 'name="_save"' not in html


def test_the_list_needs_no_query_per_row(admin_client):
    from providers.models import Model

    counts = []
    for rows in (1, 5):
        while Model.objects.count() < rows:  # each model on two routes, with a probe result
            target = RouteTargetFactory()
            RouteTargetFactory(model=target.model)
            HealthCheckFactory(model=target.model)
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse(LIST)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_resetting_a_model_closes_the_breaker_of_every_route_using_it(admin_client):
    model, bystander = ModelFactory(), ModelFactory()
    routes = on_routes(model, first=STRICT, second=STRICT)
    (other,) = on_routes(bystander, third=STRICT).values()
    for route in (*routes.values(), other):
        fail(model if route is not other else bystander, route, 2)
    action = {"action": "reset_breakers", "_selected_action": [model.pk]}

    confirm = admin_client.post(reverse(LIST), action)

    page = confirm.content.decode()
    assert confirm.status_code == 200 and "Yes, reset" in page and "the breakers of first, second" in page
    assert state(model, routes["first"]) is State.OPEN  # nothing happened yet
    done = admin_client.post(reverse(LIST), {**action, "post": "yes"}, follow=True)
    assert "Circuit breaker reset for" in done.content.decode() and "(2 route breakers)" in done.content.decode()
    assert [state(model, r) for r in routes.values()] == [State.CLOSED, State.CLOSED]
    assert state(bystander, other) is State.OPEN  # another model's breakers are left alone
