"""The in-process routing table: every enabled route with its usable targets.

One snapshot (a handful of queries) serves all requests until it is older than
GATEWAY_CONFIG_TTL_S; saves in this process invalidate it at once (signals).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from gateway_project.snapshot import Snapshot
from providers.catalog import ModelInfo, load_models
from providers.types import ErrorKind

from .models import Route, RouteTarget


@dataclass(frozen=True, slots=True)
class TargetInfo:
    model: ModelInfo
    order: int
    weight: int


@dataclass(frozen=True, slots=True)
class RouteInfo:
    id: int
    name: str
    strategy: str
    timeout_s: float
    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float
    retry_after_cap_s: float
    retry_on: frozenset[ErrorKind]
    targets: tuple[TargetInfo, ...]
    created: int  # unix time, for /v1/models


@dataclass(frozen=True, slots=True)
class RoutingTable:
    routes: dict[str, RouteInfo]  # enabled routes by public name
    disabled: frozenset[str]  # names of routes that exist but are switched off


def load_table() -> RoutingTable:
    models = load_models()
    targets: dict[int, list[TargetInfo]] = {}
    for t in RouteTarget.objects.filter(enabled=True).order_by("order", "id"):
        model = models.get(t.model_id)
        if model is not None:  # disabled models/providers simply drop out
            targets.setdefault(t.route_id, []).append(TargetInfo(model, t.order, t.weight))
    routes, disabled = {}, set()
    for r in Route.objects.all():
        if not r.enabled:
            disabled.add(r.name)
            continue
        routes[r.name] = RouteInfo(
            id=r.id,
            name=r.name,
            strategy=r.strategy,
            timeout_s=float(r.timeout_s),
            max_attempts=r.max_attempts,
            backoff_base_s=r.backoff_base_ms / 1000,
            backoff_max_s=r.backoff_max_ms / 1000,
            retry_after_cap_s=float(r.retry_after_cap_s),
            retry_on=frozenset(ErrorKind(k) for k in r.retry_on or [] if k in ErrorKind._value2member_map_),
            targets=tuple(targets.get(r.id, ())),
            created=int(r.created_at.timestamp()),
        )
    return RoutingTable(routes, frozenset(disabled))


routing_table: Snapshot[RoutingTable] = Snapshot(load_table, ttl=lambda: settings.GATEWAY_CONFIG_TTL_S)
