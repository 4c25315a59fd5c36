"""Redis breaker store: breaker state exact across every gateway process.

Every transition is one Lua script (loaded once, called by EVALSHA), so it is atomic
across processes; time comes from Redis (TIME inside the script), so the clocks of
the processes do not matter. The scripts mirror base.py and memory.py line for line.

Keys (hashes; each write refreshes a TTL so idle targets expire):
  gw:brk:<breaker key>  st (absent = closed), cf consecutive failures, oa opened_at,
                        pa probe granted at, op opens, ho half-opens, cl closes (the
                        lifetime transition counters, kept when it closes),
                        i<k>/r<k>/f<k> window slot k
                        (bucket index, requests, failures) for k in 0..5
  gw:lat:<stats key>    t total EWMA, f ttft EWMA, n samples
Floats are stored with "%.17g" so they round-trip exactly.

The scripts (and the latencies read) go over the loop's one pipelined connection
(billing/limits/redis_mux.py, as the limit store's) when the URL is a plain
redis:// one, else over redis-py's pool: the same replies either way (strings
decoded as UTF-8, as decode_responses=True), and redis-py's exception classes.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from billing.limits.redis_mux import Mux, Script

from .base import (
    WINDOW_BUCKETS,
    BreakerPolicy,
    BreakerStatus,
    BreakerStore,
    LatencyStats,
    Permit,
    State,
    check_alpha,
)

BREAKER_PREFIX = "gw:brk:"
LATENCY_PREFIX = "gw:lat:"
DEFAULT_TTL_S = 86_400

_PRELUDE = f"""
if redis.replicate_commands then redis.replicate_commands() end  -- TIME before writes (Redis < 5)
local N = {WINDOW_BUCKETS}
local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function f(x) return string.format('%.17g', x) end
-- closed again: the window and state go, the lifetime transition counters stay
local function close(key, counted)
  local c = redis.call('HMGET', key, 'op', 'ho', 'cl')
  redis.call('DEL', key)
  if counted then c[3] = tonumber(c[3] or '0') + 1 end
  local names = {{'op', 'ho', 'cl'}}
  for i = 1, 3 do
    if c[i] then redis.call('HSET', key, names[i], c[i]) end
  end
end
local function load(key)
  local flat = redis.call('HGETALL', key)
  local h = {{}}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end
-- requests and failures of the live buckets, and the current bucket index
local function window(h, now, window_s)
  local cur = math.floor(now / (window_s / N))
  local req, fail = 0, 0
  for k = 0, N - 1 do
    local idx = tonumber(h['i' .. k] or '-1')
    if idx > cur - N and idx <= cur then
      req = req + tonumber(h['r' .. k])
      fail = fail + tonumber(h['f' .. k])
    end
  end
  return req, fail, cur
end
"""

# KEYS[1] breaker; ARGV cooldown_s, probe_timeout_s, ttl -> admission
_ADMIT = _PRELUDE + """
local key = KEYS[1]
local v = redis.call('HMGET', key, 'st', 'oa', 'pa')
if not v[1] or v[1] == 'closed' then return 'allowed' end
local now = now_s()
if v[1] == 'open' then
  if now < tonumber(v[2]) + tonumber(ARGV[1]) then return 'rejected' end
elseif v[3] and now - tonumber(v[3]) < tonumber(ARGV[2]) then
  return 'rejected'  -- half-open, a live probe is in flight
end
if v[1] == 'open' then redis.call('HINCRBY', key, 'ho', 1) end
redis.call('HSET', key, 'st', 'half_open', 'pa', f(now))
redis.call('EXPIRE', key, ARGV[3])
return 'probe'
"""

_RECORD_FN = _PRELUDE + """
-- A: success, probe, failure_threshold, failure_rate, window_s, min_requests, ttl
local function record(key, A)
  local success, probe = A[1] == '1', A[2] == '1'
  local threshold, rate = tonumber(A[3]), tonumber(A[4])
  local h = load(key)
  local st = h.st or 'closed'
  local now = now_s()
  local function open()
    redis.call('HSET', key, 'st', 'open', 'oa', f(now), 'op', tonumber(h.op or '0') + 1)
    redis.call('HDEL', key, 'pa')
    return 'open'
  end
  if st == 'closed' then
    local cf = 0
    if not success then cf = tonumber(h.cf or '0') + 1 end
    local failed = success and 0 or 1
    local req, fail, cur = window(h, now, tonumber(A[5]))
    local slot = cur % N
    local r, fl = 1, failed
    if tonumber(h['i' .. slot] or '-1') == cur then
      r = r + tonumber(h['r' .. slot])
      fl = fl + tonumber(h['f' .. slot])
    end
    redis.call('HSET', key, 'st', 'closed', 'cf', cf, 'i' .. slot, f(cur), 'r' .. slot, r, 'f' .. slot, fl)
    req, fail = req + 1, fail + failed
    if (threshold > 0 and cf >= threshold)
       or (rate > 0 and req >= tonumber(A[6]) and fail / req >= rate) then
      st = open()
    end
  elseif st == 'half_open' and probe then
    if success then
      close(key, true)
      st = 'closed'
    else
      st = open()
    end
  else
    return st  -- a late result (or a stale probe while open): ignored
  end
  redis.call('EXPIRE', key, A[7])
  return st
