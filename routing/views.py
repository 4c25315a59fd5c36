"""The OpenAI-compatible REST API (/v1). Async end to end; short by design:
authenticate, validate, call the pipeline, render."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError

from billing.admission import rate_headers
from billing.keys import authenticate
from billing.models import UsageRecord
from gateway_project.errors import GatewayError, InternalError, InvalidRequest, NotFound, ServiceUnavailable
from providers.types import ChatChunk, ChatResponse, ProviderError

from . import metrics, pipeline
from .task_detection import HINT_HEADER as TASK_HINT_HEADER

JSON = "application/json"
log = logging.getLogger("gateway.api")


def error_response(error: GatewayError, request_id: str | None = None) -> HttpResponse:
    if request_id is None:  # refused before any provider call
        metrics.REJECTED.labels(str(error.status), str(error.code)).inc()
    response = HttpResponse(orjson.dumps(error.body()), status=error.status, content_type=JSON)
    for name, value in error.headers.items():
        response[name] = value
    if request_id:
        response["x-request-id"] = request_id
    if error.status >= 500:
        # The gateway already retried and fell back under the route's policy; SDKs
        # retrying on top would multiply load on failing providers.
        response["x-should-retry"] = "false"
    return response


def _headers(response: HttpResponse, call: pipeline.Call) -> None:
    response["x-request-id"] = call.request_id
    if call.admission is not None:
        for name, value in rate_headers(call.admission.rate).items():
            response[name] = value
    response["x-gateway-route"] = call.route.name
    run = call.run
    response["x-gateway-attempts"] = str(run.calls)
    response["x-gateway-strategy"] = run.decision.strategy
    if run.decision.task is not None:
        response["x-gateway-task"] = run.decision.task.task.value
    response["x-gateway-candidates"] = ",".join(run.decision.labels[:10])
    response["x-gateway-attempt-log"] = ",".join(f"{a.target}={a.outcome}" for a in run.log[:10])
    target = call.run.target
    if target is not None:
        response["x-gateway-provider"] = target.model.provider.name
        response["x-gateway-model"] = target.model.label


def _usage_json(usage) -> dict:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def render_completion(call: pipeline.Call, result: ChatResponse) -> bytes:
    return orjson.dumps(
        {
            "id": f"chatcmpl-{call.request_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": result.model,
            "choices": result.choices,
            "usage": _usage_json(call.usage),
            "system_fingerprint": None,
        }
    )


async def sse(call: pipeline.Call, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[bytes]:
    """OpenAI's SSE framing: chat.completion.chunk events, optional usage chunk, [DONE]."""
    base = {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion.chunk", "created": int(time.time())}
    include_usage = call.req.include_usage
    model = ""
    try:
        async for chunk in chunks:
            model = chunk.model or model
            if not chunk.choices:
                continue  # upstream usage-only chunk: re-emitted below, once, in our shape
            event = {**base, "model": model, "choices": chunk.choices}
            if include_usage:
                event["usage"] = None
            yield b"data: " + orjson.dumps(event) + b"\n\n"
    except ProviderError as error:
        body = GatewayError(
            f"The stream was interrupted: {error.message}", code=f"upstream_{error.kind.value}"
        ).body()
        body["error"]["type"] = "upstream_error"
        yield b"data: " + orjson.dumps(body) + b"\n\n"
        return
    except Exception:
        log.exception("stream %s failed unexpectedly", call.request_id)
        body = InternalError(f"The gateway failed while streaming (request {call.request_id}).").body()
        yield b"data: " + orjson.dumps(body) + b"\n\n"
        return
    if include_usage and call.usage is not None:
        event = {**base, "model": model, "choices": [], "usage": _usage_json(call.usage)}
        yield b"data: " + orjson.dumps(event) + b"\n\n"
    yield b"data: [DONE]\n\n"


def _unexpected(exc: Exception, request_id: str | None) -> GatewayError:
    if isinstance(exc, DatabaseError):
        log.error("database unavailable: %s", type(exc).__name__)
        return ServiceUnavailable("The gateway cannot reach its database; try again shortly.")
    log.exception("request %s failed unexpectedly", request_id or "-")
    return InternalError(f"The gateway failed unexpectedly (request {request_id or '-'}); this is a bug, not your fault.")


def openai_errors(view):
    """Whatever goes wrong in a view, the client gets OpenAI's error format."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return await view(request, *args, **kwargs)
        except GatewayError as error:
            return error_response(error)
        except Exception as exc:  # noqa: BLE001 - never a traceback to the client
            return error_response(_unexpected(exc, None))

    return wrapper


def _method_not_allowed(request: HttpRequest, allowed: str) -> HttpResponse | None:
    if request.method == allowed:
        return None
    error = InvalidRequest(f"Method {request.method} is not allowed here; use {allowed}.", code="method_not_allowed", status=405)
    response = error_response(error)
    response["allow"] = allowed
    return response


def _body(request: HttpRequest) -> bytes:
    try:
        return request.body
    except RequestDataTooBig:
        raise InvalidRequest("The request body is too large.", code="request_too_large", status=413) from None


@csrf_exempt
@openai_errors
async def chat_completions(request: HttpRequest) -> HttpResponse:
    if (refused := _method_not_allowed(request, "POST")) is not None:
        return refused
    call = await pipeline.prepare(
        request.headers.get("authorization"), _body(request), request.headers.get(TASK_HINT_HEADER)
    )
    try:
        if not call.req.stream:
            result = await pipeline.complete(call)
            response = HttpResponse(render_completion(call, result), content_type=JSON)
            response["x-gateway-cost-usd"] = f"{call.cost:f}"
        else:
            chunks = await pipeline.open_stream(call)
            response = StreamingHttpResponse(sse(call, chunks), content_type="text/event-stream")
            response["cache-control"] = "no-cache"
            response["x-accel-buffering"] = "no"
    except GatewayError as error:
        response = error_response(error, call.request_id)
    except Exception as exc:  # noqa: BLE001
        await call.settle(UsageRecord.Status.ERROR, 500, "internal")
        response = error_response(_unexpected(exc, call.request_id), call.request_id)
    _headers(response, call)
    return response


def _model_json(route) -> dict:
    return {"id": route.name, "object": "model", "created": route.created, "owned_by": "gateway"}


@openai_errors
async def list_models(request: HttpRequest) -> HttpResponse:
    if (refused := _method_not_allowed(request, "GET")) is not None:
        return refused
    key = await authenticate(request.headers.get("authorization"))
    routes = await pipeline.allowed_routes(key)
    body = {"object": "list", "data": [_model_json(r) for r in routes]}
    return HttpResponse(orjson.dumps(body), content_type=JSON)


@openai_errors
async def retrieve_model(request: HttpRequest, name: str) -> HttpResponse:
    if (refused := _method_not_allowed(request, "GET")) is not None:
        return refused
    key = await authenticate(request.headers.get("authorization"))
    route = await pipeline.resolve_route(key, name)
    return HttpResponse(orjson.dumps(_model_json(route)), content_type=JSON)


@csrf_exempt
async def not_found(request: HttpRequest, path: str = "") -> HttpResponse:
    return error_response(NotFound(f"Unknown endpoint: {request.method} /v1/{path}", code="unknown_url"))
