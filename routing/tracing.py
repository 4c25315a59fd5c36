"""OpenTelemetry traces of the /v1 API, after the GenAI semantic conventions.

Off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (settings): then the SDK is never
imported, no SDK object exists, and every hook below costs one attribute check. On,
spans go over OTLP (HTTP/protobuf) through a BatchSpanProcessor: a background thread
exports them, a request never waits on the collector (a full queue drops spans).

The spans of one request (docs/operations/tracing.md):
- one SERVER span per inbound /v1 request (`serve`, around routing.api), continuing
  the caller's W3C `traceparent`: the operation (chat, embeddings), the route, the
  request id, the HTTP status, the request's usage and cost (`gateway.cost` with
  `gateway.cost.currency`), filled in at settlement (`settled`);
- one CLIENT span per upstream attempt (routing.engine: `start_attempt`, `within`,
  `attempt_done`, `attempt_failed`), so a fallback shows as two attempts: provider,
  requested and answering model, usage, time to first chunk, error.type,
  server.address/port. The attempt's `traceparent` goes upstream on the provider
  request (providers.tracecontext, in the adapters' send path). A stream's span
  stays open until the stream ends (`Run.trace`, closed by `settled`).
Never in an attribute: a provider key, a virtual key or its prefix. Prompts and
answers only for a route whose debug setting asks for them (routing.tracing_content).

Setup is idempotent and resettable: `configure_tracing()` (from settings on first use,
or given an endpoint), `reset_tracing()` (flush, shut down, back to "not configured").
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings

from providers import tracecontext

from . import tracing_content as content

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from providers.types import ChatChunk, ChatResponse

    from .catalog import TargetInfo
    from .engine import Run
    from .pipeline import Call

SERVICE_NAME = "llm-gateway"  # unless OTEL_SERVICE_NAME says otherwise
CURRENCY = "USD"  # of every cost the gateway computes (billing.money)
# Inbound paths and the GenAI operation each performs (others: no gen_ai.operation.name).
OPERATIONS = {
    "/v1/chat/completions": "chat",
    "/v1/messages": "chat",
    "/v1/responses": "chat",
    "/v1/embeddings": "embeddings",
}
KNOWN_PATHS = frozenset({*OPERATIONS, "/v1/models", "/v1/messages/count_tokens"})
# gen_ai.provider.name: the conventions' well-known values; other kinds are named as they are.
PROVIDER_NAMES = {
    "openai": "openai", "azure_openai": "azure.ai.openai", "azure_openai_v1": "azure.ai.openai",
    "anthropic": "anthropic", "cohere": "cohere", "gemini": "gcp.gemini", "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock", "groq": "groq", "mistral": "mistral_ai", "deepseek": "deepseek",
    "perplexity": "perplexity", "xai": "x_ai",
}


class _Setup:
    """The process's tracing: not configured yet, off (tracer None), or on."""

    __slots__ = ("configured", "tracer", "provider", "endpoint", "propagator")

    def __init__(self) -> None:
        self.configured = False
        self.tracer: Tracer | None = None
        self.provider: Any = None
        self.endpoint = ""
        self.propagator: Any = None


_setup = _Setup()
_NULL = contextlib.nullcontext()


class _Api:
    """The OpenTelemetry API names the hooks use, bound once tracing is configured on
    (an import statement in a hook costs ~1 µs each time; a request ran six)."""

    context: Any = None  # opentelemetry.context
    SpanKind: Any = None
    StatusCode: Any = None
    set_span_in_context: Any = None

    @classmethod
    def bind(cls) -> None:
        from opentelemetry import context
        from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context

        cls.context, cls.SpanKind, cls.StatusCode, cls.set_span_in_context = (
            context, SpanKind, StatusCode, set_span_in_context)


class RequestTrace:
    """The server span of the request being served, and what settlement adds to it."""

    __slots__ = ("span", "operation", "status", "error", "stream_text")

    def __init__(self, span: Span, operation: str | None) -> None:
        self.span, self.operation, self.status, self.error = span, operation, 0, False
        self.stream_text: content.StreamText | None = None


