"""What of a request's content may go into its trace spans, and in which shape.

Nothing, unless the route's `trace_content` debug setting is ticked (RouteInfo); then
the prompt as the guardrail stage left it (`call.req` after its on_request: redacted)
and the answer as the client got it (after the output stages), in the GenAI semantic
conventions' message shape (`gen_ai.input.messages` / `gen_ai.output.messages`, JSON
strings: role, parts, finish_reason). Withheld even then:
- the prompt of a request a stage blocked (the guardrail raises before it redacts);
- the answer when a restoring guardrail put the originals back into it: the client
  may see them, a trace never does.
Each text part is cut at CONTENT_MAX_CHARS so one long conversation cannot fill a span.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .pipeline import Call

CONTENT_MAX_CHARS = 8192
WITHHELD = "gateway.content.withheld"  # why a ticked route's span has no content


def wants_content(call: Call) -> bool:
    return call.route.trace_content and call.key.prefix != "guardrail"  # the judge's calls: not traced twice


def _cut(text: str) -> str:
    return text if len(text) <= CONTENT_MAX_CHARS else text[:CONTENT_MAX_CHARS] + "…[truncated]"


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "content": _cut(content)}] if content else []
    parts = []
    for part in content or []:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append({"type": "text", "content": _cut(str(part.get("text") or ""))})
        elif isinstance(part, dict):
            parts.append({"type": str(part.get("type") or "unknown")})  # an image, a file: its kind only
    return parts


def _tool_calls(calls: Any) -> list[dict[str, Any]]:
    out = []
    for tc in calls or []:
        fn = (tc.get("function") or {}) if isinstance(tc, dict) else {}
        out.append({"type": "tool_call", "id": tc.get("id") if isinstance(tc, dict) else None,
                    "name": fn.get("name"), "arguments": _cut(str(fn.get("arguments") or ""))})
    return out


def input_messages(messages: list[dict[str, Any]]) -> str:
    """The prompt as `gen_ai.input.messages` (JSON)."""
    rows = []
    for m in messages:
        role = m.get("role")
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": m.get("tool_call_id"),
                      "response": _cut(str(m.get("content") or ""))}]
        else:
            parts = _parts(m.get("content")) + _tool_calls(m.get("tool_calls"))
        rows.append({"role": role, "parts": parts})
    return orjson.dumps(rows).decode()


def output_messages(choices: list[dict[str, Any]]) -> str:
    """The answer's choices ({message} or gathered stream text) as `gen_ai.output.messages`."""
    rows = []
    for choice in choices:
        message = choice.get("message") or {}
        parts = _parts(message.get("content")) + _tool_calls(message.get("tool_calls"))
        rows.append({"role": "assistant", "parts": parts, "finish_reason": choice.get("finish_reason")})
    return orjson.dumps(rows).decode()


def restored(call: Call) -> bool:
    """Did a restoring guardrail put originals back into this answer (routing.stages.guard)?"""
    state = call.stage_state.get("guardrails")
    vault = getattr(state, "vault", None)
    return bool(getattr(vault, "restores", None))


class StreamText:
    """The streamed answer as the client got it (chunks after the stages' filters),
    gathered per choice into the {message, finish_reason} shape of a complete answer."""

    __slots__ = ("texts", "finish")

    def __init__(self) -> None:
        self.texts: dict[int, list[str]] = {}
        self.finish: dict[int, str | None] = {}

    def add(self, choices: list[dict[str, Any]]) -> None:
        for choice in choices:
            index = choice.get("index") or 0
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.texts.setdefault(index, []).append(delta["content"])
            if choice.get("finish_reason"):
                self.finish[index] = choice["finish_reason"]

    def choices(self) -> list[dict[str, Any]]:
        indexes = sorted(set(self.texts) | set(self.finish))
        return [{"message": {"content": "".join(self.texts.get(i, []))}, "finish_reason": self.finish.get(i)}
                for i in indexes]
