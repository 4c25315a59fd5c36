"""keywords: words or phrases, matched case-insensitively as whole words."""

from __future__ import annotations

import re
from typing import Any

from guardrails.detectors import Finding

from .base import Kind, Param


class KeywordDetector:
    def __init__(self, words: list[str]) -> None:
        ordered = sorted({w.lower() for w in words}, key=len, reverse=True)
        # Whole words: no letter or digit right before or after (Unicode-aware), so
        # "ass" never matches inside "class"; phrases may contain spaces and dashes.
        self._pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in ordered) + r")(?!\w)", re.I)
        self._prefixes = {w[:i] for w in ordered for i in range(1, len(w) + 1)}
        self._longest = max(len(w) for w in ordered)

    def find(self, text: str) -> list[Finding]:
        return [Finding(m.start(), m.end(), "keyword") for m in self._pattern.finditer(text)]

    def hold(self, text: str) -> int:
        """The longest tail that starts a word of the list at a word boundary (a
        complete word too: one more letter would make it another word)."""
        for k in range(min(self._longest, len(text)), 0, -1):
            if text[-k:].lower() in self._prefixes and (k == len(text) or not text[-k - 1].isalnum()):
                return k
        return 0


class Keywords(Kind):
    name = "keywords"
    label = "Keywords"
    help = "Words or phrases (one per line), matched as whole words, ignoring case."
    params = {
        "words": Param("words", "One word or phrase per line.", required=True, max_items=5000, max_length=200),
    }

    def build(self, params: dict[str, Any]) -> KeywordDetector:
        return KeywordDetector(params["words"])
