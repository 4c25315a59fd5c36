"""Redis limit store: rate limits and budgets exact across every gateway process.

Every decision is one Lua script (redis_scripts.py, loaded once, called by EVALSHA),
so it is atomic across processes; time comes from Redis (TIME inside the script), so
the clocks of the processes do not matter.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from . import redis_scripts
from .redis_mux import Mux, Script
from .base import (
    DEFAULT_LEASE_S,
    WINDOW_S,
    Admitted,
    BudgetSlot,
    LimitStore,
    RateDecision,
    RateLimit,
    Reservation,
    SlotUsage,
    WindowView,
    check_lease,
    check_units,
    clamp_units,
    decide,
    new_lease,
)

RATE_PREFIX = "gw:rl:"
BUDGET_PREFIX = "gw:bud:"
LEASES_SUFFIX = ":leases"
RATE_TTL_S = 2 * WINDOW_S  # a window outlives its last hit by one more window
POOL_TIMEOUT_S = 10.0  # waiting longer than this for a connection means Redis is in trouble


SCRIPT_NAMES = ("hit", "adjust", "reserve", "settle", "seed", "admit", "settle_all", "usage", "renew")
_SCRIPTS = {name: Script(getattr(redis_scripts, name.upper())) for name in SCRIPT_NAMES}


@dataclass(slots=True)
class _Conn:
    """A loop's client (its own connection pool) and its scripts; the scripts run on
    `mux`, the loop's one pipelined connection (redis_mux.py), when the URL allows."""

    client: aioredis.Redis
    hit: AsyncScript
    adjust: AsyncScript
    reserve: AsyncScript
    settle: AsyncScript
    seed: AsyncScript
    admit: AsyncScript
    settle_all: AsyncScript
    usage: AsyncScript
    renew: AsyncScript
    mux: Mux | None = None

    async def run(self, name: str, keys: list, args: list):
        """Script `name` (one of SCRIPT_NAMES) with `keys` and `args`: one round trip."""
        if self.mux is not None:
            return await self.mux.evalsha(_SCRIPTS[name], keys, args)
        return await getattr(self, name)(keys, args)


def _opt(value: int | None) -> int | str:
    return "" if value is None else value


def _view(row: list) -> WindowView:
    requests, tokens, oldest_r, oldest_t, free_r, free_t = (int(x) for x in row)
    return WindowView(
        requests=requests,
        tokens=tokens,
        oldest_requests=None if oldest_r == -1 else oldest_r,
        oldest_tokens=None if oldest_t == -1 else oldest_t,
        requests_free_at=None if free_r == -1 else free_r,
        tokens_free_at=None if free_t == -1 else free_t,
    )


def _slot_keys(slots: list[BudgetSlot]) -> list[str]:
    """A slot's hash and its lease set, side by side (the scripts read KEYS in pairs)."""
    keys = []
    for slot in slots:
        keys += [BUDGET_PREFIX + slot.key, BUDGET_PREFIX + slot.key + LEASES_SUFFIX]
    return keys


def _usage(row: list) -> SlotUsage:
    spent, reserved = row
    return SlotUsage(spent=int(spent or 0), reserved=int(reserved or 0))


