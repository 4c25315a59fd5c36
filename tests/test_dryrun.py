"""routing.dryrun.explain: what a route would do with a sample request, nobody called."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from routing.catalog import breaker_key

from gateway_project.errors import InvalidRequest
from providers.types import Usage
from routing.breaker import get_breaker_store, reset_breaker_store_for_tests
from routing.dryrun import explain
from routing.health import default_policy

from .factories import ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_breaker_store_for_tests()
    yield
    reset_breaker_store_for_tests()


def route_with(*models, strategy="fallback", **kw):
    route = RouteFactory(strategy=strategy, **kw)
    targets = [RouteTargetFactory(route=route, model=m, order=i) for i, m in enumerate(models)]
    return route, targets


def open_breaker(route, model) -> None:
    """Open the breaker of `route`'s use of `model` (breakers belong to route x model)."""
    store, policy = get_breaker_store(), default_policy()
    for _ in range(policy.failure_threshold):
        async_to_sync(store.record)(breaker_key(route.pk, model.pk), policy, success=False)


def test_it_lists_fallback_candidates_in_order_with_reasons():
    first, second = ModelFactory(), ModelFactory()
    route, _ = route_with(first, second)
    ex = explain(route, "Hello there")
    assert [(r.label, r.reason) for r in ex.candidates] == [(str(first), "first choice"), (str(second), "fallback #1")]
    assert [r.position for r in ex.candidates] == [1, 2]
    assert ex.task is None and ex.excluded == []


def test_it_shows_every_factor_of_a_candidate():
    model = ModelFactory(context_window=128000, quality_score=80, input_price_per_mtok=Decimal("0.150000"))
    route, _ = route_with(model)
    async_to_sync(get_breaker_store().record_latency)(f"model:{model.pk}", total_s=0.8, ttft_s=0.2)
    row = explain(route, "Hello").candidates[0]
    assert (row.quality, row.context_window, row.breaker) == (80, 128000, "closed")
    assert row.price_text == "$0.15 in / $2 out"
    assert row.latency_text == "800 ms (200 ms to first token)"
    assert row.share_text == "1 (100%)"


def test_it_detects_the_task_and_puts_its_targets_first():
    general, coder = ModelFactory(), ModelFactory()
    route, (_, coder_target) = route_with(general, coder, strategy="task")
    coder_target.task_types = ["code_generation"]
    coder_target.save()
    ex = explain(route, "Write a Python function that reverses a string.")
    assert ex.task.task == "code_generation"
    assert ex.task.reason
    assert [r.label for r in ex.candidates] == [str(coder), str(general)]
    assert ex.candidates[0].reason == "serves code_generation"


def test_a_task_hint_overrides_detection():
    route, _ = route_with(ModelFactory(), strategy="task")
    ex = explain(route, "Write a Python function.", task_hint="translation")
    assert ex.task.task == "translation" and ex.task.source == "hint"


def test_it_excludes_models_below_the_minimum_quality_of_a_cost_route():
    cheap_bad = ModelFactory(quality_score=30, input_price_per_mtok=Decimal("0.01"), output_price_per_mtok=Decimal("0.01"))
    good = ModelFactory(quality_score=90, input_price_per_mtok=Decimal("5"), output_price_per_mtok=Decimal("15"))
    fine = ModelFactory(quality_score=70, input_price_per_mtok=Decimal("1"), output_price_per_mtok=Decimal("2"))
    route, _ = route_with(cheap_bad, good, fine, strategy="cost", min_quality=60)
    ex = explain(route, "Summarize this.", max_tokens=100)
    assert [r.label for r in ex.candidates] == [str(fine), str(good)]
    assert ex.candidates[0].reason.startswith("cheapest")
    assert [(r.label, r.reason) for r in ex.excluded] == [
        (str(cheap_bad), "quality 30 is below the route's minimum 60")
    ]


def test_it_estimates_the_cost_of_the_first_candidate_with_max_tokens():
    model = ModelFactory(input_price_per_mtok=Decimal("2"), output_price_per_mtok=Decimal("10"))
    route, _ = route_with(model)
    ex = explain(route, "x" * 400, system="Be brief.", max_tokens=500)
    assert ex.prompt_tokens == (100 + 4) + (3 + 4)  # ~4 characters a token, +4 per message
    assert ex.completion_tokens == 500
    price = ex.route.targets[0].model.price
    assert ex.first_cost == price.cost(Usage(ex.prompt_tokens, 500))
    assert ex.first_cost == (Decimal(111) * 2 + Decimal(500) * 10) / 1_000_000


def test_it_moves_an_open_breaker_to_the_end_and_says_when_it_retries():
    first, second = ModelFactory(), ModelFactory()
    route, _ = route_with(first, second)
    open_breaker(route, first)
    ex = explain(route, "Hello")
    assert [r.label for r in ex.candidates] == [str(second), str(first)]
    tripped = ex.candidates[1]
    assert tripped.breaker == "open" and tripped.reason.endswith("circuit breaker open")
    assert tripped.breaker_text.startswith("open: retry in ")
    assert not ex.all_open


def test_it_lists_switched_off_targets_as_not_considered():
    on = ModelFactory()
    off_model = ModelFactory(enabled=False)
    off_provider = ModelFactory(provider=ProviderFactory(enabled=False))
    route, targets = route_with(on, off_model, off_provider, ModelFactory())
    targets[3].enabled = False
    targets[3].save()
    ex = explain(route, "Hello")
    assert [r.label for r in ex.candidates] == [str(on)]
    assert [why for _, why in ex.unused] == [
        "the model is switched off",
        "the provider is switched off",
        "this target is switched off on the route",
    ]


def test_it_applies_conditional_rules_to_metadata():
    basic, premium = ModelFactory(), ModelFactory()
    route, _ = route_with(
        basic, premium, strategy="conditional",
        rules=[{"when": "metadata.tier == 'premium'", "targets": [f"{premium.provider.name}/{premium.name}"]}],
    )
    ex = explain(route, "Hello", metadata={"tier": "premium"})
    assert [r.label for r in ex.candidates] == [str(premium)]
    assert ex.candidates[0].reason.startswith("rule 1 matched")
    assert [r.label for r in explain(route, "Hello").candidates] == [str(basic), str(premium)]


def test_it_shows_the_weight_share_of_a_load_balanced_route():
    a, b = ModelFactory(), ModelFactory()
    route, targets = route_with(a, b, strategy="loadbalance")
    targets[0].weight = 3
    targets[0].save()
    ex = explain(route, "Hello", rng=random.Random(1))
    shares = {r.label: r.share_text for r in ex.candidates}
    assert shares == {str(a): "3 (75%)", str(b): "1 (25%)"}


def test_it_refuses_a_sample_the_api_would_refuse():
    route, _ = route_with(ModelFactory())
    with pytest.raises(InvalidRequest, match="max_tokens"):
        explain(route, "Hello", max_tokens=0)


def test_it_says_what_the_cache_would_do_without_touching_it():
    route = RouteFactory(name="cached", cache_mode="exact", cache_ttl_s=600)
    RouteTargetFactory(route=route, model=ModelFactory(provider=ProviderFactory(kind="mock", base_url="")))
    notes = dict(explain(route, "What is 2 + 2?").stages)
    assert notes["cache"] == ("exact cache, answers kept 600 s per team; this request is not cacheable "
                              "(temperature is not 0 and the route caches only deterministic requests).")
    route.cache_only_deterministic = False
    route.save()
    notes = dict(explain(route, "What is 2 + 2?").stages)
    assert notes["cache"].endswith("not cached yet: the answer would be stored.")
