"""FakeOpenAI that also calls tools and reports cached prompt tokens: the base of the
fakes of OpenAI-dialect providers (Azure OpenAI, Hugging Face TGI).

Tool calls follow the chat completions reference: when ``tools`` are offered (and
``tool_choice`` is not "none") and the last user message asks about the weather, the
answer is one call of the first tool per city named in it (several: parallel tool
calls, unless ``parallel_tool_calls`` is false), ``content`` null and finish_reason
"tool_calls". Streamed, each call comes as a first delta with its index, id, type,
name and empty arguments, then its arguments JSON in pieces (``tool_calls[].index``
tells the calls apart), as the API streams them.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from .base import random_id
from .openai import FakeOpenAI, _sse
from .text import Answer, content_text

CITIES = ("Paris", "London", "Tokyo", "Berlin")


class ToolCallingOpenAI(FakeOpenAI):
    """FakeOpenAI plus tool calls and ``prompt_tokens_details.cached_tokens``."""

    cached_tokens = 0  # reported as cached (read from the prompt cache), at most the prompt

    def tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        tools = body.get("tools")
        messages = body.get("messages") or []
        if not tools or body.get("tool_choice") == "none" or not messages:
            return None
        last = messages[-1] if isinstance(messages[-1], dict) else {}
        text = content_text(last.get("content")) if last.get("role") == "user" else ""
        if "weather" not in text.lower():
            return None
        cities = [city for city in CITIES if city in text] or [CITIES[0]]
        if body.get("parallel_tool_calls") is False:
            cities = cities[:1]
        name = (tools[0].get("function") or {}).get("name", "tool")
        return [{"id": random_id("call_", 24), "type": "function",
                 "function": {"name": name, "arguments": json.dumps({"city": city})}} for city in cities]

    def _usage(self, answer: Answer) -> dict[str, Any]:  # type: ignore[override]
        usage = FakeOpenAI._usage(answer)
        usage["prompt_tokens_details"]["cached_tokens"] = min(self.cached_tokens, answer.prompt_tokens)
        return usage

    def _completion(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        payload = super()._completion(body, answer)
        calls = self.tool_calls(body)
        if calls:
            payload["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": None,
                                                "tool_calls": calls}
            payload["choices"][0]["finish_reason"] = "tool_calls"
        return payload

    def _chunks(self, body: dict[str, Any], answer: Answer) -> Iterator[tuple[str, bytes]]:
        calls = self.tool_calls(body)
        if not calls:
            yield from super()._chunks(body, answer)
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": random_id("chatcmpl-", 29), "object": "chat.completion.chunk", "created": 1700000000,
                "model": body["model"], "system_fingerprint": "fp_fake0001"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            extra = {"usage": None} if include_usage else {}
            return _sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": finish}], **extra})

        yield "head", chunk({"role": "assistant", "content": None, "refusal": None})
        for index, call in enumerate(calls):
            yield "content", chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                                    "function": {"name": call["function"]["name"], "arguments": ""}}]})
            arguments = call["function"]["arguments"]
            for start in range(0, len(arguments), 5):
                yield "content", chunk({"tool_calls": [{"index": index,
                                                        "function": {"arguments": arguments[start:start + 5]}}]})
        yield "tail", chunk({}, "tool_calls")
        if include_usage:
            yield "tail", _sse({**base, "choices": [], "usage": self._usage(answer)})
        yield "tail", b"data: [DONE]\n\n"
