"""The admin "Gateway status" page: what it shows (providers' health checks, each
route x model breaker, the Celery queue's depth, recent failed requests without their
content, the ledger's dead letters and last replay, the worker heartbeat), that one
unreachable dependency does not take the page down, and that only staff see it."""

from __future__ import annotations

import os
import re
import uuid
from datetime import timedelta

import pytest
import redis
from asgiref.sync import async_to_sync
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from kombu import Connection

from billing.models import UsageDeadLetter, UsageRecord
from routing.breaker import get_breaker_store
from routing.catalog import breaker_key, breaker_policy
from routing.heartbeat import record
from tests.conftest import free_port

from .factories import HealthCheckFactory, ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory, UsageRecordFactory

pytestmark = pytest.mark.django_db
STATUS = "admin:routing_status"
REDIS_URL = os.environ.get("TEST_HEALTH_REDIS_URL", "redis://127.0.0.1:6379/14")


def page(client) -> str:
    answer = client.get(reverse(STATUS))
    assert answer.status_code == 200
    return answer.content.decode()


def section(html: str, name: str) -> str:
    """The text of one section (<div class="module" id="status-NAME">), tags dropped."""
    found = re.search(rf'<div class="module[^"]*" id="status-{name}">(.*?)</div>\s*(?=<div class="module|</div>)',
                      html, re.S)
    assert found, name
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))


def card(html: str, name: str) -> str:
    found = re.search(rf'<div class="status-card (\w+)" id="card-{name}">(.*?)</div>', html, re.S)
    assert found, name
    return found.group(1) + ": " + re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(2))).strip()


@pytest.fixture
def dead_letters(settings, tmp_path):
    settings.GATEWAY_LEDGER_DEAD_LETTER_PATH = str(tmp_path / "dead.jsonl")
    return tmp_path / "dead.jsonl"


def test_providers_models_and_every_route_model_breaker(admin_client, dead_letters):
    flaky = ModelFactory(name="flaky", provider=ProviderFactory(name="acme"))
    steady = ModelFactory(name="steady", provider=flaky.provider)
    strict = RouteFactory(name="strict", breaker_failure_threshold=2, breaker_failure_rate=0, breaker_cooldown_s=60)
    relaxed = RouteFactory(name="relaxed")
    for route in (strict, relaxed):
        RouteTargetFactory(route=route, model=flaky)
    RouteTargetFactory(route=relaxed, model=steady)
    for _ in range(2):
        async_to_sync(get_breaker_store().record)(breaker_key(strict.pk, flaky.pk), breaker_policy(strict), success=False)
    HealthCheckFactory(model=flaky, ok=False, error_kind="timeout", message="no answer within 5 s")
    HealthCheckFactory(model=steady, ok=True, latency_ms=210)

    html = page(admin_client)
    models = section(html, "models")
    assert "acme flaky in service" in models and "failed (timeout)" in models and "no answer within 5 s" in models
    assert "acme steady in service" in models and "ok , 210 ms" in models
    breakers = section(html, "breakers")
    rows = re.findall(r"(strict|relaxed) (acme/\w+) ● (open|closed|half-open)", breakers)
    assert rows == [("strict", "acme/flaky", "open"), ("relaxed", "acme/flaky", "closed"),
                    ("relaxed", "acme/steady", "closed")]  # what needs attention first
    assert card(html, "breakers").startswith("bad: Breakers not closed 1 of 3")
    assert card(html, "models").startswith("bad: Models failing checks 1")


def test_recent_errors_show_when_where_and_which_kind_but_no_content(admin_client, dead_letters):
    secret = f"prompt-text-{uuid.uuid4().hex}"
    UsageRecordFactory(request_id="req-failed", status=UsageRecord.Status.ERROR, error_kind="rate_limited",
                       http_status=429, route_name="chat-default", model_name="acme/flaky",
                       attempt_log=[{"target": "acme/flaky", "outcome": "rate_limited", "note": secret}],
                       annotations={"debug": secret})
    UsageRecordFactory(request_id="req-fine", route_name="chat-default")
    UsageRecordFactory(request_id="req-old-failure", status=UsageRecord.Status.ERROR, error_kind="timeout",
                       created_at=timezone.now() - timedelta(days=2))

    html = page(admin_client)
    errors = section(html, "errors")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d chat-default acme/flaky rate_limited 429 req-failed", errors)
    assert "req-fine" not in errors and "req-old-failure" not in errors  # successes, and older than a day
    assert secret not in html
    assert 'title="Rate limited' in html
    assert card(html, "errors") == "warn: Failed requests 1 in the last 24 h"


def test_the_ledger_dead_letters_and_last_replay(admin_client, dead_letters):
    assert card(page(admin_client), "ledger") == "ok: Dead letters 0 usage rows not yet in the ledger"
    UsageDeadLetter.objects.create(request_id="waiting", occurred_at=timezone.now(), entry={})
    replayed_at = timezone.now() - timedelta(minutes=3)
    UsageDeadLetter.objects.create(request_id="done", occurred_at=timezone.now(), entry={}, replayed_at=replayed_at)
    dead_letters.write_text("{}\n{}\n")
    PeriodicTask.objects.filter(name="replay-usage-dead-letters").update(last_run_at=timezone.now())

    html = page(admin_client)
    ledger = section(html, "ledger")
    assert "dead letters in the table 1" in ledger
    assert f"dead letters in this host's file 2 {dead_letters}" in ledger
    assert f"last row replayed {timezone.localtime(replayed_at):%Y-%m-%d %H:%M:%S}" in ledger
    assert "replay task last sent by beat never" not in ledger
    assert card(html, "ledger") == "warn: Dead letters 3 usage rows not yet in the ledger"


