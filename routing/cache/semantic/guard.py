"""The look-alike guard: what two questions must share before one's answer may serve the other.

Sentence embeddings place "What is 15% of 80?" next to "What is 15% of 90?", "Can dogs eat
chocolate?" next to "Can cats eat chocolate?" and "How do I enable dark mode?" next to "How
do I disable dark mode?": the words that change the answer are few, so the vectors barely
move. The guard reads those words and vetoes a match when they disagree:

    numbers     the same numbers in the same order ("fifteen" = 15, "1,000" = 1000, "10th" = 10,
                "-40" and "minus 40" are not 40, "half" = 0.5, "3.10" is not "3.1")
    quantities  the same number-with-unit pairs ("5 km" is not "5 miles") and the same units
    negation    both negated or neither ("not", "n't", "never", "without", "unable", "except",
                "sugar-free", "non-toxic" ...)
    opposites   no antonyms of one group ("enable"/"disable", "largest"/"smallest", "read"/"write",
                "upload"/"download", "install"/"uninstall", "landlord"/"tenant", "plus"/"minus"), no
                opposite particles on one verb ("turn on"/"turn off", "zoom in"/"zoom out"; "sign up"
                is not "sign in"), no order reversed by one text only ("in descending order")
    comparison  the same comparative or superlative ("cheapest" is not "fastest")
    direction   the same word after "than" and after "from" ... "to"
    dates       the same months, weekdays, "today"/"tomorrow", "next week"/"last week"
    names       every name, acronym or code identifier of one text appears in the other ("C" is
                not "C++")
    word order  no content words trading sides of a relational word ("convert an integer to a
                string" is not "convert a string to an integer", whatever else is said), no two
                trading places across a third ("can a landlord evict a tenant")
    one swap    the texts do not differ by exactly one content word each ("cancel my
                subscription" is not "cancel my order", "annual leave" is not "unpaid leave"),
                the commonest look-alike of all, nor by one word for a modifier and another
                ("dentist" is not "dental hygienist")
    narrower    one text is not the other plus a condition, a kind or an adjective before a noun
                ("how much caffeine is safe per day" is not "... per day during pregnancy", "rice"
                is not "brown rice", "passport renewal" is not "urgent passport renewal")
    function    the same senses of the small words (guard_function.py): what is asked (how / why /
                when / where / who / how many / yes-no), modality (can / should / must / will), scope
                (all / some / only / most), time relation (before / after / during), format (a list /
                a table / in one sentence)
    version     both read by the same version of the reader (READER_VERSION)

and then, when both questions were read with the model's token states, the alignment check
(reader_align.py): no rare word that only one question has, no modifier added to a shared noun.

The modules: guard_tokens (the tokenizer and the stem), guard_quantities (numbers and units),
guard_reader (a text -> its Features), guard_features (Features, the hashed words and the
stored JSON form), vocabulary (the word lists); this one compares two Features (`agree`).
Callers import `features`, `agree` and `Features` from here.
"""

from __future__ import annotations

from . import vocabulary as V
from .guard_features import Features, word_hash
from .guard_function import differ as function_words_differ
from .guard_reader import features
from .reader_align import aligned_veto

__all__ = ["Features", "ONE_SWAP_SIMILARITY", "agree", "features", "word_hash"]

# Two texts that differ by one content word each are a look-alike ("cancel my subscription" /
# "cancel my order": 0.71) unless the embedding calls them near-identical: one-word paraphrases
# ("tall"/"height") reach 0.93-0.98, but so does a one-verb look-alike ("paying"/"filing taxes
# late": 0.94), so only the nearest pass.
ONE_SWAP_SIMILARITY = 0.95


