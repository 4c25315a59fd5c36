"""The hot path, transport-agnostic: the /v1 API (JSON and SSE), the admin's test
call and the playground all run it the same way.

    prepare()              authenticate -> validate -> resolve route -> signals -> decide
    complete() / stream()  the stages' on_request (routing.stages: admission, ...),
                           then the provider (routing.engine) unless a stage answered,
                           then the stages' response hooks in reverse order, and
                           settlement: the stages' on_finish, one usage record, metrics,
                           and the after-answer hooks in the background.

Settlement happens exactly once per request (`Call.settle`), including failures and
client disconnects; a usage record is written for every request that reached a
provider, was answered by a stage, or was blocked by one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from billing import money
from billing.admission import Admission
from billing.keys import KeyInfo, authenticate
from billing.models import UsageRecord
from billing.usage import UsageEntry, submit_usage, write_usage
from gateway_project.background import spawn
from gateway_project.errors import GatewayError
from gateway_project.logs import claim_request_id  # the request's log context id (gateway_project/logs.py)
from providers.tokens import estimate_prompt_tokens, estimate_tokens
from providers.types import ChatRequest, ChatResponse, Usage

from . import engine, metrics, stages
from . import tracing  # the request's spans: filled in at settlement
from . import access_log  # one access line per request, at settlement
from .breaker import get_breaker_store
from .catalog import RouteInfo
from .schemas import parse_chat_request
from .stages import Answer, Blocked, Stage
from .gathering import gather_signals, local_signals, read_shared_signals
from .lookup import resolve_route
from .strategies import Signals, capable_route, decide

log = logging.getLogger("gateway.pipeline")
Status = UsageRecord.Status


def new_request_id() -> str:
    return claim_request_id()  # the id the request's log lines already carry (or a new one, bound)


@dataclass(slots=True)
class Call:
    """One request on its way through the gateway: what every stage reads and adds to."""

    request_id: str
    key: KeyInfo
    req: ChatRequest
    run: engine.Run
    signals: Signals | None = None
    usage: Usage | None = None
    cost: Decimal = Decimal(0)
    ttft: float | None = None
    completion_text: list[str] = field(default_factory=list)
    settled: bool = False
    admission: Admission | None = None  # the admission stage's rate decision and budget lease
    headers: list[tuple[str, str]] = field(default_factory=list)  # stages' response headers
    annotations: dict[str, Any] = field(default_factory=dict)  # stages' notes for the usage record
    entered: list[Stage] = field(default_factory=list)  # stages whose on_request returned, in order
    answer: Answer | None = None  # a stage answered (no provider was called)
    answered_by: Stage | None = None
    blocked: bool = False  # a stage refused the request (status `blocked`)
    raw_answer: ChatResponse | None = None  # as the provider (or answering stage) gave it
    pending_signals: asyncio.Future | None = None  # plan's concurrent read of shared state
    stage_state: dict[str, Any] = field(default_factory=dict)  # a stage's per-request state, by stage name
    cache_control: str | None = None  # the client's x-gateway-cache request header (bypass | refresh)
    endpoint: str = "chat"  # the inbound API: chat, messages, responses (the usage record's `endpoint`)
    client_session: str = ""  # a client's session id header (Claude Code's), recorded, never trusted
    received: float = 0.0  # monotonic time prepare() began (0: unknown, run.started stands in); for the metrics

    @property
    def route(self) -> RouteInfo:
        return self.run.route

    @property
    def recordable(self) -> bool:
        """Does this request get a usage record (a provider was tried, or a stage
        answered or blocked it)? Refusals before admission do not."""
        return bool(self.run.calls) or self.answer is not None or self.blocked

    @property
    def success_status(self) -> str:
        return self.answer.status if self.answer is not None else Status.SUCCESS

    def annotate(self, stage: str, **values: Any) -> None:
        """Add to the usage record's `annotations` under the stage's name (JSON values)."""
        self.annotations.setdefault(stage, {}).update(values)

    def after_stages(self) -> list[Stage]:
        """The stages whose after_answer wants this request's answer (entered, not the
        one that answered, and asking for it: a cache that bypassed does not)."""
        return [s for s in self.entered
                if s is not self.answered_by and s.overrides("after_answer") and s.wants_answer(self)]

    def usage_or_zero(self) -> Usage:
        return self.usage or Usage()

    def actual_cost(self) -> Decimal:
        """What the request cost: the answering target's price over the usage, or the
        answering stage's own cost; 0 when nobody answered."""
        if self.answer is not None:
            return self.answer.cost
        if self.run.calls and self.run.target is not None:
            return money.actual_cost(self.run.target.model.price, self.usage_or_zero())
        return Decimal(0)

    def entry(self, status: str, http_status: int, error_kind: str = "") -> UsageEntry:
        """The usage record of this request (called by settle, after it set `cost`)."""
        target = self.run.target if self.run.calls else None
        model = target.model if target else None
        usage = self.usage_or_zero()
        # What the same tokens would have cost on the route's first target: the
        # savings report compares routing decisions against "always the default".
        # A stage's answer (a cache hit) saved nothing by routing: its saving is its own.
        if self.answer is None and self.route.targets:
            baseline = money.actual_cost(self.route.targets[0].model.price, usage)
        else:
            baseline = self.cost
        latency = time.monotonic() - self.run.started
        decision = self.run.decision
        return UsageEntry(
            request_id=self.request_id,
            key_id=self.key.id,
            key_prefix=self.key.prefix,
            team_id=self.key.team_id,
            team_name=self.key.team_name,
            route_id=self.route.id or None,  # 0: an unsaved route tested from the admin (routing.drafts)
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
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            endpoint=self.endpoint,
            client_session=self.client_session,
            input_price_per_mtok=model.price.input_per_mtok if model else Decimal(0),
            output_price_per_mtok=model.price.output_per_mtok if model else Decimal(0),
            cost_usd=self.cost,
            baseline_cost_usd=baseline,
            cache_saved_usd=self.answer.saved if self.answer is not None else Decimal(0),
            latency_ms=int(latency * 1000),
            ttft_ms=int(self.ttft * 1000) if self.ttft is not None else None,
            attempts=self.run.calls,
            attempt_log=[a.as_dict() for a in self.run.log],
            strategy=decision.strategy,
            task_type=decision.task.task.value if decision.task else "",
            candidates=[{"target": c.label, "reason": c.reason} for c in decision.candidates],
            annotations={k: dict(v) if isinstance(v, dict) else v for k, v in self.annotations.items()},
        )

    def estimated_usage(self) -> Usage:
        return Usage(
            estimate_prompt_tokens(self.req.messages),
            estimate_tokens("".join(self.completion_text)),
            estimated=True,
        )

    async def settle(self, status: str, http_status: int, error_kind: str = "") -> None:
        """Exactly once: the stages' on_finish (reservations released, actual cost
        settled) and, if the request is recordable, its usage record — the two at the
        same time (one Redis step and one ledger commit, not one after the other) —
        plus metrics, and the after-answer hooks of a successful answer in the
        background. Annotations are taken as they are when settlement starts."""
        if self.settled:
            return
        self.settled = True
        _drop_pending(self)
        self.cost = self.actual_cost()  # once: the record and the stages' settlement share it
        tracing.settled(self, status, http_status, error_kind)
        if not self.recordable:
            access_log.call_settled(self, None, status, http_status, error_kind)
            await _finish_stages(self)
            return
        entry = self.entry(status, http_status, error_kind)
        if self.run.calls and self.run.target is not None and self.run.target.model.unpriced:
            entry.annotations["pricing"] = {"unpriced": True}  # served at $0, never silently: flagged
        access_log.call_settled(self, entry, status, http_status, error_kind)
        self.report_after_answer(status)
        if http_status == 200 and status in (Status.SUCCESS, Status.CACHE_HIT) and self.raw_answer is not None:
            if stages.active().any_after and self.after_stages():
                spawn(_after_answer(self, self.raw_answer))
        # The row is queued first and written while the stages finish (with Redis: the
        # settlement's round trip overlaps the ledger commit); both end before we return.
        stored = submit_usage(entry)
        await _finish_stages(self)
        try:
            await asyncio.shield(stored)  # a cancelled request must not cancel its row
        except DatabaseError:
            # Stored nowhere (database and dead-letter file both failed): the client still
            # gets its answer; the record is retried in the background (idempotent by
            # request id, so a late success cannot double count).
            spawn(_record_later(entry))
        finally:
            _observe(entry, self)  # here: the client waited for the stages' settlement and the row

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
            if status == Status.SUCCESS:
                spawn(store.record_success(target.key, run.route.breaker, total_s=total, ttft_s=self.ttft,
                                           stats_key=target.stats_key))
            else:  # answered, then the client left (or we failed): the provider still worked
                spawn(engine.report(run, target, None, False))
        elif status == Status.SUCCESS:
            spawn(store.record_latency(target.stats_key, total_s=total, ttft_s=self.ttft))

    def settle_in_background(self, status: str, http_status: int, error_kind: str = "") -> None:
        """For a cancelled request: the record must be written (and the reservation
        released) even though the request's own task is being torn down."""
        if not self.settled:
            spawn(self.settle(status, http_status, error_kind))

    async def settle_error(self, error: GatewayError) -> None:
        if isinstance(error, Blocked) or self.blocked:
            self.blocked = True  # an answer refused on its way out: stages see it in on_finish
            await self.settle(Status.BLOCKED, error.status, "blocked")
        else:
            await self.settle(Status.ERROR, error.status, _error_kind(call=self))