def test_the_heartbeat_alive_stale_or_missing(admin_client, settings, dead_letters):
    PeriodicTask.objects.filter(name="worker-heartbeat").delete()
    settings.GATEWAY_HEARTBEAT_INTERVAL_S = 10
    html = page(admin_client)
    assert "No heartbeat recorded yet" in section(html, "heartbeat")
    assert card(html, "heartbeat") == "bad: Celery worker no heartbeat none recorded"

    record("celery@worker-1", now=timezone.now() - timedelta(seconds=12))
    html = page(admin_client)
    assert re.search(r"celery@worker-1 \S+ \S+ \(1\d s ago\) alive", section(html, "heartbeat"))
    assert card(html, "heartbeat").startswith("ok: Celery worker alive last beat 1")

    record("celery@worker-2", now=timezone.now() - timedelta(seconds=45))  # more than 3 x 10 s
    record("celery@worker-1", now=timezone.now() - timedelta(seconds=40))
    html = page(admin_client)
    heartbeat = section(html, "heartbeat")
    assert "A beat task every 10 s records the worker that ran it; stale after 30 s without one" in heartbeat
    assert re.search(r"celery@worker-1 .* stale .* celery@worker-2 .* stale", heartbeat)
    assert card(html, "heartbeat").startswith("bad: Celery worker stale")


def test_queue_depth_is_na_with_the_filesystem_broker(admin_client, settings, dead_letters):
    settings.CELERY_BROKER_URL = "filesystem://"
    html = page(admin_client)
    assert "n/a: the broker is filesystem (the embedded default), not Redis" in section(html, "queue")
    assert card(html, "queue").startswith("quiet: Queue depth n/a")


def _redis_up() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except redis.RedisError:
        return False


@pytest.mark.skipif(not _redis_up(), reason=f"no Redis at {REDIS_URL}")
def test_queue_depth_counts_the_waiting_tasks_in_redis(admin_client, settings, dead_letters):
    queue = f"health-test-{uuid.uuid4().hex[:8]}"  # a queue of its own: no worker takes from it
    settings.CELERY_BROKER_URL = REDIS_URL
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    with Connection(REDIS_URL) as conn:
        simple = conn.SimpleQueue(queue)
        for n in range(3):
            simple.put({"n": n})
        simple.put({"urgent": True}, priority=9)  # kombu keeps a list per priority step
        simple.close()
    try:
        html = page(admin_client)
        assert f'4 tasks waiting for a worker in the "{queue}" queue' in section(html, "queue")
        assert card(html, "queue") == f"ok: Queue depth 4 {queue} queue"
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(*client.keys(f"{queue}*"))


def test_an_unreachable_broker_and_breaker_store_do_not_take_the_page_down(admin_client, settings, dead_letters):
    RouteTargetFactory(route=RouteFactory(name="chat-default"), model=ModelFactory(name="m"))
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings.CELERY_BROKER_URL = dead
    settings.REDIS_URL = dead  # the breaker store is Redis now, and down
    from routing.breaker import reset_breaker_store_for_tests

    reset_breaker_store_for_tests()
    html = page(admin_client)
    assert "The broker did not answer: ConnectionError" in section(html, "queue")
    assert "Could not read the breaker store" in section(html, "breakers")
    assert card(html, "queue") == "bad: Queue depth unknown broker unreachable"
    assert "dead letters in the table 0" in section(html, "ledger")  # the rest still shows


def test_only_staff_with_the_status_permission_see_the_page(client, django_user_model, dead_letters):
    from django.contrib.auth.models import Group

    url = reverse(STATUS)
    assert client.get(url).status_code == 302  # anonymous: to the login page
    django_user_model.objects.create_user("member", password="member-pass-123")
    client.login(username="member", password="member-pass-123")
    answer = client.get(url)
    assert answer.status_code == 302 and answer.url.startswith(reverse("admin:login"))
    staff = django_user_model.objects.create_user("finance", password="finance-pass-123", is_staff=True)
    staff.groups.add(Group.objects.get(name="Finance"))
    client.login(username="finance", password="finance-pass-123")
    assert client.get(url).status_code == 403  # staff, but no role that operates the gateway
    assert f'href="{url}"' not in client.get(reverse("admin:index")).content.decode()
    for role in ("Route editors", "Auditors"):
        user = django_user_model.objects.create_user(role[:5], password="operator-pass-123", is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        client.login(username=role[:5], password="operator-pass-123")
        assert client.get(url).status_code == 200, role


def test_the_admin_home_links_the_page_in_the_health_group(admin_client):
    home = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse(STATUS)}"' in home and "Gateway status" in home
    assert "Worker heartbeats" not in home  # the rows themselves are not listed: the page shows them
