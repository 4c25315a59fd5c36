"""The texts of a chat request and of an answer, in one fixed order, and the same
structure rebuilt with new texts (what redaction and restoring need).

Texts are: each message's content (a string, or each text part of a list), and each
tool call's arguments (assistant messages). Images, audio and other parts pass
untouched. Messages that change are copied; the client's own objects are not edited.
"""

from __future__ import annotations

from typing import Any


def request_texts(messages: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for m in messages:
        _message_texts(m, out)
    return out


def _message_texts(m: dict[str, Any], out: list[str]) -> None:
    content = m.get("content")
    if isinstance(content, str):
        out.append(content)
    elif isinstance(content, list):
        out.extend(p["text"] for p in content if _is_text_part(p))
    for tc in m.get("tool_calls") or ():
        args = _arguments(tc)
        if args is not None:
            out.append(args)


def _is_text_part(p: Any) -> bool:
    return isinstance(p, dict) and p.get("type", "text") == "text" and isinstance(p.get("text"), str)


def _arguments(tc: Any) -> str | None:
    fn = tc.get("function") if isinstance(tc, dict) else None
    args = fn.get("arguments") if isinstance(fn, dict) else None
    return args if isinstance(args, str) else None


def with_request_texts(messages: list[dict[str, Any]], texts: list[str]) -> list[dict[str, Any]]:
    """`messages` with their texts replaced by `texts` (request_texts' order)."""
    it = iter(texts)
    return [_message_with(m, it) for m in messages]


def _message_with(m: dict[str, Any], it) -> dict[str, Any]:
    before = []
    _message_texts(m, before)
    if not before:
        return m
    new = [next(it) for _ in before]
    if new == before:
        return m
    texts = iter(new)
    m = dict(m)
    content = m.get("content")
    if isinstance(content, str):
        m["content"] = next(texts)
    elif isinstance(content, list):
        m["content"] = [{**p, "text": next(texts)} if _is_text_part(p) else p for p in content]
    if m.get("tool_calls"):
        calls = []
        for tc in m["tool_calls"]:
            if _arguments(tc) is not None:
                tc = {**tc, "function": {**tc["function"], "arguments": next(texts)}}
            calls.append(tc)
        m["tool_calls"] = calls
    return m


def answer_choice_text(choice: dict[str, Any]) -> str | None:
    message = choice.get("message") or {}
    content = message.get("content")
    return content if isinstance(content, str) else None