# The request's trace, for the code beneath routing.api (a contextvar: tasks the
# request spawns, its settlement in the background included, see the same one).
_request: contextvars.ContextVar[RequestTrace | None] = contextvars.ContextVar("gateway_request_trace", default=None)


# --- setup -------------------------------------------------------------------------------
def configure_tracing(endpoint: str | None = None) -> bool:
    """Set tracing up from `endpoint` (an OTLP/HTTP base URL such as
    http://collector:4318; default settings.OTEL_EXPORTER_OTLP_ENDPOINT, "" = off).
    Idempotent: the same endpoint again changes nothing; another one replaces the
    exporter. Returns whether tracing is on."""
    if endpoint is None:
        endpoint = getattr(settings, "OTEL_EXPORTER_OTLP_ENDPOINT", "") or ""
    if _setup.configured and endpoint == _setup.endpoint:
        return _setup.tracer is not None
    reset_tracing()
    _setup.configured, _setup.endpoint = True, endpoint
    if not endpoint:
        return False
    # Imported only now: a gateway without an endpoint never loads the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": SERVICE_NAME}
    provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
    # The signal's own variable wins, as the OTLP exporters define it; else base URL + /v1/traces.
    url = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or endpoint.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    _setup.provider, _setup.propagator = provider, TraceContextTextMapPropagator()
    tracecontext.use(_setup.propagator)
    _setup.tracer = provider.get_tracer("gateway", schema_url="https://opentelemetry.io/schemas/1.37.0")
    _Api.bind()
    return True


def reset_tracing() -> None:
    """Export what is queued, shut the exporter down, and forget the setup: the next
    `enabled()` configures again from settings."""
    provider = _setup.provider
    _setup.__init__()
    tracecontext.use(None)
    if provider is not None:
        provider.shutdown()


def flush_tracing(timeout_s: float = 5.0) -> bool:
    """Export every finished span now (tests, shutdown); False if it timed out."""
    provider = _setup.provider
    return True if provider is None else provider.force_flush(int(timeout_s * 1000))


atexit.register(reset_tracing)  # the queued spans of a stopping process still go out


def enabled() -> bool:
    """Is tracing on? (Configured from settings on first call.) The cheap check every
    hook makes first."""
    if not _setup.configured:
        configure_tracing()
    return _setup.tracer is not None


def current_trace_id() -> str:
    """The trace id (32 hex digits) of the request being served, or "" (for log lines)."""
    state = _request.get()
    if state is None:
        return ""
    return format(state.span.get_span_context().trace_id, "032x")


# --- the server span (routing.api) -------------------------------------------------------
async def serve(scope, receive, send, app) -> None:
    """Run the ASGI `app` for one /v1 request inside its server span."""
    otel_context, SpanKind, set_span_in_context = _Api.context, _Api.SpanKind, _Api.set_span_in_context
    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
               if k in (b"traceparent", b"tracestate")}
    parent = _setup.propagator.extract(carrier) if carrier else None
    path, method = scope["path"], scope.get("method", "")
    operation = OPERATIONS.get(path) if method == "POST" else None
    attributes = {"http.request.method": method, "url.path": path, "url.scheme": scope.get("scheme", "http")}
    if operation:
        attributes["gen_ai.operation.name"] = operation
    name = f"{method} {path if path in KNOWN_PATHS else '/v1'}"
    span = _setup.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
    state = RequestTrace(span, operation)
    token = _request.set(state)
    ctx_token = otel_context.attach(set_span_in_context(span, parent))
    try:
        await app(scope, receive, _TracedSend(state, send))
    except BaseException as exc:
        _error(state, type(exc).__name__)
        raise
    finally:
        _finish_server(state)
        otel_context.detach(ctx_token)
        _request.reset(token)


class _TracedSend:
    """The server's `send`, noting the response's start on the span: a plain callable
    returning the server's own awaitable, so a stream's chunks pay no extra coroutine."""

    __slots__ = ("state", "send")

    def __init__(self, state: RequestTrace, send) -> None:
        self.state, self.send = state, send

    def __call__(self, message):
        if message["type"] == "http.response.start":
            _response_started(self.state, message)
        return self.send(message)


