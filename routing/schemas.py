"""Request body -> ChatRequest, with OpenAI-style 400s that name the offending param.

Hand-written rather than a serializer: it runs on every request, and the checks are
a flat table of parameter rules (cheap, and each error names its `param`). Every shape
an adapter assumes (providers/adapters/*.py: a part's `text` is a string, `image_url`
an object with a string `url`, a tool call's `function.arguments` a string, ...) is
checked here, so a body the gateway could not translate is the client's 400 before
any provider is called, never an adapter failure counted against a provider.

routing/openapi/serializers.py describes the same body for the OpenAPI schema, and
tests/test_openapi_equivalence.py holds the two to the same verdicts: change both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway_project.errors import InvalidRequest
from providers.types import ChatRequest

# No JSON value in the body may sit inside more than this many objects/arrays, the
# body itself counting as the first (docs/api.md). Generous for tool schemas; far
# below what the JSON encoder on the way upstream refuses (orjson: 254).
MAX_DEPTH = 32
MAX_TOKENS = 2**31 - 1  # any max_tokens above this is a typo, and overflows accounting

ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
PART_TYPES = {"text", "image_url", "input_audio", "file", "refusal"}
# Which content parts each role may send (OpenAI's chat API).
ROLE_PARTS: dict[str, frozenset[str]] = {
    "system": frozenset({"text"}),
    "developer": frozenset({"text"}),
    "user": frozenset({"text", "image_url", "input_audio", "file"}),
    "assistant": frozenset({"text", "refusal"}),
    "tool": frozenset({"text"}),
    "function": frozenset({"text"}),
}
IMAGE_DETAIL = ("auto", "low", "high")
AUDIO_FORMATS = ("wav", "mp3")
RESPONSE_FORMATS = ("text", "json_object", "json_schema")
TOOL_CHOICES = ("none", "auto", "required")

# What a chat request may need of a model beyond chat itself (ChatRequest.needs; the
# capabilities of providers.models.CAPABILITIES), with the parameter that asks for it
# and why, for the 400 that says no target has it (routing.strategies). A target whose
# model lacks one is never sent the request. `reasoning_effort` asks for no capability:
# models configured before capabilities existed have no "thinking" (the default set
# leaves it out), and requests they serve today would start failing; a model that
# cannot reason answers without (or refuses the parameter, as before). The row is for
# an inbound API that one day requires thinking; none does today.
NEEDS: dict[str, tuple[str, str]] = {
    "tools": ("tools", "it defines tools"),
    "vision": ("messages", "it sends images"),
    "json_mode": ("response_format", "it asks for a JSON response_format"),
    "streaming": ("stream", "it asks for a stream"),
    "thinking": ("thinking", "it asks for extended thinking"),
}
_NO_NEEDS: frozenset[str] = frozenset()


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _string(where: str, value: Any, *, required: bool = True, nonempty: bool = False) -> None:
    """A string (or, unless required, absent/null)."""
    if value is None and not required:
        return
    if not isinstance(value, str) or (nonempty and not value):
        raise _bad(where, f"'{where}' must be a {'non-empty ' if nonempty else ''}string.")


def _object(where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise _bad(where, f"'{where}' must be an object.")
    return value


# --- nesting ---------------------------------------------------------------------------
def _too_deep(body: Any) -> bool:
    """Any container deeper than MAX_DEPTH? One pass over containers only (strings and
    numbers are never pushed), so the cost is that of the body's structure."""
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def _deep_path(body: Any) -> str:
    """Where the first too-deep value is, as a param (failure path only)."""
    stack: list[tuple[Any, int, str]] = [(body, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if isinstance(child, (dict, list)):
                where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else str(key)
                if depth + 1 > MAX_DEPTH:
                    return where
                stack.append((child, depth + 1, where))
    return ""


def _check_depth(body: dict) -> None:
    if _too_deep(body):
        where = _deep_path(body)
        top = where.split(".", 1)[0].split("[", 1)[0]
        raise _bad(top, f"'{top}' is nested too deeply (at '{where[:200]}'): "
                        f"at most {MAX_DEPTH} levels of objects and arrays are accepted.")


# --- parameters ------------------------------------------------------------------------
def _number(lo: float, hi: float) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if not _is_number(value):
            raise _bad(name, f"'{name}' must be a number.")
        if not lo <= value <= hi:
            raise _bad(name, f"'{name}' must be between {lo:g} and {hi:g}; got {value}.")

    return check


def _integer(lo: int, hi: int) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if not _is_int(value):
            raise _bad(name, f"'{name}' must be an integer.")
        if not lo <= value <= hi:
            raise _bad(name, f"'{name}' must be between {lo} and {hi}; got {value}.")

    return check


def _of_type(kind: type, label: str) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            raise _bad(name, f"'{name}' must be {label}.")

    return check


def _stop(name: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list) or len(value) > 4 or not all(isinstance(s, str) for s in value):
        raise _bad(name, "'stop' must be a string or a list of up to 4 strings.")


def _logit_bias(name: str, value: Any) -> None:
    _object(name, value)
    for token, bias in value.items():
        if not _is_number(bias) or not -100 <= bias <= 100:
            raise _bad(f"{name}.{token}", f"'{name}' values must be numbers between -100 and 100.")


def _tools(name: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _bad(name, "'tools' must be a list.")
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        fn = tool.get("function") if isinstance(tool, dict) else None
        if (not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(fn, dict)
                or not isinstance(fn.get("name"), str) or not fn["name"]):
            raise _bad(where, f"'{where}' must be {{\"type\": \"function\", \"function\": {{\"name\": ...}}}}.")
        _string(f"{where}.function.description", fn.get("description"), required=False)
        if fn.get("parameters") is not None:
            _object(f"{where}.function.parameters", fn["parameters"])
        if fn.get("strict") is not None:
            _of_type(bool, "a boolean")(f"{where}.function.strict", fn["strict"])


def _tool_choice(name: str, value: Any) -> None:
    if value in TOOL_CHOICES:
        return
    if isinstance(value, dict) and value.get("type") == "function":
        fn = value.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
            return
        raise _bad(f"{name}.function", "'tool_choice.function' must be an object with a 'name'.")
    raise _bad(name, "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", \"function\": {\"name\": ...}}.")


def _response_format(name: str, value: Any) -> None:
    if not isinstance(value, dict) or value.get("type") not in RESPONSE_FORMATS:
        raise _bad(name, "'response_format.type' must be 'text', 'json_object' or 'json_schema'.")
    if value["type"] != "json_schema":
        return
    spec = value.get("json_schema")
    where = f"{name}.json_schema"
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise _bad(where, f"'{where}' must be an object with a 'name' (and a 'schema').")
    if spec.get("schema") is not None:
        _object(f"{where}.schema", spec["schema"])
    _string(f"{where}.description", spec.get("description"), required=False)
    if spec.get("strict") is not None:
        _of_type(bool, "a boolean")(f"{where}.strict", spec["strict"])


PARAMS: dict[str, Callable[[str, Any], None]] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "n": _integer(1, 128),
    "max_tokens": _integer(1, MAX_TOKENS),
    "max_completion_tokens": _integer(1, MAX_TOKENS),
    "presence_penalty": _number(-2, 2),
    "frequency_penalty": _number(-2, 2),
    "seed": _integer(-(2**63), 2**63 - 1),
    "stop": _stop,
    "user": _of_type(str, "a string"),
    "logit_bias": _logit_bias,
    "logprobs": _of_type(bool, "a boolean"),
    "top_logprobs": _integer(0, 20),
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _of_type(bool, "a boolean"),
    "response_format": _response_format,
}


# --- messages --------------------------------------------------------------------------
def _check_part(where: str, part: Any, allowed: frozenset[str], role: str) -> None:
    if not isinstance(part, dict) or not isinstance(part.get("type"), str) or part["type"] not in PART_TYPES:
        raise _bad(f"{where}.type", f"'{where}.type' must be one of {', '.join(sorted(PART_TYPES))}.")
    kind = part["type"]
    if kind not in allowed:
        raise _bad(f"{where}.type", f"'{where}.type' {kind!r} is not allowed in a {role} message "
                                    f"(allowed: {', '.join(sorted(allowed))}).")
    if kind in ("text", "refusal"):
        _string(f"{where}.{kind}", part.get(kind))
    elif kind == "image_url":
        image = _object(f"{where}.image_url", part.get("image_url"))
        _string(f"{where}.image_url.url", image.get("url"), nonempty=True)
        if image.get("detail") is not None and image["detail"] not in IMAGE_DETAIL:
            raise _bad(f"{where}.image_url.detail", f"'{where}.image_url.detail' must be one of {', '.join(IMAGE_DETAIL)}.")
    elif kind == "input_audio":
        audio = _object(f"{where}.input_audio", part.get("input_audio"))
        _string(f"{where}.input_audio.data", audio.get("data"))
        if audio.get("format") not in AUDIO_FORMATS:
            raise _bad(f"{where}.input_audio.format", f"'{where}.input_audio.format' must be one of {', '.join(AUDIO_FORMATS)}.")
    else:  # file
        file = _object(f"{where}.file", part.get("file"))
        for field in ("file_data", "file_id", "filename"):
            _string(f"{where}.file.{field}", file.get(field), required=False)
        if file.get("file_data") is None and file.get("file_id") is None:
            raise _bad(f"{where}.file", f"'{where}.file' needs 'file_data' or 'file_id'.")


def _check_tool_calls(where: str, calls: Any) -> None:
    if not isinstance(calls, list):
        raise _bad(where, f"'{where}' must be a list.")
    for k, call in enumerate(calls):
        at = f"{where}[{k}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise _bad(at, f"'{at}' must be {{\"id\": ..., \"type\": \"function\", \"function\": {{\"name\", \"arguments\"}}}}.")
        _string(f"{at}.id", call.get("id"))
        _check_function_call(f"{at}.function", call.get("function"))


def _check_function_call(where: str, fn: Any) -> None:
    _object(where, fn)
    _string(f"{where}.name", fn.get("name"), nonempty=True)
    _string(f"{where}.arguments", fn.get("arguments"))  # a JSON text, as OpenAI sends it


def _check_message(i: int, msg: Any) -> None:
    where = f"messages[{i}]"
    if not isinstance(msg, dict):
        raise _bad(where, f"'{where}' must be an object with 'role' and 'content'.")
    role = msg.get("role")
    if not isinstance(role, str) or role not in ROLES:  # (a list is unhashable: not `in` a set)
        raise _bad(f"{where}.role", f"'{where}.role' must be one of {', '.join(sorted(ROLES))}; got {role!r}.")
    _string(f"{where}.name", msg.get("name"), required=role == "function")
    calls = msg.get("tool_calls")
    if calls is not None:
        if role != "assistant":
            raise _bad(f"{where}.tool_calls", f"'{where}.tool_calls' is only allowed in assistant messages.")
        _check_tool_calls(f"{where}.tool_calls", calls)
    if msg.get("function_call") is not None:
        if role != "assistant":
            raise _bad(f"{where}.function_call", f"'{where}.function_call' is only allowed in assistant messages.")
        _check_function_call(f"{where}.function_call", msg["function_call"])
    if role == "assistant":
        _string(f"{where}.refusal", msg.get("refusal"), required=False)
    if role == "tool":
        _string(f"{where}.tool_call_id", msg.get("tool_call_id"))
    content = msg.get("content")
    if content is None:
        if role == "assistant" and (calls or msg.get("function_call") is not None):
            return
        raise _bad(f"{where}.content", f"'{where}.content' is required.")
    if isinstance(content, list):
        if not content:
            raise _bad(f"{where}.content", f"'{where}.content' must not be an empty list.")
        allowed = ROLE_PARTS[role]
        for j, part in enumerate(content):
            _check_part(f"{where}.content[{j}]", part, allowed, role)
    elif not isinstance(content, str):
        raise _bad(f"{where}.content", f"'{where}.content' must be a string or a list of content parts.")


# --- what the request needs ------------------------------------------------------------
def _has_image(messages: list[dict[str, Any]]) -> bool:
    for msg in messages:
        content = msg.get("content")
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content):
            return True
    return False


def request_needs(req: ChatRequest) -> frozenset[str]:
    """The capabilities (NEEDS) an OpenAI-shaped chat request needs: tool definitions
    (`tools`, or the legacy `functions`) -> tools, an image part -> vision, a JSON
    `response_format` -> json_mode, a stream -> streaming. Every inbound API that
    builds a ChatRequest sets its `needs` with this (and adds what its own dialect asks
    for, such as thinking)."""
    params = req.params
    needs = []
    if params.get("tools") or params.get("functions"):
        needs.append("tools")
    if _has_image(req.messages):
        needs.append("vision")
    fmt = params.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        needs.append("json_mode")
    if req.stream:
        needs.append("streaming")
    return frozenset(needs) if needs else _NO_NEEDS


# --- the body --------------------------------------------------------------------------
def load_body(raw: bytes) -> dict:
    """A request body as a JSON object within the nesting limit, or the client's 400: the
    first step of every /v1 parser (chat, Responses, embeddings)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = " (nested too deeply)" if "depth" in str(exc) else ""
        raise InvalidRequest(f"The request body is not valid JSON{detail}.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    _check_depth(body)
    return body


def parse_chat_request(raw: bytes) -> ChatRequest:
    body = load_body(raw)
    model = body.pop("model", None)
    if not isinstance(model, str) or not model:
        raise _bad("model", "'model' is required: the name of a route.")
    messages = body.pop("messages", None)
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "'messages' must be a non-empty list.")
    for i, msg in enumerate(messages):
        _check_message(i, msg)
    stream = body.pop("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _bad("stream", "'stream' must be a boolean.")
    stream_options = body.pop("stream_options", None)
    include_usage = False
    if stream_options is not None:
        if not stream:
            raise _bad("stream_options", "'stream_options' is only allowed when 'stream' is true.")
        _object("stream_options", stream_options)
        include_usage = stream_options.get("include_usage")
        if include_usage is None:
            include_usage = False
        if not isinstance(include_usage, bool):
            raise _bad("stream_options.include_usage", "'stream_options.include_usage' must be a boolean.")
    metadata = body.pop("metadata", None)
    if metadata is None:
        metadata = {}
    _object("metadata", metadata)
    for name, value in body.items():
        check = PARAMS.get(name)
        if check is not None and value is not None:
            check(name, value)
    params = {k: v for k, v in body.items() if v is not None}
    max_tokens = params.get("max_completion_tokens", params.get("max_tokens"))
    req = ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=include_usage,
        max_tokens=max_tokens,
        params=params,
        metadata=metadata,
    )
    req.needs = request_needs(req)
    return req
