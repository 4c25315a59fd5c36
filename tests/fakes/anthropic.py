"""Fake Anthropic Messages API: ``POST /v1/messages`` (+ ``count_tokens``, ``GET /v1/models``).

Reproduces the real wire format: ``Message`` objects, named SSE events
(``event: <type>\\ndata: <json>\\n\\n``: message_start, content_block_start, ping,
content_block_delta, content_block_stop, message_delta, message_stop),
``{"type": "error", "error": {"type", "message"}, "request_id"}`` errors,
``x-api-key`` + ``anthropic-version`` headers, top-level ``system`` and
``tool_use`` blocks streamed as ``input_json_delta`` partial JSON.

Extended thinking (``thinking: {"type": "enabled", "budget_tokens": >= 1024}``): a
``thinking`` block with a ``signature`` comes first (streamed as ``thinking_delta``
and ``signature_delta``), its words counted as output; thinking blocks sent back in
the history must carry the signature the fake gave them (else 400, as Anthropic
checks). Prompt caching: the conversation up to the last block marked
``cache_control`` is "written" the first time the fake sees it
(``cache_creation_input_tokens``) and "read" after that (``cache_read_input_tokens``);
``input_tokens`` are the rest. Every request's headers and raw body are recorded.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any, Iterator

from .base import Behaviour, Exchange, FakeServer, Route, StreamEvent, dumps, random_id
from .text import PER_MESSAGE_OVERHEAD, Answer, content_text, count_words, prompt_token_count, split_pieces

_ERRORS: dict[int, tuple[str, str]] = {  # status -> (error.type, message)
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}
_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence"}
_WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)
TOOL_INPUT: dict[str, Any] = {"city": "Paris"}
THINKING_TEXT = "The user wants a short answer, so I will keep it brief."
_SIGNING_KEY = b"fake-anthropic-thinking"
MIN_THINKING_BUDGET = 1024


def signature(thinking: str) -> str:
    """The signature the fake gives a thinking block (opaque to clients, checked when
    the block comes back)."""
    return base64.b64encode(hmac.new(_SIGNING_KEY, thinking.encode(), hashlib.sha256).digest() * 3).decode()


def thinking_enabled(body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") == "enabled"


class FakeAnthropic(FakeServer):
    """Fake of the Anthropic Messages API; ``base_url`` is the server root."""

    default_reply_text = "Hello from fake-anthropic."
    default_models = ("claude-sonnet-4-6", "claude-haiku-4-5")
    thinking_text = THINKING_TEXT

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cached_prefixes: set[str] = set()  # prompt-cache entries "written" so far
        # Extra ModelInfo fields by model id (capabilities, max_input_tokens, max_tokens) for GET /v1/models.
        self.model_details: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        super().reset()
        self._cached_prefixes.clear()

    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        if (ex.method, ex.path) == ("POST", "/v1/messages"):
            return self._messages, True
        if (ex.method, ex.path) == ("POST", "/v1/messages/count_tokens"):
            return self._count_tokens, False
        if (ex.method, ex.path) == ("GET", "/v1/models"):
            return self._models, False
        return None

    def response_headers(self) -> dict[str, str]:
        return {"request-id": random_id("req_011", 24)}

    def error_payload(self, status: int, message: str | None = None, *, type: str | None = None) -> Any:
        default_type, default_message = _ERRORS.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", "Request failed."))
        return {"type": "error", "error": {"type": type or default_type, "message": message or default_message},
                "request_id": random_id("req_011", 24)}

    def garbage_event(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"ty\n\n'

    @property
    def last_system(self) -> Any:
        """The ``system`` field of the latest /v1/messages request (None if absent)."""
        for req in reversed(self.requests):
            if req.path == "/v1/messages" and isinstance(req.body, dict):
                return req.body.get("system")
        return None

    # -- validation ---------------------------------------------------------------------
    def _authorized(self, ex: Exchange) -> bool:
        """``x-api-key`` (or ``Authorization: Bearer`` for OAuth tokens) must match ``api_key``."""
        key = ex.headers.get("x-api-key") or ex.headers.get("authorization", "").removeprefix("Bearer ")
        return self.api_key is None or key == self.api_key

    def _check(self, ex: Exchange, *, needs_max_tokens: bool) -> bool:
        """Send the real error response and return False when the request is refused."""
        if not self._authorized(ex):
            self.send_error(ex, 401, "invalid x-api-key")
            return False
        problem = self._problem(ex, needs_max_tokens)
        if problem is not None:
            status, message = problem
            self.send_error(ex, status, message)
            return False
        return True

    def _problem(self, ex: Exchange, needs_max_tokens: bool) -> tuple[int, str] | None:
        if not ex.headers.get("anthropic-version"):
            return 400, "anthropic-version: header is required"
        body = ex.json
        if ex.invalid_json or not isinstance(body, dict):
            return 400, "The request body is not valid JSON."
        required = ("model", "max_tokens", "messages") if needs_max_tokens else ("model", "messages")
        for name in required:
            if name not in body:
                return 400, f"{name}: Field required"
        if needs_max_tokens and (not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1):
            return 400, "max_tokens: Input should be greater than or equal to 1"
        messages = body["messages"]
        if not isinstance(messages, list) or not messages:
            return 400, "messages: List should have at least 1 item after validation, not 0"
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role == "system":
                return 400, ('messages: Unexpected role "system". The Messages API accepts a top-level '
                             '`system` parameter, not "system" as an input message role.')
            if role not in ("user", "assistant"):
                return 400, f"messages.{i}.role: Input should be 'user' or 'assistant'"
            for j, block in enumerate(message.get("content") if isinstance(message.get("content"), list) else []):
                if (isinstance(block, dict) and block.get("type") == "thinking"
                        and block.get("signature") != signature(str(block.get("thinking")))):
                    return 400, f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
        if thinking_enabled(body):
            budget = body["thinking"].get("budget_tokens")
            if not isinstance(budget, int) or budget < MIN_THINKING_BUDGET:
                return 400, f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_THINKING_BUDGET}"
            if needs_max_tokens and body["max_tokens"] <= budget:
                return 400, "`max_tokens` must be greater than `thinking.budget_tokens`"
        if not self.model_known(body["model"]):
            return 404, f"model: {body['model']}"
        return None

    # -- endpoints ------------------------------------------------------------------------
    def _models(self, ex: Exchange, _: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self.send_error(ex, 401, "invalid x-api-key")
        data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z",
                 **self.model_details.get(m, {})}
                for m in self.listed_models()]
        # Pages as the real API cuts them: `limit` (default 20, at most 1000) after `after_id`.
        ids = [d["id"] for d in data]
        start = ids.index(ex.query["after_id"]) + 1 if ex.query.get("after_id") in ids else 0
        limit = min(int(ex.query.get("limit") or 20), 1000)
        page = data[start:start + limit]
        ex.send_json(200, {"data": page, "has_more": start + limit < len(data),
                           "first_id": page[0]["id"] if page else None,
                           "last_id": page[-1]["id"] if page else None})

    def _count_tokens(self, ex: Exchange, _: Behaviour | None) -> None:
        if self._check(ex, needs_max_tokens=False):
            ex.send_json(200, {"input_tokens": self._prompt_tokens(ex.json)})

    @staticmethod
    def _prompt_tokens(body: dict[str, Any]) -> int:
        return prompt_token_count(body["messages"], system=body.get("system"))

    def _messages(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self._check(ex, needs_max_tokens=True):
            return
        body: dict[str, Any] = ex.json
        scripted = behaviour is not None and behaviour.kind == "reply"
        tool = None if scripted else self._tool_call(body)  # a scripted reply() wins
        if tool is not None:
            answer = self._tool_answer(body)
            blocks: list[dict[str, Any]] = [tool]
        else:
            answer = self.answer(behaviour, prompt_tokens=self._prompt_tokens(body),
                                 max_words=body["max_tokens"], stops=body.get("stop_sequences") or [])
            blocks = [{"type": "text", "text": answer.text}]
        if thinking_enabled(body):
            thought = self.thinking_text
            blocks.insert(0, {"type": "thinking", "thinking": thought, "signature": signature(thought)})
            answer = Answer(answer.text, answer.prompt_tokens, answer.completion_tokens + count_words(thought),
                            answer.reason, answer.stop_sequence)
        cache = self._cache_split(body, answer.prompt_tokens)
        if body.get("stream"):
            self.send_stream(ex, behaviour, self._events(body, answer, blocks, cache), "text/event-stream; charset=utf-8")
        else:
            self.send_result(ex, behaviour, self._message(body, answer, blocks, cache))

    # -- tool use ---------------------------------------------------------------------------
    @staticmethod
    def _tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
        """A tool_use block when tools are offered and the last user text mentions weather."""
        tools = body.get("tools")
        users = [m for m in body["messages"] if m.get("role") == "user"]
        if not tools or not users:
            return None
        content = users[-1].get("content")
        parts = [content] if isinstance(content, str) else [
            b.get("text", "") for b in content or [] if isinstance(b, dict) and b.get("type") == "text"]
        if not _WEATHER.search(" ".join(parts)):
            return None
        return {"type": "tool_use", "id": random_id("toolu_01", 22),
                "name": tools[0].get("name", "tool"), "input": dict(TOOL_INPUT)}

    def _tool_answer(self, body: dict[str, Any]) -> Answer:
        """Usage for a tool call: output tokens == words of the serialised tool input."""
        prompt = self._prompt_tokens(body) if self.prompt_tokens is None else self.prompt_tokens
        completion = (count_words(json.dumps(TOOL_INPUT)) if self.completion_tokens is None
                      else self.completion_tokens)
        return Answer(text="", prompt_tokens=prompt, completion_tokens=completion, reason="tool_use")

    # -- payloads ------------------------------------------------------------------------------
    # -- prompt caching ----------------------------------------------------------------------
    def _cache_split(self, body: dict[str, Any], prompt_tokens: int) -> tuple[int, int, int]:
        """(fresh input, cache writes, cache reads) of a request's prompt tokens. Each
        cache_control mark ends a cacheable prefix (whole units: the system prompt, then
        each message, counted as prompt_token_count does); the longest prefix seen before
        is read, the rest up to the last mark written, as Anthropic looks breakpoints up
        from the last one back."""
        units: list[tuple[str, Any]] = []
        if body.get("system"):
            units.append(("system", body["system"]))
        units.extend(("message", m) for m in body["messages"])
        prefixes = []  # (key, tokens) of each marked prefix, shortest first
        for i, (_, unit) in enumerate(units):
            if _has_cache_mark(unit):
                prefix = units[: i + 1]
                tokens = min(prompt_tokens, sum(
                    count_words(content_text(u if kind == "system" else u.get("content"))) + PER_MESSAGE_OVERHEAD
                    for kind, u in prefix))
                key = json.dumps([body["model"], body.get("tools"), prefix], sort_keys=True)
                prefixes.append((hashlib.sha256(key.encode()).hexdigest(), tokens))
        if not prefixes:
            return prompt_tokens, 0, 0
        with self._cond:
            read = next((tokens for key, tokens in reversed(prefixes) if key in self._cached_prefixes), 0)
            self._cached_prefixes.update(key for key, _ in prefixes)
        cached = prefixes[-1][1]
        return prompt_tokens - cached, cached - read, read

    @staticmethod
    def _usage(input_tokens: int, output_tokens: int, cache: tuple[int, int, int] | None = None) -> dict[str, Any]:
        fresh, written, read = cache or (input_tokens, 0, 0)
        if fresh + written + read != input_tokens:  # a scripted prompt count: nothing cached
            fresh, written, read = input_tokens, 0, 0
        return {"input_tokens": fresh, "cache_creation_input_tokens": written,
                "cache_read_input_tokens": read, "output_tokens": output_tokens, "service_tier": "standard"}

    def _message(self, body: dict[str, Any], answer: Answer, blocks: list[dict[str, Any]],
                 cache: tuple[int, int, int] | None = None,
                 msg_id: str | None = None) -> dict[str, Any]:
        return {
            "id": msg_id or random_id("msg_01", 22),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": blocks,
            "stop_reason": _STOP_REASON.get(answer.reason, answer.reason),
            "stop_sequence": answer.stop_sequence,
            "usage": self._usage(answer.prompt_tokens, answer.completion_tokens, cache),
        }

    def _events(self, body: dict[str, Any], answer: Answer, blocks: list[dict[str, Any]],
                cache: tuple[int, int, int] | None = None) -> Iterator[StreamEvent]:
        start = {**self._message(body, answer, [], msg_id=random_id("msg_01", 22)),
                 "stop_reason": None, "stop_sequence": None,
                 "usage": self._usage(answer.prompt_tokens, 1, cache)}
        yield "head", _event("message_start", {"message": start})
        for index, block in enumerate(blocks):
            if block["type"] == "tool_use":
                opening, deltas = {**block, "input": {}}, _json_deltas(block["input"])
            elif block["type"] == "thinking":
                opening = {"type": "thinking", "thinking": "", "signature": ""}
                deltas = [{"type": "thinking_delta", "thinking": piece} for piece in split_pieces(block["thinking"])]
                deltas.append({"type": "signature_delta", "signature": block["signature"]})
            else:
                opening = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": piece} for piece in answer.pieces]
            yield "head", _event("content_block_start", {"index": index, "content_block": opening})
            if index == 0:
                yield "head", _event("ping", {})
            for delta in deltas:
                yield "content", _event("content_block_delta", {"index": index, "delta": delta})
            yield "tail", _event("content_block_stop", {"index": index})
        stop = {"stop_reason": _STOP_REASON.get(answer.reason, answer.reason),
                "stop_sequence": answer.stop_sequence}
        # message_delta's usage: cumulative totals, the input counts included
        usage = self._usage(answer.prompt_tokens, answer.completion_tokens, cache)
        usage.pop("service_tier")
        yield "tail", _event("message_delta", {"delta": stop, "usage": usage})
        yield "tail", _event("message_stop", {})


def _has_cache_mark(unit: Any) -> bool:
    """Does a system prompt or message carry a cache_control mark on any of its blocks?"""
    content = unit.get("content") if isinstance(unit, dict) and "role" in unit else unit
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("cache_control") for b in content)


def _json_deltas(tool_input: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool input JSON in several ``input_json_delta`` pieces (first one empty, as the API does)."""
    raw = json.dumps(tool_input)
    step = max(1, len(raw) // 3)
    pieces = [""] + [raw[i:i + step] for i in range(0, len(raw), step)]
    return [{"type": "input_json_delta", "partial_json": p} for p in pieces]


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + dumps({"type": kind, **data}) + b"\n\n"
