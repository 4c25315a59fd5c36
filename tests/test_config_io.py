"""Config as code: routing.config and the gateway_import / gateway_export commands."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from billing.keys import issue_key
from billing.models import Team, UsageRecord
from providers.catalog import resolve_api_key
from providers.models import Model, Provider
from routing.catalog import load_table
from routing.config import ConfigError, dump_config, export_config, import_config, load_config_text
from routing.models import Route, RouteTarget
from tests.conftest import database_url
from tests.factories import ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory, TeamFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
LITERAL_SECRET = "sk-literal-upstream-secret-7f3a9c"

SCHEMA = """
providers:
  - name: upstream-a
    kind: openai
    base_url: http://127.0.0.1:18080/v1
    api_key: env:UPSTREAM_A_KEY
    timeout_s: 30
    options: {}
    enabled: true
    models:
      - name: gpt-4o-mini
        upstream_id: gpt-4o-mini-2024-07-18
        input_price_per_mtok: "0.15"
        output_price_per_mtok: "0.60"
        context_window: 128000
        enabled: true
      - name: gpt-4o
        input_price_per_mtok: 2.5
        output_price_per_mtok: 0.1
  - name: upstream-b
    kind: anthropic
    base_url: http://127.0.0.1:18081
    api_key: %s
    timeout_s: "12.5"
    options: {headers: {X-Org: research}}
    models:
      - name: claude
        input_price_per_mtok: 3
        output_price_per_mtok: "15"
routes:
  - name: chat-default
    strategy: fallback
    timeout_s: 60
    max_attempts: 2
    backoff_base_ms: 200
    backoff_max_ms: 5000
    retry_after_cap_s: 10
    retry_on: [rate_limited, timeout, unavailable, bad_response]
    enabled: true
    description: Default chat route.
    targets:
      - model: upstream-a/gpt-4o-mini
        weight: 1
        enabled: true
      - model: upstream-b/claude
  - name: chat-single
    strategy: single
    targets:
      - model: upstream-a/gpt-4o
teams:
  - name: research
    description: The research team.
