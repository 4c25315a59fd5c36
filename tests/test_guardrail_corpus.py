"""The detectors against the labelled corpus (guardrails/corpus/): span-exact precision
and recall per entity on both splits, the named hard negatives never flagged, and the
stream-release property of `hold` at every split point of every line.

Thresholds are what the detectors reach, a little below (targets: precision >= 0.98,
recall >= 0.95 for every entity). The holdout split was set aside before tuning; the
fresh split was written after it and scored once before any fix: then phone precision
0.967 (a git date's "03 2026 +0700") and card recall 0.8 (two made-up numbers that fail
Luhn, relabelled as valid numbers), every other entity 1.0.
"""

from __future__ import annotations

from functools import cache

import pytest

from guardrails.corpus import report
from guardrails.corpus.scoring import SPLITS, Line, Score, load, score
from guardrails.detectors.pii import ENTITIES, PiiDetector
from guardrails.detectors.secrets import ENTITIES as SECRET_ENTITIES
from guardrails.detectors.secrets import SecretsDetector

DETECTORS = (PiiDetector(ENTITIES), SecretsDetector())
# Per split: (precision, recall) every entity must reach.
THRESHOLDS = {"tuning": (0.99, 0.99), "holdout": (0.98, 0.95), "fresh": (0.97, 0.95)}
# Lines of these categories must have no finding at all.
ZERO_FINDING_TAGS = ("neg:short_upper", "neg:timestamp", "neg:price")


@cache
def lines(split: str) -> tuple[Line, ...]:
    return tuple(load(split))


@cache
def scored(split: str) -> Score:
    return score(DETECTORS, lines(split))


def test_the_corpus_is_several_hundred_lines_in_both_languages() -> None:
    everything = sum((lines(split) for split in SPLITS), ())
    assert len(everything) >= 400
    assert len(lines("holdout")) + len(lines("fresh")) >= 0.2 * len(everything)
    assert {line.lang for line in everything} == {"en", "vi"}
    assert len({line.id for line in everything}) == len(everything)


# The hard-negative categories written against each entity.
NEGATIVES_OF = {
    "email": ("neg:email_like",),
    "phone": ("neg:phone_like", "neg:price", "neg:order", "neg:date", "neg:timestamp", "neg:tax", "neg:account"),
    "credit_card": ("neg:card_like", "neg:timestamp"),
    "iban": ("neg:iban_like",),
    "us_ssn": ("neg:ssn_like",),
    "vn_cccd": ("neg:cccd_like",),
    "vn_cmnd": ("neg:cmnd_like",),
    "ip_address": ("neg:ip_like", "neg:mac"),
    **{e: ("neg:secret_like",) for e in SECRET_ENTITIES},
}


@pytest.mark.parametrize("entity", ENTITIES + SECRET_ENTITIES)
def test_every_entity_has_positives_and_hard_negatives(entity: str) -> None:
    everything = sum((lines(split) for split in SPLITS), ())
    positives = [line for line in everything if any(f.entity == entity for f in line.expected)]
    negatives = [line for line in everything if set(NEGATIVES_OF[entity]) & set(line.tags)]
    assert len(positives) >= 5 and len(negatives) >= 5


@pytest.mark.parametrize("split", SPLITS)
def test_each_entity_reaches_its_precision_and_recall(split: str) -> None:
    s = scored(split)
    min_precision, min_recall = THRESHOLDS[split]
    below = {
        e: (round(s.precision(e), 3), round(s.recall(e), 3))
        for e in s.entities()
        if s.precision(e) < min_precision or s.recall(e) < min_recall
    }
    # The misses by line id only: the held-out lines stay unread while tuning.
    assert below == {}, sorted({line_id for line_id, *_ in s.errors})


@pytest.mark.parametrize("tag", ZERO_FINDING_TAGS)
def test_named_hard_negatives_have_no_finding_at_all(tag: str) -> None:
    tagged = [line for split in SPLITS for line in lines(split) if tag in line.tags]
    assert len(tagged) >= 5
    assert all(not line.expected for line in tagged)  # the corpus itself labels them clean
    flagged = {line.id: [line.text[f.start : f.end] for d in DETECTORS for f in d.find(line.text)] for line in tagged}
    assert {k: v for k, v in flagged.items() if v} == {}


@pytest.mark.parametrize("split", SPLITS)
def test_hold_makes_every_split_point_of_every_line_safe(split: str) -> None:
    bad = []
    for line in lines(split):
        for detector in DETECTORS:
            whole = detector.find(line.text)
            for k in range(len(line.text) + 1):
                prefix = line.text[:k]
                safe = k - detector.hold(prefix)
                if [f for f in whole if f.start < safe] != [f for f in detector.find(prefix) if f.start < safe]:
                    bad.append((line.id, type(detector).__name__, k))
                    break
    assert bad == []


def test_the_report_prints_a_table_per_split(capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([]) == 0
    out = capsys.readouterr().out
    assert out.count("| entity | expected | found | precision | recall | F1 |") == len(SPLITS)
    assert "| phone |" in out and "| openai_key |" in out
