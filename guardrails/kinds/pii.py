"""pii: personal data (e-mail, phone, cards, IBAN, SSN, Vietnamese CCCD/CMND, IPs)."""

from __future__ import annotations

from typing import Any

from guardrails.detectors.pii import ENTITIES, PiiDetector

from .base import Kind, Param


class Pii(Kind):
    name = "pii"
    label = "Personal data (PII)"
    help = "Finds personal identifiers; each finding becomes a typed placeholder such as [EMAIL_1] when redacting."
    params = {
        "entities": Param("choices", "Which identifiers to look for (none selected = all).", choices=ENTITIES,
                          default=lambda: list(ENTITIES)),
        "stream_hold": Param("choice", "Streams: 'words' (default) holds any word that could still grow into an "
                             "e-mail address, one chunk at most, so an address split anywhere is caught whole; "
                             "'at_sign' streams prose with no delay and holds an address from its '@' on (the part "
                             "before the '@' may already have been sent).", choices=("words", "at_sign"),
                             default="words"),
    }

    def build(self, params: dict[str, Any]) -> PiiDetector:
        return PiiDetector(params["entities"] or ENTITIES, hold_words=params["stream_hold"] != "at_sign")
