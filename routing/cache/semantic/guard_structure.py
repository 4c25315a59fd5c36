"""Where the words of a question stand, for the look-alike guard (guard.py): the word after
"than", "from" and "to" (anchors), the content words on each side of a relational word
(relations) and the content words of a condition or a kind (qualifiers). Pure functions over
the tokens (guard_tokens.py) and the content words the reader found, with their token index."""

from __future__ import annotations

from . import vocabulary as V
from .guard_features import word_hash
from .guard_tokens import Tok, sentence_of, stem

# Words whose two sides a rearrangement swaps ("convert an integer to a string" / "a string to
# an integer"), by family ("into" is "to"). Not "vs", "and", "or": their two sides are symmetric.
RELATIONAL = {"to": "to", "into": "to", "onto": "to", "from": "from", "than": "than", "over": "over",
              "under": "under", "before": "before", "after": "after", "by": "by", "per": "per",
              "against": "against", "with": "with", "for": "for"}

Content = list[tuple[int, int]]  # (token index, hash) of each content word, in text order


def anchors(toks: list[Tok]) -> set[tuple[str, int]]:
    """The word after 'than', after 'from' and after a 'to'/'into' that follows 'from'."""
    found: set[tuple[str, int]] = set()
    seen_from = False
    for i, tok in enumerate(toks):
        low = tok.low if tok.kind == "word" else ""
        kind = {"than": "than", "from": "from"}.get(low)
        if low in {"to", "into"} and seen_from:
            kind = "to"
        if low == "from":
            seen_from = True
        if kind is None:
            continue
        for j in range(i + 1, min(i + 4, len(toks))):
            nxt = toks[j]
            if nxt.kind == "stop":
                break
            if nxt.kind == "word" and nxt.low not in V.STOPWORDS:
                found.add((kind, word_hash(stem(nxt.low))))
                break
            if nxt.kind == "num":
                found.add((kind, word_hash(nxt.text)))
                break
    return found


def compared(toks: list[Tok]) -> set[int]:
    """The attribute a comparison is about: the first content word after "more", "less", "most",
    "least" ("is laminate more *durable* than vinyl" is not "more *water-resistant*")."""
    found: set[int] = set()
    for i, tok in enumerate(toks):
        if tok.kind != "word" or tok.low not in {"more", "less", "most", "least", "fewer"}:
            continue
        for j in range(i + 1, min(i + 3, len(toks))):
            nxt = toks[j]
            if nxt.kind != "word" or nxt.low in {"than", "of", "and", "or"}:
                break
            if nxt.low not in V.STOPWORDS:
                found.add(word_hash(stem(nxt.low)))
                break
    return found


def relations(toks: list[Tok], content: Content) -> set[tuple[str, str, int]]:
    """("to", "L", h): content word h is left of the first "to" (or "into", "onto") in its
    sentence; one family at a time, its first occurrence."""
    found: set[tuple[str, str, int]] = set()
    seen: set[str] = set()
    for i, tok in enumerate(toks):
        family = RELATIONAL.get(tok.low) if tok.kind == "word" else None
        if family is None or family in seen:
            continue
        seen.add(family)
        sentence = sentence_of(toks, i)
        found.update((family, "L" if k < i else "R", h) for k, h in content if k in sentence and k != i)
    return found


_CLAUSE_OPENERS = frozenset({"if", "when", "whenever", "unless", "once", "while"})


def _after_openers(toks: list[Tok], content: Content, openers: frozenset[str], participles: bool) -> set[int]:
    """The content words after one of `openers` that follows the sentence's own content words,
    to the end of its sentence; with `participles`, also one of V.CONDITION_PARTICIPLES right
    before the opener ("purchases *made* during"). An opener that starts the sentence asks the
    question ("If I work overtime, ..."): not a condition."""
    found: set[int] = set()
    by_index: dict[int, list[int]] = {}
    for k, h in content:
        by_index.setdefault(k, []).append(h)  # a hyphenated word is several content words
    opened = False
    for i, tok in enumerate(toks):
        if tok.kind == "stop":
            opened = False
        elif (tok.kind == "word" and tok.low in openers
              and any(k in by_index for k in sentence_of(toks, i) if k < i)):
            opened = True
            if participles and i > 0 and toks[i - 1].low in V.CONDITION_PARTICIPLES:
                found.update(by_index.get(i - 1, ()))
        elif opened:
            found.update(by_index.get(i, ()))
    return found


def conditions(toks: list[Tok], content: Content) -> set[int]:
    """The content words of a condition clause ("if I *quit* my *job*", "when it *rains*")."""
    return _after_openers(toks, content, _CLAUSE_OPENERS, participles=False)


def qualifiers(toks: list[Tok], content: Content) -> set[int]:
    """Content words that narrow a question: those of a condition ("... per day *during
    pregnancy*", "... for *trucks*", "at high *altitude*", "purchases *made* during"), kind words
    ("*brown* rice") and modifiers."""
    found = _after_openers(toks, content, V.CONDITION_OPENERS | V.PREPOSITION_OPENERS, participles=True)
    found.update(h for k, h in content if toks[k].low in V.KIND_WORDS)
    return found | modifiers(toks, content)


def modifiers(toks: list[Tok], content: Content) -> set[int]:
    """Adjectives right before another content word: "an *urgent* passport renewal", "*organic*
    eggs", "a *dental* hygienist" (read by their ending: the reader has no dictionary)."""
    return {h for n, (k, h) in enumerate(content)
            if n + 1 < len(content) and content[n + 1][0] == k + 1 and _adjective(toks[k].low)}


def _adjective(word: str) -> bool:
    return len(word) >= 5 and word.endswith(V.ADJECTIVE_ENDINGS) and word not in V.NOT_ADJECTIVES
