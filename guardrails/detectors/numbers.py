"""The number-shaped entities, found from one scan for runs of digits.

`RUN` finds every stretch of seven or more digits and the separators numbers are written
with, and the two check digits after an IBAN's country code; the entity patterns then
run only on the few characters around each run, so prose with a handful of numbers
("in 2024", "15%", "3 teams") costs one C-level scan. How many digits a run has rules
entities out before their patterns run (an SSN has nine). An IBAN is looked for where a
run follows two capitals: its check digits always start one.

Every pattern here has a bounded length and reads at most two characters after its
match, which is what makes `hold` (the trailing run, at most `MAX_HOLD` characters) safe.
Digits are ASCII digits.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import checksums, context
from .base import Finding
from .network import find_ipv4
from .phones import find_phones
from .tails import trailing_start

# Digits and what joins them: spaces, dots, dashes, slashes, commas, colons, parentheses, "+".
_JOINERS = " ().+/,:-"
# ... or the two check digits of an IBAN after its country code ("LU28 0019 ...", "GB82WEST..."):
# not every IBAN has seven digits in a row.
RUN = re.compile(r"[0-9](?:[0-9 ().+/,:\-]{6,}|(?<=[A-Z]{2}[0-9])[0-9])")
_DIGITS_ONLY = str.maketrans("", "", _JOINERS)
_BACK, _MARGIN = 2, 3  # characters before ("+", "(") and after (boundaries, "-x", ".5") a run its patterns read

# Not preceded by a word, a currency sign, "#" (order and ticket numbers) or part of a
# longer number; not followed by a word, "@" or more digits.
_BEFORE = r"(?<![\w#$€£¥₫+.,/\-])"
_AFTER = r"(?![\w@])(?![.,\-/:]\d)"
CARD = re.compile(
    _BEFORE + r"(?:\d{4}([ \-])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ \-])\d{6}\2\d{4,5}|\d{13,19})" + _AFTER
)
SSN = re.compile(_BEFORE + r"(\d{3})([ \-]?)(\d{2})\2(\d{4})" + _AFTER)
VN_ID = re.compile(
    _BEFORE + r"(?:\d{12}|\d{9}|\d{3}([ .])\d{3}\1\d{3}(?:\1\d{3})?|\d{4} \d{4} \d{4}|\d{6} \d{6})" + _AFTER
)
IBAN_START = re.compile(r"(?<!\w)[A-Z]{2}\d{2}")
_IBAN_BODY = re.compile(r"[A-Z0-9]")
MAX_IBAN = checksums.MAX_IBAN + checksums.MAX_IBAN // 4  # with a space every four

# hold(): the trailing run (digits and separators), or the start of an IBAN.
MAX_HOLD = 80  # a phone piece is at most 17 digits with their separators; cards 23, IBANs 42
_RUN_CHARS = frozenset("0123456789" + _JOINERS)
_TAIL_START = re.compile(r"[0-9+(]")
_IBAN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ")
IBAN_TAIL = re.compile(r"(?<!\w)[A-Z](?:[A-Z](?:\d(?:\d[ A-Z0-9]{0,%d})?)?)?\Z" % MAX_IBAN)


def find_numbers(text: str, entities: frozenset[str]) -> list[Finding]:
    out: list[Finding] = []
    finders = [(least, dots, f) for names, least, dots, f in _FINDERS if names & entities]
    iban = "iban" in entities
    for run in RUN.finditer(text):
        s, e = run.span()
        # Every IBAN's check digits start a run ("DE89 3704 ...", "GB82WEST..."): look
        # for one where a run follows two capitals.
        if iban and s >= 2 and "A" <= text[s - 2] <= "Z" and "A" <= text[s - 1] <= "Z":
            found = _iban_at(text, s - 2)
            if found:
                out.append(found)
        chunk = run.group()
        digits = len(chunk.translate(_DIGITS_ONLY))
        pos, endpos = max(0, s - _BACK), min(len(text), e + _MARGIN)
        for least, dots, finder in finders:
            if digits >= least and (not dots or "." in chunk):
                out.extend(finder(text, pos, endpos))
    return [f for f in out if f.entity in entities]


def hold(text: str, iban: bool) -> int:
    """Characters at the end of `text` that may still become (part of) a number entity."""
    n = len(text)
    m = _TAIL_START.search(text, trailing_start(text, _RUN_CHARS, MAX_HOLD))
    held = n - m.start() if m else 0
    if iban:
        i = trailing_start(text, _IBAN_CHARS, MAX_IBAN + 4)
        if i < n:
            m = IBAN_TAIL.search(text, i)
            held = max(held, n - m.start() if m else 0)
    return held


def _cards(text: str, pos: int, endpos: int) -> list[Finding]:
    out = []
    for m in CARD.finditer(text, pos, endpos):
        digits = m.group().translate(_DIGITS_ONLY)
        if checksums.card_ok(digits) and context.nearest(text, m.start()) != "other":
            out.append(Finding(m.start(), m.end(), "credit_card"))
    return out


def _ssns(text: str, pos: int, endpos: int) -> list[Finding]:
    out = []
    for m in SSN.finditer(text, pos, endpos):
        if not checksums.ssn_ok(m.group(1), m.group(3), m.group(4)):
            continue
        near = context.nearest(text, m.start())
        # "123-45-6789" is an SSN unless the words say otherwise; 9 bare digits only after "SSN".
        if near == "ssn" or (m.group(2) == "-" and near not in ("other", "vn_id")):
            out.append(Finding(m.start(), m.end(), "us_ssn"))
    return out


def _vn_ids(text: str, pos: int, endpos: int) -> list[Finding]:
    out = []
    for m in VN_ID.finditer(text, pos, endpos):
        digits = m.group().translate(_DIGITS_ONLY)
        near = context.nearest(text, m.start())
        if len(digits) == 12 and near in ("vn_id", "id") and checksums.cccd_ok(digits):
            out.append(Finding(m.start(), m.end(), "vn_cccd"))
        elif len(digits) == 9 and near == "vn_id":
            out.append(Finding(m.start(), m.end(), "vn_cmnd"))
    return out


def _iban_at(text: str, start: int) -> Finding | None:
    """The IBAN starting at text[start] ("DE89 3704 0044 0532 0130 00", "GB82WEST1234..."):
    exactly its country's length of capital letters and digits, written compact or in
    groups of four separated by single spaces."""
    if not IBAN_START.match(text, start):
        return None
    length = checksums.IBAN_LENGTHS.get(text[start : start + 2])
    if length is None:
        return None
    chars, i = [], start
    while len(chars) < length and i < len(text):
        if _IBAN_BODY.match(text, i):
            chars.append(text[i])
        elif not (text[i] == " " and len(chars) % 4 == 0 and text[i - 1] != " "):
            break  # a space only between groups of four ("DE89 3704 0044 ...")
        i += 1
    if len(chars) != length or (i < len(text) and (text[i].isalnum() or text[i] == "_")):
        return None
    return Finding(start, i, "iban") if checksums.iban_ok("".join(chars)) else None


# (entities, fewest digits, needs a dot, finder), in priority order: of two findings with
# the same span the first listed wins (base.merge).
_FINDERS: tuple[tuple[frozenset[str], int, bool, Callable[[str, int, int], list[Finding]]], ...] = (
    (frozenset({"credit_card"}), 13, False, _cards),
    (frozenset({"us_ssn"}), 9, False, _ssns),
    (frozenset({"vn_cccd", "vn_cmnd"}), 9, False, _vn_ids),
    (frozenset({"ip_address"}), 4, True, find_ipv4),
    (frozenset({"phone"}), 8, False, find_phones),
)