def agree(a: Features, b: Features, similarity: float = 0.0) -> str | None:
    """None when nothing tells the two questions apart, else the first reason they differ."""
    if a.version != b.version:
        return "version"  # read by another version of the reader: not comparable
    if a.numbers != b.numbers:
        return "numbers"
    if a.quantities and b.quantities and a.quantities != b.quantities:
        return "quantities"
    if a.units and b.units and a.units != b.units:
        return "units"
    if a.negated != b.negated or a.negations != b.negations:
        return "negation"
    if reason := function_words_differ(a.function, b.function):
        return reason  # "can" / "should", "how" / "why", "all" / "some", "before" / "after", "list" / "table"
    if _opposed(a.opposites, b.opposites) or _particles_opposed(a.particles, b.particles):
        return "opposites"
    if a.reversed_order != b.reversed_order:
        return "opposites"  # "sort a list" / "sort a list in descending order"
    if a.comparison and b.comparison and a.comparison != b.comparison:
        return "comparison"
    if a.compared and b.compared and a.compared != b.compared:
        return "comparison"  # "more durable" / "more water-resistant"
    if (a.negated_stems & b.content) or (b.negated_stems & a.content):
        return "opposites"
    if _affixes_differ(a.affixes, b.affixes):
        return "opposites"  # "prenatal" / "postnatal", "stateless" / "stateful"
    if any(x == p and y != q for x, y in a.quotes for p, q in b.quotes):
        return "word order"  # a quoted text in another order: "'un grand homme'" / "'un homme grand'"
    if a.expression and b.expression and a.expression != b.expression:
        return "expression"  # "6 + 4 × 2" / "(6 + 4) × 2", "[::-1]" / "[-1:]"
    if any((y, x) in b.possessions and (x, y) not in b.possessions for x, y in a.possessions):
        return "word order"  # "my wife's brother" / "my brother's wife"
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
    if _sides_swapped(a.relations, b.relations):
        return "word order"  # "integer to string" / "string to integer", with or without other words
    if _roles_swapped(a, b) or _runs_swapped(a, b):
        return "word order"  # "can a landlord evict a tenant" / "can a tenant evict a landlord"
    only_a, only_b = a.content - b.content, b.content - a.content
    if a.content & b.content and similarity < ONE_SWAP_SIMILARITY and (
            len(only_a) == len(only_b) == 1
            # one word for a modifier and another: "dentist" / "dental hygienist"
            or (len(only_a), len(only_b - b.modifiers), len(only_b)) == (1, 1, 2)
            or (len(only_b), len(only_a - a.modifiers), len(only_a)) == (1, 1, 2)):
        return "one swap"
    if _narrower(a, b) or _narrower(b, a):
        return "narrower"
    if (a.conditions - b.content) and (b.conditions - a.content):
        return "condition"  # "if I quit my job" / "if I die": each asks under a condition the other lacks
    if a.alignment is not None and b.alignment is not None:
        return aligned_veto(a.alignment, b.alignment, similarity)
    return None



def _affixes_differ(a: frozenset[str], b: frozenset[str]) -> bool:
    rest_a: dict[str, set[str]] = {}
    rest_b: dict[str, set[str]] = {}
    for items, rest in ((a, rest_a), (b, rest_b)):
        for item in items:
            word, _, affix = item.partition(":")
            rest.setdefault(word, set()).add(affix)
    return any(not (rest_a[w] & rest_b[w]) for w in rest_a.keys() & rest_b.keys())


def _opposed(a: frozenset[str], b: frozenset[str]) -> bool:
    groups_a = {item.split(":")[0] for item in a}
    for group in groups_a & {item.split(":")[0] for item in b}:
        if {x for x in a if x.startswith(group + ":")} != {x for x in b if x.startswith(group + ":")}:
            return True
    return False


# Every opposite of each particle: "out" is the opposite of "in" and of "into".
_OPPOSITE_PARTICLES: dict[str, frozenset[str]] = {
    p: frozenset(q for pair in V.PARTICLE_OPPOSITES for x, q in (pair, pair[::-1]) if x == p)
    for pair in V.PARTICLE_OPPOSITES for p in pair}


# "log in" = "log on", "put it into" = "put it in": one meaning for the test of other particles.
_PARTICLE_SENSE = {"on": "in", "into": "in"}


