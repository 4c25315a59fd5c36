"""Where cached answers live: Redis (with TTL) in production, a bounded in-process
LRU (by bytes) in the embedded default. Values are small JSON documents (entry.py);
the stores only see bytes, keys and TTLs.

Both are safe to use from the event loop: the in-process store never blocks, the
Redis store keeps one connection pool per event loop (redis.asyncio connections are
bound to the loop that opened them, as in routing.breaker.redis_store).
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import OrderedDict

import redis.asyncio as aioredis


class CacheStore:
    async def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        raise NotImplementedError

    async def delete_prefix(self, prefix: str) -> int:
        raise NotImplementedError

    # Cross-process coalescing (coalesce.py covers one process): only a shared store
    # needs it, so the in-process store leaves these as they are.
    shared = False

    async def lock(self, key: str, owner: str, ttl_s: float) -> bool:
        return True

    async def locked(self, key: str) -> bool:
        return False

    async def unlock(self, key: str, owner: str) -> None:
        return None

    async def aclose(self) -> None:
        return None


class LocalStore(CacheStore):
    """A least-recently-used map bounded by the bytes it holds; expired entries are
    dropped when met and when room is needed."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()  # admin purges run in another thread

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    def get_now(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] <= time.monotonic():
                self._drop(key)
                return None
            self._items.move_to_end(key)
            return item[1]

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        size = len(key) + len(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._drop(key)
            self._items[key] = (time.monotonic() + ttl_s, value)
            self.bytes += size
            while self.bytes > self.max_bytes:
                self._drop(next(iter(self._items)))

    async def delete_prefix(self, prefix: str) -> int:
        return self.delete_prefix_now(prefix)

    def delete_prefix_now(self, prefix: str) -> int:
        with self._lock:
            doomed = [k for k in self._items if k.startswith(prefix)]
            for k in doomed:
                self._drop(k)
            return len(doomed)

    def _drop(self, key: str) -> None:
        _, value = self._items.pop(key)
        self.bytes -= len(key) + len(value)

    def __len__(self) -> int:
        return len(self._items)


_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
LOCK_PREFIX = "gw:cache:lock:"


class RedisStore(CacheStore):
    shared = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = weakref.WeakKeyDictionary()

    def _client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            for stale in [other for other in self._clients if other.is_closed()]:
                del self._clients[stale]
            # Short timeouts: a cache that cannot answer quickly is a miss, not a slow request.
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, max_connections=50, timeout=2, socket_connect_timeout=0.5, socket_timeout=1)
            client = self._clients[loop] = aioredis.Redis.from_pool(pool)
        return client

    async def get(self, key: str) -> bytes | None:
        return await self._client().get(key)

    async def set(self, key: str, value: bytes, ttl_s: int) -> None:
        await self._client().set(key, value, ex=ttl_s)

    async def lock(self, key: str, owner: str, ttl_s: float) -> bool:
        """Lead the upstream call for `key` across processes (SET NX with a TTL, so a
        leader that died frees it)."""
        return bool(await self._client().set(LOCK_PREFIX + key, owner, nx=True, px=max(1, int(ttl_s * 1000))))

    async def locked(self, key: str) -> bool:
        return bool(await self._client().exists(LOCK_PREFIX + key))

    async def unlock(self, key: str, owner: str) -> None:
        await self._client().eval(_UNLOCK, 1, LOCK_PREFIX + key, owner)

    async def delete_prefix(self, prefix: str) -> int:
        client, count = self._client(), 0
        batch: list[bytes] = []
        async for key in client.scan_iter(match=_glob(prefix) + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                count += await client.unlink(*batch)
                batch.clear()
        if batch:
            count += await client.unlink(*batch)
        return count

    async def aclose(self) -> None:
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def _glob(text: str) -> str:
    """A literal for a Redis MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


_store: CacheStore | None = None
_lock = threading.Lock()


def get_cache_store() -> CacheStore:
    """The process-wide store: Redis at GATEWAY_CACHE_REDIS_URL (default REDIS_URL)
    when set, else the in-process LRU of GATEWAY_CACHE_LOCAL_MAX_BYTES."""
    global _store
    if _store is None:
        from django.conf import settings

        with _lock:
            if _store is None:
                url = settings.GATEWAY_CACHE_REDIS_URL
                _store = RedisStore(url) if url else LocalStore(settings.GATEWAY_CACHE_LOCAL_MAX_BYTES)
    return _store


def reset_cache_store_for_tests() -> None:
    global _store
    with _lock:
        _store = None
