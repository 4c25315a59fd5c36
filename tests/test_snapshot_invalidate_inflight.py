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