def _particles_opposed(a: frozenset[tuple[int, str]], b: frozenset[tuple[int, str]]) -> bool:
    """One verb with opposite particles ("zoom in" / "zoom out"), unless a text has both, or with
    other particles only ("sign up" / "sign in"); other verbs' particles ("thanks in advance")
    do not matter."""
    if any((verb, q) in b and (verb, p) not in b and (verb, q) not in a
           for verb, p in a for q in _OPPOSITE_PARTICLES.get(p, ())):
        return True
    senses_a: dict[int, set[str]] = {}
    senses_b: dict[int, set[str]] = {}
    for particles, senses in ((a, senses_a), (b, senses_b)):
        for verb, p in particles:
            senses.setdefault(verb, set()).add(_PARTICLE_SENSE.get(p, p))
    return any(not (senses_a[verb] & senses_b[verb]) for verb in senses_a.keys() & senses_b.keys())


def _sides_swapped(a: frozenset[tuple[str, str, int]], b: frozenset[tuple[str, str, int]]) -> bool:
    """Around the same relational word, one content word moved from its left to its right and
    another from its right to its left; a word moving one way only is a rephrasing ("sort a
    dict by value in Python" / "sort a Python dict by value")."""
    for family in {k for k, _, _ in a} & {k for k, _, _ in b}:
        left_a, right_a, left_b, right_b = ({h for k, side, h in rel if k == family and side == want}
                                            for rel in (a, b) for want in ("L", "R"))
        if (left_a - right_a) & (right_b - left_b) and (right_a - left_a) & (left_b - right_b):
            return True
    return False


def _anchors_differ(a: frozenset[tuple[str, int]], b: frozenset[tuple[str, int]]) -> bool:
    for kind in {k for k, _ in a} & {k for k, _ in b}:
        if {h for k, h in a if k == kind} != {h for k, h in b if k == kind}:
            return True
    return False


_BY = word_hash("by")


def _roles_swapped(a: Features, b: Features) -> bool:
    """The same content words in the same order but two, which trade places across something
    between them ("landlord evict tenant" / "tenant evict landlord", "dog eat cat food" / "cat eat
    dog food", "in Tokyo when it's noon in London", "can my employer sue me" / "can I sue my
    employer": the asker counts as a word). Neighbours trade places in a rewording ("rent or buy" /
    "buy or rent", "Japan's currency" / "the currency used in Japan") unless a clause stands between
    them in both texts; a passive in one text only asks the same ("Shakespeare wrote Hamlet" /
    "Hamlet was written by Shakespeare")."""
    if a.content != b.content or len(a.order) != len(b.order) or (_BY in a.words) != (_BY in b.words):
        return False
    moved = [k for k, (x, y) in enumerate(zip(a.order, b.order)) if x != y]
    if not (len(moved) == 2 and a.order[moved[0]] == b.order[moved[1]] and a.order[moved[1]] == b.order[moved[0]]):
        return False
    if moved[1] - moved[0] >= 2:
        return True
    x, y = a.order[moved[0]], a.order[moved[1]]
    pair = (min(x, y), max(x, y))
    return pair in a.apart and pair in b.apart


def _runs_swapped(a: Features, b: Features) -> bool:
    """One text is the other with two runs of one to three content words, not side by side,
    trading places ("a *subclass* overrides a method of its *parent class*" / "a *parent class*
    ... its *subclass*", "the *United States* declared war on *Germany*" / "*Germany* ... the
    *United States*")."""
    x, y = a.order, b.order
    if a.content != b.content or len(x) != len(y) or x == y or (_BY in a.words) != (_BY in b.words):
        return False
    n = len(x)
    for i in range(n):
        for l1 in (1, 2, 3):
            for j in range(i + l1 + 1, n):
                for l2 in (1, 2, 3):
                    if j + l2 > n or (l1 == l2 == 1):
                        continue  # single words: _roles_swapped's rule
                    if j - i - l1 == 1 and min(l1, l2) < 2:
                        continue  # one word between: both runs of two or more ("the Roman Empire invaded
                        # ancient Egypt"), not "work overtime ... pay extra" / "extra pay ... overtime"
                    if x[:i] + x[j:j + l2] + x[i + l1:j] + x[i:i + l1] + x[j + l2:] == y:
                        return True
    return False


def _narrower(a: Features, b: Features) -> bool:
    """a asks b's question and narrows it: every content word of b is in a, and each of a's others
    qualifies it ("... per day *during pregnancy*", "*brown* rice")."""
    extra = a.content - b.content
    return bool(extra and b.content and b.content <= a.content) and all(
        x in a.qualifiers for x in extra)
