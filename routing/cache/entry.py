"""A cached answer as stored: the provider's answer (before output guardrails, which
run again on every hit), what it cost, who answered and when. JSON, a few hundred
bytes for a typical answer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

import orjson

from providers.types import ChatResponse, Usage


@dataclass(frozen=True, slots=True)
class Entry:
    response: ChatResponse
    cost: Decimal  # what the answer cost when it was bought: what a hit saves
    origin: str  # "provider/model" that answered
    stored_at: float  # unix time

    def age_s(self, now: float | None = None) -> int:
        return max(0, int((now or time.time()) - self.stored_at))


def encode(entry: Entry) -> bytes:
    r = entry.response
    usage = [r.usage.prompt_tokens, r.usage.completion_tokens] if r.usage is not None else None
    return orjson.dumps(
        {"v": 1, "model": r.model, "choices": r.choices, "usage": usage, "cost": str(entry.cost),
         "origin": entry.origin, "at": round(entry.stored_at, 3)},
    )


def decode(raw: bytes) -> Entry | None:
    """The entry, or None for anything unreadable (a foreign or older value is a miss,
    never an error)."""
    try:
        doc = orjson.loads(raw)
        if doc.get("v") != 1 or not isinstance(doc.get("choices"), list):
            return None
        usage = doc.get("usage")
        return Entry(
            ChatResponse(str(doc["model"]), doc["choices"], Usage(int(usage[0]), int(usage[1])) if usage else None),
            Decimal(doc.get("cost") or 0),
            str(doc.get("origin") or ""),
            float(doc.get("at") or 0),
        )
    except (ValueError, TypeError, KeyError, IndexError, ArithmeticError):
        return None
