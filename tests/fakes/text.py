"""Deterministic "tokenisation" shared by every fake provider.

One token == one whitespace-separated word.  The same helpers are used for the
non-stream and the stream response of a request, so both always report exactly
the same usage numbers, and the stream deltas concatenate to the exact text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

_WORD = re.compile(r"\S+")
_PIECE = re.compile(r"\s*\S+")
PER_MESSAGE_OVERHEAD = 3


def count_words(text: str) -> int:
    """Number of whitespace-separated words (our token count)."""
    return len(text.split())


def content_text(content: Any) -> str:
    """Flatten message content to plain text.

    Handles a string, a list of parts/blocks (``{"type": "text", "text": ...}``,
    Anthropic ``tool_result`` blocks whose ``content`` is nested), dicts and None.
    Non-text parts (images, tool_use) contribute nothing.
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for t in (content_text(part) for part in content) if t)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str):
            return content["text"]
        if "content" in content:
            return content_text(content["content"])
    return ""


def prompt_token_count(messages: Iterable[Any], system: Any = None) -> int:
    """Words in every message's text + 3 per message.

    A non-empty top-level ``system`` (Anthropic) counts like one more message,
    so a conversation costs the same whichever provider format it is sent in.
    """
    total = sum(
        count_words(content_text(m.get("content"))) + PER_MESSAGE_OVERHEAD
        for m in messages
        if isinstance(m, dict)
    )
    if system:
        total += count_words(content_text(system)) + PER_MESSAGE_OVERHEAD
    return total


def first_words(text: str, n: int) -> str:
    """The prefix of ``text`` holding its first ``n`` words (no trailing space)."""
    if n <= 0:
        return ""
    words = list(_WORD.finditer(text))
    return text if n >= len(words) else text[: words[n - 1].end()]


def split_pieces(text: str) -> list[str]:
    """Split into stream deltas, word by word, keeping spaces: "".join(...) == text."""
    pieces = _PIECE.findall(text)
    tail = text[sum(map(len, pieces)):]
    if tail:
        if pieces:
            pieces[-1] += tail
        else:
            pieces.append(tail)
    return pieces


@dataclass(frozen=True)
class Answer:
    """The reply decided for one request, shared by its stream/non-stream encodings.

    ``reason`` is provider neutral: "stop" (natural end), "length" (max tokens hit)
    or "stop_sequence" (a requested stop string was hit; see ``stop_sequence``).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    reason: str = "stop"
    stop_sequence: str | None = None

    @property
    def pieces(self) -> list[str]:
        return split_pieces(self.text)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def shape_reply(
    text: str, *, max_words: int | None = None, stops: Sequence[str] = ()
) -> tuple[str, str, str | None]:
    """Apply stop sequences then the max-token budget: (text, reason, matched stop)."""
    reason, matched = "stop", None
    hits = [(text.find(s), s) for s in stops if isinstance(s, str) and s and s in text]
    if hits:
        index, matched = min(hits)
        text, reason = text[:index], "stop_sequence"
    if max_words is not None and count_words(text) > max_words:
        text, reason, matched = first_words(text, max_words), "length", None
    return text, reason, matched
