"""Structured logs: the request context every line carries, and the two formats.

The context is a `contextvars.ContextVar`, so it follows a request through every
`await` and every task it spawns (asyncio copies the context into a new task), and
never leaks into another request: each ASGI request, websocket message and Celery
task binds its own. What binds it:

    routing/api.py            `begin_request()` when a /v1 request arrives; the first
                              Call of that request takes its id (`claim_request_id`,
                              via pipeline.new_request_id), so the log lines, the
                              x-request-id header and the usage record share one id.
    streaming/consumers.py    one context per websocket message (`MessageLogContext`).
    gateway_project/celery.py the task's id while a task runs (task_prerun/postrun).

`RequestContextFilter` stamps each record with `request_id`, `trace_id` and `span_id`
(the current OpenTelemetry span, if opentelemetry is importable and a span is
recording) and the context's own fields; `JsonFormatter` (LOG_FORMAT=json) writes one
JSON object per line, `PlainFormatter` (the default) the usual text with
`request_id=...` added. `configure` (settings.LOGGING_CONFIG) applies settings.LOGGING
and, in JSON mode, gives the handlers that uvicorn, daphne and Celery set up
themselves the JSON formatter, so every line of the process is JSON.

No Django imports at module level: settings.LOGGING loads this module while Django
is being set up.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
import time
import uuid
from contextvars import ContextVar, Token
from typing import Any

import orjson

try:  # tracing is optional: without opentelemetry, lines simply have no trace_id
    from opentelemetry import trace as _otel_trace
except ImportError:  # pragma: no cover - opentelemetry-api is in requirements.txt
    _otel_trace = None

# Loggers whose handlers are configured outside settings.LOGGING (by the server or the
# worker before Django starts): in JSON mode their formatter is replaced.
FOREIGN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "daphne", "django.channels.server",
                   "celery", "celery.task", "celery.redirected")
# Record attributes that the JSON object takes from `extra={...}` when present.
FIELDS_ATTR = "fields"


class RequestContext:
    """What the lines of one unit of work share: its id, when it started, and a few
    named fields (the task's name, the websocket's path). `claimed` is set once a Call
    has taken the id (see `claim_request_id`); mutable on purpose: the tasks a request
    spawns share this object, so the view sees what the pipeline did."""

    __slots__ = ("request_id", "started", "fields", "claimed")

    def __init__(self, request_id: str, fields: dict[str, Any] | None = None) -> None:
        self.request_id = request_id
        self.started = time.monotonic()
        self.fields = fields or {}
        self.claimed = False


_context: ContextVar[RequestContext | None] = ContextVar("gateway_log_context", default=None)


def new_id() -> str:
    return uuid.uuid4().hex


def begin_request(request_id: str | None = None, **fields: Any) -> RequestContext:
    """A fresh context for a unit of work starting in the current task (an ASGI
    request: each runs in its own task, so nothing needs resetting)."""
    ctx = RequestContext(request_id or new_id(), fields)
    _context.set(ctx)
    return ctx


def bind(request_id: str, **fields: Any) -> Token:
    """Bind a context for a unit of work that shares its task with others (a Celery
    task, a websocket message): reset it with `reset(token)` when the work ends."""
    return _context.set(RequestContext(request_id, fields))


def reset(token: Token) -> None:
    _context.reset(token)


def current() -> RequestContext | None:
    return _context.get()


def current_request_id() -> str | None:
    ctx = _context.get()
    return ctx.request_id if ctx is not None else None


def claim_request_id() -> str:
    """The id for a new Call: the current request's own id the first time (so the
    lines logged before the Call existed carry the same id), else a new id bound in
    the current task (a second Call in one task; a Call outside any request)."""
    ctx = _context.get()
    if ctx is not None and not ctx.claimed:
        ctx.claimed = True
        return ctx.request_id
    fields = ctx.fields if ctx is not None else {}
    ctx = RequestContext(new_id(), fields)
    ctx.claimed = True
    _context.set(ctx)
    return ctx.request_id


def detached() -> contextvars.Context:
    """A copy of the current context without the request's log context, for shared
    work a request merely triggers (a batch flush, a configuration refresh serving
    every request): `loop.create_task(coro, context=logs.detached())`, so its lines do
    not carry the id of whichever request happened to start it."""
    context = contextvars.copy_context()
    context.run(_context.set, None)
    return context


def trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current OpenTelemetry span, in W3C hex, or None."""
    if _otel_trace is None:
        return None
    span_context = _otel_trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


