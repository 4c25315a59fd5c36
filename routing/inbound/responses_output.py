"""The internal answer -> OpenAI Responses wire format: the Response object, and the
typed SSE events of a streamed one. Pure functions over the pipeline's results (and
one small state machine for streams); routing.inbound.responses sends them.

A chat answer becomes output items in this order: reasoning (when the target sent
`reasoning_content`/`reasoning`, as DeepSeek, vLLM and OpenRouter do), the message
(output_text and refusal parts), then one function_call item per tool call, whose
`call_id` is the target's tool call id: the client sends it back in the next turn's
function_call_output.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson

from gateway_project.errors import GatewayError, InternalError
from providers.types import ChatChunk, ChatResponse, ProviderError, Usage

from ..pipeline import Call

log = logging.getLogger("gateway.api")
# finish_reason -> the Response's incomplete_details.reason (anything else: completed)
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def response_id(call: Call) -> str:
    return f"resp_{call.request_id}"


def usage_json(usage: Usage) -> dict:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens,
                                 "cache_write_tokens": usage.cache_write_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def _reasoning_text(message: dict) -> str:
    """The chain of thought an OpenAI-compatible target sent next to the answer, if any."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def response_object(call: Call, shown: dict, *, status: str, model: str, output: list[dict],
                    created_at: int, usage: Usage | None = None, finish: str | None = None,
                    error: dict | None = None) -> dict:
    """The Response object (non-streamed answer, and the response of lifecycle events)."""
    reason = INCOMPLETE.get(finish or "")
    if status == "completed" and reason is not None:
        status = "incomplete"
    return {
        "id": response_id(call),
        "object": "response",
        "created_at": created_at,
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        "model": model,
        "output": output,
        **shown,
        "usage": usage_json(usage) if usage is not None else None,
    }


def output_items(message: dict, *, done_status: str = "completed") -> list[dict]:
    """A complete chat message as Responses output items."""
    items: list[dict] = []
    reasoning = _reasoning_text(message)
    if reasoning:
        items.append({"id": _id("rs"), "type": "reasoning", "status": done_status, "summary": [],
                      "content": [{"type": "reasoning_text", "text": reasoning}]})
    content, refusal, calls = message.get("content"), message.get("refusal"), message.get("tool_calls") or []
    parts = []
    if content or not (calls or refusal):
        parts.append({"type": "output_text", "text": content or "", "annotations": [], "logprobs": []})
    if isinstance(refusal, str) and refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    if parts:
        items.append({"id": _id("msg"), "type": "message", "status": done_status, "role": "assistant",
                      "content": parts})
    for tc in calls:
        fn = tc.get("function") or {}
        items.append({"id": _id("fc"), "type": "function_call", "status": done_status,
                      "call_id": tc.get("id") or _id("call"), "name": fn.get("name") or "",
                      "arguments": fn.get("arguments") or ""})
    return items


def response_body(call: Call, shown: dict, result: ChatResponse) -> bytes:
    choice = result.choices[0] if result.choices else {"message": {"content": ""}, "finish_reason": "stop"}
    finish = choice.get("finish_reason")
    done = "incomplete" if finish in INCOMPLETE else "completed"
    output = output_items(choice.get("message") or {}, done_status=done)
    return orjson.dumps(response_object(call, shown, status="completed", model=result.model, output=output,
                                        created_at=int(time.time()), usage=call.usage, finish=finish))


