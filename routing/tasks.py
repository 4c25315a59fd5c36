"""Celery tasks of routing: thin wrappers over functions tested directly."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from celery import shared_task

from . import health


@shared_task(name="routing.tasks.probe_models")
def probe_models() -> dict:
    results = async_to_sync(health.sweep)()
    return {"probed": len(results), "healthy": sum(r.ok for r in results)}


@shared_task(name="routing.tasks.prune_health_checks")
def prune_health_checks() -> int:
    return health.prune_health_checks()
