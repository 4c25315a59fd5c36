"""Anthropic's wire format out: Message objects, the SSE event sequence, error bodies.

An answer that an Anthropic target gave to a passed-through request is re-sent as the
provider's own JSON (ChatResponse.native; its events, ChatChunk.native), so thinking
blocks, signatures, citations and cache usage arrive unmodified. Anything else (an
OpenAI-dialect target, a cache hit, an answer a guardrail rewrote) is built from the
internal, OpenAI-shaped answer. A stream may mix the two: a stream filter (output
guardrails) rebuilds the chunks whose text it checks, without their events, while
chunks it does not touch (thinking, block stops, pings) keep theirs; `_Events` keeps
one block numbering across both, and holds a text block's stop and the closing events
until nothing more can be added to them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway_project.errors import GatewayError
from providers.adapters.base import tool_arguments
from providers.tokens import message_text
from providers.types import ChatChunk, ChatResponse, ErrorKind, ProviderError, Usage

from ..pipeline import Call
from .anthropic_request import estimate_input_tokens

log = logging.getLogger("gateway.api")
STOP_REASONS = {  # OpenAI finish_reason -> Anthropic stop_reason
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
STREAM_ERRORS = {  # why a stream broke -> Anthropic error type of the `error` event
    ErrorKind.RATE_LIMITED: "rate_limit_error",
    ErrorKind.UNAVAILABLE: "overloaded_error",
    ErrorKind.TIMEOUT: "timeout_error",
}


def usage_json(usage: Usage) -> dict[str, int]:
    """Anthropic's usage: `input_tokens` are the fresh ones, cache reads and writes apart."""
    read, write = usage.cache_read_tokens, usage.cache_write_tokens
    return {
        "input_tokens": max(0, usage.prompt_tokens - read - write),
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": usage.completion_tokens,
    }


