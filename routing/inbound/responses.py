"""POST /v1/responses: the OpenAI Responses API (what Codex CLI and the OpenAI Agents
SDK speak), stateless, through the same pipeline as chat.

The request is translated to the internal chat request (responses_input), so every
target of a route can answer it, and the answer back to a Response object or its
typed event stream (responses_output). Keys, routes, budgets, guardrails, cache,
fallback before the first byte and the one usage record per request are the
pipeline's, as for chat; the record's endpoint is "responses". Errors are OpenAI's
error JSON, as on chat. Nothing is stored: GET/DELETE /v1/responses/{id} answer 404
and `previous_response_id` a 400 that says to send the whole conversation.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from django.conf import settings

from billing.keys import authenticate
from billing.models import UsageRecord
from gateway_project.errors import GatewayError, NotFound

from .. import api, pipeline
from ..cache.policy import cache_control
from ..lookup import resolve_route
from ..render import Headers, call_headers, error_body
from ..task_detection import HINT_HEADER
from .responses_input import STATELESS, parse_responses_request
from .responses_output import response_body, sse

PATH = "/v1/responses"
SESSION_HEADER = b"session_id"  # Codex CLI's conversation id: recorded on the usage row, never trusted
SESSION_MAX = 100  # UsageRecord.client_session


def error_response(error: GatewayError, headers: Headers) -> tuple[int, Headers, bytes]:
    """The same error JSON as chat (OpenAI's format: the SDK maps the status to its exceptions)."""
    return error.status, api.JSON + headers, error_body(error)


async def handle(scope, body: bytes, send) -> None:
    key = await authenticate(api.auth_header(scope))
    if scope["path"] != PATH:  # /v1/responses/{id}, .../input_items, .../cancel: nothing is stored
        raise NotFound(f"No stored response at {scope['path']}. {STATELESS}", code="response_not_found")
    api._allow(scope["method"], "POST")
    parsed = parse_responses_request(body)
    route = await resolve_route(key, parsed.chat.model)
    call = await pipeline.plan(key, parsed.chat, route, api._header(scope, HINT_HEADER.encode()))
    call.endpoint = "responses"
    call.client_session = (api._header(scope, SESSION_HEADER) or "")[:SESSION_MAX]
    call.cache_control = cache_control(api._header(scope, b"x-gateway-cache"))
    try:
        if not call.req.stream:
            after = settings.GATEWAY_LEDGER_AFTER_RESPONSE
            result = await pipeline.complete(call, settle=not after)
            headers = call_headers(call) + [("x-gateway-cost-usd", f"{call.cost:f}")]
            await api._respond(send, 200, headers, response_body(call, parsed.shown, result))
            if after:  # shielded: a client hanging up now must not cancel the bookkeeping
                await asyncio.shield(call.settle(call.success_status, 200))
            return
        chunks = await pipeline.open_stream(call)
    except GatewayError as error:
        # Refused by a stage (a rate limit, a budget) or every target failed before the first byte.
        await api._error(send, error, call_headers(call) if call.entered else None)
        return
    except Exception as exc:  # noqa: BLE001
        await call.settle(UsageRecord.Status.ERROR, 500, "internal")
        await api._error(send, api.unexpected(exc, call.request_id), call_headers(call))
        return
    try:
        await send({"type": "http.response.start", "status": 200, "headers": api._encode(api.SSE + call_headers(call))})
        async with aclosing(sse(call, parsed.shown, chunks)) as events:  # closes the stream (and upstream) on cancel
            async for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await chunks.aclose()  # settles a stream the client left before its first byte
