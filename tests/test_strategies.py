"""Routing strategies as pure functions: single, fallback, cost, task, conditional, decide().

No database and no network: routes are built directly as RouteInfo/TargetInfo/ModelInfo
by the small builder below (also used by test_strategies_balance.py).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from decimal import Decimal

import pytest

from providers.catalog import ModelInfo, ProviderInfo
from providers.kinds import KINDS
from providers.types import ChatRequest, Price
from routing.breaker import BreakerStatus, LatencyStats, State
from routing.catalog import RouteInfo, TargetInfo
from routing.conditions import parse_rules
from routing.strategies import Signals, decide, estimated_cost
from routing.strategies import conditional as conditional_strategy
from routing.strategies import cost as cost_strategy
from routing.strategies import fallback as fallback_strategy
from routing.strategies import single as single_strategy
from routing.strategies import task as task_strategy
from routing.task_detection import TaskType

# --- builder --------------------------------------------------------------------------
_ids = itertools.count(1)


def model(label: str, *, input_price="1", output_price="1", context_window=None, quality=50) -> ModelInfo:
    """A model "provider/name"; prices are USD per million tokens (as Decimal)."""
    provider_name, _, name = label.partition("/")
    provider = ProviderInfo(
        id=next(_ids), name=provider_name, kind="openai", spec=KINDS["openai"], base_url="http://127.0.0.1:9/v1",
        api_key=None, api_key_ref=None, timeout_s=5.0, options={},
    )  # fmt: skip
    price = Price(Decimal(input_price), Decimal(output_price))
    return ModelInfo(next(_ids), name, name, provider, price, context_window, quality)


def target(label: str, *, weight: int = 1, task_types=(), **model_kw) -> TargetInfo:
    return TargetInfo(model(label, **model_kw), order=0, weight=weight, task_types=frozenset(task_types))


def route(*targets: TargetInfo | str, strategy: str = "fallback", name: str = "chat", **kw) -> RouteInfo:
    """A route over `targets` (TargetInfo or a bare label), numbered in the given order."""
    built = [t if isinstance(t, TargetInfo) else target(t) for t in targets]
    return RouteInfo(
        id=1, name=name, strategy=strategy, timeout_s=30.0, max_attempts=1, backoff_base_s=0.01, backoff_max_s=0.04,
        retry_after_cap_s=10.0, retry_on=frozenset(), created=0,
        targets=tuple(replace(t, order=i) for i, t in enumerate(built)), **kw,
    )  # fmt: skip


def request(text: str = "hello", **kw) -> ChatRequest:
    return ChatRequest(model="chat", messages=[{"role": "user", "content": text}], **kw)


def open_breaker(retry_in_s: float = 20.0, state: State = State.OPEN) -> BreakerStatus:
    return BreakerStatus(state, 5, 10, 5, opened_at=0.0, retry_in_s=retry_in_s, opens=1, probe_in_flight=False)


def latency(total_s: float | None, ttft_s: float | None = None, samples: int = 10) -> LatencyStats:
    return LatencyStats(ttft_s=ttft_s, total_s=total_s, samples=samples)


def by_label(r: RouteInfo) -> dict[str, TargetInfo]:
    return {t.model.label: t for t in r.targets}


def signals(seed: int = 0, **kw) -> Signals:
    return Signals(rng=random.Random(seed), **kw)


def reasons(decision) -> list[str]:
    return [c.reason for c in decision.candidates]


# A 400-character prompt is estimated at (400 + 3) // 4 + 4 = 104 tokens.
PROMPT_400 = "x" * 400
PROMPT_TOKENS = 104


# --- single and fallback ---------------------------------------------------------------
def test_single_uses_only_the_first_target():
    decision = single_strategy(route("a/one", "b/two", "c/three"), request(), signals())
    assert decision.strategy == "single"
    assert decision.labels == ["a/one"]
    assert "single" in decision.candidates[0].reason


def test_single_on_a_route_without_targets_has_no_candidates():
    assert single_strategy(route(), request(), signals()).candidates == []


def test_fallback_keeps_the_configured_order_with_reasons():
    decision = fallback_strategy(route("a/one", "b/two", "c/three"), request(), signals())
    assert decision.strategy == "fallback"
    assert decision.labels == ["a/one", "b/two", "c/three"]
    assert reasons(decision) == ["first choice", "fallback #1", "fallback #2"]


# --- cost ------------------------------------------------------------------------------
def test_estimated_cost_is_prompt_plus_max_tokens():
    t = target("a/m", input_price="2", output_price="10")
    assert estimated_cost(t, 1000, 500) == Decimal("0.007")  # (1000*2 + 500*10) / 1e6
    # Without max_tokens the completion is the reservation's: GATEWAY_RESERVE_COMPLETION_TOKENS
    # (4096 by default), as billing.money estimates it for the budget.
    assert estimated_cost(t, 1000, None) == Decimal("0.04296")  # (1000*2 + 4096*10) / 1e6
    assert estimated_cost(t, 10, None) == Decimal("0.04098")  # (10*2 + 4096*10) / 1e6


@pytest.mark.parametrize(
    "max_tokens, expected",
    [(1000, ["out-cheap/m", "in-cheap/m"]), (1, ["in-cheap/m", "out-cheap/m"])],
    ids=["long-answer", "short-answer"],
)
def test_cost_puts_the_cheapest_for_this_request_first(max_tokens, expected):
    r = route(
        target("in-cheap/m", input_price="1", output_price="10"),
        target("out-cheap/m", input_price="5", output_price="2"),
        strategy="cost",
    )
    decision = cost_strategy(r, request(PROMPT_400, max_tokens=max_tokens), signals())
    assert decision.strategy == "cost"
    assert decision.labels == expected
    assert decision.excluded == []


def test_cost_reason_shows_rank_estimate_and_quality():
    r = route(
        target("a/dear", input_price="10", output_price="10", quality=90),
        target("b/cheap", input_price="5", output_price="2", quality=70),
    )
    decision = cost_strategy(r, request(PROMPT_400, max_tokens=1000), signals())
    # b: (104*5 + 1000*2) / 1e6 = 0.00252
    assert reasons(decision)[0] == "cheapest: ~$0.002520, quality 70"
    assert reasons(decision)[1].startswith("#2 cheapest: ~$")


def test_cost_excludes_models_below_min_quality_with_a_reason():
    r = route(
        target("a/cheap-weak", input_price="0.1", output_price="0.1", quality=59),
        target("b/dear-good", input_price="9", output_price="9", quality=60),
        strategy="cost",
        min_quality=60,
    )
    decision = cost_strategy(r, request(), signals())
    assert decision.labels == ["b/dear-good"]
    assert [c.label for c in decision.excluded] == ["a/cheap-weak"]
    assert decision.excluded[0].reason == "quality 59 is below the route's minimum 60"


def test_cost_excludes_a_context_window_too_small_with_a_reason():
    need = PROMPT_TOKENS + 1000
    r = route(
        target("a/small", input_price="0.1", context_window=need - 1),
        target("b/exact", input_price="5", context_window=need),
        target("c/unknown", input_price="9", context_window=None),
        strategy="cost",
    )
    decision = cost_strategy(r, request(PROMPT_400, max_tokens=1000), signals())
    assert decision.labels == ["b/exact", "c/unknown"]
    assert [c.label for c in decision.excluded] == ["a/small"]
    assert decision.excluded[0].reason == f"needs ~{need} tokens, context window is {need - 1}"


def test_cost_breaks_price_ties_by_higher_quality_then_route_order():
    r = route(
        target("a/low", quality=40),
        target("b/high", quality=90),
        target("c/mid", quality=70),
        target("d/mid-too", quality=70),
        strategy="cost",
    )
    assert cost_strategy(r, request(), signals()).labels == ["b/high", "c/mid", "d/mid-too", "a/low"]


def test_cost_with_every_target_excluded_leaves_no_candidates():
    r = route(
        target("a/weak", quality=10),
        target("b/tiny", quality=90, context_window=50),
        strategy="cost",
        min_quality=50,
    )
    decision = decide(r, request(PROMPT_400), signals())
    assert decision.candidates == []  # the engine answers 503 no_available_target
    assert [c.label for c in decision.excluded] == ["a/weak", "b/tiny"]


# --- task ------------------------------------------------------------------------------
TRANSLATE = "Translate this sentence into French: good morning"


def task_route(*, with_default: bool = True) -> RouteInfo:
    targets = [
        target("a/coder", task_types={"code_generation"}),
        target("b/linguist", task_types={"translation", "summarization"}),
        target("c/polyglot", task_types={"translation"}),
    ]
    if with_default:
        targets.insert(0, target("d/general"))
    return route(*targets, strategy="task")


def test_task_puts_targets_serving_the_task_first_then_defaults():
    decision = task_strategy(task_route(), request(TRANSLATE), signals())
    assert decision.strategy == "task"
    assert decision.task is not None and decision.task.task == TaskType.TRANSLATION
    assert decision.task.source == "rules"
    assert decision.labels == ["b/linguist", "c/polyglot", "d/general"]
    assert reasons(decision) == ["serves translation", "serves translation", "default target (serves any task)"]


def test_task_without_own_targets_uses_the_defaults_only():
    decision = task_strategy(task_route(), request("hello there"), signals())
    assert decision.task.task == TaskType.CHAT
    assert decision.labels == ["d/general"]


def test_task_without_own_or_default_targets_uses_all_targets_in_order():
    decision = task_strategy(task_route(with_default=False), request("hello there"), signals())
    assert decision.labels == ["a/coder", "b/linguist", "c/polyglot"]
    assert all(r == "no target serves chat: all targets in order" for r in reasons(decision))


def test_task_hint_overrides_detection():
    decision = task_strategy(task_route(), request(TRANSLATE), signals(task_hint="code"))
    assert decision.task.task == TaskType.CODE_GENERATION
    assert decision.task.source == "hint"
    assert decision.labels == ["a/coder", "d/general"]


def test_task_unrecognised_hint_falls_back_to_detection():
    decision = task_strategy(task_route(), request(TRANSLATE), signals(task_hint="gibberish"))
    assert decision.task.task == TaskType.TRANSLATION
    assert "not recognised" in decision.task.reason


# --- conditional -----------------------------------------------------------------------
RULES = [
    {"when": "metadata.tier == 'premium'", "targets": ["openai/gpt-4o"]},
    {"when": "max_tokens > 2000", "targets": ["anthropic/claude", "openai/gpt-4o"]},
]


def conditional_route(rules=RULES) -> RouteInfo:
    rules = tuple(parse_rules(rules))
    return route("openai/mini", "openai/gpt-4o", "anthropic/claude", strategy="conditional", rules=rules)


def test_conditional_first_matching_rule_wins():
    req = request(max_tokens=3000, metadata={"tier": "premium"})  # both rules hold
    decision = conditional_strategy(conditional_route(), req, signals())
    assert decision.strategy == "conditional"
    assert decision.labels == ["openai/gpt-4o"]
    assert reasons(decision) == ["rule 1 matched: metadata.tier == 'premium'"]


def test_conditional_rule_targets_come_in_the_listed_order():
    decision = conditional_strategy(conditional_route(), request(max_tokens=3000), signals())
    assert decision.labels == ["anthropic/claude", "openai/gpt-4o"]  # not the route's order
    assert all(r == "rule 2 matched: max_tokens > 2000" for r in reasons(decision))


def test_conditional_without_a_match_uses_all_targets_in_order():
    decision = conditional_strategy(conditional_route(), request(max_tokens=100, metadata={"tier": "free"}), signals())
    assert decision.labels == ["openai/mini", "openai/gpt-4o", "anthropic/claude"]
    assert all(r == "no rule matched: default order" for r in reasons(decision))


TOOLS = [{"type": "function", "function": {"name": n}} for n in ("a", "b")]


@pytest.mark.parametrize(
    "when, req, matches",
    [
        ('metadata.team in ["ml", "search"]', request(metadata={"team": "ml"}), True),
        ('metadata.team in ["ml", "search"]', request(metadata={"team": "ads"}), False),
        ("params.temperature < 0.5", request(params={"temperature": 0.2}), True),
        ("params.temperature < 0.5", request(params={"temperature": 0.9}), False),
        ("max_tokens >= 2000", request(max_tokens=2000), True),
        ("max_tokens >= 2000", request(max_tokens=1999), False),
        ("stream == true", request(stream=True), True),
        ("stream == true", request(stream=False), False),
        (f"prompt_tokens > {PROMPT_TOKENS - 1}", request(PROMPT_400), True),
        (f"prompt_tokens > {PROMPT_TOKENS}", request(PROMPT_400), False),
        ("tools >= 2", request(params={"tools": TOOLS}), True),
        ("tools >= 2", request(params={"tools": TOOLS[:1]}), False),
        ("metadata.tier == 'premium' and stream == true", request(stream=True, metadata={"tier": "premium"}), True),
        ("metadata.tier == 'premium' and stream == true", request(stream=False, metadata={"tier": "premium"}), False),
    ],
)
def test_conditional_reads_request_fields(when, req, matches):
    r = conditional_route([{"when": when, "targets": ["anthropic/claude"]}])
    labels = conditional_strategy(r, req, signals()).labels
    assert labels == (["anthropic/claude"] if matches else ["openai/mini", "openai/gpt-4o", "anthropic/claude"])


def test_conditional_skips_a_rule_whose_models_are_not_in_the_route():
    rules = [
        {"when": "max_tokens > 10", "targets": ["ghost/model"]},
        {"when": "max_tokens > 10", "targets": ["ghost/other", "openai/mini"]},
    ]
    decision = conditional_strategy(conditional_route(rules), request(max_tokens=100), signals())
    assert decision.labels == ["openai/mini"]
    assert reasons(decision) == ["rule 2 matched: max_tokens > 10"]


# --- decide() --------------------------------------------------------------------------
def test_decide_moves_open_breakers_to_the_end_with_a_reason():
    r = route("a/one", "b/two", "c/three")
    b = by_label(r)["b/two"]
    decision = decide(r, request(), signals(breakers={b.key: open_breaker()}))
    assert decision.labels == ["a/one", "c/three", "b/two"]
    assert reasons(decision) == ["first choice", "fallback #2", "fallback #1; circuit breaker open"]


def test_decide_keeps_order_when_every_breaker_is_open():
    r = route("a/one", "b/two")
    decision = decide(r, request(), signals(breakers={t.key: open_breaker() for t in r.targets}))
    assert decision.labels == ["a/one", "b/two"]
    assert all(reason.endswith("; circuit breaker open") for reason in reasons(decision))


@pytest.mark.parametrize(
    "status",
    [open_breaker(0.0), open_breaker(None, State.HALF_OPEN), open_breaker(None, State.CLOSED)],
    ids=["open-cooldown-over", "half-open", "closed"],
)
def test_decide_leaves_breakers_that_may_be_tried_in_place(status):
    r = route("a/one", "b/two")
    decision = decide(r, request(), signals(breakers={by_label(r)["a/one"].key: status}))
    assert decision.labels == ["a/one", "b/two"]
    assert not any("circuit breaker open" in reason for reason in reasons(decision))


def test_decide_applies_the_routes_strategy():
    r = route(target("a/dear", input_price="9"), target("b/cheap", input_price="1"), strategy="cost")
    decision = decide(r, request(), signals())
    assert decision.strategy == "cost"
    assert decision.labels == ["b/cheap", "a/dear"]


def test_decide_with_an_unknown_strategy_falls_back_to_route_order():
    decision = decide(route("a/one", "b/two", strategy="nonsense"), request(), signals())
    assert decision.strategy == "fallback"
    assert decision.labels == ["a/one", "b/two"]
