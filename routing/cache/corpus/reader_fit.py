"""`python -m routing.cache.corpus.reader_fit [--write]`: fit the alignment check's parameters
(routing/cache/semantic/reader_align.py) on the labelled splits, with leave-one-split-out
cross-validation, and (with --write) ship them in reader_align.json.

The decision is the index's: similarity >= DEFAULT_THRESHOLD, the guard's word rules agree, and
the alignment check finds nothing. The parameters (tau, rare_rank, added_modifier,
max_similarity) are chosen from a small grid by the score `right - WRONG_COST * wrong` over the
splits fitted on (a wrong hit costs as much as WRONG_COST right ones: a wrong answer is worse
than none), ties going to the first in grid order (the milder check). Cross-validation: for each
split, fit on the other three, score the one left out; the figures printed for the left-out
splits are the honest ones. Only the seen splits (scoring.SPLITS) are read.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from dataclasses import asdict, dataclass, replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

WRONG_COST = 20
# The look-alikes the guard's last two word rules veto ("one swap", "narrower": one word for
# another, one text the other plus a qualifier) are the classes the alignment check generalises.
# Only a few look-alikes get past the whole guard (none in three of the four splits), so the fit
# also counts, at SHAPE_COST each, those of that kind that the alignment check lets through on its
# own (as if the two rules were off): every split then has look-alikes to fit on.
SHAPE_RULES = frozenset({"one swap", "narrower"})
SHAPE_COST = float(os.environ.get("READER_FIT_SHAPE_COST", "2"))
GRID = {
    "tau": (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8),
    "rare_rank": (40000, 25000, 20000, 16000, 13000, 10000, 8000, 6000),  # 40000: above every rank (off)
    "added_modifier": (False, True),
    "max_similarity": (2.0, 0.97, 0.95),
}


@dataclass(slots=True)
class Row:
    split: str
    id: str
    right: bool  # a paraphrase (label "hit")
    similarity: float
    guard: str | None  # the word rules' veto, without the alignment check
    a: object  # Alignment of the stored question
    b: object  # Alignment of the new one


def rows(splits: tuple[str, ...], embedder: object) -> list[Row]:
    from routing.cache.semantic.guard import agree

    from .scoring import load, reader_of

    read = reader_of(embedder)
    out = []
    for split in splits:
        for p in load(split):
            (va, fa), (vb, fb) = read(p.a), read(p.b)
            sim = float(va @ vb)
            guard = agree(replace(fb, alignment=None), replace(fa, alignment=None), sim)
            out.append(Row(split, p.id, p.label == "hit", sim, guard, fa.alignment, fb.alignment))
    return out


def tally(data: list[Row], params: object, threshold: float) -> tuple[int, int, int]:
    """(right hits, wrong hits, paraphrases)."""
    from routing.cache.semantic.reader_align import aligned_veto

    right = wrong = 0
    for r in data:
        if r.similarity >= threshold and r.guard is None and aligned_veto(r.b, r.a, r.similarity, params) is None:
            right += r.right
            wrong += not r.right
    return right, wrong, sum(r.right for r in data)


def shape_leaks(data: list[Row], params: object, threshold: float) -> int:
    """Look-alikes vetoed by a shape rule that the alignment check alone would let through."""
    from routing.cache.semantic.reader_align import aligned_veto

    return sum(1 for r in data if not r.right and r.similarity >= threshold and r.guard in SHAPE_RULES
               and aligned_veto(r.b, r.a, r.similarity, params) is None)


def fit(data: list[Row], threshold: float) -> object:
    from routing.cache.semantic.reader_align import AlignParams

    candidates = [r for r in data if r.similarity >= threshold and (r.guard is None or r.guard in SHAPE_RULES)]
    best, best_score = None, None
    for values in itertools.product(*GRID.values()):
        params = AlignParams(**dict(zip(GRID, values)))
        right, wrong, _ = tally(candidates, params, threshold)
        score = right - WRONG_COST * wrong - SHAPE_COST * shape_leaks(candidates, params, threshold)
        if best_score is None or score > best_score:
            best, best_score = params, score
    return best


def line(name: str, right: int, wrong: int, paraphrases: int) -> str:
    hits = right + wrong
    precision = right / hits if hits else 1.0
    return (f"{name:10} precision {precision:.3f} ({right}/{hits})  hit rate {right / paraphrases:.3f} "
            f"({right}/{paraphrases})")


def main(argv: list[str] | None = None) -> int:
    from routing.cache.semantic import DEFAULT_THRESHOLD
    from routing.cache.semantic.embedder import get_embedder
    from routing.cache.semantic.reader_align import PARAMS_FILE, AlignParams

    from .scoring import SPLITS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write the parameters fitted on all splits to {PARAMS_FILE.name}")
    args = parser.parse_args(argv)
    embedder = get_embedder()
    data = rows(SPLITS, embedder)
    off = AlignParams(tau=1.0, rare_rank=10**9, added_modifier=False)
    cv: dict[str, dict[str, object]] = {}
    print(f"leave-one-split-out, threshold {DEFAULT_THRESHOLD:.2f}, {embedder.kind} embedder, wrong hit = {WRONG_COST} right")
    for held in SPLITS:
        params = fit([r for r in data if r.split != held], DEFAULT_THRESHOLD)
        test = [r for r in data if r.split == held]
        g, c = tally(test, off, DEFAULT_THRESHOLD), tally(test, params, DEFAULT_THRESHOLD)
        shape = sum(1 for r in test if not r.right and r.similarity >= DEFAULT_THRESHOLD and r.guard in SHAPE_RULES)
        caught = shape - shape_leaks(test, params, DEFAULT_THRESHOLD)
        print(f"\n{held}: fitted on the other three: {params}")
        print("  " + line("guard", *g))
        print("  " + line("+ aligned", *c))
        print(f"  the shape rules' look-alikes the alignment check also vetoes on its own: {caught}/{shape}")
        cv[held] = {"params": asdict(params), "guard": list(g), "guard+aligned": list(c), "shape_caught": [caught, shape]}
    final = fit(data, DEFAULT_THRESHOLD)
    total = tally(data, final, DEFAULT_THRESHOLD)
    print(f"\nall four splits: {final}\n  " + line("fitted", *total))
    if args.write:
        PARAMS_FILE.write_text(json.dumps({
            "about": "the alignment check's parameters, written by python -m routing.cache.corpus.reader_fit --write",
            "params": asdict(final), "threshold": DEFAULT_THRESHOLD, "embedder": embedder.kind,
            "splits": list(SPLITS), "wrong_cost": WRONG_COST, "shape_cost": SHAPE_COST,
            "cross_validation": cv, "fitted_all": list(total),
        }, indent=1) + "\n", encoding="utf-8")
        print(f"written: {PARAMS_FILE}")
    return 0


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
    django.setup()
    sys.exit(main())
