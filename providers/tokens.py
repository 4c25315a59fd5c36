"""Token estimates for when a provider reports no usage (cut streams, disconnects).

Provider-reported usage is the source of truth for cost; this only fills gaps, and
records say when it was used (`usage_estimated`). ~4 characters per token is the
usual rule of thumb for English with BPE tokenizers.
"""

from __future__ import annotations

from typing import Any


def estimate_tokens(text: str) -> int:
    return (len(text) + 3) // 4 if text else 0


def message_text(content: Any, sep: str = " ") -> str:
    """The text of an OpenAI message `content` (a string, or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return sep.join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return ""


def estimate_prompt_tokens(messages: list[dict]) -> int:
    # +4 per message for role and separators, as chat templates add them.
    return sum(estimate_tokens(message_text(m.get("content"))) + 4 for m in messages)
