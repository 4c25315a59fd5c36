"""One contract, two stores: the in-process and the Redis breaker store behave alike.

The in-process store runs on an injected clock that tests advance; the Redis store
takes time from Redis, so its tests wait out short real cooldowns instead.
(4xx-type results are simply not recorded by callers: nothing to test here.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
import redis

from routing.breaker import (
    Permit,
    BreakerPolicy,
    InProcessBreakerStore,
    LatencyStats,
    RedisBreakerStore,
    State,
    get_breaker_store,
    reset_breaker_store_for_tests,
)

REDIS_URL = "redis://127.0.0.1:6379/14"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


REDIS_UP = _redis_up()
T = "openai/gpt-4o"  # a target
# short enough for real waits against Redis
FAST = BreakerPolicy(failure_threshold=3, failure_rate=0, cooldown_s=0.3, probe_timeout_s=0.6)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        self.now += seconds + 1e-6  # "at least": float sums may land a hair short


@dataclass
class Env:
    store: InProcessBreakerStore | RedisBreakerStore
    advance: Callable[[float], Awaitable[None]]  # let at least this much time pass

    async def fail(self, policy: BreakerPolicy, times: int, target: str = T) -> State:
        for _ in range(times):
            state = await self.store.record(target, policy, success=False)
        return state

    async def open_then_probe(self, policy: BreakerPolicy = FAST) -> None:
        assert await self.fail(policy, policy.failure_threshold) == State.OPEN
        await self.advance(policy.cooldown_s)
        assert await self.store.admit(T, policy) == Permit.PROBE


async def _sleep_past(seconds: float) -> None:
    await asyncio.sleep(seconds + 0.03)


@pytest.fixture(params=["memory", "redis"])
async def env(request):
    if request.param == "memory":
        clock = FakeClock()
        yield Env(InProcessBreakerStore(clock=clock), clock.advance)
        return
    if not REDIS_UP:
        pytest.skip(f"Redis unreachable at {REDIS_URL}")
    redis.Redis.from_url(REDIS_URL).flushdb()
    store = RedisBreakerStore(REDIS_URL)
    yield Env(store, _sleep_past)
    await store.aclose()


# --- closed -> open -------------------------------------------------------------
async def test_opens_after_n_consecutive_failures(env):
    assert await env.fail(FAST, 2) == State.CLOSED
    assert await env.store.admit(T, FAST) == Permit.ALLOWED
    assert await env.fail(FAST, 1) == State.OPEN
    status = await env.store.status(T, FAST)
    assert (status.state, status.consecutive_failures, status.opens) == (State.OPEN, 3, 1)
    assert status.opened_at is not None and 0 < status.retry_in_s <= FAST.cooldown_s
    assert (status.window_requests, status.window_failures, status.probe_in_flight) == (3, 3, False)


async def test_a_success_resets_the_consecutive_count(env):
    await env.fail(FAST, 2)
    assert await env.store.record(T, FAST, success=True) == State.CLOSED
    assert await env.fail(FAST, 2) == State.CLOSED
    status = await env.store.status(T, FAST)
    assert (status.consecutive_failures, status.window_requests, status.window_failures) == (2, 5, 4)


async def test_opens_on_failure_rate_once_min_requests_reached(env):
    policy = BreakerPolicy(failure_threshold=0, failure_rate=0.5, min_requests=4)
    for success in (True, True, True, False, False):  # 2 of 5 failed: 40%
        assert await env.store.record(T, policy, success=success) == State.CLOSED
    assert await env.store.record(T, policy, success=False) == State.OPEN  # 3 of 6
    assert (await env.store.status(T, policy)).opens == 1


async def test_failure_rate_waits_for_min_requests(env):
    policy = BreakerPolicy(failure_threshold=0, failure_rate=0.5, min_requests=10)
    assert await env.fail(policy, 9) == State.CLOSED  # 100% failures, but too few results
    assert await env.fail(policy, 1) == State.OPEN


async def test_window_forgets_results_older_than_window_s(env):
    policy = BreakerPolicy(failure_threshold=0, failure_rate=0.5, min_requests=4, window_s=0.6)
    assert await env.fail(policy, 3) == State.CLOSED
    await env.advance(policy.window_s * 1.05)
    assert await env.fail(policy, 1) == State.CLOSED  # the old three no longer count
    status = await env.store.status(T, policy)
    assert (status.window_requests, status.window_failures) == (1, 1)


async def test_concurrent_failures_open_the_breaker_exactly_once(env):
    policy = BreakerPolicy(failure_threshold=5, failure_rate=0)
    states = await asyncio.gather(*(env.store.record(T, policy, success=False) for _ in range(50)))
    assert states.count(State.CLOSED) == 4  # the fifth opened it; later ones were late results
    status = await env.store.status(T, policy)
    assert (status.state, status.opens) == (State.OPEN, 1)


# --- open, half-open ----------------------------------------------------------------
async def test_rejected_while_open(env):
    await env.fail(FAST, 3)
    assert [await env.store.admit(T, FAST) for _ in range(3)] == [Permit.REJECTED] * 3


async def test_after_cooldown_exactly_one_concurrent_caller_probes(env):
    await env.fail(FAST, 3)
    await env.advance(FAST.cooldown_s)
    status = await env.store.status(T, FAST)  # read-only: still open, probing is due
    assert (status.state, status.retry_in_s) == (State.OPEN, 0.0)
    admissions = await asyncio.gather(*(env.store.admit(T, FAST) for _ in range(50)))
    assert admissions.count(Permit.PROBE) == 1
    assert admissions.count(Permit.REJECTED) == 49
    status = await env.store.status(T, FAST)
    assert (status.state, status.probe_in_flight, status.retry_in_s) == (State.HALF_OPEN, True, None)


async def test_probe_success_closes_and_clears_counters(env):
    await env.open_then_probe()
    assert await env.store.record(T, FAST, success=True, probe=True) == State.CLOSED
    status = await env.store.status(T, FAST)
    assert (status.state, status.consecutive_failures, status.window_requests, status.window_failures) == (
        State.CLOSED, 0, 0, 0,
    )
    assert (status.opened_at, status.retry_in_s, status.opens, status.probe_in_flight) == (None, None, 1, False)
    assert await env.store.admit(T, FAST) == Permit.ALLOWED
    assert await env.fail(FAST, 2) == State.CLOSED  # a full threshold is needed again


async def test_probe_failure_reopens_with_a_fresh_cooldown(env):
    await env.open_then_probe()
    first_opened = (await env.store.status(T, FAST)).opened_at
    assert await env.store.record(T, FAST, success=False, probe=True) == State.OPEN
    status = await env.store.status(T, FAST)
    assert status.opened_at > first_opened and status.opens == 2
    assert 0 < status.retry_in_s <= FAST.cooldown_s
    assert await env.store.admit(T, FAST) == Permit.REJECTED
    await env.advance(FAST.cooldown_s)
    assert await env.store.admit(T, FAST) == Permit.PROBE


async def test_probe_timeout_frees_the_probe_slot(env):
    await env.open_then_probe()
    assert await env.store.admit(T, FAST) == Permit.REJECTED
    await env.advance(FAST.probe_timeout_s)
    assert not (await env.store.status(T, FAST)).probe_in_flight
    admissions = await asyncio.gather(*(env.store.admit(T, FAST) for _ in range(20)))
    assert admissions.count(Permit.PROBE) == 1
    assert await env.store.record(T, FAST, success=True, probe=True) == State.CLOSED


async def test_a_released_probe_permit_lets_the_next_caller_probe_at_once(env):
    """A probe permit given back unused (the request could not even be translated for
    this provider) neither closes nor re-opens the breaker: the next caller probes."""
    await env.open_then_probe()
    assert await env.store.admit(T, FAST) == Permit.REJECTED  # the probe is in flight
    await env.store.release(T)
    status = await env.store.status(T, FAST)
    assert (status.state, status.probe_in_flight, status.opens) == (State.HALF_OPEN, False, 1)
    admissions = await asyncio.gather(*(env.store.admit(T, FAST) for _ in range(20)))
    assert admissions.count(Permit.PROBE) == 1
    assert await env.store.record(T, FAST, success=True, probe=True) == State.CLOSED


async def test_release_leaves_closed_and_open_breakers_alone(env):
    await env.fail(FAST, 1)
    await env.store.release(T)
    assert (await env.store.status(T, FAST)).consecutive_failures == 1
    await env.fail(FAST, 2)
    await env.store.release(T)
    assert await env.store.admit(T, FAST) == Permit.REJECTED  # still open, within its cooldown
    await env.store.release("never-seen")  # harmless
    assert (await env.store.status("never-seen", FAST)).state == State.CLOSED


async def test_late_non_probe_results_do_not_change_open_or_half_open(env):
    await env.fail(FAST, 3)
    for success in (True, False, True):
        assert await env.store.record(T, FAST, success=success) == State.OPEN
    assert await env.store.record(T, FAST, success=True, probe=True) == State.OPEN  # no probe was granted
    await env.advance(FAST.cooldown_s)
    assert await env.store.admit(T, FAST) == Permit.PROBE
    for success in (True, False, True):
        assert await env.store.record(T, FAST, success=success) == State.HALF_OPEN
    status = await env.store.status(T, FAST)
    assert (status.state, status.opens, status.probe_in_flight) == (State.HALF_OPEN, 1, True)


async def test_every_transition_is_counted_and_the_counts_outlive_closing(env):
    """open (tripped, failed probe), half_open (a probe after the cooldown; a probe
    re-granted after a timeout is not a new transition), closed (a probe succeeded, an
    operator reset an open breaker; resetting a closed one is no transition)."""
    def counts(status):
        return status.opens, status.half_opens, status.closes

    await env.open_then_probe()
    assert counts(await env.store.status(T, FAST)) == (1, 1, 0)
    await env.advance(FAST.probe_timeout_s)  # the probe timed out: the next caller probes, still half-open
    assert await env.store.admit(T, FAST) == Permit.PROBE
    assert counts(await env.store.status(T, FAST)) == (1, 1, 0)
    assert await env.store.record(T, FAST, success=False, probe=True) == State.OPEN
    await env.advance(FAST.cooldown_s)
    assert await env.store.admit(T, FAST) == Permit.PROBE
    assert await env.store.record(T, FAST, success=True, probe=True) == State.CLOSED
    assert counts(await env.store.status(T, FAST)) == (2, 2, 1)
    await env.store.reset(T)  # already closed: nothing to count
    assert counts(await env.store.status(T, FAST)) == (2, 2, 1)
    await env.fail(FAST, 3)
    await env.store.reset(T)  # an operator closes an open breaker
    status = await env.store.status(T, FAST)
    assert (status.state, *counts(status)) == (State.CLOSED, 3, 2, 2)


# --- admin, batches --------------------------------------------------------------
async def test_reset_closes_and_clears_but_keeps_opens(env):
    await env.fail(FAST, 3)
    await env.store.reset(T)
    status = await env.store.status(T, FAST)
    assert (status.state, status.consecutive_failures, status.window_requests, status.opens) == (
        State.CLOSED, 0, 0, 1,
    )
    assert await env.store.admit(T, FAST) == Permit.ALLOWED
    await env.store.reset("never-seen")  # harmless
    assert (await env.store.status("never-seen", FAST)).state == State.CLOSED


async def test_statuses_reports_each_target(env):
    await env.fail(FAST, 3, target="a")
    await env.fail(FAST, 1, target="b")
    result = await env.store.statuses(["a", "b", "c"], FAST)
    assert list(result) == ["a", "b", "c"]
    assert [s.state for s in result.values()] == [State.OPEN, State.CLOSED, State.CLOSED]
    assert [s.consecutive_failures for s in result.values()] == [3, 1, 0]
    assert result["c"].opened_at is None and result["c"].opens == 0
    assert await env.store.statuses([], FAST) == {}


# --- latency -------------------------------------------------------------------------
async def test_latency_ewma_first_sample_then_alpha_weighted(env):
    await env.store.record_latency(T, total_s=1.0)
    assert (await env.store.latencies([T]))[T] == LatencyStats(ttft_s=None, total_s=1.0, samples=1)
    await env.store.record_latency(T, total_s=2.0, ttft_s=0.5)
    await env.store.record_latency(T, total_s=3.0, ttft_s=0.25, alpha=0.5)
    stats = (await env.store.latencies([T]))[T]
    assert stats.total_s == pytest.approx(0.5 * 3.0 + 0.5 * (0.2 * 2.0 + 0.8 * 1.0))
    assert stats.ttft_s == pytest.approx(0.5 * 0.25 + 0.5 * 0.5)  # first ttft sample taken as is
    assert stats.samples == 3
    with pytest.raises(ValueError):
        await env.store.record_latency(T, total_s=1.0, alpha=0)


async def test_record_success_is_a_success_and_a_latency_sample(env):
    policy = BreakerPolicy(failure_threshold=3, failure_rate=0.9, min_requests=4)
    await env.store.record(T, policy, success=False)
    await env.store.record(T, policy, success=False)
    assert await env.store.record_success(T, policy, total_s=0.3, ttft_s=0.1) is State.CLOSED
    status = await env.store.status(T, policy)
    assert (status.consecutive_failures, status.window_requests, status.window_failures) == (0, 3, 2)
    assert (await env.store.latencies([T]))[T] == LatencyStats(ttft_s=0.1, total_s=0.3, samples=1)
    await env.store.record_success(T, policy, total_s=0.5)
    stats = (await env.store.latencies([T]))[T]
    assert stats.total_s == pytest.approx(0.2 * 0.5 + 0.8 * 0.3) and stats.ttft_s == 0.1 and stats.samples == 2
    # two more failures would open at three in a row, had the successes not reset the count
    await env.store.record(T, policy, success=False)
    assert (await env.store.status(T, policy)).state is State.CLOSED


async def test_record_success_may_keep_latency_under_another_key(env):
    """The gateway's breaker is per route and model, its latency per model: one step
    writes both, each under its own key."""
    await env.store.record("route:1:model:7", FAST, success=False)
    await env.store.record_success("route:1:model:7", FAST, total_s=0.4, ttft_s=0.2, stats_key="model:7")
    await env.store.record_success("route:2:model:7", FAST, total_s=0.8, stats_key="model:7")
    stats = await env.store.latencies(["model:7", "route:1:model:7"])
    assert stats["model:7"].samples == 2 and stats["model:7"].total_s == pytest.approx(0.2 * 0.8 + 0.8 * 0.4)
    assert stats["route:1:model:7"].samples == 0
    statuses = await env.store.statuses(["route:1:model:7", "route:2:model:7"], FAST)
    assert [(s.consecutive_failures, s.window_requests) for s in statuses.values()] == [(0, 2), (0, 1)]


async def test_latencies_batch(env):
    await env.store.record_latency("a", total_s=0.4, ttft_s=0.1)
    await env.store.record_latency("b", total_s=0.8)
    result = await env.store.latencies(["a", "b", "c"])
    assert result == {
        "a": LatencyStats(ttft_s=0.1, total_s=0.4, samples=1),
        "b": LatencyStats(ttft_s=None, total_s=0.8, samples=1),
        "c": LatencyStats(ttft_s=None, total_s=None, samples=0),
    }
    assert await env.store.latencies([]) == {}


# --- Redis specifics -------------------------------------------------------------
redis_only = pytest.mark.skipif(not REDIS_UP, reason=f"Redis unreachable at {REDIS_URL}")


@pytest.fixture
async def redis_store():
    redis.Redis.from_url(REDIS_URL).flushdb()
    store = RedisBreakerStore(REDIS_URL)
    yield store
    await store.aclose()


@redis_only
async def test_redis_keys_are_namespaced_and_expire(redis_store):
    sync = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    await redis_store.record(T, FAST, success=False)
    await redis_store.record_latency(T, total_s=1.0)
    await redis_store.record("never-opened", FAST, success=False)
    await redis_store.reset("never-opened")  # nothing worth keeping: the key goes
    await redis_store.release("never-opened")  # writes nothing
    assert sorted(sync.keys("*")) == [f"gw:brk:{T}", f"gw:lat:{T}"]
    assert all(0 < sync.ttl(key) <= 86_400 for key in sync.keys("*"))
    for _ in range(2):  # the third failure opens it
        await redis_store.record(T, FAST, success=False)
    await redis_store.reset(T)  # the transition counters survive the reset, still with a TTL
    assert sync.hgetall(f"gw:brk:{T}") == {"op": "1", "cl": "1"}
    assert 0 < sync.ttl(f"gw:brk:{T}") <= 86_400


@redis_only
async def test_redis_batches_take_one_round_trip(redis_store, redis_sends):
    targets = [f"t{i}" for i in range(20)]
    await redis_store.statuses(targets, FAST)  # warm up: connection handshake, script load
    await redis_store.latencies(targets)
    await redis_store.record_success("t0", FAST, total_s=0.1)
    sends = redis_sends
    sends.clear()  # count from here: the warm-up above opened the connection and loaded scripts
    assert len(await redis_store.statuses(targets, FAST)) == 20
    assert len(sends) == 1
    assert len(await redis_store.latencies(targets)) == 20
    assert len(sends) == 2
    await redis_store.record_success("t1", FAST, total_s=0.2, ttft_s=0.1)  # breaker + latency: one script
    assert len(sends) == 3
    await redis_store.record_success("route:1:t1", FAST, total_s=0.2, stats_key="t1")  # two keys, still one
    assert len(sends) == 4


# --- policy and factory -------------------------------------------------------------
@pytest.mark.parametrize(
    "bad", [{"failure_rate": 1.5}, {"failure_threshold": -1}, {"window_s": 0}, {"probe_timeout_s": 0}]
)
def test_policy_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        BreakerPolicy(**bad)


def test_get_breaker_store_follows_redis_url(settings):
    settings.REDIS_URL = ""
    reset_breaker_store_for_tests()
    store = get_breaker_store()
    assert isinstance(store, InProcessBreakerStore) and get_breaker_store() is store
    settings.REDIS_URL = REDIS_URL
    reset_breaker_store_for_tests()
    store = get_breaker_store()
    assert isinstance(store, RedisBreakerStore) and store.url == REDIS_URL and get_breaker_store() is store
    reset_breaker_store_for_tests()
