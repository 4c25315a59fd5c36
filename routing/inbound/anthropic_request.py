"""POST /v1/messages (and /v1/messages/count_tokens) body -> ChatRequest.

The body is checked for every shape the translation assumes, each refusal a 400 that
names the field the way Anthropic does ('messages.0.content.1.text: ...'), so a body
no target could take is the client's error before any provider is called. Fields the
gateway does not know (`cache_control`, `thinking`, `container`, beta features) are
allowed and kept: the request's `native` copy (body, raw bytes, anthropic-* headers)
is what an Anthropic target receives. Every other target gets the translation into
the internal (OpenAI chat) shape made here:

    system (string or text blocks)      a system message
    text / image / document blocks      text, image_url and file parts
    tool_use blocks (assistant)         tool_calls
    tool_result blocks (user)           tool messages, before the turn's other content
    tools, tool_choice                  function tools; auto/any/tool/none
    stop_sequences, metadata.user_id    stop (at most 4), user
    thinking, redacted_thinking,        dropped: only Anthropic can read them
    server tools, cache_control
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway_project.errors import InvalidRequest
from providers.tokens import estimate_prompt_tokens, estimate_tokens
from providers.types import ChatRequest

from ..schemas import MAX_TOKENS, _check_depth, request_needs

ROLES = ("user", "assistant")
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}  # and "tool": one function
OPENAI_MAX_STOPS = 4
# Blocks each role may send (what Anthropic accepts; other types pass unchecked).
USER_ONLY = frozenset({"tool_result"})
ASSISTANT_ONLY = frozenset({"tool_use", "thinking", "redacted_thinking"})


def _bad(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {message}", param=path)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _string(path: str, value: Any, *, nonempty: bool = False) -> str:
    if not isinstance(value, str):
        raise _bad(path, "Input should be a valid string")
    if nonempty and not value:
        raise _bad(path, "String should have at least 1 character")
    return value


def _object(path: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise _bad(path, "Input should be a valid dictionary")
    return value


def _list(path: str, value: Any, *, nonempty: bool = False) -> list:
    if not isinstance(value, list):
        raise _bad(path, "Input should be a valid list")
    if nonempty and not value:
        raise _bad(path, "List should have at least 1 item after validation, not 0")
    return value


def _number(path: str, value: Any, lo: float, hi: float) -> None:
    if not _is_number(value) or not lo <= value <= hi:
        raise _bad(path, f"Input should be a number between {lo:g} and {hi:g}")


# --- checks ------------------------------------------------------------------------------
def _check_source(path: str, source: Any) -> None:
    source = _object(path, source)
    kind = source.get("type")
    if kind == "base64":
        _string(f"{path}.media_type", source.get("media_type"), nonempty=True)
        _string(f"{path}.data", source.get("data"))
    elif kind == "url":
        _string(f"{path}.url", source.get("url"), nonempty=True)
    elif kind == "text":
        _string(f"{path}.data", source.get("data"))
    elif not isinstance(kind, str):
        raise _bad(f"{path}.type", "Field required")


def _check_block(path: str, block: Any, role: str) -> None:
    block = _object(path, block)
    kind = block.get("type")
    if not isinstance(kind, str) or not kind:
        raise _bad(f"{path}.type", "Field required")
    if kind in USER_ONLY and role != "user" or kind in ASSISTANT_ONLY and role != "assistant":
        raise _bad(f"{path}.type", f"'{kind}' blocks are not allowed in {role} messages")
    if kind == "text":
        _string(f"{path}.text", block.get("text"))
    elif kind in ("image", "document"):
        _check_source(f"{path}.source", block.get("source"))
    elif kind == "tool_use":
        _string(f"{path}.id", block.get("id"), nonempty=True)
        _string(f"{path}.name", block.get("name"), nonempty=True)
        _object(f"{path}.input", block.get("input"))
    elif kind == "tool_result":
        _string(f"{path}.tool_use_id", block.get("tool_use_id"), nonempty=True)
        content = block.get("content")
        if isinstance(content, list):
            for k, part in enumerate(content):
                _check_block(f"{path}.content.{k}", part, "user")
        elif content is not None and not isinstance(content, str):
            raise _bad(f"{path}.content", "Input should be a valid string or a list of content blocks")
    elif kind == "thinking":
        _string(f"{path}.thinking", block.get("thinking"))
        _string(f"{path}.signature", block.get("signature"))
    elif kind == "redacted_thinking":
        _string(f"{path}.data", block.get("data"))


def _check_messages(messages: Any) -> list[dict]:
    messages = _list("messages", messages, nonempty=True)
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        message = _object(path, message)
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise _bad(f"{path}.role", "Input should be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, list):
            for j, block in enumerate(content):
                _check_block(f"{path}.content.{j}", block, role)
        elif not isinstance(content, str):
            raise _bad(f"{path}.content", "Input should be a valid string or a list of content blocks")
    return messages


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    for i, block in enumerate(_list("system", system)):
        block = _object(f"system.{i}", block)
        if block.get("type") != "text":
            raise _bad(f"system.{i}.type", "Input should be 'text'")
        _string(f"system.{i}.text", block.get("text"))


def _check_tools(tools: Any) -> None:
    for i, tool in enumerate(_list("tools", tools)):
        path = f"tools.{i}"
        tool = _object(path, tool)
        _string(f"{path}.name", tool.get("name"), nonempty=True)
        if tool.get("type") in (None, "custom"):  # a client tool; typed ones are Anthropic's own
            _object(f"{path}.input_schema", tool.get("input_schema"))
            if tool.get("description") is not None:
                _string(f"{path}.description", tool["description"])
        elif not isinstance(tool.get("type"), str):
            raise _bad(f"{path}.type", "Input should be a valid string")


def _check_tool_choice(choice: Any) -> None:
    choice = _object("tool_choice", choice)
    kind = choice.get("type")
    if kind == "tool":
        _string("tool_choice.name", choice.get("name"), nonempty=True)
    elif kind not in TOOL_CHOICES:
        raise _bad("tool_choice.type", "Input should be 'auto', 'any', 'tool' or 'none'")
    if choice.get("disable_parallel_tool_use") is not None and not isinstance(choice["disable_parallel_tool_use"], bool):
        raise _bad("tool_choice.disable_parallel_tool_use", "Input should be a valid boolean")


def _check_params(body: dict) -> None:
    if body.get("temperature") is not None:
        _number("temperature", body["temperature"], 0, 1)
    if body.get("top_p") is not None:
        _number("top_p", body["top_p"], 0, 1)
    if body.get("top_k") is not None and (not _is_int(body["top_k"]) or body["top_k"] < 0):
        raise _bad("top_k", "Input should be a non-negative integer")
    if body.get("stop_sequences") is not None:
        for i, stop in enumerate(_list("stop_sequences", body["stop_sequences"])):
            _string(f"stop_sequences.{i}", stop)
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise _bad("stream", "Input should be a valid boolean")
    if body.get("metadata") is not None:
        user = _object("metadata", body["metadata"]).get("user_id")
        if user is not None:
            _string("metadata.user_id", user)
    if body.get("tools") is not None:
        _check_tools(body["tools"])
    if body.get("tool_choice") is not None:
        _check_tool_choice(body["tool_choice"])
    thinking = body.get("thinking")
    if thinking is not None:
        thinking = _object("thinking", thinking)
        _string("thinking.type", thinking.get("type"), nonempty=True)
        if thinking["type"] == "enabled" and (not _is_int(thinking.get("budget_tokens")) or thinking["budget_tokens"] < 1):
            raise _bad("thinking.budget_tokens", "Input should be a positive integer")


def _model(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _bad("model", "Field required (the name of a route)")
    if not value.isprintable():  # NUL and other control characters: never a route name
        raise _bad("model", "Input should be a route name (printable characters only)")
    return value


# --- translation to the internal (OpenAI chat) shape ---------------------------------------
def _data_url(source: dict) -> str | None:
    if source.get("type") == "base64":
        return f"data:{source['media_type']};base64,{source['data']}"
    if source.get("type") == "url":
        return source["url"]
    return None


def _part(block: dict) -> dict | None:
    """A user content block as an OpenAI content part (None: nothing it can carry)."""
    kind = block["type"]
    if kind == "text":
        return {"type": "text", "text": block["text"]}
    source = block.get("source") or {}
    if kind == "image" and (url := _data_url(source)) is not None:
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "document":
        if source.get("type") == "text":
            return {"type": "text", "text": source["data"]}
        if source.get("type") == "base64":
            name = block.get("title") if isinstance(block.get("title"), str) else "document.pdf"
            return {"type": "file", "file": {"filename": name, "file_data": _data_url(source)}}
    return None


def _content(parts: list[dict]) -> str | list[dict]:
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def _tool_result(block: dict) -> tuple[dict, list[dict]]:
    """(the tool message, image parts it returned): a tool message carries text only, so
    images go in a user message right after the tool messages."""
    content = block.get("content")
    if content is None or isinstance(content, str):
        text, images = content or "", []
    else:
        parts = [p for p in (_part(b) for b in content) if p is not None]
        text = "\n".join(p["text"] for p in parts if p["type"] == "text")
        images = [p for p in parts if p["type"] != "text"]
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}, images


def _user_messages(content: str | list[dict]) -> list[dict]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict] = []
    parts: list[dict] = []
    for block in content:
        if block["type"] == "tool_result":
            tool, images = _tool_result(block)
            out.append(tool)
            if images:
                parts.append({"type": "text", "text": f"(images returned by tool call {block['tool_use_id']})"})
                parts.extend(images)
        elif (part := _part(block)) is not None:
            parts.append(part)
    if parts:
        out.append({"role": "user", "content": _content(parts)})
    return out


def _assistant_message(content: str | list[dict]) -> dict:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text = "".join(b["text"] for b in content if b["type"] == "text")
    calls = [{"id": b["id"], "type": "function",
              "function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()}}
             for b in content if b["type"] == "tool_use"]
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    return "\n\n".join(b["text"] for b in system or () if b["text"])


def translate_messages(body: dict) -> list[dict]:
    messages = []
    system = _system_text(body.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in body["messages"]:
        if message["role"] == "user":
            messages.extend(_user_messages(message["content"]))
        else:
            messages.append(_assistant_message(message["content"]))
    return messages


def translate_params(body: dict) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if body.get("max_tokens") is not None:
        params["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            params[name] = body[name]
    if body.get("stop_sequences"):
        params["stop"] = body["stop_sequences"][:OPENAI_MAX_STOPS]
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        params["user"] = user
    tools = [{"type": "function", "function": {"name": t["name"], "description": t.get("description") or "",
                                                "parameters": t["input_schema"]}}
             for t in body.get("tools") or () if t.get("type") in (None, "custom")]
    if tools:
        params["tools"] = tools
    choice = body.get("tool_choice")
    if choice is not None:
        if choice["type"] == "tool":
            params["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        else:
            params["tool_choice"] = TOOL_CHOICES[choice["type"]]
        if choice.get("disable_parallel_tool_use") and tools:
            params["parallel_tool_calls"] = False
    return params


def _needs(body: dict, req: ChatRequest) -> frozenset[str]:
    """What a target must be able to do for this request (ChatRequest.needs): what the
    translation needs as a chat request (tools, images, a stream), and tools for a
    conversation with tool calls in it even when none are offered now. Not thinking: a
    target that cannot think still answers, its thinking is dropped."""
    needs = request_needs(req)
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, list) and any(b["type"] in ("tool_use", "tool_result") for b in content):
            return needs | {"tools"}
    return needs


# --- the body ------------------------------------------------------------------------------
def parse_messages_request(raw: bytes, headers: dict[str, str], *, count_tokens: bool = False) -> ChatRequest:
    """The request of POST /v1/messages (or, with `count_tokens`, of its count_tokens
    endpoint: no max_tokens, never streamed). `headers` are the client's anthropic-*
    headers, kept for passthrough. Raises InvalidRequest (a 400)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        detail = " (nested too deeply)" if "depth" in str(exc) else ""
        raise InvalidRequest(f"The request body is not valid JSON{detail}.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    _check_depth(body)
    model = _model(body.get("model"))
    max_tokens = None
    if not count_tokens:
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise _bad("max_tokens", "Field required")
        if not _is_int(max_tokens) or not 1 <= max_tokens <= MAX_TOKENS:
            raise _bad("max_tokens", f"Input should be an integer between 1 and {MAX_TOKENS}")
    _check_messages(body.get("messages"))
    _check_system(body.get("system"))
    _check_params(body)
    stream = bool(body.get("stream")) and not count_tokens
    req = ChatRequest(
        model=model,
        messages=translate_messages(body),
        stream=stream,
        include_usage=stream,
        max_tokens=max_tokens,
        params=translate_params(body),
        native={"dialect": "anthropic", "body": body, "raw": raw, "headers": headers},
    )
    req.needs = _needs(body, req)
    return req


def estimate_input_tokens(req: ChatRequest) -> int:
    """The gateway's own count of a request's input tokens (count_tokens for targets
    that cannot count, and message_start of a stream whose target reports usage only
    at the end): the messages' text, and the tool definitions as JSON."""
    tools = req.params.get("tools")
    return max(1, estimate_prompt_tokens(req.messages) + (estimate_tokens(orjson.dumps(tools).decode()) if tools else 0))