class RedisLimitStore(LimitStore):
    def __init__(self, url: str, *, time_offset_s: float = 0.0, max_connections: int = 50) -> None:
        self.url = url
        self.max_connections = max_connections
        # Test-only: added to Redis TIME, so tests move windows on without sleeping.
        # Every process sharing the keys must use the same offset (0 in production).
        self.time_offset_s = time_offset_s
        self._conns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Conn] = weakref.WeakKeyDictionary()

    def _conn(self) -> _Conn:
        # redis.asyncio connections are bound to the loop that opened them.
        loop = asyncio.get_running_loop()
        conn = self._conns.get(loop)
        if conn is None:
            for stale in [other for other in self._conns if other.is_closed()]:
                del self._conns[stale]  # its connections died with their loop
            # Blocking: a burst beyond the pool waits for a free connection instead of
            # failing (the default pool raises at 100 in-flight commands). Scripts run
            # one at a time on the server anyway, so a bigger pool would not be faster.
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, decode_responses=True, max_connections=self.max_connections, timeout=POOL_TIMEOUT_S
            )
            client = aioredis.Redis.from_pool(pool)
            mux = Mux(self.url) if Mux.supports(self.url) else None
            conn = self._conns[loop] = _Conn(client, *(client.register_script(_SCRIPTS[n].source) for n in SCRIPT_NAMES),
                                             mux=mux)
        return conn

    async def aclose(self) -> None:
        """Close the running loop's connection pool (tests, shutdown)."""
        conn = self._conns.pop(asyncio.get_running_loop(), None)
        if conn is not None:
            if conn.mux is not None:
                await conn.mux.aclose()
            await conn.client.aclose()

    # --- rate limits -------------------------------------------------------------
    async def hit(self, limits: list[RateLimit], tokens: int) -> RateDecision:
        check_units("tokens", tokens)
        args: list = [repr(float(self.time_offset_s)), tokens, RATE_TTL_S]
        for limit in limits:
            args += [_opt(limit.requests_per_minute), _opt(limit.tokens_per_minute)]
        current, now, rows = await self._conn().run("hit", [RATE_PREFIX + limit.scope for limit in limits], args)
        return decide(limits, [_view(row) for row in rows], tokens, int(current), float(now))

    async def adjust_tokens(self, limits: list[RateLimit], bucket: int, delta: int) -> None:
        if not limits or not delta:
            return
        args = [repr(float(self.time_offset_s)), int(bucket), int(delta), RATE_TTL_S]
        await self._conn().run("adjust", [RATE_PREFIX + limit.scope for limit in limits], args)

    # --- budgets -----------------------------------------------------------------
    async def ensure_seeded(self, slots: list[BudgetSlot], load_spent: Callable[[str], Awaitable[int]]) -> None:
        if not slots:
            return
        conn = self._conn()
        async with conn.client.pipeline(transaction=False) as pipe:
            for slot in slots:
                pipe.hexists(BUDGET_PREFIX + slot.key, "spent")
            seeded = await pipe.execute()
        await self._seed(conn, [slot for slot, done in zip(slots, seeded, strict=True) if not done], load_spent)

    async def _seed(self, conn: _Conn, missing: list[BudgetSlot], load_spent) -> None:
        if not missing:
            return
        args: list = []
        for slot in missing:
            args += [clamp_units("spent", await load_spent(slot.key)), _opt(slot.ttl_s)]
        await conn.run("seed", [BUDGET_PREFIX + slot.key for slot in missing], args)

    async def reserve(self, slots: list[BudgetSlot], amount: int, lease_s: float = DEFAULT_LEASE_S) -> Reservation:
        check_units("amount", amount)
        lease = new_lease() if amount and slots else None
        args: list = [repr(float(self.time_offset_s)), amount, lease or "", repr(check_lease(lease_s))]
        for slot in slots:
            args += [slot.limit, "1" if slot.blocking else "0", _opt(slot.ttl_s)]
        ok, index = await self._conn().run("reserve", _slot_keys(slots), args)
        if ok:
            return Reservation(ok=True, refused=None, amount=amount, lease=lease)
        return Reservation(ok=False, refused=slots[int(index) - 1].key, amount=0)

    # --- the hot path's composites -------------------------------------------------
    async def admit(
        self, limits: list[RateLimit], tokens: int, slots: list[BudgetSlot], amount: int,
        load_spent: Callable[[str], Awaitable[int]], lease_s: float = DEFAULT_LEASE_S,
    ) -> Admitted:
        """One round trip when every slot is seeded (the usual case): the script
        names unseeded slots instead of deciding; they are seeded and it is asked
        again (a slot expiring in between is simply seeded again)."""
        check_units("tokens", tokens)
        check_units("amount", amount)
        conn = self._conn()
        lease = new_lease() if amount and slots else None
        keys = [RATE_PREFIX + limit.scope for limit in limits] + _slot_keys(slots)
        args: list = [repr(float(self.time_offset_s)), tokens, RATE_TTL_S, len(limits), amount, lease or "",
                      repr(check_lease(lease_s))]
        for limit in limits:
            args += [_opt(limit.requests_per_minute), _opt(limit.tokens_per_minute)]
        for slot in slots:
            args += [slot.limit, "1" if slot.blocking else "0", _opt(slot.ttl_s)]
        for _ in range(5):
            status, *rest = await conn.run("admit", keys, args)
            if int(status) != -1:
                break
            await self._seed(conn, [slots[int(i) - 1] for i in rest[0]], load_spent)
        else:  # someone deletes the slots as fast as they are seeded
            raise aioredis.RedisError("budget slots disappear as soon as they are seeded")
        current, now, rows, refusing = rest
        rate = decide(limits, [_view(row) for row in rows], tokens, int(current), float(now))
        if not rate.allowed:
            return Admitted(rate, None)
        if int(refusing):
            return Admitted(rate, Reservation(ok=False, refused=slots[int(refusing) - 1].key, amount=0))
        return Admitted(rate, Reservation(ok=True, refused=None, amount=amount, lease=lease))

    async def settle(self, slots: list[BudgetSlot], lease: str | None, actual: int) -> dict[str, SlotUsage]:
        actual = clamp_units("actual", actual)  # a negative cost never lowers spend
        if not slots:
            return {}
        args = [repr(float(self.time_offset_s)), lease or "", actual, *(_opt(slot.ttl_s) for slot in slots)]
        rows = await self._conn().run("settle", _slot_keys(slots), args)
        return {slot.key: _usage(row) for slot, row in zip(slots, rows, strict=True)}

    async def settle_all(
        self, limits: list[RateLimit], bucket: int | None, token_delta: int,
        slots: list[BudgetSlot], lease: str | None, actual: int,
    ) -> dict[str, SlotUsage]:
        """adjust_tokens() and settle() in one script: one round trip."""
        actual = clamp_units("actual", actual)
        if bucket is None or not limits or not token_delta:
            limits, bucket = [], None
        if not limits and not slots:
            return {}
        keys = [RATE_PREFIX + limit.scope for limit in limits] + _slot_keys(slots)
        args = [repr(float(self.time_offset_s)), "" if bucket is None else int(bucket), int(token_delta),
                RATE_TTL_S, len(limits), lease or "", actual, *(_opt(slot.ttl_s) for slot in slots)]
        rows = await self._conn().run("settle_all", keys, args)
        return {slot.key: _usage(row) for slot, row in zip(slots, rows, strict=True)}

    async def renew(self, slots: list[BudgetSlot], lease: str, lease_s: float) -> bool:
        """One round trip (the RENEW script)."""
        args = [repr(float(self.time_offset_s)), lease, repr(check_lease(lease_s)), *(_opt(s.ttl_s) for s in slots)]
        if not slots or not lease:
            return False
        return bool(int(await self._conn().run("renew", _slot_keys(slots), args)))

    async def usage(self, slots: list[BudgetSlot]) -> dict[str, SlotUsage]:
        if not slots:
            return {}
        rows = await self._conn().run("usage", _slot_keys(slots), [repr(float(self.time_offset_s))])
        return {slot.key: _usage(row) for slot, row in zip(slots, rows, strict=True)}

    async def reset_slot(self, key: str) -> None:
        await self._conn().client.delete(BUDGET_PREFIX + key, BUDGET_PREFIX + key + LEASES_SUFFIX)
