"""The hot path, transport-agnostic: the REST views and the playground both call it.

    prepare()  authenticate -> validate -> resolve route        (no provider call)
    complete() / stream()  route + call -> settle (usage record, metrics)

Settlement happens exactly once per request that reached a provider, including
failures and client disconnects (see `Call.settle`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import orjson
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError

from billing import admission
from billing.keys import KeyInfo, authenticate
from billing.models import UsageRecord
from billing.usage import UsageEntry, write_usage
from gateway_project.background import spawn
from gateway_project.errors import GatewayError, NotFound, PermissionDenied
from providers.tokens import estimate_prompt_tokens, estimate_tokens
from providers.types import ChatChunk, ChatRequest, ChatResponse, ErrorKind, ProviderError, Usage

from . import engine, metrics
from .breaker import get_breaker_store
from .catalog import RouteInfo, routing_table
from .health import absorb_health
from .schemas import parse_chat_request
from .strategies import Signals, decide

log = logging.getLogger("gateway.pipeline")


def new_request_id() -> str:
    return uuid.uuid4().hex


_last_table: object | None = None


async def resolve_route(key: KeyInfo, name: str) -> RouteInfo:
    global _last_table
    table = await routing_table.get()
    if table is not _last_table:
        # Each refresh of the table also picks up probe results written by the
        # Celery worker (embedded mode; with Redis the worker feeds breakers itself).
        _last_table = table
        spawn(absorb_health())
    route = table.routes.get(name)
    if route is None:
        if name in table.disabled:
            raise NotFound(f"The route '{name}' is disabled.", param="model", code="route_disabled")
        raise NotFound(f"The model '{name}' does not exist or you do not have access to it.", param="model")
    if not key.may_use(route.id):
        raise PermissionDenied(f"This API key may not use the route '{name}'.", param="model")
    return route


async def allowed_routes(key: KeyInfo) -> list[RouteInfo]:
    table = await routing_table.get()
    return [r for r in table.routes.values() if key.may_use(r.id)]


def models_body(routes: list[RouteInfo], single: bool = False) -> bytes:
    """GET /v1/models (or /v1/models/{id}) in OpenAI's shape: routes are the models."""
    data = [{"id": r.name, "object": "model", "created": r.created, "owned_by": "gateway"} for r in routes]
    return orjson.dumps(data[0] if single else {"object": "list", "data": data})


@dataclass(slots=True)
class Call:
    """One request on its way through the gateway."""

    request_id: str
    key: KeyInfo
    req: ChatRequest
    run: engine.Run
    usage: Usage | None = None
    cost: Decimal = Decimal(0)
    ttft: float | None = None
    completion_text: list[str] = field(default_factory=list)
    settled: bool = False
    admission: admission.Admission | None = None

    @property
    def route(self) -> RouteInfo:
        return self.run.route

    def entry(self, status: str, http_status: int, error_kind: str = "") -> UsageEntry:
        target = self.run.target
        model = target.model if target else None
        usage = self.usage or Usage()
        if model is not None:
            self.cost = model.price.cost(usage)
        # What the same tokens would have cost on the route's first target: the
        # savings report compares routing decisions against "always the default".
        baseline = self.route.targets[0].model.price.cost(usage) if self.route.targets else self.cost
        latency = time.monotonic() - self.run.started
        return UsageEntry(
            request_id=self.request_id,
            key_id=self.key.id,
            key_prefix=self.key.prefix,
            team_id=self.key.team_id,
            team_name=self.key.team_name,
            route_id=self.route.id,
            route_name=self.route.name,
            provider_id=model.provider.id if model else None,
            provider_name=model.provider.name if model else "",
            model_id=model.id if model else None,
            model_name=model.label if model else "",
            status=status,
            error_kind=error_kind,
            http_status=http_status,
            stream=self.req.stream,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            usage_estimated=usage.estimated,
            input_price_per_mtok=model.price.input_per_mtok if model else Decimal(0),
            output_price_per_mtok=model.price.output_per_mtok if model else Decimal(0),
            cost_usd=self.cost,
            baseline_cost_usd=baseline,
            latency_ms=int(latency * 1000),
            ttft_ms=int(self.ttft * 1000) if self.ttft is not None else None,
            attempts=self.run.calls,
            attempt_log=[a.as_dict() for a in self.run.log],
            strategy=self.run.decision.strategy,
            task_type=self.run.decision.task.task.value if self.run.decision.task else "",
            candidates=[{"target": c.label, "reason": c.reason} for c in self.run.decision.candidates],
        )

    def estimated_usage(self) -> Usage:
        return Usage(
            estimate_prompt_tokens(self.req.messages),
            estimate_tokens("".join(self.completion_text)),
            estimated=True,
        )

    async def settle(self, status: str, http_status: int, error_kind: str = "") -> None:
        """Release the budget reservation and rate-limit estimate (always), and record
        usage and metrics once (only if a provider was tried)."""
        await self.settle_admission()
        if self.settled or not self.run.calls:
            return
        self.settled = True
        entry = self.entry(status, http_status, error_kind)
        _observe(entry, self)
        self.report_after_answer(status)
        try:
            await write_usage(entry)
        except DatabaseError:
            # The client still gets its answer; the record is retried in the
            # background (idempotent by request id, so a late success cannot double count).
            spawn(_record_later(entry))

    def report_after_answer(self, status: str) -> None:
        """What the target's breaker and the least-latency statistics (shared across
        processes with Redis) learn from this request: a success that only resets
        counters, and the answer's latency, in one store step, without the answer
        waiting for it."""
        run, target = self.run, self.run.target
        if target is None or run.answer_started is None:
            return
        store = get_breaker_store()
        total = time.monotonic() - run.answer_started
        if run.success_unreported:
            run.success_unreported = False
            if status == UsageRecord.Status.SUCCESS:
                spawn(store.record_success(target.key, run.route.breaker, total_s=total, ttft_s=self.ttft))
            else:  # answered, then the client left (or we failed): the provider still worked
                spawn(engine.report(run, target, None, False))
        elif status == UsageRecord.Status.SUCCESS:
            spawn(store.record_latency(target.key, total_s=total, ttft_s=self.ttft))

    async def settle_admission(self) -> None:
        if self.admission is None or self.admission.settled:
            return
        usage = self.usage or Usage()
        cost = Decimal(0)
        if self.run.calls and self.run.target is not None:
            cost = self.run.target.model.price.cost(usage)
        await admission.settle(self.admission, usage.total_tokens, cost)

    def settle_in_background(self, status: str, http_status: int, error_kind: str = "") -> None:
        """For a cancelled request: the record must be written (and the reservation
        released) even though the request's own task is being torn down."""
        if self.settled or (not self.run.calls and (self.admission is None or self.admission.settled)):
            return
        spawn(self.settle(status, http_status, error_kind))


