"""Personal data: e-mail addresses, phone numbers, payment cards, IBANs, US social
security numbers, Vietnamese identity numbers (CCCD, CMND) and IP addresses.

    PiiDetector(["email", "phone"]).find(text)  -> [Finding(start, end, "email"), ...]
    PiiDetector(ENTITIES).hold(text)            -> characters a stream must hold back

What each entity matches, and the decisions behind it (the labelled corpus in
guardrails/corpus/ measures them; `python -m guardrails.corpus.report`):

  email        local@domain.tld with a real TLD, ASCII local part (emails.py). Not
               "user@localhost", "a@b.internal", "icon@2x.png", "git@github.com", the
               user or password of a URL.
  phone        candidates by a regex, then `phonenumbers`: VALID for national numbers
               (Vietnamese mobiles and 02x landlines, 1800/1900 hotlines, common foreign
               layouts), POSSIBLE for "+84 ..." forms and next to a phone word ("SĐT",
               "call"); the North American layout "(555) 123-4567" (phones.py). Not prices
               in the thousands layout, dates, IP addresses, numbers after "#" or an
               order/account/tax word.
  credit_card  13-19 digits, compact or grouped like a card (4-4-4-4[-3], Amex 4-6-5,
               Diners 4-6-4), a known issuer range for that length, Luhn (checksums.py).
               Not 13-digit millisecond timestamps (no network starts with 1), nor a
               number an order/account word precedes.
  iban         country code, check digits, the country's registry length, mod 97; compact
               or in groups of four ("DE89 3704 0044 0532 0130 00").
  us_ssn       AAA-GG-SSSS outside the never-issued ranges (area 000, 666, 9xx; group 00;
               serial 0000); "AAA GG SSSS" and nine bare digits only after "SSN" or
               "social security".
  vn_cccd      12 digits (compact or in groups) with a real province code, a century digit
               0-3 and a birth year that has happened, and only after an identity word
               ("CCCD", "căn cước", "CMND", "số định danh", "ID card", "citizen ID", "ID"):
               a bare 12-digit number is as often an order or account number.
  vn_cmnd      9 digits, only after an identity word ("CMND", "chứng minh nhân dân",
               "CMT", "CCCD", "ID card"), not "ID" alone. No structure is checked: the
               old 9-digit numbering has none that is published reliably.
  ip_address   IPv4 dotted quads that are not versions ("v1.2.3.4", "version 1.2.3.4",
               "Chrome/120.0.6099.109"), IPv6 addresses `ipaddress` accepts (network.py).
               Not times, MAC addresses or slices.

Not found, by decision: ISBNs, UUIDs, hashes, dates, versions, timestamps, order numbers,
prices, short codes ("C4", "S3", "EKS"), obfuscated addresses ("john [at] example.com"),
text in decomposed Unicode (NFD) as far as the Vietnamese keywords go.

Context words are only read before a finding (context.py), at most 60 characters before
it, so `hold` only ever needs the trailing characters that could still grow into a
finding: a trailing run of digits and separators, a trailing word that may be an
address's start ("john.doe@exa", or just "john"), the start of an IBAN or an IPv6
address. It is at most `MAX_HOLD` (128) characters and looks at no more than that.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import emails, network, numbers
from .base import Finding, merge

ENTITIES: tuple[str, ...] = ("email", "phone", "credit_card", "iban", "us_ssn", "vn_cccd", "vn_cmnd", "ip_address")
MAX_HOLD = max(emails.MAX_EMAIL, numbers.MAX_HOLD, network.MAX_IPV6 + 1)
_NUMERIC = frozenset(ENTITIES) - {"email"}


class PiiDetector:
    """Finds the chosen personal-data entities (a subset of ENTITIES) in text."""

    def __init__(self, entities: Iterable[str], *, hold_words: bool = True) -> None:
        """`hold_words`: in streams, hold back any trailing word (it could still become
        an e-mail address: "john" -> "john.doe@example.com"), so an address split
        anywhere is caught whole. False holds an address only once its '@' arrived:
        plain prose streams with no delay, and an address split before its '@' is
        redacted from there on (what came before it was already sent)."""
        chosen = tuple(entities)
        unknown = [e for e in chosen if e not in ENTITIES]
        if unknown:
            raise ValueError(f"unknown PII entity {', '.join(map(repr, unknown))}; known: {', '.join(ENTITIES)}")
        self.entities = frozenset(chosen)
        self._email = "email" in self.entities
        self._numeric = self.entities & _NUMERIC
        self._ip = "ip_address" in self.entities
        self._hold_words = hold_words

    def find(self, text: str) -> list[Finding]:
        """Sorted, non-overlapping findings (see base.Detector)."""
        found: list[Finding] = []
        if self._email and "@" in text:
            found += emails.find_emails(text)
        if self._numeric:
            found += numbers.find_numbers(text, self._numeric)
        if self._ip and ":" in text:
            found += network.find_ipv6(text)
        return merge(found) if found else found

    def hold(self, text: str) -> int:
        """How many characters at the end of `text` could still become or extend a
        finding (0 when the tail is safe to release); at most MAX_HOLD."""
        tail = text[-MAX_HOLD - 1 :]  # all that is looked at: O(MAX_HOLD), whatever the text
        held = 0
        if self._email:
            held = emails.hold(tail)
            if held and not self._hold_words and "@" not in tail[-held:]:
                held = 0
        if self._numeric:
            held = max(held, numbers.hold(tail, "iban" in self.entities))
        if self._ip:
            held = max(held, network.hold(tail))
        return held

    def __repr__(self) -> str:
        return f"PiiDetector({sorted(self.entities)!r})"
