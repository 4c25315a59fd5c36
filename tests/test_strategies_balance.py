"""The statistical strategies: loadbalance (weighted, sticky) and least_latency (EWMA, exploration).

Draws use seeded random.Random instances, so the shares asserted below are exact for a
given seed; the tolerances (±3 points) are still ~3-4 standard deviations wide, so the
tests hold for any seed and fail when the weighting itself is wrong.
"""

from __future__ import annotations

import random
from collections import Counter

from routing.strategies import Signals, decide
from routing.strategies import least_latency as least_latency_strategy
from routing.strategies import loadbalance as loadbalance_strategy
from tests.test_strategies import by_label, latency, open_breaker, reasons, request, route, signals, target

DRAWS = 4000


def first_shares(r, draws: int = DRAWS, seed: int = 1234, strategy=loadbalance_strategy, **signal_kw) -> dict:
    """Share of draws in which each label came first, one rng shared across the draws."""
    rng = random.Random(seed)
    counts = Counter(strategy(r, request(), Signals(rng=rng, **signal_kw)).labels[0] for _ in range(draws))
    return {label: n / draws for label, n in counts.items()}


# --- loadbalance: weighted random --------------------------------------------------------
def test_loadbalance_splits_by_weight():
    r = route(target("a/three", weight=3), target("b/one", weight=1), strategy="loadbalance")
    shares = first_shares(r)
    assert abs(shares["a/three"] - 0.75) <= 0.03
    assert abs(shares["b/one"] - 0.25) <= 0.03


def test_loadbalance_keeps_every_other_target_as_a_fallback():
    r = route(target("a/x", weight=3), target("b/y", weight=1), target("c/z", weight=2), strategy="loadbalance")
    for seed in range(50):
        decision = loadbalance_strategy(r, request(), signals(seed))
        assert decision.strategy == "loadbalance"
        assert sorted(decision.labels) == ["a/x", "b/y", "c/z"]
        rest = [label for label in ["a/x", "b/y", "c/z"] if label != decision.labels[0]]
        assert decision.labels[1:] == rest  # the others in route order
        assert reasons(decision)[1:] == ["fallback #1", "fallback #2"]


def test_loadbalance_never_draws_weight_zero_first_but_keeps_it_as_fallback():
    r = route(target("a/on", weight=1), target("z/off", weight=0), target("b/on", weight=1), strategy="loadbalance")
    shares = first_shares(r, draws=1000)
    assert "z/off" not in shares
    assert abs(shares["a/on"] - 0.5) <= 0.05
    for seed in range(20):
        assert loadbalance_strategy(r, request(), signals(seed)).labels[1:].count("z/off") == 1


def test_loadbalance_with_all_weights_zero_uses_route_order():
    r = route(target("a/one", weight=0), target("b/two", weight=0), strategy="loadbalance")
    assert loadbalance_strategy(r, request(), signals()).labels == ["a/one", "b/two"]


def test_loadbalance_reason_names_weight_and_share():
    r = route(target("a/three", weight=3), target("b/one", weight=1), strategy="loadbalance")
    by_first = {}
    for seed in range(100):
        decision = loadbalance_strategy(r, request(), signals(seed))
        by_first[decision.labels[0]] = decision.candidates[0].reason
    assert by_first == {
        "a/three": "load-balanced arm: weight 3 of 4 (75%), random draw",
        "b/one": "load-balanced arm: weight 1 of 4 (25%), random draw",
    }


def test_loadbalance_excludes_open_breakers_from_the_draw():
    r = route(target("a/big", weight=9), target("b/small", weight=1), strategy="loadbalance")
    breakers = {by_label(r)["a/big"].key: open_breaker()}
    shares = first_shares(r, draws=500, breakers=breakers)
    assert shares == {"b/small": 1.0}
    reason = loadbalance_strategy(r, request(), signals(breakers=breakers)).candidates[0].reason
    assert "weight 1 of 1 (100%)" in reason  # the share is of the healthy pool