end
"""

# KEYS[1] breaker; ARGV success, probe, failure_threshold, failure_rate, window_s,
# min_requests, ttl -> state after recording
_RECORD = _RECORD_FN + "return record(KEYS[1], ARGV)"

# KEYS breakers; ARGV window_s, cooldown_s, probe_timeout_s -> one row per key
_STATUS = _PRELUDE + """
local window_s, cooldown, probe_timeout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_s()
local out = {}
for i, key in ipairs(KEYS) do
  local h = load(key)
  local st = h.st or 'closed'
  local req, fail = window(h, now, window_s)
  local retry = ''
  if st == 'open' then retry = f(math.max(0, tonumber(h.oa) + cooldown - now)) end
  local probing = 0
  if st == 'half_open' and h.pa and now - tonumber(h.pa) < probe_timeout then probing = 1 end
  out[i] = {st, tonumber(h.cf or '0'), req, fail, h.oa or '', retry, tonumber(h.op or '0'), probing,
            tonumber(h.ho or '0'), tonumber(h.cl or '0')}
end
return out
"""

# KEYS[1] breaker: a half-open breaker forgets its probe (the next admit probes)
_RELEASE = """
if redis.call('HGET', KEYS[1], 'st') == 'half_open' then redis.call('HDEL', KEYS[1], 'pa') end
"""

# KEYS[1] breaker; ARGV ttl: an operator's reset (an open or half-open breaker's close counts)
_RESET = _PRELUDE + """
local st = redis.call('HGET', KEYS[1], 'st')
close(KEYS[1], st == 'open' or st == 'half_open')
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
"""

_LATENCY_FN = """
local function latency(key, total, ttft, alpha, ttl)  -- ttft '' = not measured
  local a = tonumber(alpha)
  local v = redis.call('HMGET', key, 't', 'f')
  local function ewma(old, x)
    if not old then return x end
    return a * x + (1 - a) * tonumber(old)
  end
  local function fmt(x) return string.format('%.17g', x) end
  redis.call('HSET', key, 't', fmt(ewma(v[1], tonumber(total))))
  if ttft ~= '' then redis.call('HSET', key, 'f', fmt(ewma(v[2], tonumber(ttft)))) end
  redis.call('HINCRBY', key, 'n', 1)
  redis.call('EXPIRE', key, ttl)
end
"""

# KEYS[1] latency; ARGV total_s, ttft_s ('' = not measured), alpha, ttl
_LATENCY = _LATENCY_FN + "latency(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])"

# KEYS breaker, latency; ARGV as _RECORD (success = 1, probe = 0), then total_s,
# ttft_s, alpha, latency ttl -> state after recording
_RECORD_SUCCESS = _RECORD_FN + _LATENCY_FN + """
local st = record(KEYS[1], ARGV)
latency(KEYS[2], ARGV[8], ARGV[9], ARGV[10], ARGV[11])
return st
"""


SCRIPT_NAMES = ("admit", "record", "status", "reset", "latency", "record_success", "release")
_SCRIPTS = {
    name: Script(source)
    for name, source in zip(
        SCRIPT_NAMES, (_ADMIT, _RECORD, _STATUS, _RESET, _LATENCY, _RECORD_SUCCESS, _RELEASE), strict=True
    )
}


@dataclass(slots=True)
class _Conn:
    """A loop's client (its own connection pool) and its scripts; the scripts run on
    `mux`, the loop's one pipelined connection (redis_mux.py), when the URL allows."""

    client: aioredis.Redis
    admit: AsyncScript
    record: AsyncScript
    status: AsyncScript
    reset: AsyncScript
    latency: AsyncScript
    record_success: AsyncScript
    release: AsyncScript
    mux: Mux | None = None

    async def run(self, name: str, keys: list, args: list):
        """Script `name` (one of SCRIPT_NAMES) with `keys` and `args`: one round trip."""
        if self.mux is not None:
            return await self.mux.evalsha(_SCRIPTS[name], keys, args)
        return await getattr(self, name)(keys, args)

    async def hmgets(self, keys: list[str], fields: tuple[str, ...]) -> list[list]:
        """HMGET `fields` of every key, pipelined: one round trip."""
        if self.mux is not None:
            return await self.mux.execute_many([("HMGET", key, *fields) for key in keys])
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key, *fields)
            return await pipe.execute()


