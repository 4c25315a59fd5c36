"""Config as code: invalid files change nothing, and errors name the item and field."""

from __future__ import annotations

import pytest

from providers.models import Provider
from routing.config import ConfigError, import_config, load_config_text
from routing.models import Route
from tests.config_helpers import LITERAL_SECRET, load, state, with_changes

pytestmark = pytest.mark.django_db


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
