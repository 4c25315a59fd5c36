"""Config as code: routing.config.import_config of valid files, with and without prune."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from billing.keys import issue_key
from billing.models import Team, UsageRecord
from providers.catalog import resolve_api_key
from providers.models import Model, Provider
from routing.catalog import load_table
from routing.config import ConfigError, import_config
from routing.models import Route
from tests.config_helpers import LITERAL_SECRET, load, state, with_changes
from tests.factories import ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory, TeamFactory

pytestmark = pytest.mark.django_db


# --- import -------------------------------------------------------------------------


def test_import_creates_every_entity_with_exact_values(monkeypatch):
    report = import_config(load())

    assert (report.created, report.updated, report.unchanged) == (8, 0, 0)
    a = Provider.objects.get(name="upstream-a")
    assert (a.kind, a.base_url, a.timeout_s, a.options, a.enabled) == (
        "openai", "http://127.0.0.1:18080/v1", Decimal("30"), {}, True
    )
    mini = a.models.get(name="gpt-4o-mini")
    assert mini.upstream_id == "gpt-4o-mini-2024-07-18"
    assert mini.input_price_per_mtok == Decimal("0.15") and mini.output_price_per_mtok == Decimal("0.60")
    assert mini.context_window == 128000
    gpt4o = a.models.get(name="gpt-4o")
    assert gpt4o.upstream_id == "" and gpt4o.effective_upstream_id == "gpt-4o"
    # YAML floats go through str(): 0.1 stays 0.1, not 0.1000000000000000055...
    assert gpt4o.output_price_per_mtok == Decimal("0.1") and gpt4o.input_price_per_mtok == Decimal("2.5")
    b = Provider.objects.get(name="upstream-b")
    assert b.timeout_s == Decimal("12.5") and b.options == {"headers": {"X-Org": "research"}}

    route = Route.objects.get(name="chat-default")
    assert (route.strategy, route.max_attempts, route.retry_after_cap_s, route.description) == (
        "fallback", 2, Decimal("10"), "Default chat route."
    )
    assert route.retry_on == ["rate_limited", "timeout", "unavailable", "bad_response"]
    assert [(str(t.model), t.order, t.weight, t.enabled) for t in route.targets.order_by("order")] == [
        ("upstream-a/gpt-4o-mini", 0, 1, True),
        ("upstream-b/claude", 1, 1, True),
    ]
    assert Team.objects.get(name="research").description == "The research team."

    monkeypatch.setenv("UPSTREAM_A_KEY", "sk-from-env")
    assert a.api_key == "env:UPSTREAM_A_KEY"
    assert resolve_api_key(a.api_key) == ("sk-from-env", "env:UPSTREAM_A_KEY")
    assert resolve_api_key(b.api_key) == (LITERAL_SECRET, None)
    assert "chat-default" in load_table().routes


def test_literal_api_key_is_stored_encrypted():
    import_config(load())

    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key FROM providers_provider WHERE name = %s", ["upstream-b"])
        raw = cursor.fetchone()[0]
    assert LITERAL_SECRET.encode() not in bytes(raw if not isinstance(raw, str) else raw.encode())


def test_second_import_changes_nothing():
    import_config(load())
    before = state()

    report = import_config(load())

    assert (report.created, report.updated, report.unchanged) == (0, 0, 8)
    assert not report.changed
    assert state() == before  # same rows, same updated_at


def test_changed_field_is_reported_as_the_only_update():
    import_config(load())

    report = import_config(with_changes(lambda d: d["providers"][0]["models"][0].update(output_price_per_mtok="0.65")))

    assert (report.created, report.updated, report.unchanged) == (0, 1, 7)
    assert Model.objects.get(name="gpt-4o-mini").output_price_per_mtok == Decimal("0.65")


def test_route_target_list_replaces_targets_in_file_order():
    import_config(load())

    targets = [{"model": "upstream-b/claude"}, {"model": "upstream-a/gpt-4o", "weight": 3}]
    import_config(with_changes(lambda d: d["routes"][0].update(targets=targets)))

    route = Route.objects.get(name="chat-default")
    assert [(str(t.model), t.order, t.weight) for t in route.targets.order_by("order")] == [
        ("upstream-b/claude", 0, 1),
        ("upstream-a/gpt-4o", 1, 3),
    ]


def test_relative_target_order_from_the_admin_is_not_churned():
    import_config(load())
    route = Route.objects.get(name="chat-default")
    route.targets.filter(order=1).update(order=20)
    route.targets.filter(order=0).update(order=10)

    report = import_config(load())

    assert report.count("unchanged", "route") == 2


def test_models_not_listed_are_left_alone():
    import_config(load())
    extra = ModelFactory(provider=Provider.objects.get(name="upstream-a"), name="legacy")

    report = import_config(with_changes(lambda d: d["providers"][0].update(models=[])))

    assert Model.objects.filter(pk=extra.pk, enabled=True).exists()
    assert Model.objects.filter(provider__name="upstream-a").count() == 3
    assert report.count("unchanged", "model") == 1  # upstream-b/claude


def test_absent_api_key_keeps_the_stored_key_and_present_sets_it():
    import_config(load())

    import_config(with_changes(lambda d: d["providers"][1].pop("api_key")))
    assert Provider.objects.get(name="upstream-b").api_key == LITERAL_SECRET

    import_config(with_changes(lambda d: d["providers"][1].update(api_key="env:B_KEY")))
    assert Provider.objects.get(name="upstream-b").api_key == "env:B_KEY"


def test_disabled_route_may_have_no_enabled_target():
    import_config(load())

    parked = {"name": "parked", "enabled": False, "targets": []}
    report = import_config(with_changes(lambda d: d["routes"].append(parked)))

    assert Route.objects.get(name="parked").enabled is False
    assert report.count("created", "route") == 1


def test_dry_run_reports_but_saves_nothing():
    report = import_config(load(), dry_run=True)

    assert report.created == 8
    assert not Provider.objects.exists() and not Route.objects.exists()


# --- prune --------------------------------------------------------------------------


def test_prune_deletes_unreferenced_and_disables_referenced_items():
    import_config(load())
    stray = ProviderFactory(name="stray")
    stray_model = ModelFactory(provider=stray, name="old")
    used_route = RouteFactory(name="used-by-key")
    RouteTargetFactory(route=used_route, model=stray_model)
    RouteFactory(name="unused", enabled=False)
    issue_key("client", routes=[used_route])
    keyed_team = TeamFactory(name="keyed")
    issue_key("team-client", team=keyed_team)
    TeamFactory(name="empty-team")
    lone = ModelFactory(provider=Provider.objects.get(name="upstream-a"), name="lone")
    UsageRecord.objects.create(request_id="r1", route_name="x", model=lone, status="success", http_status=200)

    report = import_config(load(), prune=True)

    assert Route.objects.get(name="used-by-key").enabled is False  # a key still names it
    assert not Route.objects.filter(name="unused").exists()
    assert Model.objects.get(pk=stray_model.pk).enabled is False  # the kept route targets it
    assert Provider.objects.get(name="stray").enabled is False
    assert Model.objects.get(pk=lone.pk).enabled is False  # usage history refers to it
    assert Team.objects.filter(name="keyed").exists()
    assert not Team.objects.filter(name="empty-team").exists()
    assert report.count("kept", "team") == 1
    assert report.count("deleted") == 2 and report.count("disabled") == 4

    again = import_config(load(), prune=True)
    assert not again.changed


def test_prune_refuses_targets_on_models_absent_from_the_file():
    import_config(load())
    ModelFactory(provider=Provider.objects.get(name="upstream-a"), name="legacy")

    with pytest.raises(ConfigError) as exc:
        data = with_changes(lambda d: d["routes"][1]["targets"].append({"model": "upstream-a/legacy"}))
        import_config(data, prune=True)

    assert exc.value.path == "routes[chat-single].targets[1].model"
    assert "--prune" in exc.value.message


def test_prune_leaves_sections_missing_from_the_file_alone():
    import_config(load())

    import_config({"teams": [{"name": "research", "description": "The research team."}]}, prune=True)

    assert Provider.objects.count() == 2 and Route.objects.count() == 2
