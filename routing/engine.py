"""The routing engine: try the strategy's candidates under the route's policies.

All retry, fallback and breaker decisions live here, decided on `ProviderError.kind`:
- kinds in the route's `retry_on` are retried on the same target (exponential
  backoff with jitter, or the provider's Retry-After up to the route's cap), then
  the next candidate is tried;
- the request's own faults (bad_request, content_policy) end the request at once,
  since another provider would refuse it too;
- any other failure (auth, not_found, context_length, exhausted retries) moves on.
Before each call the target's circuit breaker (this route's, for this model) must
admit it; 429s, 5xx, timeouts and garbled answers count against the target, the
request's own faults do not.
A request the adapter cannot translate for a target (RequestNotTranslatable: nothing
was sent) is the client's fault: not counted, not reported even for a probe (the
probe permit is given back), and the next candidate is tried, since another wire
format may take it (an image given as a string breaks only Anthropic's); when no
candidate could be called because of it, the answer is the client's 400.
A stream may fall back only until its first output chunk has arrived.
A target whose model lacks a capability the request needs was set aside by the
strategies (routing.strategies.capable_route) and is never called: it is logged as
skipped (`unsupported_capability`, with what it lacks) before the first call.
Embeddings (`embed`) go through the same loop as chat: breakers, retries, fallback.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway_project.errors import GatewayError, InvalidRequest, UpstreamFailed
from providers.adapters import adapter_for
from providers.adapters.base import RequestNotTranslatable
from providers.types import (
    ChatChunk, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, ErrorKind, ProviderError,
)

from . import metrics, tracing
from .breaker import Permit, get_breaker_store
from .catalog import RouteInfo, TargetInfo
from .strategies import Decision, lacking, required

T = TypeVar("T")
log = logging.getLogger("gateway.engine")
TERMINAL = frozenset({ErrorKind.BAD_REQUEST, ErrorKind.CONTENT_POLICY})
# Failures that say something about the provider's health (and open its breaker).
BREAKER_KINDS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.UNAVAILABLE, ErrorKind.BAD_RESPONSE})
SKIPPED = "breaker_open"
NOT_TRANSLATABLE = "not_translatable"  # not called: the request cannot be put in this target's format
UNSUPPORTED = "unsupported_capability"  # not called: the model lacks a capability the request needs
NOT_CALLED = frozenset({SKIPPED, NOT_TRANSLATABLE, UNSUPPORTED})


@dataclass(slots=True)
class Attempt:
    target: str
    outcome: str  # "ok", an ErrorKind value, or one of NOT_CALLED
    latency_ms: int
    status: int | None = None
    message: str = ""

    @property
    def called(self) -> bool:
        return self.outcome not in NOT_CALLED

    def as_dict(self) -> dict:
        row = {"target": self.target, "outcome": self.outcome, "latency_ms": self.latency_ms, "status": self.status}
        if self.outcome == UNSUPPORTED:
            row["reason"] = self.message  # what the model lacks
        return row


@dataclass(slots=True)
class Run:
    """What happened while serving one request; read by settlement and headers."""

    route: RouteInfo
    decision: Decision
    started: float = field(default_factory=time.monotonic)
    log: list[Attempt] = field(default_factory=list)  # calls and skips, in order
    target: TargetInfo | None = None  # the one that answered, or was called last
    answer_started: float | None = None  # when the successful call began
    probe: bool = False  # the successful call was a breaker's half-open trial
    # Targets whose breakers the routing snapshot (read when the request arrived)
    # showed closed: their first attempt needs no second read of the shared state.
    closed: frozenset[str] = frozenset()
    success_unreported: bool = False  # a non-probe success the breaker has yet to hear of
    trace: Any = None  # a stream's open attempt span (routing.tracing), ended at settlement
    # Seconds spent waiting on providers: every call (failed ones too), retry backoff
    # and a stream's reads after its head; the overhead metric is total minus this.
    upstream_s: float = 0.0

    @property
    def deadline(self) -> float:
        return self.started + self.route.timeout_s

    @property
    def calls(self) -> int:
        return sum(1 for a in self.log if a.called)


def backoff_delay(route: RouteInfo, attempt: int) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random."""
    ceiling = min(route.backoff_max_s, route.backoff_base_s * (2 ** (attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def report(run: Run, target: TargetInfo, kind: ErrorKind | None, probe: bool) -> None:
    """Tell the target's breaker how a call went (kind None = success)."""
    if kind is not None and kind not in BREAKER_KINDS:
        if not probe:
            return  # the request's fault, or config: says nothing about provider health
        kind = None  # a probe that got any real answer shows the provider is up
    await get_breaker_store().record(target.key, run.route.breaker, success=kind is None, probe=probe)


async def _attempt(
    run: Run, target: TargetInfo, probe: bool, call: Callable[[TargetInfo, float], Awaitable[T]], defer_success: bool
) -> T:
    remaining = run.deadline - time.monotonic()
    if remaining <= 0:
        raise ProviderError(ErrorKind.TIMEOUT, f"route timeout of {run.route.timeout_s:g} s reached")
    timeout = min(target.model.provider.timeout_s, remaining)
    run.target = target
    t0 = time.monotonic()
    label = target.model.label
    span = tracing.start_attempt(run, target)  # the attempt's client span (None: tracing off)
    try:
        with tracing.within(span):
            async with asyncio.timeout(timeout):
                result = await call(target, timeout)
    except RequestNotTranslatable as exc:
        tracing.attempt_failed(span, NOT_TRANSLATABLE)
        # Raised before anything was sent: the request's fault, so the breaker hears
        # nothing; a probe permit goes back unused, or the breaker would wait
        # probe_timeout_s for a trial that never happened.
        run.log.append(Attempt(label, NOT_TRANSLATABLE, 0, None, exc.message))
        if probe:
            await get_breaker_store().release(target.key)
        raise
    except TimeoutError:
        error = ProviderError(ErrorKind.TIMEOUT, f"{label}: no answer within {timeout:.1f} s")
    except ProviderError as exc:
        error = exc
    except Exception as exc:  # an adapter bug or an answer shape nobody foresaw
        log.exception("adapter for %s failed unexpectedly", label)
        error = ProviderError(ErrorKind.BAD_RESPONSE, f"{label}: unexpected answer ({type(exc).__name__})")
    else:
        run.upstream_s += time.monotonic() - t0
        run.log.append(Attempt(label, "ok", int((time.monotonic() - t0) * 1000)))
        run.answer_started, run.probe = t0, probe
        metrics.ATTEMPTS.labels(target.model.provider.name, target.model.name, "ok").inc()
        tracing.attempt_done(run, span, result)
        if not defer_success:
            if probe:  # closes the breaker: before anyone else is let in
                await report(run, target, None, probe)
            else:  # resets counters only: reported after the answer, with its latency
                run.success_unreported = True  # (pipeline.Call.settle, one store step)
        return result
    run.upstream_s += time.monotonic() - t0
    run.log.append(Attempt(label, error.kind.value, int((time.monotonic() - t0) * 1000), error.status, error.message))
    metrics.ATTEMPTS.labels(target.model.provider.name, target.model.name, error.kind.value).inc()
    tracing.attempt_failed(span, error.kind.value, error.status)
    await report(run, target, error.kind, probe)
    raise error


# How long the request's breaker snapshot stands in for admit(): a target that
# failed over from a slow first choice is asked again.
SNAPSHOT_TRUST_S = 0.5


async def _admit(run: Run, target: TargetInfo, ignore_breaker: bool, first: bool = False) -> Permit:
    if ignore_breaker:
        return Permit.ALLOWED
    if first and target.key in run.closed and time.monotonic() - run.started < SNAPSHOT_TRUST_S:
        # Closed a moment ago, and admit() lets every request through a closed
        # breaker: the same answer without another round trip to Redis.
        return Permit.ALLOWED
    permit = await get_breaker_store().admit(target.key, run.route.breaker)
    if permit is Permit.REJECTED:
        run.log.append(Attempt(target.model.label, SKIPPED, 0))
    return permit


async def execute(
    run: Run, req: ChatRequest, call: Callable[[TargetInfo, float], Awaitable[T]], defer_success: bool = False
) -> T:
    """Try the candidates under the route's retry policy; return the first success.

    With `defer_success` (streams) the caller reports the success to the breaker
    once the answer is complete: a stream that breaks later is a failure, not both."""
    route = run.route
    if run.decision.excluded:
        _log_unsupported(run, req)
    candidates = [c.target for c in run.decision.candidates]
    if not candidates:
        raise UpstreamFailed(
            f"Route '{route.name}' has no enabled target that can take this request "
            "(check its targets, models and providers, and the strategy's conditions).",
            status=503,
            code="no_available_target",
        )
    last: ProviderError | None = None
    untranslatable: RequestNotTranslatable | None = None
    passes = (False, True) if route.try_when_all_open else (False,)
    for ignore_breaker in passes:
        if ignore_breaker and run.calls:
            break  # the second pass is only for "every breaker was open"
        for target in candidates:
            permit = await _admit(run, target, ignore_breaker, first=True)
            if permit is Permit.REJECTED:
                continue
            probe = permit is Permit.PROBE
            for attempt in range(1, route.max_attempts + 1):
                if attempt > 1 and await _admit(run, target, ignore_breaker) is Permit.REJECTED:
                    break  # our own failures (or other requests') opened its breaker meanwhile
                try:
                    return await _attempt(run, target, probe, call, defer_success)
                except RequestNotTranslatable as exc:
                    untranslatable = untranslatable or exc
                    break  # the same request fails the same way: no retry, next format
                except ProviderError as error:
                    last = error
                if last.kind in TERMINAL:
                    raise InvalidRequest(
                        f"The provider rejected the request: {last.message}",
                        code="content_policy_violation" if last.kind is ErrorKind.CONTENT_POLICY else "upstream_bad_request",
                    )
                if probe or last.kind not in route.retry_on or attempt == route.max_attempts:
                    break  # a failed probe re-opened the breaker: no retry on it
                delay = backoff_delay(route, attempt)
                if last.retry_after is not None:
                    if last.retry_after > route.retry_after_cap_s:
                        break  # the provider wants a longer pause than we allow: go elsewhere
                    delay = max(delay, last.retry_after)
                if time.monotonic() + delay >= run.deadline:
                    break
                run.upstream_s += delay  # waiting because a provider failed: not the gateway's own time
                await asyncio.sleep(delay)
            if time.monotonic() >= run.deadline:
                break
    if untranslatable is not None and not run.calls:
        raise InvalidRequest(
            f"The request cannot be sent to any target of route '{route.name}': {untranslatable.message}",
            param=untranslatable.param,
        )
    raise _exhausted(run, last)


def _log_unsupported(run: Run, req: ChatRequest) -> None:
    """The targets set aside for a capability their model lacks, as skipped attempts."""
    needs = required(req)
    for c in run.decision.excluded:
        missing = lacking(c.target.model, needs)
        if missing:
            run.log.append(Attempt(c.label, UNSUPPORTED, 0, None, f"lacks {', '.join(missing)}"))


def _exhausted(run: Run, last: ProviderError | None) -> GatewayError:
    if not run.calls:
        statuses = ", ".join(a.target for a in run.log if a.outcome == SKIPPED)
        return UpstreamFailed(
            f"Every target of route '{run.route.name}' is failing and out of rotation (circuit breaker open: "
            f"{statuses}). A trial request goes through after the cooldown of {run.route.breaker.cooldown_s:g} s.",
            status=503,
            code="circuit_open",
            headers={"retry-after": str(max(1, int(run.route.breaker.cooldown_s)))},
        )
    failures = [a for a in run.log if a.called and a.outcome != "ok"]
    if failures and all(a.outcome == ErrorKind.CONTEXT_LENGTH for a in failures):
        return InvalidRequest(
            "The prompt and max_tokens exceed the context window of every target of this route.",
            param="messages",
            code="context_length_exceeded",
        )
    kind = last.kind if last else ErrorKind.TIMEOUT
    status = 504 if kind is ErrorKind.TIMEOUT else 503 if kind in (ErrorKind.UNAVAILABLE, ErrorKind.RATE_LIMITED) else 502
    detail = "; ".join(f"{a.target}: {a.message or a.outcome}" for a in failures[-5:])
    n = run.calls
    return UpstreamFailed(
        f"All {n} attempt{'s' if n != 1 else ''} for route '{run.route.name}' failed. {detail}",
        status=status,
        code=f"upstream_{kind.value}",
    )


async def complete(run: Run, req: ChatRequest) -> ChatResponse:
    async def call(target: TargetInfo, timeout: float) -> ChatResponse:
        return await adapter_for(target.model).complete(target.model, req, timeout)

    return await execute(run, req, call)


async def embed(run: Run, req: ChatRequest, body: EmbeddingRequest) -> EmbeddingResponse:
    """Embeddings under the same policies as chat. `req` is the request as the routing
    decision saw it (routing.embeddings_call), `body` what the adapters send."""

    async def call(target: TargetInfo, timeout: float) -> EmbeddingResponse:
        return await adapter_for(target.model).embed(target.model, body, timeout)

    return await execute(run, req, call)


def _substantive(chunk: ChatChunk) -> bool:
    """Does the chunk carry output (not just the role preamble providers send first)?
    Thinking counts: a model that reasons for a minute before its first word is
    answering, not keeping us waiting for a first byte."""
    if chunk.usage is not None:
        return True
    if chunk.native and any(event == "content_block_delta" for event, _ in chunk.native):
        return True  # a passed-through Anthropic stream: thinking and signature deltas included
    for choice in chunk.choices:
        delta = choice.get("delta") or {}
        if (delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content")
                or delta.get("reasoning") or choice.get("finish_reason")):
            return True
    return False


async def open_stream(run: Run, req: ChatRequest) -> tuple[list[ChatChunk], AsyncIterator[ChatChunk]]:
    """Start a stream, falling back until the first output chunk arrives.

    Preamble chunks (the role-only delta) are held back, so a provider that dies
    right after its preamble still counts as failed-before-first-byte. Returns the
    held chunks (ending with the first output chunk) and the rest of the stream.
    """

    async def call(target: TargetInfo, timeout: float) -> tuple[list[ChatChunk], AsyncIterator[ChatChunk]]:
        chunks = adapter_for(target.model).stream(target.model, req, timeout)
        head: list[ChatChunk] = []
        try:
            while not head or not _substantive(head[-1]):
                head.append(await anext(chunks))
        except StopAsyncIteration:
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{target.model.label}: stream ended before any output") from None
        except BaseException:
            await chunks.aclose()
            raise
        return head, _Timed(run, chunks)

    return await execute(run, req, call, defer_success=True)


class _Timed:
    """The rest of a stream, each read's wait added to Run.upstream_s. A class, not an
    async generator: aclose() must reach the upstream even if it was never iterated."""

    __slots__ = ("_chunks", "_run")

    def __init__(self, run: Run, chunks: AsyncIterator[ChatChunk]) -> None:
        self._run, self._chunks = run, chunks

    def __aiter__(self) -> _Timed:
        return self

    async def __anext__(self) -> ChatChunk:
        t0 = time.monotonic()
        try:
            return await anext(self._chunks)
        finally:
            self._run.upstream_s += time.monotonic() - t0

    async def aclose(self) -> None:
        await self._chunks.aclose()
