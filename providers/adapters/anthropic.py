"""Anthropic Messages API (POST /v1/messages), translated to and from OpenAI chat shape,
or passed through as it came.

Translation: system prompts are a top-level field; `max_tokens` is required; tool calls
are `tool_use`/`tool_result` content blocks; images and files are source blocks; streams
are typed SSE events; stop reasons have other names.

Passthrough: a request that came in Anthropic's own dialect (ChatRequest.native, from
the gateway's /v1/messages) is sent as its client sent it, byte for byte, with only
`model` replaced by the target's upstream id, and its `anthropic-version` and
`anthropic-beta` headers: unknown fields, `cache_control`, `thinking` and signed
thinking blocks reach Anthropic untouched. Answers always keep the provider's own JSON
(ChatResponse.native) and streams their events (ChatChunk.native, one chunk per event)
next to the internal fields, which are filled either way: billing, guardrails and the
cache read those, the /v1/messages endpoint re-sends the native ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from ..catalog import ModelInfo, ProviderInfo
from ..params import Param, as_list, as_text, map_params, overlay, table
from ..http import get_session, timeout_for
from ..tokens import message_text
from ..types import (
    ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, ErrorKind, ProviderError, Usage, reported_tokens,
)
from . import checks
from .. import tracecontext  # the attempt's traceparent on provider requests
from .base import (
    TRANSPORT_ERRORS,
    Adapter,
    RequestNotTranslatable,
    auth_headers,
    loads,
    provider_error,
    provider_headers,
    sse_events,
    tool_arguments,
    transport_error,
)
from .json_splice import replace_member

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
ERROR_KINDS = {
    "overloaded_error": ErrorKind.UNAVAILABLE,
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "api_error": ErrorKind.UNAVAILABLE,
    "authentication_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "request_too_large": ErrorKind.CONTEXT_LENGTH,
}
CACHE_INPUT_FIELDS = ("cache_creation_input_tokens", "cache_read_input_tokens")  # integer or null
INPUT_FIELDS = ("input_tokens", *CACHE_INPUT_FIELDS)
# The client's headers a passed-through request keeps (never its credentials).
NATIVE_HEADERS = ("anthropic-version", "anthropic-beta")


def _prompt_tokens(usage: dict, provider: str) -> int:
    """Input tokens as billed: fresh input plus cache writes and reads (each checked;
    the sum is bounded again by Usage.reported)."""
    total = reported_tokens(usage.get("input_tokens"), provider, "input_tokens")
    return total + sum(reported_tokens(usage.get(k), provider, k, optional=True) for k in CACHE_INPUT_FIELDS)


def _cache_tokens(usage: dict, provider: str) -> tuple[int, int]:
    """(cache reads, cache writes) of an Anthropic usage object, billed at the model's
    cache prices (Price.cost)."""
    return (reported_tokens(usage.get("cache_read_input_tokens"), provider, "cache_read_input_tokens", optional=True),
            reported_tokens(usage.get("cache_creation_input_tokens"), provider, "cache_creation_input_tokens", optional=True))


def anthropic_usage(usage: dict, provider: str, output_tokens: Any = None) -> Usage:
    """Usage of an Anthropic usage object (a response's, or message_start's with the
    stream's last output count), cache reads and writes kept apart."""
    out = usage.get("output_tokens") if output_tokens is None else output_tokens
    result = Usage.reported(provider, _prompt_tokens(usage, provider), out)
    result.cache_read_tokens, result.cache_write_tokens = _cache_tokens(usage, provider)
    return result


def _finish(stop_reason: object, provider: str) -> str:
    return STOP_REASONS.get(checks.expect_text(stop_reason, provider, "stop_reason"), "stop")


def _image_block(part: dict, where: str) -> dict:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else None
    if not isinstance(url, str) or not url:
        # OpenAI's shape is {"image_url": {"url": ...}}; a bare string (or anything
        # else) cannot become an Anthropic image block: the client's error, not Anthropic's.
        raise RequestNotTranslatable(
            f"'{where}.image_url' must be an object with a 'url' string (a URL or a data: URL).",
            param=f"{where}.image_url",
        )
    if url.startswith("data:") and ";base64," in url:
        media, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for j, part in enumerate(content or []):
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image_block(part, f"{where}.content[{j}]"))
        elif part.get("type") == "file":
            blocks.append(_document_block(part, f"{where}.content[{j}]"))
    return blocks


