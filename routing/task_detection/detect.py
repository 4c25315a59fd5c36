"""The detection loop: hints first, then the request's shape, then the rule tables on
the last user message and the system prompt, else general chat."""

from __future__ import annotations

from typing import Any

from providers.tokens import estimate_prompt_tokens, message_text
from providers.types import ChatRequest

from .hints import HINT_HEADER, parse_hint
from .matching import Rule
from .system_prompt_rules import SYSTEM_RULES
from .text import Text
from .types import TaskDecision, TaskType
from .user_message_rules import USER_RULES

QUOTE_CHARS = 40
USER, SYSTEM = "last user message", "system prompt"  # the {where} of a rule's reason

_CLASSIFY_USER = tuple(r for r in USER_RULES if r.task == TaskType.CLASSIFICATION)
_CLASSIFY_SYSTEM = tuple(r for r in SYSTEM_RULES if r.task == TaskType.CLASSIFICATION)
JSON_FORMATS = frozenset({"json_object", "json_schema"})


def detect_task(req: ChatRequest, hint: str | None = None, *, long_context_tokens: int = 16000) -> TaskDecision:
    """Decide the task of `req`. `hint` is the x-gateway-task header, if the client sent one.

    The header is read first, then `metadata["task"]`; the first recognised one wins. An
    unrecognised hint is ignored (the rules decide) and the reason says so.
    """
    ignored: list[str] = []
    for value, via in ((hint, f"{HINT_HEADER} header"), ((req.metadata or {}).get("task"), "metadata.task")):
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        task = parse_hint(value)
        if task is None:
            ignored.append(f"{via} value '{_quote(str(value))}'")
            continue
        reason = f"The client asked for the {task.label} task via the {via} ('{_quote(value)}')"
        return TaskDecision(task, "hint", _with_ignored(reason, ignored))
    decision = _detect(req, long_context_tokens)
    if ignored:
        reason = _with_ignored(decision.reason.removesuffix("."), ignored)
        return TaskDecision(decision.task, decision.source, reason)
    return decision


def _detect(req: ChatRequest, long_context_tokens: int) -> TaskDecision:
    messages = req.messages
    if any(m.get("role") == "user" and _has_image(m.get("content")) for m in messages):
        return TaskDecision(TaskType.VISION, "rules", "A user message contains an image.")
    tokens = estimate_prompt_tokens(messages)
    if tokens >= long_context_tokens:
        limit = f"{long_context_tokens:,}"
        reason = f"The prompt is about {tokens:,} tokens long, at or above the long-context threshold of {limit}."
        return TaskDecision(TaskType.LONG_CONTEXT, "rules", reason)
    params = req.params or {}
    tools = params.get("tools") or params.get("functions")
    if tools and params.get("tool_choice") != "none":
        n = len(tools) if isinstance(tools, list) else 1
        reason = f"The request offers the model {n} tool{'' if n == 1 else 's'} to call."
        return TaskDecision(TaskType.TOOL_USE, "rules", reason)

    user = Text.of(_last_user_text(messages))
    response_format = params.get("response_format")
    fmt = response_format.get("type") if isinstance(response_format, dict) else None
    if fmt in JSON_FORMATS:
        hit = _first_match(_CLASSIFY_USER, user, USER) or _first_match(_CLASSIFY_SYSTEM, _system_text(messages), SYSTEM)
        if hit is not None:
            reason = f"The request asks for JSON output, but {hit.reason[0].lower()}{hit.reason[1:]}"
            return TaskDecision(hit.task, "rules", reason)
        reason = f"The request asks for the answer as JSON (response_format {fmt})."
        return TaskDecision(TaskType.EXTRACTION, "rules", reason)

    hit = _first_match(USER_RULES, user, USER) or _first_match(SYSTEM_RULES, _system_text(messages), SYSTEM)
    if hit is not None:
        return hit
    return TaskDecision(TaskType.CHAT, "default", "No rule matched, so the request is treated as general chat.")


def _first_match(rules: tuple[Rule, ...], text: Text, where: str) -> TaskDecision | None:
    if not text.lowered:
        return None
    for r in rules:
        m = r.search(text)
        if m is not None:
            # Quote whole words ("MyAppError:", not "Error:") in the client's own spelling
            # (lowercasing rarely changes a text's length).
            start = m.start()
            while start > 0 and _in_word(text.lowered, start) and _in_word(text.lowered, start - 1):
                start -= 1
            source = text.original if len(text.original) == len(text.lowered) else text.lowered
            reason = r.reason.format(where=where, match=_quote(source[start : m.end()]))
            return TaskDecision(r.task, "rules", reason)
    return None


def _in_word(text: str, i: int) -> bool:
    return text[i].isalnum() or text[i] == "_"


def _has_image(content: Any) -> bool:
    return isinstance(content, list) and any(isinstance(p, dict) and p.get("type") == "image_url" for p in content)


def _system_text(messages: list[dict[str, Any]]) -> Text:
    prompt = "\n".join(message_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    # The leading newline makes the prompt's first sentence a sentence start like the others.
    return Text.of("\n" + prompt if prompt else "")


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return message_text(m.get("content"))
    return ""


def _quote(text: str) -> str:
    """The trigger words as quoted in a reason: one line, trimmed, at most QUOTE_CHARS."""
    text = " ".join(text.split()).strip(" .,;:!?'\"")
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1].rstrip() + "…"


def _with_ignored(reason: str, ignored: list[str]) -> str:
    if not ignored:
        return f"{reason}."
    verb = "was" if len(ignored) == 1 else "were"
    return f"{reason}; the {' and the '.join(ignored)} {verb} not recognised as a task, so ignored."
