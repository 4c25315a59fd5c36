"""Reading a question into the look-alike guard's features (guard.py): one pass over its
tokens (guard_tokens.py) that fills numbers, units, negation, opposites, dates, names,
identifiers and content words (guard_features.py); then where those words stand
(guard_structure.py)."""

from __future__ import annotations

import re
from decimal import Decimal

from . import vocabulary as V
from .guard_features import Features, word_hash
from .guard_function import senses
from .guard_quantities import canonical_number, number_words, unit_at
from .guard_structure import anchors, compared, conditions, modifiers, qualifiers, relations
from .guard_tokens import glued, normalize, sentence_of, sentence_start, stem, tokens, word_at

_ORDINAL_SUFFIX = {"st", "nd", "rd", "th"}
_OPPOSITE_OF: dict[str, list[str]] = {}
for _group, _classes in V.OPPOSITES.items():
    for _i, _words in enumerate(_classes):
        for _w in _words:
            _OPPOSITE_OF.setdefault(_w, []).append(f"{_group}:{_i}")
_IRREGULAR_COMPARISON = {"better", "best", "worse", "worst", "elder", "eldest", "further", "furthest",
                         "farther", "farthest", "lesser"}
PARTICLES = frozenset(p for pair in V.PARTICLE_OPPOSITES for p in pair)  # "on", "off", "in" ...
_PERIODS = frozenset({"hour", "day", "night", "week", "month", "year"})
_MINUS = frozenset({"-", "\u2212"})
_LETTER_NAMED = frozenset("""
type vitamin plan grade class option section part group category model level tier size exit gate terminal
platform row block building team side version route step phase stage item question problem exercise
hepatitis channel box field column letter note key series
""".split())
_SELF_WORDS = frozenset({"i", "me", "we", "us", "myself", "ourselves"})
_SELF = word_hash("<the asker>")


_EXPR = re.compile(r"[\[\](){}:+*/×÷^=<>]|(?<=[\d\[(:])-|-(?=[\d\[(])")


