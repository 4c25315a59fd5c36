"""Labelled question pairs for the semantic cache: tuning.jsonl, holdout.jsonl,
holdout2.jsonl, holdout3.jsonl and holdout4.jsonl (each blind when it was first scored;
docs/caching.md gives each one's history and figures).

Each line: `a` is the question already answered (stored), `b` the new one (looked up);
`label` is "hit" when a's answer serves b (a paraphrase) and "miss" when it must not (a
look-alike; `kind` says which: number, name, negation, unit, modality, scope, ...).
`python -m routing.cache.corpus.report` scores them.
"""
