"""One contract, two stores: the in-process and the Redis limit store behave alike.

The in-process store runs on an injected clock that tests advance; the Redis store
keeps Redis TIME but takes a test-only offset, so windows move on without sleeping.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
import redis
import redis.asyncio.connection

from billing.limits import (
    BudgetSlot,
    InProcessLimitStore,
    RateLimit,
    RedisLimitStore,
    Reservation,
    SlotUsage,
    from_units,
    get_limit_store,
    reset_limit_store_for_tests,
    to_units,
)

REDIS_URL = "redis://127.0.0.1:6379/11"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


REDIS_UP = _redis_up()
KEY = "key:12"
TEAM = "team:3"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.25  # mid-second: bucket maths must not assume whole seconds

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    store: InProcessLimitStore | RedisLimitStore
    advance: Callable[[float], None]  # let at least this much time pass
    now: Callable[[], float]  # the store's idea of the time

    async def hits(self, limits: list[RateLimit], n: int, tokens: int = 0) -> list[bool]:
        return [(await self.store.hit(limits, tokens)).allowed for _ in range(n)]

    async def seed(self, slots: list[BudgetSlot], spent: int = 0) -> None:
        async def load(key: str) -> int:
            return spent

        await self.store.ensure_seeded(slots, load)


@pytest.fixture(params=["memory", "redis"])
async def env(request):
    if request.param == "memory":
        clock = FakeClock()

        def advance(seconds: float) -> None:
            clock.now += seconds + 1e-6  # "at least": float sums may land a hair short

        yield Env(InProcessLimitStore(clock=clock), advance, clock)
        return
    if not REDIS_UP:
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    redis.Redis.from_url(REDIS_URL).flushdb()
    store = RedisLimitStore(REDIS_URL)

    def advance(seconds: float) -> None:
        store.time_offset_s += seconds + 1e-6

    yield Env(store, advance, lambda: time.time() + store.time_offset_s)
    await store.aclose()


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


# --- budgets -----------------------------------------------------------------------
def slot(key: str = "budget:7:2026-11", limit: int = 1000, blocking: bool = True, ttl_s: int | None = 3600):
    return BudgetSlot(key=key, limit=limit, blocking=blocking, ttl_s=ttl_s)


async def test_seeding_reads_the_ledger_once(env):
    calls = []

    async def load(key: str) -> int:
        calls.append(key)
        return 420

    s = slot()
    assert await env.store.usage([s]) == {s.key: SlotUsage(0, 0)}
    await env.store.ensure_seeded([s], load)
    await env.store.ensure_seeded([s], load)
    assert calls == [s.key]
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=420, reserved=0)}


async def test_concurrent_seeders_do_not_add_up(env):
    s, other = slot(), slot("budget:8:2026-11")

    def loader(value: int, delay: float):
        async def load(key: str) -> int:
            await asyncio.sleep(delay)  # both read the ledger before either stores
            return value

        return load

    await asyncio.gather(
        env.store.ensure_seeded([s], loader(100, 0.02)), env.store.ensure_seeded([s], loader(200, 0.01))
    )
    assert (await env.store.usage([s]))[s.key] in (SlotUsage(100, 0), SlotUsage(200, 0))
    await env.store.ensure_seeded([s, other], loader(999, 0))  # only the unseeded one loads
    assert (await env.store.usage([s, other]))[other.key] == SlotUsage(999, 0)


async def test_concurrent_reservations_fit_exactly(env):
    s = slot(limit=1000)
    await env.seed([s])
    results = await asyncio.gather(*(env.store.reserve([s], 27) for _ in range(100)))
    accepted = [r for r in results if r.ok]
    assert len(accepted) == 1000 // 27 == 37
    assert all(r == Reservation(ok=False, refused=s.key, amount=0) for r in results if not r.ok)
    assert all(r.amount == 27 for r in accepted)
    assert await env.store.usage([s]) == {s.key: SlotUsage(spent=0, reserved=37 * 27)}


async def test_alert_only_slots_count_but_never_refuse(env):
    alert = slot("budget:alert", limit=10, blocking=False)
    await env.seed([alert], spent=50)
    assert (await env.store.reserve([alert], 100)).ok
    assert await env.store.settle([alert], 100, 80) == {alert.key: SlotUsage(spent=130, reserved=0)}


async def test_reserve_over_two_slots_is_all_or_nothing(env):
    key, team = slot("budget:key", limit=100), slot("budget:team", limit=50)
    await env.seed([key, team], spent=40)
    refused = await env.store.reserve([key, team], 20)
    assert refused == Reservation(ok=False, refused=team.key, amount=0)
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(40, 0), team.key: SlotUsage(40, 0)}
    assert (await env.store.reserve([key, team], 10)).ok  # exactly at the limit is fine
    assert await env.store.usage([key, team]) == {key.key: SlotUsage(40, 10), team.key: SlotUsage(40, 10)}
    alert_team = slot("budget:team-alert", limit=50, blocking=False)
    await env.seed([alert_team], spent=40)
    assert (await env.store.reserve([key, alert_team], 50)).ok  # only blocking slots refuse
    assert (await env.store.reserve([key, alert_team], 1)) == Reservation(ok=False, refused=key.key, amount=0)


async def test_settle_moves_reserved_into_spent(env):
    s = slot(limit=200)
    await env.seed([s], spent=100)
    assert (await env.store.reserve([s], 50)).ok
    assert await env.store.settle([s], 50, 30) == {s.key: SlotUsage(spent=130, reserved=0)}
    assert (await env.store.reserve([s], 70)).ok
    assert not (await env.store.reserve([s], 1)).ok


async def test_settling_below_the_estimate_frees_the_difference(env):
    s = slot(limit=100)
    await env.seed([s])
    assert (await env.store.reserve([s], 60)).ok
    assert not (await env.store.reserve([s], 60)).ok
    await env.store.settle([s], 60, 20)
    assert (await env.store.reserve([s], 60)).ok
    assert not (await env.store.reserve([s], 21)).ok
    assert await env.store.settle([s], 500, 0) == {s.key: SlotUsage(spent=20, reserved=0)}  # never below 0


async def test_reset_slot_forgets_and_reseeds(env):
    s = slot()
    await env.seed([s], spent=700)
    await env.store.reserve([s], 100)
    await env.store.reset_slot(s.key)
    assert await env.store.usage([s]) == {s.key: SlotUsage(0, 0)}
    # the in-flight request settles against the forgotten slot: nothing is recreated,
    # its cost is in the ledger the next seed reads
    assert await env.store.settle([s], 100, 90) == {s.key: SlotUsage(0, 0)}
    await env.seed([s], spent=790)
    assert await env.store.usage([s]) == {s.key: SlotUsage(790, 0)}
    await env.store.reset_slot("budget:never-seen")  # harmless


async def test_an_unseeded_slot_counts_reservations_but_not_spend(env):
    s = slot(limit=100)
    assert (await env.store.reserve([s], 60)).ok
    assert await env.store.settle([s], 60, 50) == {s.key: SlotUsage(spent=0, reserved=0)}
    await env.seed([s], spent=50)  # the ledger, holding that cost, seeds it
    assert await env.store.usage([s]) == {s.key: SlotUsage(50, 0)}


async def test_amounts_beyond_double_precision_stay_exact(env):
    limit = to_units(Decimal("900000000"))  # 9e18 units: far beyond 2**53, still an int64
    s = slot(limit=limit)
    await env.seed([s], spent=limit - 3)
    assert (await env.store.reserve([s], 2)).ok
    assert not (await env.store.reserve([s], 2)).ok
    assert (await env.store.reserve([s], 1)).ok
    assert (await env.store.reserve([s], 0)).ok  # exactly at the limit: a zero estimate still fits
    assert await env.store.settle([s], 3, 3) == {s.key: SlotUsage(spent=limit, reserved=0)}
    assert not (await env.store.reserve([s], 1)).ok
    assert from_units((await env.store.usage([s]))[s.key].spent) == Decimal("900000000")


async def test_bad_amounts_are_refused(env):
    s = slot()
    for call in (env.store.reserve([s], -1), env.store.settle([s], 1, -1), env.store.hit([], -5)):
        with pytest.raises(ValueError):
            await call
    with pytest.raises(ValueError):
        await env.store.reserve([s], 1.5)


# --- store specifics -----------------------------------------------------------------
def test_in_process_slots_expire_with_their_ttl():
    clock = FakeClock()
    store = InProcessLimitStore(clock=clock)
    s = slot(ttl_s=100)

    async def scenario() -> None:
        async def load(key: str) -> int:
            return 5

        await store.ensure_seeded([s], load)
        clock.now += 99
        await store.reserve([s], 1)  # a write refreshes the expiry
        clock.now += 99
        assert await store.usage([s]) == {s.key: SlotUsage(5, 1)}
        clock.now += 1
        assert await store.usage([s]) == {s.key: SlotUsage(0, 0)}

    asyncio.run(scenario())


redis_only = pytest.mark.skipif(not REDIS_UP, reason=f"Redis unreachable at {REDIS_URL}")


@pytest.fixture
async def redis_store():
    redis.Redis.from_url(REDIS_URL).flushdb()
    store = RedisLimitStore(REDIS_URL)
    yield store
    await store.aclose()


@redis_only
async def test_redis_keys_are_namespaced_and_expire(redis_store):
    sync = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    decision = await redis_store.hit([RateLimit(KEY, 10, 100)], 7)
    kept, expiring = slot("budget:kept", ttl_s=None), slot("budget:month", ttl_s=3600)

    async def load(key: str) -> int:
        return 12

    await redis_store.ensure_seeded([kept, expiring], load)
    await redis_store.reserve([kept, expiring], 3)
    assert sorted(sync.keys("*")) == ["gw:bud:budget:kept", "gw:bud:budget:month", f"gw:rl:{KEY}"]
    assert sync.hgetall(f"gw:rl:{KEY}") == {f"r{decision.bucket}": "1", f"t{decision.bucket}": "7"}
    assert sync.hgetall("gw:bud:budget:month") == {"spent": "12", "reserved": "3"}
    assert 60 < sync.ttl(f"gw:rl:{KEY}") <= 120
    assert 3500 < sync.ttl("gw:bud:budget:month") <= 3600
    assert sync.ttl("gw:bud:budget:kept") == -1
    redis_store.time_offset_s = 61
    await redis_store.hit([RateLimit(KEY, 10, 100)], 0)  # the dead bucket is dropped on the way
    fields = sync.hgetall(f"gw:rl:{KEY}")
    assert len(fields) == 2 and f"r{decision.bucket}" not in fields


@redis_only
async def test_redis_usage_takes_one_round_trip(redis_store, monkeypatch):
    slots = [slot(f"budget:{i}") for i in range(20)]
    await redis_store.usage(slots)  # warm up: the connection handshake
    sends = []
    original = redis.asyncio.connection.AbstractConnection.send_packed_command

    async def counting(self, command, check_health=True):
        sends.append(command)
        return await original(self, command, check_health)

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", counting)
    assert len(await redis_store.usage(slots)) == 20
    assert len(sends) == 1


# --- money and factory -----------------------------------------------------------------
def test_units_convert_ledger_decimals_exactly():
    assert to_units(Decimal("0.0000000001")) == 1
    assert from_units(1) == Decimal("0.0000000001")
    big = Decimal("92233720.3685477580")
    assert to_units(big) == 922_337_203_685_477_580 and from_units(to_units(big)) == big
    huge = Decimal("123456789012345678.9012345678")  # past any float's precision
    assert to_units(huge) == 1_234_567_890_123_456_789_012_345_678 and from_units(to_units(huge)) == huge
    assert str(from_units(15_000_000_000)) == "1.5000000000"
    assert to_units(Decimal("0.00000000015")) == 2 and to_units(Decimal("0.00000000025")) == 2  # as quantize() does
    assert to_units(Decimal("-0.5")) == -5_000_000_000
    with pytest.raises(TypeError):
        to_units(0.1)
    with pytest.raises(ValueError):
        to_units(Decimal("NaN"))


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
