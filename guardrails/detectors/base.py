"""The detector contract shared by every guardrail kind that finds spans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Finding:
    """One span `text[start:end]` of entity type `entity` (e.g. "email", "vn_cccd",
    "openai_key"). Never carries the matched text itself: callers slice it when
    they must (redaction), so a Finding can be logged or counted safely."""

    start: int
    end: int
    entity: str


class Detector(Protocol):
    def find(self, text: str) -> list[Finding]: ...

    def hold(self, text: str) -> int: ...


def merge(findings: list[Finding]) -> list[Finding]:
    """Sorted, non-overlapping: of overlapping findings the earliest (then longest) wins."""
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: (f.start, -(f.end - f.start))):
        if out and f.start < out[-1].end:
            continue
        out.append(f)
    return out
