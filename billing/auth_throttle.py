"""Failed-authentication throttling on /v1 (docs/security/keys.md).

Only failures are throttled: the API layer calls `failed()` after `authenticate`
refused a request, so a valid key is always evaluated and served at once, from any
address. Each failure counts against two sources: the client's address (an IPv6
address by its /64, which one client usually holds whole) and the presented key's
prefix (its first 12 characters, when a key was presented at all).

Per source, the first GATEWAY_AUTH_THROTTLE_FAILURES failures of a window
(GATEWAY_AUTH_THROTTLE_WINDOW_S, starting at the first failure) are answered as
before (401). Beyond that the source is throttled until a whole window passes without
a failure, and each further failure is answered 429 `too_many_failed_attempts` (with
Retry-After and `x-should-retry: false`), scheduled no sooner than
GATEWAY_AUTH_THROTTLE_INTERVAL_S after the previous throttled answer to that source:
a per-source "next slot" time. The wait of one answer is capped at
GATEWAY_AUTH_THROTTLE_MAX_WAIT_S (a held answer costs a sleeping coroutine and an open
connection; the default, 20 s, ends before uvicorn's 25 s graceful shutdown). So one
source gets at most max(1 / interval, connections / max_wait) wrong-key answers per
second: 2 per second with the defaults (0.5 s, 20 s) for up to 40 concurrent connections,
connections / 20 beyond (a proxy's per-client connection limit bounds that).

State: with REDIS_URL, one Lua script per failure (atomic across every gateway
process, Redis's clock); otherwise in process. If Redis cannot be reached, the
in-process state takes over (logged) rather than failing the request. Source ids are
hashed before they are stored (no address or key characters in Redis).

The client address is the ASGI scope's `client`: the server (uvicorn) replaces it by
X-Forwarded-For only when the connection comes from FORWARDED_ALLOW_IPS, the trusted
proxies. Metric: gateway_auth_failures_total{reason, outcome} (no key, no address).
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import threading
import time
import weakref
from dataclasses import dataclass

import redis.asyncio as aioredis
from django.conf import settings
from prometheus_client import Counter
from redis.exceptions import RedisError

from gateway_project.errors import AuthenticationFailed, GatewayError

log = logging.getLogger("gateway.auth")
PREFIX_CHARS = 12  # billing.keys.DISPLAY_CHARS: what the admin shows of a key anyway
REDIS_PREFIX = "gw:af:"
MEMORY_MAX_SOURCES = 100_000

FAILURES = Counter(
    "gateway_auth_failures_total",
    "Failed authentications on /v1 by reason (missing_api_key, invalid_api_key, revoked_api_key, "
    "expired_api_key) and outcome (answered: 401 as usual; throttled: 429 too_many_failed_attempts, delayed)",
    ("reason", "outcome"),
)


class TooManyFailedAttempts(GatewayError):
    status = 429
    type = "invalid_request_error"
    code = "too_many_failed_attempts"


@dataclass(frozen=True, slots=True)
class Policy:
    failures: int  # answered as usual per window and source
    window_ms: int
    interval_ms: int
    max_wait_ms: int

    @classmethod
    def from_settings(cls) -> Policy:
        return cls(
            failures=int(settings.GATEWAY_AUTH_THROTTLE_FAILURES),
            window_ms=int(settings.GATEWAY_AUTH_THROTTLE_WINDOW_S * 1000),
            interval_ms=int(settings.GATEWAY_AUTH_THROTTLE_INTERVAL_S * 1000),
            max_wait_ms=int(settings.GATEWAY_AUTH_THROTTLE_MAX_WAIT_S * 1000),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    throttled: bool
    wait_ms: int  # hold the answer this long
    retry_after_ms: int  # until the throttled sources are free again (no failure meanwhile)


def _step(state: list[int] | None, now: int, policy: Policy) -> tuple[list[int], int, int, bool]:
    """One failure of one source. state = [failures in window, window end, next slot]
    -> (new state, wait, retry after, throttled). The Lua script below is the same."""
    n, reset, slot = state if state is not None else (0, 0, 0)
    if now >= reset:
        n, reset = 0, now + policy.window_ms
    n += 1
    if n <= policy.failures:
        return [n, reset, slot], 0, 0, False
    reset = now + policy.window_ms  # throttled until a whole window passes without a failure
    slot = min(max(now, slot + policy.interval_ms), now + policy.max_wait_ms)
    return [n, reset, slot], slot - now, reset - now, True


# KEYS: the sources' hashes. ARGV: failures, window_ms, interval_ms, max_wait_ms.
# Returns {throttled (0/1), wait_ms, retry_after_ms}. Time: Redis's clock.
FAIL_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local failures, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local interval, cap = tonumber(ARGV[3]), tonumber(ARGV[4])
local throttled, wait, retry = 0, 0, 0
for i = 1, #KEYS do
  local s = redis.call('HMGET', KEYS[i], 'n', 'r', 'x')
  local n, reset, slot = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0
  if now >= reset then
    n = 0
    reset = now + window
  end
  n = n + 1
  if n > failures then
    throttled = 1
    reset = now + window
    slot = math.min(math.max(now, slot + interval), now + cap)
    if slot - now > wait then wait = slot - now end
    if reset - now > retry then retry = reset - now end
  end
  redis.call('HSET', KEYS[i], 'n', n, 'r', reset, 'x', slot)
  redis.call('PEXPIRE', KEYS[i], window + cap + 1000)
end
return {throttled, wait, retry}
"""


