"""`python -m routing.cache.corpus.report [--threshold T]`: precision of the semantic hits and
the hit rate on paraphrases at the default threshold, per split, and per kind of pair.
Held-out misses are listed by id only, so that reading the report does not tune on them."""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    from routing.cache.semantic import DEFAULT_THRESHOLD
    from routing.cache.semantic.embedder import get_embedder

    from .scoring import BLIND, SPLITS, by_kind, decide, load, score

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--split", action="append", choices=SPLITS + BLIND,
                        help="only this split (repeatable; default: the seen splits, never the blind one)")
    args = parser.parse_args(argv)
    embed = get_embedder().embed
    print(f"semantic cache on the labelled pairs, threshold {args.threshold:.2f} (default {DEFAULT_THRESHOLD:.2f})")
    for split in args.split or SPLITS:
        decisions = decide(load(split), embed)
        s = score(decisions, args.threshold)
        print(f"\n{split}: {len(decisions)} pairs, {s.paraphrases} paraphrases")
        print(f"  precision of semantic hits {s.precision:.3f} ({s.right}/{s.hits})")
        print(f"  hit rate on paraphrases    {s.hit_rate:.3f} ({s.right}/{s.paraphrases})")
        if s.wrong:
            print(f"  look-alikes that hit: {', '.join(s.wrong)}")
        for kind, (n, hits) in by_kind(decisions, args.threshold).items():
            print(f"    {kind:12} {n:4} pairs  {hits:4} hits")
    return 0


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_project.settings")
    django.setup()
    sys.exit(main())