class RedisBreakerStore(BreakerStore):
    def __init__(self, url: str, *, ttl_s: int = DEFAULT_TTL_S) -> None:
        self.url = url
        self.ttl_s = ttl_s
        self._conns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Conn] = weakref.WeakKeyDictionary()

    def _conn(self) -> _Conn:
        # redis.asyncio connections are bound to the loop that opened them.
        loop = asyncio.get_running_loop()
        conn = self._conns.get(loop)
        if conn is None:
            for stale in [other for other in self._conns if other.is_closed()]:
                del self._conns[stale]  # its connections died with their loop
            # Blocking pool: a burst beyond it waits for a connection instead of failing
            # (the default pool raises past its limit under high concurrency).
            pool = aioredis.BlockingConnectionPool.from_url(self.url, decode_responses=True, max_connections=50, timeout=10)
            client = aioredis.Redis.from_pool(pool)  # no connection until used (not at all with a mux)
            mux = Mux(self.url) if Mux.supports(self.url) else None
            scripts = (client.register_script(_SCRIPTS[name].source) for name in SCRIPT_NAMES)
            conn = self._conns[loop] = _Conn(client, *scripts, mux=mux)
        return conn

    async def aclose(self) -> None:
        """Close the running loop's connections (tests, shutdown)."""
        conn = self._conns.pop(asyncio.get_running_loop(), None)
        if conn is not None:
            if conn.mux is not None:
                await conn.mux.aclose()
            await conn.client.aclose()

    def _breaker_ttl(self, policy: BreakerPolicy) -> int:
        # never let an open breaker, or a live window, expire before it matters
        return max(self.ttl_s, math.ceil(policy.cooldown_s + policy.probe_timeout_s + policy.window_s))

    async def admit(self, target: str, policy: BreakerPolicy) -> Permit:
        result = await self._conn().run(
            "admit", [BREAKER_PREFIX + target], [policy.cooldown_s, policy.probe_timeout_s, self._breaker_ttl(policy)]
        )
        return Permit(result)

    async def record(self, target: str, policy: BreakerPolicy, *, success: bool, probe: bool = False) -> State:
        args = [
            int(success),
            int(probe),
            policy.failure_threshold,
            policy.failure_rate,
            policy.window_s,
            policy.min_requests,
            self._breaker_ttl(policy),
        ]
        return State(await self._conn().run("record", [BREAKER_PREFIX + target], args))

    async def release(self, target: str) -> None:
        await self._conn().run("release", [BREAKER_PREFIX + target], [])

    async def record_success(
        self,
        target: str,
        policy: BreakerPolicy,
        *,
        total_s: float,
        ttft_s: float | None = None,
        alpha: float = 0.2,
        stats_key: str | None = None,
    ) -> State:
        check_alpha(alpha)
        args = [
            1, 0, policy.failure_threshold, policy.failure_rate, policy.window_s, policy.min_requests,
            self._breaker_ttl(policy),
            float(total_s), "" if ttft_s is None else float(ttft_s), float(alpha), self.ttl_s,
        ]
        return State(await self._conn().run(
            "record_success", [BREAKER_PREFIX + target, LATENCY_PREFIX + (stats_key or target)], args
        ))

    async def status(self, target: str, policy: BreakerPolicy) -> BreakerStatus:
        return (await self.statuses([target], policy))[target]

    async def statuses(self, targets: list[str], policy: BreakerPolicy) -> dict[str, BreakerStatus]:
        if not targets:
            return {}
        rows = await self._conn().run(
            "status", [BREAKER_PREFIX + t for t in targets], [policy.window_s, policy.cooldown_s, policy.probe_timeout_s]
        )
        return {target: _status_from_row(row) for target, row in zip(targets, rows, strict=True)}

    async def reset(self, target: str) -> None:
        await self._conn().run("reset", [BREAKER_PREFIX + target], [self.ttl_s])

    async def record_latency(
        self, target: str, *, total_s: float, ttft_s: float | None = None, alpha: float = 0.2
    ) -> None:
        check_alpha(alpha)
        args = [float(total_s), "" if ttft_s is None else float(ttft_s), float(alpha), self.ttl_s]
        await self._conn().run("latency", [LATENCY_PREFIX + target], args)

    async def latencies(self, targets: list[str]) -> dict[str, LatencyStats]:
        if not targets:
            return {}
        rows = await self._conn().hmgets([LATENCY_PREFIX + t for t in targets], ("f", "t", "n"))
        return {
            target: LatencyStats(
                ttft_s=float(ttft) if ttft is not None else None,
                total_s=float(total) if total is not None else None,
                samples=int(n or 0),
            )
            for target, (ttft, total, n) in zip(targets, rows, strict=True)
        }


def _status_from_row(row: list) -> BreakerStatus:
    state, consecutive, requests, failures, opened_at, retry_in, opens, probing, half_opens, closes = row
    return BreakerStatus(
        state=State(state),
        consecutive_failures=int(consecutive),
        window_requests=int(requests),
        window_failures=int(failures),
        opened_at=float(opened_at) if opened_at != "" else None,
        retry_in_s=float(retry_in) if retry_in != "" else None,
        opens=int(opens),
        probe_in_flight=bool(probing),
        half_opens=int(half_opens),
        closes=int(closes),
    )
