"""The in-process guardrail table: every enabled guardrail, validated and compiled,
and which of them apply to a request.

Scope (documented in docs/guardrails.md): a guardrail's routes, teams and keys lists
each restrict it — an empty list means "any" — and a request must pass every list
that is set (routes AND teams AND keys). Every guardrail that applies runs; none
overrides another. A guardrail whose stored parameters no longer validate (edited
outside the admin) is not skipped: it fails as its on_error says.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from gateway_project.snapshot import Snapshot

from .kinds import KINDS, ParamError

log = logging.getLogger("gateway.guardrails")


@dataclass(frozen=True, slots=True)
class GuardrailInfo:
    id: int
    name: str
    kind: str
    input: bool  # checks prompts
    output: bool  # checks answers
    action: str  # redact | block | flag
    fail_closed: bool
    restore: bool
    check: Any  # the kind's built check; None when its parameters are broken
    spans: bool
    is_async: bool
    route_ids: frozenset[int] = frozenset()
    team_ids: frozenset[int] = frozenset()
    key_ids: frozenset[int] = frozenset()
    broken: str = ""  # why the check could not be built

    def applies(self, route_id: int, team_id: int | None, key_id: int | None) -> bool:
        return ((not self.route_ids or route_id in self.route_ids)
                and (not self.team_ids or team_id in self.team_ids)
                and (not self.key_ids or key_id in self.key_ids))


@dataclass(slots=True)
class GuardrailTable:
    guardrails: tuple[GuardrailInfo, ...]
    # (route, team, key) -> (input guardrails, output guardrails); filled on demand
    _selected: dict[tuple, tuple[tuple[GuardrailInfo, ...], tuple[GuardrailInfo, ...]]] = field(default_factory=dict)

    def select(self, route_id: int, team_id: int | None, key_id: int | None
               ) -> tuple[tuple[GuardrailInfo, ...], tuple[GuardrailInfo, ...]]:
        """The guardrails of one request, by direction, in order: one dict lookup on
        the hot path after the first request of a (route, team, key)."""
        token = (route_id, team_id, key_id)
        hit = self._selected.get(token)
        if hit is None:
            if not self.guardrails:
                hit = ((), ())
            else:
                mine = [g for g in self.guardrails if g.applies(route_id, team_id, key_id)]
                hit = (tuple(g for g in mine if g.input), tuple(g for g in mine if g.output))
            if len(self._selected) > 50_000:
                self._selected.clear()  # bounded: many keys cannot grow memory without end
            self._selected[token] = hit
        return hit


def info(g: Any, route_ids=(), team_ids=(), key_ids=()) -> GuardrailInfo:
    """A GuardrailInfo of a Guardrail row (saved or not: the admin sandbox uses unsaved ones)."""
    kind = KINDS.get(g.kind)
    check, broken = None, ""
    if kind is None:
        broken = f"unknown kind '{g.kind}'"
    else:
        try:
            check = kind.build(kind.clean(g.params or {}))
        except (ParamError, ValueError) as exc:
            broken = f"invalid parameters: {exc}"
    if broken:
        log.error("guardrail %s cannot run (%s); it fails %s", g.name, broken,
                  "closed" if g.on_error == "block" else "open")
    return GuardrailInfo(
        id=g.id or 0, name=g.name, kind=g.kind,
        input=g.stage in ("input", "both"), output=g.stage in ("output", "both"),
        action=g.action, fail_closed=g.on_error == "block", restore=bool(g.restore and g.action == "redact"),
        check=check, spans=bool(kind and kind.spans), is_async=bool(kind and kind.is_async),
        route_ids=frozenset(route_ids), team_ids=frozenset(team_ids), key_ids=frozenset(key_ids), broken=broken,
    )


def load_table() -> GuardrailTable:
    from .models import Guardrail

    rows = list(Guardrail.objects.filter(enabled=True).prefetch_related("routes", "teams", "keys"))
    return GuardrailTable(tuple(
        info(g, [r.id for r in g.routes.all()], [t.id for t in g.teams.all()], [k.id for k in g.keys.all()])
        for g in rows
    ))


guardrail_table: Snapshot[GuardrailTable] = Snapshot(load_table, ttl=lambda: settings.GATEWAY_CONFIG_TTL_S)
