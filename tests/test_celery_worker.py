"""Celery tasks run in a real worker process (filesystem broker and Redis broker)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from billing.models import UsageRecord
from billing.retention import prune_usage_records
from billing.tasks import prune_usage_records as prune_task
from gateway_project.celery import app
from tests.conftest import database_url, wait_for
from tests.factories import UsageRecordFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _usage(request_id: str, age_days: int) -> UsageRecord:
    return UsageRecordFactory(request_id=request_id, created_at=timezone.now() - timedelta(days=age_days))


def test_prune_keeps_recent_records_and_zero_means_forever():
    _usage("old", 40)
    _usage("new", 1)
    assert prune_usage_records(days=0) == 0
    assert prune_usage_records(days=30) == 1
    assert list(UsageRecord.objects.values_list("request_id", flat=True)) == ["new"]


def _redis_available() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_beat_task_runs_in_a_real_worker(broker):
    if broker == "redis" and not _redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    broker_url = REDIS_URL if broker == "redis" else settings.CELERY_BROKER_URL
    if broker == "filesystem" and not broker_url.startswith("filesystem"):
        pytest.skip("the filesystem broker is the default only without REDIS_URL")
    _usage("old", 40)
    _usage("new", 1)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "CELERY_BROKER_URL": broker_url,
        "GATEWAY_USAGE_RETENTION_DAYS": "30",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gateway_project", "worker", "--pool=solo", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        if broker == "redis":
            with app.connection_for_write(broker_url) as conn:
                prune_task.apply_async(connection=conn)
        else:
            prune_task.delay()  # the app's own configuration: the filesystem broker
        gone = wait_for(lambda: not UsageRecord.objects.filter(request_id="old").exists(), timeout=30, interval=0.2)
        if not gone:
            worker.terminate()
            pytest.fail("worker did not run the task:\n" + worker.communicate(timeout=10)[0].decode(errors="replace"))
        assert UsageRecord.objects.filter(request_id="new").exists()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