# --- streams ---------------------------------------------------------------------------------
class EventStream:
    """Chat chunks in, Responses SSE events out, one `sequence_number` per event.

    Output items open as their first delta arrives and close (their .done events) when
    another kind of output starts or the stream ends; tool calls are addressed by
    their chat index, so interleaved argument deltas land on the right item."""

    def __init__(self, call: Call, shown: dict) -> None:
        self.call, self.shown = call, shown
        self.seq = 0
        self.created_at = int(time.time())
        self.model = call.req.model
        self.items: list[dict] = []  # output items, as they stand now
        self.open: list[int] = []  # output indexes of the items not closed yet
        self.message: int | None = None  # the open message item, and its open part
        self.part: int | None = None
        self.reasoning: int | None = None
        self.tools: dict[int, int] = {}  # chat tool_call index -> output index (open items)
        self.finish: str | None = None

    def event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def lifecycle(self, kind: str, status: str, **extra: Any) -> bytes:
        response = response_object(self.call, self.shown, status=status, model=self.model, output=self.items,
                                   created_at=self.created_at, **extra)
        return self.event(kind, response=response)

    def start(self) -> list[bytes]:
        return [self.lifecycle(kind, "in_progress") for kind in ("response.created", "response.in_progress")]

    # -- items ---------------------------------------------------------------------------
    def _add(self, item: dict) -> tuple[int, bytes]:
        index = len(self.items)
        self.items.append(item)
        self.open.append(index)
        return index, self.event("response.output_item.added", output_index=index, item=item)

    def _close(self, index: int) -> list[bytes]:
        item = self.items[index]
        self.open.remove(index)
        out = []
        if item["type"] == "function_call":
            out.append(self.event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                                  arguments=item["arguments"], name=item["name"]))
            self.tools = {k: v for k, v in self.tools.items() if v != index}
        else:
            for j, part in enumerate(item["content"]):
                out.extend(self._part_done(item, index, j, part))
            if index == self.message:
                self.message = self.part = None
            if index == self.reasoning:
                self.reasoning = None
        item["status"] = "completed"
        out.append(self.event("response.output_item.done", output_index=index, item=item))
        return out

    def _part_done(self, item: dict, index: int, j: int, part: dict) -> list[bytes]:
        ids = {"item_id": item["id"], "output_index": index, "content_index": j}
        kind = part["type"]
        if kind == "output_text":
            done = self.event("response.output_text.done", **ids, text=part["text"], logprobs=[])
        elif kind == "refusal":
            done = self.event("response.refusal.done", **ids, refusal=part["refusal"])
        else:
            done = self.event("response.reasoning_text.done", **ids, text=part["text"])
        return [done, self.event("response.content_part.done", **ids, part=part)]

    def _close_all(self) -> list[bytes]:
        return [e for index in list(self.open) for e in self._close(index)]

    def _text(self, kind: str, delta: str) -> list[bytes]:
        """A text delta of the message: output_text or refusal."""
        out = []
        if self.message is None:
            out += self._close_all()
            self.message, added = self._add({"id": _id("msg"), "type": "message", "status": "in_progress",
                                             "role": "assistant", "content": []})
            out.append(added)
        item = self.items[self.message]
        if self.part is None or item["content"][self.part]["type"] != kind:
            part = ({"type": "output_text", "text": "", "annotations": [], "logprobs": []} if kind == "output_text"
                    else {"type": "refusal", "refusal": ""})
            out.append(self.event("response.content_part.added", item_id=item["id"], output_index=self.message,
                                  content_index=len(item["content"]), part=part))
            item["content"].append(part)
            self.part = len(item["content"]) - 1
        ids = {"item_id": item["id"], "output_index": self.message, "content_index": self.part}
        if kind == "output_text":
            item["content"][self.part]["text"] += delta
            out.append(self.event("response.output_text.delta", **ids, delta=delta, logprobs=[]))
        else:
            item["content"][self.part]["refusal"] += delta
            out.append(self.event("response.refusal.delta", **ids, delta=delta))
        return out

    def _think(self, delta: str) -> list[bytes]:
        out = []
        if self.reasoning is None:
            out += self._close_all()
            self.reasoning, added = self._add({"id": _id("rs"), "type": "reasoning", "status": "in_progress",
                                               "summary": [], "content": []})
            part = {"type": "reasoning_text", "text": ""}
            item = self.items[self.reasoning]
            out += [added, self.event("response.content_part.added", item_id=item["id"], output_index=self.reasoning,
                                      content_index=0, part=part)]
            item["content"].append(part)
        item = self.items[self.reasoning]
        item["content"][0]["text"] += delta
        out.append(self.event("response.reasoning_text.delta", item_id=item["id"], output_index=self.reasoning,
                              content_index=0, delta=delta))
        return out

    def _tool(self, tc: dict) -> list[bytes]:
        out = []
        fn = tc.get("function") or {}
        index = self.tools.get(tc.get("index", 0))
        if index is None:  # a new call: the text before it is complete (other calls may go on)
            for other in (self.message, self.reasoning):
                if other is not None:
                    out += self._close(other)
            index, added = self._add({"id": _id("fc"), "type": "function_call", "status": "in_progress",
                                      "call_id": tc.get("id") or _id("call"), "name": fn.get("name") or "",
                                      "arguments": ""})
            self.tools[tc.get("index", 0)] = index
            out.append(added)
        arguments = fn.get("arguments")
        if arguments:
            item = self.items[index]
            item["arguments"] += arguments
            out.append(self.event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                                  delta=arguments))
        return out

    def feed(self, chunk: ChatChunk) -> list[bytes]:
        if chunk.model:
            self.model = chunk.model
        out: list[bytes] = []
        for choice in chunk.choices:
            if choice.get("index", 0) != 0:
                continue  # one answer per response (Responses has no `n`)
            delta = choice.get("delta") or {}
            thought = _reasoning_text(delta)
            if thought:
                out += self._think(thought)
            if delta.get("content"):
                out += self._text("output_text", delta["content"])
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:
                out += self._text("refusal", delta["refusal"])
            for tc in delta.get("tool_calls") or []:
                out += self._tool(tc)
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def finish_events(self) -> list[bytes]:
        out = []
        if not self.items:  # an empty answer is still a message, as in the JSON answer
            out += self._text("output_text", "")
        out += self._close_all()
        incomplete = self.finish in INCOMPLETE
        if incomplete:
            for item in self.items:
                item["status"] = "incomplete"
        kind = "response.incomplete" if incomplete else "response.completed"
        return out + [self.lifecycle(kind, "completed", usage=self.call.usage, finish=self.finish)]

    def failure(self, code: str, message: str) -> list[bytes]:
        """The stream broke after its first byte: an error event, then response.failed
        (its output as far as it got, the open items incomplete)."""
        for index in self.open:
            self.items[index]["status"] = "incomplete"
        error = self.event("error", code=code, message=message, param=None)
        return [error, self.lifecycle("response.failed", "failed", usage=self.call.usage,
                                      error={"code": code, "message": message})]


async def sse(call: Call, shown: dict, chunks: AsyncIterator[ChatChunk]) -> AsyncIterator[bytes]:
    """The typed event stream of one response; ends with response.completed (or
    .incomplete, or error + response.failed when the upstream broke mid-way)."""
    events = EventStream(call, shown)
    for event in events.start():
        yield event
    try:
        async for chunk in chunks:
            for event in events.feed(chunk):
                yield event
    except ProviderError as error:
        for event in events.failure(f"upstream_{error.kind.value}", f"The stream was interrupted: {error.message}"):
            yield event
        return
    except GatewayError as error:  # a stage refused the answer mid-stream (an output guardrail)
        for event in events.failure(str(error.code), error.message):
            yield event
        return
    except Exception:
        log.exception("stream %s failed unexpectedly", call.request_id)
        error = InternalError(f"The gateway failed while streaming (request {call.request_id}).")
        for event in events.failure(str(error.code), error.message):
            yield event
        return
    for event in events.finish_events():
        yield event
