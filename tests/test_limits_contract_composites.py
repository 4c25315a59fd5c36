"""One contract, two stores: the hot path's composite steps. admit() seeds like
ensure_seeded() and decides like hit() + reserve(), all or nothing; settle_all() acts
like adjust_tokens() + settle(); the Redis store does each in one round trip when
nothing needs seeding.

Both stores run every `env` test (see tests/limits_helpers.py).
"""

from __future__ import annotations

import asyncio

from billing.limits import RateLimit, Reservation, SlotUsage
from tests.limits_helpers import (
    KEY,
    TEAM,
    env,  # noqa: F401 - fixture
    redis_only,
    redis_store,  # noqa: F401 - fixture
    slot,
)


def loader(value: int, calls: list | None = None, delay: float = 0.0):
    async def load(key: str) -> int:
        if calls is not None:
            calls.append(key)
        await asyncio.sleep(delay)
        return value

    return load


async def reserve(env, slots, amount, load):
    return (await env.store.admit([], 0, slots, amount, load)).reservation


async def test_admit_seeds_once_then_reserves(env):
    s = slot(limit=1000)
    calls: list[str] = []
    assert (await reserve(env, [s], 100, loader(850, calls))).ok
    assert calls == [s.key]
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=850, reserved=100)}
    # seeded now: the ledger is not read again, and the limit counts the seeded spend
    assert await reserve(env, [s], 51, loader(0, calls)) == Reservation(ok=False, refused=s.key, amount=0)
    assert (await reserve(env, [s], 50, loader(0, calls))).ok
    assert calls == [s.key]


async def test_admit_only_loads_the_unseeded_slots(env):
    key, team = slot("budget:key", limit=100), slot("budget:team", limit=100)
    await env.seed([key], spent=30)
    calls: list[str] = []
    assert (await reserve(env, [key, team], 60, loader(20, calls))).ok
    assert calls == [team.key]
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(30, 60), team.key: SlotUsage(20, 60)}
    refused = await reserve(env, [key, team], 11, loader(0, calls))
    assert refused == Reservation(ok=False, refused=key.key, amount=0)  # all or nothing
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(30, 60), team.key: SlotUsage(20, 60)}


async def test_concurrent_admissions_never_overspend_or_seed_twice(env):
    s = slot(limit=1000)
    results = await asyncio.gather(*(reserve(env, [s], 27, loader(100, delay=0.001 * (i % 3))) for i in range(100)))
    assert sum(r.ok for r in results) == 900 // 27 == 33
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=100, reserved=33 * 27)}


async def test_admit_after_a_reset_reads_the_ledger_again(env):
    s = slot()
    calls: list[str] = []
    await reserve(env, [s], 10, loader(5, calls))
    await env.store.reset_slot(s.key)
    await reserve(env, [s], 10, loader(15, calls))
    assert calls == [s.key, s.key]
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=15, reserved=10)}


async def test_admit_counts_and_reserves_only_when_nothing_refuses(env):
    limits = [RateLimit(KEY, requests_per_minute=3, tokens_per_minute=1000)]
    s = slot(limit=100)
    await env.seed([s])
    ok = await env.store.admit(limits, 10, [s], 60, loader(0))
    assert ok.ok and ok.rate.remaining_requests == 2 and ok.reservation.amount == 60 and ok.reservation.lease
    # the budget refuses: no request, no tokens counted
    broke = await env.store.admit(limits, 10, [s], 41, loader(0))
    assert not broke.ok and broke.rate.allowed and broke.reservation == Reservation(False, s.key, 0)
    probe = await env.store.hit(limits, 0)
    assert (probe.remaining_requests, probe.remaining_tokens) == (1, 990)  # the admitted one and this probe
    assert (await env.store.admit(limits, 10, [s], 1, loader(0))).ok  # the third of 3 per minute
    # a rate limit refuses: nothing reserved, budgets not consulted
    limited = await env.store.admit(limits, 10, [s], 1, loader(0))
    assert limited.reservation is None and not limited.rate.allowed and limited.rate.refused_kind == "requests"
    assert await env.store.usage([s]) == {s.key: SlotUsage(0, 61)}


async def test_admit_without_budgets_is_a_hit(env):
    limits = [RateLimit(KEY, requests_per_minute=1, tokens_per_minute=None)]
    first = await env.store.admit(limits, 5, [], 0, loader(0))
    assert first.ok and first.reservation == Reservation(True, None, 0)  # nothing held: no lease
    second = await env.store.admit(limits, 5, [], 0, loader(0))
    assert second.reservation is None and second.rate.retry_after_s > 0


async def test_settle_all_adjusts_tokens_and_settles_slots(env):
    limits = [RateLimit(KEY, None, tokens_per_minute=1000), RateLimit(TEAM, None, tokens_per_minute=5000)]
    s = slot(limit=500)
    await env.seed([s], spent=100)
    decision = await env.store.hit(limits, 400)
    held = await env.store.reserve([s], 200)
    assert held.ok
    usage = await env.store.settle_all(limits, decision.bucket, -150, [s], held.lease, 120)
    assert usage == {s.key: SlotUsage(spent=220, reserved=0)}
    after = await env.store.hit(limits, 0)
    assert (after.limit_tokens, after.remaining_tokens) == (1000, 750)  # 400 estimated, 250 used


async def test_settle_all_with_only_one_side(env):
    limits = [RateLimit(KEY, None, tokens_per_minute=1000)]
    decision = await env.store.hit(limits, 100)
    assert await env.store.settle_all(limits, decision.bucket, 50, [], None, 0) == {}
    assert (await env.store.hit(limits, 0)).remaining_tokens == 850
    s = slot()
    await env.seed([s], spent=1)
    held = await env.store.reserve([s], 10)
    assert await env.store.settle_all([], None, 0, [s], held.lease, 4) == {s.key: SlotUsage(5, 0)}
    assert await env.store.settle_all(limits, None, 999, [], None, 0) == {}  # no bucket: no adjustment
    assert (await env.store.hit(limits, 0)).remaining_tokens == 850


async def test_settle_all_ignores_a_bucket_that_left_the_window(env):
    limits = [RateLimit(KEY, None, tokens_per_minute=1000)]
    old = await env.store.hit(limits, 100)
    env.advance(61)
    s = slot()
    await env.seed([s])
    held = await env.store.reserve([s], 10)
    assert await env.store.settle_all(limits, old.bucket, 500, [s], held.lease, 10) == {s.key: SlotUsage(10, 0)}
    assert (await env.store.hit(limits, 0)).remaining_tokens == 1000


@redis_only
async def test_redis_hot_path_steps_take_one_round_trip_each(redis_store, redis_sends):
    limits = [RateLimit(KEY, 100, 10_000), RateLimit(TEAM, 1000, 100_000)]
    slots = [slot("budget:key"), slot("budget:team"), slot("budget:global")]
    warm = await redis_store.admit(limits, 10, slots, 1, loader(0))  # warm up: scripts, connection, seeding
    await redis_store.settle_all(limits, 0, 0, slots, warm.reservation.lease, 1)
    sends = redis_sends
    sends.clear()  # count from here: the warm-up above opened the connection and loaded scripts
    admitted = await redis_store.admit(limits, 10, slots, 5, loader(0))
    assert admitted.ok and len(sends) == 1
    await redis_store.settle_all(limits, admitted.rate.bucket, 3, slots, admitted.reservation.lease, 4)
    assert len(sends) == 2
    assert (await redis_store.usage(slots))[slots[0].key] == SlotUsage(spent=5, reserved=0)  # 1 + 4, lease released
