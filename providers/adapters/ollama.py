"""Ollama's native chat API (POST /api/chat): NDJSON streaming, options object, free;
and its embed API (POST /api/embed: a list of texts in, normalised vectors out)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from ..catalog import ModelInfo, ProviderInfo
from ..params import Param, as_list, map_params, overlay, table
from ..tokens import message_text
from ..types import (
    ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, EmbeddingRequest, EmbeddingResponse, ErrorKind,
    ProviderError, Usage, reported_tokens,
)
from ..http import get_session, iter_lines, timeout_for
from . import checks
from .. import tracecontext  # the attempt's traceparent on provider requests
from .base import (
    TRANSPORT_ERRORS, Adapter, RequestNotTranslatable, auth_headers, float32_vector, loads, provider_error,
    provider_headers, tool_arguments,
)

# OpenAI's sampling parameters go into Ollama's `options` object (its names match);
# `stop` must be a list there, and `max_tokens` is `num_predict`.
PARAMS = table(
    Param("temperature", to="options.temperature"),
    Param("top_p", to="options.top_p"),
    Param("seed", to="options.seed"),
    Param("stop", to="options.stop", transform=as_list),
    Param("presence_penalty", to="options.presence_penalty"),
    Param("frequency_penalty", to="options.frequency_penalty"),
    Param("max_tokens", to="options.num_predict"),
)


def _messages(messages: list[dict]) -> list[dict]:
    out = []
    for msg in messages:
        item: dict[str, Any] = {"role": msg.get("role"), "content": message_text(msg.get("content"), sep="")}
        images = [
            p["image_url"]["url"].split(";base64,", 1)[-1]
            for p in msg.get("content") or []
            if isinstance(msg.get("content"), list) and isinstance(p, dict) and p.get("type") == "image_url"
        ]
        if images:
            item["images"] = images
        if msg.get("tool_calls"):
            item["tool_calls"] = [
                {"function": {"name": c["function"]["name"], "arguments": tool_arguments(c["function"].get("arguments"))}}
                for c in msg["tool_calls"]
            ]
        out.append(item)
    return out


def _usage(obj: dict, provider: str) -> Usage:
    """Ollama's counters, both optional (prompt_eval_count is left out when the prompt
    came from its cache), each checked when present."""
    return Usage.reported(
        provider,
        reported_tokens(obj.get("prompt_eval_count"), provider, "prompt_eval_count", optional=True),
        reported_tokens(obj.get("eval_count"), provider, "eval_count", optional=True),
    )


def _checked_message(value: object, provider: str) -> dict:
    """The `message` of an answer or stream line: text content, tool calls as objects
    with a function object (Ollama's arguments are an object, not a string)."""
    message = checks.expect_object(value, provider, "message", optional=True)
    checks.expect_text(message.get("content"), provider, "message content")
    for call in checks.expect_list(message.get("tool_calls"), provider, "tool_calls", optional=True):
        function = checks.expect_object(checks.expect_object(call, provider, "a tool call").get("function"), provider, "a tool call's function")
        if not isinstance(function.get("name"), str):
            raise checks.bad(provider, "a tool call without a name")
        checks.expect_object(function.get("arguments"), provider, "a tool call's arguments", optional=True)
    return message


def _tool_calls(message: dict) -> list[dict]:
    return [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": c["function"]["name"], "arguments": orjson.dumps(c["function"].get("arguments") or {}).decode()},
        }
        for i, c in enumerate(message.get("tool_calls") or [])
    ]


def _finish(obj: dict, has_tools: bool) -> str:
    if has_tools:
        return "tool_calls"
    return "length" if obj.get("done_reason") == "length" else "stop"