def _response_started(state: RequestTrace, message: dict) -> None:
    span = state.span
    state.status = message["status"]
    span.set_attribute("http.response.status_code", state.status)
    for key, value in message.get("headers") or ():
        if key == b"x-request-id":
            span.set_attribute("gateway.request_id", value.decode("latin-1"))
        elif key == b"x-gateway-route":
            span.set_attribute("gateway.route", value.decode("latin-1"))


def _finish_server(state: RequestTrace) -> None:
    span = state.span
    if state.status >= 500:  # server spans are errors for 5xx only (HTTP conventions)
        span.set_status(_Api.StatusCode.ERROR)
        if not state.error:
            _error(state, str(state.status))
    span.end()


def _error(state: RequestTrace, kind: str) -> None:
    state.span.set_attribute("error.type", kind)
    state.error = True


def settled(call: Call, status: str, http_status: int, error_kind: str) -> None:
    """At settlement (routing.pipeline.Call.settle): the request's route, usage, cost
    and content on its server span; a stream's attempt span ended with its usage."""
    _end_stream_attempt(call, error_kind)
    state = _request.get()
    if state is None or not state.span.is_recording():
        return  # not served by routing.api (admin test call), or settled after the response
    span, usage, route = state.span, call.usage, call.route
    if state.operation:
        span.update_name(f"{state.operation} {route.name}")
    values: dict[str, Any] = {  # gathered: one set_attributes call (one lock) for the lot
        "gateway.route": route.name,
        "gateway.request_id": call.request_id,
        "gateway.status": status,
        "gateway.attempts": call.run.calls,
        "gen_ai.request.model": call.req.model,
        "gateway.cost": float(call.cost),
        "gateway.cost.currency": CURRENCY,
    }
    if call.key.team_name:
        values["gateway.team"] = call.key.team_name
    target = call.run.target if call.run.calls else None
    if target is not None:
        values["gateway.target"] = target.model.label
    if usage is not None:
        values.update(_usage(usage))
        if usage.estimated:  # the provider reported nothing (a cut stream): the gateway counted
            values["gateway.usage.estimated"] = True
    if call.ttft is not None:
        values["gen_ai.response.time_to_first_chunk"] = round(call.ttft, 6)
    for param, attribute in (("temperature", "gen_ai.request.temperature"), ("top_p", "gen_ai.request.top_p")):
        value = call.req.params.get(param)
        if isinstance(value, int | float) and not isinstance(value, bool):
            values[attribute] = value
    if call.req.max_tokens is not None:
        values["gen_ai.request.max_tokens"] = call.req.max_tokens
    span.set_attributes(values)
    if error_kind:
        _error(state, error_kind)
    if content.wants_content(call) and call.endpoint != "embeddings":
        _content(state, call)


def _content(state: RequestTrace, call: Call) -> None:
    span = state.span
    if call.blocked:
        span.set_attribute(content.WITHHELD, "blocked")  # the prompt was never redacted
        return
    span.set_attribute("gen_ai.input.messages", content.input_messages(call.req.messages))
    if content.restored(call):
        span.set_attribute(content.WITHHELD, "restored_originals")
    elif state.stream_text is not None:
        span.set_attribute("gen_ai.output.messages", content.output_messages(state.stream_text.choices()))


def answered(call: Call, response: ChatResponse) -> None:
    """A complete answer as the client gets it (after the output stages), for a
    route whose spans carry content (routing.pipeline.complete)."""
    state = _request.get()
    if state is None or not content.wants_content(call) or content.restored(call):
        return
    state.span.set_attribute("gen_ai.output.messages", content.output_messages(response.choices))


