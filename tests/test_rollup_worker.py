"""The rollup and budget tasks run in a real Celery worker process, and their beat
entries land in django-celery-beat's database schedule (editable in the admin)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from billing.models import BudgetAlert, CostRollup
from billing.tasks import check_budgets, rollup_costs
from gateway_project.celery import app
from tests.conftest import database_url, wait_for
from tests.test_celery_worker import REDIS_URL, _redis_available
from tests.factories import BudgetFactory
from tests.test_rollups import ledger_row

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def start_worker(broker_url: str, queue: str) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": database_url(), "SECRET_KEY": settings.SECRET_KEY,
           "CELERY_BROKER_URL": broker_url}
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gateway_project", "worker", "--pool=solo", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", queue],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def stop(worker: subprocess.Popen) -> str:
    worker.terminate()
    try:
        return worker.communicate(timeout=10)[0].decode(errors="replace")
    except subprocess.TimeoutExpired:
        worker.kill()
        return worker.communicate()[0].decode(errors="replace")


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_rollup_and_budget_tasks_run_in_a_real_worker(broker):
    if broker == "redis" and not _redis_available():
        pytest.skip("no Redis at 127.0.0.1:6379")
    broker_url = REDIS_URL if broker == "redis" else settings.CELERY_BROKER_URL
    if broker == "filesystem" and not broker_url.startswith("filesystem"):
        pytest.skip("the filesystem broker is the default only without REDIS_URL")
    ledger_row(team_id=4, team_name="search", cost_usd=Decimal("1.2500000001"))
    ledger_row(team_id=4, team_name="search", cost_usd=Decimal("0.7499999999"))
    budget = BudgetFactory(amount_usd=Decimal("2"))

    # A queue of its own: another test session sharing the broker cannot take the tasks.
    queue = f"test-rollups-{uuid.uuid4().hex[:12]}"
    worker = start_worker(broker_url, queue)
    try:
        if broker == "redis":
            with app.connection_for_write(broker_url) as conn:
                rollup_costs.apply_async(connection=conn, queue=queue)
                check_budgets.apply_async(connection=conn, queue=queue)
        else:  # the app's own configuration: the filesystem broker
            rollup_costs.apply_async(queue=queue)
            check_budgets.apply_async(queue=queue)
        done = wait_for(
            lambda: CostRollup.objects.exists() and BudgetAlert.objects.filter(threshold_pct=100).exists(),
            timeout=30, interval=0.2,
        )
    finally:
        output = stop(worker)
    assert done, "worker did not run the tasks:\n" + output
    rollup = CostRollup.objects.get()
    assert (rollup.day, rollup.team_name, rollup.requests) == (timezone.now().date(), "search", 2)
    assert rollup.cost_usd == Decimal("2")
    assert BudgetAlert.objects.filter(budget=budget).count() == 2  # 80% and 100%
    assert BudgetAlert.objects.get(threshold_pct=100).delivered["log"] is True


def test_beat_entries_are_synced_into_the_database_schedule():
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler

    DatabaseScheduler(app=app)  # what `celery beat` does at start
    tasks = {t.name: t for t in PeriodicTask.objects.select_related("interval")}
    assert tasks["rollup-costs"].task == "billing.tasks.rollup_costs"
    assert tasks["rollup-costs"].interval.every == 600 and tasks["rollup-costs"].interval.period == "seconds"
    assert tasks["check-budgets"].task == "billing.tasks.check_budgets"
    assert tasks["check-budgets"].interval.every == 300 and tasks["check-budgets"].enabled
