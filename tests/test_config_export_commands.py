"""Config as code: routing.config export and round trips, and the gateway_import /
gateway_export commands."""

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

from billing.models import Team
from providers.models import Provider
from routing.catalog import load_table
from routing.config import dump_config, export_config, import_config, load_config_text
from routing.models import Route, RouteTarget
from tests.config_helpers import LITERAL_SECRET, SCHEMA, load, state
from tests.conftest import database_url
from tests.factories import ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory, TeamFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def wipe() -> None:
    RouteTarget.objects.all().delete()
    Route.objects.all().delete()
    Provider.objects.all().delete()
    Team.objects.all().delete()


# --- export and round trips -----------------------------------------------------------


def test_export_then_import_on_the_same_database_changes_nothing():
    import_config(load())
    before = state()

    report = import_config(load_config_text(dump_config(export_config())))

    assert (report.created, report.updated) == (0, 0)
    assert state() == before


def test_export_import_into_empty_database_export_again_is_identical():
    import_config(load())
    # With the secrets: a masked key cannot be created from nothing (test_provider_secrets_masking.py).
    first = dump_config(export_config(include_secrets=True))

    wipe()
    import_config(load_config_text(first))

    assert dump_config(export_config(include_secrets=True)) == first


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
    assert data["providers"][1]["api_key"] == "[masked]"  # import keeps the stored key
    assert export_config(include_secrets=True)["providers"][1]["api_key"] == LITERAL_SECRET


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
    assert set(table.routes) == {
        "chat-default", "chat-fast", "chat-ab", "chat-fastest", "chat-cheap", "chat-tasks", "chat-tiered"
    }
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