async def _record_later(entry: UsageEntry, delays: tuple[float, ...] = (0.5, 2, 5, 15, 30)) -> None:
    for delay in delays:
        await asyncio.sleep(delay)
        try:
            await write_usage(entry)
            return
        except DatabaseError:
            continue
    log.error("usage record %s could not be written: %s", entry.request_id, entry)


def _observe(entry: UsageEntry, call: Call) -> None:
    labels = (entry.route_name, entry.provider_name, entry.model_name)
    metrics.REQUESTS.labels(*labels, entry.status, str(entry.stream).lower()).inc()
    metrics.LATENCY.labels(*labels).observe(entry.latency_ms / 1000)
    if call.ttft is not None:
        metrics.TTFT.labels(*labels).observe(call.ttft)
    metrics.TOKENS.labels(*labels, "prompt").inc(entry.prompt_tokens)
    metrics.TOKENS.labels(*labels, "completion").inc(entry.completion_tokens)
    if entry.cost_usd:
        metrics.COST.labels(*labels).inc(float(entry.cost_usd))


async def gather_signals(route: RouteInfo, req: ChatRequest, key: KeyInfo, task_hint: str | None) -> Signals:
    """Shared state the strategy may consult: one read of breakers (and latencies)."""
    store = get_breaker_store()
    keys = [t.key for t in route.targets]
    signals = Signals(task_hint=task_hint)
    if keys:
        signals.breakers = await store.statuses(keys, route.breaker)
        if route.strategy == "least_latency":
            signals.latencies = await store.latencies(keys)
    if route.sticky_by == "user":
        signals.sticky_id = str(req.params.get("user") or f"key:{key.id}")
    elif route.sticky_by == "key":
        signals.sticky_id = f"key:{key.id}"
    return signals


async def prepare(authorization: str | None, body: bytes, task_hint: str | None = None) -> Call:
    """Steps 1-3 of the hot path, and the routing decision. Raises GatewayError."""
    return await prepare_for_key(await authenticate(authorization), body, task_hint)


async def prepare_for_key(key: KeyInfo, body: bytes, task_hint: str | None = None) -> Call:
    """prepare() for an already known caller (e.g. the admin's test call)."""
    req = parse_chat_request(body)
    route = await resolve_route(key, req.model)
    signals = await gather_signals(route, req, key, task_hint)
    decision = decide(route, req, signals)
    run = engine.Run(route, decision, closed=signals.closed())
    call = Call(request_id=new_request_id(), key=key, req=req, run=run)
    tokens, cost = reservation_estimate(req, decision)
    call.admission = await admission.admit(key, tokens, cost)
    return call


