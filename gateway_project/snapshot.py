"""In-process caches for configuration read on the hot path.

An admin edit must reach every process within a few seconds, without a database
round trip per request: values are served from memory and re-read when older than
`ttl`. Between `ttl` and `3 * ttl` the old value is still served while one
background refresh runs (no request waits); beyond that a request waits for it.
If the database cannot be read, the last good value keeps being served (the
gateway stays up through a database blip) and the failure is logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from . import logs
from .db import run_db

T = TypeVar("T")
log = logging.getLogger("gateway.snapshot")


class Snapshot(Generic[T]):
    """One value built by a synchronous (ORM) loader, refreshed single-flight."""

    def __init__(self, loader: Callable[[], T], ttl: Callable[[], float]) -> None:
        self._loader = loader
        self._ttl = ttl
        self._value: T | None = None
        self._loaded_at = 0.0
        self._generation = 0
        self._inflight: asyncio.Task | None = None
        self._inflight_generation = 0

    def invalidate(self) -> None:
        """Force a re-read on next use (post-save signals in the editing process)."""
        self._generation += 1
        self._loaded_at = 0.0

    async def get(self) -> T:
        age = time.monotonic() - self._loaded_at
        ttl = self._ttl()
        value = self._value
        if value is not None and age < ttl:
            return value
        if value is not None and age < 3 * ttl:
            self._refresh_task()
            return value
        try:
            return await asyncio.shield(self._refresh_task())
        except Exception:
            if value is None:
                raise
            log.warning("serving stale configuration: refresh failed", exc_info=True)
            return value

    def _refresh_task(self) -> asyncio.Task:
        loop = asyncio.get_running_loop()
        task = self._inflight
        # A refresh started before the last invalidate() reads what was there before it:
        # it must not serve the requests that come after (a new one is started for them).
        if task is None or task.done() or task.get_loop() is not loop or self._inflight_generation != self._generation:
            self._inflight_generation = self._generation
            task = self._inflight = loop.create_task(self._refresh(), context=logs.detached())  # serves every request
            task.add_done_callback(_log_failure)
        return task

    async def _refresh(self) -> T:
        generation = self._generation
        started = time.monotonic()
        value = await run_db(self._loader)
        if generation == self._generation:
            self._value, self._loaded_at = value, started
        return value


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("configuration refresh failed: %s", type(task.exception()).__name__)


class KeyedCache(Generic[T]):
    """Per-key values (e.g. virtual keys by hash): an entry older than `ttl` is
    re-read before use; if that read fails, the last good entry is served.

    Reads are single-flight per key: the requests that find the same key missing or
    expired at once share one read (at 64 clients of one key, every request used to
    re-read it when it expired). A read started before `clear()` is never shared with
    the requests after it (it may hold what the clear was for)."""

    def __init__(self, loader: Callable[[str], T], ttl: Callable[[], float], max_entries: int = 100_000) -> None:
        self._loader = loader
        self._ttl = ttl
        self._max = max_entries
        self._entries: dict[str, tuple[float, T]] = {}
        self._inflight: dict[str, tuple[int, asyncio.Task]] = {}
        self._generation = 0

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._inflight.clear()

    async def get(self, key: str) -> T:
        now = time.monotonic()
        hit = self._entries.get(key)
        if hit is not None and now - hit[0] < self._ttl():
            return hit[1]
        try:
            value = await asyncio.shield(self._read(key))  # a cancelled request leaves the read to the others
        except Exception:
            if hit is None:
                raise
            log.warning("serving stale entry: refresh failed", exc_info=True)
            return hit[1]
        return value

    def _read(self, key: str) -> asyncio.Task:
        loop = asyncio.get_running_loop()
        shared = self._inflight.get(key)
        if shared is not None:
            generation, task = shared
            if generation == self._generation and not task.done() and task.get_loop() is loop:
                return task
        task = loop.create_task(self._load(key, self._generation))
        task.add_done_callback(_retrieved)
        self._inflight[key] = (self._generation, task)
        return task

    async def _load(self, key: str, generation: int) -> T:
        started = time.monotonic()
        try:
            value = await run_db(self._loader, key)
        finally:
            shared = self._inflight.get(key)
            if shared is not None and shared[1] is asyncio.current_task():
                del self._inflight[key]
        if generation == self._generation:
            if len(self._entries) >= self._max:
                self._entries.clear()  # crude but bounded: a flood of unknown keys cannot grow memory
            self._entries[key] = (started, value)
        return value


def _retrieved(task: asyncio.Task) -> None:
    """A shared read whose every waiter was cancelled: its outcome is nobody's to log."""
    if not task.cancelled():
        task.exception()
