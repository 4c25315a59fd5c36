"""Deterministic "embeddings" shared by the fake providers.

A vector is drawn from a hash of the model and the input, normalised to length 1 and
rounded to float32 (what real embedding models compute), so the same input always
gets the same vector, different inputs different ones, and a float answer and a
base64 answer of the same request decode to identical values. ``dimensions`` keeps the
first values and normalises again, as OpenAI's text-embedding-3 models and Ollama do.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import sys
from array import array
from typing import Any


def embedding(model: str, item: Any, size: int, dimensions: int | None = None) -> list[float]:
    """The vector of one input (a string or a list of token ids)."""
    rng = random.Random(hashlib.sha256(f"{model}|{item!r}".encode()).digest())
    values = [rng.gauss(0, 1) for _ in range(size)]
    if dimensions is not None and 0 < dimensions < size:
        values = values[:dimensions]
    return array("f", _unit(values)).tolist()


def _unit(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def to_base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: the little-endian float32 bytes."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode()


def from_base64(text: str) -> list[float]:
    packed = array("f", base64.b64decode(text))
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()


def token_count(item: Any) -> int:
    """The fakes' token count of one input: words of a text (as for chat), or the ids."""
    return len(item.split()) if isinstance(item, str) else len(item)
