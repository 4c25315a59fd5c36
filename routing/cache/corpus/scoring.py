"""Scoring the semantic cache's decision on the labelled pairs, as the index makes it: the
similarity of the two embeddings must reach the threshold, the guard's word rules must agree,
and so must the alignment check (reader_align.py).

The splits, one JSON pair a line (a line starting with '#' is a comment):

    tuning    the guard's rules and the threshold are chosen on it
    holdout   held out at first; its wrong hits have since been read (they fixed classes
              of rules), so it is no longer a blind test
    holdout2  written before the guard was run on it; its four wrong hits were then read and
              fixed as classes (so it is no longer blind either)
    holdout3  written blind by someone who had not seen the guard, scored blind (0.945), then
              used to develop the alignment check: seen
    holdout4  written by someone who never saw the guard, scored blind once (0.646), then read
              for the classes of its wrong hits (the function words: guard_function.py): seen
    holdout5  written blind (never saw the guard or the other splits), scored blind once (0.857),
              then read for the classes of its wrong hits: seen
    holdout6  written blind, scored blind once (0.878), then read for its wrong hits' classes: seen
    holdout7  written blind, scored blind once (0.781), then read for its wrong hits' classes: seen
    holdout8  BLIND: written by someone who never saw the guard or the other splits; not in
              SPLITS (nothing that iterates over the seen splits reads it, the alignment check's
              fit included); scored once after 90aeb12 (0.806, docs/caching.md), not read since:
              still blind for the next reader
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from routing.cache.semantic.guard import Features, agree, features

HERE = Path(__file__).resolve().parent
SPLITS = ("tuning", "holdout", "holdout2", "holdout3", "holdout4", "holdout5", "holdout6", "holdout7")  # seen
BLIND = ("holdout8",)  # only by name: `report --split holdout8`


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


def reader_of(embed: Any) -> Callable[[str], tuple[np.ndarray, Features]]:
    """text -> (vector, Features) as the index reads a question: with an Embedder (or its bound
    embed()), one forward pass gives the vector and the alignment check's words; with any
    other callable, vectors only (the alignment check abstains). Texts are read once."""
    from routing.cache.semantic import read_question

    embedder = embed if hasattr(embed, "read") else getattr(embed, "__self__", None)
    seen: dict[str, tuple[np.ndarray, Features]] = {}

    def read(text: str) -> tuple[np.ndarray, Features]:
        if text not in seen:
            if embedder is not None and hasattr(embedder, "read"):
                seen[text] = read_question(embedder, text)
            else:
                seen[text] = (embed(text), features(text))
        return seen[text]

    return read


def decide(pairs: list[Pair], embed: Any) -> list[Decision]:
    """As the index decides: b (the new question) looks up a (the stored one)."""
    read = reader_of(embed)
    out = []
    for p in pairs:
        (va, fa), (vb, fb) = read(p.a), read(p.b)
        sim = float(va @ vb)
        out.append(Decision(p, sim, agree(fb, fa, sim)))
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
