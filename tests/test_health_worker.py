"""The beat task routing.tasks.probe_models in a real Celery worker process: its probe
results land in HealthCheck rows and reach the gateway's breakers — written to Redis
by the worker itself, or absorbed from the database by the gateway without Redis."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.db import connection

from gateway_project.celery import app
from providers.models import HealthCheck
from routing.breaker import State
from routing.tasks import probe_models
from tests.breaker_helpers import (
    BREAKER_REDIS_URL,
    BROKER_REDIS_URL,
    answer,
    ask,
    breaker,
    breakers,  # noqa: F401 - fixture
    celery_worker,
    flush,
    gateway_env,
    latency,
    needs_redis,
    stop_process,
)
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, needs_redis]


@pytest.fixture
def probed(fake_openai, fake_openai_b, build, settings):
    """A route whose first target fails its probe (500) and whose second is healthy."""
    settings.GATEWAY_BREAKER_FAILURES = 1  # one failed probe opens (where absorbed: this process)
    settings.GATEWAY_BREAKER_FAILURE_RATE = 0
    fake_openai.reply_text = "from failing"
    fake_openai_b.reply_text = "from healthy"
    failing = build.model(build.provider(fake_openai, name="failing"))
    healthy = build.model(build.provider(fake_openai_b, name="healthy"))
    route = build.route("chat-default", failing, healthy)
    build.route("warmup", healthy)
    fake_openai.fail(500)  # consumed by the probe: the gateway calling it later would succeed
    return failing, healthy, route


def run_probe_task_in_a_worker(**env: str) -> None:
    """Start a worker, send it probe_models through the Redis broker, wait for its rows."""
    connection.ensure_connection()
    flush(BROKER_REDIS_URL)
    worker = celery_worker(gateway_env(CELERY_BROKER_URL=BROKER_REDIS_URL, GATEWAY_BREAKER_FAILURES="1", **env))
    try:
        with app.connection_for_write(BROKER_REDIS_URL) as conn:
            probe_models.apply_async(connection=conn)
        if not wait_for(lambda: HealthCheck.objects.count() >= 2, timeout=30, interval=0.1):
            pytest.fail("the worker did not run probe_models:\n" + stop_process(worker))
    finally:
        stop_process(worker)
        flush(BROKER_REDIS_URL)


@pytest.mark.parametrize("breakers", ["redis"], indirect=True)
def test_the_worker_feeds_the_shared_breakers_through_redis(
    breakers, probed, fake_openai, fake_openai_b, build, openai_client
):
    failing, healthy, route = probed

    run_probe_task_in_a_worker(REDIS_URL=BREAKER_REDIS_URL)

    rows = {r.model_id: r for r in HealthCheck.objects.all()}
    assert (rows[failing.id].ok, rows[failing.id].error_kind) == (False, "unavailable")
    assert rows[healthy.id].ok and rows[healthy.id].latency_ms is not None
    assert breaker(failing, route).state is State.OPEN  # written by the worker, read here from Redis
    assert latency(healthy).samples == 1
    raw = ask(openai_client(build.key()))
    assert answer(raw) == "from healthy"
    assert raw.headers["x-gateway-attempt-log"] == "healthy/gpt-4o-mini=ok"
    assert fake_openai.request_count == 1  # the probe only


def test_without_redis_the_gateway_absorbs_the_workers_results(
    breakers, probed, fake_openai, fake_openai_b, build, openai_client
):
    failing, healthy, route = probed
    assert not django_settings.REDIS_URL

    run_probe_task_in_a_worker()  # no REDIS_URL: the worker only writes rows

    assert breaker(failing, route).state is State.CLOSED  # not absorbed yet
    client = openai_client(build.key())
    assert answer(ask(client, model="warmup")) == "from healthy"  # loads the table: absorbs in background
    assert wait_for(lambda: breaker(failing, route).state is State.OPEN)
    raw = ask(client)
    assert answer(raw) == "from healthy"
    assert raw.headers["x-gateway-candidates"] == "healthy/gpt-4o-mini,failing/gpt-4o-mini"
    assert fake_openai.request_count == 1  # the probe only
