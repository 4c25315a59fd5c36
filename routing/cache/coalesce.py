"""Identical requests in flight at the same time share one upstream call.

The first request for a cache key that misses becomes the flight's leader and calls
the provider; the requests that arrive while it is in flight follow it. A follower
gets the leader's answer as the provider gave it (its own output guardrails then
run on it): a stream's chunks as they arrive, or the complete answer. If the leader
fails before anything was answered, its followers go back to the cache and the
first of them leads a new flight: they retry as one, never as a stampede. A leader
that fails mid-stream ends its followers' streams with the same error.

Flights are per gateway process (a dict of asyncio futures); across processes the
cache itself deduplicates once the first answer is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

from providers.types import ChatChunk, ChatResponse, ErrorKind, ProviderError


class LeaderFailed(Exception):
    """The leader ended without an answer (before any chunk): followers retry."""


class Flight:
    __slots__ = ("key", "chunks", "response", "cost", "failed", "started", "_changed", "followers", "loop")

    def __init__(self, key: str) -> None:
        self.key = key
        self.chunks: list[ChatChunk] = []
        self.response: ChatResponse | None = None
        self.cost = Decimal(0)  # what the leader's answer cost: what each follower saves
        self.failed: str | None = None  # the error kind the leader ended with
        self.started = False  # a chunk or the answer is there: followers can start
        self.loop = asyncio.get_running_loop()
        self._changed = self.loop.create_future()
        self.followers = 0

    @property
    def done(self) -> bool:
        return self.response is not None or self.failed is not None

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.get_running_loop().create_future()
        if not changed.done():
            changed.set_result(None)

    # --- the leader ----------------------------------------------------------------
    def publish(self, chunk: ChatChunk) -> None:
        self.chunks.append(chunk)
        self.started = True
        self._notify()

    def finish(self, response: ChatResponse, cost: Decimal) -> None:
        if not self.done:
            self.response, self.cost = response, cost
            self.started = True
            self._notify()

    def fail(self, kind: str) -> None:
        if not self.done:
            self.failed = kind or "unavailable"
            self._notify()

    # --- followers -----------------------------------------------------------------
    async def wait_started(self, timeout: float) -> None:
        """Until the leader answers something; LeaderFailed if it failed first,
        TimeoutError if it takes longer than `timeout`."""
        async with asyncio.timeout(timeout):
            while not self.started and self.failed is None:
                await asyncio.shield(self._changed)
        if not self.started:
            raise LeaderFailed(self.failed)

    async def wait_response(self, timeout: float) -> ChatResponse:
        async with asyncio.timeout(timeout):
            while not self.done:
                await asyncio.shield(self._changed)
        if self.response is None:
            raise LeaderFailed(self.failed)
        return self.response

    async def follow(self) -> AsyncIterator[ChatChunk]:
        """The leader's chunks from the first; a leader that did not stream is replayed
        from its complete answer."""
        i = 0
        while True:
            if i < len(self.chunks):
                yield self.chunks[i]
                i += 1
                continue
            if self.response is not None:
                if not self.chunks:
                    from routing.stages.streams import replay

                    async for chunk in replay(self.response):
                        yield chunk
                return
            if self.failed is not None:
                kind = ErrorKind(self.failed) if self.failed in ErrorKind._value2member_map_ else ErrorKind.UNAVAILABLE
                raise ProviderError(kind, "the identical request this one was waiting for failed mid-answer")
            await asyncio.shield(self._changed)


class Flights:
    """The flights of one process, by cache key."""

    def __init__(self) -> None:
        self._flights: dict[str, Flight] = {}

    def join(self, key: str) -> tuple[Flight, bool]:
        """(the flight, whether the caller leads it)."""
        flight = self._flights.get(key)
        # A finished flight still answers (its answer is being stored); a flight of
        # another event loop (tests, a restarted loop) is dead.
        if flight is not None and flight.failed is None and flight.loop is asyncio.get_running_loop():
            flight.followers += 1
            return flight, False
        flight = self._flights[key] = Flight(key)
        return flight, True

    def land(self, flight: Flight) -> None:
        if self._flights.get(flight.key) is flight:
            del self._flights[flight.key]

    def __len__(self) -> int:
        return len(self._flights)


flights = Flights()
