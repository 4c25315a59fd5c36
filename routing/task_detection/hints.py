"""Client hints: the x-gateway-task header or `task` in the request's metadata,
naming a task by its value or an alias, in any case."""

from __future__ import annotations

from typing import Any

from .types import TaskType

HINT_HEADER = "x-gateway-task"

HINT_ALIASES: dict[str, TaskType] = {
    "general": TaskType.CHAT,
    "default": TaskType.CHAT,
    "code": TaskType.CODE_GENERATION,
    "coding": TaskType.CODE_GENERATION,
    "codegen": TaskType.CODE_GENERATION,
    "review": TaskType.CODE_REVIEW,
    "debug": TaskType.CODE_REVIEW,
    "debugging": TaskType.CODE_REVIEW,
    "summarize": TaskType.SUMMARIZATION,
    "summarise": TaskType.SUMMARIZATION,
    "summary": TaskType.SUMMARIZATION,
    "summarisation": TaskType.SUMMARIZATION,
    "translate": TaskType.TRANSLATION,
    "extract": TaskType.EXTRACTION,
    "json": TaskType.EXTRACTION,
    "classify": TaskType.CLASSIFICATION,
    "math": TaskType.REASONING,
    "maths": TaskType.REASONING,
    "creative": TaskType.CREATIVE_WRITING,
    "writing": TaskType.CREATIVE_WRITING,
    "long": TaskType.LONG_CONTEXT,
    "tools": TaskType.TOOL_USE,
    "tool": TaskType.TOOL_USE,
    "function_calling": TaskType.TOOL_USE,
    "image": TaskType.VISION,
    "images": TaskType.VISION,
}
_HINTS: dict[str, TaskType] = {**{t.value: t for t in TaskType}, **HINT_ALIASES}


def parse_hint(value: Any) -> TaskType | None:
    """The task a client hint names, or None: case-insensitive, '-' and ' ' read as '_'."""
    if not isinstance(value, str):
        return None
    return _HINTS.get(value.strip().lower().replace("-", "_").replace(" ", "_"))
