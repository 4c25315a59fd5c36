"""The OpenAI-compatible REST API (/v1) as a lean ASGI application.

Django's request cycle costs several thread hops per request under ASGI (sync
signal receivers, response.close(), per-request thread-sensitive context); the /v1
hot path needs none of it, so this module speaks ASGI directly: read the body,
call the pipeline, send bytes. A client that disconnects cancels the handler, and
with it the upstream call (the pipeline still settles the request).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from contextlib import aclosing

from django.conf import settings
from django.db import DatabaseError
from redis.exceptions import RedisError

from billing import auth_throttle
from billing.keys import authenticate
from billing.models import UsageRecord
from gateway_project.errors import (AuthenticationFailed, GatewayError, InternalError, InvalidRequest, NotFound,
                                    ServiceUnavailable)
from gateway_project import logs  # the request's log context (request_id on every line)

from . import lookup, pipeline
from . import access_log  # the access line of a request no Call settled
from . import tracing  # the request's server span (routing.tracing)
from .cache.policy import cache_control
from .render import Headers, call_headers, completion_body, error_body, error_headers, sse
from .task_detection import HINT_HEADER

log = logging.getLogger("gateway.api")
JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream"), ("cache-control", "no-cache"), ("x-accel-buffering", "no")]


tracing.enabled()  # configured at startup: loading the SDK (~0.3 s) is not the first request's wait


class Disconnected(Exception):
    pass


# The other inbound APIs: path -> module of routing.inbound, each with
# `async handle(scope, body, send)` (auth, the pipeline, its own wire format) and
# `error_response(error, headers) -> (status, headers, body)` in its API's error format.
INBOUND = {
    "/v1/messages": "anthropic",
    "/v1/messages/count_tokens": "anthropic",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
}
_inbound_modules: dict[str, object | None] = {}


def inbound(name: str):
    """The inbound module `name` (routing.inbound.<name>), or None if it is not installed."""
    if name not in _inbound_modules:
        try:
            _inbound_modules[name] = importlib.import_module(f"routing.inbound.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"routing.inbound.{name}" and exc.name != "routing.inbound":
                raise
            _inbound_modules[name] = None
    return _inbound_modules[name]


def _inbound_for(path: str):
    name = INBOUND.get(path) or ("responses" if path.startswith("/v1/responses/") else None)
    return inbound(name) if name else None


def auth_header(scope) -> str | None:
    """The virtual key, from `Authorization: Bearer` or (Anthropic's SDK) `x-api-key`."""
    header = _header(scope, b"authorization")
    if header is None:
        api_key = _header(scope, b"x-api-key")
        if api_key is not None:
            header = f"Bearer {api_key}"
    return header


async def app(scope, receive, send) -> None:
    """ASGI entry for /v1/*: inside the request's server span when tracing is on."""
    if tracing.enabled():
        await tracing.serve(scope, receive, send, _app)
        return
    await _app(scope, receive, send)


async def _app(scope, receive, send) -> None:
    logs.begin_request()  # this request's id on every log line; its Call takes the same id
    try:
        body = await _read_body(receive)
    except Disconnected:
        return
    except GatewayError as error:
        access_log.refused(scope["path"], error)
        module = _inbound_for(scope["path"])
        if module is not None:
            await _respond_raw(send, *module.error_response(error, error_headers(error)))
        else:
            await _error(send, error)
        return
    handler = asyncio.ensure_future(_dispatch(scope, body, send))
    watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
    done, _ = await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if handler in done:
        watcher.cancel()
        handler.result()
        return
    handler.cancel()  # the client left: stop the work, and the upstream call with it
    try:
        await handler
    except asyncio.CancelledError:
        pass


async def _read_body(receive) -> bytes:
    """The whole body, bounded in size (413) and in time: a client that declares a
    body and does not send it is answered 408 after GATEWAY_REQUEST_READ_TIMEOUT_S."""
    try:
        async with asyncio.timeout(settings.GATEWAY_REQUEST_READ_TIMEOUT_S):
            return await _receive_body(receive)
    except TimeoutError:
        raise InvalidRequest(
            f"The request body did not arrive within {settings.GATEWAY_REQUEST_READ_TIMEOUT_S:g} s.",
            code="request_timeout", status=408, headers={"connection": "close"},  # and drop the connection
        ) from None


async def _receive_body(receive) -> bytes:
    chunks, size, limit = [], 0, settings.GATEWAY_MAX_BODY_BYTES
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise InvalidRequest("The request body is too large.", code="request_too_large", status=413)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _wait_for_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _dispatch(scope, body: bytes, send) -> None:
    path, method = scope["path"], scope["method"]
    try:
        if path == "/v1/chat/completions":
            _allow(method, "POST")
            await chat_completions(scope, body, send)
        elif (module := _inbound_for(path)) is not None:
            await module.handle(scope, body, send)
        elif path == "/v1/models":
            _allow(method, "GET")
            await _respond(send, 200, [], await list_models(scope))
            access_log.without_call(path, 200, "success")
        elif path.startswith("/v1/models/"):
            _allow(method, "GET")
            await _respond(send, 200, [], await retrieve_model(scope, path.removeprefix("/v1/models/")))
            access_log.without_call(path, 200, "success")
        else:  # /v1 itself and every unknown path under it
            raise NotFound(f"Unknown endpoint: {method} {path}", code="unknown_url")
    except Exception as exc:  # noqa: BLE001 - never a traceback to the client
        error = exc if isinstance(exc, GatewayError) else unexpected(exc, None)
        if isinstance(error, AuthenticationFailed):  # every /v1 endpoint's refused key ends here
            # Counted per address and key prefix; once throttled, held, then a 429 (billing.auth_throttle).
            error = await auth_throttle.failed(scope, auth_header(scope), error)
        access_log.refused(path, error)  # skipped when a Call of this request wrote its line
        module = _inbound_for(path) or (_anthropic_models(scope) if path.startswith("/v1/models") else None)
        if module is not None:  # that API's own error format
            await _respond_raw(send, *module.error_response(error, error_headers(error)))
        else:
            await _error(send, error)


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        error = InvalidRequest(f"Method {method} is not allowed here; use {allowed}.", code="method_not_allowed", status=405)
        error.headers["allow"] = allowed
        raise error


async def chat_completions(scope, body: bytes, send) -> None:
    call = await pipeline.prepare(auth_header(scope), body, _header(scope, HINT_HEADER.encode()))
    call.cache_control = cache_control(_header(scope, b"x-gateway-cache"))
    try:
        if not call.req.stream:
            after = settings.GATEWAY_LEDGER_AFTER_RESPONSE
            result = await pipeline.complete(call, settle=not after)
            headers = call_headers(call) + [("x-gateway-cost-usd", f"{call.cost:f}")]
            await _respond(send, 200, headers, completion_body(call, result))
            if after:  # shielded: a client hanging up now must not cancel the bookkeeping
                await asyncio.shield(call.settle(call.success_status, 200))
            return
        chunks = await pipeline.open_stream(call)
    except GatewayError as error:
        # Refused by the first stage (a rate limit, a budget): counted as a rejection.
        await _error(send, error, call_headers(call) if call.entered else None)
        return
    except Exception as exc:  # noqa: BLE001
        await call.settle(UsageRecord.Status.ERROR, 500, "internal")
        await _error(send, unexpected(exc, call.request_id), call_headers(call))
        return
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _encode(SSE + call_headers(call))})
        async with aclosing(sse(call, chunks)) as events:  # closes the stream (and upstream) on cancel
            async for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await chunks.aclose()  # settles a stream the client left before its first byte