async def _finish_stages(call: Call) -> None:
    for stage in reversed(call.entered):
        if stage.overrides("on_finish"):
            try:
                await stage.on_finish(call)
            except Exception:  # noqa: BLE001 - one stage's failure must not skip the record
                log.exception("stage %s failed to finish request %s", stage.name, call.request_id)


async def _after_answer(call: Call, response: ChatResponse) -> None:
    for stage in call.after_stages():
        try:
            await stage.after_answer(call, response)
        except Exception:  # noqa: BLE001 - after the answer: log, never fail the request
            log.exception("stage %s failed after answering request %s", stage.name, call.request_id)


async def _record_later(entry: UsageEntry, delays: tuple[float, ...] = (0.5, 2, 5, 15, 30)) -> None:
    for delay in delays:
        await asyncio.sleep(delay)
        try:
            await write_usage(entry)
            return
        except DatabaseError:
            continue
    log.error("usage record %s could not be written", entry.request_id)


def _observe(entry: UsageEntry, call: Call) -> None:
    """The request's Prometheus series (routing.metrics), at the end of settlement.
    Total latency runs from prepare() (or the engine run, for callers that skip it) to
    now; the overhead is that minus the time spent waiting on providers
    (engine.Run.upstream_s). In-memory increments only: no I/O on the hot path."""
    series = metrics.request_series(entry.route_name, entry.provider_name, entry.model_name, entry.team_name)
    series.requests(entry.status, entry.error_kind, entry.stream).inc()
    total = time.monotonic() - (call.received or call.run.started)
    series.latency.observe(total)
    series.overhead.observe(max(0.0, total - call.run.upstream_s))
    if call.ttft is not None:
        series.ttft.observe(call.ttft)
    tokens_in, tokens_out, cache_read, cache_write = series.tokens
    tokens_in.inc(entry.prompt_tokens)
    tokens_out.inc(entry.completion_tokens)
    cache_read.inc(entry.cache_read_tokens)
    cache_write.inc(entry.cache_write_tokens)
    if call.usage is not None and call.usage.reasoning_tokens:
        series.reasoning.inc(call.usage.reasoning_tokens)
    if entry.cost_usd:
        series.cost.inc(float(entry.cost_usd))


