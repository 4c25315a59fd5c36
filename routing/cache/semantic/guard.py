"""The look-alike guard: what two questions must share before one's answer may serve the other.

Sentence embeddings place "What is 15% of 80?" next to "What is 15% of 90?", "Can dogs eat
chocolate?" next to "Can cats eat chocolate?" and "How do I enable dark mode?" next to "How
do I disable dark mode?": the words that change the answer are few, so the vectors barely
move. The guard reads those words and vetoes a match when they disagree:

    numbers     the same numbers in the same order ("fifteen" = 15, "1,000" = 1000, "10th" = 10)
    quantities  the same number-with-unit pairs ("5 km" is not "5 miles") and the same units
    negation    both negated or neither ("not", "n't", "never", "without", "unable" ...)
    opposites   no antonyms of one group ("enable"/"disable", "largest"/"smallest",
                "upload"/"download", "install"/"uninstall", "turn on"/"turn off", "plus"/"minus")
    comparison  the same comparative or superlative ("cheapest" is not "fastest")
    direction   the same word after "than" and after "from" ... "to"
    dates       the same months, weekdays, "today"/"tomorrow", "next week"/"last week"
    names       every name, acronym or code identifier of one text appears in the other
    word order  the same content words, not rearranged ("convert an integer to a string" is
                not "convert a string to an integer")
    one swap    the texts do not differ by exactly one content word each ("cancel my
                subscription" is not "cancel my order"), the commonest look-alike of all

The modules: guard_tokens (the tokenizer and the stem), guard_quantities (numbers and units),
guard_reader (a text -> its Features), guard_features (Features, the hashed words and the
stored JSON form), vocabulary (the word lists); this one compares two Features (`agree`).
Callers import `features`, `agree` and `Features` from here.
"""

from __future__ import annotations

from . import vocabulary as V
from .guard_features import Features, word_hash
from .guard_reader import features

__all__ = ["Features", "ONE_SWAP_SIMILARITY", "agree", "features", "word_hash"]

# Two texts that differ by one content word each are a look-alike ("cancel my subscription" /
# "cancel my order": 0.71) unless the embedding calls them near-identical: one-word look-alikes
# of the labelled set stay below 0.89, one-word paraphrases ("tall"/"height") reach 0.93-0.98.
ONE_SWAP_SIMILARITY = 0.93


def agree(a: Features, b: Features, similarity: float = 0.0) -> str | None:
    """None when nothing tells the two questions apart, else the first reason they differ."""
    if a.numbers != b.numbers:
        return "numbers"
    if a.quantities and b.quantities and a.quantities != b.quantities:
        return "quantities"
    if a.units and b.units and a.units != b.units:
        return "units"
    if a.negated != b.negated:
        return "negation"
    if _opposed(a.opposites, b.opposites) or _particles_opposed(a.particles, b.particles):
        return "opposites"
    if a.comparison and b.comparison and a.comparison != b.comparison:
        return "comparison"
    if (a.negated_stems & b.content) or (b.negated_stems & a.content):
        return "opposites"
    if a.dates != b.dates:
        return "dates"
    if a.frequency and b.frequency and a.frequency != b.frequency:
        return "dates"
    if _anchors_differ(a.anchors, b.anchors):
        return "direction"
    if a.identifiers != b.identifiers:
        return "identifiers"
    if not (a.names <= b.words and b.names <= a.words):
        return "names"
    if (a.content == b.content and len(a.order) >= 2 and a.order != b.order
            and a.words & b.words & _RELATIONAL):
        return "word order"  # the same words around "to"/"from"/"than"...: "integer to string" / "string to integer"
    only_a, only_b = a.content - b.content, b.content - a.content
    if len(only_a) == 1 and len(only_b) == 1 and a.content & b.content and similarity < ONE_SWAP_SIMILARITY:
        return "one swap"
    return None


# Words whose two sides a rearrangement swaps: with them, the same words in another order
# ask another question; without them, a reordering is usually a paraphrase.
_RELATIONAL = frozenset(word_hash(w) for w in (
    "to", "into", "from", "than", "vs", "versus", "over", "under", "before", "after", "by", "per", "against"))


def _opposed(a: frozenset[str], b: frozenset[str]) -> bool:
    groups_a = {item.split(":")[0] for item in a}
    for group in groups_a & {item.split(":")[0] for item in b}:
        if {x for x in a if x.startswith(group + ":")} != {x for x in b if x.startswith(group + ":")}:
            return True
    return False


_OPPOSITE_PARTICLE = {p: q for pair in V.PARTICLE_OPPOSITES for p, q in (pair, pair[::-1])}


def _particles_opposed(a: frozenset[tuple[int, str]], b: frozenset[tuple[int, str]]) -> bool:
    return any((verb, _OPPOSITE_PARTICLE[p]) in b for verb, p in a if p in _OPPOSITE_PARTICLE) and not (a & b)


def _anchors_differ(a: frozenset[tuple[str, int]], b: frozenset[tuple[str, int]]) -> bool:
    for kind in {k for k, _ in a} & {k for k, _ in b}:
        if {h for k, h in a if k == kind} != {h for k, h in b if k == kind}:
            return True
    return False
