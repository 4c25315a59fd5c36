"""The audit of guardrail decisions: metrics, a log line and a violation row each —
entity types and counts, never the matched text, the prompt or the answer.

Rows are written off the response path (one bulk insert per request, only when a
guardrail found something or failed); the same counts also go into the request's
usage record (its `annotations`), which the ledger never loses.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gateway_project.background import spawn
from gateway_project.db import run_db

from . import metrics
from .engine import Decision
from .policy import GuardrailInfo

log = logging.getLogger("gateway.guardrails")


@dataclass(frozen=True, slots=True)
class Who:
    request_id: str
    key_id: int | None
    key_prefix: str
    team_id: int | None
    team_name: str
    route_name: str
    stream: bool


_passed: dict[tuple[str, str, str], Any] = {}  # bound counter children: labels() costs a lock and a lookup


def count_passes(guardrails: Sequence[GuardrailInfo], stage: str, decided: Sequence[Decision]) -> None:
    names = {d.guardrail.name for d in decided} if decided else ()
    for g in guardrails:
        if g.name not in names:
            token = (g.name, stage, g.action)
            child = _passed.get(token)
            if child is None:
                if len(_passed) > 10_000:
                    _passed.clear()
                child = _passed[token] = metrics.DECISIONS.labels(g.name, stage, g.action, "passed")
            child.inc()


def record(decisions: Sequence[Decision], who: Who) -> None:
    """Count, log and (in the background) store the decisions of one request."""
    if not decisions:
        return
    for d in decisions:
        g = d.guardrail
        metrics.DECISIONS.labels(g.name, d.stage, g.action, d.outcome).inc()
        for entity, n in d.entities.items():
            metrics.FINDINGS.labels(g.name, d.stage, entity).inc(n)
        log.info("guardrail %s %s on %s of request %s (route %s, key %s): %s", g.name, d.outcome, d.stage,
                 who.request_id, who.route_name, who.key_prefix or "-",
                 ", ".join(f"{e}={n}" for e, n in sorted(d.entities.items())) or "no findings")
    spawn(run_db(_store, list(decisions), who))


def _store(decisions: list[Decision], who: Who) -> None:
    from .models import Violation

    try:
        Violation.objects.bulk_create([
            Violation(guardrail_id=d.guardrail.id or None, guardrail_name=d.guardrail.name, stage=d.stage,
                      action=d.guardrail.action, outcome=d.outcome, request_id=who.request_id, key_id=who.key_id,
                      key_prefix=who.key_prefix, team_id=who.team_id, team_name=who.team_name,
                      route_name=who.route_name, entities=dict(d.entities), stream=who.stream)
            for d in decisions
        ])
    except Exception as exc:  # noqa: BLE001 - the usage record keeps the same counts
        log.warning("guardrail violations of request %s not stored: %s", who.request_id, type(exc).__name__)


def annotation(decisions: Sequence[Decision]) -> dict:
    """The usage record's note: {guardrail: {"stage", "outcome", "entities"}} per side."""
    return {d.guardrail.name: {"action": d.guardrail.action, "outcome": d.outcome, "entities": dict(d.entities)}
            for d in decisions}