def _expression(text: str) -> str:
    """The brackets and operators of a formula or an index in order ("(6 + 4) × 2" -> "(+)×",
    "[::-1]" -> "[::-]"): two texts that both have some must have the same."""
    return "".join(_EXPR.findall(text))


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
        self.text = normalize(text)
        self.toks = tokens(self.text)
        self.numbers: list[str] = []
        self.quantities: set[str] = set()
        self.units: set[str] = set()
        self.negated = False
        self.negations = 0
        self.affixes: set[str] = set()  # "<hash of the rest>:<affix>": "prenatal" -> (natal, pre)
        self.possessions: set[tuple[int, int]] = set()  # ("wife", "brother") of "my wife's brother"
        self.quotes: set[tuple[int, int]] = set()  # each quoted text: (its words sorted, in order), hashed  # how many: "can't be frozen without blanching" is two, and not "without blanching"
        self.opposites: set[str] = set()
        self.comparison: set[str] = set()
        self.particles: set[tuple[int, str]] = set()
        self.negated_stems: set[int] = set()
        self.dates: set[str] = set()
        self.frequency: set[str] = set()
        self.names: set[int] = set()
        self.identifiers: set[int] = set()
        self.words: set[int] = set()
        self.content: set[int] = set()
        self.order: list[int] = []  # content words in the order they first appear
        self.content_at: list[tuple[int, int]] = []  # (token index, hash) of each content word read
        self.units_at: list[tuple[int, int]] = []  # (token index, hash) of each bare unit ("kilometers to miles")
        self.reversed_order = False
        self.negative_next = False  # "minus" / "negative" was just read before a number
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
        return Features(
            numbers=tuple(self.numbers), quantities=frozenset(self.quantities), units=frozenset(self.units),
            negated=self.negated, opposites=frozenset(self.opposites), comparison=frozenset(self.comparison),
            particles=frozenset(self.particles), negated_stems=frozenset(self.negated_stems - self.content),
            dates=frozenset(self.dates), frequency=frozenset(self.frequency), anchors=frozenset(anchors(self.toks)),
            names=frozenset(self.names), identifiers=frozenset(self.identifiers), words=frozenset(self.words),
            content=frozenset(self.content), order=tuple(self.order),
            # units have sides too: "convert kilometers to miles" is not "miles to kilometers"
            relations=frozenset(relations(self.toks, sorted(self.content_at + self.units_at))),
            qualifiers=frozenset(qualifiers(self.toks, self.content_at)), reversed_order=self.reversed_order,
            modifiers=frozenset(modifiers(self.toks, self.content_at)), function=senses(self.toks),
            apart=frozenset(self._apart()), negations=self.negations, affixes=frozenset(self.affixes),
            possessions=frozenset(self.possessions), conditions=frozenset(conditions(self.toks, self.content_at)), quotes=frozenset(self.quotes), expression=_expression(self.text),
            compared=frozenset(compared(self.toks)),
        )

    def _possession(self, i: int, owner: str) -> None:
        """ "my wife's brother": owner wife, owned the next content word (brother)."""
        for j in range(i + 1, min(i + 4, len(self.toks))):
            nxt = self.toks[j]
            if nxt.kind != "word":
                return
            if nxt.low not in V.STOPWORDS:
                self.possessions.add((word_hash(owner), word_hash(stem(nxt.low))))
                return

    def _affix(self, low: str) -> None:
        for prefix in V.OPPOSING_PREFIXES:
            if low.startswith(prefix) and len(low) - len(prefix) >= 4:
                self.affixes.add(f"{word_hash(stem(low[len(prefix):]))}:{prefix}")
        for suffix in V.OPPOSING_SUFFIXES:
            if low.endswith(suffix) and len(low) - len(suffix) >= 4:
                self.affixes.add(f"{word_hash(low[:-len(suffix)])}:-{suffix}")

    def _apart(self) -> set[tuple[int, int]]:
        """Neighbouring content words with a clause between them ("in *Tokyo* when it's noon in
        *London*"): two such trading places ask another question, while neighbours side by side
        trade places in a rewording ("Japan's currency" / "the currency used in Japan")."""
        found = set()
        for (i, x), (j, y) in zip(self.content_at, self.content_at[1:]):
            if j - i >= 3 and x != y:
                found.add((min(x, y), max(x, y)))
        return found

    def _number(self, i: int, value: str, span: int) -> int:
        """A number spanning tokens i..i+span-1: read the unit after it, if any."""
        j = i + span
        if self.negative_next:
            value, self.negative_next = f"-{value}", False
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
        start = self.toks[i].start
        # "-40" (a sign: after a space or at the start), not "10-20" or "2024-05" (a range, a date)
        if start >= 1 and self.text[start - 1] in _MINUS and (start == 1 or not self.text[start - 2].isalnum()):
            self.negative_next = True
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

    def _lang(self, i: int) -> int:
        """"C++", "C#", "F#": a name and an identifier ("C" and "C++" are two languages)."""
        h = word_hash(self.toks[i].low)
        self.words.add(h)
        self.names.add(h)
        self.identifiers.add(h)
        self._content(i, h)
        return i + 1

    def _flag(self, i: int) -> int:
        self.identifiers.add(word_hash(self.toks[i].low))
        return i + 1

    def _quoted(self, i: int) -> int:
        # The words inside count like any others (the quotes are often just emphasis), and the
        # quoted text as a whole is compared too ("'un grand homme'" is not "'un homme grand'").
        words = self.toks[i].text.strip("\"“”'").lower().split()
        self.quotes.add((word_hash(" ".join(sorted(words))), word_hash(" ".join(words))))
        for sub in _Reader(self.toks[i].text.strip("\"“”'")).read_words():
            self.words.add(sub)
        inner = _Reader(self.toks[i].text.strip("\"“”'")).read()
        self.content |= inner.content
        self.names |= inner.names
        self.numbers.extend(inner.numbers)
        self.negated |= inner.negated
        self.negations += inner.negations
        return i + 1

    def read_words(self) -> set[int]:
        return {word_hash(t.low) for t in self.toks if t.kind == "word"}

    def _word(self, i: int) -> int:
        tok = self.toks[i]
        low = tok.low
        if tok.low.endswith("'s") and len(tok.low) > 3:
            self._possession(i, stem(tok.low[:-2]))
        if low in _SELF_WORDS and _SELF not in self.order:
            self.order.append(_SELF)  # where the asker stands: "can my employer sue me" / "can I sue my employer"
        if low.endswith("'s"):
            low = low[:-2]
        self.words.add(word_hash(low))
        if "-" in low and tok.text.isupper() and len(low.split("-")) >= 3:
            self.identifiers.add(word_hash(low))  # a format string: "YYYY-MM-DD" is not "DD-MM-YYYY"
        if "-" in low and not any(ch.isdigit() for ch in low):  # "two-factor", "year-end", "thread-safe"
            parts = low.split("-")
            for part in parts:
                if part:
                    self.words.add(word_hash(part))
            self._opposite(low)  # "front-end", "lower-case"
            if len(parts) == 2 and parts[1] == "free" and parts[0] not in V.STOPWORDS:
                self.negated = True  # "sugar-free snacks": snacks without sugar
                self.negations += 1
                parts = parts[:1]
            elif len(parts) == 2 and parts[0] in V.HYPHEN_NEGATIONS and len(parts[1]) >= 3:
                self.negated = True  # "non-toxic plants": plants that are not toxic
                self.negations += 1
                parts = parts[1:]
            return self._parts(i, parts)
        return self._one_word(i, tok.text, low)

    def _parts(self, i: int, parts: list[str]) -> int:
        for part in parts:
            if part:
                self._plain(i, part, part, allow_number=True)
        return i + 1

    def _one_word(self, i: int, text: str, low: str) -> int:
        # "minus 40", "negative five": a sign, not the operation of "10 minus 3"
        if (low in {"minus", "negative"} and not (i > 0 and self.toks[i - 1].kind == "num")
                and not number_words(self.toks, i - 1)[0]
                and (i + 1 < len(self.toks) and self.toks[i + 1].kind == "num" or number_words(self.toks, i + 1)[0])):
            self.negative_next = True
            return i + 1
        # numbers written as words: "fifteen", "twenty five", "two hundred", "10th"
        span, value = number_words(self.toks, i)
        if span:
            return self._number(i, value, span)
        if low in V.FRACTION_WORDS:
            self.numbers.append(V.FRACTION_WORDS[low])
            return i + 1
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
                if low in {"a", "an", "per", "each", "every"} and unit[0] in _PERIODS:
                    self._rate_of_time(i, unit[0])  # "per day" = "a day" = "daily" (as content words)
                return i + 1 + unit[1]
        if (unit := unit_at(self.toks, i, after_number=False)) is not None:
            if not (unit[0] in {"day", "week", "month", "year", "night"} and self._relative_date(i)):
                self.units.add(unit[0])  # compared as a unit, not as a content word
                self.units_at.append((i, word_hash(f"unit:{unit[0]}")))
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
            self._rate_of_time(i, V.FREQUENCY[low])  # no unit: "annual leave" is not a year of leave
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
            self.negations += 1
            return
        if low in V.RELATIVE and self.word_at(i + 1) in V.PERIODS:
            return
        prev = self.word_at(i - 1)
        if prev == "one" and low in {"more", "last"}:
            return  # "Sorry, one more:", "one last question": politeness, not an amount or an order
        self._opposite(low)
        if low in V.REVERSED_ORDER or (low in {"reverse", "reversed"}
                                       and (prev == "in" or self.word_at(i + 1) == "order")):
            self.reversed_order = True
        if low in PARTICLES and prev is not None:
            self.particles.add((word_hash(stem(prev)), low))
            if prev in V.RISE_FALL_VERBS and low in V.RISE_FALL_PARTICLES:
                self.opposites.add(V.RISE_FALL_PARTICLES[low])
        if self._code_like(text):
            self.identifiers.add(word_hash(low))
            self.names.add(word_hash(low))
        elif self._name_like(i, text):
            self.names.add(word_hash(low))
        if len(text) == 1 and text.isupper() and prev in _LETTER_NAMED:
            self.names.add(word_hash(low))  # "blood type *A*", "plan *B*", "vitamin *A*": a name, not "a"
            self._content(i, word_hash(f"letter:{low}"))
            return
        if low == "mean" and prev in V.MEAN_AS_NOUN_AFTER:
            pass  # the statistic, a content word
        elif low in V.KIND_WORDS and prev in V.DETERMINERS:
            pass  # "a used car"
        elif low in V.STOPWORDS or len(low) < 2 and not text.isupper():
            return
        elif low in V.COMMAND_WORDS and self._request(i):
            return
        elif low in V.MANNER_FILLERS and self.word_at(i + 1) in V.MANNER_NOUNS:
            return  # "the best way to": "how to"
        self._content(i, word_hash(stem(low)))
        self._affix(low)
        for prefix in V.NEGATING_PREFIXES:
            if low.startswith(prefix) and len(low) - len(prefix) >= 4:
                self.negated_stems.add(word_hash(stem(low[len(prefix):])))

    def _rate_of_time(self, i: int, period: str) -> None:
        """"daily", "per day", "every day": a frequency, and a content word ("annual leave" is
        not "unpaid leave")."""
        self.frequency.add(period)
        self._content(i, word_hash(f"every {period}"))

    def _content(self, i: int, h: int) -> None:
        if h not in self.content:
            self.order.append(h)
        self.content.add(h)
        self.content_at.append((i, h))

    def _request(self, i: int) -> bool:
        """Word i opens a request: only stop words before it in its sentence, none opening a question."""
        before = [self.toks[k] for k in sentence_of(self.toks, i) if k < i and self.toks[k].kind == "word"]
        return all(t.low in V.STOPWORDS and t.low not in V.QUESTION_OPENERS for t in before)

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
