"""OpenAI chat completions wire format, for OpenAI and every OpenAI-compatible API.

The gateway's public dialect is OpenAI's, so requests pass through nearly as sent:
the model id is replaced, parameters the kind does not support are dropped, and
streams always ask for usage so the gateway can bill them. Embeddings go to
POST {base}/embeddings the same way, always asking for floats.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from ..catalog import ModelInfo, ProviderInfo
from ..params import map_params
from ..types import (
    ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, EmbeddingRequest, EmbeddingResponse, ErrorKind,
    ProviderError, Usage, reported_tokens,
)
from . import checks
from .base import Adapter, auth_headers, float32_vector, loads, provider_error, provider_headers


def _usage(data: Any, provider: str) -> Usage | None:
    """`usage` of an answer or chunk: null/absent is none (a stream's chunks before the
    last), an object must carry both counts; anything else is a bad answer."""
    if data is None:
        return None
    data = checks.expect_object(data, provider, "usage")
    usage = Usage.reported(provider, data.get("prompt_tokens"), data.get("completion_tokens"))
    details = data.get("prompt_tokens_details")
    if isinstance(details, dict):  # OpenAI's automatic prompt caching: cached input is billed lower
        cached = reported_tokens(details.get("cached_tokens"), provider, "cached_tokens", optional=True)
        usage.cache_read_tokens = min(cached, usage.prompt_tokens)
    elif "prompt_cache_hit_tokens" in data:  # DeepSeek's name for the same
        cached = reported_tokens(data["prompt_cache_hit_tokens"], provider, "prompt_cache_hit_tokens", optional=True)
        usage.cache_read_tokens = min(cached, usage.prompt_tokens)
    out = data.get("completion_tokens_details")
    if isinstance(out, dict):  # o-series and other reasoning models: part of completion_tokens
        reasoning = reported_tokens(out.get("reasoning_tokens"), provider, "reasoning_tokens", optional=True)
        usage.reasoning_tokens = min(reasoning, usage.completion_tokens)
    return usage


def _stream_choice(c: Any, provider: str) -> dict:
    """A stream choice as the gateway relays it: {index, delta, logprobs, finish_reason},
    each checked (checks.*) in that order. The common shapes (an int index, a delta of
    string role/content and no tool calls, a string or null finish_reason) are told
    here; anything else goes through the checks themselves, which decide and word the error."""
    if type(c) is not dict:
        c = checks.expect_object(c, provider, "a stream choice")
    index = c.get("index")
    if type(index) is not int or index < 0:
        index = checks.expect_index(index, provider, 0)
    delta = c.get("delta")
    if type(delta) is not dict or not _plain_delta(delta):
        delta = checks.chat_message(delta, provider, "a stream delta", optional=True)
    finish = c.get("finish_reason")
    if finish is not None and type(finish) is not str:
        finish = checks.finish_reason(finish, provider)
    return {"index": index, "delta": delta, "logprobs": c.get("logprobs"), "finish_reason": finish}


def _plain_delta(delta: dict) -> bool:
    """A delta checks.chat_message would pass as it is: string-or-null role and content, no tool calls."""
    content = delta.get("content")
    if content is not None and type(content) is not str:
        return False
    role = delta.get("role")
    if role is not None and type(role) is not str:
        return False
    return delta.get("tool_calls") is None


def _embedding_usage(data: Any, provider: str) -> Usage | None:
    """An embeddings answer's `usage` ({prompt_tokens, total_tokens}); absent is none
    (some OpenAI-compatible servers leave it out: the gateway then estimates)."""
    if data is None:
        return None
    data = checks.expect_object(data, provider, "usage")
    return Usage.reported(provider, data.get("prompt_tokens"), 0)


class OpenAIAdapter(Adapter):
    name = "openai"
    serves_embeddings = True

    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        body = map_params(model.provider.spec.param_table, req.params, passthrough=True)
        body["model"] = model.upstream_id
        body["messages"] = req.messages
        if stream:
            body["stream"] = True
            if model.provider.spec.stream_usage:
                body["stream_options"] = {"include_usage": True}
        return f"{model.provider.base_url}/chat/completions", auth_headers(model), body

    def build_embedding_request(self, model: ModelInfo, req: EmbeddingRequest) -> tuple[str, dict, dict]:
        body = map_params(model.provider.spec.param_table, req.params, passthrough=True)
        body["model"] = model.upstream_id
        body["input"] = req.input
        body["encoding_format"] = "float"  # the gateway encodes base64 itself when asked
        if req.dimensions is not None:
            body["dimensions"] = req.dimensions
        return f"{model.provider.base_url}/embeddings", auth_headers(model), body

    def parse_embedding_response(self, model: ModelInfo, data: Any, count: int) -> EmbeddingResponse:
        provider = model.provider.name
        answer = checks.expect_object(data, provider, "the embeddings answer")
        items = checks.expect_list(answer.get("data"), provider, "the answer's data")
        if len(items) != count:
            raise checks.bad(provider, f"{len(items)} embeddings for {count} inputs")
        vectors: list[list[float] | None] = [None] * count
        for i, item in enumerate(items):
            item = checks.expect_object(item, provider, "an embedding")
            index = item.get("index", i)
            if type(index) is not int or not 0 <= index < count or vectors[index] is not None:
                raise checks.bad(provider, "the embeddings' indexes are not 0..n-1, each once")
            vectors[index] = float32_vector(item.get("embedding"), provider, f"embedding {index}")
        return EmbeddingResponse(
            model=str(answer.get("model") or model.upstream_id),
            vectors=vectors,  # type: ignore[arg-type] - every index was filled (count checked)
            usage=_embedding_usage(answer.get("usage"), provider),
        )

    def error_details(self, data: Any) -> tuple[str, str]:
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            return str(err.get("message") or ""), str(err.get("code") or err.get("type") or "")
        if isinstance(err, str):
            return err, ""
        return "", ""

    def parse_response(self, model: ModelInfo, data: Any) -> ChatResponse:
        provider = model.provider.name
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: answer has no choices")
        choices = []
        for i, choice in enumerate(data["choices"]):
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict):
                raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: choice without a message")
            choices.append(
                {
                    "index": checks.expect_index(choice.get("index"), provider, i),
                    "message": checks.chat_message(message, provider),
                    "logprobs": choice.get("logprobs"),
                    "finish_reason": checks.finish_reason(choice.get("finish_reason"), provider),
                }
            )
        return ChatResponse(
            model=str(data.get("model") or model.upstream_id), choices=choices, usage=_usage(data.get("usage"), provider)
        )

    async def parse_stream(self, model: ModelInfo, response: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
        # base.sse_events(http.iter_lines(response)), read here in one loop: two async
        # generators less for every event to pass through (the lines, their decoding
        # and the events' framing are theirs, unchanged).
        provider = model.provider.name
        upstream_id = model.upstream_id
        buffer, data = b"", []
        async for piece in response.content.iter_any():
            buffer += piece
            *lines, buffer = buffer.split(b"\n")
            for raw in lines:
                line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
                if not line:
                    if data:
                        chunk = self._stream_chunk(model, "\n".join(data), provider, upstream_id)
                        if chunk is None:
                            return
                        data = []
                        yield chunk
                    continue
                if line[0] == ":":
                    continue
                field, _, value = line.partition(":")
                if field == "data":
                    data.append(value[1:] if value[:1] == " " else value)
        if buffer:
            line = buffer.rstrip(b"\r").decode("utf-8", errors="replace")
            field, _, value = line.partition(":")
            if line and line[0] != ":" and field == "data":
                data.append(value[1:] if value[:1] == " " else value)
        if data:
            chunk = self._stream_chunk(model, "\n".join(data), provider, upstream_id)
            if chunk is None:
                return
            yield chunk
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: stream ended without [DONE]")

    def _stream_chunk(self, model: ModelInfo, data: str, provider: str, upstream_id: str) -> ChatChunk | None:
        """One event's chunk; None for [DONE]."""
        if data[:1] != "{" and data.strip() == "[DONE]":  # a JSON object's event is never [DONE]
            return None
        obj = loads(data, provider)
        if not isinstance(obj, dict):
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: unexpected stream event")
        if "error" in obj:
            raise self.stream_error(model, obj)
        raw = obj.get("choices")
        choices = [] if raw is None else [_stream_choice(c, provider) for c in
                                          checks.expect_list(raw, provider, "a chunk's choices")]
        name = obj.get("model")
        usage = obj.get("usage")
        return ChatChunk(name if type(name) is str and name else str(name or upstream_id), choices,
                         None if usage is None else _usage(usage, provider))

    def stream_error(self, model: ModelInfo, event: dict) -> ProviderError:
        """An error event inside a stream, classified (dialects differ in its shape)."""
        message, code = self.error_details(event)
        kind = ErrorKind.RATE_LIMITED if "rate" in code else ErrorKind.UNAVAILABLE
        return provider_error(kind, model.provider.name, "stream error", message,
                              secrets=[model.provider.api_key], limit=200)

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        """GET {base}/models: OpenAI lists ids only; OpenAI-compatible servers that say
        more are read too (Mistral's `capabilities` and `max_context_length`, Groq's
        `context_window`, vLLM's `max_model_len`, OpenRouter's `context_length`)."""
        data = await self._get_json(provider, f"{provider.base_url}/models", provider_headers(provider), timeout)
        items = checks.expect_list(checks.expect_object(data, provider.name, "the model list").get("data"),
                                   provider.name, "the model list's data")
        return [_discovered(checks.expect_object(item, provider.name, "a listed model"), provider.name) for item in items]


# Mistral's model card flags -> the gateway's capability names.
_MISTRAL_CAPABILITIES = {"completion_chat": "chat", "function_calling": "tools", "vision": "vision"}


def _discovered(item: dict, provider: str) -> DiscoveredModel:
    model_id = item.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise checks.bad(provider, "a listed model has no id")
    caps: set[str] = set()
    flags = item.get("capabilities")
    if isinstance(flags, dict):
        caps = {name for flag, name in _MISTRAL_CAPABILITIES.items() if flags.get(flag) is True}
        if "chat" in caps:
            caps.add("streaming")
    window = next((item[k] for k in ("context_window", "max_context_length", "max_model_len", "context_length")
                   if type(item.get(k)) is int and item[k] > 0), None)
    name = item.get("name") if isinstance(item.get("name"), str) else ""
    return DiscoveredModel(upstream_id=model_id, display_name=name, capabilities=frozenset(caps), context_window=window)
