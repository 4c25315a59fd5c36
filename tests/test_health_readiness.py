"""/healthz and /readyz over real HTTP against the live gateway: liveness touches
nothing, readiness names every check (database, Redis when configured, the ledger's
dead letters, optionally the worker heartbeat), answers 503 -- never 500 -- when one
fails, and within about one check timeout whatever hangs (the checks run concurrently)."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import httpx
import pytest
import redis
from django.utils import timezone

from billing.models import UsageDeadLetter
from gateway_project.health import NotReady
from routing.heartbeat import record
from tests.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)
REDIS_URL = os.environ.get("TEST_HEALTH_REDIS_URL", "redis://127.0.0.1:6379/14")
LEDGER = "billing.ledger_health.readiness"
HEARTBEAT = "routing.heartbeat.readiness"


def _redis_up() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


needs_redis = pytest.mark.skipif(not _redis_up(), reason=f"no Redis at {REDIS_URL}")


# Checks named by dotted path in settings.GATEWAY_READY_CHECKS, for the tests below.
def sleeps_5_s() -> None:
    time.sleep(5)


def sleeps_half_a_second() -> dict:
    time.sleep(0.5)
    return {"slept": 0.5}


sleeps_too, sleeps_as_well = sleeps_half_a_second, sleeps_half_a_second  # three checks with their own names


def breaks() -> None:
    raise RuntimeError("boom\nsecond line with a value")


def refuses() -> None:
    raise NotReady("not today", figure=7)


@pytest.fixture
def dead_letters(settings, tmp_path):
    settings.GATEWAY_LEDGER_DEAD_LETTER_PATH = str(tmp_path / "dead.jsonl")
    return tmp_path / "dead.jsonl"


def ready(gateway) -> httpx.Response:
    return httpx.get(f"{gateway}/readyz", timeout=10)


def letter(n: int, replayed: bool = False) -> UsageDeadLetter:
    return UsageDeadLetter.objects.create(request_id=f"dead-{n}", occurred_at=timezone.now(), entry={},
                                          replayed_at=timezone.now() if replayed else None)


def test_liveness_touches_no_dependency(gateway, settings, django_assert_num_queries):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    settings.GATEWAY_READY_CHECKS = ["tests.test_health_readiness.sleeps_5_s"]
    httpx.get(f"{gateway}/healthz")  # the process's first request loads the URLconf
    started = time.monotonic()
    with django_assert_num_queries(0):
        answer = httpx.get(f"{gateway}/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert time.monotonic() - started < 2  # not waiting on the 5 s check (a busy machine may take 0.5 s)


def test_ready_names_each_check_without_redis_when_none_is_configured(gateway, settings, dead_letters):
    settings.REDIS_URL = ""
    answer = ready(gateway)
    body = answer.json()
    assert answer.status_code == 200, body
    assert body["status"] == "ok" and body["database"] == "ok" and body["ledger"] == "ok"
    assert "redis" not in body and "heartbeat" not in body
    assert body["checks"]["ledger"] == {"state": "ok", "table": 0, "file": 0, "max": 1000,
                                        "ms": body["checks"]["ledger"]["ms"]}


@needs_redis
def test_ready_with_the_database_and_redis_up(gateway, settings, dead_letters):
    settings.REDIS_URL = REDIS_URL
    answer = ready(gateway)
    assert answer.status_code == 200, answer.text
    assert {k: answer.json()[k] for k in ("status", "database", "redis", "ledger")} == {
        "status": "ok", "database": "ok", "redis": "ok", "ledger": "ok"}


def test_redis_on_a_dead_port_is_503_naming_redis_and_answers_fast(gateway, settings, dead_letters):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    started = time.monotonic()
    answer = ready(gateway)
    assert time.monotonic() - started < 2
    body = answer.json()
    assert answer.status_code == 503
    assert body["status"] == "unavailable" and body["redis"] == "failed"
    assert body["database"] == "ok" and body["ledger"] == "ok"
    assert body["checks"]["redis"]["reason"].startswith("ConnectionError")


def test_dead_letters_above_the_threshold_make_it_unready(gateway, settings, dead_letters):
    settings.GATEWAY_READY_MAX_DEAD_LETTERS = 2
    letter(1)
    letter(2)
    letter(3, replayed=True)  # written back already: not pending
    assert ready(gateway).status_code == 200

    dead_letters.write_text('{"request_id": "in-the-file"}\n')  # this host's file counts as well
    answer = ready(gateway)
    assert answer.status_code == 503
    assert answer.json()["ledger"] == "failed"
    assert answer.json()["checks"]["ledger"]["table"] == 2 and answer.json()["checks"]["ledger"]["file"] == 1
    assert "3 usage rows wait" in answer.json()["checks"]["ledger"]["reason"]

    dead_letters.unlink()
    assert ready(gateway).status_code == 200
    # A replay that stopped half-way keeps its rows in <file>.replaying: still pending.
    dead_letters.with_name("dead.jsonl.replaying").write_text("{}\n{}\n")
    assert ready(gateway).json()["checks"]["ledger"]["file"] == 2
    assert ready(gateway).status_code == 503


def test_zero_means_the_dead_letters_must_be_empty(gateway, settings, dead_letters):
    settings.GATEWAY_READY_MAX_DEAD_LETTERS = 0
    assert ready(gateway).status_code == 200
    letter(1)
    assert ready(gateway).status_code == 503


def test_a_hanging_check_times_out_and_the_checks_run_concurrently(gateway, settings, dead_letters):
    settings.GATEWAY_READY_CHECK_TIMEOUT_S = 1.0
    settings.GATEWAY_READY_CHECKS = [LEDGER, "tests.test_health_readiness.sleeps_5_s"] + [
        f"tests.test_health_readiness.{name}" for name in ("sleeps_half_a_second", "sleeps_too", "sleeps_as_well")]
    started = time.monotonic()
    answer = ready(gateway)
    elapsed = time.monotonic() - started
    body = answer.json()
    assert answer.status_code == 503
    assert body["sleeps_5_s"] == "timeout" and body["checks"]["sleeps_5_s"]["reason"] == "no answer within 1 s"
    assert body["sleeps_half_a_second"] == body["sleeps_too"] == body["sleeps_as_well"] == body["ledger"] == "ok"
    assert 0.9 < elapsed < 1.8, elapsed  # 1 s timeout; three 0.5 s checks in series would take 1.5 s more


def test_a_check_that_raises_or_cannot_be_imported_is_503_not_500(gateway, settings, dead_letters):
    settings.GATEWAY_READY_CHECKS = ["tests.test_health_readiness.breaks"]
    answer = ready(gateway)
    assert answer.status_code == 503
    assert answer.json()["checks"]["breaks"]["reason"] == "RuntimeError: boom"

    settings.GATEWAY_READY_CHECKS = ["tests.test_health_readiness.refuses"]
    check = ready(gateway).json()["checks"]["refuses"]
    assert (check["state"], check["reason"], check["figure"]) == ("failed", "not today", 7)

    settings.GATEWAY_READY_CHECKS = ["billing.no_such_module.readiness"]
    answer = ready(gateway)
    assert answer.status_code == 503
    assert "cannot be imported" in answer.json()["checks"]["no_such_module"]["reason"]


def test_the_heartbeat_check_when_asked_for(gateway, settings, dead_letters):
    settings.GATEWAY_HEARTBEAT_INTERVAL_S = 10
    settings.GATEWAY_READY_CHECKS = [LEDGER, HEARTBEAT]
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name="worker-heartbeat").delete()  # the setting's interval counts
    answer = ready(gateway)
    assert answer.status_code == 503 and answer.json()["heartbeat"] == "failed"
    assert answer.json()["checks"]["heartbeat"]["reason"] == "no Celery worker heartbeat yet"

    record("celery@worker-1", now=timezone.now() - timedelta(seconds=25))  # 2.5 intervals: fine
    answer = ready(gateway)
    assert answer.status_code == 200, answer.text
    assert answer.json()["checks"]["heartbeat"]["worker"] == "celery@worker-1"

    record("celery@worker-1", now=timezone.now() - timedelta(seconds=31))  # more than 3 intervals
    answer = ready(gateway)
    assert answer.status_code == 503 and "s old" in answer.json()["checks"]["heartbeat"]["reason"]
