"""The admin as a route editor sees it: every page renders, lists cost a fixed number
of queries whatever the number of rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.keys import issue_key
from billing.models import UsageRecord
from routing.models import Route

from .admin_helpers import config  # noqa: F401  (fixture)
from .factories import RouteFactory, RouteTargetFactory, TeamFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db


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


def add_config(n: int) -> None:
    """One more route with two targets on their own providers, a key, a usage row."""
    route = RouteFactory()
    for order in range(2):
        RouteTargetFactory(route=route, order=order)
    issue_key(f"key-{n}", team=TeamFactory(), routes=[route])
    UsageRecordFactory(request_id=f"req-{n}", route_name=route.name)


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
