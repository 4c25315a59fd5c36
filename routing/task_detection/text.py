"""A message as the rules read it: clipped to its head and tail, lowercased with
straight quotes, and its set of words (the trigger-word lookups run against it)."""

from __future__ import annotations

import string
from dataclasses import dataclass

# Long messages are read on their head and tail only: requests usually put the
# instruction before or after the pasted material, and the cost stays bounded.
HEAD_CHARS = 4000
TAIL_CHARS = 2000

# --- text preparation -------------------------------------------------------------------
# Curly quotes read as straight ones, so "what’s" matches a rule written "what's".
# One character for one, so positions in the lowered text are positions in the original.
_STRAIGHTEN = str.maketrans("‘’“”", "''\"\"")
# Characters that separate words when collecting trigger words (besides whitespace).
_SEPARATORS = str.maketrans({c: " " for c in string.punctuation + "‘’“”«»–—…•·→"})


@dataclass(frozen=True, slots=True)
class Text:
    """A message as the rules read it: clipped, lowercased, and its set of words."""

    original: str
    lowered: str
    words: frozenset[str]

    @classmethod
    def of(cls, text: str) -> Text:
        if len(text) > HEAD_CHARS + TAIL_CHARS:
            text = f"{text[:HEAD_CHARS]}\n{text[-TAIL_CHARS:]}"
        lowered = text.lower().translate(_STRAIGHTEN)
        return cls(text, lowered, frozenset(lowered.translate(_SEPARATORS).split()))