def _document_block(part: dict, where: str) -> dict:
    """An OpenAI file part (a data: URL, as /v1/messages translates documents) as a
    document block; a file id means nothing to Anthropic."""
    data = (part.get("file") or {}).get("file_data")
    if not isinstance(data, str) or not data.startswith("data:") or ";base64," not in data:
        raise RequestNotTranslatable(f"'{where}.file' must carry 'file_data' as a base64 data: URL for an Anthropic model.",
                                     param=f"{where}.file")
    media, payload = data[5:].split(";base64,", 1)
    return {"type": "document", "source": {"type": "base64", "media_type": media, "data": payload}}


def translate_messages(messages: list[dict]) -> tuple[str, list[dict]]:
    """OpenAI messages -> (system text, Anthropic messages with alternating roles)."""
    system: list[str] = []
    out: list[dict] = []

    def append(role: str, blocks: list[dict]) -> None:
        if out and out[-1]["role"] == role:  # Anthropic requires alternation: merge
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role in ("system", "developer"):
            system.append(message_text(msg.get("content"), sep=""))
        elif role == "user":
            append("user", _content_blocks(msg.get("content"), f"messages[{i}]"))
        elif role == "assistant":
            blocks = _content_blocks(msg.get("content"), f"messages[{i}]")
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                blocks.append(
                    {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": tool_arguments(fn.get("arguments"))}
                )
            append("assistant", blocks)
        elif role == "tool":
            append(
                "user",
                [{"type": "tool_result", "tool_use_id": msg.get("tool_call_id"), "content": message_text(msg.get("content"), sep="")}],
            )
    return "\n\n".join(s for s in system if s), out


def _tools(params: dict) -> dict:
    body: dict[str, Any] = {}
    tools = params.get("tools")
    if tools:
        body["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for t in tools
            if t.get("type") == "function"
        ]
    choice = params.get("tool_choice")
    if choice == "required":
        body["tool_choice"] = {"type": "any"}
    elif choice in ("auto", "none"):
        body["tool_choice"] = {"type": choice}
    elif isinstance(choice, dict) and choice.get("function"):
        body["tool_choice"] = {"type": "tool", "name": choice["function"].get("name")}
    if params.get("parallel_tool_calls") is False and body.get("tools") and body.get("tool_choice", {}).get("type") != "none":
        body["tool_choice"] = {**body.get("tool_choice", {"type": "auto"}), "disable_parallel_tool_use": True}
    return body


def native_request(req: ChatRequest) -> dict[str, Any] | None:
    """The request as its client sent it in Anthropic's dialect, if it did (and no stage
    rewrote it since): {"body": dict, "raw": bytes, "headers": {...}}."""
    native = req.native
    return native if native is not None and native.get("dialect") == "anthropic" else None


# OpenAI's sampling parameters in the Messages API (tools and tool choice are translated
# by hand in `_tools`): temperature's range is 0..1 there (OpenAI's 0..2).
PARAMS = table(
    Param("temperature", max=1.0),
    Param("top_p"),
    Param("top_k"),
    Param("stop", to="stop_sequences", transform=as_list),
    Param("user", to="metadata.user_id", transform=as_text),
)


class AnthropicAdapter(Adapter):
    name = "anthropic"

    def _headers(self, model: ModelInfo, native: dict[str, Any] | None) -> dict[str, str]:
        headers = auth_headers(model, scheme="x-api-key")
        headers["anthropic-version"] = API_VERSION
        if native is not None:
            sent = native.get("headers") or {}
            headers.update({name: sent[name] for name in NATIVE_HEADERS if sent.get(name)})
        return headers

    def encode(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, bytes]:
        native = native_request(req)
        if native is None:
            return super().encode(model, req, stream)
        url = f"{model.provider.base_url}/v1/messages"
        raw = native.get("raw")
        if isinstance(raw, bytes) and bool(native["body"].get("stream")) == stream:
            data = replace_member(raw, "model", model.upstream_id)
            if data is not None:
                return url, self._headers(model, native), data
        return super().encode(model, req, stream)  # build_request's copy of the body

    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        native = native_request(req)
        if native is not None:
            body = {**native["body"], "model": model.upstream_id}
            if stream:
                body["stream"] = True
            else:
                body.pop("stream", None)
            return f"{model.provider.base_url}/v1/messages", self._headers(model, native), body
        system, messages = translate_messages(req.messages)
        params = req.params
        body: dict[str, Any] = {
            "model": model.upstream_id,
            "messages": messages,
            "max_tokens": req.max_tokens or DEFAULT_MAX_TOKENS,
        }
        if system:
            body["system"] = system
        map_params(overlay(PARAMS, model.provider.spec.param_table), params, passthrough=False, into=body)
        body.update(_tools(params))
        if stream:
            body["stream"] = True
        return f"{model.provider.base_url}/v1/messages", self._headers(model, None), body

    async def count_tokens(self, model: ModelInfo, req: ChatRequest, timeout: float) -> int:
        """POST /v1/messages/count_tokens with the client's own count_tokens body
        (passthrough only: a translated request carries fields it does not take)."""
        native = native_request(req)
        if native is None:
            raise RequestNotTranslatable("count_tokens takes only a request sent in Anthropic's dialect")
        url, headers, data = self.encode(model, req, stream=False)
        provider = model.provider.name
        headers = tracecontext.outgoing(headers)
        try:
            async with get_session().post(f"{url}/count_tokens", data=data, headers=headers,
                                          timeout=timeout_for(timeout)) as response:
                raw = await response.read()
                status, response_headers = response.status, response.headers
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider) from None
        if status >= 400:
            raise self.http_error(provider, status, response_headers, raw)
        answer = checks.expect_object(loads(raw, provider), provider, "the count")
        return reported_tokens(answer.get("input_tokens"), provider, "input_tokens")

    def error_details(self, data: Any) -> tuple[str, str]:
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            return str(err.get("message") or ""), str(err.get("type") or "")
        return "", ""

    def http_error(self, provider: str, status: int, headers, raw: bytes) -> ProviderError:
        error = super().http_error(provider, status, headers, raw)
        if status == 529:  # overloaded: retry elsewhere like a 503
            error.kind = ErrorKind.UNAVAILABLE
        return error

    def parse_response(self, model: ModelInfo, data: Any) -> ChatResponse:
        provider = model.provider.name
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: answer has no content")
        text, calls = [], []
        for block in data["content"]:
            block = checks.expect_object(block, provider, "a content block")
            if block.get("type") == "text":
                text.append(checks.expect_text(block.get("text", ""), provider, "a text block's text") or "")
            elif block.get("type") == "tool_use":
                checks.expect_object(block.get("input"), provider, "a tool_use block's input", optional=True)
                calls.append(
                    {
                        "id": block.get("id"),
                        "type": "function",
                        "function": {"name": block.get("name"), "arguments": orjson.dumps(block.get("input") or {}).decode()},
                    }
                )
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        usage = data.get("usage")
        if usage is not None:  # absent: the gateway estimates (pipeline), as for a cut stream
            usage = checks.expect_object(usage, provider, "usage")
            usage = anthropic_usage(usage, provider)
        return ChatResponse(
            model=str(data.get("model") or model.upstream_id),
            choices=[{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(data.get("stop_reason"), provider)}],
            usage=usage,
            native=data,
        )

    async def parse_stream(self, model: ModelInfo, response: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
        """One chunk per event, carrying the event (`native`) and what it means in the
        internal shape: the role (message_start), text and tool-call deltas, the finish
        reason (message_delta), usage (message_stop). Events with no internal meaning
        (ping, block starts and stops, thinking and signature deltas) are chunks without
        choices, which the chat endpoint skips and stream filters pass as they are."""
        provider = model.provider.name
        name = model.upstream_id
        counted: dict[str, Any] = {}  # input usage fields as last reported (message_start, message_delta)
        completion_tokens = 0
        tool_index: dict[int, int] = {}  # content block index -> OpenAI tool_calls index
        async for event, data in sse_events(response):
            obj = checks.expect_object(loads(data, provider), provider, "a stream event")
            kind = obj.get("type", event)
            native = [(str(event or kind), obj)]
            choices: list[dict[str, Any]] = []
            if kind == "message_start":
                message = checks.expect_object(obj.get("message"), provider, "message_start's message", optional=True)
                name = message.get("model") or name
                usage = checks.expect_object(message.get("usage"), provider, "message_start's usage", optional=True)
                if usage:
                    _prompt_tokens(usage, provider)  # checked now: a bad count fails before the first byte
                    counted = {k: usage.get(k) for k in INPUT_FIELDS}
                    completion_tokens = reported_tokens(usage.get("output_tokens"), provider, "output_tokens", optional=True)
                choices = [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
            elif kind == "content_block_start":
                block = checks.expect_object(obj.get("content_block"), provider, "a content block", optional=True)
                if block.get("type") == "tool_use":
                    idx = tool_index.setdefault(checks.expect_index(obj.get("index"), provider, 0), len(tool_index))
                    call = {"index": idx, "id": block.get("id"), "type": "function",
                            "function": {"name": block.get("name"), "arguments": ""}}
                    choices = [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]
            elif kind == "content_block_delta":
                delta = checks.expect_object(obj.get("delta"), provider, "a stream delta")
                if delta.get("type") == "text_delta":
                    text = checks.expect_text(delta.get("text", ""), provider, "a text delta's text")
                    choices = [{"index": 0, "delta": {"content": text or ""}, "finish_reason": None}]
                elif delta.get("type") == "input_json_delta":
                    idx = tool_index.get(checks.expect_index(obj.get("index"), provider, 0), 0)
                    partial = checks.expect_text(delta.get("partial_json", ""), provider, "a tool delta's partial_json")
                    call = {"index": idx, "function": {"arguments": partial or ""}}
                    choices = [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]
            elif kind == "message_delta":
                usage = checks.expect_object(obj.get("usage"), provider, "message_delta's usage", optional=True)
                if usage.get("output_tokens") is not None:  # cumulative; absent: keep message_start's
                    completion_tokens = reported_tokens(usage["output_tokens"], provider, "output_tokens")
                # Input counts here are cumulative totals too (server tools add to them);
                # a field left out keeps message_start's value.
                counted.update({k: usage[k] for k in INPUT_FIELDS if usage.get(k) is not None})
                delta = checks.expect_object(obj.get("delta"), provider, "message_delta's delta", optional=True)
                reason = _finish(delta.get("stop_reason"), provider)
                choices = [{"index": 0, "delta": {}, "finish_reason": reason}]
            elif kind == "message_stop":
                final = Usage.reported(provider, _prompt_tokens(counted, provider) if counted else 0, completion_tokens)
                final.cache_read_tokens, final.cache_write_tokens = _cache_tokens(counted, provider)
                yield ChatChunk(name, [], usage=final, native=native)
                return
            elif kind == "error":
                message, code = self.error_details(obj)
                raise provider_error(ERROR_KINDS.get(code, ErrorKind.UNAVAILABLE), provider, "stream error", message,
                                     secrets=[model.provider.api_key], limit=200)
            yield ChatChunk(name, choices, native=native)
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: stream ended without message_stop")

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        """GET /v1/models, every page (has_more / last_id as the next after_id). Each
        ModelInfo's `capabilities` ({image_input: {supported}, ...}) and
        `max_input_tokens` are read when present; the Messages API itself chats,
        streams and calls tools with every model."""
        headers = provider_headers(provider, scheme="x-api-key")
        headers["anthropic-version"] = API_VERSION
        found: list[DiscoveredModel] = []
        after = ""
        for _ in range(MAX_MODEL_PAGES):  # bounded: a server that always says has_more cannot loop us
            query = "?" + urlencode({"limit": MODEL_PAGE_SIZE, **({"after_id": after} if after else {})})
            page = checks.expect_object(
                await self._get_json(provider, f"{provider.base_url}/v1/models{query}", headers, timeout),
                provider.name, "the model list")
            for item in checks.expect_list(page.get("data"), provider.name, "the model list's data"):
                found.append(_discovered(checks.expect_object(item, provider.name, "a listed model"), provider.name))
            after = page.get("last_id") if isinstance(page.get("last_id"), str) else ""
            if page.get("has_more") is not True or not after:
                break
        return found


MODEL_PAGE_SIZE = 1000  # the API's maximum
MAX_MODEL_PAGES = 20
# ModelInfo.capabilities flags -> the gateway's capability names.
_CAPABILITIES = {"image_input": "vision", "structured_outputs": "json_mode", "thinking": "thinking"}


def _discovered(item: dict, provider: str) -> DiscoveredModel:
    model_id = item.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise checks.bad(provider, "a listed model has no id")
    caps: set[str] = set()
    flags = item.get("capabilities")
    if isinstance(flags, dict):
        caps = {"chat", "streaming", "tools"} | {
            name for flag, name in _CAPABILITIES.items()
            if isinstance(flags.get(flag), dict) and flags[flag].get("supported") is True
        }
    window, most = item.get("max_input_tokens"), item.get("max_tokens")
    return DiscoveredModel(
        upstream_id=model_id,
        display_name=item.get("display_name") if isinstance(item.get("display_name"), str) else "",
        capabilities=frozenset(caps),
        context_window=window if type(window) is int and window > 0 else None,
        max_output_tokens=most if type(most) is int and most > 0 else None,
    )
