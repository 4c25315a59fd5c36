"""Shared by the limit-store contract tests: the same store contract run against the
in-process store (on a fake clock the tests advance) and the Redis store (keeping Redis
TIME but taking a test-only offset, so windows move on without sleeping).

The `env` and `redis_store` fixtures are imported by the test modules that use them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import redis

from billing.limits import BudgetSlot, InProcessLimitStore, RateLimit, RedisLimitStore

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


def slot(key: str = "budget:7:2026-11", limit: int = 1000, blocking: bool = True, ttl_s: int | None = 3600):
    return BudgetSlot(key=key, limit=limit, blocking=blocking, ttl_s=ttl_s)


redis_only = pytest.mark.skipif(not REDIS_UP, reason=f"Redis unreachable at {REDIS_URL}")


@pytest.fixture
async def redis_store():
    redis.Redis.from_url(REDIS_URL).flushdb()
    store = RedisLimitStore(REDIS_URL)
    yield store
    await store.aclose()
