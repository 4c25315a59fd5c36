"""Anthropic's Messages API, inbound: what the Anthropic SDKs and Claude Code speak.

    POST /v1/messages               JSON or SSE (Anthropic's event sequence)
    POST /v1/messages/count_tokens  {"input_tokens": n}
    GET  /v1/models                 (routing.api, with an anthropic-version header) models_body()

The virtual key comes as `x-api-key` or `Authorization: Bearer` (Claude Code's
ANTHROPIC_AUTH_TOKEN); `model` is a route name. The request runs through the same
pipeline as chat (keys, budgets, guardrails, cache, fallback before the first byte, one
usage record with endpoint "messages"); an Anthropic target gets it as it came
(anthropic_request: the native copy), any other target its translation, and the answer
comes back in Anthropic's format either way (anthropic_response). Errors are
Anthropic's `{"type": "error", "error": {"type", "message"}}` with the statuses its SDK
maps to exception classes.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from datetime import UTC, datetime

import orjson
from django.conf import settings

from billing.keys import authenticate
from billing.models import UsageRecord
from gateway_project.errors import GatewayError
from providers.adapters import adapter_for
from providers.adapters.base import RequestNotTranslatable
from providers.types import ProviderError

from .. import pipeline
from ..api import JSON, SSE, _allow, _encode, _header, _respond_raw, auth_header, unexpected
from ..cache.policy import cache_control
from ..catalog import RouteInfo
from ..lookup import resolve_route
from ..render import Headers, call_headers, error_headers
from ..task_detection import HINT_HEADER
from .anthropic_request import estimate_input_tokens, parse_messages_request
from .anthropic_response import error_json, message_body, sse

log = logging.getLogger("gateway.api")
SESSION_HEADER = b"x-claude-code-session-id"
SESSION_MAX = 100  # UsageRecord.client_session's length
FORWARDED = (b"anthropic-version", b"anthropic-beta")  # kept for an Anthropic target (passthrough)
COUNT_TIMEOUT_S = 10.0

# The gateway's statuses as Anthropic's error types (the SDK picks its exception class
# by status: 400 BadRequestError, 401 AuthenticationError, 403 PermissionDeniedError,
# 404 NotFoundError, 413 ..., 429 RateLimitError, 5xx InternalServerError, 529 OverloadedError).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    504: "timeout_error",
}
# Every target overloaded, rate limited or out of rotation: Anthropic's own "overloaded".
OVERLOADED_CODES = frozenset({"upstream_unavailable", "upstream_rate_limited", "circuit_open"})


def anthropic_status(error: GatewayError) -> tuple[int, str]:
    """(HTTP status, Anthropic error type) for a gateway error."""
    if error.status == 503:
        return (529, "overloaded_error") if error.code in OVERLOADED_CODES else (503, "api_error")
    default = "api_error" if error.status >= 500 else "invalid_request_error"
    return error.status, ERROR_TYPES.get(error.status, default)


def error_response(error: GatewayError, headers: Headers, request_id: str | None = None) -> tuple[int, Headers, bytes]:
    """The error in Anthropic's format: (status, headers with the content type, body)."""
    status, kind = anthropic_status(error)
    if request_id:
        headers = headers + [("request-id", request_id)]
    return status, JSON + headers, orjson.dumps(error_json(kind, error.message, request_id))


