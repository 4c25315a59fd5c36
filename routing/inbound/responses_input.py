"""POST /v1/responses body -> the internal ChatRequest (OpenAI chat shape), with
OpenAI-style 400s that name the Responses param at fault ('input[3].content[0]').

The gateway is stateless here: every request carries the whole conversation in
`input` (what Codex CLI sends with `store: false`). What would need a stored response
(`previous_response_id`, `conversation`, `background`, `item_reference` items) is
refused with a 400 that says so; built-in OpenAI tools (web search, file search,
computer use, ...) are refused too, since no target of a route runs them. Every other
shape is checked here, so what reaches an adapter is a chat request it can translate
(routing.schemas' guarantees), and a bad body is the client's 400, never a 500.

    instructions, system/developer messages   -> system messages
    user messages (input_text/image/file)      -> user messages (text/image_url/file parts)
    assistant messages (output_text, refusal)  -> assistant messages (text)
    function_call items                        -> assistant tool_calls (consecutive calls: one message)
    function_call_output items                 -> tool messages (their images: a user message after them)
    reasoning items                            -> dropped (no target takes another model's reasoning back)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


from gateway_project.errors import InvalidRequest
from providers.types import ChatRequest

from ..schemas import MAX_TOKENS, PARAMS, load_body, request_needs

ROLES = ("user", "assistant", "system", "developer")
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
VERBOSITY = ("low", "medium", "high")
IMAGE_DETAIL = {"auto": "auto", "low": "low", "high": "high", "original": "high"}  # chat has no "original"
TOOL_CHOICES = ("none", "auto", "required")
TEXT_FORMATS = ("text", "json_object", "json_schema")
STATELESS = ("This gateway does not store responses: send the whole conversation in 'input' "
             "(with store: false, as Codex CLI does).")
# Request fields that only make sense against a response store: refused, saying why.
STATEFUL = {
    "previous_response_id": "'previous_response_id' is not supported. " + STATELESS,
    "conversation": "'conversation' is not supported. " + STATELESS,
    "prompt": "'prompt' (stored prompt templates) is not supported; send the prompt in 'instructions' and 'input'.",
}


@dataclass(slots=True)
class ResponsesRequest:
    """A parsed Responses request: the chat request every target can take, and the
    request's settings as the Response object repeats them (`shown`)."""

    chat: ChatRequest
    shown: dict[str, Any]