def reservation_estimate(req: ChatRequest, decision) -> tuple[int, Decimal]:
    """The most the request may use: prompt estimate plus max_tokens (or the configured
    reserve, bounded by the context window), at the priciest candidate."""
    prompt = estimate_prompt_tokens(req.messages)
    costs = [Decimal(0)]
    completion_for_rate = req.max_tokens or 0
    for candidate in decision.candidates:
        model = candidate.target.model
        completion = req.max_tokens or settings.GATEWAY_RESERVE_COMPLETION_TOKENS
        if model.context_window:
            completion = max(0, min(completion, model.context_window - prompt))
        costs.append(model.price.cost(Usage(prompt, completion)))
    return prompt + completion_for_rate, max(costs)


async def complete(call: Call, settle: bool = True) -> ChatResponse:
    """The answer, with its usage settled (ledger row committed) before returning;
    with settle=False the caller settles right after sending the response
    (GATEWAY_LEDGER_AFTER_RESPONSE)."""
    try:
        response = await engine.complete(call.run, call.req)
    except GatewayError as error:
        await call.settle(UsageRecord.Status.ERROR, error.status, _error_kind(call))
        raise
    except asyncio.CancelledError:
        call.settle_in_background(UsageRecord.Status.CLIENT_CLOSED, 499, "client_closed")
        raise
    call.usage = response.usage or Usage(
        estimate_prompt_tokens(call.req.messages),
        estimate_tokens("".join(str(c["message"].get("content") or "") for c in response.choices)),
        estimated=True,
    )
    if call.run.target is not None:
        call.cost = call.run.target.model.price.cost(call.usage)
    if settle:
        await call.settle(UsageRecord.Status.SUCCESS, 200)
    return response


async def open_stream(call: Call) -> AsyncIterator[ChatChunk]:
    """Open the stream (falling back while nothing was sent), then yield every chunk.

    Errors before the first chunk raise GatewayError (the view answers with a proper
    HTTP status); after it, they end the iteration with an error the transport sends
    in-band. Usage is settled when the iteration ends, however it ends.
    """
    try:
        head, rest = await engine.open_stream(call.run, call.req)
    except GatewayError as error:
        await call.settle(UsageRecord.Status.ERROR, error.status, _error_kind(call))
        raise
    except asyncio.CancelledError:
        call.settle_in_background(UsageRecord.Status.CLIENT_CLOSED, 499, "client_closed")
        raise
    return _relay(call, head, rest)


async def _relay(call: Call, head: list[ChatChunk], rest: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
    outcome: tuple[str, int, str] = (UsageRecord.Status.CLIENT_CLOSED, 499, "client_closed")
    try:
        for chunk in head:
            _account(call, chunk)
            yield chunk
        async for chunk in rest:
            _account(call, chunk)
            yield chunk
        outcome = (UsageRecord.Status.SUCCESS, 200, "")
    except ProviderError as error:
        # Headers (200) are already sent: the client sees an in-band error event.
        outcome = (UsageRecord.Status.ERROR, 200, error.kind.value)
        raise
    except Exception:
        outcome = (UsageRecord.Status.ERROR, 200, "internal")
        raise
    finally:
        if call.usage is None:  # cut or abandoned before the provider reported usage
            call.usage = call.estimated_usage()
        await _close_quietly(rest)
        verdict = _stream_verdict(call, outcome[2])
        if outcome[0] == UsageRecord.Status.CLIENT_CLOSED:
            # Our task is being torn down: finish the bookkeeping in the background.
            call.settle_in_background(*outcome)
            if verdict is not None:
                spawn(verdict)
        else:
            if verdict is not None:
                await verdict
            await call.settle(*outcome)


def _stream_verdict(call: Call, error_kind: str):
    """The stream's report to the target's breaker (deferred until it ended): a cut
    is a failure; a finished or client-abandoned stream shows a working provider."""
    target = call.run.target
    if target is None or error_kind == "internal":
        return None
    kind = ErrorKind(error_kind) if error_kind in ErrorKind._value2member_map_ else None
    return engine.report(call.run, target, kind, call.run.probe)


def _account(call: Call, chunk: ChatChunk) -> None:
    if chunk.usage is not None:
        call.usage = chunk.usage
    for choice in chunk.choices:
        delta = choice.get("delta") or {}
        content = delta.get("content")
        if content or delta.get("tool_calls"):
            if call.ttft is None:
                call.ttft = time.monotonic() - call.run.started
            if content:
                call.completion_text.append(content)
            for tc in delta.get("tool_calls") or []:
                call.completion_text.append((tc.get("function") or {}).get("arguments") or "")


async def _close_quietly(agen: AsyncIterator) -> None:
    try:
        await agen.aclose()  # closes the upstream connection: no orphaned generation
    except BaseException:  # noqa: BLE001 - teardown of a possibly cancelled stream
        pass


def _error_kind(call: Call) -> str:
    failed = [a.outcome for a in call.run.log if a.called and a.outcome != "ok"]
    return failed[-1] if failed else ""
