"""Precision, recall and F1 per entity of PiiDetector(ENTITIES) + SecretsDetector() on
the labelled corpus, as markdown tables, one per split (scoring.SPLITS).

    .venv/bin/python -m guardrails.corpus.report                  # the tables
    .venv/bin/python -m guardrails.corpus.report --errors         # and the tuning split's misses
    .venv/bin/python -m guardrails.corpus.report --errors=fresh   # a held-out split's misses
"""

from __future__ import annotations

import sys

from guardrails.detectors.pii import ENTITIES, PiiDetector
from guardrails.detectors.secrets import SecretsDetector

from .scoring import SPLITS, load, score, table


def main(argv: list[str]) -> int:
    detectors = (PiiDetector(ENTITIES), SecretsDetector())
    for split in SPLITS:
        lines = load(split)
        s = score(detectors, lines)
        negatives = [line for line in lines if not line.expected]
        print(f"## {split} ({len(lines)} lines, {len(negatives)} without PII)\n")
        print(table(s))
        print()
        # A held-out split's misses stay unread unless asked for by name.
        if f"--errors={split}" in argv or ("--errors" in argv and split == "tuning"):
            for line_id, entity, found, expected in s.errors:
                what = f"found {found!r}" if found is not None else f"missed {expected!r}"
                print(f"- {line_id} {entity}: {what}")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