def error_json(error_type: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def _message_id(call: Call) -> str:
    return f"msg_{call.request_id}"


def _stop_reason(finish: str | None, tool_calls: bool) -> str:
    reason = STOP_REASONS.get(finish or "stop", "end_turn")
    # Some OpenAI-compatible servers finish a tool call with "stop"; Anthropic's clients
    # look for tool_use.
    return "tool_use" if tool_calls and reason == "end_turn" else reason


# --- complete answers ------------------------------------------------------------------------
def message_body(call: Call, result: ChatResponse) -> bytes:
    native = result.native
    raw = call.raw_answer
    if native is None and raw is not None and raw.native is not None and raw.choices == result.choices:
        native = raw.native  # the output stages looked at it and changed nothing
    return orjson.dumps(native if native is not None else message_json(call, result))


def message_json(call: Call, result: ChatResponse) -> dict[str, Any]:
    """A Message built from the internal answer (its first choice)."""
    choice = result.choices[0] if result.choices else {}
    message = choice.get("message") or {}
    text = message.get("content")
    if isinstance(text, list):
        text = message_text(text, sep="")
    text = text or message.get("refusal") or ""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    calls = message.get("tool_calls") or []
    for i, tc in enumerate(calls):
        fn = tc.get("function") or {}
        content.append({"type": "tool_use", "id": tc.get("id") or f"toolu_{call.request_id}_{i}",
                        "name": fn.get("name") or "", "input": tool_arguments(fn.get("arguments"))})
    return {
        "id": _message_id(call),
        "type": "message",
        "role": "assistant",
        "model": result.model,
        "content": content,
        "stop_reason": _stop_reason(choice.get("finish_reason"), bool(calls)),
        "stop_sequence": None,
        "usage": usage_json(call.usage_or_zero()),
    }


# --- streams ---------------------------------------------------------------------------------
def frame(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _Events:
    """Anthropic's event sequence for one stream, chunk by chunk (see the module
    docstring): message_start, then per content block content_block_start, deltas and
    content_block_stop (a ping after the first start), then message_delta with the stop
    reason and cumulative usage, and message_stop."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.started = False
        self.pinged = False
        self.open: int | None = None  # the index of the open content block
        self.open_type = ""
        self.held_stop: bytes | None = None  # the open text block's own content_block_stop
        self.next_index = 0
        self.tools: dict[int, int] = {}  # OpenAI tool call index -> content block index
        self.finish: str | None = None
        self.native_delta: dict[str, Any] | None = None  # the provider's message_delta

    def feed(self, chunk: ChatChunk) -> list[bytes]:
        if chunk.native is not None:
            out: list[bytes] = []
            for event, data in chunk.native:
                out += self._native(event, data, chunk)
            return out
        out = [] if self.started else self._start(chunk)
        for choice in chunk.choices:
            if choice.get("index", 0) != 0:
                continue  # one answer per Message: the first choice
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str) and delta["content"]:
                out += self._text(delta["content"])
            for tc in delta.get("tool_calls") or ():
                out += self._tool(tc)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def close(self) -> list[bytes]:
        """The end of a stream that ended well: the last block's stop, message_delta
        (the provider's, or one with the settled usage) and message_stop."""
        out = ([] if self.started else self._start(None)) + self._release()
        delta = self.native_delta or {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(self.finish, bool(self.tools)), "stop_sequence": None},
            "usage": usage_json(self.call.usage_or_zero()),
        }
        return out + [frame("message_delta", delta), frame("message_stop", {"type": "message_stop"})]

    # -- the provider's own events --------------------------------------------------------
    def _native(self, event: str, data: dict[str, Any], chunk: ChatChunk) -> list[bytes]:
        if event == "message_start":
            if self.started:
                return []
            self.started = True
            return [frame(event, data)]
        out = [] if self.started else self._start(chunk)
        if event == "content_block_start":
            out += self._release()
            index = data.get("index")
            if isinstance(index, int):
                self.open, self.next_index = index, max(self.next_index, index + 1)
                self.open_type = str((data.get("content_block") or {}).get("type") or "")
                for choice in chunk.choices:
                    for tc in (choice.get("delta") or {}).get("tool_calls") or ():
                        self.tools[tc.get("index", 0)] = index
            out.append(frame(event, data))
        elif event == "content_block_stop":
            if self.open_type == "text" and data.get("index") == self.open:
                self.held_stop = frame(event, data)  # a filter may still release text into it
            else:
                if data.get("index") == self.open:
                    self.open = None
                out.append(frame(event, data))
        elif event == "message_delta":
            self.native_delta = data
        elif event == "message_stop":
            pass  # sent by close(), after anything a filter still releases
        else:  # ping, content_block_delta, and event types added later
            self.pinged = self.pinged or event == "ping"
            out.append(frame(event, data))
        return out

    # -- built from the internal chunks -----------------------------------------------------
    def _start(self, chunk: ChatChunk | None) -> list[bytes]:
        self.started = True
        usage = chunk.usage if chunk is not None and chunk.usage is not None else None
        if usage is not None:
            counts = usage_json(usage)
        else:
            # The target reports usage at the end (OpenAI): the gateway's estimate now,
            # the reported count in message_delta, whose usage clients take as final.
            counts = usage_json(Usage(estimate_input_tokens(self.call.req), 0))
        counts["output_tokens"] = 1 if usage is None else usage.completion_tokens
        message = {"id": _message_id(self.call), "type": "message", "role": "assistant",
                   "model": chunk.model if chunk is not None else "", "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": counts}
        return [frame("message_start", {"type": "message_start", "message": message})]

    def _open(self, block: dict[str, Any]) -> list[bytes]:
        index = self.open = self.next_index
        self.next_index += 1
        self.open_type = block["type"]
        out = [frame("content_block_start", {"type": "content_block_start", "index": index, "content_block": block})]
        if not self.pinged:
            self.pinged = True
            out.append(frame("ping", {"type": "ping"}))
        return out

    def _release(self) -> list[bytes]:
        """Close the open block: its own held stop, or one of ours."""
        if self.held_stop is not None:
            out, self.held_stop = [self.held_stop], None
        elif self.open is not None:
            out = [frame("content_block_stop", {"type": "content_block_stop", "index": self.open})]
        else:
            out = []
        self.open = None
        return out

    def _text(self, text: str) -> list[bytes]:
        out = [] if self.open is not None and self.open_type == "text" else self._release() + self._open(
            {"type": "text", "text": ""})
        delta = {"type": "content_block_delta", "index": self.open, "delta": {"type": "text_delta", "text": text}}
        return out + [frame("content_block_delta", delta)]

    def _tool(self, tc: dict[str, Any]) -> list[bytes]:
        index = tc.get("index", 0)
        fn = tc.get("function") or {}
        out: list[bytes] = []
        if index not in self.tools:
            out = self._release() + self._open({"type": "tool_use", "id": tc.get("id") or f"toolu_{self.call.request_id}_{index}",
                                                "name": fn.get("name") or "", "input": {}})
            self.tools[index] = self.open
        if fn.get("arguments"):
            # To its own block, even when calls interleave (OpenAI streams them one
            # after another; the SDK accumulates by index either way).
            delta = {"type": "input_json_delta", "partial_json": fn["arguments"]}
            out.append(frame("content_block_delta", {"type": "content_block_delta", "index": self.tools[index],
                                                     "delta": delta}))
        return out


async def sse(call: Call, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[bytes]:
    """The stream's events, the events of one chunk in one write. A failure after the
    first byte ends it with an `error` event, as Anthropic's own streams do."""
    events = _Events(call)
    try:
        async for chunk in chunks:
            out = events.feed(chunk)
            if out:
                yield b"".join(out)
    except ProviderError as error:
        yield frame("error", error_json(STREAM_ERRORS.get(error.kind, "api_error"),
                                        f"The stream was interrupted: {error.message}", call.request_id))
        return
    except GatewayError as error:  # a stage refused the answer mid-stream (an output guardrail)
        yield frame("error", error_json("invalid_request_error", error.message, call.request_id))
        return
    except Exception:
        log.exception("stream %s failed unexpectedly", call.request_id)
        yield frame("error", error_json("api_error", f"The gateway failed while streaming (request {call.request_id}).",
                                        call.request_id))
        return
    yield b"".join(events.close())