def watch_stream(call: Call, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
    """The relayed stream, its text gathered for the span if the route wants content
    (else `chunks` itself: no extra step per chunk)."""
    state = _request.get()
    if state is None or not content.wants_content(call):
        return chunks
    state.stream_text = content.StreamText()
    return _gathering(state.stream_text, chunks)


async def _gathering(text: content.StreamText, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[ChatChunk]:
    try:
        async for chunk in chunks:
            text.add(chunk.choices)
            yield chunk
    finally:
        await chunks.aclose()  # its own cleanup settles the request


# --- client spans, one per upstream attempt (routing.engine) ---------------------------
def start_attempt(run: Run, target: TargetInfo) -> Span | None:
    """The attempt's client span, a child of the request's (None: tracing off)."""
    if _setup.tracer is None:
        return None
    model = target.model
    state = _request.get()
    operation = state.operation if state is not None and state.operation else "chat"
    attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": PROVIDER_NAMES.get(model.provider.kind, model.provider.kind),
        "gen_ai.request.model": model.upstream_id,
        "gateway.provider": model.provider.name,
        "gateway.target": model.label,
        "gateway.route": run.route.name,
        "gateway.attempt": run.calls + 1,
        **_server(model.provider.base_url),
    }
    return _setup.tracer.start_span(f"{operation} {model.upstream_id}", kind=_Api.SpanKind.CLIENT,
                                    attributes=attributes)


class _Within:
    """The attempt's span as the current one while it calls (providers.tracecontext
    reads it); ended as cancelled if the request is torn down meanwhile."""

    __slots__ = ("span", "token")

    def __init__(self, span: Span) -> None:
        self.span, self.token = span, None

    def __enter__(self) -> Span:
        self.token = _Api.context.attach(_Api.set_span_in_context(self.span))
        return self.span

    def __exit__(self, kind, exc, tb) -> None:
        _Api.context.detach(self.token)
        if kind is not None and not issubclass(kind, Exception) and self.span.is_recording():
            attempt_failed(self.span, "cancelled")  # the client left; other failures: the engine's


def within(span: Span | None):
    return _NULL if span is None else _Within(span)


def attempt_done(run: Run, span: Span | None, result: Any) -> None:
    """A successful attempt: a complete answer ends its span; a stream's stays open
    (on `run.trace`) until settlement, with its time to first chunk."""
    if span is None:
        return
    if not span.is_recording():  # sampled out: nothing to add, nothing to end
        return
    if isinstance(result, tuple):  # engine.open_stream: (head ending with the first output chunk, rest)
        head = result[0]
        span.set_attribute("gen_ai.response.time_to_first_chunk", round((time.time_ns() - span.start_time) / 1e9, 6))
        if head and head[-1].model:
            span.set_attribute("gen_ai.response.model", head[-1].model)
        run.trace = span
        return
    values: dict[str, Any] = {}
    if getattr(result, "model", None):
        values["gen_ai.response.model"] = result.model
    if getattr(result, "usage", None) is not None:
        values.update(_usage(result.usage))
    choices = getattr(result, "choices", None)
    if choices:
        reasons = [str(c.get("finish_reason")) for c in choices if c.get("finish_reason")]
        if reasons:
            values["gen_ai.response.finish_reasons"] = reasons
    span.set_attributes(values)
    span.end()


def attempt_failed(span: Span | None, kind: str, status: int | None = None) -> None:
    """A failed attempt: its error kind (routing.engine's outcome) as error.type."""
    if span is None:
        return
    span.set_attribute("error.type", kind)
    if status is not None:
        span.set_attribute("http.response.status_code", status)
    span.set_status(_Api.StatusCode.ERROR, kind)
    span.end()


def _end_stream_attempt(call: Call, error_kind: str) -> None:
    span, call.run.trace = call.run.trace, None
    if span is None or not span.is_recording():
        return
    if call.usage is not None:
        span.set_attributes(_usage(call.usage))
    if error_kind and error_kind != "client_closed":
        attempt_failed(span, error_kind)  # cut mid-stream
        return
    span.end()


def _usage(usage) -> dict[str, int]:
    values = {"gen_ai.usage.input_tokens": usage.prompt_tokens, "gen_ai.usage.output_tokens": usage.completion_tokens}
    if usage.cache_read_tokens:
        values["gen_ai.usage.cache_read.input_tokens"] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        values["gen_ai.usage.cache_creation.input_tokens"] = usage.cache_write_tokens
    return values


@functools.lru_cache(maxsize=256)
def _server(base_url: str) -> dict[str, Any]:
    """server.address/port of a provider's base URL (its host only: never user:password)."""
    try:
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return {}
    return {"server.address": parts.hostname, "server.port": port} if parts.hostname else {}
