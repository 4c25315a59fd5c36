"""The answer cache: exact (the same normalised request) and semantic (the same
question in other words, in the same context), per tenant, with coalescing of
identical requests in flight.

Innermost stage: its key is taken from the request as it leaves (after the input
guardrails' redaction), and a hit still passes the output guardrails on its way out
(the onion of routing.stages). What is stored is the provider's answer as it came;
a guardrail that blocks an answer blocks the request, so nothing is stored
(after_answer runs only for answers that were delivered).

Headers: `x-gateway-cache: miss | hit | semantic | bypass`, with
`x-gateway-cache-age` (seconds) on hits, `x-gateway-cache-similarity` on semantic
hits and `x-gateway-cache-reason` on a bypass. The request header
`x-gateway-cache: bypass` skips lookup and store, `refresh` skips the lookup and
stores the fresh answer. Every outcome is counted (gateway_cache_requests_total,
by route and result) and noted on the usage record (`annotations.cache`).

The cache never fails a request: a store that cannot be reached is a miss (logged
and counted as `error`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.conf import settings
from redis.exceptions import RedisError

from gateway_project.background import spawn
from providers.types import ChatChunk, ChatResponse

from routing import metrics
from routing.cache import default_threshold, semantic_index
from routing.cache.coalesce import Flight, LeaderFailed, flights
from routing.cache.entry import Entry, decode, encode
from routing.cache.keys import CacheKeys, cache_keys
from routing.cache.policy import SEMANTIC, uncacheable
from routing.cache.store import get_cache_store

from .base import Answer, Stage
from .streams import ChunkFilter

if TYPE_CHECKING:
    from routing.pipeline import Call

log = logging.getLogger("gateway.cache")

HEADER = "x-gateway-cache"
STORE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
LAND_AFTER_S = 5.0  # a finished flight still answers newcomers while its answer is being stored


@dataclass(slots=True)
class _State:
    keys: CacheKeys
    flight: Flight | None = None  # this request leads it
    store: bool = True
    locked: bool = False  # holds the cross-process lead (shared store)


class Cache(Stage):
    name = "cache"

    async def on_request(self, call: Call) -> Answer | None:
        policy = call.route.cache
        if not policy.on or not call.route.id:  # off, or an unsaved route tried from the admin
            return None
        route = call.route.name
        if call.cache_control == "bypass":
            return self._bypass(call, "header")
        keys = cache_keys(call.route.id, policy, call.key, call.req)
        reason = uncacheable(policy, call.req, keys.prompt_bytes, settings.GATEWAY_CACHE_MAX_PROMPT_BYTES)
        if reason is not None:
            return self._bypass(call, reason)
        state = call.stage_state[self.name] = _State(keys)
        refresh = call.cache_control == "refresh"
        for _ in range(3):  # a failed leader: back to the cache, and one of us leads next
            if not refresh:
                answer = await self._lookup(call, keys)
                if answer is not None:
                    return answer
            flight, leads = flights.join(keys.exact)
            if leads:
                state.flight = flight
                answer = await self._lead_across_processes(call, state, refresh)
                if answer is not None:
                    return answer
                break
            try:
                return await self._follow(call, flight)
            except LeaderFailed:
                continue
            except TimeoutError:
                break  # waited long enough: ask the provider ourselves
        call.headers.append((HEADER, "miss"))
        if refresh:
            call.headers.append(("x-gateway-cache-reason", "refresh"))
        call.annotate(self.name, result="refresh" if refresh else "miss")
        metrics.CACHE.labels(route, "refresh" if refresh else "miss").inc()
        return None

    # --- hits -------------------------------------------------------------------
    async def _lookup(self, call: Call, keys: CacheKeys) -> Answer | None:
        store = get_cache_store()
        try:
            raw = await store.get(keys.exact)
            entry = decode(raw) if raw is not None else None
            if entry is not None:
                return self._hit(call, entry, "hit")
            policy = call.route.cache
            if policy.mode == SEMANTIC and keys.question is not None:
                index = semantic_index()
                if index is None:
                    return None
                threshold = policy.threshold if policy.threshold is not None else default_threshold()
                match = await index.lookup(keys.namespace, keys.question, threshold)
                if match is not None:
                    raw = await store.get(match.entry_id)
                    entry = decode(raw) if raw is not None else None
                    if entry is not None:
                        # Kept under this wording's own key too: its next repeat is an exact
                        # hit (a millisecond), not another embedding; it expires with the original.
                        left = int(policy.ttl_s - entry.age_s())
                        if left > 0:
                            spawn(_quietly(store.set(keys.exact, raw, left)))
                        return self._hit(call, entry, "semantic", match.similarity)
        except STORE_ERRORS as exc:
            log.warning("cache lookup failed for route %s: %s", call.route.name, type(exc).__name__)
            metrics.CACHE.labels(call.route.name, "error").inc()
        return None

    def _hit(self, call: Call, entry: Entry, result: str, similarity: float | None = None) -> Answer:
        age = entry.age_s()
        call.headers += [(HEADER, result), ("x-gateway-cache-age", str(age))]
        note = {"result": result, "age_s": age, "origin": entry.origin, "saved_usd": str(entry.cost)}
        if similarity is not None:
            call.headers.append(("x-gateway-cache-similarity", f"{similarity:.3f}"))
            note["similarity"] = round(similarity, 4)
        call.annotate(self.name, **note)
        metrics.CACHE.labels(call.route.name, result).inc()
        metrics.CACHE_SAVED.labels(call.route.name).inc(float(entry.cost))
        return Answer(entry.response, "cache_hit", saved=entry.cost)

    async def _follow(self, call: Call, flight: Flight) -> Answer:
        """Wait for the identical request in flight and answer with what it gets."""
        wait = settings.GATEWAY_CACHE_COALESCE_WAIT_S
        if call.req.stream:
            await flight.wait_started(wait)
            answer = Answer(None, "cache_hit", chunks=_following(flight, call))
        else:
            response = await flight.wait_response(wait)
            answer = Answer(response, "cache_hit", saved=flight.cost)
        call.headers += [(HEADER, "hit"), ("x-gateway-cache-age", "0"), ("x-gateway-cache-coalesced", "1")]
        call.annotate(self.name, result="hit", coalesced=True, age_s=0)
        metrics.CACHE.labels(call.route.name, "coalesced").inc()
        return answer

    async def _lead_across_processes(self, call: Call, state: _State, refresh: bool) -> Answer | None:
        """With a shared store, one process leads each key: the others poll the store
        for its answer (as complete answers: live chunks stay within a process). None:
        this request calls the provider (it holds the lock, or the store failed)."""
        store = get_cache_store()
        if not store.shared:
            return None
        key = state.keys.exact
        wait = settings.GATEWAY_CACHE_COALESCE_WAIT_S
        lock_ttl = min(wait, call.route.timeout_s + 5)
        deadline, started = time.monotonic() + wait, time.time()
        pause = 0.02
        try:
            while True:
                if await store.lock(key, call.request_id, lock_ttl):
                    state.locked = True
                    return None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.25)
                raw = await store.get(key)
                entry = decode(raw) if raw is not None else None
                if entry is not None and (not refresh or entry.stored_at >= started):  # refresh: a fresh one
                    answer = self._hit(call, entry, "hit")
                    call.headers.append(("x-gateway-cache-coalesced", "1"))
                    call.annotate(self.name, coalesced=True)
                    return answer
                if time.monotonic() > deadline:
                    return None
                # No answer yet: the leader is still at it (lock held), or it failed and
                # released the lock; the next lock() decides who leads now.
        except STORE_ERRORS as exc:
            log.warning("cache coalescing failed for route %s: %s", call.route.name, type(exc).__name__)
            return None

    def _bypass(self, call: Call, reason: str) -> None:
        call.headers += [(HEADER, "bypass"), ("x-gateway-cache-reason", reason)]
        call.annotate(self.name, result="bypass", reason=reason)
        metrics.CACHE.labels(call.route.name, "bypass").inc()
        return None

    # --- the leader's answer ------------------------------------------------------
    async def on_response(self, call: Call, response: ChatResponse) -> ChatResponse:
        state = call.stage_state.get(self.name)
        if state is not None and state.flight is not None:
            state.flight.finish(response, call.actual_cost())
        return response

    def stream_filter(self, call: Call) -> ChunkFilter | None:
        state = call.stage_state.get(self.name)
        if state is None or state.flight is None:
            return None
        return _Publish(call, state.flight)

    async def on_finish(self, call: Call) -> None:
        state = call.stage_state.get(self.name)
        if state is None or state.flight is None:
            return
        if state.locked:
            if call.blocked or state.flight.response is None:
                await self._unlock(call, state)  # failed: the next process in line leads
            else:  # answered: after_answer unlocks once stored; this is the backstop
                spawn(self._unlock_later(call, state))
        flight = state.flight
        if flight.response is not None and not call.blocked:
            # Newcomers are answered by it until it is stored (after_answer lands it).
            asyncio.get_running_loop().call_later(LAND_AFTER_S, flights.land, flight)
        else:
            flight.fail(_error_kind(call))
            flights.land(flight)

    def wants_answer(self, call: Call) -> bool:
        return self.name in call.stage_state

    async def after_answer(self, call: Call, response: ChatResponse) -> None:
        state = call.stage_state.get(self.name)
        if state is None:
            return
        try:
            if state.store and _storable(response):
                await self._store(call, state, response)
        finally:
            if state.locked:
                await self._unlock(call, state)
            if state.flight is not None:
                flights.land(state.flight)

    async def _unlock_later(self, call: Call, state: _State) -> None:
        await asyncio.sleep(LAND_AFTER_S)
        if state.locked:
            await self._unlock(call, state)

    async def _unlock(self, call: Call, state: _State) -> None:
        state.locked = False
        try:
            await get_cache_store().unlock(state.keys.exact, call.request_id)
        except STORE_ERRORS:
            pass  # it expires by itself

    async def _store(self, call: Call, state: _State, response: ChatResponse) -> None:
        policy, keys = call.route.cache, state.keys
        target = call.run.target
        raw = encode(Entry(response, call.cost, target.model.label if target else "", time.time()))
        if len(raw) > settings.GATEWAY_CACHE_MAX_ANSWER_BYTES:
            metrics.CACHE_STORES.labels(call.route.name, "too_large").inc()
            return
        try:
            await get_cache_store().set(keys.exact, raw, policy.ttl_s)
            if policy.mode == SEMANTIC and keys.question is not None:
                index = semantic_index()
                if index is not None:
                    await index.add(keys.namespace, keys.question, keys.exact, policy.ttl_s)
        except STORE_ERRORS as exc:
            log.warning("cache store failed for route %s: %s", call.route.name, type(exc).__name__)
            metrics.CACHE_STORES.labels(call.route.name, "error").inc()
            return
        metrics.CACHE_STORES.labels(call.route.name, "stored").inc()

    async def preview(self, call: Call) -> str | None:
        policy = call.route.cache
        if not policy.on or not call.route.id:
            return None
        how = {"exact": "exact", "semantic": "semantic (exact first)"}[policy.mode]
        shared = {"team": "per team", "key": "per key", "global": "across the whole gateway"}[policy.scope]
        keys = cache_keys(call.route.id, policy, call.key, call.req)
        reason = uncacheable(policy, call.req, keys.prompt_bytes, settings.GATEWAY_CACHE_MAX_PROMPT_BYTES)
        if reason is not None:
            return f"{how} cache, answers kept {policy.ttl_s} s {shared}; this request is not cacheable ({REASONS[reason]})."
        try:
            raw = await get_cache_store().get(keys.exact)
        except STORE_ERRORS:
            raw = None
        entry = decode(raw) if raw is not None else None
        if entry is not None:
            return (f"{how} cache, answers kept {policy.ttl_s} s {shared}; this exact request was answered "
                    f"{entry.age_s()} s ago: it would be served from the cache at no cost.")
        return f"{how} cache, answers kept {policy.ttl_s} s {shared}; not cached yet: the answer would be stored."


REASONS = {
    "header": "the client sent x-gateway-cache: bypass",
    "temperature": "temperature is not 0 and the route caches only deterministic requests",
    "n": "more than one choice asked for",
    "tools": "tools are offered and the route does not cache tool calls",
    "messages": "the conversation is longer than the route caches",
    "size": "the prompt is larger than GATEWAY_CACHE_MAX_PROMPT_BYTES",
}


class _Publish(ChunkFilter):
    """The leader's stream, chunk by chunk, to its followers (innermost filter: the
    provider's chunks as they came)."""

    def __init__(self, call: Call, flight: Flight) -> None:
        self.call, self.flight = call, flight
        self.parts: list[ChatChunk] = []

    def feed(self, chunk: ChatChunk) -> list[ChatChunk]:
        self.flight.publish(chunk)
        return [chunk]

    def flush(self) -> list[ChatChunk]:
        from .streams import Assembler

        assembler = Assembler()
        assembler.extend(self.flight.chunks)
        self.flight.finish(assembler.response(), self.call.actual_cost())
        return []


async def _following(flight: Flight, call: Call):
    async for chunk in flight.follow():
        yield chunk
    if call.answer is not None:
        call.answer.saved = flight.cost  # known once the leader's answer is complete


async def _quietly(step) -> None:
    try:
        await step
    except STORE_ERRORS:
        pass


def _storable(response: ChatResponse) -> bool:
    """Only complete, non-empty answers (a content-filtered or empty answer is not
    one to repeat)."""
    if not response.choices:
        return False
    for choice in response.choices:
        if choice.get("finish_reason") == "content_filter":
            return False
        message = choice.get("message") or {}
        if not message.get("content") and not message.get("tool_calls"):
            return False
    return True


def _error_kind(call: Call) -> str:
    failed = [a.outcome for a in call.run.log if a.called and a.outcome != "ok"]
    return failed[-1] if failed else "unavailable"

