"""The Celery worker heartbeat: the record function and its staleness rule directly,
then the real chain -- a Celery worker with embedded beat (DatabaseScheduler, the
filesystem broker in a directory of its own) runs the heartbeat task on its schedule,
and the admin status page shows the worker alive, then stale once it is stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from gateway_project.schedule import DEFAULT_SCHEDULE, ensure_periodic_tasks
from routing.heartbeat import PERIODIC_TASK, heartbeat_state, record
from routing.models import WorkerHeartbeat
from routing.tasks import worker_heartbeat
from tests.conftest import database_url, wait_for

ROOT = Path(__file__).resolve().parent.parent
STATUS = "admin:routing_status"


def every(seconds: int, enabled: bool = True) -> PeriodicTask:
    """The heartbeat's periodic task, as an editor would set it in the admin."""
    interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
    task, _ = PeriodicTask.objects.update_or_create(
        name=PERIODIC_TASK, defaults={"task": "routing.tasks.worker_heartbeat", "interval": interval, "enabled": enabled})
    return task


@pytest.mark.django_db
def test_record_keeps_one_row_per_worker_with_its_latest_beat():
    earlier = timezone.now() - timedelta(seconds=50)
    record("celery@a", now=earlier)
    record("celery@b", now=earlier + timedelta(seconds=5))
    latest = record("celery@a")
    assert WorkerHeartbeat.objects.count() == 2
    assert WorkerHeartbeat.objects.get(hostname="celery@a").beat_at == latest.beat_at
    assert heartbeat_state().last.hostname == "celery@a"


@pytest.mark.django_db
def test_stale_after_three_intervals_of_the_periodic_task_as_edited(settings):
    settings.GATEWAY_HEARTBEAT_INTERVAL_S = 30
    now = timezone.now()
    assert heartbeat_state(now).stale  # no heartbeat at all
    record("celery@a", now=now - timedelta(seconds=80))
    PeriodicTask.objects.filter(name=PERIODIC_TASK).delete()
    state = heartbeat_state(now)
    assert (state.interval_s, state.stale_after_s, state.stale) == (30, 90, False)  # the setting, until the task exists
    every(20)  # an editor made it beat every 20 s: 80 s without one is more than 3 intervals
    state = heartbeat_state(now)
    assert (state.interval_s, state.stale, state.scheduled) == (20, True, True)
    every(20, enabled=False)
    assert heartbeat_state(now).scheduled is False


@pytest.mark.django_db
def test_the_default_schedule_has_the_heartbeat(settings):
    assert DEFAULT_SCHEDULE[PERIODIC_TASK] == ("routing.tasks.worker_heartbeat", settings.GATEWAY_HEARTBEAT_INTERVAL_S)
    PeriodicTask.objects.filter(name=PERIODIC_TASK).delete()
    assert ensure_periodic_tasks() == 1
    task = PeriodicTask.objects.get(name=PERIODIC_TASK)
    assert task.task == "routing.tasks.worker_heartbeat" and task.enabled


@pytest.mark.django_db
def test_the_task_records_the_host_it_ran_on():
    hostname = worker_heartbeat.apply().get()  # run eagerly: Celery names this host (a worker: its node name)
    assert hostname and WorkerHeartbeat.objects.get(hostname=hostname).pid == os.getpid()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_with_beat_records_heartbeats_and_the_admin_sees_them(admin_client, tmp_path):
    if not settings.CELERY_BROKER_URL.startswith("filesystem"):
        pytest.skip("the worker here uses the filesystem broker of its own directory (the default without Redis)")
    # Only the heartbeat runs, every second (the other default tasks would probe and prune the test data).
    PeriodicTask.objects.exclude(name=PERIODIC_TASK).update(enabled=False)
    every(1)
    hostname = f"health-test-{os.getpid()}@localhost"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "GATEWAY_VAR_DIR": str(tmp_path),  # its own broker folders: no other test's worker takes the task
        "CELERY_BROKER_URL": "filesystem://",
        "GATEWAY_HEARTBEAT_INTERVAL_S": "1",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gateway_project", "worker", "-B", "--pool=solo", "-n", hostname,
         "--loglevel=WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
         "-s", str(tmp_path / "beat-schedule")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        first = wait_for(lambda: WorkerHeartbeat.objects.filter(hostname=hostname).first(), timeout=60, interval=0.2)
        if first is None:
            worker.terminate()
            pytest.fail("no heartbeat from the worker:\n" + worker.communicate(timeout=10)[0].decode(errors="replace"))
        # Beat keeps sending it: the row's time moves on.
        assert wait_for(lambda: WorkerHeartbeat.objects.get(hostname=hostname).beat_at > first.beat_at,
                        timeout=20, interval=0.2)
        page = admin_client.get(reverse(STATUS)).content.decode()
        assert hostname in page and '<span class="state-ok">alive</span>' in page
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
    # Stopped: after three intervals without a beat the page says so.
    last = WorkerHeartbeat.objects.get(hostname=hostname).beat_at
    time.sleep(max(0.0, 3.3 - (timezone.now() - last).total_seconds()))
    page = admin_client.get(reverse(STATUS)).content.decode()
    assert '<span class="state-bad">stale</span>' in page
    assert WorkerHeartbeat.objects.get(hostname=hostname).beat_at == last
