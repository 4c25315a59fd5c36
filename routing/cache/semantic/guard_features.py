"""What the look-alike guard keeps of a question (guard.py): its features, hashed, and their
stored JSON form (the pgvector table's `features` column; the in-process index keeps the
objects).

Only features are kept, never the text: words are stored as 64-bit keyed hashes (a
dictionary attack can still guess common words, so the index is no place for secrets,
but it holds no readable question).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .reader_align import Alignment

_HASH_KEY = b"gateway-semantic-guard-v1"
# Bumped when the reader reads a text differently: features stored by another version are
# never matched (agree: "version"), since the two readings would not be comparable; they
# age out with their TTL. Version 1 (no "v" in the JSON) is the reader before relations,
# signed numbers and command words.
# 3: "non-"/"un-"/"anti-" negate, adjectives before a noun are modifiers; 4: bare units have a side
# of "to"/"from" (relations), and the alignment check's words (reader_align.py) are stored too
# 5: the function words' senses (guard_function.py: what is asked, modality, scope, time relation, format)
READER_VERSION = 5


def word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8, key=_HASH_KEY).digest(), "big")


@dataclass(frozen=True, slots=True)
class Features:
    """What the guard compares; hashes stand for words (see word_hash)."""

    numbers: tuple[str, ...] = ()  # canonical numbers in text order, "1" of "1 km" left out
    quantities: frozenset[str] = frozenset()  # "5 kilometre", "1 cup"
    units: frozenset[str] = frozenset()
    negated: bool = False
    opposites: frozenset[str] = frozenset()  # "switch:0", "size:1"
    comparison: frozenset[str] = frozenset()  # the opposites that are comparatives/superlatives
    particles: frozenset[tuple[int, str]] = frozenset()  # ("turn" hash, "on")
    negated_stems: frozenset[int] = frozenset()  # "uninstall" -> hash("install")
    dates: frozenset[str] = frozenset()
    frequency: frozenset[str] = frozenset()
    anchors: frozenset[tuple[str, int]] = frozenset()  # ("than", hash("coffee"))
    names: frozenset[int] = frozenset()
    identifiers: frozenset[int] = frozenset()
    words: frozenset[int] = frozenset()  # every word, lower case (names must be among the other's)
    content: frozenset[int] = frozenset()  # content words: stemmed, synonyms folded
    order: tuple[int, ...] = ()  # the same, in the order they first appear (and where "I" / "me" stands)
    relations: frozenset[tuple[str, str, int]] = frozenset()  # ("to", "L", hash("integer")): a side of "to"
    qualifiers: frozenset[int] = frozenset()  # content words that narrow it ("during pregnancy", "brown")
    reversed_order: bool = False  # "descending", "in reverse"
    modifiers: frozenset[int] = frozenset()  # of the qualifiers, adjectives before a noun ("urgent", "dental")
    function: frozenset[str] = frozenset()  # "ask:reason", "modal:should", "scope:all" (guard_function.py)
    apart: frozenset[tuple[int, int]] = frozenset()  # neighbouring content words with a clause between them
    negations: int = 0  # how many negations ("can't be frozen without" is two; negated says one or more)
    affixes: frozenset[str] = frozenset()  # "<hash of the rest>:<affix>" ("prenatal": natal, pre)
    possessions: frozenset[tuple[int, int]] = frozenset()  # (owner, owned) of "X's Y"
    conditions: frozenset[int] = frozenset()  # content words of an if / when / unless clause
    quotes: frozenset[tuple[int, int]] = frozenset()  # each quoted text: (its words sorted, in order), hashed
    expression: str = ""  # the brackets and operators of a formula, in order ("(+)×")
    compared: frozenset[int] = frozenset()  # the attribute after "more" / "less" / "most" ("more *durable*")
    version: int = READER_VERSION
    # the content words as the model read them (reader_align.py); None when the text was read
    # without the model's token states (then the alignment check abstains)
    alignment: Alignment | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "n": list(self.numbers), "q": sorted(self.quantities), "u": sorted(self.units), "neg": self.negated,
            "o": sorted(self.opposites), "c": sorted(self.comparison), "p": sorted([h, p] for h, p in self.particles),
            "ns": sorted(self.negated_stems), "d": sorted(self.dates), "f": sorted(self.frequency),
            "a": sorted([k, h] for k, h in self.anchors), "nm": sorted(self.names), "id": sorted(self.identifiers),
            "w": sorted(self.words), "ct": sorted(self.content), "or": list(self.order),
            "r": sorted([k, side, h] for k, side, h in self.relations), "ql": sorted(self.qualifiers),
            "md": sorted(self.modifiers), "fn": sorted(self.function), "ap": sorted([x, y] for x, y in self.apart), "nc": self.negations, "af": sorted(self.affixes), "po": sorted([x, y] for x, y in self.possessions),
            "qt": sorted([x, y] for x, y in self.quotes), "cd": sorted(self.conditions), "ex": self.expression, "cm": sorted(self.compared), "ro": self.reversed_order, "v": self.version,
            "al": self.alignment.to_json() if self.alignment is not None else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Features:
        return cls(
            numbers=tuple(data["n"]), quantities=frozenset(data["q"]), units=frozenset(data["u"]),
            negated=bool(data["neg"]), opposites=frozenset(data["o"]), comparison=frozenset(data["c"]),
            particles=frozenset((h, p) for h, p in data["p"]), negated_stems=frozenset(data["ns"]),
            dates=frozenset(data["d"]), frequency=frozenset(data["f"]),
            anchors=frozenset((k, h) for k, h in data["a"]), names=frozenset(data["nm"]),
            identifiers=frozenset(data["id"]), words=frozenset(data["w"]), content=frozenset(data["ct"]),
            order=tuple(data.get("or", ())), relations=frozenset((k, side, h) for k, side, h in data.get("r", ())),
            qualifiers=frozenset(data.get("ql", ())), reversed_order=bool(data.get("ro", False)),
            modifiers=frozenset(data.get("md", ())), function=frozenset(data.get("fn", ())),
            apart=frozenset((x, y) for x, y in data.get("ap", ())),
            negations=int(data.get("nc", 0)), affixes=frozenset(data.get("af", ())),
            possessions=frozenset((x, y) for x, y in data.get("po", ())), quotes=frozenset((x, y) for x, y in data.get("qt", ())), conditions=frozenset(data.get("cd", ())),
            expression=str(data.get("ex", "")), compared=frozenset(data.get("cm", ())),
            version=int(data.get("v", 1)),
            alignment=Alignment.from_json(data["al"]) if data.get("al") else None,
        )
