"""Gemini's `GenerateContentResponse` (a whole answer or one stream chunk) read into the
internal OpenAI shape, and Google's error bodies classified.

- candidates[i].content.parts: text -> content; `thought: true` text -> reasoning_content;
  functionCall -> a tool call (id from the part, else generated; args as a JSON string;
  its thoughtSignature kept in `extra_content.google.thought_signature`).
- finishReason -> finish_reason (STOP with calls -> tool_calls; the safety family ->
  content_filter); MALFORMED_FUNCTION_CALL without a usable call is a broken answer.
- promptFeedback.blockReason with no candidates: the prompt was refused ->
  ProviderError(CONTENT_POLICY).
- usageMetadata -> Usage: prompt = promptTokenCount (cached content included) +
  toolUsePromptTokenCount; completion = candidatesTokenCount + thoughtsTokenCount (thinking
  is billed as output); cachedContentTokenCount -> cache_read_tokens.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import orjson

from ..types import ErrorKind, ProviderError, Usage, reported_tokens
from . import checks

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
}
MALFORMED_CALL = "MALFORMED_FUNCTION_CALL"

# google.rpc status -> kind, for what the HTTP status alone says less precisely.
STATUS_KINDS = {
    "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMITED,
    "UNAUTHENTICATED": ErrorKind.AUTH,
    "PERMISSION_DENIED": ErrorKind.AUTH,
    "NOT_FOUND": ErrorKind.NOT_FOUND,
    "UNAVAILABLE": ErrorKind.UNAVAILABLE,
    "INTERNAL": ErrorKind.UNAVAILABLE,
    "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
    # 400 "User location is not supported", "enable billing": the account cannot use the
    # API from here, a target problem like a refused key (fall back), not the request's.
    "FAILED_PRECONDITION": ErrorKind.AUTH,
}
# A bad API key is 400 INVALID_ARGUMENT with this ErrorInfo reason: a credentials problem.
AUTH_REASONS = {"API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED", "API_KEY_HTTP_REFERRER_BLOCKED"}
CONTEXT_HINT = re.compile(r"exceeds the maximum number of tokens|input token count", re.I)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


def new_call_id() -> str:
    """An id for a call Gemini did not number (the Gemini API leaves functionCall.id out)."""
    return "call_" + secrets.token_hex(12)


def usage_of(meta: Any, provider: str) -> Usage | None:
    """Usage of a usageMetadata object; None when absent."""
    if meta is None:
        return None
    meta = checks.expect_object(meta, provider, "usageMetadata")

    def count(name: str) -> int:
        return reported_tokens(meta.get(name), provider, name, optional=True)

    cached = count("cachedContentTokenCount")
    usage = Usage.reported(provider, count("promptTokenCount") + count("toolUsePromptTokenCount"),
                           count("candidatesTokenCount") + count("thoughtsTokenCount"))
    usage.cache_read_tokens = min(cached, usage.prompt_tokens)
    usage.reasoning_tokens = min(count("thoughtsTokenCount"), usage.completion_tokens)
    return usage


def blocked_prompt(data: dict, provider: str) -> ProviderError | None:
    """The error for an answer whose prompt was blocked (promptFeedback.blockReason and
    no candidates), else None."""
    feedback = checks.expect_object(data.get("promptFeedback"), provider, "promptFeedback", optional=True)
    reason = feedback.get("blockReason")
    if reason and not data.get("candidates"):
        return ProviderError(ErrorKind.CONTENT_POLICY,
                             f"{provider}: the prompt was blocked by Gemini's safety filters ({str(reason)[:40]})",
                             status=400)
    return None


def finish_reason(value: Any, has_calls: bool, provider: str) -> str | None:
    reason = checks.expect_text(value, provider, "finishReason")
    if not reason:
        return None
    if reason == MALFORMED_CALL and not has_calls:
        raise checks.bad(provider, "the model produced a malformed function call (MALFORMED_FUNCTION_CALL)")
    mapped = FINISH_REASONS.get(reason, "stop")
    return "tool_calls" if has_calls and mapped == "stop" else mapped


def read_parts(content: Any, provider: str) -> tuple[list[str], list[str], list[dict]]:
    """(text pieces, thought pieces, OpenAI tool calls) of a candidate's content."""
    content = checks.expect_object(content, provider, "a candidate's content", optional=True)
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[dict] = []
    for part in checks.expect_list(content.get("parts"), provider, "a candidate's parts", optional=True):
        part = checks.expect_object(part, provider, "a content part")
        text = checks.expect_text(part.get("text"), provider, "a part's text")
        signature = checks.expect_text(part.get("thoughtSignature"), provider, "a part's thoughtSignature")
        if "functionCall" in part:
            fn = checks.expect_object(part["functionCall"], provider, "a functionCall")
            name = checks.expect_text(fn.get("name"), provider, "a functionCall's name")
            args = checks.expect_object(fn.get("args"), provider, "a functionCall's args", optional=True)
            call: dict[str, Any] = {
                "id": checks.expect_text(fn.get("id"), provider, "a functionCall's id") or new_call_id(),
                "type": "function",
                "function": {"name": name or "", "arguments": orjson.dumps(args).decode()},
            }
            if signature:
                call["extra_content"] = {"google": {"thought_signature": signature}}
            calls.append(call)
        elif text is not None:
            (thoughts if part.get("thought") is True else texts).append(text)
    return texts, thoughts, calls


def error_details(data: Any) -> tuple[str, str]:
    """(message, status) of Google's {"error": {"code", "message", "status", "details"}};
    status is the ErrorInfo reason when that names a key problem."""
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):  # streamGenerateContent without alt=sse
        err = data[0].get("error")
    if not isinstance(err, dict):
        return "", ""
    status = str(err.get("status") or "")
    for detail in err.get("details") or []:
        if isinstance(detail, dict) and detail.get("reason") in AUTH_REASONS:
            status = str(detail["reason"])
    return str(err.get("message") or ""), status


def error_kind(status: int, message: str, code: str, fallback: ErrorKind) -> ErrorKind:
    if code in AUTH_REASONS:
        return ErrorKind.AUTH
    if code == "INVALID_ARGUMENT" and CONTEXT_HINT.search(message):
        return ErrorKind.CONTEXT_LENGTH
    if status in (401, 403, 404, 429) or status >= 500:
        return fallback  # the HTTP status says it (classify_status)
    return STATUS_KINDS.get(code, fallback)


def retry_delay(raw: bytes) -> float | None:
    """RetryInfo.retryDelay ("27s") of a 429 body: Google's retry hint."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    err = data.get("error") if isinstance(data, dict) else None
    for detail in (err.get("details") or []) if isinstance(err, dict) else []:
        if isinstance(detail, dict) and isinstance(detail.get("retryDelay"), str):
            match = _DURATION.match(detail["retryDelay"])
            if match:
                return float(match.group(1))
    return None