def test_loadbalance_draws_over_all_targets_when_every_breaker_is_open():
    r = route(target("a/three", weight=3), target("b/one", weight=1), strategy="loadbalance")
    breakers = {t.key: open_breaker() for t in r.targets}
    shares = first_shares(r, breakers=breakers)
    assert abs(shares["a/three"] - 0.75) <= 0.03
    # decide() leaves the order alone (all are open) and says why.
    decision = decide(r, request(), signals(breakers=breakers))
    assert all(reason.endswith("circuit breaker open") for reason in reasons(decision))


def test_loadbalance_ignores_a_breaker_whose_cooldown_is_over():
    r = route(target("a/big", weight=3), target("b/small", weight=1), strategy="loadbalance")
    shares = first_shares(r, breakers={by_label(r)["a/big"].key: open_breaker(retry_in_s=0.0)})
    assert abs(shares["a/big"] - 0.75) <= 0.03


# --- loadbalance: sticky -----------------------------------------------------------------
def sticky_route(sticky_by: str):
    return route(target("a/three", weight=3), target("b/one", weight=1), strategy="loadbalance", sticky_by=sticky_by)


def test_sticky_by_user_keeps_each_user_on_one_arm():
    r = sticky_route("user")
    for user in ("alice", "bob", "carol", "dave"):
        # A fresh rng per call: stickiness must not depend on the random stream.
        arms = {loadbalance_strategy(r, request(), signals(seed, sticky_id=user)).labels[0] for seed in range(50)}
        assert len(arms) == 1, user


def test_sticky_by_user_splits_users_by_weight():
    r = sticky_route("user")
    arms = Counter(loadbalance_strategy(r, request(), signals(sticky_id=f"user-{i}")).labels[0] for i in range(2000))
    assert abs(arms["a/three"] / 2000 - 0.75) <= 0.03


def test_sticky_by_key_keeps_each_key_on_one_arm_and_splits_keys_by_weight():
    r = sticky_route("key")
    for key in ("key:1", "key:2", "key:3"):
        assert len({loadbalance_strategy(r, request(), signals(s, sticky_id=key)).labels[0] for s in range(30)}) == 1
    arms = Counter(loadbalance_strategy(r, request(), signals(sticky_id=f"key:{i}")).labels[0] for i in range(2000))
    assert abs(arms["a/three"] / 2000 - 0.75) <= 0.03


def test_sticky_reason_says_sticky_and_the_share():
    for sticky_by in ("user", "key"):
        decision = loadbalance_strategy(sticky_route(sticky_by), request(), signals(sticky_id="someone"))
        share = "weight 3 of 4 (75%)" if decision.labels[0] == "a/three" else "weight 1 of 4 (25%)"
        assert decision.candidates[0].reason == f"load-balanced arm: {share}, sticky by {sticky_by}"


def test_not_sticky_when_the_route_says_none():
    r = sticky_route("none")
    arms = {loadbalance_strategy(r, request(), signals(seed, sticky_id="alice")).labels[0] for seed in range(50)}
    assert arms == {"a/three", "b/one"}
    assert "sticky" not in loadbalance_strategy(r, request(), signals(sticky_id="alice")).candidates[0].reason


def test_sticky_route_without_an_id_draws_at_random():
    r = sticky_route("user")
    arms = {loadbalance_strategy(r, request(), signals(seed)).labels[0] for seed in range(50)}
    assert arms == {"a/three", "b/one"}


# --- least_latency -----------------------------------------------------------------------
def latency_route(*targets, explore_rate: float = 0.0):
    return route(*targets, strategy="least_latency", explore_rate=explore_rate)


def stats(r, **by_name) -> dict:
    """{"a": latency(...)} -> {key of the target labelled "a/m": ...}."""
    labels = by_label(r)
    return {labels[f"{name}/m"].stats_key: value for name, value in by_name.items()}


def test_least_latency_puts_the_lowest_ewma_first():
    r = latency_route("a/m", "b/m", "c/m")
    latencies = stats(r, a=latency(0.9), b=latency(0.3), c=latency(0.6))
    decision = least_latency_strategy(r, request(), signals(latencies=latencies))
    assert decision.strategy == "least_latency"
    assert decision.labels == ["b/m", "c/m", "a/m"]
    assert reasons(decision) == ["recent latency 300 ms", "recent latency 600 ms", "recent latency 900 ms"]


