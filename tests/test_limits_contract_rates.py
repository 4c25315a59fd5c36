"""One contract, two stores, rate limits: requests and tokens per minute in a sliding
window, key and team scopes, token adjustments and the headers a decision reports; then
the Redis key layout, the limit types' validation and the store factory.

Both stores run every `env` test (see tests/limits_helpers.py).
"""

from __future__ import annotations

import asyncio
import math

import pytest
import redis

from billing.limits import (
    BudgetSlot,
    InProcessLimitStore,
    RateLimit,
    RedisLimitStore,
    get_limit_store,
    reset_limit_store_for_tests,
)
from tests.limits_helpers import (
    KEY,
    REDIS_URL,
    TEAM,
    env,  # noqa: F401 - fixture
    redis_only,
    redis_store,  # noqa: F401 - fixture
    slot,
)


# --- rate limits -----------------------------------------------------------------
async def test_rpm_is_exact_and_the_window_frees_it(env):
    limits = [RateLimit(KEY, requests_per_minute=10, tokens_per_minute=None)]
    assert await env.hits(limits, 10) == [True] * 10
    refused = await env.store.hit(limits, 0)
    assert (refused.allowed, refused.refused_scope, refused.refused_kind) == (False, KEY, "requests")
    assert 0 < refused.retry_after_s <= 60
    assert (refused.limit_requests, refused.remaining_requests) == (10, 0)
    env.advance(60)
    assert await env.hits(limits, 11) == [True] * 10 + [False]


async def test_window_slides_per_second(env):
    limits = [RateLimit(KEY, requests_per_minute=10, tokens_per_minute=None)]
    await env.hits(limits, 4)
    env.advance(30)
    await env.hits(limits, 6)
    refused = await env.store.hit(limits, 0)
    assert not refused.allowed and 28.5 < refused.retry_after_s <= 30  # when the first four leave
    env.advance(refused.retry_after_s)
    assert await env.hits(limits, 1) == [True]  # room at exactly that moment
    env.advance(1)  # (against real Redis the first four may straddle two seconds)
    assert await env.hits(limits, 4) == [True] * 3 + [False]  # only the first four left


async def test_tpm_counts_token_amounts(env):
    limits = [RateLimit(KEY, requests_per_minute=None, tokens_per_minute=1000)]
    assert [(await env.store.hit(limits, t)).allowed for t in (400, 500, 200, 100, 1)] == [
        True, True, False, True, False,
    ]
    refused = await env.store.hit(limits, 1)
    assert (refused.refused_scope, refused.refused_kind, refused.remaining_tokens) == (KEY, "tokens", 0)
    env.advance(60)
    assert (await env.store.hit(limits, 1000)).allowed


async def test_a_request_larger_than_the_limit_never_fits(env):
    too_big = await env.store.hit([RateLimit(KEY, None, tokens_per_minute=100)], 101)
    assert (too_big.allowed, too_big.refused_kind, too_big.retry_after_s) == (False, "tokens", 60.0)
    closed = await env.store.hit([RateLimit(TEAM, requests_per_minute=0, tokens_per_minute=None)], 0)
    assert (closed.allowed, closed.refused_kind, closed.retry_after_s) == (False, "requests", 60.0)


async def test_unset_limits_are_not_checked(env):
    decision = await env.store.hit([RateLimit(KEY, None, None)], 10**9)
    assert decision.allowed and decision.retry_after_s == 0
    assert (decision.limit_requests, decision.remaining_requests, decision.reset_requests_s) == (None, None, None)
    assert (decision.limit_tokens, decision.remaining_tokens, decision.reset_tokens_s) == (None, None, None)
    assert (await env.store.hit([], 5)).allowed


async def test_a_refusing_team_leaves_the_key_untouched(env):
    key = RateLimit(KEY, requests_per_minute=10, tokens_per_minute=10_000)
    team = RateLimit(TEAM, requests_per_minute=2, tokens_per_minute=None)
    assert [(await env.store.hit([key, team], 100)).allowed for _ in range(3)] == [True, True, False]
    refused = await env.store.hit([key, team], 100)
    assert (refused.refused_scope, refused.refused_kind) == (TEAM, "requests")
    alone = await env.store.hit([key], 100)  # the two refusals counted nothing on the key
    assert (alone.remaining_requests, alone.remaining_tokens) == (7, 9_700)
    by_tokens = RateLimit(TEAM, None, tokens_per_minute=250)
    assert not (await env.store.hit([key, by_tokens], 300)).allowed
    assert (await env.store.hit([key], 0)).remaining_tokens == 9_700


