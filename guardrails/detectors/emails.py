"""E-mail addresses: `local@domain.tld` the way people write them, found from each "@".

Decisions (documented in pii.py too):
  * The local part is ASCII letters, digits and . _ % + - (at most 64, no leading,
    trailing or doubled dot); the domain is dot-separated labels (at most 63 characters in
    all) ending in a real top-level domain: any country code, the common generic ones, or
    punycode. So "user@localhost", "admin@db.internal", "icon@2x.png" and
    "lodash@4.17.21" are not addresses.
  * "git@github.com" is an SSH remote, not a person's address.
  * The user or password of a URL ("https://token@github.com/...",
    "https://user:pass@host.com") is not an address.
The bounds (64 + 1 + 63 characters) are what keep `hold` within 128 characters.
"""

from __future__ import annotations

import re

from .base import Finding

MAX_LOCAL, MAX_DOMAIN = 64, 63
MAX_EMAIL = MAX_LOCAL + 1 + MAX_DOMAIN

_CC_TLDS = (
    "ac ad ae af ag ai al am ao aq ar as at au aw ax az ba bb bd be bf bg bh bi bj bm bn bo br bs bt"
    " bw by bz ca cc cd cf cg ch ci ck cl cm cn co cr cu cv cw cx cy cz de dj dk dm do dz ec ee eg er"
    " es et eu fi fj fk fm fo fr ga gd ge gf gg gh gi gl gm gn gp gq gr gs gt gu gw gy hk hm hn hr ht"
    " hu id ie il im in io iq ir is it je jm jo jp ke kg kh ki km kn kp kr kw ky kz la lb lc li lk lr"
    " ls lt lu lv ly ma mc md me mg mh mk ml mm mn mo mp mq mr ms mt mu mv mw mx my mz na nc ne nf ng"
    " ni nl no np nr nu nz om pa pe pf pg ph pk pl pm pn pr ps pt pw py qa re ro rs ru rw sa sb sc sd"
    " se sg sh si sk sl sm sn so sr ss st su sv sx sy sz tc td tf tg th tj tk tl tm tn to tr tt tv tw"
    " tz ua ug uk us uy uz va vc ve vg vi vn vu wf ws ye yt za zm zw"
)
_GENERIC_TLDS = (
    "com net org edu gov mil int info biz name pro mobi asia tel travel jobs cat coop aero museum"
    " app dev xyz online site store shop tech cloud blog page news live life world today email"
    " company solutions agency digital network systems software services group global media studio"
    " design art space website club vip top work link click fun games guru academy center city"
    " finance bank money capital legal law health care family school university education careers"
    " gmbh ltd inc llc africa zone one plus expert support team social chat mail host hosting"
    " consulting institute foundation church energy events house land photo pics review reviews"
    " science security tools training ventures works wiki icu cyou sbs lol ink red blue green pink"
    " moe ninja rocks run technology engineering marketing partners properties realestate"
    " amazon google apple microsoft aws"
)
TLDS = frozenset((_CC_TLDS + " " + _GENERIC_TLDS).split())

_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24}|xn--[A-Za-z0-9]{1,20})"
    r"(?![A-Za-z0-9\-]|\.[A-Za-z0-9])"
)
_URL_PASSWORD = re.compile(r"://[^\s/?#@]*:\Z")
# hold(): a local part, maybe its "@" and the start of a domain, at the very end.
TAIL = re.compile(r"(?<![\w.%+\-])[\w%+\-][\w.%+\-]{0,63}(?:@[A-Za-z0-9.\-]{0,63})?\Z")


def find_emails(text: str) -> list[Finding]:
    out: list[Finding] = []
    at = text.find("@")
    while at != -1:
        found = _email_at(text, at)
        if found:
            out.append(found)
        at = text.find("@", found.end if found else at + 1)
    return out


def _email_at(text: str, at: int) -> Finding | None:
    start = at
    lo = max(0, at - MAX_LOCAL - 1)
    while start > lo and (text[start - 1].isalnum() or text[start - 1] in "_.%+-"):
        start -= 1  # the whole word before the "@" (a longer one is refused: too long)
    local = text[start:at]
    if not local or len(local) > MAX_LOCAL or not local.isascii():
        return None  # also "nguyễn.an@...": not an ASCII local part, and not "n.an@..." either
    if local[0] == "." or local[-1] == "." or ".." in local:
        return None
    if local.lower() == "git" or text.endswith("://", 0, start):
        return None  # an SSH remote; a URL's user ("https://token@github.com/...")
    if _URL_PASSWORD.search(text, max(0, start - 60), start):
        return None  # a URL's password ("https://user:pass@host")
    d = _DOMAIN.match(text, at + 1)
    if not d or d.end() - at - 1 > MAX_DOMAIN or d.group(1).lower() not in TLDS and not d.group(1).startswith("xn--"):
        return None
    return Finding(start, d.end(), "email")


def hold(text: str) -> int:
    """Characters at the end of `text` that may still become (part of) an address."""
    n = len(text)
    i = n
    lo = max(0, n - MAX_EMAIL - 1)
    while i > lo and (text[i - 1].isalnum() or text[i - 1] in "._%+-@"):
        i -= 1
    if i == n:
        return 0
    m = TAIL.search(text, i)
    return n - m.start() if m else 0