# --- prepare: who, what, where to ----------------------------------------------------
async def prepare(authorization: str | None, body: bytes, task_hint: str | None = None) -> Call:
    """Authenticate, validate, resolve the route and decide. Raises GatewayError."""
    received = time.monotonic()  # the overhead metric counts authentication and parsing too
    call = await prepare_for_key(await authenticate(authorization), body, task_hint)
    call.received = received
    return call


async def prepare_for_key(key: KeyInfo, body: bytes, task_hint: str | None = None) -> Call:
    """prepare() for an already known caller (e.g. the admin's test call)."""
    req = parse_chat_request(body)
    return await plan(key, req, await resolve_route(key, req.model), task_hint)


async def plan(key: KeyInfo, req: ChatRequest, route: RouteInfo, task_hint: str | None = None,
               signals: Signals | None = None) -> Call:
    """The routing decision for a parsed request on a resolved route: the signals
    (unless given, e.g. by the dry run with its own random generator) and the
    strategy's candidate order. Nothing is reserved or called yet."""
    capable_route(route, req)  # a request no target can serve: the client's 400, before any shared read
    if signals is None and settings.REDIS_URL and route.targets:
        # Shared state is a network round trip away: read it while the stages run
        # (admission's own round trip), and decide again with it before the engine
        # calls anyone. Breakers and latencies only reorder the candidates, so the
        # first, state-blind decision has the same candidates for the stages to see
        # (admission reserves at the priciest of them).
        signals = local_signals(route, req, key, task_hint)
        pending = asyncio.ensure_future(read_shared_signals(route, signals))
        pending.add_done_callback(_retrieved)  # a path that never awaits it (Redis down) logs no "never retrieved"
        run = engine.Run(route, decide(route, req, signals))
        call = Call(request_id=new_request_id(), key=key, req=req, run=run, signals=signals)
        call.pending_signals = pending
        return call
    if signals is None:
        signals = await gather_signals(route, req, key, task_hint)
    decision = decide(route, req, signals)
    run = engine.Run(route, decision, closed=signals.closed())
    return Call(request_id=new_request_id(), key=key, req=req, run=run, signals=signals)


