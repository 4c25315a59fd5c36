"""The Celery worker heartbeat.

A beat task (routing.tasks.worker_heartbeat, every GATEWAY_HEARTBEAT_INTERVAL_S; the
"worker-heartbeat" periodic task of gateway_project/schedule.py) records which worker
ran it and when: one WorkerHeartbeat row per worker hostname. A fresh row proves the
whole chain works -- beat sends, the broker delivers, a worker runs tasks and reaches
the database. With several workers, whichever takes the task records it: the
heartbeat says "tasks run", not "every worker is alive".

The admin status page shows the last heartbeat and calls it stale after STALE_AFTER
intervals without one; /readyz checks the same when GATEWAY_READY_HEARTBEAT is on.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from gateway_project.health import NotReady

from .models import WorkerHeartbeat

PERIODIC_TASK = "worker-heartbeat"  # its name in gateway_project/schedule.py
STALE_AFTER = 3  # intervals without a heartbeat before it is stale


def record(hostname: str, now: datetime | None = None) -> WorkerHeartbeat:
    """This worker ran the heartbeat task now (one row per hostname, updated)."""
    name = (hostname or socket.gethostname())[:255]
    row, _ = WorkerHeartbeat.objects.update_or_create(
        hostname=name, defaults={"beat_at": now or timezone.now(), "pid": os.getpid()}
    )
    return row


def beat_interval() -> tuple[float, bool]:
    """(seconds between heartbeats, whether beat schedules them). Editors may change
    the periodic task's interval or switch it off in the admin: that one counts; the
    setting only until the task exists (it is created after migrate)."""
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.filter(name=PERIODIC_TASK).select_related("interval").first()
    if task is None:
        return float(settings.GATEWAY_HEARTBEAT_INTERVAL_S), True
    if task.interval is None:  # moved to a crontab or another schedule: keep the setting's idea
        return float(settings.GATEWAY_HEARTBEAT_INTERVAL_S), task.enabled
    return task.interval.schedule.run_every.total_seconds(), task.enabled


@dataclass(frozen=True, slots=True)
class HeartbeatState:
    """The workers' latest heartbeats, newest first, judged against the interval."""

    interval_s: float
    scheduled: bool  # the periodic task exists and is enabled
    now: datetime
    workers: list[WorkerHeartbeat] = field(default_factory=list)

    @property
    def last(self) -> WorkerHeartbeat | None:
        return self.workers[0] if self.workers else None

    @property
    def age_s(self) -> float | None:
        return None if self.last is None else (self.now - self.last.beat_at).total_seconds()

    @property
    def stale_after_s(self) -> float:
        return STALE_AFTER * self.interval_s

    @property
    def stale(self) -> bool:
        """No heartbeat at all, or none for more than STALE_AFTER intervals."""
        return self.age_s is None or self.age_s > self.stale_after_s

    def worker_stale(self, row: WorkerHeartbeat) -> bool:
        return (self.now - row.beat_at).total_seconds() > self.stale_after_s


def heartbeat_state(now: datetime | None = None, limit: int = 20) -> HeartbeatState:
    interval, scheduled = beat_interval()
    return HeartbeatState(interval, scheduled, now or timezone.now(), list(WorkerHeartbeat.objects.all()[:limit]))


def readiness() -> dict[str, object]:
    """/readyz's heartbeat check (when GATEWAY_READY_HEARTBEAT is on): a worker ran the
    heartbeat task within the last STALE_AFTER intervals."""
    state = heartbeat_state(limit=1)
    details: dict[str, object] = {
        "worker": state.last.hostname if state.last else None,
        "age_s": None if state.age_s is None else round(state.age_s, 1),
        "stale_after_s": state.stale_after_s,
    }
    if state.last is None:
        raise NotReady("no Celery worker heartbeat yet", **details)
    if state.stale:
        raise NotReady(f"the last Celery worker heartbeat is {state.age_s:.0f} s old", **details)
    return details
