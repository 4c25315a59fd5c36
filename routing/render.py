"""OpenAI wire format out: completions, SSE chunks, errors, and the gateway's headers.
Pure functions over the pipeline's results; the ASGI layer (routing.api) sends them."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import orjson

from gateway_project.errors import GatewayError, InternalError
from providers.types import ChatChunk, ChatResponse, ProviderError

from . import metrics
from .pipeline import Call

log = logging.getLogger("gateway.api")
Headers = list[tuple[str, str]]


def error_body(error: GatewayError) -> bytes:
    return orjson.dumps(error.body())


def error_headers(error: GatewayError, request_id: str | None = None) -> Headers:
    if request_id is None:  # refused before any provider call
        metrics.REJECTED.labels(str(error.status), str(error.code)).inc()
    headers = list(error.headers.items())
    if request_id:
        headers.append(("x-request-id", request_id))
    if error.status >= 500:
        # The gateway already retried and fell back under the route's policy; SDKs
        # retrying on top would multiply load on failing providers.
        headers.append(("x-should-retry", "false"))
    return headers


def call_headers(call: Call) -> Headers:
    """What the gateway tells about a request: id, route, decision, who answered."""
    run = call.run
    headers = [
        ("x-request-id", call.request_id),
        ("x-gateway-route", call.route.name),
        ("x-gateway-attempts", str(run.calls)),
        ("x-gateway-strategy", run.decision.strategy),
        ("x-gateway-candidates", ",".join(run.decision.labels[:10])),
        ("x-gateway-attempt-log", ",".join(f"{a.target}={a.outcome}" for a in run.log[:10])),
    ]
    headers.extend(call.headers)  # what the stages added (rate limits, cache, guardrails)
    if run.decision.task is not None:
        headers.append(("x-gateway-task", run.decision.task.task.value))
    if run.target is not None:
        headers.append(("x-gateway-provider", run.target.model.provider.name))
        headers.append(("x-gateway-model", run.target.model.label))
    return headers


def _usage_json(usage) -> dict:
    body = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cache_read_tokens:  # as OpenAI reports prompt-cache reads, whichever provider served them
        body["prompt_tokens_details"] = {"cached_tokens": usage.cache_read_tokens}
    if usage.reasoning_tokens:  # as OpenAI reports reasoning models' thinking, whichever provider served them
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def completion_body(call: Call, result: ChatResponse) -> bytes:
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


async def sse(call: Call, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[bytes]:
    """OpenAI's SSE framing: chat.completion.chunk events, optional usage chunk, [DONE]."""
    base = {"id": f"chatcmpl-{call.request_id}", "object": "chat.completion.chunk", "created": int(time.time())}
    include_usage = call.req.include_usage
    model = ""
    # Each event is the bytes orjson would write for {**base, "model", "choices"[, "usage": None]}
    # (compact, keys in that order), with the constant parts encoded once per stream: per
    # chunk only the choices are encoded (and the model, when it changes).
    head = b'data: {"id":' + orjson.dumps(base["id"]) + b',"object":"chat.completion.chunk","created":' + \
        orjson.dumps(base["created"]) + b',"model":'
    tail = b',"usage":null}\n\n' if include_usage else b"}\n\n"
    prefix_of, prefix = None, b""
    try:
        async for chunk in chunks:
            model = chunk.model or model
            if not chunk.choices:
                continue  # upstream usage-only chunk: re-emitted below, once, in our shape
            if model is not prefix_of:
                prefix_of, prefix = model, head + orjson.dumps(model) + b',"choices":'
            yield b"".join((prefix, orjson.dumps(chunk.choices), tail))
    except ProviderError as error:
        body = GatewayError(f"The stream was interrupted: {error.message}", code=f"upstream_{error.kind.value}").body()
        body["error"]["type"] = "upstream_error"
        yield b"data: " + orjson.dumps(body) + b"\n\n"
        return
    except GatewayError as error:  # a stage refused the answer mid-stream (an output guardrail)
        yield b"data: " + orjson.dumps(error.body()) + b"\n\n"
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