class MemoryStore:
    """The in-process state: source -> [failures, window end, next slot] (monotonic ms),
    bounded (expired entries go first, then the oldest)."""

    def __init__(self, max_sources: int = MEMORY_MAX_SOURCES) -> None:
        self.max_sources = max_sources
        self._state: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    async def fail(self, sources: list[str], policy: Policy) -> Decision:
        now = int(time.monotonic() * 1000)
        throttled, wait, retry = False, 0, 0
        with self._lock:
            for source in sources:
                state = self._state.pop(source, None)  # re-inserted last: the dict stays in age order
                new, w, r, t = _step(state, now, policy)
                self._state[source] = new
                throttled, wait, retry = throttled or t, max(wait, w), max(retry, r)
            if len(self._state) > self.max_sources:
                self._evict(now, policy)
        return Decision(throttled, wait, retry)

    def _evict(self, now: int, policy: Policy) -> None:
        idle = policy.window_ms + policy.max_wait_ms
        for source in [s for s, (_, reset, slot) in self._state.items() if max(reset, slot) + idle < now]:
            del self._state[source]
        while len(self._state) > self.max_sources:
            del self._state[next(iter(self._state))]


class RedisStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _script(self):
        loop = asyncio.get_running_loop()  # redis.asyncio connections belong to the loop that opened them
        found = self._clients.get(loop)
        if found is None:
            pool = aioredis.BlockingConnectionPool.from_url(self.url, max_connections=20, timeout=5,
                                                            socket_timeout=2, socket_connect_timeout=2)
            client = aioredis.Redis.from_pool(pool)
            found = self._clients[loop] = (client, client.register_script(FAIL_SCRIPT))
        return found[1]

    async def fail(self, sources: list[str], policy: Policy) -> Decision:
        keys = [REDIS_PREFIX + s for s in sources]
        throttled, wait, retry = await self._script()(
            keys, [policy.failures, policy.window_ms, policy.interval_ms, policy.max_wait_ms]
        )
        return Decision(bool(int(throttled)), int(wait), int(retry))


_lock = threading.Lock()
_store: MemoryStore | RedisStore | None = None
_memory = MemoryStore()  # also the fallback while Redis cannot be reached
_redis_warned_at = 0.0


def store() -> MemoryStore | RedisStore:
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                _store = RedisStore(settings.REDIS_URL) if settings.REDIS_URL else _memory
    return _store


def reset_auth_throttle_for_tests() -> None:
    """Forget every source's failures (in process, and this Redis's throttle keys)."""
    global _store, _memory
    with _lock:
        _store = None
        _memory = MemoryStore()
    url = getattr(settings, "REDIS_URL", "")
    if url:
        import redis

        try:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            keys = list(client.scan_iter(match=REDIS_PREFIX + "*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
        except RedisError:
            pass


def _source_id(kind: str, value: str) -> str:
    return kind + hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


def client_address(scope) -> str:
    """The client's address from the ASGI scope (what the server resolved, trusted
    proxies included), normalised: IPv4-mapped IPv6 as IPv4, other IPv6 as its /64."""
    client = scope.get("client")
    host = client[0] if client else None
    if not host:
        return "-"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return str(host)[:100]  # a unix socket path or a name: itself
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def presented_prefix(header: str | None) -> str | None:
    """The first characters of the key in a Bearer header (None when none was presented)."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token[:PREFIX_CHARS]


async def failed(scope, header: str | None, error: AuthenticationFailed) -> GatewayError:
    """A /v1 request failed authentication: count it against its sources, hold the
    answer when they are throttled, and return the error to answer with (`error`
    itself, or a TooManyFailedAttempts)."""
    reason = str(error.code or "invalid_api_key")
    if not settings.GATEWAY_AUTH_THROTTLE:
        FAILURES.labels(reason, "answered").inc()
        return error
    policy = Policy.from_settings()
    sources = [_source_id("a:", client_address(scope))]
    prefix = presented_prefix(header)
    if prefix is not None:
        sources.append(_source_id("p:", prefix))
    try:
        decision = await _decide(sources, policy)
    except Exception:  # noqa: BLE001 - the throttle must never turn a 401 into a 500
        log.exception("failed-authentication throttle failed; answering without it")
        decision = Decision(False, 0, 0)
    if not decision.throttled:
        FAILURES.labels(reason, "answered").inc()
        return error
    FAILURES.labels(reason, "throttled").inc()
    if decision.wait_ms > 0:
        await asyncio.sleep(decision.wait_ms / 1000)
    retry = max(1, math.ceil(decision.retry_after_ms / 1000))
    return TooManyFailedAttempts(
        f"Too many failed authentication attempts: answers are slowed down. Check the API key; "
        f"attempts are answered normally again {retry} s after the last failed one.",
        headers={"retry-after": str(retry), "x-should-retry": "false"},
    )


async def _decide(sources: list[str], policy: Policy) -> Decision:
    global _redis_warned_at
    current = store()
    if current is _memory:
        return await _memory.fail(sources, policy)
    try:
        return await current.fail(sources, policy)
    except (RedisError, OSError) as exc:
        now = time.monotonic()
        if now - _redis_warned_at > 60:
            _redis_warned_at = now
            log.warning("failed-authentication throttle: Redis unavailable (%s); counting in process",
                        type(exc).__name__)
        return await _memory.fail(sources, policy)
