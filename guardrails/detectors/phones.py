"""Phone numbers: a cheap candidate regex, then `phonenumbers` on the candidates only.

A candidate is a run of digit groups joined by single spaces, dots or dashes, with an
optional leading "+" and parenthesised groups ("(028) 3823 4567", "+1 (415) 555-2671").
A run that is not one valid number as a whole is split at its spaces, longest piece
first, so "0912 345 678 hoặc 0987 654 321" and "0912345678 0987654321" give two numbers.

A piece is a phone number when `phonenumbers` says the number is VALID (a number the
national plan allocates, what `Leniency.VALID` checks; POSSIBLE would accept prices):
  * "+..." or "00..." as an international number;
  * "0..." as a Vietnamese national number (mobiles 03x/05x/07x/08x/09x, 02x landlines,
    also what happens to be valid elsewhere: "020 7946 0958" is both);
  * "1800 ..."/"1900 ..." and "84 ..." as Vietnamese numbers, when written with spaces
    or near a phone word ("hotline", "sđt", "call" ...);
  * other digit groups in the North American layout ("(212) 555-0123", "212-555-0123",
    with or without a leading 1) when the area code and exchange are well formed, and
    "0..." groups as a UK/AU/FR/DE national number. Bare unformatted digit strings are
    never read as foreign numbers: 10-digit Unix timestamps are valid in the UK plan.
Next to a phone word a 0-leading 10-11 digit Vietnamese number that is merely POSSIBLE
("SĐT: 0123 456 789", an old or made-up number) counts too.

Never phones: pieces in the thousands layout ("1.250.000", "18 000 000"), dates
("02.12.2026", "2026-12-02"), dotted quads (IP addresses), numbers right after "#", a
currency sign or inside words, and numbers whose nearest keyword says order, account,
tax code, ISBN... (context.py).
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumber

from . import context
from .base import Finding

# "(+84)" / "+84" / "(028)" / "0912", then groups joined by one separator; a closing
# parenthesis may stand where the separator is ("(028)3823").
_TOKEN = r"\(?\+?\d+\)?"
CANDIDATE = re.compile(r"(?<![\w#$€£¥₫+.,/@-])" + _TOKEN + r"(?:[ .\-]?" + _TOKEN + r")*")
_PIECE_TOKEN = re.compile(_TOKEN)
_THOUSANDS = re.compile(r"\d{1,3}(?:([ .,])\d{3})(?:\1\d{3})+")
_DATE = re.compile(r"\d{1,2}([./-])\d{1,2}\1\d{2,4}|\d{4}([./-])\d{1,2}\2\d{1,2}")
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_NANP = re.compile(r"(?:\+?1[ .\-]?)?(?:\([2-9]\d\d\) ?|[2-9]\d\d[ .\-])[2-9]\d\d[ .\-]\d{4}")
_DIRTY_END = re.compile(r"[\w@]|[.,\-/:]\d")
MIN_DIGITS, MAX_DIGITS = 8, 15
_FOREIGN_NATIONAL = ("GB", "AU", "FR", "DE")


def find_phones(text: str, pos: int, endpos: int) -> list[Finding]:
    """Phone numbers in the candidates that start in text[pos:endpos]."""
    out: list[Finding] = []
    for m in CANDIDATE.finditer(text, pos, endpos):
        tokens = [(t.start(), t.end()) for t in _PIECE_TOKEN.finditer(text, m.start(), m.end())]
        if _DIRTY_END.match(text, m.end()):
            tokens.pop()  # the last group runs into a word or another number
        _split(text, tokens, out)
    return out


def _split(text: str, tokens: list[tuple[int, int]], out: list[Finding]) -> None:
    """The longest valid pieces, left to right. A piece starts and ends at a space (or at
    the candidate's own ends) and has at most MAX_DIGITS + 2 digits, so how a piece is
    decided never depends on text more than ~65 characters after its start."""
    last = len(tokens) - 1
    i = 0
    while i <= last:
        ends, digits = [], 0
        for j in range(i, last + 1):
            digits += sum(ch.isdigit() for ch in text[tokens[j][0] : tokens[j][1]])
            if digits > MAX_DIGITS + 2:
                break
            if j == last or text[tokens[j][1]] == " ":
                ends.append(j)
        for j in reversed(ends):
            if _is_phone(text, tokens[i][0], tokens[j][1]):
                out.append(Finding(tokens[i][0], tokens[j][1], "phone"))
                i = j + 1
                break
        else:
            i += 1
            while i <= last and text[tokens[i][0] - 1] != " ":
                i += 1


def _is_phone(text: str, start: int, end: int) -> bool:
    piece = text[start:end]
    digits = "".join(ch for ch in piece if ch.isdigit())
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS + 2:
        return False
    if _THOUSANDS.fullmatch(piece) or _DATE.fullmatch(piece) or _DOTTED_QUAD.fullmatch(piece):
        return False
    near = context.nearest(text, start)
    if near == "other":
        return False
    intl = piece.lstrip("(").startswith("+")
    formatted = piece != digits
    return _valid(piece if intl else digits, intl, formatted, near == "phone", bool(_NANP.fullmatch(piece)))


@lru_cache(maxsize=4096)
def _valid(number: str, intl: bool, formatted: bool, phone_word: bool, nanp_layout: bool) -> bool:
    if intl or number.startswith("00"):
        return _parses_valid(number, "VN")
    if number.startswith("0"):
        if 10 <= len(number) <= 11 and _national_valid(84, number[1:]):
            return True
        if phone_word and 10 <= len(number) <= 11 and _possible(84, number[1:]):
            return True
        return (formatted or phone_word) and any(_parses_valid(number, r) for r in _FOREIGN_NATIONAL)
    if nanp_layout:
        return True  # "(555) 123-4567": the North American layout, area code and exchange well formed
    if not (formatted or phone_word):
        return False
    if number.startswith(("1800", "1900")) and _national_valid(84, number):
        return True
    if number.startswith("84") and _national_valid(84, number[2:]):
        return True
    if len(number) == 10 and _national_valid(1, number):
        return True
    return len(number) == 11 and number.startswith("1") and _national_valid(1, number[1:])


def _national_valid(country_code: int, national: str) -> bool:
    if national.startswith("0"):
        return False
    return phonenumbers.is_valid_number(PhoneNumber(country_code=country_code, national_number=int(national)))


def _possible(country_code: int, national: str) -> bool:
    return phonenumbers.is_possible_number(PhoneNumber(country_code=country_code, national_number=int(national)))


def _parses_valid(number: str, region: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, region))
    except phonenumbers.NumberParseException:
        return False