""" % LITERAL_SECRET


def load(text: str = SCHEMA) -> dict:
    return load_config_text(text)


def state() -> dict:
    """Everything an import may touch, to prove an import changed nothing."""
    return {
        "providers": list(Provider.objects.order_by("pk").values()),
        "models": list(Model.objects.order_by("pk").values()),
        "routes": list(Route.objects.order_by("pk").values()),
        "targets": list(RouteTarget.objects.order_by("pk").values()),
        "teams": list(Team.objects.order_by("pk").values()),
    }


def with_changes(edit) -> dict:
    data = load()
    edit(data)
    return data


def wipe() -> None:
    RouteTarget.objects.all().delete()
    Route.objects.all().delete()
    Provider.objects.all().delete()
    Team.objects.all().delete()


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


# --- invalid files change nothing -------------------------------------------------


def _unknown_model(d):
    d["routes"][0]["targets"].append({"model": "upstream-a/gpt-5"})


INVALID = {
    "unknown model in target": (
        _unknown_model,
        "routes[chat-default].targets[2].model",
        "unknown model 'upstream-a/gpt-5' (known: ",
    ),
    "unknown kind": (
        lambda d: d["providers"][0].update(kind="foo"),
        "providers[upstream-a].kind",
        "unknown provider kind 'foo'",
    ),
    "negative price": (
        lambda d: d["providers"][0]["models"][0].update(input_price_per_mtok="-0.01"),
        "providers[upstream-a].models[gpt-4o-mini].input_price_per_mtok",
        "negative",
    ),
    "too many decimals": (
        lambda d: d["providers"][0]["models"][0].update(input_price_per_mtok="0.1234567"),
        "providers[upstream-a].models[gpt-4o-mini].input_price_per_mtok",
        "decimal places",
    ),
    "unknown key typo": (
        lambda d: d["routes"][0].update(max_attempt=3),
        "routes[chat-default].max_attempt",
        "did you mean 'max_attempts'",
    ),
    "enabled route without enabled target": (
        lambda d: d["routes"][1]["targets"][0].update(enabled=False),
        "routes[chat-single].targets",
        "no enabled target",
    ),
    "string where a list is expected": (
        lambda d: d["routes"][0].update(targets="upstream-a/gpt-4o"),
        "routes[chat-default].targets",
        "expected a list, got a string",
    ),
    "unknown strategy": (
        lambda d: d["routes"][0].update(strategy="roundrobin"),
        "routes[chat-default].strategy",
        "unknown strategy 'roundrobin'",
    ),
    "unknown error kind": (
        lambda d: d["routes"][0].update(retry_on=["timeout", "flaky"]),
        "routes[chat-default].retry_on[1]",
        "unknown error kind 'flaky'",
    ),
    "wrong scalar type": (
        lambda d: d["teams"].append({"name": "x", "description": 3}),
        "teams[x].description",
        "expected a string",
    ),
    "duplicate target": (
        lambda d: d["routes"][0]["targets"].append({"model": "upstream-b/claude"}),
        "routes[chat-default].targets[2].model",
        "already routes[chat-default].targets[1]",
    ),
    "invalid name": (
        lambda d: d["teams"].append({"name": "bad name!"}),
        "teams[bad name!].name",
        "letters, digits",
    ),
    "unknown top-level key": (lambda d: d.update(provider=[]), "provider", "did you mean 'providers'"),
}


@pytest.mark.parametrize("edit,path,fragment", INVALID.values(), ids=INVALID.keys())
def test_invalid_file_changes_nothing_and_names_item_and_field(edit, path, fragment):
    import_config(load())
    # Valid edits alongside the bad one must be rolled back too.
    before = state()

    def edits(d):
        d["teams"][0]["description"] = "changed"
        d["providers"].append({"name": "newcomer", "kind": "mock"})
        edit(d)

    with pytest.raises(ConfigError) as exc:
        import_config(with_changes(edits))

    assert exc.value.path == path
    assert fragment in exc.value.message
    assert f"{path}: " in str(exc.value)
    assert state() == before


def test_invalid_file_into_empty_database_creates_nothing():
    with pytest.raises(ConfigError):
        import_config(with_changes(_unknown_model))

    assert state() == {"providers": [], "models": [], "routes": [], "targets": [], "teams": []}


def test_disabling_a_provider_used_by_a_route_outside_the_file_is_refused():
    import_config(load())
    before = state()
    data = load()
    data["providers"][0]["enabled"] = False
    data["routes"] = []  # chat-single (upstream-a only) is no longer in the file

    with pytest.raises(ConfigError) as exc:
        import_config(data)

    assert exc.value.path == "routes[chat-single]"
    assert "not in this file" in exc.value.message
    assert state() == before


def test_prune_may_disable_a_provider_whose_routes_it_removes():
    import_config(load())
    data = load()
    data["providers"][0]["enabled"] = False
    data["routes"] = []

    import_config(data, prune=True)

    assert not Route.objects.exists()
    assert Provider.objects.get(name="upstream-a").enabled is False


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("providers:\n  - name: a\n   kind: mock\n", "invalid YAML"),
        ("providers: [\n", "invalid YAML"),
        ("teams:\n  - name: a\n    name: b\n", "duplicate key 'name'"),
        ("- just\n- a list\n", "expected a mapping"),
        ("", "expected a mapping"),
    ],
)
def test_bad_yaml_is_a_config_error(text, fragment):
    with pytest.raises(ConfigError) as exc:
        import_config(load_config_text(text))
    assert fragment in str(exc.value)


def test_errors_never_echo_a_secret():
    with pytest.raises(ConfigError) as exc:
        load_config_text(f"providers:\n  - name: a\n    api_key: {LITERAL_SECRET}: oops\n")
    assert LITERAL_SECRET not in str(exc.value)
    assert "line 3" in str(exc.value)

    with pytest.raises(ConfigError) as exc:
        import_config({"providers": [{"name": "a", "kind": "openai", "api_key": "env:" + LITERAL_SECRET + "!"}]})
    assert exc.value.path == "providers[a].api_key"
    assert LITERAL_SECRET not in str(exc.value)


# --- export and round trips -----------------------------------------------------------


def test_export_then_import_on_the_same_database_changes_nothing():
    import_config(load())
    before = state()

    report = import_config(load_config_text(dump_config(export_config())))

    assert (report.created, report.updated) == (0, 0)
    assert state() == before


def test_export_import_into_empty_database_export_again_is_identical():
    import_config(load())
    first = dump_config(export_config())

    wipe()
    import_config(load_config_text(first))

    assert dump_config(export_config()) == first


def test_export_of_factory_built_data_round_trips():
    provider = ProviderFactory(name="p1", api_key="env:P1_KEY", options={"b": 1, "a": {"y": 2, "x": 1}})
    model = ModelFactory(provider=provider, name="m1", input_price_per_mtok=Decimal("0.000125"))
    route = RouteFactory(name="r1", description="two\nlines")
    RouteTargetFactory(route=route, model=model, order=5, weight=2)
    TeamFactory(name="t1")
    first = dump_config(export_config())

    assert "'0.000125'" in first and "'2.00'" in first
    assert import_config(load_config_text(first)).changed is False
    wipe()
    import_config(load_config_text(first))
    assert dump_config(export_config()) == first


def test_export_is_deterministic_and_uses_strings_for_decimals():
    import_config(load())

    data = export_config()

    assert [p["name"] for p in data["providers"]] == ["upstream-a", "upstream-b"]
    assert [m["name"] for m in data["providers"][0]["models"]] == ["gpt-4o", "gpt-4o-mini"]
    mini = data["providers"][0]["models"][1]
    assert mini["input_price_per_mtok"] == "0.15" and mini["output_price_per_mtok"] == "0.60"
    assert data["providers"][0]["timeout_s"] == "30"
    assert [t["model"] for t in data["routes"][0]["targets"]] == ["upstream-a/gpt-4o-mini", "upstream-b/claude"]
    assert dump_config(export_config()) == dump_config(data)


def test_export_never_contains_a_literal_secret():
    import_config(load())

    data = export_config()
    text = dump_config(data)

    assert LITERAL_SECRET not in text
    assert data["providers"][0]["api_key"] == "env:UPSTREAM_A_KEY"
    assert "api_key" not in data["providers"][1]
    assert export_config(include_secrets=True)["providers"][1]["api_key"] == LITERAL_SECRET


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


# --- commands ---------------------------------------------------------------------------


def run(*args, stdin: str | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    extra = {"stdin": io.StringIO(stdin)} if stdin is not None else {}
    call_command(*args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def test_import_command_reads_a_file_and_reports_counts(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text(SCHEMA)

    out, _ = run("gateway_import", str(path))
    assert "providers: 2 created, 0 updated, 0 unchanged" in out
    assert "total:     8 created, 0 updated, 0 unchanged" in out

    out, _ = run("gateway_import", str(path))
    assert "total:     0 created, 0 updated, 8 unchanged" in out


def test_import_command_reads_stdin():
    out, _ = run("gateway_import", "-", stdin=SCHEMA)

    assert "8 created" in out
    assert Route.objects.filter(name="chat-default").exists()


def test_import_command_fails_with_the_path_and_changes_nothing():
    bad = SCHEMA.replace("model: upstream-b/claude", "model: upstream-b/claude-9")

    with pytest.raises(CommandError) as exc:
        run("gateway_import", "-", stdin=bad)

    assert "routes[chat-default].targets[1].model: unknown model 'upstream-b/claude-9'" in str(exc.value)
    assert "nothing was changed" in str(exc.value)
    assert not Provider.objects.exists()


def test_import_command_reports_a_missing_file(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run("gateway_import", str(tmp_path / "missing.yaml"))


def test_export_command_prints_yaml_and_writes_files(tmp_path):
    import_config(load())

    out, err = run("gateway_export")
    assert yaml.safe_load(out) == export_config()
    assert LITERAL_SECRET not in out and err == ""

    target = tmp_path / "out.yaml"
    out, _ = run("gateway_export", "--output", str(target))
    assert out == "" and target.read_text() == dump_config(export_config())


def test_export_command_with_secrets_warns_on_stderr():
    import_config(load())

    out, err = run("gateway_export", "--include-secrets")

    assert LITERAL_SECRET in out
    assert "WARNING" in err and LITERAL_SECRET not in err


def test_demo_file_imports_cleanly_and_serves_its_routes():
    text = (ROOT / "demo" / "demo.yaml").read_text()

    report = import_config(load_config_text(text))

    assert report.updated == 0 and report.created > 0
    table = load_table()
    assert set(table.routes) == {"chat-default", "chat-fast"}
    assert table.disabled == {"chat-premium", "chat-local"}
    assert [t.model.label for t in table.routes["chat-default"].targets] == ["mock-flaky/mock-smart", "mock/mock-smart"]
    assert table.routes["chat-fast"].strategy == "single"
    assert Provider.objects.get(name="mock-flaky").options["failure_rate"] == 0.3
    disabled = set(Provider.objects.filter(enabled=False).values_list("name", flat=True))
    assert disabled == {"openai", "anthropic", "ollama"}
    assert Team.objects.filter(name="demo").exists()
    assert not import_config(load_config_text(text)).changed


@pytest.mark.django_db(transaction=True)
def test_import_command_in_a_real_process_exits_non_zero_on_errors(tmp_path):
    env = {**os.environ, "DATABASE_URL": database_url()}
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCHEMA.replace("kind: openai", "kind: foo"))
    good = tmp_path / "good.yaml"
    good.write_text(SCHEMA)

    failed = subprocess.run(
        [sys.executable, "manage.py", "gateway_import", str(bad)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert failed.returncode != 0
    assert "providers[upstream-a].kind: unknown provider kind 'foo'" in failed.stderr
    assert not Provider.objects.exists()

    with good.open() as stdin:
        ok = subprocess.run(
            [sys.executable, "manage.py", "gateway_import", "-"],
            cwd=ROOT, env=env, stdin=stdin, capture_output=True, text=True,
        )
    assert ok.returncode == 0, ok.stderr
    assert "8 created" in ok.stdout
    assert Provider.objects.count() == 2
