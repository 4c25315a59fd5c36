"""Streams as stages see them: chunk filters with a bounded hold-back, the replay of
a complete answer as a stream, and the assembly of a stream into a complete answer.

A ChunkFilter sees every chunk on its way to the client and returns what to send
now; what it holds back it must release by the end (`flush`). `TextHoldBack` does
the bookkeeping for the common case, a transform of the answer's text that must see
across chunk boundaries (an e-mail address split over three chunks): it keeps at
most `max_hold` characters per choice, so the client's stream is never delayed by
more than that many characters.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from providers.types import ChatChunk, ChatResponse, Usage


class ChunkFilter:
    """Transforms a stream chunk by chunk (see the module docstring)."""

    def feed(self, chunk: ChatChunk) -> list[ChatChunk]:
        return [chunk]

    def flush(self) -> list[ChatChunk]:
        return []


# process(text, final) -> (text to send now, transformed; text to keep for later, raw)
Process = Callable[[str, bool], tuple[str, str]]


class TextHoldBack(ChunkFilter):
    """Runs `process` over each choice's content with a bounded hold-back.

    `process(buffer, final)` gets the text not yet sent (what it kept last time plus
    the new content) and returns (out, keep): `out` goes to the client now, `keep`
    (raw, a suffix of the buffer) waits for the next chunk. With `final` (the choice
    finished, or the stream ended) it must keep nothing. A `keep` longer than
    `max_hold` is cut: its head is processed as final and sent, so the hold-back is
    a hard bound whatever `process` does.
    """

    def __init__(self, process: Process, max_hold: int) -> None:
        if max_hold < 0:
            raise ValueError("max_hold must be >= 0")
        self.process = process
        self.max_hold = max_hold
        self.held: dict[int, str] = {}
        self.model = ""

    def _run(self, index: int, text: str, final: bool) -> str:
        buffer = self.held.pop(index, "") + text
        if not buffer:
            return ""
        out, keep = self.process(buffer, final)
        if final and keep:
            out, keep = out + self.process(keep, True)[0], ""
        if len(keep) > self.max_hold:
            cut = len(keep) - self.max_hold
            out += self.process(keep[:cut], True)[0]
            keep = keep[cut:]
        if keep:
            self.held[index] = keep
        return out

    def feed(self, chunk: ChatChunk) -> list[ChatChunk]:
        if chunk.model:
            self.model = chunk.model
        if not chunk.choices:
            return [chunk]
        choices = []
        for choice in chunk.choices:
            delta = choice.get("delta") or {}
            content = delta.get("content")
            finish = choice.get("finish_reason")
            finishing = bool(finish) or bool(delta.get("tool_calls"))
            if not isinstance(content, str) and not finishing:
                choices.append(choice)
                continue
            out = self._run(choice.get("index", 0), content if isinstance(content, str) else "", finishing)
            if len(delta) == 1 and content is not None:  # {"content": ...}: the usual text delta
                new_delta = {"content": out} if out else {}
            else:
                new_delta = {k: v for k, v in delta.items() if k != "content"}
                if out or "role" in delta:
                    new_delta["content"] = out
            if not new_delta and not finish and not choice.get("logprobs"):
                continue  # everything held back: nothing to send for this choice yet
            choices.append({**choice, "delta": new_delta})
        if not choices and chunk.usage is None:
            return []
        return [ChatChunk(chunk.model, choices, chunk.usage)]

    def flush(self) -> list[ChatChunk]:
        choices = []
        for index in sorted(self.held):
            out = self._run(index, "", final=True)
            if out:
                choices.append({"index": index, "delta": {"content": out}, "finish_reason": None})
        return [ChatChunk(self.model, choices)] if choices else []


async def replay(response: ChatResponse) -> AsyncIterator[ChatChunk]:
    """A complete answer as the chunks a provider would have streamed: the role,
    the content, tool calls, the finish reason, then usage."""
    for choice in response.choices:
        index = choice.get("index", 0)
        message = choice.get("message") or {}
        yield ChatChunk(response.model, [{"index": index, "delta": {"role": "assistant", "content": ""},
                                          "finish_reason": None}])
        content = message.get("content")
        if isinstance(content, str) and content:
            yield ChatChunk(response.model, [{"index": index, "delta": {"content": content}, "finish_reason": None}])
        calls = message.get("tool_calls")
        if calls:
            deltas = [{"index": i, **call} for i, call in enumerate(calls)]
            yield ChatChunk(response.model, [{"index": index, "delta": {"tool_calls": deltas}, "finish_reason": None}])
        yield ChatChunk(response.model, [{"index": index, "delta": {},
                                          "finish_reason": choice.get("finish_reason") or "stop"}])
    if response.usage is not None:
        yield ChatChunk(response.model, [], response.usage)


class Assembler:
    """Collects a stream into the complete answer it amounts to (for after_answer)."""

    def __init__(self) -> None:
        self.model = ""
        self.choices: dict[int, dict[str, Any]] = {}
        self.usage: Usage | None = None

    def add(self, chunk: ChatChunk) -> None:
        self.model = chunk.model or self.model
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices:
            index = choice.get("index", 0)
            slot = self.choices.get(index)  # setdefault, without a new slot per chunk
            if slot is None:
                slot = self.choices[index] = {"index": index, "message": {"role": "assistant"}, "finish_reason": None}
            message = slot["message"]
            for name, value in (choice.get("delta") or {}).items():
                if name == "tool_calls":
                    _merge_tool_calls(message.setdefault("tool_calls", []), value or [])
                elif isinstance(value, str) and name != "role":
                    message[name] = message.get(name, "") + value
            if choice.get("finish_reason"):
                slot["finish_reason"] = choice["finish_reason"]

    def extend(self, chunks: Iterable[ChatChunk]) -> None:
        for chunk in chunks:
            self.add(chunk)

    def response(self) -> ChatResponse:
        choices = [self.choices[i] for i in sorted(self.choices)]
        for choice in choices:
            choice["message"].setdefault("content", None if choice["message"].get("tool_calls") else "")
        return ChatResponse(self.model, choices, self.usage)


def _merge_tool_calls(calls: list[dict], deltas: list[dict]) -> None:
    for delta in deltas:
        index = delta.get("index", len(calls))
        while len(calls) <= index:
            calls.append({"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
        call = calls[index]
        if delta.get("id"):
            call["id"] = delta["id"]
        if delta.get("type"):
            call["type"] = delta["type"]
        fn = delta.get("function") or {}
        if fn.get("name"):
            call["function"]["name"] += fn["name"]
        if fn.get("arguments"):
            call["function"]["arguments"] += fn["arguments"]
        for name, value in delta.items():  # provider extras kept whole (Gemini's extra_content signature)
            if name not in ("index", "id", "type", "function"):
                call[name] = value