async def _final_decision(call: Call) -> None:
    """Before the engine calls anyone: the decision with the shared state read
    meanwhile (plan's concurrent read), if it was deferred."""
    pending = call.pending_signals
    if pending is None:
        return
    call.pending_signals = None
    await pending
    call.run.decision = decide(call.route, call.req, call.signals)
    call.run.closed = call.signals.closed()


def _retrieved(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()  # marks it retrieved; whoever awaits it still gets the exception


def _drop_pending(call: Call) -> None:
    """A request that ends before the engine (a cache hit, a refusal): the concurrent
    read is not needed. It is left to finish, not cancelled: its command is already on
    the wire, and redis-py drops a connection whose command was cancelled, so the next
    request would pay for a new connection (seen as HELLO on ~5-8% of cache hits). It
    is marked retrieved when it ends (plan's done callback), whatever it raised."""
    pending = call.pending_signals
    if pending is not None:
        call.pending_signals = None
        if pending.done():
            pending.exception()  # retrieved: no "never retrieved" warning


# --- the stages ------------------------------------------------------------------------
async def _request_stages(call: Call) -> Answer | None:
    """Every stage's on_request, in list order; the first answer ends the walk."""
    for stage in stages.active().all:
        if stage.overrides("on_request"):
            try:
                answer = await stage.on_request(call)
            except Blocked:
                call.blocked = True
                raise
            call.entered.append(stage)
            if answer is not None:
                call.answer, call.answered_by = answer, stage
                return answer
        else:
            call.entered.append(stage)
    return None


def _outer(call: Call, hook: str) -> list[Stage]:
    """Stages whose response-side `hook` applies, innermost first (reverse list order),
    leaving out the stage that answered (its own answer needs no second look)."""
    return [s for s in reversed(call.entered) if s is not call.answered_by and s.overrides(hook)]


async def preview(call: Call) -> list[tuple[str, str]]:
    """The dry run's view of the stages: (stage, what it would do), no side effects."""
    notes = []
    for stage in stages.active().all:
        if stage.overrides("preview"):
            note = await stage.preview(call)
            if note:
                notes.append((stage.name, note))
    return notes


# --- non-streamed answers ----------------------------------------------------------------
async def complete(call: Call, settle: bool = True) -> ChatResponse:
    """The answer, with its usage settled (ledger row committed) before returning;
    with settle=False the caller settles right after sending the response
    (GATEWAY_LEDGER_AFTER_RESPONSE: `call.settle(call.success_status, 200)`)."""
    try:
        answer = await _request_stages(call)
        if answer is None:
            await _final_decision(call)
            response = await engine.complete(call.run, call.req)
            call.usage = response.usage or Usage(
                estimate_prompt_tokens(call.req.messages),
                estimate_tokens("".join(str(c["message"].get("content") or "") for c in response.choices)),
                estimated=True,
            )
        else:
            response = answer.response
            call.usage = response.usage or Usage()
        call.raw_answer = response
        if stages.active().any_response:
            for stage in _outer(call, "on_response"):
                response = await stage.on_response(call, response)
        tracing.answered(call, response)  # as the client gets it (content only if the route asks)
    except GatewayError as error:
        await call.settle_error(error)
        raise
    except asyncio.CancelledError:
        call.settle_in_background(Status.CLIENT_CLOSED, 499, "client_closed")
        raise
    call.cost = call.actual_cost()
    if settle:
        await call.settle(call.success_status, 200)
    return response


def _error_kind(call: Call) -> str:
    failed = [a.outcome for a in call.run.log if a.called and a.outcome != "ok"]
    return failed[-1] if failed else ""


# The streamed half of the path lives in routing/relay.py; callers keep using pipeline.
from .relay import Stream, open_stream  # noqa: E402,F401
