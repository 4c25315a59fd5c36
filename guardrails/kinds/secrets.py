"""secrets: API keys, tokens and private keys (prefix, length and entropy; published
example keys are allowed)."""

from __future__ import annotations

from typing import Any

from guardrails.detectors.secrets import SecretsDetector

from .base import Kind, Param


class Secrets(Kind):
    name = "secrets"
    label = "Secrets and credentials"
    help = "Finds provider API keys, cloud and chat tokens and private key blocks."
    params: dict[str, Param] = {}

    def build(self, params: dict[str, Any]) -> SecretsDetector:
        return SecretsDetector()
