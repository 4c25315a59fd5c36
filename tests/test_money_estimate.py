"""billing.money's estimate: what admission reserves, what the cost strategy ranks by
(and the admin's dry run shows). Pure: models are built as ModelInfo, no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing import money
from providers.types import ChatRequest, Price, Usage
from routing.strategies import Signals
from routing.strategies import cost as cost_strategy
from tests.test_strategies import model, route, target


def req(max_tokens: int | None = None, text: str = "x" * 384, **params) -> ChatRequest:
    """A prompt of 100 estimated tokens (384 characters: 96, plus 4 per message)."""
    return ChatRequest(model="chat", messages=[{"role": "user", "content": text}], max_tokens=max_tokens, params=params)


def test_n_multiplies_the_completion_not_the_prompt():
    m = model("a/m", input_price="2", output_price="10")
    one = money.reservation_estimate(req(500), [m])
    many = money.reservation_estimate(req(500, n=128), [m])
    assert one.cost == Decimal("0.0052")  # (100*2 + 500*10) / 1e6
    assert many.cost == Decimal("0.6402")  # (100*2 + 128*500*10) / 1e6: 123 times as much, not 1
    assert (one.tokens, many.tokens) == (600, 100 + 128 * 500)  # tpm counts every choice too
    assert many.prompt_tokens == 100 and many.completion_tokens == 500


def test_without_max_tokens_the_reserve_is_bounded_by_the_context_window(settings):
    settings.GATEWAY_RESERVE_COMPLETION_TOKENS = 4096
    unknown, small = model("a/open", output_price="1"), model("b/small", output_price="1", context_window=1100)
    assert money.completion_bound(unknown, 100, None) == 4096
    assert money.completion_bound(small, 100, None) == 1000  # what the window leaves after the prompt
    assert money.completion_bound(small, 100, 50) == 50
    assert money.completion_bound(small, 2000, None) == 0  # the prompt alone overflows: nothing more
    assert money.reservation_estimate(req(n=2), [small]).cost == Decimal("0.0021")  # (100 + 2*1000)/1e6


def test_the_priciest_candidate_sets_the_reservation():
    cheap, dear = model("a/cheap", input_price="1", output_price="1"), model("b/dear", input_price="3", output_price="30")
    estimate = money.reservation_estimate(req(10), [cheap, dear])
    assert estimate.cost == Decimal("0.0006") == money.estimated_cost(dear, req(10))  # (100*3 + 10*30) / 1e6
    assert money.reservation_estimate(req(10), []).cost == 0


def test_nonsense_multipliers_never_lower_the_estimate():
    m = model("a/m", input_price="0", output_price="1")
    base = money.reservation_estimate(req(10), [m]).cost
    for n in (0, -3, True, "128", 2.5, None):
        assert money.reservation_estimate(req(10, n=n), [m]).cost == base


def test_a_new_multiplying_parameter_is_one_row(monkeypatch):
    row = money.Multiplier("best_of", prompt=True, completion=True, why="best_of candidates, each billed")
    monkeypatch.setattr(money, "MULTIPLIERS", (*money.MULTIPLIERS, row))
    m = model("a/m", input_price="1", output_price="1")
    assert money.reservation_estimate(req(10, n=2, best_of=3), [m]).cost == Decimal("0.00036")  # (3*100 + 6*10)/1e6


def test_the_cost_strategy_ranks_by_the_same_estimate_n_included():
    r = route(
        target("in-cheap/m", input_price="1", output_price="10"),
        target("out-cheap/m", input_price="20", output_price="2"),
        strategy="cost",
    )
    # one choice of 10 tokens: the prompt dominates; 50 choices: the output does
    assert cost_strategy(r, req(10), Signals()).labels == ["in-cheap/m", "out-cheap/m"]
    decision = cost_strategy(r, req(10, n=50), Signals())
    assert decision.labels == ["out-cheap/m", "in-cheap/m"]
    first = r.targets[1].model
    assert f"~${money.estimated_cost(first, req(10, n=50)):.6f}" in decision.candidates[0].reason


def test_actual_cost_is_price_times_usage_and_never_negative():
    price = Price(Decimal("2"), Decimal("10"))
    assert money.actual_cost(price, Usage(1000, 500)) == Decimal("0.007")
    assert money.actual_cost(price, Usage(-10**9, 0)) == 0


@pytest.mark.parametrize("timeout_s, lease", [(30.0, 60.0), (Decimal("120"), 150.0), (None, money.DEFAULT_LEASE_S)])
def test_a_lease_lasts_the_route_deadline_plus_a_margin(timeout_s, lease):
    assert money.lease_seconds(timeout_s) == lease
