"""Phone numbers: a cheap candidate regex, then `phonenumbers` on the candidates only.

A candidate is a run of digit groups joined by single spaces, dots or dashes, with an
optional leading "+" and parenthesised groups ("(028) 3823 4567", "+1 (415) 555-2671").
A run that is not one valid number as a whole is split at its spaces, longest piece
first, so "0912 345 678 hoặc 0987 654 321" and "0912345678 0987654321" give two numbers.

A piece is a phone number when `phonenumbers` says the number is VALID (a number the
national plan allocates, what `Leniency.VALID` checks; POSSIBLE would accept prices):
  * "+..." as an international number (POSSIBLE is enough there: nothing but a phone
    number is written "+84 ..."), "00..." too (VALID);
  * "0..." as a Vietnamese national number (mobiles 03x/05x/07x/08x/09x, 02x landlines,
    also what happens to be valid elsewhere: "020 7946 0958" is both);
  * "1800 ..."/"1900 ..." and "84 ..." as Vietnamese numbers, when written with spaces
    or near a phone word ("hotline", "sđt", "call" ...);
  * digit groups in the North American layout ("(212) 555-0123", "212-555-0123", with
    or without a leading 1) when the area code does not start with 0 or 1, or a phone
    word is near ("call 123-456-7890": the made-up numbers people write);
  * "0..." groups of 10-11 digits as a UK/AU/FR/DE national number.
Bare digit strings are never read as foreign numbers without a phone word: 10-digit Unix
timestamps are valid in the UK plan. Next to a phone word a 0-leading 10-11 digit
Vietnamese number that is merely POSSIBLE ("SĐT: 0123 456 789", an old or made-up
number) counts too, and so does a number with an operator's mobile prefix written with
separators ("0891 234 567": Mobifone's prefix, a block of it not allocated yet).

Never phones: pieces in the thousands layout ("1.250.000", "18 000 000"), dates
("02.12.2026", "2026-12-02"), dotted quads (IP addresses), numbers right after "#", a
currency sign or inside words, and numbers whose nearest keyword says order, account,
tax code, ISBN... (context.py), unless written "+...".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumber

from . import context
from .base import Finding

# "(+84)" / "+84" / "(028)" / "0912", then groups joined by one separator; a closing
# parenthesis may stand where the separator is ("(028)3823"). Parentheses come in pairs
# around one group: in "(0912 345 678)" and "f(2147483647)" they are not the number's.
_TOKEN = r"(?:\(\+?\d+\)|\+?\d+)"
# Not inside a word, after "#", a currency sign, "@", "+", "-", or the decimal point of a
# longer number ("1.0912345678"); "tel.0912345678" and "0912345678,0987654321" are fine.
CANDIDATE = re.compile(r"(?<![\w#$€£¥₫+@-])(?<!\d\.)" + _TOKEN + r"(?:[ .\-]?" + _TOKEN + r")*")
_PIECE_TOKEN = re.compile(_TOKEN)
_THOUSANDS = re.compile(r"\d{1,3}(?:([ .,])\d{3})(?:\1\d{3})+")
_DATE = re.compile(r"\d{1,2}([./-])\d{1,2}\1\d{2,4}|\d{4}([./-])\d{1,2}\2\d{1,2}")
_DOTTED_QUAD = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_NANP = re.compile(r"(?:\+?1[ .\-]?)?(?:\((\d)\d\d\) ?|(\d)\d\d[ .\-])\d{3}[ .\-]\d{4}")
# The mobile operators' prefixes; phonenumbers knows which blocks inside them are allocated.
_VN_MOBILE = re.compile(r"0(?:3[2-9]|5[25689]|7[06-9]|8[1-9]|9\d)\d{7}")
_DIRTY_END = re.compile(r"[\w@]|[.\-:]\d")  # the last group runs on: "0912345678a", "0912345678.5"
MIN_DIGITS, MAX_DIGITS = 8, 15
_NOT_DIGITS = str.maketrans("", "", "()+ .-")  # what a candidate has besides digits
_FOREIGN_NATIONAL = ("GB", "AU", "FR", "DE")


def find_phones(text: str, pos: int, endpos: int) -> list[Finding]:
    """Phone numbers in the candidates that start in text[pos:endpos]."""
    out: list[Finding] = []
    for m in CANDIDATE.finditer(text, pos, endpos):
        tokens = [(t.start(), t.end()) for t in _PIECE_TOKEN.finditer(text, m.start(), m.end())]
        if _DIRTY_END.match(text, m.end()):
            tokens.pop()
        _split(text, tokens, out)
    return out


def _split(text: str, tokens: list[tuple[int, int]], out: list[Finding]) -> None:
    """The longest valid pieces, left to right. A piece starts and ends at a space (or at
    the candidate's own ends) and has at most MAX_DIGITS + 2 digits, so how a piece is
    decided never depends on text more than ~65 characters after its start. When no
    piece starts at a group of three or more digits, the groups are something else's
    (a mistyped IBAN or card: "DE89 3704 0044 0532 0130 01") and none of the rest is a
    phone."""
    last = len(tokens) - 1
    counts = [len(text[a:b].translate(_NOT_DIGITS)) for a, b in tokens]
    i = 0
    while i <= last:
        ends, digits = [], 0
        for j in range(i, last + 1):
            digits += counts[j]
            if digits > MAX_DIGITS + 2:
                break
            if j == last or text[tokens[j][1]] == " ":
                ends.append(j)
        near = context.nearest(text, tokens[i][0]) if ends else None
        for j in reversed(ends):
            if _is_phone(text, tokens[i][0], tokens[j][1], near):
                out.append(Finding(tokens[i][0], tokens[j][1], "phone"))
                i = j + 1
                break
        else:
            if counts[i] >= 3:
                return  # a group no phone starts with: the rest is some other number's groups
            i += 1  # a stray short number ("Phòng 3 0912 345 678")
            while i <= last and text[tokens[i][0] - 1] != " ":
                i += 1


def _is_phone(text: str, start: int, end: int, near: str | None) -> bool:
    """text[start:end] is a phone number; `near` is context.nearest(text, start)."""
    piece = text[start:end]
    digits = piece.translate(_NOT_DIGITS)
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS + 2 or "+" in piece.lstrip("(+"):
        return False  # a "+" only leads: "10:22:03 2026 +0700" ends in a time zone
    if _DATE.fullmatch(piece) or _DOTTED_QUAD.fullmatch(piece):
        return False
    if _THOUSANDS.fullmatch(piece) and not (len(digits) == 11 and digits.startswith("84")):
        return False  # "18 000 000", "1.250.000"; but "84 912 345 678" is +84 without its "+"
    intl = piece.lstrip("(").startswith("+")
    if near == "other" and not intl:
        return False  # "+1-646-385-4963" is a phone even after "ticket" or "order"
    formatted = len(piece) != len(digits)
    nanp = _NANP.fullmatch(piece)
    # The North American layout, "(555) 123-4567": with an area code that can be one, or
    # next to a phone word ("call 123-456-7890"): the made-up numbers people write.
    nanp_layout = bool(nanp) and ((nanp.group(1) or nanp.group(2)) not in "01" or near == "phone")
    return _valid(piece if intl else digits, intl, formatted, near == "phone", nanp_layout)


@lru_cache(maxsize=4096)
def _valid(number: str, intl: bool, formatted: bool, phone_word: bool, nanp_layout: bool) -> bool:
    """The rules of the module docstring, in order. `number` is the piece as written
    when it starts with "+", its digits otherwise."""
    if intl:
        return _parses(number, "VN", phonenumbers.is_possible_number)
    if number.startswith("00"):  # the international prefix, or the zeros of some other number
        if number[2] == "0" or len(number) < 10:
            return False
        lenient = phone_word or (formatted and number.startswith("0084"))
        return _parses(number, "VN", phonenumbers.is_possible_number if lenient else phonenumbers.is_valid_number)
    if number.startswith("0"):
        return _zero_leading(number, formatted, phone_word)
    if nanp_layout:
        return True
    if not (formatted or phone_word):
        return False
    if number.startswith(("1800", "1900")) and _national_valid(84, number):
        return True
    if number.startswith("84") and _national_valid(84, number[2:]):
        return True
    if not phone_word:  # "3056 930009" (a card's groups) is not a Miami number
        return False
    if len(number) == 10 and _national_valid(1, number):
        return True
    return len(number) == 11 and number.startswith("1") and _national_valid(1, number[1:])


def _zero_leading(number: str, formatted: bool, phone_word: bool) -> bool:
    if 10 <= len(number) <= 11:
        if _national_valid(84, number[1:]) or (phone_word and _possible(84, number[1:])):
            return True
        if formatted and _VN_MOBILE.fullmatch(number):
            return True
        # Foreign national numbers; shorter pieces are more often the tail of some other
        # number's groups ("4095 2525 0994 0000") than a phone.
        return (formatted or phone_word) and any(_parses_valid(number, r) for r in _FOREIGN_NATIONAL)
    return False


def _national_valid(country_code: int, national: str) -> bool:
    if national.startswith("0"):
        return False
    return phonenumbers.is_valid_number(PhoneNumber(country_code=country_code, national_number=int(national)))


def _possible(country_code: int, national: str) -> bool:
    return phonenumbers.is_possible_number(PhoneNumber(country_code=country_code, national_number=int(national)))


def _parses_valid(number: str, region: str) -> bool:
    return _parses(number, region, phonenumbers.is_valid_number)


def _parses(number: str, region: str, check: Callable[[PhoneNumber], bool]) -> bool:
    try:
        return check(phonenumbers.parse(number, region))
    except phonenumbers.NumberParseException:
        return False
