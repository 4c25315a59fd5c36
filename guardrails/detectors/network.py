"""IP addresses.

IPv4: four dotted decimal octets 0-255 without leading zeros, not part of a longer
dotted number (an SNMP OID, "1.2.3.4.5") and not a version: "v1.2.3.4", "==1.2.3.4",
"version 1.2.3.4", "Chrome/120.0.6099.109" (after a "/" that is not "://") are versions.
A CIDR suffix or a port is not part of the span ("10.0.0.0/8" -> "10.0.0.0").

IPv6: hex groups and colons that `ipaddress.IPv6Address` accepts, found only where the
text has ":x:" or "::". Never "::" alone, a slice ("x[::2]"), a time ("12:30:45") or a
MAC address ("00:1A:2B:3C:4D:5E", six groups); at least three hex digits besides "::1".
"""

from __future__ import annotations

import ipaddress
import re

from .base import Finding
from .tails import trailing_start

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![\w.]){_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?!\w|\.\d|-[A-Za-z])")
_VERSION_BEFORE = re.compile(
    r"(?:==|~=|>=|<=|\^|(?<!\w)(?:version|ver|v|release|rel|build|firmware|fw|phiên bản|phien ban|bản"
    r"|update to|upgrade to|bump(?:ed)? to|pin(?:ned)? to|python|node|java|chrome|firefox|android|ios"
    r"|kernel|ubuntu|debian|macos|windows|sdk)\.?:?\s{0,2})\Z",
    re.IGNORECASE,
)
_HEX = r"[0-9A-Fa-f]{1,4}"
IPV6 = re.compile(
    rf"(?<![\w:.])(?:{_HEX})?(?::(?:{_HEX})?){{2,7}}(?:(?<=:)(?:\d{{1,3}}\.){{3}}\d{{1,3}})?(?![\w:]|\.\d)"
)
_IPV6_HEAD = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:]*:\Z")
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}:")
MAX_IPV6 = 45
# hold(): the start of an IPv6 address at the very end (groups of at most four hex digits).
IPV6_TAIL = re.compile(r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}(?::|\Z))[0-9A-Fa-f:.]{1,%d}\Z" % MAX_IPV6)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_IPV6_CHARS = _HEX_DIGITS | {":", "."}


def find_ipv4(text: str, pos: int, endpos: int) -> list[Finding]:
    out = []
    for m in IPV4.finditer(text, pos, endpos):
        s = m.start()
        prev = text[s - 1] if s else ""
        if prev == "/" and not text.endswith("://", 0, s):
            continue  # "Chrome/120.0.6099.109", a path: a version
        if prev == ":" and _IPV6_HEAD.search(text, max(0, s - MAX_IPV6), s):
            continue  # the IPv4 tail of an IPv6 address ("::ffff:10.0.0.1"), not "IP:10.0.0.1"
        if _VERSION_BEFORE.search(text, max(0, s - 24), s):
            continue
        out.append(Finding(s, m.end(), "ip_address"))
    return out


def hold(text: str) -> int:
    """Characters at the end of `text` that may still become (part of) an IPv6 address
    (IPv4 addresses are runs of digits: numbers.hold)."""
    n = len(text)
    i = trailing_start(text, _IPV6_CHARS, MAX_IPV6 + 1)
    if i == n:
        return 0
    m = IPV6_TAIL.search(text, i)
    return n - m.start() if m else 0


def find_ipv6(text: str) -> list[Finding]:
    """IPv6 addresses: every one has ":x:" or "::" (a hint, found by a literal search);
    the candidate starts at the hex digits just before its first hint."""
    out: list[Finding] = []
    done = 0
    for hint in _IPV6_HINT.finditer(text):
        if hint.start() < done:
            continue
        start = hint.start()
        while start > done and text[start - 1] in _HEX_DIGITS:
            start -= 1
        m = IPV6.match(text, start)
        if m and m.end() > hint.start():
            done = m.end()
            if _ipv6_ok(m.group()):
                out.append(Finding(m.start(), m.end(), "ip_address"))
    return out


def _ipv6_ok(candidate: str) -> bool:
    if candidate != "::1" and sum(ch not in ":." for ch in candidate) < 3:
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True
