"""Task detection hints and contract: a client hint (header or metadata) overrides the
rules, unrecognised hints are ignored and said so, and the decision types, task values
and docs stay as clients and operators see them. Pure functions: no database, no network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from routing.task_detection import HINT_HEADER, TaskDecision, TaskType, detect_task, parse_hint
from tests.task_detection_helpers import chat, with_image

DOCS = Path(__file__).resolve().parents[1] / "docs" / "task-detection.md"


# --- hints --------------------------------------------------------------------------------
def test_hint_header_name():
    assert HINT_HEADER == "x-gateway-task"


def test_header_hint_overrides_the_rules():
    decision = detect_task(chat(with_image("Summarize this.")), hint="code_generation")

    assert decision == TaskDecision(
        TaskType.CODE_GENERATION,
        "hint",
        "The client asked for the Code generation task via the x-gateway-task header ('code_generation').",
    )


def test_metadata_hint_overrides_the_rules():
    decision = detect_task(chat("Write a poem about rain.", metadata={"task": "translation"}))

    assert decision.task == TaskType.TRANSLATION
    assert decision.source == "hint"
    assert "metadata.task" in decision.reason


def test_header_hint_beats_metadata_hint():
    decision = detect_task(chat("Hello", metadata={"task": "summarization"}), hint="reasoning")

    assert decision.task == TaskType.REASONING
    assert "header" in decision.reason


@pytest.mark.parametrize(
    ("hint", "task"),
    [
        ("code", TaskType.CODE_GENERATION),
        ("summarize", TaskType.SUMMARIZATION),
        ("summary", TaskType.SUMMARIZATION),
        ("json", TaskType.EXTRACTION),
        ("math", TaskType.REASONING),
        ("creative", TaskType.CREATIVE_WRITING),
        ("translate", TaskType.TRANSLATION),
        ("debug", TaskType.CODE_REVIEW),
        ("tools", TaskType.TOOL_USE),
        ("CODE_REVIEW", TaskType.CODE_REVIEW),
        ("Code-Generation", TaskType.CODE_GENERATION),
        ("  long context ", TaskType.LONG_CONTEXT),
    ],
)
def test_hint_accepts_values_aliases_and_any_case(hint, task):
    assert parse_hint(hint) == task
    assert detect_task(chat("Hello"), hint=hint).task == task


@pytest.mark.parametrize("task", list(TaskType))
def test_every_task_value_is_a_valid_hint(task):
    for hint in (task.value, task.value.upper()):
        decision = detect_task(chat("Hello"), hint=hint)
        assert (decision.task, decision.source) == (task, "hint")


def test_invalid_hint_is_ignored_and_the_reason_says_so():
    decision = detect_task(chat("Summarize this article: ..."), hint="poetry-please")

    assert decision.task == TaskType.SUMMARIZATION
    assert decision.source == "rules"
    assert decision.reason == (
        "The last user message asks for a summary ('Summarize'); "
        "the x-gateway-task header value 'poetry-please' was not recognised as a task, so ignored."
    )


def test_invalid_header_hint_falls_back_to_a_valid_metadata_hint():
    decision = detect_task(chat("Hello", metadata={"task": "math"}), hint="bogus")

    assert decision.task == TaskType.REASONING
    assert decision.source == "hint"
    assert "'bogus' was not recognised" in decision.reason


def test_invalid_metadata_hint_is_ignored_by_the_default_too():
    decision = detect_task(chat("Hello there", metadata={"task": 42}))

    assert decision.task == TaskType.CHAT
    assert decision.source == "default"
    assert "metadata.task value '42' was not recognised" in decision.reason


def test_empty_hints_are_no_hints():
    decision = detect_task(chat("Hello there", metadata={"task": ""}), hint="   ")

    assert decision == detect_task(chat("Hello there"))


# --- the decision and its task types -----------------------------------------------------
def test_decision_is_frozen():
    decision = detect_task(chat("Hello"))

    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.task = TaskType.VISION  # type: ignore[misc]


def test_task_type_is_django_text_choices():
    assert TaskType.choices[0] == ("chat", "General chat")
    assert dict(TaskType.choices)["code_review"] == "Code review / debugging"
    assert dict(TaskType.choices)["extraction"] == "Extraction / JSON output"
    assert dict(TaskType.choices)["reasoning"] == "Reasoning / math"
    assert {t.value for t in TaskType} == {
        "chat", "code_generation", "code_review", "summarization", "translation", "extraction", "classification",
        "reasoning", "creative_writing", "long_context", "tool_use", "vision",
    }  # fmt: skip


def test_docs_cover_every_task_and_the_hint_header():
    text = DOCS.read_text()
    for task in TaskType:
        assert f"`{task.value}`" in text, task
    assert HINT_HEADER in text
