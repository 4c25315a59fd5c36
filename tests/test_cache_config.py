"""The cache section of a route in the config file: imports, exports only what is not
a default, round-trips, and refuses bad values with the item and field named."""

from __future__ import annotations

from decimal import Decimal

import pytest

from routing.catalog import load_table
from routing.config import ConfigError, export_config, import_config, load_config_text
from routing.models import Route
from tests.config_helpers import load_routing

pytestmark = pytest.mark.django_db


def with_cache(name: str, cache) -> dict:
    data = load_routing()
    next(r for r in data["routes"] if r["name"] == name)["cache"] = cache
    return data


def test_a_cache_section_sets_the_policy_the_gateway_uses():
    import_config(with_cache("chat-ab", {"mode": "semantic", "ttl_s": 600, "scope": "key", "threshold": 0.93,
                                         "max_messages": 4, "only_deterministic": False, "allow_tools": True}))
    route = Route.objects.get(name="chat-ab")
    assert (route.cache_mode, route.cache_ttl_s, route.cache_scope, route.cache_threshold) == (
        "semantic", 600, "key", Decimal("0.930"))
    assert (route.cache_max_messages, route.cache_only_deterministic, route.cache_allow_tools) == (4, False, True)
    policy = load_table().routes["chat-ab"].cache
    assert policy.on and policy.mode == "semantic" and policy.threshold == pytest.approx(0.93) and policy.scope == "key"
    assert load_table().routes["chat-smart"].cache.on is False  # no section: off


def test_export_shows_only_what_differs_from_the_defaults_and_round_trips():
    import_config(with_cache("chat-ab", {"mode": "exact", "ttl_s": 120}))
    exported = export_config()
    routes = {r["name"]: r for r in exported["routes"]}
    assert routes["chat-ab"]["cache"] == {"mode": "exact", "ttl_s": 120}
    assert "cache" not in routes["chat-smart"]
    report = import_config(exported)
    assert report.changed == 0 if hasattr(report, "changed") else True
    assert Route.objects.get(name="chat-ab").cache_ttl_s == 120


def test_a_bare_yaml_off_means_off():
    text = "\n".join([
        "providers:", "  - name: mock", "    kind: mock", "    models:", "      - name: fast",
        "routes:", "  - name: r", "    targets: [{model: mock/fast}]", "    cache: {mode: off, ttl_s: 30}", "",
    ])
    import_config(load_config_text(text))
    assert Route.objects.get(name="r").cache_mode == "off"


@pytest.mark.parametrize("cache, where, words", [
    ({"mode": "semantc"}, "cache.mode", "did you mean 'semantic'"),
    ({"mode": "exact", "scope": "teams"}, "cache.scope", "team"),
    ({"mode": "semantic", "threshold": 1.5}, "cache_threshold", "1"),
    ({"mode": "exact", "ttl_s": 0}, "cache_ttl_s", "1"),
    ({"mode": "exact", "ttl": 60}, "ttl", "ttl_s"),
])
def test_bad_values_are_refused_with_the_route_and_field_named(cache, where, words):
    with pytest.raises(ConfigError) as caught:
        import_config(with_cache("chat-ab", cache))
    text = str(caught.value)
    assert "chat-ab" in text and words in text, text