async def test_concurrent_hits_admit_exactly_the_limit(env):
    limits = [RateLimit(KEY, requests_per_minute=50, tokens_per_minute=None)]
    decisions = await asyncio.gather(*(env.store.hit(limits, 10) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 50
    assert {d.refused_scope for d in decisions if not d.allowed} == {KEY}
    assert sorted(d.remaining_requests for d in decisions if d.allowed) == list(range(50))


async def test_adjust_tokens_up_and_down_never_below_zero(env):
    limits = [RateLimit(KEY, None, tokens_per_minute=1000), RateLimit(TEAM, None, tokens_per_minute=5000)]
    first = await env.store.hit(limits, 500)
    await env.store.adjust_tokens(limits, first.bucket, 300)  # the answer was longer than estimated
    after = await env.store.hit(limits, 0)
    assert (after.limit_tokens, after.remaining_tokens) == (1000, 200)
    await env.store.adjust_tokens(limits, first.bucket, -1000)  # clamped at 0
    after = await env.store.hit(limits, 0)
    assert (after.limit_tokens, after.remaining_tokens) == (1000, 1000)
    await env.store.adjust_tokens(limits[1:], first.bucket, 4001)  # only the team's bucket
    after = await env.store.hit(limits, 0)
    assert (after.limit_tokens, after.remaining_tokens) == (5000, 999)


async def test_adjust_tokens_ignores_buckets_that_left_the_window(env):
    limits = [RateLimit(KEY, None, tokens_per_minute=1000)]
    old = await env.store.hit(limits, 100)
    env.advance(30)
    recent = await env.store.hit(limits, 100)
    env.advance(31)
    await env.store.adjust_tokens(limits, old.bucket, 500)  # gone: ignored
    await env.store.adjust_tokens(limits, recent.bucket, 50)
    assert (await env.store.hit(limits, 0)).remaining_tokens == 850


async def test_headers_report_the_most_constrained_scope_per_kind(env):
    key = RateLimit(KEY, requests_per_minute=10, tokens_per_minute=1000)
    team = RateLimit(TEAM, requests_per_minute=100, tokens_per_minute=500)
    decision = await env.store.hit([key, team], 100)
    assert decision.allowed and decision.retry_after_s == 0 and decision.refused_scope is None
    assert (decision.limit_requests, decision.remaining_requests) == (10, 9)  # the key's
    assert (decision.limit_tokens, decision.remaining_tokens) == (500, 400)  # the team's
    assert abs(decision.bucket - math.floor(env.now())) <= 1
    for reset in (decision.reset_requests_s, decision.reset_tokens_s):
        assert 58.5 < reset <= 60  # until this request leaves the window
    env.advance(20)
    decision = await env.store.hit([key, team], 0)
    assert (decision.remaining_requests, decision.remaining_tokens) == (8, 400)
    assert 38.5 < decision.reset_requests_s <= 40  # the oldest request leaves first
    refused = await env.store.hit([key, team], 401)
    assert (refused.refused_scope, refused.refused_kind, refused.remaining_tokens) == (TEAM, "tokens", 400)
    assert refused.retry_after_s == pytest.approx(refused.reset_tokens_s)


# --- store specifics -----------------------------------------------------------------
@redis_only
async def test_redis_keys_are_namespaced_and_expire(redis_store):
    sync = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    decision = await redis_store.hit([RateLimit(KEY, 10, 100)], 7)
    kept, expiring = slot("budget:kept", ttl_s=None), slot("budget:month", ttl_s=3600)

    async def load(key: str) -> int:
        return 12

    await redis_store.ensure_seeded([kept, expiring], load)
    lease = (await redis_store.reserve([kept, expiring], 3, lease_s=150)).lease
    assert sorted(sync.keys("*")) == [
        "gw:bud:budget:kept", "gw:bud:budget:kept:leases", "gw:bud:budget:month", "gw:bud:budget:month:leases",
        f"gw:rl:{KEY}",
    ]
    assert sync.hgetall(f"gw:rl:{KEY}") == {f"r{decision.bucket}": "1", f"t{decision.bucket}": "7"}
    assert sync.hgetall("gw:bud:budget:month") == {"spent": "12", "reserved": "3", f"l:{lease}": "3"}
    assert sync.zrange("gw:bud:budget:month:leases", 0, -1) == [lease]
    assert 60 < sync.ttl(f"gw:rl:{KEY}") <= 120
    for key in ("gw:bud:budget:month", "gw:bud:budget:month:leases"):  # the lease set lives as long as its slot
        assert 3500 < sync.ttl(key) <= 3600
    assert sync.ttl("gw:bud:budget:kept") == sync.ttl("gw:bud:budget:kept:leases") == -1
    redis_store.time_offset_s = 61
    await redis_store.hit([RateLimit(KEY, 10, 100)], 0)  # the dead bucket is dropped on the way
    fields = sync.hgetall(f"gw:rl:{KEY}")
    assert len(fields) == 2 and f"r{decision.bucket}" not in fields


# --- types and factory -----------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: RateLimit(KEY, requests_per_minute=-1, tokens_per_minute=None),
        lambda: RateLimit(KEY, requests_per_minute=None, tokens_per_minute=1.5),
        lambda: BudgetSlot("b", limit=-1, blocking=True, ttl_s=None),
        lambda: BudgetSlot("b", limit=10, blocking=True, ttl_s=0),
    ],
)
def test_types_refuse_nonsense(build):
    with pytest.raises(ValueError):
        build()


def test_get_limit_store_follows_redis_url(settings):
    settings.REDIS_URL = ""
    reset_limit_store_for_tests()
    store = get_limit_store()
    assert isinstance(store, InProcessLimitStore) and get_limit_store() is store
    settings.REDIS_URL = REDIS_URL
    reset_limit_store_for_tests()
    store = get_limit_store()
    assert isinstance(store, RedisLimitStore) and store.url == REDIS_URL and get_limit_store() is store
    reset_limit_store_for_tests()
