"""One contract, two stores: the hot path's composite steps. reserve_seeded() must
behave exactly like ensure_seeded() + reserve(), settle_all() like adjust_tokens() +
settle(); the Redis store does each in one round trip when nothing needs seeding.

Both stores run every `env` test (see tests/limits_helpers.py).
"""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio.connection

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


async def test_reserve_seeded_seeds_once_then_reserves(env):
    s = slot(limit=1000)
    calls: list[str] = []
    assert (await env.store.reserve_seeded([s], 100, loader(850, calls))).ok
    assert calls == [s.key]
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=850, reserved=100)}
    # seeded now: the ledger is not read again, and the limit counts the seeded spend
    refused = await env.store.reserve_seeded([s], 51, loader(0, calls))
    assert refused == Reservation(ok=False, refused=s.key, amount=0)
    assert (await env.store.reserve_seeded([s], 50, loader(0, calls))).ok
    assert calls == [s.key]


async def test_reserve_seeded_only_loads_the_unseeded_slots(env):
    key, team = slot("budget:key", limit=100), slot("budget:team", limit=100)
    await env.seed([key], spent=30)
    calls: list[str] = []
    assert (await env.store.reserve_seeded([key, team], 60, loader(20, calls))).ok
    assert calls == [team.key]
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(30, 60), team.key: SlotUsage(20, 60)}
    refused = await env.store.reserve_seeded([key, team], 11, loader(0, calls))
    assert refused == Reservation(ok=False, refused=key.key, amount=0)  # all or nothing
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(30, 60), team.key: SlotUsage(20, 60)}


async def test_concurrent_reserve_seeded_never_overspends_or_seeds_twice(env):
    s = slot(limit=1000)
    results = await asyncio.gather(
        *(env.store.reserve_seeded([s], 27, loader(100, delay=0.001 * (i % 3))) for i in range(100))
    )
    assert sum(r.ok for r in results) == 900 // 27 == 33
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=100, reserved=33 * 27)}


async def test_reserve_seeded_after_a_reset_reads_the_ledger_again(env):
    s = slot()
    calls: list[str] = []
    await env.store.reserve_seeded([s], 10, loader(5, calls))
    await env.store.reset_slot(s.key)
    await env.store.reserve_seeded([s], 10, loader(15, calls))
    assert calls == [s.key, s.key]
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=15, reserved=10)}


async def test_settle_all_adjusts_tokens_and_settles_slots(env):
    limits = [RateLimit(KEY, None, tokens_per_minute=1000), RateLimit(TEAM, None, tokens_per_minute=5000)]
    s = slot(limit=500)
    await env.seed([s], spent=100)
    decision = await env.store.hit(limits, 400)
    assert (await env.store.reserve([s], 200)).ok
    usage = await env.store.settle_all(limits, decision.bucket, -150, [s], 200, 120)
    assert usage == {s.key: SlotUsage(spent=220, reserved=0)}
    after = await env.store.hit(limits, 0)
    assert (after.limit_tokens, after.remaining_tokens) == (1000, 750)  # 400 estimated, 250 used


async def test_settle_all_with_only_one_side(env):
    limits = [RateLimit(KEY, None, tokens_per_minute=1000)]
    decision = await env.store.hit(limits, 100)
    assert await env.store.settle_all(limits, decision.bucket, 50, [], 0, 0) == {}
    assert (await env.store.hit(limits, 0)).remaining_tokens == 850
    s = slot()
    await env.seed([s], spent=1)
    await env.store.reserve([s], 10)
    assert await env.store.settle_all([], None, 0, [s], 10, 4) == {s.key: SlotUsage(5, 0)}
    assert await env.store.settle_all(limits, None, 999, [], 0, 0) == {}  # no bucket: no adjustment
    assert (await env.store.hit(limits, 0)).remaining_tokens == 850


async def test_settle_all_ignores_a_bucket_that_left_the_window(env):
    limits = [RateLimit(KEY, None, tokens_per_minute=1000)]
    old = await env.store.hit(limits, 100)
    env.advance(61)
    s = slot()
    await env.seed([s])
    await env.store.reserve([s], 10)
    assert await env.store.settle_all(limits, old.bucket, 500, [s], 10, 10) == {s.key: SlotUsage(10, 0)}
    assert (await env.store.hit(limits, 0)).remaining_tokens == 1000


def _count_sends(monkeypatch) -> list:
    sends = []
    original = redis.asyncio.connection.AbstractConnection.send_packed_command

    async def counting(self, command, check_health=True):
        sends.append(command)
        return await original(self, command, check_health)

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", counting)
    return sends


@redis_only
async def test_redis_hot_path_steps_take_one_round_trip_each(redis_store, monkeypatch):
    limits = [RateLimit(KEY, 100, 10_000), RateLimit(TEAM, 1000, 100_000)]
    slots = [slot("budget:key"), slot("budget:team"), slot("budget:global")]
    await redis_store.reserve_seeded(slots, 1, loader(0))  # warm up: scripts, connection, seeding
    await redis_store.settle_all(limits, 0, 0, slots, 1, 1)
    decision = await redis_store.hit(limits, 10)
    sends = _count_sends(monkeypatch)
    assert (await redis_store.reserve_seeded(slots, 5, loader(0))).ok
    assert len(sends) == 1
    await redis_store.settle_all(limits, decision.bucket, 3, slots, 5, 4)
    assert len(sends) == 2
