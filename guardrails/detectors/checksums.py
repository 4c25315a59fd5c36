"""The structural checks of the number-shaped entities: checksums and the published
tables they depend on (card IIN ranges, IBAN lengths, Vietnamese province codes, the
SSA's never-issued SSN ranges).

Each function takes the digits (or the compact IBAN) only, never the surrounding text:
context is the caller's business (guardrails/detectors/context.py).
"""

from __future__ import annotations

import datetime


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


# (first digits low, high, allowed lengths): the issuer ranges of the networks a payment
# card can belong to. A 13-19 digit number outside them is an order number, a timestamp
# (13-digit Unix milliseconds start with 1) or an account number, not a card.
_IIN_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (300, 305, frozenset({14, 16, 17, 18, 19})),  # Diners Club
    (36, 36, frozenset({14, 16, 17, 18, 19})),
    (38, 39, frozenset({16, 17, 18, 19})),
    (6011, 6011, frozenset({16, 17, 18, 19})),  # Discover
    (644, 649, frozenset({16, 17, 18, 19})),
    (65, 65, frozenset({16, 17, 18, 19})),
    (3528, 3589, frozenset({16, 17, 18, 19})),  # JCB
    (62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
    (2200, 2204, frozenset({16, 17, 18, 19})),  # Mir
    (5018, 5018, frozenset({16, 17, 18, 19})),  # Maestro
    (5020, 5020, frozenset({16, 17, 18, 19})),
    (5038, 5038, frozenset({16, 17, 18, 19})),
    (5893, 5893, frozenset({16, 17, 18, 19})),
    (6304, 6304, frozenset({16, 17, 18, 19})),
    (6759, 6759, frozenset({16, 17, 18, 19})),
    (6761, 6763, frozenset({16, 17, 18, 19})),
    (9704, 9704, frozenset({16, 19})),  # NAPAS, Vietnam's domestic card network
)


# The table as prefix -> lengths ("4" -> {13, 16, 19}, "2221" ... "2720" -> {16}).
_IIN_LENGTHS: dict[str, frozenset[int]] = {}
for _low, _high, _lengths in _IIN_RANGES:
    for _prefix in range(_low, _high + 1):
        _IIN_LENGTHS[str(_prefix)] = _IIN_LENGTHS.get(str(_prefix), frozenset()) | _lengths


def card_ok(digits: str) -> bool:
    """A payment card number: a known issuer range, a length that network issues, Luhn."""
    n = len(digits)
    if not 13 <= n <= 19:
        return False
    if not any(n in _IIN_LENGTHS.get(digits[:width], ()) for width in (1, 2, 3, 4)):
        return False
    return luhn_ok(digits)


# ISO 13616 registry: country code -> IBAN length.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
MAX_IBAN = max(IBAN_LENGTHS.values())


def iban_ok(compact: str) -> bool:
    """ISO 13616: the registry length of its country and the mod-97 check (== 1)."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    # Letters count as two digits (A=10 ... Z=35); int() of the joined string is exact.
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def ssn_ok(area: str, group: str, serial: str) -> bool:
    """The SSA never issues area 000, 666 or 9xx, group 00 or serial 0000."""
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# The province codes of the 12-digit citizen identity number (Circular 07/2016/TT-BCA),
# kept by the numbers issued before the 2025 province merger.
VN_PROVINCES = frozenset({
    "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020",
    "022", "024", "025", "026", "027", "030", "031", "033", "034", "035", "036", "037", "038",
    "040", "042", "044", "045", "046", "048", "049", "051", "052", "054", "056", "058", "060",
    "062", "064", "066", "067", "068", "070", "072", "074", "075", "077", "079", "080", "082",
    "083", "084", "086", "087", "089", "091", "092", "093", "094", "095", "096",
})  # fmt: skip
_THIS_YEAR = datetime.date.today().year


def cccd_ok(digits: str) -> bool:
    """A 12-digit citizen identity number: province, then a century/sex digit (0/1 born
    19xx, 2/3 born 20xx, 4-9 the 2100s-2300s: nobody yet) matching a birth year that has
    happened, then six serial digits."""
    if len(digits) != 12 or digits[:3] not in VN_PROVINCES:
        return False
    century = int(digits[3])
    if century > 3:
        return False
    year = 1900 + 100 * (century // 2) + int(digits[4:6])
    return year <= _THIS_YEAR
