"""Reading the end of a text backwards, for `hold`: cheap, and never more than a bound."""

from __future__ import annotations


def trailing_start(text: str, chars: frozenset[str], limit: int) -> int:
    """Where the run of `chars` that ends `text` starts, looking at most `limit` back."""
    i = len(text)
    lo = max(0, i - limit)
    while i > lo and text[i - 1] in chars:
        i -= 1
    return i
