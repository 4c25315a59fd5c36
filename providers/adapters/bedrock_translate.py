"""Bedrock Converse's JSON, to and from the gateway's OpenAI shape (no transport here:
signing, the event stream and the HTTP exchange are in bedrock.py).

Request: system messages -> `system: [{text}]`; user/assistant/tool messages ->
`messages: [{role, content: [blocks]}]` with consecutive same-role turns merged (tool
results are user turns, as Converse wants); images -> `image` blocks with base64
`bytes` (Converse takes bytes or S3, never a URL); tool calls -> `toolUse`, tool
results -> `toolResult`; an assistant turn's `reasoning_content` (+ its
`reasoning_signature`) -> a `reasoningContent` block, so a signed thought goes back as
the model wrote it. Sampling parameters are the `PARAMS` table; tools and tool choice
are translated here.

Answer: `output.message.content` blocks -> content, tool_calls and reasoning_content
(`reasoning_signature` next to it); `stopReason` -> finish_reason; `usage` -> Usage
(prompt tokens = inputTokens + cache reads + cache writes, as Bedrock counts cached
tokens apart from inputTokens).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from ..params import DROP, Param, as_list, table
from ..tokens import message_text
from ..types import ErrorKind, ProviderError, Usage, reported_tokens
from . import checks
from .base import RequestNotTranslatable, tool_arguments

# Converse's stop reasons -> OpenAI finish reasons. `malformed_*` are the model's own
# failures (an answer that cannot be used): ProviderError(BAD_RESPONSE), see `finish`.
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
BROKEN_STOP_REASONS = frozenset({"malformed_model_output", "malformed_tool_use"})
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
DOCUMENT_FORMATS = {
    "application/pdf": "pdf", "text/csv": "csv", "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html", "text/plain": "txt", "text/markdown": "md",
}
# reasoning_effort -> an extended-thinking budget (Anthropic models on Bedrock read
# `additionalModelRequestFields.thinking`; the smallest budget they take is 1024).
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}


def _thinking_budget(effort: Any) -> Any:
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    return {"type": "enabled", "budget_tokens": budget} if budget else DROP


# OpenAI's parameters in Converse: sampling in `inferenceConfig` (temperature 0..1
# there), what only some models take in `additionalModelRequestFields` (sent to the
# model as it is). `max_tokens` is the request's normalised value (either spelling).
PARAMS = table(
    Param("max_tokens", to="inferenceConfig.maxTokens"),
    Param("max_completion_tokens", drop=True),  # normalised into max_tokens
    Param("temperature", to="inferenceConfig.temperature", min=0.0, max=1.0),
    Param("top_p", to="inferenceConfig.topP"),
    Param("stop", to="inferenceConfig.stopSequences", transform=as_list),
    Param("top_k", to="additionalModelRequestFields.top_k"),
    Param("thinking", to="additionalModelRequestFields.thinking"),
    Param("reasoning_effort", to="additionalModelRequestFields.thinking", transform=_thinking_budget),
)


# --- request ---------------------------------------------------------------------------
def _data_url(url: Any, where: str, formats: dict[str, str], what: str) -> tuple[str, str]:
    """(format, base64 payload) of a data: URL, or RequestNotTranslatable."""
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise RequestNotTranslatable(
            f"'{where}' must be a base64 data: URL for a Bedrock model (Converse takes the {what}'s bytes, not a link).",
            param=where)
    media, payload = url[5:].split(";base64,", 1)
    fmt = formats.get(media.lower())
    if fmt is None:
        raise RequestNotTranslatable(f"'{where}': Bedrock takes no {what} of type {media!r} "
                                     f"(only {', '.join(sorted(set(formats.values())))}).", param=where)
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise RequestNotTranslatable(f"'{where}' is not valid base64.", param=where) from None
    return fmt, payload


def _blocks(content: Any, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"text": content}] if content else []  # Converse refuses blank text blocks
    blocks: list[dict] = []
    for j, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            blocks.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            fmt, data = _data_url(image.get("url") if isinstance(image, dict) else None,
                                  f"{where}.content[{j}].image_url", IMAGE_FORMATS, "image")
            blocks.append({"image": {"format": fmt, "source": {"bytes": data}}})
        elif kind == "file":
            file = part.get("file") or {}
            fmt, data = _data_url(file.get("file_data"), f"{where}.content[{j}].file", DOCUMENT_FORMATS, "document")
            name = "".join(c if c.isalnum() or c in "-()[] " else "-" for c in str(file.get("filename") or f"document-{j}"))
            blocks.append({"document": {"format": fmt, "name": name, "source": {"bytes": data}}})
    return blocks


def _assistant_blocks(msg: dict, where: str) -> list[dict]:
    blocks: list[dict] = []
    thought = msg.get("reasoning_content")
    if isinstance(thought, str) and thought:
        text: dict[str, Any] = {"text": thought}
        if msg.get("reasoning_signature"):
            text["signature"] = str(msg["reasoning_signature"])
        blocks.append({"reasoningContent": {"reasoningText": text}})
    blocks.extend(_blocks(msg.get("content"), where))
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        blocks.append({"toolUse": {"toolUseId": call.get("id"), "name": fn.get("name"),
                                   "input": tool_arguments(fn.get("arguments"))}})
    return blocks


def translate_messages(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """OpenAI messages -> (Converse `system` blocks, Converse `messages`)."""
    system: list[dict] = []
    out: list[dict] = []

    def append(role: str, blocks: list[dict]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:  # Converse wants alternating turns: merge
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for i, msg in enumerate(messages):
        role = msg.get("role")
        if role in ("system", "developer"):
            text = message_text(msg.get("content"), sep="")
            if text:
                system.append({"text": text})
        elif role == "user":
            append("user", _blocks(msg.get("content"), f"messages[{i}]"))
        elif role == "assistant":
            append("assistant", _assistant_blocks(msg, f"messages[{i}]"))
        elif role == "tool":
            result = message_text(msg.get("content"), sep="")
            append("user", [{"toolResult": {"toolUseId": msg.get("tool_call_id"),
                                            "content": [{"text": result or "(empty)"}]}}])
    return system, out


def _uses_tools(messages: list[dict]) -> bool:
    return any("toolUse" in block or "toolResult" in block for m in messages for block in m["content"])


def tool_config(params: dict, messages: list[dict]) -> dict | None:
    """Converse's `toolConfig` for OpenAI `tools`/`tool_choice`. tool_choice "none" has
    no Converse equivalent: the tools are left out, unless the conversation already
    holds tool calls (Converse then requires the tool definitions) and they are sent
    with `auto`. `parallel_tool_calls` has no Converse equivalent and is not sent."""
    tools = [t for t in params.get("tools") or [] if t.get("type") == "function"]
    if not tools:
        return None
    choice = params.get("tool_choice")
    if choice == "none" and not _uses_tools(messages):
        return None
    specs = []
    for tool in tools:
        fn = tool["function"]
        spec: dict[str, Any] = {"name": fn["name"],
                                "inputSchema": {"json": fn.get("parameters") or {"type": "object", "properties": {}}}}
        if fn.get("description"):
            spec["description"] = fn["description"]
        specs.append({"toolSpec": spec})
    config: dict[str, Any] = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict) and (choice.get("function") or {}).get("name"):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    return config


# --- answer ------------------------------------------------------------------------------
def finish(stop_reason: Any, provider: str) -> str:
    reason = checks.expect_text(stop_reason, provider, "stopReason")
    if reason in BROKEN_STOP_REASONS:
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: the model's answer was unusable ({reason})")
    return STOP_REASONS.get(reason or "", "stop")


def usage(data: Any, provider: str) -> Usage:
    """Usage of a Converse `usage` object (a response's, or a stream's metadata)."""
    data = checks.expect_object(data, provider, "usage")
    read = reported_tokens(data.get("cacheReadInputTokens"), provider, "cacheReadInputTokens", optional=True)
    write = reported_tokens(data.get("cacheWriteInputTokens"), provider, "cacheWriteInputTokens", optional=True)
    fresh = reported_tokens(data.get("inputTokens"), provider, "inputTokens")
    result = Usage.reported(provider, fresh + read + write, data.get("outputTokens"))
    result.cache_read_tokens, result.cache_write_tokens = read, write
    return result


def message(content: Any, provider: str) -> dict[str, Any]:
    """An OpenAI assistant message from Converse content blocks."""
    text: list[str] = []
    thoughts: list[str] = []
    signature = None
    calls = []
    for block in checks.expect_list(content, provider, "output.message.content"):
        block = checks.expect_object(block, provider, "a content block")
        if "text" in block:
            text.append(checks.expect_text(block["text"], provider, "a text block") or "")
        elif "toolUse" in block:
            use = checks.expect_object(block["toolUse"], provider, "a toolUse block")
            checks.expect_text(use.get("name"), provider, "a toolUse block's name")
            calls.append({"id": use.get("toolUseId"), "type": "function",
                          "function": {"name": use.get("name"), "arguments": orjson.dumps(use.get("input", {})).decode()}})
        elif "reasoningContent" in block:
            reasoning = checks.expect_object(block["reasoningContent"], provider, "a reasoningContent block")
            thought = checks.expect_object(reasoning.get("reasoningText"), provider, "reasoningText", optional=True)
            thoughts.append(checks.expect_text(thought.get("text"), provider, "reasoningText.text") or "")
            signature = checks.expect_text(thought.get("signature"), provider, "reasoningText.signature") or signature
    out: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        out["tool_calls"] = calls
    if thoughts:
        out["reasoning_content"] = "".join(thoughts)
        if signature:
            out["reasoning_signature"] = signature
    return out
