"""Cohere v2 chat streams (`stream: true`): typed SSE events -> ChatChunks.

The events (each `data` a JSON object whose `type` names it):
message-start (the role), content-start / content-delta / content-end (text, or a
reasoning model's `thinking`), tool-plan-delta (the text before tool calls, relayed as
content, as a JSON answer's tool_plan is), tool-call-start (id and name) /
tool-call-delta (argument pieces) / tool-call-end, citation-start / citation-end,
message-end (delta.finish_reason, delta.usage, and delta.error when the generation
failed), then `data: [DONE]`. Events without an OpenAI meaning (content-end,
tool-call-end, citations, debug) are skipped.

Also what JSON answers share with streams: finish reasons and usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from ..catalog import ModelInfo
from ..types import ChatChunk, ErrorKind, ProviderError, Usage, reported_tokens
from . import checks
from .base import loads, provider_error, sse_events

FINISH_REASONS = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
# Finish reasons of a generation that did not finish: the answer is a provider failure.
FAILED_FINISH = {"ERROR": ErrorKind.UNAVAILABLE, "TIMEOUT": ErrorKind.TIMEOUT}


def cohere_usage(value: Any, provider: str, where: str = "usage") -> Usage | None:
    """A chat `usage` or an embed `meta` object -> Usage: `billed_units` (what Cohere
    bills; it leaves out the system preamble Cohere adds) or, when there are none, the
    raw `tokens`. None when neither says anything (the gateway then estimates)."""
    if value is None:
        return None
    value = checks.expect_object(value, provider, where)
    for field in ("billed_units", "tokens"):
        counts = checks.expect_object(value.get(field), provider, f"{where}.{field}", optional=True)
        if counts.get("input_tokens") is not None or counts.get("output_tokens") is not None:
            return Usage.reported(
                provider,
                reported_tokens(counts.get("input_tokens"), provider, f"{field}.input_tokens", optional=True),
                reported_tokens(counts.get("output_tokens"), provider, f"{field}.output_tokens", optional=True),
            )
    return None


def finish(value: Any, provider: str, error: Any = None) -> str:
    """A Cohere finish_reason -> OpenAI's; ERROR/TIMEOUT raise the provider's failure."""
    reason = checks.expect_text(value, provider, "finish_reason") or "COMPLETE"
    if reason in FAILED_FINISH:
        raise provider_error(FAILED_FINISH[reason], provider, f"generation ended with {reason}", error or "", limit=200)
    return FINISH_REASONS.get(reason, "stop")


def _delta_message(obj: dict, provider: str, what: str) -> dict:
    delta = checks.expect_object(obj.get("delta"), provider, f"{what}'s delta", optional=True)
    return checks.expect_object(delta.get("message"), provider, f"{what}'s message", optional=True)


def _choice(delta: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
    return [{"index": 0, "delta": delta, "finish_reason": finish_reason}]


async def parse_events(model: ModelInfo, response: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
    """The stream's chunks: role, text / reasoning / tool-call deltas, the finish reason,
    then a usage-only chunk; ProviderError for a failed generation or a broken stream."""
    provider = model.provider.name
    name = model.upstream_id
    tool_index: dict[int, int] = {}  # Cohere's event index -> OpenAI tool_calls index
    async for event, data in sse_events(response):
        if data.strip() == "[DONE]":
            break
        obj = checks.expect_object(loads(data, provider), provider, "a stream event")
        kind = obj.get("type") or event
        if kind == "message-start":
            yield ChatChunk(name, _choice({"role": "assistant", "content": ""}))
        elif kind in ("content-start", "content-delta"):
            content = checks.expect_object(_delta_message(obj, provider, kind).get("content"), provider,
                                           f"{kind}'s content", optional=True)
            text = checks.expect_text(content.get("text"), provider, "a content delta's text")
            thinking = checks.expect_text(content.get("thinking"), provider, "a content delta's thinking")
            if text:
                yield ChatChunk(name, _choice({"content": text}))
            if thinking:
                yield ChatChunk(name, _choice({"reasoning_content": thinking}))
        elif kind == "tool-plan-delta":
            plan = checks.expect_text(_delta_message(obj, provider, kind).get("tool_plan"), provider, "a tool plan delta")
            if plan:
                yield ChatChunk(name, _choice({"content": plan}))
        elif kind == "tool-call-start":
            call = checks.expect_object(_delta_message(obj, provider, kind).get("tool_calls"), provider, "a started tool call")
            fn = checks.expect_object(call.get("function"), provider, "a started tool call's function")
            call_name = checks.expect_text(fn.get("name"), provider, "a tool call's name")
            if not call_name:
                raise checks.bad(provider, "a tool call without a name")
            idx = tool_index.setdefault(checks.expect_index(obj.get("index"), provider, len(tool_index)), len(tool_index))
            yield ChatChunk(name, _choice({"tool_calls": [{
                "index": idx, "id": checks.expect_text(call.get("id"), provider, "a tool call's id") or f"call_{idx}",
                "type": "function",
                "function": {"name": call_name,
                             "arguments": checks.expect_text(fn.get("arguments"), provider, "a tool call's arguments") or ""},
            }]}))
        elif kind == "tool-call-delta":
            call = checks.expect_object(_delta_message(obj, provider, kind).get("tool_calls"), provider, "a tool call delta")
            fn = checks.expect_object(call.get("function"), provider, "a tool call delta's function", optional=True)
            piece = checks.expect_text(fn.get("arguments"), provider, "a tool call delta's arguments")
            key = checks.expect_index(obj.get("index"), provider, 0)
            if key not in tool_index:
                raise checks.bad(provider, "a tool call delta before its tool-call-start")
            if piece:
                yield ChatChunk(name, _choice({"tool_calls": [{"index": tool_index[key], "function": {"arguments": piece}}]}))
        elif kind == "message-end":
            delta = checks.expect_object(obj.get("delta"), provider, "message-end's delta", optional=True)
            reason = finish(delta.get("finish_reason"), provider, delta.get("error"))
            usage = cohere_usage(delta.get("usage"), provider)
            yield ChatChunk(name, _choice({}, reason))
            if usage is not None:
                yield ChatChunk(name, [], usage=usage)
            return
    raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: stream ended without message-end")
