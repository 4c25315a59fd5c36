"""The in-process config caches: fresh within TTL, single-flight, stale on DB failure."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway_project.snapshot import KeyedCache, Snapshot


class Loader:
    def __init__(self):
        self.calls = 0
        self.fail = False

    def __call__(self, *args):
        self.calls += 1
        if self.fail:
            raise RuntimeError("database down")
        time.sleep(0.01)
        return f"v{self.calls}"


async def test_snapshot_serves_from_memory_within_ttl_and_rereads_after():
    loader = Loader()
    snap = Snapshot(loader, ttl=lambda: 0.2)
    assert await snap.get() == "v1"
    assert await snap.get() == "v1" and loader.calls == 1
    await asyncio.sleep(0.7)  # past 3 x ttl: the request waits for a fresh value
    assert await snap.get() == "v2"


async def test_snapshot_refresh_is_single_flight():
    loader = Loader()
    snap = Snapshot(loader, ttl=lambda: 10)
    values = await asyncio.gather(*(snap.get() for _ in range(20)))
    assert set(values) == {"v1"} and loader.calls == 1


async def test_snapshot_stale_while_revalidate_then_fresh():
    loader = Loader()
    snap = Snapshot(loader, ttl=lambda: 0.1)
    await snap.get()
    await asyncio.sleep(0.15)  # between ttl and 3 x ttl
    assert await snap.get() == "v1"  # served at once...
    await asyncio.sleep(0.05)
    assert await snap.get() == "v2"  # ...while the background refresh landed


async def test_snapshot_invalidate_forces_a_reread():
    loader = Loader()
    snap = Snapshot(loader, ttl=lambda: 60)
    await snap.get()
    snap.invalidate()
    assert await snap.get() == "v2"


async def test_snapshot_keeps_serving_the_last_value_when_the_database_fails():
    loader = Loader()
    snap = Snapshot(loader, ttl=lambda: 0.05)
    await snap.get()
    loader.fail = True
    await asyncio.sleep(0.2)
    assert await snap.get() == "v1"
    fresh = Snapshot(Loader(), ttl=lambda: 1)
    fresh._loader.fail = True
    with pytest.raises(RuntimeError):
        await fresh.get()


async def test_keyed_cache_ttl_and_stale_on_failure():
    loader = Loader()
    cache = KeyedCache(loader, ttl=lambda: 0.05)
    assert await cache.get("a") == "v1"
    assert await cache.get("a") == "v1"
    await asyncio.sleep(0.1)
    assert await cache.get("a") == "v2"
    loader.fail = True
    await asyncio.sleep(0.1)
    assert await cache.get("a") == "v2"
    with pytest.raises(RuntimeError):
        await cache.get("b")
