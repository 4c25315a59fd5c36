"""Scoring the semantic cache's decision on the labelled pairs, as the index makes it: the
similarity of the two embeddings must reach the threshold and the guard must agree.

The splits, one JSON pair a line (a line starting with '#' is a comment):

    tuning    the guard's rules and the threshold are chosen on it
    holdout   held out at first; its wrong hits have since been read (they fixed classes
              of rules), so it is no longer a blind test
    holdout2  written before the guard was run on it; its four wrong hits were then read and
              fixed as classes (so it is no longer blind either)
    holdout3  written blind by someone who had not seen the guard, committed before it was
              scored, never edited after: the honest measure
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from routing.cache.semantic.guard import agree, features

HERE = Path(__file__).resolve().parent
SPLITS = ("tuning", "holdout", "holdout2", "holdout3")


@dataclass(frozen=True, slots=True)
class Pair:
    id: str
    kind: str
    domain: str
    label: str  # "hit" or "miss"
    a: str
    b: str


@dataclass(frozen=True, slots=True)
class Decision:
    pair: Pair
    similarity: float
    veto: str | None  # the guard's reason, None when it agrees

    def hit(self, threshold: float) -> bool:
        return self.similarity >= threshold and self.veto is None


@dataclass(frozen=True, slots=True)
class Score:
    hits: int  # semantic hits (either label)
    right: int  # hits on "hit" pairs
    paraphrases: int
    wrong: tuple[str, ...]  # ids of look-alikes that hit

    @property
    def precision(self) -> float:
        return self.right / self.hits if self.hits else 1.0

    @property
    def hit_rate(self) -> float:
        return self.right / self.paraphrases if self.paraphrases else 0.0


def load(split: str) -> list[Pair]:
    with open(HERE / f"{split}.jsonl", encoding="utf-8") as fh:
        return [Pair(**json.loads(line)) for line in fh if line.strip() and not line.startswith("#")]


def decide(pairs: list[Pair], embed: Callable[[str], np.ndarray]) -> list[Decision]:
    out = []
    for p in pairs:
        sim = float(embed(p.a) @ embed(p.b))
        out.append(Decision(p, sim, agree(features(p.b), features(p.a), sim)))
    return out


def score(decisions: list[Decision], threshold: float) -> Score:
    hits = [d for d in decisions if d.hit(threshold)]
    right = sum(d.pair.label == "hit" for d in hits)
    wrong = tuple(d.pair.id for d in hits if d.pair.label != "hit")
    return Score(len(hits), right, sum(d.pair.label == "hit" for d in decisions), wrong)


def by_kind(decisions: list[Decision], threshold: float) -> dict[str, tuple[int, int]]:
    """kind -> (pairs, semantic hits)."""
    total, hit = Counter(), Counter()
    for d in decisions:
        total[d.pair.kind] += 1
        hit[d.pair.kind] += d.hit(threshold)
    return {k: (total[k], hit[k]) for k in sorted(total)}
