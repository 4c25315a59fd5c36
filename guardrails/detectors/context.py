"""What the words just before a number say it is.

Several entities are digits only (a 9-digit CMND, an SSN written without dashes, a
12-digit CCCD) and look exactly like an order number, an account number or a tax code.
The words in the WINDOW characters before the number decide: the keyword nearest to the
number wins, so "CCCD 079203004567, mã đơn hàng 240912345678" reads the first number as
an identity number and the second as an order number.

Context is only ever read BEFORE a finding, never after: a stream can then release a
finding as soon as its own characters are complete (see the `hold` contract in base.py).
Vietnamese keywords are listed with and without diacritics (people type both).
"""

from __future__ import annotations

import re
from functools import lru_cache

WINDOW = 40

# class -> keywords. Longer phrases win over their own words at the same position
# ("order id" is an order number, "id" alone is an identity document).
_KEYWORDS: dict[str, tuple[str, ...]] = {
    # Words that make the next number something else: order, account, tax, product codes.
    "other": (
        "order id", "order number", "order no", "order", "đơn hàng", "don hang", "mã đơn", "ma don",
        "vận đơn", "van don", "hóa đơn", "hoá đơn", "hoa don", "invoice", "receipt", "tracking",
        "shipment", "transaction id", "transaction", "giao dịch", "giao dich", "mã gd", "ref",
        "reference", "account", "acct", "tài khoản", "tai khoan", "stk", "số tk", "so tk", "mst",
        "mã số thuế", "ma so thue", "tax", "isbn", "sku", "serial", "mã sản phẩm", "product",
        "ticket", "booking", "mã đặt chỗ", "pnr", "otp", "mã", "ma", "code", "user id",
        "customer id", "employee id", "student id", "request id", "session id", "trace id",
        "member id", "id đơn", "barcode", "batch", "lot", "model", "part", "build", "timestamp",
        "epoch", "version",
    ),
    "phone": (
        "số điện thoại", "so dien thoai", "điện thoại", "dien thoai", "sđt", "sdt", "đt", "đtdđ",
        "di động", "di dong", "số máy", "so may", "liên hệ", "lien he", "gọi", "goi", "nhắn",
        "hotline", "zalo", "viber", "whatsapp", "telegram", "signal", "phone", "tel", "telephone",
        "mobile", "cell", "cellphone", "call", "caller", "called", "calling", "callback", "contact",
        "fax", "sms", "text me", "reach me", "ring", "dial", "tổng đài", "tong dai", "cskh",
        "liên lạc", "lien lac", "nhắn tin",
    ),
    "vn_id": (
        "cccd", "cmnd", "cmt", "căn cước", "can cuoc", "căn cước công dân", "chứng minh",
        "chung minh", "chứng minh nhân dân", "chứng minh thư", "số định danh", "so dinh danh",
        "định danh", "dinh danh", "id card", "id card number", "identity card", "identity number",
        "identity", "citizen id", "national id", "id number", "id no", "số id",
    ),
    # "ID" on its own: strong enough for the 12-digit CCCD structure, not for 9 digits.
    "id": ("id",),
    "ssn": ("ssn", "ss#", "ssn#", "social security", "social security number", "soc sec",
            "số an sinh xã hội", "an sinh xã hội"),
}  # fmt: skip

# Keywords and windows are compared as lower-case word sequences ("ss#" is "ss #").
_WORD = re.compile(r"[^\W_]+|#")


def _words(s: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(s.lower()))


_CLASS_OF = {_words(word): cls for cls, words in _KEYWORDS.items() for word in words}
_LONGEST = max(len(k) for k in _CLASS_OF)
_LAST_WORDS = frozenset(k[-1] for k in _CLASS_OF)


def nearest(text: str, start: int, window: int = WINDOW) -> str | None:
    """The class of the keyword nearest before `text[start]` within `window`
    characters ("other", "phone", "vn_id", "id", "ssn"), or None. Of keywords ending at
    the same word the longest wins ("order id" is "other", "id" alone is "id")."""
    lo = max(0, start - window)
    # Inside a word, the window's first word is not a word of the text.
    return _classify(text[lo:start], bool(lo) and text[lo - 1].isalnum() and text[lo].isalnum())


@lru_cache(maxsize=4096)  # the card, SSN, ID and phone checks of one number ask alike
def _classify(window: str, cut: bool) -> str | None:
    words = _words(window)[1 if cut else 0 :]
    for end in range(len(words), 0, -1):
        if words[end - 1] not in _LAST_WORDS:
            continue
        for n in range(min(_LONGEST, end), 0, -1):
            cls = _CLASS_OF.get(words[end - n : end])
            if cls:
                return cls
    return None
