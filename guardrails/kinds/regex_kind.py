"""regex: your own patterns (Python syntax), e.g. internal project codes.

Patterns run under a time limit (the `regex` module's timeout): a pattern that
backtracks catastrophically on some input is an error of the guardrail (its
on_error decides), never a stalled gateway. Streams hold back a tail only while it
could still become a match (partial matching)."""

from __future__ import annotations

from typing import Any

import regex

from guardrails.detectors import Finding

from .base import Kind, Param

MATCH_TIMEOUT_S = 0.05
MAX_HOLD = 256


def _compiles(patterns: list[str]) -> None:
    for pattern in patterns:
        try:
            compiled = regex.compile(pattern, regex.V0)
        except (regex.error, ValueError, OverflowError) as exc:
            raise ValueError(f"'{pattern}' does not compile: {exc}") from None
        if compiled.fullmatch(""):
            raise ValueError(f"'{pattern}' matches the empty string")


def _entity(value: str) -> None:
    if not regex.fullmatch(r"[a-z][a-z0-9_]{0,39}", value):
        raise ValueError("use lowercase letters, digits and '_' (it names the placeholder, e.g. [PROJECT_CODE_1])")


class RegexDetector:
    def __init__(self, patterns: list[str], entity: str, ignore_case: bool) -> None:
        flags = regex.V0 | (regex.IGNORECASE if ignore_case else 0)
        self._pattern = regex.compile("|".join(f"(?:{p})" for p in patterns), flags)
        self.entity = entity

    def find(self, text: str) -> list[Finding]:
        return [Finding(m.start(), m.end(), self.entity)
                for m in self._pattern.finditer(text, timeout=MATCH_TIMEOUT_S) if m.end() > m.start()]

    def hold(self, text: str) -> int:
        tail = text[-MAX_HOLD:]
        held = 0
        for m in self._pattern.finditer(tail, partial=True, timeout=MATCH_TIMEOUT_S):
            if m.partial or m.end() == len(tail):  # could still become, or grow into, a match
                held = max(held, len(tail) - m.start())
        return held


class Regex(Kind):
    name = "regex"
    label = "Regular expressions"
    help = "Patterns in Python syntax, one per line; each match is a finding."
    params = {
        "patterns": Param("words", "One pattern per line (Python regular expression syntax).", required=True,
                          max_items=100, max_length=1000, check=_compiles),
        "entity": Param("str", "What a match is called in placeholders and the violation log, e.g. project_code.",
                        default="custom", max_length=40, check=_entity),
        "ignore_case": Param("bool", "Match regardless of case.", default=False),
    }

    def build(self, params: dict[str, Any]) -> RegexDetector:
        return RegexDetector(params["patterns"], params["entity"], params["ignore_case"])
