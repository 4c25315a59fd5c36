"""Celery tasks of routing: thin wrappers over functions tested directly."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from celery import shared_task

from providers.http import close_session

from . import health


async def _sweep_once():
    try:
        return await health.sweep()
    finally:
        await close_session()  # this loop ends with the task


@shared_task(name="routing.tasks.probe_models")
def probe_models() -> dict:
    results = async_to_sync(_sweep_once)()
    return {"probed": len(results), "healthy": sum(r.ok for r in results)}


@shared_task(name="routing.tasks.prune_health_checks")
def prune_health_checks() -> int:
    return health.prune_health_checks()


# --- issue 15: the Celery worker heartbeat ---
@shared_task(name="routing.tasks.worker_heartbeat", bind=True)
def worker_heartbeat(self) -> str:
    """Record that this worker ran the beat's heartbeat (routing.heartbeat)."""
    from . import heartbeat

    return heartbeat.record(self.request.hostname or "").hostname