def _anthropic_models(scope):
    """The Anthropic inbound module when the caller speaks Anthropic (anthropic-version)."""
    return inbound("anthropic") if _header(scope, b"anthropic-version") is not None else None


async def list_models(scope) -> bytes:
    key = await authenticate(auth_header(scope))
    routes = await lookup.allowed_routes(key)
    if (module := _anthropic_models(scope)) is not None:
        return module.models_body(routes)
    return lookup.models_body(routes)


async def retrieve_model(scope, name: str) -> bytes:
    key = await authenticate(auth_header(scope))
    route = await lookup.resolve_route(key, name)
    if (module := _anthropic_models(scope)) is not None:
        return module.models_body([route], single=True)
    return lookup.models_body([route], single=True)


def unexpected(exc: Exception, request_id: str | None) -> GatewayError:
    if isinstance(exc, DatabaseError):
        log.error("database unavailable: %s", type(exc).__name__)
        return ServiceUnavailable("The gateway cannot reach its database; try again shortly.")
    if isinstance(exc, RedisError):
        log.error("shared state (Redis) unavailable: %s", type(exc).__name__)
        return ServiceUnavailable("The gateway cannot reach its shared state (Redis); try again shortly.")
    log.exception("request %s failed unexpectedly", request_id or "-")
    return InternalError(f"The gateway failed unexpectedly (request {request_id or '-'}); this is a bug, not your fault.")


def _encode(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


async def _respond_raw(send, status: int, headers: Headers, body: bytes) -> None:
    """A complete response whose headers already name its content type."""
    headers = headers + [("content-length", str(len(body)))]
    await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": body})


async def _respond(send, status: int, headers: Headers, body: bytes) -> None:
    headers = JSON + headers + [("content-length", str(len(body)))]
    await send({"type": "http.response.start", "status": status, "headers": _encode(headers)})
    await send({"type": "http.response.body", "body": body})


async def _error(send, error: GatewayError, extra: Headers | None = None) -> None:
    request_id = next((v for k, v in extra or [] if k == "x-request-id"), None)
    headers = [h for h in extra or [] if h[0] != "x-request-id"] + error_headers(error, request_id)
    await _respond(send, error.status, headers, error_body(error))
