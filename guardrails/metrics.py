"""Prometheus series of the guardrails (exported at /metrics). No key or team ids as
labels: guardrail names are few and chosen by admins; keys are many."""

from __future__ import annotations

from prometheus_client import Counter

DECISIONS = Counter(
    "gateway_guardrail_decisions_total",
    "Guardrail decisions: what each guardrail did on each side (passed = checked, found nothing)",
    ("guardrail", "stage", "action", "outcome"),
)
FINDINGS = Counter(
    "gateway_guardrail_findings_total", "Findings by guardrail, stage and entity type", ("guardrail", "stage", "entity")
)
