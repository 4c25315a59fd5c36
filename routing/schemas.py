"""Request body -> ChatRequest, with OpenAI-style 400s that name the offending param.

Hand-written rather than a serializer: it runs on every request, and the checks are
a flat table of parameter rules (cheap, and each error names its `param`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway_project.errors import InvalidRequest
from providers.types import ChatRequest

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
PART_TYPES = {"text", "image_url", "input_audio", "file", "refusal"}


def _number(lo: float, hi: float) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidRequest(f"'{name}' must be a number.", param=name)
        if not lo <= value <= hi:
            raise InvalidRequest(f"'{name}' must be between {lo:g} and {hi:g}; got {value}.", param=name)

    return check


def _integer(lo: int, hi: int | None = None) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(f"'{name}' must be an integer.", param=name)
        if value < lo or (hi is not None and value > hi):
            bound = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise InvalidRequest(f"'{name}' must be {bound}; got {value}.", param=name)

    return check


def _of_type(kind: type | tuple[type, ...], label: str) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise InvalidRequest(f"'{name}' must be {label}.", param=name)

    return check


def _stop(name: str, value: Any) -> None:
    if value is None or isinstance(value, str):
        return
    if not isinstance(value, list) or len(value) > 4 or not all(isinstance(s, str) for s in value):
        raise InvalidRequest("'stop' must be a string or a list of up to 4 strings.", param=name)


def _tools(name: str, value: Any) -> None:
    if not isinstance(value, list):
        raise InvalidRequest("'tools' must be a list.", param=name)
    for i, tool in enumerate(value):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise InvalidRequest(f"'tools[{i}]' must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}.", param=f"tools[{i}]")


def _tool_choice(name: str, value: Any) -> None:
    if value in ("none", "auto", "required") or (isinstance(value, dict) and "type" in value):
        return
    raise InvalidRequest("'tool_choice' must be 'none', 'auto', 'required' or an object.", param=name)


def _response_format(name: str, value: Any) -> None:
    if not isinstance(value, dict) or value.get("type") not in ("text", "json_object", "json_schema"):
        raise InvalidRequest("'response_format.type' must be 'text', 'json_object' or 'json_schema'.", param="response_format")


PARAMS: dict[str, Callable[[str, Any], None]] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "n": _integer(1, 128),
    "max_tokens": _integer(1),
    "max_completion_tokens": _integer(1),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "seed": _integer(-(2**63), 2**63 - 1),
    "stop": _stop,
    "user": _of_type(str, "a string"),
    "logit_bias": _of_type(dict, "an object"),
    "logprobs": _of_type(bool, "a boolean"),
    "top_logprobs": _integer(0, 20),
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _of_type(bool, "a boolean"),
    "response_format": _response_format,
}


def _check_message(i: int, msg: Any) -> None:
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise InvalidRequest(f"'{where}' must be an object with 'role' and 'content'.", param=where)
    role = msg.get("role")
    if role not in ROLES:
        raise InvalidRequest(
            f"'{where}.role' must be one of {', '.join(sorted(ROLES))}; got {role!r}.", param=f"{where}.role"
        )
    content = msg.get("content")
    if content is None:
        if role == "assistant" and (msg.get("tool_calls") or msg.get("function_call")):
            return
        raise InvalidRequest(f"'{where}.content' is required.", param=f"{where}.content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
                raise InvalidRequest(
                    f"'{where}.content[{j}].type' must be one of {', '.join(sorted(PART_TYPES))}.",
                    param=f"{where}.content[{j}].type",
                )
    elif not isinstance(content, str):
        raise InvalidRequest(f"'{where}.content' must be a string or a list of content parts.", param=f"{where}.content")
    if role == "tool" and not isinstance(msg.get("tool_call_id"), str):
        raise InvalidRequest(f"'{where}.tool_call_id' is required for tool messages.", param=f"{where}.tool_call_id")


def parse_chat_request(raw: bytes) -> ChatRequest:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.pop("model", None)
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required: the name of a route.", param="model")
    messages = body.pop("messages", None)
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list.", param="messages")
    for i, msg in enumerate(messages):
        _check_message(i, msg)
    stream = body.pop("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    stream_options = body.pop("stream_options", None)
    include_usage = False
    if stream_options is not None:
        if not stream:
            raise InvalidRequest("'stream_options' is only allowed when 'stream' is true.", param="stream_options")
        if not isinstance(stream_options, dict):
            raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
        include_usage = bool(stream_options.get("include_usage", False))
    metadata = body.pop("metadata", None) or {}
    if not isinstance(metadata, dict):
        raise InvalidRequest("'metadata' must be an object.", param="metadata")
    for name, value in body.items():
        check = PARAMS.get(name)
        if check is not None and value is not None:
            check(name, value)
    params = {k: v for k, v in body.items() if v is not None}
    max_tokens = params.get("max_completion_tokens", params.get("max_tokens"))
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        params=params,
        metadata=metadata,
    )
