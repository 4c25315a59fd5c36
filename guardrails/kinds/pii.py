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
    }

    def build(self, params: dict[str, Any]) -> PiiDetector:
        return PiiDetector(params["entities"] or ENTITIES)
