"""The decision task detection returns: which task, decided how, and why."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


class TaskType(models.TextChoices):
    CHAT = "chat", "General chat"
    CODE_GENERATION = "code_generation", "Code generation"
    CODE_REVIEW = "code_review", "Code review / debugging"
    SUMMARIZATION = "summarization", "Summarization"
    TRANSLATION = "translation", "Translation"
    EXTRACTION = "extraction", "Extraction / JSON output"
    CLASSIFICATION = "classification", "Classification"
    REASONING = "reasoning", "Reasoning / math"
    CREATIVE_WRITING = "creative_writing", "Creative writing"
    LONG_CONTEXT = "long_context", "Long context"
    TOOL_USE = "tool_use", "Tool use"
    VISION = "vision", "Vision (images)"


@dataclass(frozen=True, slots=True)
class TaskDecision:
    task: TaskType
    source: str  # "hint" | "rules" | "default"
    reason: str  # one plain-English sentence, shown to operators as is
