"""Config as code: the routing settings (strategies, stickiness, exploration, quality,
task mapping, conditions, circuit breaker) import, export, round-trip and are
validated with errors naming the item and field."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import pytest

from providers.models import Model, Provider
from providers.types import ChatRequest
from routing.catalog import load_table
from routing.config import ConfigError, dump_config, export_config, import_config, load_config_text
from routing.models import Route, RouteTarget
from routing.strategies import Signals, decide
from tests.config_helpers import load, load_routing, state
from tests.factories import RouteFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
BREAKER_FIELDS = ("failure_threshold", "failure_rate", "window_s", "min_requests", "cooldown_s")


def routing_with(edit) -> dict:
    data = load_routing()
    edit(data)
    return data


def route(data: dict, name: str) -> dict:
    return next(r for r in data["routes"] if r["name"] == name)


def breaker(route_obj: Route) -> tuple:
    return tuple(getattr(route_obj, f"breaker_{k}") for k in BREAKER_FIELDS) + (route_obj.when_all_open,)


# --- import -------------------------------------------------------------------------


def test_import_sets_every_routing_setting():
    report = import_config(load_routing())

    assert report.created == 9
    assert {m.name: m.quality_score for m in Model.objects.all()} == {"fast": 40, "smart": 85, "coder": 70}
    routes = {r.name: r for r in Route.objects.all()}
    assert (routes["chat-ab"].strategy, routes["chat-ab"].sticky_by) == ("loadbalance", "user")
    assert [t.weight for t in routes["chat-ab"].targets.order_by("order")] == [3, 1]
    assert routes["chat-fastest"].explore_rate == Decimal("0.25")
    assert routes["chat-cheap"].min_quality == 60
    assert [t.task_types for t in routes["chat-tasks"].targets.order_by("order")] == [
        ["code_generation", "code_review"], []
    ]
    smart = routes["chat-smart"]
    assert smart.rules == [
        {"when": "metadata.tier == 'premium'", "targets": ["mock/smart"]},
        {"when": "max_tokens > 2000 and stream == true", "targets": ["mock/smart", "mock/coder"]},
    ]
    assert breaker(smart) == (3, Decimal("0.25"), 120, 20, 45, "try_anyway")
    # Absent settings take the model defaults; an absent breaker is the global default.
    ab = routes["chat-ab"]
    assert (ab.explore_rate, ab.min_quality, ab.rules) == (Decimal("0.10"), 0, [])
    assert breaker(ab) == (None, None, None, None, None, "fail")
    assert not import_config(load_routing()).changed


def test_settings_reach_the_routing_table():
    import_config(load_routing())

    table = load_table().routes

    assert table["chat-smart"].try_when_all_open is True
    assert table["chat-smart"].breaker.failure_threshold == 3 and table["chat-smart"].breaker.cooldown_s == 45
    assert [r.targets for r in table["chat-smart"].rules] == [("mock/smart",), ("mock/smart", "mock/coder")]
    assert table["chat-tasks"].targets[0].task_types == {"code_generation", "code_review"}
    assert (table["chat-ab"].sticky_by, table["chat-fastest"].explore_rate, table["chat-cheap"].min_quality) == (
        "user", 0.25, 60
    )


def test_omitted_breaker_keys_fall_back_to_the_global_default():
    import_config(load_routing())

    report = import_config(routing_with(lambda d: route(d, "chat-smart").update(breaker={"cooldown_s": 10})))

    assert report.count("updated", "route") == 1
    assert breaker(Route.objects.get(name="chat-smart")) == (None, None, None, None, 10, "fail")
    import_config(routing_with(lambda d: route(d, "chat-smart").update(breaker=None)))
    assert breaker(Route.objects.get(name="chat-smart")) == (None, None, None, None, None, "fail")


def test_changing_only_a_targets_task_types_updates_that_route():
    import_config(load_routing())

    def edit(d):
        route(d, "chat-tasks")["targets"][1]["task_types"] = ["summarization"]

    report = import_config(routing_with(edit))

    assert report.count("updated") == 1 and report.count("updated", "route") == 1
    target = RouteTarget.objects.get(route__name="chat-tasks", model__name="smart")
    assert target.task_types == ["summarization"]


# --- export and round trips -----------------------------------------------------------


def test_export_writes_each_setting_where_it_matters():
    import_config(load_routing())

    data = export_config()
    routes = {r["name"]: r for r in data["routes"]}

    assert [m["quality_score"] for m in data["providers"][0]["models"]] == [70, 40, 85]  # by name
    assert routes["chat-ab"]["sticky_by"] == "user"
    assert routes["chat-fastest"]["explore_rate"] == "0.25"
    assert routes["chat-cheap"]["min_quality"] == 60
    assert [t.get("task_types") for t in routes["chat-tasks"]["targets"]] == [["code_generation", "code_review"], []]
    smart = routes["chat-smart"]
    assert smart["rules"][1] == {
        "when": "max_tokens > 2000 and stream == true", "targets": ["mock/smart", "mock/coder"]
    }
    assert smart["breaker"] == {
        "failure_threshold": 3, "failure_rate": "0.25", "window_s": 120, "min_requests": 20, "cooldown_s": 45,
        "when_all_open": "try_anyway",
    }
    # Settings another strategy reads, at their default, are left out.
    assert not {"sticky_by", "explore_rate", "min_quality"} & set(smart)
    assert not {"explore_rate", "min_quality", "rules", "breaker"} & set(routes["chat-ab"])
    assert "task_types" not in routes["chat-ab"]["targets"][0]


def test_configuration_without_routing_settings_exports_as_before():
    import_config(load())

    text = dump_config(export_config())

    for key in ("sticky_by", "explore_rate", "min_quality", "rules", "breaker", "task_types", "quality_score"):
        assert key not in text


def test_export_then_import_changes_nothing_and_round_trips_through_an_empty_database():
    import_config(load_routing())
    before = state()
    first = dump_config(export_config())

    assert not import_config(load_config_text(first)).changed
    assert state() == before

    RouteTarget.objects.all().delete()
    Route.objects.all().delete()
    Provider.objects.all().delete()
    import_config(load_config_text(first))
    assert dump_config(export_config()) == first


def test_settings_from_the_admin_round_trip_too():
    import_config(load_routing())
    Route.objects.filter(name="chat-ab").update(
        sticky_by="key", explore_rate=Decimal("0.05"), breaker_failure_rate=Decimal("0"), when_all_open="try_anyway"
    )
    first = dump_config(export_config())

    assert "failure_rate: '0'" in first
    assert not import_config(load_config_text(first)).changed


# --- validation -------------------------------------------------------------------------


def _set(name, **values):
    return lambda d: route(d, name).update(values)


def _target(name, i, **values):
    return lambda d: route(d, name)["targets"][i].update(values)


INVALID = {
    "unknown strategy, with a hint": (
        _set("chat-ab", strategy="loadbalancing"), "routes[chat-ab].strategy",
        "unknown strategy 'loadbalancing' (known: single, fallback, loadbalance,",
    ),
    "unknown sticky_by": (_set("chat-ab", sticky_by="users"), "routes[chat-ab].sticky_by", "did you mean 'user'"),
    "explore_rate above 1": (_set("chat-fastest", explore_rate=1.5), "routes[chat-fastest].explore_rate", "less than"),
    "explore_rate below 0": (_set("chat-fastest", explore_rate="-0.1"), "routes[chat-fastest].explore_rate", "greater"),
    "explore_rate too precise": (
        _set("chat-fastest", explore_rate="0.125"), "routes[chat-fastest].explore_rate", "decimal places"
    ),
    "explore_rate not a number": (_set("chat-fastest", explore_rate="often"), "routes[chat-fastest].explore_rate",
                                  "not a number"),
    "min_quality above 100": (_set("chat-cheap", min_quality=101), "routes[chat-cheap].min_quality", "100"),
    "quality_score above 100": (
        lambda d: d["providers"][0]["models"][0].update(quality_score=120),
        "providers[mock].models[fast].quality_score", "100",
    ),
    "unknown task type": (
        _target("chat-tasks", 0, task_types=["code_review", "coding"]),
        "routes[chat-tasks].targets[0].task_types[1]",
        "unknown task type 'coding' (known: chat, code_generation,",
    ),
    "task_types not a list": (
        _target("chat-tasks", 0, task_types="code_review"), "routes[chat-tasks].targets[0].task_types", "a list"
    ),
    "bad rule field": (
        lambda d: route(d, "chat-smart")["rules"][1].update(when="metdata.tier == 'x'"),
        "routes[chat-smart].rules", "rule 2: unknown field 'metdata.tier'",
    ),
    "bad rule value": (
        lambda d: route(d, "chat-smart")["rules"][0].update(when="metadata.tier == premium"),
        "routes[chat-smart].rules", "rule 1: 'premium' is not a value",
    ),
    "rule with an unknown key": (
        lambda d: route(d, "chat-smart")["rules"].append({"when": "stream == true", "target": ["mock/fast"]}),
        "routes[chat-smart].rules", "rule 3: unknown key 'target' (allowed: when, targets); did you mean 'targets'?",
    ),
    "rule without targets": (
        lambda d: route(d, "chat-smart")["rules"].append({"when": "stream == true"}),
        "routes[chat-smart].rules", "rule 3: 'targets' must be a non-empty list",
    ),
    "rules not a list": (_set("chat-smart", rules="premium"), "routes[chat-smart].rules", "expected a list of rules"),
    "rule target not in the route": (
        lambda d: route(d, "chat-smart")["rules"][0].update(targets=["mock/smrt"]),
        "routes[chat-smart].rules",
        "rule 1 names 'mock/smrt', which is not a target of this route (targets: mock/fast, mock/smart, mock/coder)"
        "; did you mean 'mock/smart'?",
    ),
    "conditional route without rules": (
        _set("chat-smart", rules=[]), "routes[chat-smart].rules", "needs at least one rule"
    ),
    "unknown breaker key": (
        lambda d: route(d, "chat-smart")["breaker"].update(cooldown=5), "routes[chat-smart].breaker.cooldown",
        "unknown key (allowed: failure_threshold, failure_rate, window_s, min_requests, cooldown_s, when_all_open)"
        "; did you mean 'cooldown_s'?",
    ),
    "breaker failure_rate above 1": (
        lambda d: route(d, "chat-smart")["breaker"].update(failure_rate=2), "routes[chat-smart].breaker.failure_rate",
        "less than or equal to 1",
    ),
    "negative breaker window": (
        lambda d: route(d, "chat-smart")["breaker"].update(window_s=-5), "routes[chat-smart].breaker.window_s",
        "greater than or equal to 0",
    ),
    "breaker value of the wrong type": (
        lambda d: route(d, "chat-smart")["breaker"].update(min_requests="ten"),
        "routes[chat-smart].breaker.min_requests", "expected an integer, got a string",
    ),
    "unknown when_all_open": (
        lambda d: route(d, "chat-smart")["breaker"].update(when_all_open="retry"),
        "routes[chat-smart].breaker.when_all_open", "unknown when_all_open value 'retry' (known: fail, try_anyway)",
    ),
    "breaker not a mapping": (_set("chat-ab", breaker=5), "routes[chat-ab].breaker", "expected a mapping"),
}


@pytest.mark.parametrize("edit,path,fragment", INVALID.values(), ids=INVALID.keys())
def test_invalid_routing_settings_change_nothing_and_name_item_and_field(edit, path, fragment):
    import_config(load_routing())
    before = state()

    def edits(d):
        d["providers"][0]["models"][1]["quality_score"] = 90  # a valid edit, rolled back too
        edit(d)

    with pytest.raises(ConfigError) as exc:
        import_config(routing_with(edits))

    assert exc.value.path == path
    assert fragment in exc.value.message
    assert state() == before


def test_rule_targets_are_not_checked_against_a_broken_target_list():
    data = routing_with(_target("chat-smart", 2, model="mock/nope"))
    route(data, "chat-smart")["targets"].append("mock/coder")

    with pytest.raises(ConfigError) as exc:
        import_config(data)

    assert [path for path, _ in exc.value.errors] == ["routes[chat-smart].targets[3]"]


# --- prune and routes outside the file ---------------------------------------------------


def test_prune_keeps_routing_settings_and_is_idempotent():
    import_config(load_routing())
    RouteFactory(name="stray", strategy="conditional", rules=[{"when": "stream == true", "targets": []}])

    report = import_config(load_routing(), prune=True)

    assert report.count("deleted", "route") == 1 and not Route.objects.filter(name="stray").exists()
    assert Route.objects.get(name="chat-smart").breaker_cooldown_s == 45
    assert not import_config(load_routing(), prune=True).changed


def test_disabling_what_routes_outside_the_file_need_is_still_refused():
    import_config(load_routing())
    before = state()
    data = load_routing()
    for model in data["providers"][0]["models"]:
        model["enabled"] = False
    data["routes"] = [r for r in data["routes"] if r["name"] != "chat-tasks"]
    for r in data["routes"]:
        r["enabled"] = False

    with pytest.raises(ConfigError) as exc:
        import_config(data)

    assert exc.value.path == "routes[chat-tasks]" and "not in this file" in exc.value.message
    assert state() == before

    import_config(data, prune=True)  # with --prune, chat-tasks is removed instead
    assert not Route.objects.filter(name="chat-tasks").exists()


# --- the demo file -----------------------------------------------------------------------


def ask(name: str, text: str = "Hello there", *, user: str = "alice", seed: int = 7, **kw) -> list[str]:
    req = ChatRequest(model=name, messages=[{"role": "user", "content": text}], **kw)
    return decide(load_table().routes[name], req, Signals(sticky_id=user, rng=random.Random(seed))).labels


def test_demo_has_one_offline_route_per_strategy_that_decides_as_documented():
    import_config(load_config_text((ROOT / "demo" / "demo.yaml").read_text()))
    table = load_table()

    strategies = {r.strategy for r in table.routes.values()}
    assert strategies == {"single", "fallback", "loadbalance", "least_latency", "cost", "task", "conditional"}
    for info in table.routes.values():
        assert info.targets and all(t.model.provider.kind == "mock" for t in info.targets), info.name
        assert ask(info.name), info.name

    assert ask("chat-cheap") == ["mock/mock-smart", "mock/mock-coder"]  # mock-fast's quality is too low
    assert ask("chat-tasks", "Write a Python function that reverses a list")[0] == "mock/mock-coder"
    assert ask("chat-tasks") == ["mock/mock-smart"]
    assert ask("chat-tiered", metadata={"tier": "premium"}) == ["mock/mock-smart"]
    assert ask("chat-tiered") == ["mock/mock-fast", "mock/mock-smart"]
    # Sticky by user: each user keeps one arm whatever the draw; users split across both arms.
    assert len({ask("chat-ab", seed=seed)[0] for seed in range(20)}) == 1
    assert {ask("chat-ab", user=f"user-{i}")[0] for i in range(20)} == {"mock/mock-fast", "mock/mock-smart"}
    assert table.routes["chat-default"].try_when_all_open is True