class OllamaAdapter(Adapter):
    name = "ollama"
    serves_embeddings = True

    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        params = req.params
        body: dict[str, Any] = {"model": model.upstream_id, "messages": _messages(req.messages), "stream": stream}
        sampling = {**params, "max_tokens": req.max_tokens or None}  # either spelling, normalised
        map_params(overlay(PARAMS, model.provider.spec.param_table), sampling, passthrough=False, into=body)
        fmt = params.get("response_format") or {}
        if fmt.get("type") == "json_object":
            body["format"] = "json"
        elif fmt.get("type") == "json_schema":
            body["format"] = (fmt.get("json_schema") or {}).get("schema") or "json"
        if params.get("tools"):
            body["tools"] = params["tools"]
        return f"{model.provider.base_url}/api/chat", auth_headers(model), body

    def error_details(self, data: Any) -> tuple[str, str]:
        err = data.get("error") if isinstance(data, dict) else None
        return (str(err), "") if err else ("", "")

    def build_embedding_request(self, model: ModelInfo, req: EmbeddingRequest) -> tuple[str, dict, dict]:
        if not all(isinstance(text, str) for text in req.input):
            raise RequestNotTranslatable(
                f"{model.label} cannot embed token ids: Ollama's embed API takes text.", param="input")
        body: dict[str, Any] = {"model": model.upstream_id, "input": req.input}
        if req.dimensions is not None:
            body["dimensions"] = req.dimensions
        return f"{model.provider.base_url}/api/embed", auth_headers(model), body

    def parse_embedding_response(self, model: ModelInfo, data: Any, count: int) -> EmbeddingResponse:
        provider = model.provider.name
        answer = checks.expect_object(data, provider, "the embed answer")
        items = checks.expect_list(answer.get("embeddings"), provider, "the answer's embeddings")
        if len(items) != count:
            raise checks.bad(provider, f"{len(items)} embeddings for {count} inputs")
        vectors = [float32_vector(v, provider, f"embedding {i}") for i, v in enumerate(items)]
        prompt = answer.get("prompt_eval_count")
        return EmbeddingResponse(
            model=str(answer.get("model") or model.upstream_id),
            vectors=vectors,
            usage=None if prompt is None else Usage.reported(provider, prompt, 0),
        )

    def parse_response(self, model: ModelInfo, data: Any) -> ChatResponse:
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{model.provider.name}: answer has no message")
        provider = model.provider.name
        calls = _tool_calls(_checked_message(data["message"], provider))
        message: dict[str, Any] = {"role": "assistant", "content": data["message"].get("content") or ""}
        if calls:
            message["tool_calls"] = calls
        return ChatResponse(
            model=str(data.get("model") or model.upstream_id),
            choices=[{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(data, bool(calls))}],
            usage=_usage(data, provider),
        )

    async def parse_stream(self, model: ModelInfo, response: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
        provider = model.provider.name
        first = True
        saw_tools = False
        async for line in iter_lines(response):
            if not line.strip():
                continue
            obj = loads(line, provider)
            if not isinstance(obj, dict):
                raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: unexpected stream line")
            if obj.get("error"):
                raise provider_error(ErrorKind.UNAVAILABLE, provider, "stream error", obj["error"],
                                     secrets=[model.provider.api_key], limit=200)
            name = str(obj.get("model") or model.upstream_id)
            message = _checked_message(obj.get("message"), provider)
            delta: dict[str, Any] = {"content": message.get("content") or ""}
            if first:
                delta["role"] = "assistant"
                first = False
            calls = _tool_calls(message)
            if calls:
                saw_tools = True
                delta["tool_calls"] = [dict(c, index=i) for i, c in enumerate(calls)]
            if obj.get("done"):
                if delta.get("content") or calls or "role" in delta:
                    yield ChatChunk(name, [{"index": 0, "delta": delta, "finish_reason": None}])
                yield ChatChunk(name, [{"index": 0, "delta": {}, "finish_reason": _finish(obj, saw_tools)}])
                yield ChatChunk(name, [], usage=_usage(obj, provider))
                return
            yield ChatChunk(name, [{"index": 0, "delta": delta, "finish_reason": None}])
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: stream ended before done")

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        """GET /api/tags, then POST /api/show per model (a local call, a few at a time)
        for its `capabilities` and context length; a model /api/show cannot describe
        (an older Ollama) is listed without them."""
        headers = provider_headers(provider)
        tags = checks.expect_object(await self._get_json(provider, f"{provider.base_url}/api/tags", headers, timeout),
                                    provider.name, "the model list")
        names = []
        for item in checks.expect_list(tags.get("models"), provider.name, "the model list's models"):
            name = checks.expect_object(item, provider.name, "a listed model").get("name")
            if not isinstance(name, str) or not name:
                raise checks.bad(provider.name, "a listed model has no name")
            names.append(name)
        gate = asyncio.Semaphore(4)

        async def describe(name: str) -> DiscoveredModel:
            async with gate:
                return _discovered(name, await self._show(provider, name, headers, timeout))

        return list(await asyncio.gather(*(describe(name) for name in names[:SHOW_AT_MOST]))) + [
            DiscoveredModel(upstream_id=name) for name in names[SHOW_AT_MOST:]]

    async def _show(self, provider: ProviderInfo, name: str, headers: dict, timeout: float) -> dict:
        try:
            async with get_session().post(f"{provider.base_url}/api/show", json={"model": name},
                                          headers=tracecontext.outgoing(headers),
                                          timeout=timeout_for(timeout)) as response:
                if response.status >= 400:
                    return {}
                data = loads(await response.read(), provider.name)
        except (*TRANSPORT_ERRORS, ProviderError):
            return {}
        return data if isinstance(data, dict) else {}


SHOW_AT_MOST = 100  # models described by /api/show; the rest are listed by name only
# /api/show `capabilities` -> the gateway's names ("completion" is chat; "insert" is fill-in-the-middle).
_CAPABILITIES = {"completion": ("chat", "streaming", "json_mode"), "tools": ("tools",), "vision": ("vision",),
                 "thinking": ("thinking",), "embedding": ("embeddings",)}


def _discovered(name: str, show: dict) -> DiscoveredModel:
    caps = show.get("capabilities") if isinstance(show.get("capabilities"), list) else []
    info = show.get("model_info") if isinstance(show.get("model_info"), dict) else {}
    window = next((v for k, v in info.items() if k.endswith(".context_length") and type(v) is int and v > 0), None)
    return DiscoveredModel(
        upstream_id=name, display_name=name,
        capabilities=frozenset(c for cap in caps if isinstance(cap, str) for c in _CAPABILITIES.get(cap, ())),
        context_window=window,
    )
