"""A refresh in flight when the configuration is invalidated (an admin save) read what
was there before: the requests after the invalidate must not be served from it."""

from __future__ import annotations

import asyncio
import threading

import pytest

from gateway_project.snapshot import Snapshot


@pytest.mark.asyncio
async def test_a_refresh_started_before_invalidate_does_not_serve_the_requests_after_it():
    release = threading.Event()
    version = {"n": 1}

    def loader():
        seen = version["n"]
        if seen == 1:
            release.wait(5)  # the first load is slow: still in flight at the invalidate
        return seen

    snap: Snapshot[int] = Snapshot(loader, ttl=lambda: 60.0)
    first = asyncio.ensure_future(snap.get())
    await asyncio.sleep(0.05)
    version["n"] = 2  # the admin saves...
    snap.invalidate()  # ...and its post-save signal invalidates
    second = asyncio.ensure_future(snap.get())
    await asyncio.sleep(0.05)
    release.set()
    assert await first == 1
    assert await second == 2  # not the stale in-flight load
    assert await snap.get() == 2


@pytest.mark.asyncio
async def test_keyed_reads_are_single_flight_and_a_clear_is_not_joined_by_later_requests():
    from gateway_project.snapshot import KeyedCache

    calls: list[str] = []
    release = threading.Event()
    value = {"v": "old"}

    def loader(key: str) -> str:
        calls.append(key)
        seen = value["v"]  # what the database held when the read ran
        release.wait(5)
        return seen

    cache: KeyedCache[str] = KeyedCache(loader, ttl=lambda: 60.0)
    waiters = [asyncio.ensure_future(cache.get("k")) for _ in range(20)]
    await asyncio.sleep(0.05)
    assert calls == ["k"]  # twenty requests, one read
    value["v"] = "new"
    cache.clear()  # the key was edited while the read was in flight
    later = asyncio.ensure_future(cache.get("k"))
    await asyncio.sleep(0.05)
    release.set()
    assert {await w for w in waiters} == {"old"}
    assert await later == "new" and calls == ["k", "k"]
    assert await cache.get("k") == "new" and len(calls) == 2  # cached now


@pytest.mark.asyncio
async def test_a_cancelled_request_leaves_the_shared_read_to_the_others():
    from gateway_project.snapshot import KeyedCache

    release = threading.Event()
    cache: KeyedCache[str] = KeyedCache(lambda key: (release.wait(5), "v")[1], ttl=lambda: 60.0)
    first = asyncio.ensure_future(cache.get("k"))
    second = asyncio.ensure_future(cache.get("k"))
    await asyncio.sleep(0.05)
    first.cancel()
    release.set()
    assert await second == "v"
    with pytest.raises(asyncio.CancelledError):
        await first
