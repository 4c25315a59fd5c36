"""A JSON text with one top-level member's value replaced and every other byte kept:
what a passthrough needs to send a client's body on with only the model changed
(whitespace, key order, number spellings and escapes as the client wrote them)."""

from __future__ import annotations

import re
from typing import Any

import orjson

_WS = re.compile(rb"[ \t\r\n]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_STRUCTURE = re.compile(rb'["{}\[\]]')
_SCALAR_END = re.compile(rb"[ \t\r\n,}\]]")


def _value_end(raw: bytes, i: int) -> int:
    """Where the JSON value starting at `i` ends (`raw` is valid JSON: it was parsed)."""
    first = raw[i:i + 1]
    if first == b'"':
        return _STRING.match(raw, i).end()
    if first in (b"{", b"["):
        depth = 0
        while True:
            found = _STRUCTURE.search(raw, i)
            if found.group() == b'"':
                i = _STRING.match(raw, found.start()).end()
                continue
            depth += 1 if found.group() in (b"{", b"[") else -1
            i = found.end()
            if depth == 0:
                return i
    end = _SCALAR_END.search(raw, i)
    return end.start() if end else len(raw)


def replace_member(raw: bytes, member: str, value: Any) -> bytes | None:
    """`raw` (a JSON object, already parsed once) with the value of its top-level
    `member` replaced by `value` and every other byte kept; None if that is not
    certain (no such member, more than one, or not a JSON object after all). The scan
    jumps from one structural character to the next with regular expressions, so a
    large prompt costs milliseconds."""
    try:
        spans = _member_spans(raw, member)
    except (AttributeError, UnicodeDecodeError, orjson.JSONDecodeError):  # not the valid JSON promised
        return None
    if spans is None or len(spans) != 1:
        return None
    start, end = spans[0]
    return raw[:start] + orjson.dumps(value) + raw[end:]


def _member_spans(raw: bytes, member: str) -> list[tuple[int, int]] | None:
    """Where each top-level `member`'s value is (start, end), or None if `raw` is not
    an object."""
    i = _WS.match(raw).end()
    if raw[i:i + 1] != b"{":
        return None
    i, spans = i + 1, []
    while True:
        i = _WS.match(raw, i).end()
        if raw[i:i + 1] == b"}":
            break
        key = _STRING.match(raw, i)
        if key is None:
            return None
        name = key.group()
        i = _WS.match(raw, key.end()).end()
        if raw[i:i + 1] != b":":
            return None
        i = _WS.match(raw, i + 1).end()
        end = _value_end(raw, i)
        if (orjson.loads(name) if b"\\" in name else name[1:-1].decode()) == member:
            spans.append((i, end))
        i = _WS.match(raw, end).end()
        if raw[i:i + 1] == b",":
            i += 1
        elif raw[i:i + 1] == b"}":
            break
        else:
            return None
    return spans