def models_body(routes: list[RouteInfo], single: bool = False) -> bytes:
    """GET /v1/models (or /v1/models/{id}) in Anthropic's shape: routes are the models."""
    data = [{"type": "model", "id": r.name, "display_name": r.name,
             "created_at": datetime.fromtimestamp(r.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")} for r in routes]
    if single:
        return orjson.dumps(data[0])
    return orjson.dumps({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                         "last_id": data[-1]["id"] if data else None})


def client_session(scope) -> str:
    """Claude Code's session id, for the usage record: printable ASCII, bounded; never
    used to authenticate or authorise anything."""
    value = _header(scope, SESSION_HEADER) or ""
    return "".join(c for c in value if "!" <= c <= "~")[:SESSION_MAX]


def _native_headers(scope) -> dict[str, str]:
    return {name.decode(): value for name in FORWARDED if (value := _header(scope, name))}


async def handle(scope, body: bytes, send) -> None:
    _allow(scope["method"], "POST")
    if scope["path"] == "/v1/messages/count_tokens":
        await count_tokens(scope, body, send)
    else:
        await messages(scope, body, send)


async def _send_error(send, error: GatewayError, extra: Headers | None = None) -> None:
    request_id = next((v for k, v in extra or [] if k == "x-request-id"), None)
    headers = [h for h in extra or [] if h[0] != "x-request-id"] + error_headers(error, request_id)
    await _respond_raw(send, *error_response(error, headers, request_id))


async def messages(scope, body: bytes, send) -> None:
    key = await authenticate(auth_header(scope))
    req = parse_messages_request(body, _native_headers(scope))
    route = await resolve_route(key, req.model)
    call = await pipeline.plan(key, req, route, _header(scope, HINT_HEADER.encode()))
    call.endpoint = "messages"
    call.client_session = client_session(scope)
    call.cache_control = cache_control(_header(scope, b"x-gateway-cache"))
    try:
        if not req.stream:
            after = settings.GATEWAY_LEDGER_AFTER_RESPONSE
            result = await pipeline.complete(call, settle=not after)
            headers = JSON + call_headers(call) + [("request-id", call.request_id),
                                                   ("x-gateway-cost-usd", f"{call.cost:f}")]
            await _respond_raw(send, 200, headers, message_body(call, result))
            if after:  # shielded: a client hanging up now must not cancel the bookkeeping
                await asyncio.shield(call.settle(call.success_status, 200))
            return
        chunks = await pipeline.open_stream(call)
    except GatewayError as error:
        # Refused by a stage (a rate limit, a budget), or every target failed before
        # the first byte: a proper HTTP status, in Anthropic's format.
        await _send_error(send, error, call_headers(call) if call.entered else None)
        return
    except Exception as exc:  # noqa: BLE001
        await call.settle(UsageRecord.Status.ERROR, 500, "internal")
        await _send_error(send, unexpected(exc, call.request_id), call_headers(call))
        return
    try:
        headers = SSE + call_headers(call) + [("request-id", call.request_id)]
        await send({"type": "http.response.start", "status": 200, "headers": _encode(headers)})
        async with aclosing(sse(call, chunks)) as events:  # closes the stream (and upstream) on cancel
            async for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await chunks.aclose()  # settles a stream the client left before its first byte


async def count_tokens(scope, body: bytes, send) -> None:
    """The input tokens of a Messages request, as the route's first target counts them
    when it is an Anthropic model (its count_tokens endpoint), else the gateway's
    estimate (also when that count fails). Free and unrecorded, like Anthropic's."""
    key = await authenticate(auth_header(scope))
    req = parse_messages_request(body, _native_headers(scope), count_tokens=True)
    route = await resolve_route(key, req.model)
    counted, source = await _provider_count(route, req), "provider"
    if counted is None:
        counted, source = estimate_input_tokens(req), "estimate"
    headers = JSON + [("x-gateway-route", route.name), ("x-gateway-token-count", source)]
    await _respond_raw(send, 200, headers, orjson.dumps({"input_tokens": counted}))


async def _provider_count(route: RouteInfo, req) -> int | None:
    if not route.targets:
        return None
    model = route.targets[0].model
    counter = getattr(adapter_for(model), "count_tokens", None)
    if counter is None:
        return None
    timeout = min(model.provider.timeout_s, COUNT_TIMEOUT_S)
    try:
        async with asyncio.timeout(timeout):
            return await counter(model, req, timeout)
    except (ProviderError, RequestNotTranslatable, TimeoutError) as exc:
        log.warning("count_tokens on %s failed, answering the estimate: %s", model.label, exc)
        return None
