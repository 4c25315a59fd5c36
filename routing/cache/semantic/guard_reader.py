"""Reading a question into the look-alike guard's features (guard.py): one pass over its
tokens (guard_tokens.py) that fills numbers, units, negation, opposites, dates, names,
identifiers and content words (guard_features.py)."""

from __future__ import annotations

from decimal import Decimal

from . import vocabulary as V
from .guard_features import Features, word_hash
from .guard_quantities import canonical_number, number_words, unit_at
from .guard_tokens import glued, sentence_start, stem, tokens, word_at

_ORDINAL_SUFFIX = {"st", "nd", "rd", "th"}
_OPPOSITE_OF: dict[str, list[str]] = {}
for _group, _classes in V.OPPOSITES.items():
    for _i, _words in enumerate(_classes):
        for _w in _words:
            _OPPOSITE_OF.setdefault(_w, []).append(f"{_group}:{_i}")
_IRREGULAR_COMPARISON = {"better", "best", "worse", "worst", "elder", "eldest", "further", "furthest",
                         "farther", "farthest", "lesser"}
PARTICLES = frozenset(p for pair in V.PARTICLE_OPPOSITES for p in pair)  # "on", "off", "in" ...


def features(text: str) -> Features:
    return _Reader(text).read()


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

    def word_at(self, i: int) -> str | None:
        return word_at(self.toks, i)

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
        if self.word_at(j) in _ORDINAL_SUFFIX and glued(self.toks, j):
            j += 1
        if self.word_at(j) in V.SCALE_WORDS:  # "5 million"
            value = canonical_number(str(Decimal(value) * V.SCALE_WORDS[self.word_at(j) or ""]))
            j += 1
        elif self.word_at(j) == "k" and glued(self.toks, j):
            value = canonical_number(str(Decimal(value) * 1000))
            j += 1
        currency_before = i > 0 and self.toks[i - 1].kind == "sym" and self.toks[i - 1].low in V.UNITS
        unit = unit_at(self.toks, j, after_number=True)
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
        return self._number(i, canonical_number(self.toks[i].text), 1)

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
        unit = unit_at(self.toks, i, after_number=False)
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
        span, value = number_words(self.toks, i)
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
        if low in V.COUNTS_AS_NUMBER and (unit := unit_at(self.toks, i + 1, after_number=True)):
            if low in {"a", "an", "one"} or unit[0] in {"second", "minute", "hour", "day", "week", "month", "year",
                                                         "night"}:
                self.units.add(unit[0])
                self.quantities.add(f"1 {unit[0]}")
                self.consumed.update(range(i + 1, i + 1 + unit[1]))
                return i + 1 + unit[1]
        if (unit := unit_at(self.toks, i, after_number=False)) is not None:
            if not (unit[0] in {"day", "week", "month", "year", "night"} and self._relative_date(i)):
                self.units.add(unit[0])  # compared as a unit, not as a content word
                self.consumed.update(range(i, i + unit[1]))
                return i + unit[1]
        if self._date(i, text, low):
            return i + 1
        self._plain(i, text, low, allow_number=False)
        return i + 1

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
        capitalised = text[:1].isupper() and not sentence_start(self.toks, i)
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
        if low in PARTICLES and prev is not None:
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
        if sentence_start(self.toks, i):
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
