"""Active health checks: probe every enabled model, keep the history, feed the
breakers and the latency statistics.

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
from .breaker import Admission, BreakerPolicy, BreakerStore, State, get_breaker_store

log = logging.getLogger("gateway.health")
BREAKER_KINDS = {k.value for k in engine.BREAKER_KINDS}  # the engine's rule, by value (rows store strings)
CONCURRENCY = 8


def default_policy() -> BreakerPolicy:
    return BreakerPolicy(
        failure_threshold=settings.GATEWAY_BREAKER_FAILURES,
        failure_rate=settings.GATEWAY_BREAKER_FAILURE_RATE,
        window_s=settings.GATEWAY_BREAKER_WINDOW_S,
        min_requests=settings.GATEWAY_BREAKER_MIN_REQUESTS,
        cooldown_s=settings.GATEWAY_BREAKER_COOLDOWN_S,
    )


async def feed(store: BreakerStore, model_id: int, ok: bool, error_kind: str, latency_s: float | None) -> None:
    """One probe result into the breaker and latency statistics of `model:<id>`.

    A healthy answer from a tripped target counts as its half-open trial (so a
    recovered provider rejoins without waiting for client traffic); failures count
    like any failed request. Errors that say nothing about health are ignored.
    """
    key, policy = f"model:{model_id}", default_policy()
    if ok:
        if latency_s is not None:
            await store.record_latency(key, total_s=latency_s)
        status = await store.status(key, policy)
        if status.state is not State.CLOSED and await store.admit(key, policy) is Admission.PROBE:
            await store.record(key, policy, success=True, probe=True)
        elif status.state is State.CLOSED:
            await store.record(key, policy, success=True)
    elif error_kind in BREAKER_KINDS:
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
        for r in results:
            await feed(store, r.model_id, r.ok, r.error_kind, r.latency_s)
    return results


def prune_health_checks(days: int | None = None) -> int:
    days = settings.GATEWAY_HEALTH_RETENTION_DAYS if days is None else days
    cutoff = timezone.now() - timedelta(days=days)
    return HealthCheck.objects.filter(checked_at__lt=cutoff).delete()[0]


# --- embedded mode: the gateway absorbs results written by the worker ---------------
_absorbed: dict[int, int] = {}  # model id -> id of the last probe result fed


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
    store = get_breaker_store()
    for check in checks:
        if check.id > _absorbed.get(check.model_id, 0):
            _absorbed[check.model_id] = check.id
            latency = check.latency_ms / 1000 if check.latency_ms is not None else None
            await feed(store, check.model_id, check.ok, check.error_kind, latency)
    return len(checks)
