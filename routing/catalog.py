"""The in-process routing table: every enabled route with its usable targets.

One snapshot (a handful of queries) serves all requests until it is older than
GATEWAY_CONFIG_TTL_S; saves in this process invalidate it at once (signals).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.conf import settings

from gateway_project.snapshot import Snapshot
from providers.catalog import ModelInfo, load_models
from providers.types import ErrorKind

from .breaker import BreakerPolicy
from .cache.policy import NO_CACHE, CachePolicy
from .conditions import Rule, parse_rules
from .models import Route, RouteTarget


def breaker_key(route_id: int, model_id: int) -> str:
    """The shared-state key of the circuit breaker of one route's use of one model."""
    return f"route:{route_id}:model:{model_id}"


def stats_key(model_id: int) -> str:
    """The shared-state key of a model's latency statistics (shared by its routes)."""
    return f"model:{model_id}"


@dataclass(frozen=True, slots=True)
class TargetInfo:
    model: ModelInfo
    order: int
    weight: int
    task_types: frozenset[str] = frozenset()
    route_id: int = 0  # set by route_info(): a target is one route's use of a model

    @property
    def key(self) -> str:
        """The target's circuit breaker in shared state: it belongs to route x model, and
        is governed by that route's BreakerPolicy (RouteInfo.breaker), so another
        route's failures never open it and a route whose rules are off never opens."""
        return breaker_key(self.route_id, self.model.id)

    @property
    def stats_key(self) -> str:
        """The target's latency statistics in shared state: a property of the model,
        shared by every route that uses it (the least-latency strategy reads them)."""
        return stats_key(self.model.id)


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
    breaker: BreakerPolicy = BreakerPolicy()
    try_when_all_open: bool = False
    sticky_by: str = "none"
    explore_rate: float = 0.1
    min_quality: int = 0
    rules: tuple[Rule, ...] = ()
    cache: CachePolicy = NO_CACHE
    trace_content: bool = False  # prompts and answers in trace spans (routing.tracing)


@dataclass(frozen=True, slots=True)
class RoutingTable:
    routes: dict[str, RouteInfo]  # enabled routes by public name
    disabled: frozenset[str]  # names of routes that exist but are switched off


def _or(value, default):
    return default if value is None else value


def breaker_policy(route: Route) -> BreakerPolicy:
    return BreakerPolicy(
        failure_threshold=_or(route.breaker_failure_threshold, settings.GATEWAY_BREAKER_FAILURES),
        failure_rate=float(_or(route.breaker_failure_rate, settings.GATEWAY_BREAKER_FAILURE_RATE)),
        window_s=float(_or(route.breaker_window_s, settings.GATEWAY_BREAKER_WINDOW_S)),
        min_requests=_or(route.breaker_min_requests, settings.GATEWAY_BREAKER_MIN_REQUESTS),
        cooldown_s=float(_or(route.breaker_cooldown_s, settings.GATEWAY_BREAKER_COOLDOWN_S)),
        probe_timeout_s=max(float(route.timeout_s), 1.0),
    )


def route_info(route: Route, targets: tuple[TargetInfo, ...]) -> RouteInfo:
    targets = tuple(t if t.route_id == route.id else replace(t, route_id=route.id) for t in targets)
    return RouteInfo(
        id=route.id,
        name=route.name,
        strategy=route.strategy,
        timeout_s=float(route.timeout_s),
        max_attempts=route.max_attempts,
        backoff_base_s=route.backoff_base_ms / 1000,
        backoff_max_s=route.backoff_max_ms / 1000,
        retry_after_cap_s=float(route.retry_after_cap_s),
        retry_on=frozenset(ErrorKind(k) for k in route.retry_on or [] if k in ErrorKind._value2member_map_),
        targets=targets,
        created=int(route.created_at.timestamp()),
        breaker=breaker_policy(route),
        try_when_all_open=route.when_all_open == "try_anyway",
        sticky_by=route.sticky_by,
        explore_rate=float(route.explore_rate),
        min_quality=route.min_quality,
        rules=tuple(parse_rules(route.rules or [])),
        cache=cache_policy(route),
        trace_content=route.trace_content,
    )


def cache_policy(route: Route) -> CachePolicy:
    if route.cache_mode == "off":
        return NO_CACHE
    return CachePolicy(
        mode=route.cache_mode,
        ttl_s=route.cache_ttl_s,
        scope=route.cache_scope,
        threshold=float(route.cache_threshold) if route.cache_threshold is not None else None,
        max_messages=route.cache_max_messages,
        only_deterministic=route.cache_only_deterministic,
        allow_tools=route.cache_allow_tools,
        epoch=route.cache_epoch,
    )


def load_table() -> RoutingTable:
    models = load_models()
    targets: dict[int, list[TargetInfo]] = {}
    for t in RouteTarget.objects.filter(enabled=True).order_by("order", "id"):
        model = models.get(t.model_id)
        if model is not None:  # disabled models/providers simply drop out
            targets.setdefault(t.route_id, []).append(
                TargetInfo(model, t.order, t.weight, frozenset(t.task_types or ()))
            )
    routes, disabled = {}, set()
    for r in Route.objects.all():
        if not r.enabled:
            disabled.add(r.name)
            continue
        routes[r.name] = route_info(r, tuple(targets.get(r.id, ())))
    return RoutingTable(routes, frozenset(disabled))


routing_table: Snapshot[RoutingTable] = Snapshot(load_table, ttl=lambda: settings.GATEWAY_CONFIG_TTL_S)