def _stamp(record: logging.LogRecord) -> None:
    """Add the context to a record (once; explicit `extra=` values win)."""
    if getattr(record, "_gateway_stamped", False):
        return
    record._gateway_stamped = True
    ctx = _context.get()
    if getattr(record, "request_id", None) is None:
        record.request_id = ctx.request_id if ctx is not None else None
    record.log_context = ctx.fields if ctx is not None else {}
    if getattr(record, "trace_id", None) is None:
        ids = trace_ids()
        record.trace_id, record.span_id = ids if ids is not None else (None, None)


class RequestContextFilter(logging.Filter):
    """Stamps every record with the request context (installed on the handlers in
    settings.LOGGING, before ScrubSecrets). The formatters stamp records that reach
    them without it, so handlers configured elsewhere get the context too."""

    def filter(self, record: logging.LogRecord) -> bool:
        _stamp(record)
        return True


_last_second: tuple[int, str] = (-1, "")  # the last second formatted: lines come many per second


def _iso_time(created: float) -> str:
    global _last_second
    seconds, text = _last_second  # one read: another thread may replace it meanwhile
    if seconds != int(created):
        seconds = int(created)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, text)
    return f"{text}.{int((created - seconds) * 1000):03d}Z"


def _default(value: Any) -> str:
    return str(value)  # Decimal money stays exact as a string; anything else readable


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601), level, logger,
    message, request_id, trace_id/span_id when a span is active, the context's
    fields, a record's `extra={"fields": {...}}`, and the exception's traceback as
    the `exception` field (scrubbed by ScrubSecrets like the message)."""

    def format(self, record: logging.LogRecord) -> str:
        _stamp(record)
        line: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.request_id is not None:
            line["request_id"] = record.request_id
        if record.trace_id is not None:
            line["trace_id"] = record.trace_id
            line["span_id"] = record.span_id
        if record.log_context:
            line.update(record.log_context)
        fields = getattr(record, FIELDS_ATTR, None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            if not record.exc_text:  # ScrubSecrets already rendered (and scrubbed) it when it ran
                record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        line["pid"] = record.process
        return orjson.dumps(line, default=_default).decode()


class PlainFormatter(logging.Formatter):
    """The plain text format (settings.LOGGING's), with `request_id=...` before the
    message when the line belongs to a request, and a record's fields as `k=v` after."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        _stamp(record)
        fields = getattr(record, FIELDS_ATTR, None)
        if record.request_id is None and not fields:
            return super().formatMessage(record)
        message = record.message
        head = f"request_id={record.request_id} " if record.request_id is not None else ""
        tail = "".join(f" {k}={v}" for k, v in fields.items()) if fields else ""
        record.message = head + message + tail
        try:
            return super().formatMessage(record)
        finally:
            record.message = message


def json_mode() -> bool:
    from django.conf import settings

    return getattr(settings, "LOG_FORMAT", "plain") == "json"


def adopt_handlers(*logger_names: str) -> None:
    """In JSON mode, give every handler of these loggers (configured by the server or
    the worker, not by settings.LOGGING) the JSON formatter and the context filter.
    Idempotent; a no-op in plain mode (their own formats stay)."""
    if not json_mode():
        return
    formatter = JsonFormatter()
    for name in logger_names:
        for handler in logging.getLogger(name or None).handlers:
            if not isinstance(handler.formatter, JsonFormatter):
                handler.setFormatter(formatter)
            if not any(isinstance(f, RequestContextFilter) for f in handler.filters):
                handler.filters.insert(0, RequestContextFilter())  # before ScrubSecrets, like settings'


def configure(logging_settings: dict[str, Any]) -> None:
    """settings.LOGGING_CONFIG: dictConfig, then (JSON mode) the foreign handlers
    adopted and Python's warnings routed through logging, so no line is plain text."""
    logging.config.dictConfig(logging_settings)
    if json_mode():
        logging.captureWarnings(True)
        adopt_handlers(*FOREIGN_LOGGERS)
