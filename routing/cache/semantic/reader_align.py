"""The alignment check: the second reader of a semantic candidate, after the word rules of
guard.py. It reads the two questions' words as the embedding model read them (the last
layer's token states of the same forward pass that made the vector: no extra model call)
and asks whether one question says something specific that the other does not.

Each question keeps, per content word (a word piece group that is not a stop word, a number
or punctuation): the hash of its stem (guard_tokens.stem, guard_features.word_hash), a coarse
rarity (its rank in the model's WordPiece vocabulary, which lists whole words roughly from the
most to the least frequent; a word split into pieces counts as rarer than any listed one), the
mean of its pieces' token states (a unit vector, int8), and whether the next word is a content
word too. Then, for a candidate pair:

    aligned      a content word of one question is aligned when the other has the same stem,
                 or a content word whose token state is within cosine `tau` of it ("tall" and
                 "height", "write" and "written", "dentist" and "dental": the model's context
                 reads them as one slot)
    residual     the content words of each question that are not aligned: what one asks that
                 the other does not
    specific     veto when the rare residual words (rank >= `rare_rank`) are all on one side:
                 "renew my passport *urgently*", "a pharmacy *technician*", "a dental
                 *hygienist*". Paraphrases reword with common words ("what are the *steps* to",
                 "which *city* is"), or with rare words on both sides ("from *scratch*" /
                 "a *homemade* ... *recipe*")
    added        (when `added_modifier`) veto when one question's residual is empty and the
                 other's has a word right before an aligned content word: a modifier added to
                 a shared noun ("an *adult* cat" for "a kitten", "*organic* fertilizer")
    similarity   neither veto applies at or above `max_similarity`

The parameters are fitted by routing/cache/corpus/reader_fit.py (leave-one-split-out over the
labelled splits) and shipped in reader_align.json beside this file; the fit's cross-validated
figures are in docs/caching.md. What is stored per question is hashes, a rarity bucket (one of
~130) and int8 vectors per content word, never the text; like the hashes, the vectors could be
matched against the vocabulary's to guess common words, so the index is no place for secrets.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from . import vocabulary as V
from .guard_tokens import stem

PARAMS_FILE = Path(__file__).resolve().with_name("reader_align.json")
VOCAB_SIZE = 30522  # all-MiniLM-L6-v2's WordPiece vocabulary
_SCALE = 127.0
_CONTENT = re.compile(r"[a-z][a-z']*")
_SPECIAL = frozenset({"[CLS]", "[SEP]", "[PAD]", "[UNK]"})


def rarity(rank: int) -> int:
    """A rank as one of ~130 buckets (1/8 octave): enough to compare with a threshold, too
    coarse to name the word."""
    return int(round(8 * math.log2(max(rank, 1))))


@dataclass(frozen=True, slots=True)
class AlignParams:
    tau: float = 0.6
    rare_rank: int = 13000
    added_modifier: bool = True
    max_similarity: float = 2.0

    @property
    def rare_bucket(self) -> int:
        return rarity(self.rare_rank)


@lru_cache(maxsize=1)
def shipped_params() -> AlignParams:
    data = json.loads(PARAMS_FILE.read_text(encoding="utf-8"))["params"]
    return AlignParams(**data)


@dataclass(frozen=True, slots=True, eq=False)
class Alignment:
    """One question's content words as the alignment check keeps them (see the module doc)."""

    stems: tuple[int, ...] = ()
    rarity: tuple[int, ...] = ()
    before_content: tuple[bool, ...] = ()  # the next word is a content word (the next one here)
    vectors: np.ndarray | None = None  # int8 [k, 384]: round(127 x) of each word's unit vector

    def to_json(self) -> dict[str, Any]:
        vectors = self.vectors if self.vectors is not None else np.zeros((0, 0), np.int8)
        return {"s": list(self.stems), "r": list(self.rarity), "n": [int(x) for x in self.before_content],
                "d": int(vectors.shape[1]) if vectors.size else 0,
                "v": base64.b64encode(vectors.astype(np.int8).tobytes()).decode("ascii")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Alignment:
        raw = np.frombuffer(base64.b64decode(data["v"]), dtype=np.int8)
        dim = int(data.get("d") or 0)
        vectors = raw.reshape(-1, dim) if dim else np.zeros((0, 0), np.int8)
        return cls(tuple(data["s"]), tuple(data["r"]), tuple(bool(x) for x in data["n"]), vectors)


def alignment_of(pieces: list[str], ids: np.ndarray, states: np.ndarray) -> Alignment:
    """The Alignment of one question from its word pieces, their ids and last-layer states."""
    from .guard_features import word_hash

    words: list[tuple[str, int, int, int]] = []  # (word, first piece row, last row + 1, rank)
    for row, (piece, tid) in enumerate(zip(pieces, ids.tolist())):
        if piece in _SPECIAL:
            continue
        if piece.startswith("##") and words:
            word, start, _, _ = words[-1]
            words[-1] = (word + piece[2:], start, row + 1, VOCAB_SIZE)  # not a word of the vocabulary
        else:
            words.append((piece, row, row + 1, tid))
    content = [len(w) > 1 and w not in V.STOPWORDS and _CONTENT.fullmatch(w) is not None for w, _, _, _ in words]
    kept = [k for k in range(len(words)) if content[k]]
    dim = states.shape[1] if states.ndim == 2 else 0
    if not kept:
        return Alignment(vectors=np.zeros((0, dim), np.int8))
    # a word's vector: the sum of its pieces' states (a single row for most), scaled to unit length
    sums = np.stack([states[words[k][1]] if words[k][2] - words[k][1] == 1 else states[words[k][1]:words[k][2]].sum(0)
                     for k in kept])
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    vectors = np.rint(np.clip(sums, -1.0, 1.0) * _SCALE).astype(np.int8)
    return Alignment(tuple(word_hash(stem(words[k][0])) for k in kept), tuple(rarity(words[k][3]) for k in kept),
                     tuple(k + 1 < len(words) and content[k + 1] for k in kept), vectors)


def _aligned(a: Alignment, b: Alignment, sims: np.ndarray, tau: float) -> list[bool]:
    """For each content word of a: the same stem in b, or a word of b within cosine tau."""
    other = set(b.stems)
    return [s in other or (sims.shape[1] > 0 and float(sims[k].max()) >= tau) for k, s in enumerate(a.stems)]


def aligned_veto(a: Alignment, b: Alignment, similarity: float, params: AlignParams | None = None) -> str | None:
    """None when the alignment finds nothing that one question asks and the other does not."""
    p = params or shipped_params()
    if similarity >= p.max_similarity or not a.stems or not b.stems:
        return None
    assert a.vectors is not None and b.vectors is not None
    sims = (a.vectors.astype(np.float32) @ b.vectors.astype(np.float32).T) / (_SCALE * _SCALE)
    in_a, in_b = _aligned(a, b, sims, p.tau), _aligned(b, a, sims.T, p.tau)
    rest_a = [k for k, ok in enumerate(in_a) if not ok]
    rest_b = [k for k, ok in enumerate(in_b) if not ok]
    rare_a = any(a.rarity[k] >= p.rare_bucket for k in rest_a)
    rare_b = any(b.rarity[k] >= p.rare_bucket for k in rest_b)
    if rare_a != rare_b:
        return "specific word"
    if p.added_modifier and (_modifier_added(b, rest_a, rest_b, in_b) or _modifier_added(a, rest_b, rest_a, in_a)):
        return "added modifier"
    return None


def _modifier_added(x: Alignment, rest_other: list[int], rest_x: list[int], aligned_x: list[bool]) -> bool:
    """x adds words and the other text none, and one of them stands right before an aligned word."""
    return not rest_other and any(x.before_content[k] and k + 1 < len(aligned_x) and aligned_x[k + 1]
                                  for k in rest_x)
