"""Labelled question pairs for the semantic cache (tuning.jsonl, holdout.jsonl).

Each line: `a` is the question already answered (stored), `b` the new one (looked up);
`label` is "hit" when a's answer serves b (a paraphrase) and "miss" when it must not (a
look-alike: `kind` says which: number, name, negation, unit, date, comparative, polarity,
topic, identifier). Both splits were written before the guard and the threshold; the
threshold was chosen on tuning only. `python -m routing.cache.corpus.report` scores both.
"""
