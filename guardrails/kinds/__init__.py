"""The guardrail kinds: one module each, registered here by name.

A new kind is one module with a `Kind` subclass (base.py: its parameter schema, the
stages and actions it supports, and `build`, which returns its pure check) plus one
line in KINDS."""

from __future__ import annotations

from .base import Kind, Param, ParamError
from .classifier import Classifier
from .keywords import Keywords
from .max_input_tokens import MaxInputTokens
from .pii import Pii
from .regex_kind import Regex
from .secrets import Secrets

KINDS: dict[str, Kind] = {k.name: k for k in (Pii(), Secrets(), Keywords(), Regex(), MaxInputTokens(), Classifier())}

__all__ = ["KINDS", "Kind", "Param", "ParamError", "kind_choices"]


def kind_choices() -> list[tuple[str, str]]:
    return [(k.name, k.label) for k in KINDS.values()]
