"""Active health checks: probe every enabled model, keep the history, feed the
breakers and the latency statistics.

A probe is about a model; breakers belong to route x model (routing.catalog.TargetInfo),
so one probe result feeds the breaker of every enabled route that uses the model,
each under that route's own policy (a route whose rules are off never opens), and
the model's latency statistics once.

With Redis the sweep (a Celery beat task, routing.tasks.probe_models) writes straight
into the shared breaker store. Without Redis the worker is another process whose
memory the gateway cannot see, so the gateway absorbs new probe results from the
database whenever it refreshes its routing table (absorb_health).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from gateway_project.db import run_db
from providers.catalog import load_models
from providers.health import ProbeResult, probe
from providers.models import HealthCheck

from . import engine
from .breaker import BreakerPolicy, BreakerStore, Permit, State, get_breaker_store
from .catalog import RoutingTable, load_table, routing_table, stats_key

log = logging.getLogger("gateway.health")
BREAKER_KINDS = {k.value for k in engine.BREAKER_KINDS}  # the engine's rule, by value (rows store strings)
CONCURRENCY = 8


def default_policy() -> BreakerPolicy:
    """The gateway-wide breaker settings (what a route without its own gets)."""
    return BreakerPolicy(
        failure_threshold=settings.GATEWAY_BREAKER_FAILURES,
        failure_rate=settings.GATEWAY_BREAKER_FAILURE_RATE,
        window_s=settings.GATEWAY_BREAKER_WINDOW_S,
        min_requests=settings.GATEWAY_BREAKER_MIN_REQUESTS,
        cooldown_s=settings.GATEWAY_BREAKER_COOLDOWN_S,
    )


Breakers = dict[int, list[tuple[str, BreakerPolicy]]]  # model id -> (breaker key, its route's policy)


def breakers_by_model(table: RoutingTable) -> Breakers:
    """Every breaker a probe of each model feeds: one per enabled route using it."""
    found: Breakers = {}
    for route in table.routes.values():
        for target in route.targets:
            found.setdefault(target.model.id, []).append((target.key, route.breaker))
    return found


async def feed(
    store: BreakerStore,
    breakers: list[tuple[str, BreakerPolicy]],
    model_id: int,
    ok: bool,
    error_kind: str,
    latency_s: float | None,
) -> None:
    """One probe result of model `model_id` into each of its route x model breakers
    (with that route's policy) and into the model's latency statistics.

    A healthy answer from a tripped breaker counts as its half-open trial (so a
    recovered provider rejoins without waiting for client traffic); failures count
    like any failed request. Errors that say nothing about health are ignored.
    """
    if ok:
        if latency_s is not None:
            await store.record_latency(stats_key(model_id), total_s=latency_s)
        for key, policy in breakers:
            status = await store.status(key, policy)
            if status.state is State.CLOSED:
                await store.record(key, policy, success=True)
            elif await store.admit(key, policy) is Permit.PROBE:
                await store.record(key, policy, success=True, probe=True)
    elif error_kind in BREAKER_KINDS:
        for key, policy in breakers:
            await store.record(key, policy, success=False)


async def sweep() -> list[ProbeResult]:
    """Probe all enabled models concurrently; store the results; feed the shared store."""
    models = list((await run_db(load_models)).values())
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(model):
        async with gate:
            return await probe(model)

    results = await asyncio.gather(*(one(m) for m in models))
    await run_db(
        HealthCheck.objects.bulk_create,
        [
            HealthCheck(model_id=r.model_id, ok=r.ok, error_kind=r.error_kind, message=r.message[:300],
                        latency_ms=int(r.latency_s * 1000))
            for r in results
        ],
    )
    if settings.REDIS_URL:
        store = get_breaker_store()
        # Read now, not from a snapshot: the worker has no admin saves to invalidate one.
        breakers = breakers_by_model(await run_db(load_table))
        for r in results:
            await feed(store, breakers.get(r.model_id, []), r.model_id, r.ok, r.error_kind, r.latency_s)
    return results


def prune_health_checks(days: int | None = None) -> int:
    days = settings.GATEWAY_HEALTH_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    return HealthCheck.objects.filter(checked_at__lt=cutoff).delete()[0]


# --- embedded mode: the gateway absorbs results written by the worker ---------------
_absorbed: dict[int, int] = {}  # model id -> id of the last probe result fed


def reset_absorbed() -> None:
    """Forget which probe results were fed (a fresh process; tests with a fresh database)."""
    _absorbed.clear()


def new_checks_since(absorbed: dict[int, int]) -> list[HealthCheck]:
    # Only recent results: a gateway starting up must not act on yesterday's failure.
    recent = timezone.now() - timedelta(seconds=3 * settings.GATEWAY_HEALTH_INTERVAL_S)
    latest = HealthCheck.objects.filter(checked_at__gte=recent).values("model_id").annotate(last=Max("id"))
    ids = [row["last"] for row in latest if row["last"] > absorbed.get(row["model_id"], 0)]
    return list(HealthCheck.objects.filter(id__in=ids))


async def absorb_health() -> int:
    """Feed probe results the worker wrote since last time (no-op with Redis)."""
    if settings.REDIS_URL:
        return 0
    checks = await run_db(new_checks_since, dict(_absorbed))
    if not checks:
        return 0
    store = get_breaker_store()
    breakers = breakers_by_model(await routing_table.get())  # the snapshot this process routes with
    for check in checks:
        if check.id > _absorbed.get(check.model_id, 0):
            _absorbed[check.model_id] = check.id
            latency = check.latency_ms / 1000 if check.latency_ms is not None else None
            await feed(store, breakers.get(check.model_id, []), check.model_id, check.ok, check.error_kind, latency)
    return len(checks)
