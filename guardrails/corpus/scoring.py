"""The labelled corpus and span-exact precision/recall of the detectors on it.

Files (JSON lines, UTF-8), one labelled text per line:

    {"id": "t012-1", "lang": "vi", "tags": ["pos:phone"], "text": "SĐT: 0912 345 678 ...",
     "findings": [["phone", "0912 345 678"]]}

`findings` lists (entity, exact substring) in the order they occur in the text; a line
without PII has []. `tags` say what the line is for: "pos:<entity>", "mixed", or a hard
negative "neg:<category>" (neg:price, neg:timestamp, neg:short_upper, ...). Credentials
are written as {{openai_key}} placeholders, made at load time (fakes.py).

  tuning.jsonl   what the detectors were tuned on
  holdout.jsonl  20% of the line templates, set aside before tuning; late in tuning a
                 failing test's message showed its misses once (five phone numbers),
                 so it is not quite unseen
  fresh.jsonl    lines written after tuning ended, in new words and formats, scored
                 once before any fix: the honest figures
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from guardrails.detectors.base import Detector, Finding, merge

from .fakes import expand

HERE = Path(__file__).resolve().parent
SPLITS = ("tuning", "holdout", "fresh")


@dataclass(frozen=True)
class Line:
    id: str
    lang: str
    tags: tuple[str, ...]
    text: str
    expected: tuple[Finding, ...]


def load(split: str) -> list[Line]:
    """The lines of one split, placeholders expanded, expectations as spans."""
    lines = []
    with open(HERE / f"{split}.jsonl", encoding="utf-8") as f:
        for raw in f:
            rec = json.loads(raw)
            seed = zlib.crc32(rec["id"].encode())
            text = expand(rec["text"], seed)
            lines.append(Line(rec["id"], rec["lang"], tuple(rec["tags"]), text, _spans(text, rec["findings"], seed)))
    return lines


def _spans(text: str, findings: list[list[str]], seed: int) -> tuple[Finding, ...]:
    spans, pos = [], 0
    for entity, sub in findings:
        sub = expand(sub, seed)
        start = text.find(sub, pos)
        if start == -1:
            raise ValueError(f"{sub!r} not found in {text!r} after {pos}")
        spans.append(Finding(start, start + len(sub), entity))
        pos = start + len(sub)
    return tuple(spans)


def detect(detectors: Sequence[Detector], text: str) -> list[Finding]:
    """What the detectors find together (as the guardrail engine would merge them)."""
    return merge([f for d in detectors for f in d.find(text)])


@dataclass
class Score:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    # (line id, entity, found text or None, expected text or None) of every miss
    errors: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)

    def precision(self, entity: str) -> float:
        found = self.tp[entity] + self.fp[entity]
        return self.tp[entity] / found if found else 1.0

    def recall(self, entity: str) -> float:
        expected = self.tp[entity] + self.fn[entity]
        return self.tp[entity] / expected if expected else 1.0

    def f1(self, entity: str) -> float:
        p, r = self.precision(entity), self.recall(entity)
        return 2 * p * r / (p + r) if p + r else 0.0

    def entities(self) -> list[str]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))


def score(detectors: Sequence[Detector], lines: Iterable[Line]) -> Score:
    """Span-exact matching: a finding counts only with the expected entity and span."""
    s = Score()
    for line in lines:
        found = set(detect(detectors, line.text))
        expected = set(line.expected)
        for f in found & expected:
            s.tp[f.entity] += 1
        for f in found - expected:
            s.fp[f.entity] += 1
            s.errors.append((line.id, f.entity, line.text[f.start : f.end], None))
        for f in expected - found:
            s.fn[f.entity] += 1
            s.errors.append((line.id, f.entity, None, line.text[f.start : f.end]))
    return s


def table(s: Score) -> str:
    """The score as a markdown table, one row per entity."""
    rows = ["| entity | expected | found | precision | recall | F1 |", "|---|---:|---:|---:|---:|---:|"]
    for e in s.entities():
        expected, found = s.tp[e] + s.fn[e], s.tp[e] + s.fp[e]
        rows.append(f"| {e} | {expected} | {found} | {s.precision(e):.3f} | {s.recall(e):.3f} | {s.f1(e):.3f} |")
    return "\n".join(rows)
