"""Numbers and units as the look-alike guard reads them (guard.py): "1,000" = 1000,
"fifteen" = 15, "two hundred" = 200, "5 km" = "5 kilometres", "square feet", "°C"; pure
functions over the token list (guard_tokens.py)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from . import vocabulary as V
from .guard_tokens import Tok, glued, word_at


def canonical_number(raw: str) -> str:
    """"1,000" = "1000", "2.0" = "2"; "3.10" stays itself (a version: not "3.1")."""
    if "," in raw:
        head, *groups = raw.split(",")
        raw = head + "".join(groups) if all(len(g) == 3 for g in groups) else raw.replace(",", " ")
    if raw.count(".") == 1 and len(raw.split(".")[1]) >= 2 and raw.endswith("0"):
        return raw
    try:
        return format(Decimal(raw).normalize(), "f") if raw.count(".") <= 1 else raw  # "10", not "1E+1"
    except InvalidOperation:
        return raw


def unit_at(toks: list[Tok], i: int, after_number: bool) -> tuple[str, int] | None:
    """The unit starting at token i and how many tokens it spans."""
    if not 0 <= i < len(toks):
        return None
    tok = toks[i]
    low = tok.low
    if tok.kind == "deg":
        return ("celsius" if low[-1] == "c" else "fahrenheit"), 1
    if tok.kind == "rate":
        if "B/" in tok.text:  # "MB/s" is megabytes a second, "Mb/s" megabits (case is all that tells)
            return f"{low.split('/')[0]}_bytes_per_second", 1
        return V.UNITS.get(low, low), 1
    if tok.kind not in {"word", "sym"}:
        return None
    if low in V.AREA_PREFIXES:
        nxt = unit_at(toks, i + 1, True)
        if nxt is not None:
            return f"{V.AREA_PREFIXES[low]}_{nxt[0]}", 1 + nxt[1]
        return None
    if low in {"degree", "degrees"} and (following := word_at(toks, i + 1)) in {"celsius", "fahrenheit", "c", "f",
                                                                                "centigrade", "kelvin"}:
        return {"c": "celsius", "f": "fahrenheit", "centigrade": "celsius"}.get(following, following), 2
    if low == "per" and word_at(toks, i + 1) == "cent":
        return "percent", 2
    if after_number and glued(toks, i) and low in V.UNITS_AFTER_NUMBER_ONLY and low != "k":
        return V.UNITS_AFTER_NUMBER_ONLY[low], 1
    name = V.UNITS.get(low)
    if name is None:
        return None
    if low in V.UNIT_ONLY_AFTER_NUMBER and not after_number:
        return None
    return name, 1


def number_words(toks: list[Tok], i: int) -> tuple[int, str]:
    """How many tokens from i spell one number in words, and its value (0, "" if none)."""
    total, current, j, seen = 0, 0, i, False
    while (w := word_at(toks, j)) is not None:
        parts = w.split("-")
        if not all(p in V.UNITS_WORDS or p in V.TENS_WORDS or p in V.SCALE_WORDS or p in V.OTHER_NUMBER_WORDS
                   for p in parts):
            if w == "and" and seen and word_at(toks, j + 1) in {**V.UNITS_WORDS, **V.TENS_WORDS}:
                j += 1
                continue
            break
        if w == "one" and not seen and not _one_is_a_number(toks, j):
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


def _one_is_a_number(toks: list[Tok], j: int) -> bool:
    before = word_at(toks, j - 1)
    after = word_at(toks, j + 1)
    if any(word_at(toks, k) == "another" for k in range(j + 2, j + 6)):
        return False  # "from one server to another"
    return before not in V.ONE_NOT_A_NUMBER_AFTER and after not in V.ONE_NOT_A_NUMBER_BEFORE
