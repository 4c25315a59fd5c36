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

Only features are kept, never the text: words are stored as 64-bit keyed hashes (a
dictionary attack can still guess common words, so the index is no place for secrets,
but it holds no readable question).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from . import vocabulary as V

_HASH_KEY = b"gateway-semantic-guard-v1"


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
    order: tuple[int, ...] = ()  # the same, in the order they first appear

    def to_json(self) -> dict[str, Any]:
        return {
            "n": list(self.numbers), "q": sorted(self.quantities), "u": sorted(self.units), "neg": self.negated,
            "o": sorted(self.opposites), "c": sorted(self.comparison), "p": sorted([h, p] for h, p in self.particles),
            "ns": sorted(self.negated_stems), "d": sorted(self.dates), "f": sorted(self.frequency),
            "a": sorted([k, h] for k, h in self.anchors), "nm": sorted(self.names), "id": sorted(self.identifiers),
            "w": sorted(self.words), "ct": sorted(self.content), "or": list(self.order),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Features:
        return cls(
            numbers=tuple(data["n"]), quantities=frozenset(data["q"]), units=frozenset(data["u"]),
            negated=bool(data["neg"]), opposites=frozenset(data["o"]), comparison=frozenset(data["c"]),
            particles=frozenset((h, p) for h, p in data["p"]), negated_stems=frozenset(data["ns"]),
            dates=frozenset(data["d"]), frequency=frozenset(data["f"]),
            anchors=frozenset((k, h) for k, h in data["a"]), names=frozenset(data["nm"]),
            identifiers=frozenset(data["id"]), words=frozenset(data["w"]), content=frozenset(data["ct"]), order=tuple(data.get("or", ())),
        )


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


# --- reading a text ---------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""(?P<code>`[^`]+`)
    |(?P<quoted>"[^"]+"|“[^”]+”|(?<![\w'])'[^'\n]{2,}'(?![\w']))
    |(?P<flag>(?<![\w-])--?[A-Za-z][\w-]*)
    |(?P<rate>(?i:\b(?:km/h|m/s|kb/s|mb/s|gb/s|kbit/s|mbit/s|gbit/s)\b))
    |(?P<deg>[°º]\s?[CFcf]\b)
    |(?P<time>\b\d{1,2}:\d{2}(?::\d{2})?\b)
    |(?P<num>\d+(?:[.,]\d+)*)
    |(?P<word>[^\W\d_](?:[\w'.-]*\w)?)
    |(?P<sym>[$€£¥₹%°º^/+*=<>])
    |(?P<stop>[.!?;:]\s|[.!?;:]$|\n)
    """,
    re.X,
)
_ORDINAL_SUFFIX = {"st", "nd", "rd", "th"}
_OPPOSITE_OF: dict[str, list[str]] = {}
for _group, _classes in V.OPPOSITES.items():
    for _i, _words in enumerate(_classes):
        for _w in _words:
            _OPPOSITE_OF.setdefault(_w, []).append(f"{_group}:{_i}")
_IRREGULAR_COMPARISON = {"better", "best", "worse", "worst", "elder", "eldest", "further", "furthest",
                         "farther", "farthest", "lesser"}


@dataclass(slots=True)
class _Tok:
    kind: str  # word, num, sym, code, quoted, flag, rate, deg, time, stop
    text: str
    start: int
    end: int

    @property
    def low(self) -> str:
        return self.text.lower()


def tokens(text: str) -> list[_Tok]:
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    out = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or "sym"
        out.append(_Tok(kind, m.group(kind).strip(), m.start(), m.end()))
    return out


def stem(word: str) -> str:
    """A crude, consistent stem: both texts go through the same one, so only agreement matters."""
    w = word.lower()
    if w.endswith("'s"):
        w = w[:-2]
    w = V.SYNONYMS.get(w, w)
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("es", "e"), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3 and not w.endswith("ss"):
            w = w[: -len(suffix)] + keep
            break
    return V.SYNONYMS.get(w, w)


def _canonical_number(raw: str) -> str:
    if "," in raw:
        head, *groups = raw.split(",")
        raw = head + "".join(groups) if all(len(g) == 3 for g in groups) else raw.replace(",", " ")
    try:
        return str(Decimal(raw).normalize()) if raw.count(".") <= 1 else raw
    except InvalidOperation:
        return raw


def _opposites_of(word: str) -> list[str]:
    for candidate in (word, word[:-1] if word.endswith("s") else "", word[:-2] if word.endswith("es") else ""):
        if candidate and candidate in _OPPOSITE_OF:
            return _OPPOSITE_OF[candidate]
    return []


def _is_comparison(word: str) -> bool:
    return word in _IRREGULAR_COMPARISON or (word.endswith(("er", "est")) and word in _OPPOSITE_OF)


class _Reader:
    """One pass over a text's tokens, filling the feature sets."""

    def __init__(self, text: str) -> None:
        self.toks = tokens(text)
        self.numbers: list[str] = []
        self.quantities: set[str] = set()
        self.units: set[str] = set()
        self.negated = False
        self.opposites: set[str] = set()
        self.comparison: set[str] = set()
        self.particles: set[tuple[int, str]] = set()
        self.negated_stems: set[int] = set()
        self.dates: set[str] = set()
        self.frequency: set[str] = set()
        self.anchors: set[tuple[str, int]] = set()
        self.names: set[int] = set()
        self.identifiers: set[int] = set()
        self.words: set[int] = set()
        self.content: set[int] = set()
        self.order: list[int] = []  # content words in the order they first appear
        self.consumed: set[int] = set()  # token indexes already read as part of something else

    # -- helpers --
    def word_at(self, i: int) -> str | None:
        return self.toks[i].low if 0 <= i < len(self.toks) and self.toks[i].kind == "word" else None

    def glued(self, i: int) -> bool:
        return 0 < i < len(self.toks) and self.toks[i - 1].end == self.toks[i].start

    def sentence_start(self, i: int) -> bool:
        return i == 0 or self.toks[i - 1].kind == "stop" or self.toks[i - 1].text in {'"', "(", "-"}

    def unit_at(self, i: int, after_number: bool) -> tuple[str, int] | None:
        """The unit starting at token i and how many tokens it spans."""
        if not 0 <= i < len(self.toks):
            return None
        tok = self.toks[i]
        low = tok.low
        if tok.kind == "deg":
            return ("celsius" if low[-1] == "c" else "fahrenheit"), 1
        if tok.kind == "rate":
            return V.UNITS.get(low, low), 1
        if tok.kind not in {"word", "sym"}:
            return None
        if low in V.AREA_PREFIXES:
            nxt = self.unit_at(i + 1, True)
            if nxt is not None:
                return f"{V.AREA_PREFIXES[low]}_{nxt[0]}", 1 + nxt[1]
            return None
        if low in {"degree", "degrees"} and (following := self.word_at(i + 1)) in {"celsius", "fahrenheit", "c", "f",
                                                                                    "centigrade", "kelvin"}:
            return {"c": "celsius", "f": "fahrenheit", "centigrade": "celsius"}.get(following, following), 2
        if low == "per" and self.word_at(i + 1) == "cent":
            return "percent", 2
        if after_number and self.glued(i) and low in V.UNITS_AFTER_NUMBER_ONLY and low != "k":
            return V.UNITS_AFTER_NUMBER_ONLY[low], 1
        name = V.UNITS.get(low)
        if name is None:
            return None
        if low in V.UNIT_ONLY_AFTER_NUMBER and not after_number:
            return None
        return name, 1

    # -- the pass --
    def read(self) -> Features:
        i = 0
        while i < len(self.toks):
            if i in self.consumed:
                i += 1
                continue
            tok = self.toks[i]
            handler = getattr(self, f"_{tok.kind}", None)
            i = handler(i) if handler else i + 1
        self._anchors()
        return Features(
            numbers=tuple(self.numbers), quantities=frozenset(self.quantities), units=frozenset(self.units),
            negated=self.negated, opposites=frozenset(self.opposites), comparison=frozenset(self.comparison),
            particles=frozenset(self.particles), negated_stems=frozenset(self.negated_stems - self.content),
            dates=frozenset(self.dates), frequency=frozenset(self.frequency), anchors=frozenset(self.anchors),
            names=frozenset(self.names), identifiers=frozenset(self.identifiers), words=frozenset(self.words),
            content=frozenset(self.content), order=tuple(self.order),
        )

    def _number(self, i: int, value: str, span: int) -> int:
        """A number spanning tokens i..i+span-1: read the unit after it, if any."""
        j = i + span
        if self.word_at(j) in _ORDINAL_SUFFIX and self.glued(j):
            j += 1
        if self.word_at(j) in V.SCALE_WORDS:  # "5 million"
            value = _canonical_number(str(Decimal(value) * V.SCALE_WORDS[self.word_at(j) or ""]))
            j += 1
        elif self.word_at(j) == "k" and self.glued(j):
            value = _canonical_number(str(Decimal(value) * 1000))
            j += 1
        currency_before = i > 0 and self.toks[i - 1].kind == "sym" and self.toks[i - 1].low in V.UNITS
        unit = self.unit_at(j, after_number=True)
        if unit is None and currency_before:
            unit = (V.UNITS[self.toks[i - 1].low], 0)
        if unit is not None:
            name, width = unit
            self.units.add(name)
            self.quantities.add(f"{value} {name}")
            self.consumed.update(range(j, j + width))
            if value == "1":  # "1 lb" = "one pound" = "a pound"
                return j + width
            j += width
        self.numbers.append(value)
        return j

    def _num(self, i: int) -> int:
        return self._number(i, _canonical_number(self.toks[i].text), 1)

    def _time(self, i: int) -> int:
        return self._number(i, self.toks[i].text, 1)

    def _sym(self, i: int) -> int:
        low = self.toks[i].low
        if low in V.UNITS and not (i + 1 < len(self.toks) and self.toks[i + 1].kind == "num"):
            self.units.add(V.UNITS[low])
        if low in _OPPOSITE_OF:  # "+", if ever listed
            self.opposites.update(_OPPOSITE_OF[low])
        return i + 1

    def _deg(self, i: int) -> int:
        unit = self.unit_at(i, after_number=False)
        if unit:
            self.units.add(unit[0])
        return i + 1

    _rate = _deg

    def _code(self, i: int) -> int:
        body = self.toks[i].text.strip("`").strip()
        self.identifiers.add(word_hash(body.lower()))
        for sub in tokens(body):
            if sub.kind in {"word", "flag"}:
                self.words.add(word_hash(sub.low))
        return i + 1

    def _flag(self, i: int) -> int:
        self.identifiers.add(word_hash(self.toks[i].low))
        return i + 1

    def _quoted(self, i: int) -> int:
        # The words inside count like any others (the quotes are often just emphasis).
        for sub in _Reader(self.toks[i].text.strip("\"“”'")).read_words():
            self.words.add(sub)
        inner = _Reader(self.toks[i].text.strip("\"“”'")).read()
        self.content |= inner.content
        self.names |= inner.names
        self.numbers.extend(inner.numbers)
        self.negated |= inner.negated
        return i + 1

    def read_words(self) -> set[int]:
        return {word_hash(t.low) for t in self.toks if t.kind == "word"}

    def _word(self, i: int) -> int:
        tok = self.toks[i]
        low = tok.low
        if low.endswith("'s"):
            low = low[:-2]
        self.words.add(word_hash(low))
        if "-" in low and not any(ch.isdigit() for ch in low):  # "two-factor", "year-end", "thread-safe"
            for part in low.split("-"):
                if part:
                    self.words.add(word_hash(part))
            return self._parts(i, low.split("-"))
        return self._one_word(i, tok.text, low)

    def _parts(self, i: int, parts: list[str]) -> int:
        for part in parts:
            if part:
                self._plain(i, part, part, allow_number=True)
        return i + 1

    def _one_word(self, i: int, text: str, low: str) -> int:
        # numbers written as words: "fifteen", "twenty five", "two hundred", "10th"
        span, value = self._number_words(i)
        if span:
            return self._number(i, value, span)
        if low in V.ORDINAL_WORDS and not (low == "second" and i > 0 and self.toks[i - 1].kind == "num"):
            self.numbers.append(str(V.ORDINAL_WORDS[low]))
            self._opposite(low)
            return i + 1
        if low in V.ROMAN and text.isupper() and i > 0 and self.toks[i - 1].text[:1].isupper():
            self.numbers.append(str(V.ROMAN[low]))
            return i + 1
        # a unit on its own: "in euros", "how many grams"
        if low in V.COUNTS_AS_NUMBER and (unit := self.unit_at(i + 1, after_number=True)):
            if low in {"a", "an", "one"} or unit[0] in {"second", "minute", "hour", "day", "week", "month", "year",
                                                         "night"}:
                self.units.add(unit[0])
                self.quantities.add(f"1 {unit[0]}")
                self.consumed.update(range(i + 1, i + 1 + unit[1]))
                return i + 1 + unit[1]
        if (unit := self.unit_at(i, after_number=False)) is not None:
            if not (unit[0] in {"day", "week", "month", "year", "night"} and self._relative_date(i)):
                self.units.add(unit[0])  # compared as a unit, not as a content word
                self.consumed.update(range(i, i + unit[1]))
                return i + unit[1]
        if self._date(i, text, low):
            return i + 1
        self._plain(i, text, low, allow_number=False)
        return i + 1

    def _number_words(self, i: int) -> tuple[int, str]:
        """How many tokens from i spell one number in words, and its value."""
        total, current, j, seen = 0, 0, i, False
        while (w := self.word_at(j)) is not None:
            parts = w.split("-")
            if not all(p in V.UNITS_WORDS or p in V.TENS_WORDS or p in V.SCALE_WORDS or p in V.OTHER_NUMBER_WORDS
                       for p in parts):
                if w == "and" and seen and self.word_at(j + 1) in {**V.UNITS_WORDS, **V.TENS_WORDS}:
                    j += 1
                    continue
                break
            if w == "one" and not seen and not self._one_is_a_number(j):
                break
            for p in parts:
                if p in V.SCALE_WORDS:
                    current = max(current, 1) * V.SCALE_WORDS[p]
                    if V.SCALE_WORDS[p] >= 1000:
                        total, current = total + current, 0
                else:
                    current += V.UNITS_WORDS.get(p, 0) + V.TENS_WORDS.get(p, 0) + V.OTHER_NUMBER_WORDS.get(p, 0)
            seen = True
            j += 1
        if not seen:
            return 0, ""
        return j - i, str(total + current)

    def _one_is_a_number(self, j: int) -> bool:
        before = self.word_at(j - 1)
        after = self.word_at(j + 1)
        return before not in V.ONE_NOT_A_NUMBER_AFTER and after not in V.ONE_NOT_A_NUMBER_BEFORE

    def _relative_date(self, i: int) -> bool:
        return self.word_at(i - 1) in V.RELATIVE

    def _date(self, i: int, text: str, low: str) -> bool:
        if low in V.RELATIVE and (period := self.word_at(i + 1)) is not None:
            period_stem = period[:-1] if period.endswith("s") else period
            if period_stem in V.PERIODS:
                self.dates.add(f"{low}:{period_stem}")
                self.consumed.add(i + 1)
                return True
        near_number = any(0 <= k < len(self.toks) and self.toks[k].kind == "num" for k in (i - 1, i + 1))
        capitalised = text[:1].isupper() and not self.sentence_start(i)
        if low in V.MONTHS and (near_number or capitalised or low not in V.MONTHS_ONLY_NEXT_TO_NUMBER):
            self.dates.add(f"month:{V.MONTHS[low]}")
            return True
        day = low[:-1] if low.endswith("s") and low[:-1] in V.WEEKDAYS else low
        if day in V.WEEKDAYS and (text[:1].isupper() or day not in V.WEEKDAYS_ONLY_CAPITALISED):
            self.dates.add(f"weekday:{V.WEEKDAYS[day]}")
            return True
        if low in V.DAY_WORDS:
            self.dates.add(f"day:{low.rstrip('s')}")
            return True
        if low in V.SEASONS or (low == "fall" and self.word_at(i - 1) == "the"):
            self.dates.add(f"season:{'autumn' if low == 'fall' else low}")
            return True
        if low in V.FREQUENCY:
            self.frequency.add(V.FREQUENCY[low])
            return True
        return False

    def _opposite(self, low: str) -> None:
        found = _opposites_of(low)
        self.opposites.update(found)
        if found and _is_comparison(low):
            self.comparison.update(found)

    def _plain(self, i: int, text: str, low: str, allow_number: bool) -> None:
        """An ordinary word: negation, opposites, particles, names, identifiers, content."""
        if allow_number and (low in V.UNITS_WORDS or low in V.TENS_WORDS):
            self.numbers.append(str(V.UNITS_WORDS.get(low, V.TENS_WORDS.get(low))))
            return
        if low in V.NEGATIONS or low.endswith("n't"):
            self.negated = True
            return
        if low in V.RELATIVE and self.word_at(i + 1) in V.PERIODS:
            return
        self._opposite(low)
        prev = self.word_at(i - 1)
        if low in _OPPOSITE_PARTICLE and prev is not None:
            self.particles.add((word_hash(stem(prev)), low))
        if self._code_like(text):
            self.identifiers.add(word_hash(low))
            self.names.add(word_hash(low))
        elif self._name_like(i, text):
            self.names.add(word_hash(low))
        if low in V.STOPWORDS or len(low) < 2 and not text.isupper():
            return
        stemmed = stem(low)
        h = word_hash(stemmed)
        if h not in self.content:
            self.order.append(h)
        self.content.add(h)
        for prefix in V.NEGATING_PREFIXES:
            if low.startswith(prefix) and len(low) - len(prefix) >= 4:
                self.negated_stems.add(word_hash(stem(low[len(prefix):])))

    @staticmethod
    def _code_like(text: str) -> bool:
        """snake_case, dotted.names, camelCase/PascalCase with an inner capital, words with digits."""
        if "_" in text or ("." in text.strip(".") and not text.isupper()):
            return True
        if any(ch.isdigit() for ch in text) and any(ch.isalpha() for ch in text):
            return True
        return any(ch.isupper() for ch in text[1:]) and any(ch.islower() for ch in text) and not text.isupper()

    def _name_like(self, i: int, text: str) -> bool:
        if len(text) < 2 or text.lower() in V.NEGATIONS:
            return False
        if text.isupper():  # SQL, CEO, HTTP (not "I", "A")
            return True
        if not text[:1].isupper():
            return False
        if self.sentence_start(i):
            return False  # "Paris is ..." still counts as a content word for the one-swap rule
        return text.lower() not in V.STOPWORDS

    def _anchors(self) -> None:
        """The word after 'than', after 'from' and after a 'to'/'into' that follows 'from'."""
        seen_from = False
        for i, tok in enumerate(self.toks):
            low = tok.low if tok.kind == "word" else ""
            kind = {"than": "than", "from": "from"}.get(low)
            if low in {"to", "into"} and seen_from:
                kind = "to"
            if low == "from":
                seen_from = True
            if kind is None:
                continue
            for j in range(i + 1, min(i + 4, len(self.toks))):
                nxt = self.toks[j]
                if nxt.kind == "stop":
                    break
                if nxt.kind == "word" and nxt.low not in V.STOPWORDS:
                    self.anchors.add((kind, word_hash(stem(nxt.low))))
                    break
                if nxt.kind == "num":
                    self.anchors.add((kind, word_hash(nxt.text)))
                    break


def features(text: str) -> Features:
    return _Reader(text).read()