def _bad(param: str, message: str, code: str = "invalid_request") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def _string(where: str, value: Any, *, required: bool = True, nonempty: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (nonempty and not value):
        raise _bad(where, f"'{where}' must be a {'non-empty ' if nonempty else ''}string.")
    return value


def _object(where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise _bad(where, f"'{where}' must be an object.")
    return value


def _boolean(where: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise _bad(where, f"'{where}' must be a boolean.")
    return value


def _one_of(where: str, value: Any, allowed) -> Any:
    if value is not None and (not isinstance(value, str) or value not in allowed):
        raise _bad(where, f"'{where}' must be one of {', '.join(allowed)}; got {value!r}.")
    return value


def _strings(where: str, value: Any) -> None:
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise _bad(where, f"'{where}' must be a list of strings.")


# --- content parts ---------------------------------------------------------------------
def _image(where: str, part: dict) -> dict:
    url = part.get("image_url")
    if url is None and part.get("file_id") is not None:
        raise _bad(f"{where}.file_id", f"'{where}.file_id' needs OpenAI's Files API, which the gateway does not "
                                       "have; send the image as 'image_url' (a URL or a data: URL).")
    _string(f"{where}.image_url", url, nonempty=True)
    image: dict[str, Any] = {"url": url}
    detail = _one_of(f"{where}.detail", part.get("detail"), tuple(IMAGE_DETAIL))
    if detail is not None:
        image["detail"] = IMAGE_DETAIL[detail]
    return {"type": "image_url", "image_url": image}


def _file(where: str, part: dict) -> dict:
    if part.get("file_url") is not None:
        raise _bad(f"{where}.file_url", f"'{where}.file_url' is not supported; send the file as 'file_data'.")
    file = {}
    for name in ("file_data", "file_id", "filename"):
        if _string(f"{where}.{name}", part.get(name), required=False) is not None:
            file[name] = part[name]
    if "file_data" not in file and "file_id" not in file:
        raise _bad(where, f"'{where}' needs 'file_data' or 'file_id'.")
    return {"type": "file", "file": file}


def _part(where: str, part: Any, allowed: tuple[str, ...]) -> dict:
    """One content part in chat shape: {"type": "text"|"image_url"|"file", ...}."""
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(kind, str) or kind not in allowed:
        raise _bad(f"{where}.type", f"'{where}.type' must be one of {', '.join(allowed)}; got {kind!r}.")
    if kind == "input_image":
        return _image(where, part)
    if kind == "input_file":
        return _file(where, part)
    field = "refusal" if kind == "refusal" else "text"
    return {"type": "text", "text": _string(f"{where}.{field}", part.get(field))}


USER_PARTS = ("input_text", "input_image", "input_file")
TEXT_PARTS = {
    "system": ("input_text",),
    "developer": ("input_text",),
    "assistant": ("output_text", "refusal", "input_text"),
}


def _message(where: str, item: dict) -> dict | None:
    role = item.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise _bad(f"{where}.role", f"'{where}.role' must be one of {', '.join(ROLES)}; got {role!r}.")
    content = item.get("content")
    chat_role = "system" if role == "developer" else role  # every target knows system; not all know developer
    if isinstance(content, str):
        return {"role": chat_role, "content": content}
    if not isinstance(content, list):
        raise _bad(f"{where}.content", f"'{where}.content' must be a string or a list of content parts.")
    if role == "user":
        if not content:
            raise _bad(f"{where}.content", f"'{where}.content' must not be an empty list.")
        parts = [_part(f"{where}.content[{j}]", p, USER_PARTS) for j, p in enumerate(content)]
        return {"role": "user", "content": parts}
    parts = [_part(f"{where}.content[{j}]", p, TEXT_PARTS[role]) for j, p in enumerate(content)]
    text = "".join(p["text"] for p in parts)
    if role == "assistant" and not text:
        return None  # an empty answer in the history: nothing to replay
    return {"role": chat_role, "content": text}


def _tool_output(where: str, output: Any) -> tuple[str, list[dict]]:
    """(text for the tool message, image/file parts): a chat tool message holds text only."""
    if isinstance(output, str):
        return output, []
    if not isinstance(output, list):
        raise _bad(where, f"'{where}' must be a string or a list of content parts.")
    parts = [_part(f"{where}[{j}]", p, USER_PARTS) for j, p in enumerate(output)]
    text = "\n".join(p["text"] for p in parts if p["type"] == "text")
    return text, [p for p in parts if p["type"] != "text"]


# --- input items -------------------------------------------------------------------------
def _function_call(where: str, item: dict) -> dict:
    call_id = _string(f"{where}.call_id", item.get("call_id"), nonempty=True)
    name = _string(f"{where}.name", item.get("name"), nonempty=True)
    arguments = _string(f"{where}.arguments", item.get("arguments"))  # a JSON text, as the model wrote it
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def translate_input(value: Any, instructions: str | None) -> list[dict]:
    """Responses `instructions` + `input` -> chat messages."""
    messages: list[dict] = [{"role": "system", "content": instructions}] if instructions else []
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
        return messages
    if not isinstance(value, list) or not value:
        raise _bad("input", "'input' must be a string or a non-empty list of input items.")
    calls: set[str] = set()
    held: list[dict] = []  # images of tool outputs: a user message once the outputs end

    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _bad(where, f"'{where}' must be an object (a message or an item with a 'type').")
        kind = item.get("type", "message")
        if held and kind != "function_call_output":
            messages.append({"role": "user", "content": held})
            held = []
        if kind == "message":
            message = _message(where, item)
            if message is not None:
                messages.append(message)
        elif kind == "function_call":
            call = _function_call(where, item)
            calls.add(call["id"])
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":  # parallel calls: one assistant turn
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            call_id = _string(f"{where}.call_id", item.get("call_id"), nonempty=True)
            if call_id not in calls:
                raise _bad(f"{where}.call_id", f"No function_call with call_id {call_id!r} comes before '{where}' "
                                               "(the whole conversation must be in 'input').")
            text, attachments = _tool_output(f"{where}.output", item.get("output"))
            messages.append({"role": "tool", "tool_call_id": call_id, "content": text})
            held.extend(attachments)
        elif kind == "reasoning":
            continue  # another model's (or an encrypted) chain of thought: no target takes it back
        elif kind == "item_reference":
            raise _bad(where, f"'{where}' is an item_reference. " + STATELESS, code="stored_items_not_supported")
        else:
            raise _bad(f"{where}.type", f"'{where}.type' {kind!r} is not supported: input items are messages, "
                                        "function_call, function_call_output and reasoning.")
    if held:
        messages.append({"role": "user", "content": held})
    if not any(m["role"] != "system" for m in messages):
        raise _bad("input", "'input' must hold at least one message or item besides instructions.")
    return messages


# --- tools, formats, parameters ----------------------------------------------------------
def _tools(value: Any) -> tuple[list[dict], list[dict]]:
    """(chat tools, the tools as the Response object repeats them)."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        raise _bad("tools", "'tools' must be a list.")
    chat, shown = [], []
    for i, tool in enumerate(value):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise _bad(f"{where}.type", f"'{where}.type' {kind!r} is not supported: only function tools; "
                                        "built-in tools (web search, file search, computer use, ...) are not run "
                                        "by this gateway.", code="unsupported_tool")
        name = _string(f"{where}.name", tool.get("name"), nonempty=True)
        description = _string(f"{where}.description", tool.get("description"), required=False)
        parameters = tool.get("parameters")
        if parameters is not None:
            _object(f"{where}.parameters", parameters)
        strict = _boolean(f"{where}.strict", tool.get("strict"))
        function: dict[str, Any] = {"name": name}
        if description is not None:
            function["description"] = description
        if parameters is not None:
            function["parameters"] = parameters
        if strict is not None:
            function["strict"] = strict
        chat.append({"type": "function", "function": function})
        shown.append({"type": "function", "name": name, "description": description,
                      "parameters": parameters, "strict": strict})
    return chat, shown


def _tool_choice(value: Any) -> tuple[Any, Any]:
    """(chat tool_choice, as shown) from 'auto' | 'none' | 'required' | {type: function, name}."""
    if value is None:
        return None, "auto"
    if isinstance(value, str) and value in TOOL_CHOICES:
        return value, value
    if isinstance(value, dict) and value.get("type") == "function":
        name = _string("tool_choice.name", value.get("name"), nonempty=True)
        return {"type": "function", "function": {"name": name}}, {"type": "function", "name": name}
    raise _bad("tool_choice", "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", "
                              "\"name\": ...}; built-in and allowed_tools choices are not supported.")


def _text(value: Any) -> tuple[dict | None, dict]:
    """(chat response_format, text as shown) from text.format (and text.verbosity)."""
    if value is None:
        return None, {"format": {"type": "text"}}
    _object("text", value)
    verbosity = _one_of("text.verbosity", value.get("verbosity"), VERBOSITY)
    shown: dict[str, Any] = {"format": {"type": "text"}, "verbosity": verbosity}
    fmt = value.get("format")
    if fmt is None:
        return None, shown
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in TEXT_FORMATS:
        raise _bad("text.format.type", "'text.format.type' must be 'text', 'json_object' or 'json_schema'.")
    shown["format"] = fmt
    if kind == "text":
        return None, shown
    if kind == "json_object":
        return {"type": "json_object"}, shown
    spec: dict[str, Any] = {"name": _string("text.format.name", fmt.get("name"), nonempty=True)}
    spec["schema"] = _object("text.format.schema", fmt.get("schema"))
    if _string("text.format.description", fmt.get("description"), required=False) is not None:
        spec["description"] = fmt["description"]
    if _boolean("text.format.strict", fmt.get("strict")) is not None:
        spec["strict"] = fmt["strict"]
    return {"type": "json_schema", "json_schema": spec}, shown


def _reasoning(value: Any) -> dict:
    if value is None:
        return {"effort": None, "summary": None}
    _object("reasoning", value)
    effort = _one_of("reasoning.effort", value.get("effort"), EFFORTS)
    summary = _one_of("reasoning.summary", value.get("summary"), ("auto", "concise", "detailed", "none"))
    return {"effort": effort, "summary": summary}


def _max_output_tokens(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TOKENS:
        raise _bad("max_output_tokens", f"'max_output_tokens' must be an integer between 1 and {MAX_TOKENS}.")
    return value


# --- the body ------------------------------------------------------------------------------


def parse_responses_request(raw: bytes) -> ResponsesRequest:
    body = load_body(raw)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "'model' is required: the name of a route.")
    for name, message in STATEFUL.items():
        if body.get(name) is not None:
            raise _bad(name, message, code="stored_responses_not_supported")
    if body.get("background"):
        raise _bad("background", "'background' is not supported. " + STATELESS, code="stored_responses_not_supported")
    stream = _boolean("stream", body.get("stream")) or False
    if body.get("stream_options") is not None:
        _object("stream_options", body["stream_options"])
    _boolean("store", body.get("store"))  # accepted either way; nothing is stored (the answer says store: false)
    _strings("include", body.get("include"))
    instructions = _string("instructions", body.get("instructions"), required=False)
    messages = translate_input(body.get("input"), instructions)

    params: dict[str, Any] = {}
    tools, shown_tools = _tools(body.get("tools"))
    tool_choice, shown_choice = _tool_choice(body.get("tool_choice"))
    parallel = _boolean("parallel_tool_calls", body.get("parallel_tool_calls"))
    if tools:  # chat refuses tool_choice and parallel_tool_calls without tools (Codex sends tools: [])
        params["tools"] = tools
        if tool_choice is not None:
            params["tool_choice"] = tool_choice
        if parallel is not None:
            params["parallel_tool_calls"] = parallel
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            PARAMS[name](name, body[name])
            params[name] = body[name]
    max_tokens = _max_output_tokens(body.get("max_output_tokens"))
    if max_tokens is not None:
        params["max_completion_tokens"] = max_tokens
    response_format, shown_text = _text(body.get("text"))
    if response_format is not None:
        params["response_format"] = response_format
    reasoning = _reasoning(body.get("reasoning"))
    if reasoning["effort"] is not None:
        params["reasoning_effort"] = reasoning["effort"]
    user = _string("user", body.get("user"), required=False)
    safety = _string("safety_identifier", body.get("safety_identifier"), required=False)
    if user or safety:
        params["user"] = user or safety
    metadata = body.get("metadata")
    if metadata is not None:
        _object("metadata", metadata)
    for name in ("prompt_cache_key", "service_tier"):  # accepted; a target's own caching and tiers decide
        _string(name, body.get(name), required=False)
    _one_of("truncation", body.get("truncation"), ("auto", "disabled"))

    chat = ChatRequest(model=model, messages=messages, stream=stream, max_tokens=max_tokens, params=params,
                       metadata=metadata or {})
    chat.needs = request_needs(chat)  # tools, vision, json_mode, streaming: as for chat
    shown = {
        "instructions": instructions,
        "max_output_tokens": max_tokens,
        "metadata": metadata or {},
        "parallel_tool_calls": True if parallel is None else parallel,
        "previous_response_id": None,
        "reasoning": reasoning,
        "store": False,
        "temperature": body.get("temperature"),
        "text": shown_text,
        "tool_choice": shown_choice,
        "tools": shown_tools,
        "top_p": body.get("top_p"),
        "truncation": "disabled",
        "user": user,
    }
    return ResponsesRequest(chat, shown)
