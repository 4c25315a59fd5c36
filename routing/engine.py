"""The routing engine: which targets to try, in what order, and what to do on failure.

All retry and fallback decisions live here, decided on `ProviderError.kind`:
- kinds in the route's `retry_on` are retried on the same target (exponential
  backoff with jitter, or the provider's Retry-After up to the route's cap), then
  the next target is tried;
- the request's own faults (bad_request, content_policy) end the request at once,
  since another provider would refuse it too;
- any other failure (auth, context_length, exhausted retries) moves to the next target.
A stream may fall back only until its first chunk has arrived.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from gateway_project.errors import GatewayError, InvalidRequest, UpstreamFailed
from providers.adapters import adapter_for
from providers.types import ChatChunk, ChatRequest, ChatResponse, ErrorKind, ProviderError

from . import metrics
from .catalog import RouteInfo, TargetInfo

T = TypeVar("T")
log = logging.getLogger("gateway.engine")
TERMINAL = frozenset({ErrorKind.BAD_REQUEST, ErrorKind.CONTENT_POLICY})


@dataclass(slots=True)
class Attempt:
    target: str
    outcome: str  # "ok" or an ErrorKind value
    latency_ms: int
    status: int | None = None
    message: str = ""

    def as_dict(self) -> dict:
        return {"target": self.target, "outcome": self.outcome, "latency_ms": self.latency_ms, "status": self.status}


@dataclass(slots=True)
class Run:
    """What happened while serving one request; read by settlement and headers."""

    route: RouteInfo
    started: float = field(default_factory=time.monotonic)
    attempts: list[Attempt] = field(default_factory=list)
    target: TargetInfo | None = None  # the one that answered, or was tried last

    @property
    def deadline(self) -> float:
        return self.started + self.route.timeout_s


def order_targets(route: RouteInfo, req: ChatRequest) -> list[TargetInfo]:
    """Candidates in the order the route's strategy wants them tried."""
    targets = list(route.targets)
    if route.strategy == "single":
        return targets[:1]
    return targets


def backoff_delay(route: RouteInfo, attempt: int) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random."""
    ceiling = min(route.backoff_max_s, route.backoff_base_s * (2 ** (attempt - 1)))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


async def _attempt(run: Run, target: TargetInfo, call: Callable[[TargetInfo, float], Awaitable[T]]) -> T:
    remaining = run.deadline - time.monotonic()
    if remaining <= 0:
        raise ProviderError(ErrorKind.TIMEOUT, f"route timeout of {run.route.timeout_s:g} s reached")
    timeout = min(target.model.provider.timeout_s, remaining)
    run.target = target
    t0 = time.monotonic()
    label = target.model.label
    try:
        async with asyncio.timeout(timeout):
            result = await call(target, timeout)
    except TimeoutError:
        error = ProviderError(ErrorKind.TIMEOUT, f"{label}: no answer within {timeout:.1f} s")
        _log(run, label, t0, error)
        raise error from None
    except ProviderError as error:
        _log(run, label, t0, error)
        raise
    except Exception as exc:  # an adapter bug or an answer shape nobody foresaw
        log.exception("adapter for %s failed unexpectedly", label)
        error = ProviderError(ErrorKind.BAD_RESPONSE, f"{label}: unexpected answer ({type(exc).__name__})")
        _log(run, label, t0, error)
        raise error from None
    run.attempts.append(Attempt(label, "ok", int((time.monotonic() - t0) * 1000)))
    metrics.ATTEMPTS.labels(target.model.provider.name, target.model.name, "ok").inc()
    return result


def _log(run: Run, label: str, t0: float, error: ProviderError) -> None:
    run.attempts.append(Attempt(label, error.kind.value, int((time.monotonic() - t0) * 1000), error.status, error.message))
    model = run.target.model if run.target else None
    if model is not None:
        metrics.ATTEMPTS.labels(model.provider.name, model.name, error.kind.value).inc()


async def execute(run: Run, req: ChatRequest, call: Callable[[TargetInfo, float], Awaitable[T]]) -> T:
    """Try the route's candidates under its retry policy; return the first success."""
    route = run.route
    candidates = order_targets(route, req)
    if not candidates:
        raise UpstreamFailed(
            f"Route '{route.name}' has no enabled target (check its targets, models and providers).",
            status=503,
            code="no_available_target",
        )
    last: ProviderError | None = None
    for target in candidates:
        for attempt in range(1, route.max_attempts + 1):
            try:
                return await _attempt(run, target, call)
            except ProviderError as error:
                last = error
            if last.kind in TERMINAL:
                raise InvalidRequest(
                    f"The provider rejected the request: {last.message}",
                    code="content_policy_violation" if last.kind is ErrorKind.CONTENT_POLICY else "upstream_bad_request",
                )
            if last.kind not in route.retry_on or attempt == route.max_attempts:
                break
            delay = backoff_delay(route, attempt)
            if last.retry_after is not None:
                if last.retry_after > route.retry_after_cap_s:
                    break  # the provider wants a longer pause than we allow: go elsewhere
                delay = max(delay, last.retry_after)
            if time.monotonic() + delay >= run.deadline:
                break
            await asyncio.sleep(delay)
        if time.monotonic() >= run.deadline:
            break
    raise _exhausted(run, last)


def _exhausted(run: Run, last: ProviderError | None) -> GatewayError:
    failures = [a for a in run.attempts if a.outcome != "ok"]
    if failures and all(a.outcome == ErrorKind.CONTEXT_LENGTH for a in failures):
        return InvalidRequest(
            "The prompt and max_tokens exceed the context window of every target of this route.",
            param="messages",
            code="context_length_exceeded",
        )
    kind = last.kind if last else ErrorKind.TIMEOUT
    status = 504 if kind is ErrorKind.TIMEOUT else 503 if kind in (ErrorKind.UNAVAILABLE, ErrorKind.RATE_LIMITED) else 502
    detail = "; ".join(f"{a.target}: {a.message or a.outcome}" for a in failures[-5:])
    n = len(run.attempts)
    return UpstreamFailed(
        f"All {n} attempt{'s' if n != 1 else ''} for route '{run.route.name}' failed. {detail}",
        status=status,
        code=f"upstream_{kind.value}",
    )


async def complete(run: Run, req: ChatRequest) -> ChatResponse:
    async def call(target: TargetInfo, timeout: float) -> ChatResponse:
        return await adapter_for(target.model).complete(target.model, req, timeout)

    return await execute(run, req, call)


def _substantive(chunk: ChatChunk) -> bool:
    """Does the chunk carry output (not just the role preamble providers send first)?"""
    if chunk.usage is not None:
        return True
    for choice in chunk.choices:
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or choice.get("finish_reason"):
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
        return head, chunks

    return await execute(run, req, call)