def test_least_latency_ranks_streams_by_time_to_first_token():
    r = latency_route("a/m", "b/m")
    latencies = stats(r, a=latency(2.0, ttft_s=0.1), b=latency(0.5, ttft_s=0.4))
    assert least_latency_strategy(r, request(stream=True), signals(latencies=latencies)).labels == ["a/m", "b/m"]
    assert least_latency_strategy(r, request(stream=False), signals(latencies=latencies)).labels == ["b/m", "a/m"]


def test_least_latency_stream_uses_total_latency_when_ttft_is_unknown():
    r = latency_route("a/m", "b/m")
    latencies = stats(r, a=latency(0.3, ttft_s=0.25), b=latency(0.2, ttft_s=None))
    assert least_latency_strategy(r, request(stream=True), signals(latencies=latencies)).labels == ["b/m", "a/m"]


def test_least_latency_tries_unmeasured_targets_first():
    r = latency_route("a/m", "b/m", "c/m", "d/m")
    latencies = stats(r, a=latency(0.1), c=latency(None, samples=0), d=latency(0.05))
    decision = least_latency_strategy(r, request(), signals(latencies=latencies))
    assert decision.labels == ["b/m", "c/m", "d/m", "a/m"]
    assert reasons(decision)[:2] == ["not measured yet: tried to learn its latency"] * 2


def test_least_latency_never_explores_at_rate_zero():
    r = latency_route("a/m", "b/m", "c/m", explore_rate=0.0)
    latencies = stats(r, a=latency(0.5), b=latency(0.1), c=latency(0.9))
    shares = first_shares(r, draws=1000, strategy=least_latency_strategy, latencies=latencies)
    assert shares == {"b/m": 1.0}


def test_least_latency_always_explores_at_rate_one():
    r = latency_route("a/m", "b/m", "c/m", explore_rate=1.0)
    latencies = stats(r, a=latency(0.5), b=latency(0.1), c=latency(0.9))
    rng = random.Random(7)
    explored = set()
    for _ in range(500):
        decision = least_latency_strategy(r, request(), Signals(rng=rng, latencies=latencies))
        assert decision.labels[0] != "b/m"
        assert decision.labels[1] == "b/m"  # the rest keep their ranking
        assert decision.candidates[0].reason.startswith("exploring (100% of requests): recent latency")
        explored.add(decision.labels[0])
    assert explored == {"a/m", "c/m"}


def test_least_latency_explores_at_the_configured_rate():
    r = latency_route("a/m", "b/m", "c/m", explore_rate=0.1)
    latencies = stats(r, a=latency(0.5), b=latency(0.1), c=latency(0.9))
    shares = first_shares(r, strategy=least_latency_strategy, latencies=latencies)
    assert abs(shares["b/m"] - 0.90) <= 0.03
    assert shares.get("a/m", 0) > 0 and shares.get("c/m", 0) > 0


def test_least_latency_with_one_target_does_not_explore():
    r = latency_route("a/m", explore_rate=1.0)
    decision = least_latency_strategy(r, request(), signals(latencies=stats(r, a=latency(0.2))))
    assert reasons(decision) == ["recent latency 200 ms"]


def test_least_latency_under_decide_puts_an_open_fastest_target_last():
    r = latency_route("a/m", "b/m", "c/m")
    latencies = stats(r, a=latency(0.5), b=latency(0.1), c=latency(0.9))
    decision = decide(r, request(), signals(latencies=latencies, breakers={by_label(r)["b/m"].key: open_breaker()}))
    assert decision.labels == ["a/m", "c/m", "b/m"]
    assert reasons(decision)[-1] == "recent latency 100 ms; circuit breaker open"


def test_opening_one_arm_moves_only_its_own_sticky_users():
    r = route(target("a/x"), target("b/y"), target("c/z"), strategy="loadbalance", sticky_by="user")
    users = [f"user-{i}" for i in range(900)]
    before = {u: loadbalance_strategy(r, request(), signals(sticky_id=u)).labels[0] for u in users}
    c_open = {by_label(r)["c/z"].key: open_breaker()}
    after = {u: loadbalance_strategy(r, request(), signals(sticky_id=u, breakers=c_open)).labels[0] for u in users}
    moved = {u for u in users if before[u] != after[u]}
    assert moved == {u for u in users if before[u] == "c/z"}
    assert 200 < len(moved) < 400  # about a third
