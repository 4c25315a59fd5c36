"""max_input_tokens: refuse (or flag) prompts longer than a limit, before any provider."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from guardrails.detectors import Finding
from providers.tokens import estimate_tokens

from .base import Kind, Param


class TokenLimit:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def verdict(self, texts: Sequence[str]) -> list[Finding]:
        # The same estimate the budget reservation uses (about 4 characters a token).
        return [Finding(0, 0, "too_many_tokens")] if sum(map(estimate_tokens, texts)) > self.limit else []


class MaxInputTokens(Kind):
    name = "max_input_tokens"
    label = "Maximum input tokens"
    help = "The whole prompt (every message) may not be longer than this many tokens (estimated, ~4 characters each)."
    params = {"max_tokens": Param("int", "The most tokens a prompt may have.", required=True, min=1, max=10_000_000)}
    stages = frozenset({"input"})
    actions = frozenset({"block", "flag"})
    spans = False

    def build(self, params: dict[str, Any]) -> TokenLimit:
        return TokenLimit(params["max_tokens"])
