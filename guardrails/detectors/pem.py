"""Private keys in PEM form: the whole "-----BEGIN ... PRIVATE KEY-----" block is the span.

A block is the header, a body and the matching "-----END ... PRIVATE KEY-----" line. The
body is what a key's body looks like: optional RFC 1421 header lines ("Proc-Type:",
"DEK-Info:"), then base64 chunks of at least 16 characters (a key's lines are 64 or 70)
separated by line breaks or spaces (also "\\n" escaped, as in a JSON service-account
file), only the last chunk shorter. With at least 64 base64 characters in it, so
"-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----" and instructions that
name the header in prose are not findings.

A block whose END line never comes (a truncated paste) is a finding too, from its header
to the end of its last full-size chunk.

Streams hold from an open header while what follows it can still be such a body; that is
bounded by MAX_BLOCK (a longer body ends the finding there).
"""

from __future__ import annotations

import re

from .base import Finding

MAX_BLOCK = 16384  # of a body; RSA-8192 in PEM is about 6.5 KB
MAX_HOLD = MAX_BLOCK + 256  # the body, its header and its END line

_LABEL = r"((?:[A-Z0-9]{1,12} ){0,3})PRIVATE KEY( BLOCK)?-----"
HEADER = re.compile(r"-----BEGIN " + _LABEL)
FOOTER = re.compile(r"-----END " + _LABEL)
_WS = r"(?:\s|\\[rn])"
_HDR = r"(?:Proc-Type|DEK-Info|Comment):[^\r\n\\]*"
_CHUNK = r"[A-Za-z0-9+/=]"
_HEADERS = rf"{_WS}*(?:{_HDR}{_WS}+)*"
BODY = re.compile(rf"{_HEADERS}(?:{_CHUNK}{{16,}}{_WS}+)*(?:{_CHUNK}+{_WS}*)?")
OPEN_BODY = re.compile(rf"{_HEADERS}(?:{_CHUNK}{{16,}}{_WS}*)*")
# hold(): complete lines that can still start a body, then the line being written.
_BODY_LINES = re.compile(rf"{_HEADERS}(?:{_CHUNK}{{16,}}{_WS}+)*(?:{_CHUNK}+{_WS}+)?")
_LAST_LINE = re.compile(r"[A-Za-z0-9+/=:,\- \t\r]*(?:\\r)?\\?")  # may end in an escaped "\r\n" being written
_BASE64 = re.compile(_CHUNK)
MIN_BASE64 = 64
_BEGIN = "-----BEGIN "


def find_private_keys(text: str) -> list[Finding]:
    out = []
    for h in HEADER.finditer(text):
        start = h.end()
        f = FOOTER.search(text, start, start + MAX_BLOCK + 64)
        if f and f.group(1) == h.group(1) and f.start() - start <= MAX_BLOCK and BODY.fullmatch(text, start, f.start()):
            body, end = text[start : f.start()], f.end()
        else:
            b = OPEN_BODY.match(text, start, min(len(text), start + MAX_BLOCK))
            body = b.group()
            end = start + len(_strip_ws(body))
        if len(_BASE64.findall(body)) >= MIN_BASE64:
            out.append(Finding(h.start(), end, "private_key"))
    return out


def hold(text: str) -> int:
    """From an open header to the end while what follows it can still be a body (or a
    partial "-----BEGIN " at the end); at most MAX_HOLD, and nothing earlier is read."""
    n = len(text)
    partial = 0
    if n and text[-1] in _BEGIN:  # a partial "-----BEGIN " at the very end
        partial = next((k for k in range(min(len(_BEGIN), n), 0, -1) if text.endswith(_BEGIN[:k])), 0)
    i = text.rfind(_BEGIN, max(0, n - MAX_HOLD))
    if i == -1:
        return partial
    h = HEADER.match(text, i)
    if h is None:
        # Still writing the header ("-----BEGIN RSA PRIV"): hold it while it can become one.
        return max(partial, n - i if re.fullmatch(r"-----BEGIN [A-Z0-9 ]{0,52}-{0,5}", text[i:]) else 0)
    after = text[h.end() :]
    if FOOTER.search(after):
        return partial
    newline, escaped = after.rfind("\n"), after.rfind("\\n")
    cut = max(newline + 1, escaped + 2 if escaped != -1 else 0)
    if _BODY_LINES.fullmatch(after, 0, cut) and _LAST_LINE.fullmatch(after, cut):
        return n - i
    return partial


def _strip_ws(body: str) -> str:
    while True:
        stripped = body.rstrip().removesuffix("\\n").removesuffix("\\r")
        if stripped == body:
            return body
        body = stripped
