"""Fake Cohere API v2: ``POST /v2/chat`` (JSON or SSE), ``POST /v2/embed``, ``GET /v1/models``.

Reproduces the wire format of Cohere's API reference (and of the ``cohere`` SDK's
ClientV2, which tests/test_fakes_cohere.py runs against it):

* ``Authorization: Bearer <key>``; errors are ``{"id", "message"}`` with Cohere's
  statuses (400 invalid request, 401 invalid api token, 402, 404 model not found,
  422, 429, 499, 500, 503 ...).
* Requests are checked as strictly as the API does: an unknown field is a 400, as
  are roles, tool messages without ``tool_call_id``, tool_choice other than
  REQUIRED/NONE, out-of-range ``p``/``k``/penalties, more than 5 stop sequences,
  images for a model that does not read them (``vision_models``), response_format
  together with tools.
* Answers: ``{"id", "finish_reason", "message": {"role", "content": [{type: text}],
  "tool_plan", "tool_calls"}, "usage": {"billed_units", "tokens"}}``. ``tokens``
  counts the system preamble Cohere adds (PREAMBLE_TOKENS more input), billed units
  do not. Tool calls: when tools are offered and the last message is a user message
  mentioning the weather (or tool_choice is REQUIRED), one call per city named in it
  (parallel calls), with a tool plan first.
* Streams: ``event: <type>\\ndata: <json>`` for message-start, content-start,
  content-delta, content-end, tool-plan-delta, tool-call-start, tool-call-delta,
  tool-call-end, message-end (finish_reason and usage), then ``data: [DONE]``.
  ``stream_error()`` ends the next stream with finish_reason ERROR and ``error``, as
  the API reports a generation that failed mid-way.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, Iterator

from .base import Behaviour, Exchange, FakeServer, Route, StreamEvent, dumps, random_id
from .text import Answer, count_words, prompt_token_count, split_pieces
from .vectors import embedding, to_base64, token_count

PREAMBLE_TOKENS = 7  # input tokens of Cohere's own system preamble: counted in `tokens`, not billed
CHAT_FIELDS = frozenset({
    "model", "messages", "tools", "strict_tools", "documents", "citation_options", "response_format", "safety_mode",
    "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty", "presence_penalty", "k", "p",
    "logprobs", "tool_choice", "thinking", "priority", "stream",
})
EMBED_FIELDS = frozenset({"texts", "images", "model", "input_type", "inputs", "max_tokens", "output_dimension",
                          "embedding_types", "truncate", "priority"})
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering", "image")
EMBEDDING_TYPES = ("float", "int8", "uint8", "binary", "ubinary", "base64")
EMBEDDING_SIZES = {"embed-v4.0": 1536, "embed-english-v3.0": 1024, "embed-multilingual-v3.0": 1024,
                   "embed-english-light-v3.0": 384}
_ERRORS = {
    400: "invalid request", 401: "invalid api token", 402: "Please add or update your payment method.",
    404: "Not Found", 422: "unprocessable entity", 429: "You are using a Trial key, which is limited to 20 API calls / minute.",
    499: "request cancelled", 500: "internal server error, this has been reported to our developers",
    503: "service unavailable", 504: "gateway timeout",
}
_FINISH = {"stop": "COMPLETE", "length": "MAX_TOKENS", "stop_sequence": "STOP_SEQUENCE"}
_WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)
CITIES = ("Paris", "London", "Tokyo", "Madrid", "Berlin")
MODELS: list[dict[str, Any]] = [
    {"name": "command-a-03-2025", "endpoints": ["generate", "chat", "summarize"], "context_length": 256000,
     "features": ["json_mode", "json_schema", "safety_modes", "strict_tools", "tool_use"]},
    {"name": "command-a-vision-07-2025", "endpoints": ["chat"], "context_length": 128000,
     "features": ["json_mode", "json_schema", "vision"]},
    {"name": "command-r7b-12-2024", "endpoints": ["generate", "chat", "summarize"], "context_length": 128000,
     "features": ["json_mode", "tool_use"]},
    {"name": "embed-v4.0", "endpoints": ["embed"], "context_length": 128000, "features": None},
    {"name": "embed-english-v3.0", "endpoints": ["embed", "classify"], "context_length": 512, "features": None},
    {"name": "rerank-v3.5", "endpoints": ["rerank"], "context_length": 4096, "features": None},
]


class BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class FakeCohere(FakeServer):
    """Fake of Cohere's API v2; ``base_url`` is the server root (what ClientV2 takes)."""

    default_reply_text = "Hello from fake-cohere."
    default_models = tuple(m["name"] for m in MODELS)
    embedding_size: int | None = None  # overrides EMBEDDING_SIZES (small vectors in tests)
    vision_models: tuple[str, ...] = ("command-a-vision-07-2025",)
    page_size_cap = 1000

    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        if (ex.method, ex.path) == ("POST", "/v2/chat"):
            return self._chat, True
        if (ex.method, ex.path) == ("POST", "/v2/embed"):
            return self._embed, True
        if ex.method == "GET" and ex.path == "/v1/models":
            return self._models, False
        if ex.method == "GET" and ex.path.startswith("/v1/models/"):
            return self._model, False
        return None

    def response_headers(self) -> dict[str, str]:
        return {"x-trial-endpoint-call-limit": "40", "num_tokens": "0"}

    def error_payload(self, status: int, message: str | None = None, **_: Any) -> Any:
        return {"id": str(uuid.uuid4()), "message": message or _ERRORS.get(status, "internal server error")}

    def garbage_event(self) -> bytes:
        return b'event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{"mess\n\n'

    def not_found(self, ex: Exchange) -> None:
        self.send_error(ex, 404, f"Not Found: {ex.method} {ex.path}")

    def stream_error(self, message: str = "internal server error", *, after_chunks: int = 1, times: int = 1) -> None:
        """The next stream(s) end after ``after_chunks`` deltas with finish_reason ERROR."""
        self._push(Behaviour("stream_error", text=message, after_chunks=after_chunks), times)

    # -- checks ------------------------------------------------------------------------------
    def _authorized(self, ex: Exchange) -> bool:
        header = ex.headers.get("authorization", "")
        return self.api_key is None or header == f"Bearer {self.api_key}"

    def _body(self, ex: Exchange, fields: frozenset[str]) -> dict[str, Any]:
        if not self._authorized(ex):
            raise BadRequest("invalid api token", 401)
        body = ex.json
        if ex.invalid_json or not isinstance(body, dict):
            raise BadRequest("invalid request: the body is not a JSON object")
        for name in body:
            if name not in fields:
                raise BadRequest(f"invalid request: unknown field: parameter {name} is not a valid field")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise BadRequest("invalid request: model must be specified")
        if not self.model_known(body["model"]):
            raise BadRequest(f"model '{body['model']}' not found, make sure the correct model ID was used "
                             "and that you have access to the model.", 404)
        return body

    def _check_chat(self, body: dict[str, Any]) -> None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("invalid request: messages must contain at least one message")
        for i, message in enumerate(messages):
            _check_message(message, i, body["model"] in self.vision_models)
        tools = body.get("tools")
        if tools is not None:
            for j, tool in enumerate(tools if isinstance(tools, list) else [None]):
                fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
                if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(fn.get("parameters"), dict):
                    raise BadRequest(f"invalid request: tools[{j}] must be a function with a name and parameters")
        choice = body.get("tool_choice")
        if choice is not None and choice not in ("REQUIRED", "NONE"):
            raise BadRequest(f"invalid request: tool_choice must be one of REQUIRED, NONE; received {choice!r}")
        if choice == "REQUIRED" and not tools:
            raise BadRequest("invalid request: tool_choice REQUIRED needs tools to be specified")
        fmt = body.get("response_format")
        if fmt is not None:
            if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object"):
                raise BadRequest("invalid request: response_format.type must be one of text, json_object")
            if tools:
                raise BadRequest("invalid request: response_format is not supported with tools")
        for name, low, high in (("p", 0.01, 0.99), ("k", 0, 500), ("frequency_penalty", 0, 1), ("presence_penalty", 0, 1),
                                ("temperature", 0, None)):
            value = body.get(name)
            if value is not None and (not isinstance(value, (int, float)) or value < low or (high is not None and value > high)):
                raise BadRequest(f"invalid request: {name} must be between {low} and {high if high is not None else 'inf'}")
        stops = body.get("stop_sequences")
        if stops is not None and (not isinstance(stops, list) or len(stops) > 5 or not all(isinstance(s, str) for s in stops)):
            raise BadRequest("invalid request: stop_sequences must be a list of at most 5 strings")
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
            raise BadRequest("invalid request: max_tokens must be a positive integer")

    # -- chat ------------------------------------------------------------------------------------
    def _chat(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        try:
            body = self._body(ex, CHAT_FIELDS)
            self._check_chat(body)
        except BadRequest as refused:
            return self.send_error(ex, refused.status, refused.message)
        billed = prompt_token_count(body["messages"])
        calls = None if behaviour is not None and behaviour.kind == "reply" else self._tool_calls(body)
        if calls:
            plan = "I will look up the weather in " + " and ".join(_city(c) for c in calls) + "."
            output = count_words(plan) + sum(count_words(c["function"]["arguments"]) for c in calls)
            answer = Answer("", self.prompt_tokens if self.prompt_tokens is not None else billed,
                            self.completion_tokens if self.completion_tokens is not None else output, "tool_call")
        else:
            plan = ""
            if body.get("response_format", {}).get("type") == "json_object" and not (behaviour and behaviour.kind == "reply"):
                document = _sample(body["response_format"].get("json_schema")) or {"answer": self.reply_text}
                answer = self.answer(Behaviour("reply", text=json.dumps(document)), prompt_tokens=billed)
            else:
                answer = self.answer(behaviour, prompt_tokens=billed, max_words=body.get("max_tokens"),
                                     stops=body.get("stop_sequences") or [])
        if body.get("stream"):
            events = self._events(answer, plan, calls or [], behaviour)
            return self.send_stream(ex, behaviour, events, "text/event-stream")
        message: dict[str, Any] = {"role": "assistant"}
        if calls:
            message.update(tool_plan=plan, tool_calls=calls)
        else:
            message["content"] = [{"type": "text", "text": answer.text}]
        failed = behaviour is not None and behaviour.kind == "stream_error"
        self.send_result(ex, behaviour, {
            "id": str(uuid.uuid4()), "message": message,
            "finish_reason": "ERROR" if failed else "TOOL_CALL" if calls else _FINISH.get(answer.reason, "COMPLETE"),
            "usage": _usage(answer),
        })

    def _tool_calls(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        tools, choice, last = body.get("tools"), body.get("tool_choice"), body["messages"][-1]
        if not tools or choice == "NONE" or last.get("role") != "user":
            return None
        content = last.get("content")
        text = content if isinstance(content, str) else " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
        if choice != "REQUIRED" and not _WEATHER.search(text):
            return None
        cities = [c for c in CITIES if c.lower() in text.lower()] or ["Paris"]
        name = tools[0]["function"]["name"]
        return [{"id": f"{name}_{random_id('', 12).lower()}", "type": "function",
                 "function": {"name": name, "arguments": json.dumps({"city": city})}} for city in cities]

    def _events(self, answer: Answer, plan: str, calls: list[dict[str, Any]],
                behaviour: Behaviour | None) -> Iterator[StreamEvent]:
        yield "head", _event("message-start", id=str(uuid.uuid4()), delta={"message": {
            "role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}})
        failing = behaviour is not None and behaviour.kind == "stream_error"
        sent = 0
        if calls:
            for piece in split_pieces(plan):
                yield "content", _event("tool-plan-delta", delta={"message": {"tool_plan": piece}})
            for index, call in enumerate(calls):
                opening = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
                yield "head", _event("tool-call-start", index=index, delta={"message": {"tool_calls": opening}})
                for piece in _argument_pieces(call["function"]["arguments"]):
                    yield "content", _event("tool-call-delta", index=index,
                                            delta={"message": {"tool_calls": {"function": {"arguments": piece}}}})
                yield "tail", _event("tool-call-end", index=index)
            reason = "TOOL_CALL"
        else:
            yield "head", _event("content-start", index=0, delta={"message": {"content": {"type": "text", "text": ""}}})
            for piece in answer.pieces:
                if failing and sent >= (behaviour.after_chunks or 0):  # type: ignore[union-attr]
                    break
                yield "content", _event("content-delta", index=0, delta={"message": {"content": {"text": piece}}})
                sent += 1
            yield "tail", _event("content-end", index=0)
            reason = _FINISH.get(answer.reason, "COMPLETE")
        end: dict[str, Any] = {"finish_reason": reason, "usage": _usage(answer)}
        if failing:
            end = {"finish_reason": "ERROR", "error": behaviour.text, "usage": _usage(answer)}  # type: ignore[union-attr]
        yield "tail", _event("message-end", id=str(uuid.uuid4()), delta=end)
        yield "tail", b"data: [DONE]\n\n"

    # -- embed -------------------------------------------------------------------------------------
    def _embed(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        try:
            body = self._body(ex, EMBED_FIELDS)
            texts, types = _check_embed(body)
        except BadRequest as refused:
            return self.send_error(ex, refused.status, refused.message)
        model = body["model"]
        size = self.embedding_size or EMBEDDING_SIZES.get(model, 1024)
        dimension = body.get("output_dimension")
        if dimension is not None:
            if model != "embed-v4.0" or dimension not in (256, 512, 1024, 1536):
                return self.send_error(ex, 400, f"invalid request: output_dimension {dimension} is not supported by {model}")
        vectors = [embedding(model, text, size, dimension) for text in texts]
        embeddings: dict[str, Any] = {}
        for kind in types:
            if kind == "float":
                embeddings["float"] = vectors
            elif kind == "base64":
                embeddings["base64"] = [to_base64(v) for v in vectors]
            else:  # the integer types: a coarse quantisation is enough for a fake
                embeddings[kind] = [[max(-128, min(127, round(x * 127))) for x in v] for v in vectors]
        billed = self.prompt_tokens if self.prompt_tokens is not None else sum(token_count(t) for t in texts)
        self.send_result(ex, behaviour, {
            "id": str(uuid.uuid4()), "texts": texts, "embeddings": embeddings,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": billed}},
            "response_type": "embeddings_by_type",
        })

    # -- models --------------------------------------------------------------------------------------
    def _entries(self) -> list[dict[str, Any]]:
        known = {m["name"]: m for m in MODELS}
        return [_model_entry(known.get(name, {"name": name, "endpoints": ["chat"], "context_length": 128000,
                                              "features": ["tool_use"]})) for name in self.listed_models()]

    def _models(self, ex: Exchange, _: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self.send_error(ex, 401, "invalid api token")
        entries = self._entries()
        if ex.query.get("endpoint"):
            entries = [m for m in entries if ex.query["endpoint"] in m["endpoints"]]
        try:
            size = min(int(float(ex.query.get("page_size", 20))), self.page_size_cap)
            start = int(ex.query.get("page_token") or 0)
        except ValueError:
            return self.send_error(ex, 400, "invalid request: page_size and page_token must be numbers")
        page = entries[start:start + size]
        answer: dict[str, Any] = {"models": page}
        if start + size < len(entries):
            answer["next_page_token"] = str(start + size)
        ex.send_json(200, answer)

    def _model(self, ex: Exchange, _: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self.send_error(ex, 401, "invalid api token")
        name = ex.path.removeprefix("/v1/models/")
        found = [m for m in self._entries() if m["name"] == name]
        if not found:
            return self.send_error(ex, 404, f"model '{name}' not found")
        ex.send_json(200, found[0])


def _check_message(message: Any, i: int, vision: bool) -> None:
    where = f"messages[{i}]"
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ("system", "user", "assistant", "tool"):
        raise BadRequest(f"invalid request: {where}.role must be one of system, user, assistant, tool")
    content = message.get("content")
    allowed = {"user": ("text", "image_url"), "tool": ("text", "document")}.get(role, ("text",))
    if role != "assistant" and content is None:
        raise BadRequest(f"invalid request: {where}.content is required")
    if content is not None and not isinstance(content, str):
        if not isinstance(content, list):
            raise BadRequest(f"invalid request: {where}.content must be a string or a list of content items")
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind not in allowed:
                raise BadRequest(f"invalid request: {where}.content[{j}].type must be one of {', '.join(allowed)}")
            if kind == "image_url":
                url = (part.get("image_url") or {}).get("url")
                if not isinstance(url, str) or not re.match(r"(https?://|data:image/[a-z]+;base64,)", url):
                    raise BadRequest(f"invalid request: {where}.content[{j}].image_url.url must be a URL or a data URI")
                if not vision:
                    raise BadRequest("invalid request: this model does not support image inputs")
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise BadRequest(f"invalid request: {where}.tool_call_id is required for a tool message")
    if role == "assistant":
        if content is None and not message.get("tool_calls"):
            raise BadRequest(f"invalid request: {where} needs content or tool_calls")
        for call in message.get("tool_calls") or []:
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not isinstance(fn.get("arguments"), str):
                raise BadRequest(f"invalid request: {where}.tool_calls need a function name and string arguments")
            if not call.get("id"):
                raise BadRequest(f"invalid request: {where}.tool_calls need an id")
        if message.get("tool_plan") is not None and not isinstance(message["tool_plan"], str):
            raise BadRequest(f"invalid request: {where}.tool_plan must be a string")


def _check_embed(body: dict[str, Any]) -> tuple[list[str], list[str]]:
    texts = body.get("texts")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest("invalid request: texts must be a non-empty list of strings")
    if len(texts) > 96:
        raise BadRequest(f"invalid request: texts must have at most 96 elements, received {len(texts)}")
    if body.get("input_type") not in INPUT_TYPES:
        raise BadRequest(f"invalid request: input_type must be one of {', '.join(INPUT_TYPES)}")
    types = body.get("embedding_types") or ["float"]
    if not isinstance(types, list) or any(t not in EMBEDDING_TYPES for t in types):
        raise BadRequest(f"invalid request: embedding_types must be a list of {', '.join(EMBEDDING_TYPES)}")
    if body.get("truncate") not in (None, "NONE", "START", "END"):
        raise BadRequest("invalid request: truncate must be one of NONE, START, END")
    return texts, types


def _usage(answer: Answer) -> dict[str, Any]:
    return {"billed_units": {"input_tokens": answer.prompt_tokens, "output_tokens": answer.completion_tokens},
            "tokens": {"input_tokens": answer.prompt_tokens + PREAMBLE_TOKENS, "output_tokens": answer.completion_tokens}}


def _city(call: dict[str, Any]) -> str:
    return json.loads(call["function"]["arguments"])["city"]


def _argument_pieces(arguments: str) -> list[str]:
    """The arguments JSON in a few pieces, as the API streams them token by token."""
    step = max(1, len(arguments) // 3)
    return [arguments[i:i + step] for i in range(0, len(arguments), step)]


def _sample(schema: Any) -> Any:
    """A value that fits a (simple) JSON schema: what a json_schema answer looks like."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        return {name: _sample(sub) for name, sub in (schema.get("properties") or {}).items()}
    return {"string": "fake", "integer": 1, "number": 1.5, "boolean": True, "array": []}.get(kind)


def _model_entry(model: dict[str, Any]) -> dict[str, Any]:
    return {"name": model["name"], "endpoints": model["endpoints"], "finetuned": False,
            "context_length": model["context_length"],
            "tokenizer_url": f"https://storage.googleapis.com/cohere-public/tokenizers/{model['name']}.json",
            "default_endpoints": [], "features": model["features"], "is_deprecated": False}


def _event(kind: str, **fields: Any) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + dumps({"type": kind, **fields}) + b"\n\n"
