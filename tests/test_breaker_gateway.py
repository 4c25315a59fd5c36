"""Circuit breakers through the live gateway and the OpenAI SDK: opening once under
concurrency, the single half-open probe, what does not count against a provider,
and routes whose every target is open. Each store (in-process, Redis) where it matters."""

from __future__ import annotations

import openai
import pytest

from billing.models import UsageRecord
from routing.breaker import State
from tests.breaker_helpers import (
    BOTH_STORES,
    all_at_once,
    answer,
    ask,
    breaker,
    breakers,  # noqa: F401 - fixture
    one_record_per_request,
    wait_past_cooldown,
)
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("breakers")]
PRIMARY, BACKUP = "primary/gpt-4o-mini", "backup/gpt-4o-mini"


@pytest.fixture
def pair(fake_openai, fake_openai_b, build):
    """Two models: primary (fake_openai) and backup (fake_openai_b)."""
    fake_openai.reply_text = "from primary"
    fake_openai_b.reply_text = "from backup"
    primary = build.model(build.provider(fake_openai, name="primary", timeout_s="2"))
    backup = build.model(build.provider(fake_openai_b, name="backup", timeout_s="2"))
    return primary, backup


def fallback_route(build, pair, **kw):
    kw = {"breaker_failure_threshold": 3, "breaker_failure_rate": 0, "breaker_cooldown_s": 60, **kw}
    return build.route("chat-default", *pair, **kw)


@BOTH_STORES
@pytest.mark.parametrize("in_flight", [10, 50])
def test_concurrent_failures_open_the_breaker_once_and_every_request_gets_the_fallback(
    pair, build, fake_openai, fake_openai_b, openai_client, in_flight
):
    primary, _ = pair
    route = fallback_route(build, pair)
    fake_openai.fail(500, times=50)
    client = openai_client(build.key())

    raws = all_at_once(50, lambda i: ask(client), in_flight=in_flight)

    assert [answer(r) for r in raws] == ["from backup"] * 50
    status = breaker(primary, route)
    assert (status.state, status.opens) == (State.OPEN, 1)
    # Only requests admitted before the third failure was recorded reached it.
    assert 3 <= fake_openai.request_count <= 3 + in_flight - 1
    assert fake_openai_b.request_count == 50
    records = one_record_per_request([r.headers["x-request-id"] for r in raws])
    assert all(r.status == "success" and r.provider_name == "backup" for r in records)
    assert sum(r.attempts for r in records) == 50 + fake_openai.request_count


@BOTH_STORES
def test_after_the_cooldown_exactly_one_probe_goes_through_and_its_success_closes_the_breaker(
    pair, build, fake_openai, fake_openai_b, openai_client
):
    primary, _ = pair
    route = fallback_route(build, pair, breaker_failure_threshold=2, breaker_cooldown_s=1)
    fake_openai.fail(500, times=2)
    client = openai_client(build.key())
    assert [answer(ask(client)) for _ in range(2)] == ["from backup"] * 2
    assert breaker(primary, route).state is State.OPEN
    wait_past_cooldown(primary, route)

    fake_openai.hang(1.0)  # the probe is slow (then answers well): the others come meanwhile
    raws = all_at_once(10, lambda i: ask(client))

    assert fake_openai.request_count == 3  # two failures, then one probe
    assert sorted(answer(r) for r in raws) == ["from backup"] * 9 + ["from primary"]
    skipped = [r.headers["x-gateway-attempt-log"] for r in raws if answer(r) == "from backup"]
    assert skipped == [f"{PRIMARY}=breaker_open,{BACKUP}=ok"] * 9
    status = breaker(primary, route)
    assert (status.state, status.opens, status.consecutive_failures) == (State.CLOSED, 1, 0)
    assert answer(ask(client)) == "from primary"  # back in rotation
    assert fake_openai.request_count == 4
    records = one_record_per_request([r.headers["x-request-id"] for r in raws], others=3)
    skip_logs = [r.attempt_log for r in records if r.provider_name == "backup"]
    assert all([a["outcome"] for a in log] == ["breaker_open", "ok"] for log in skip_logs)


@BOTH_STORES
def test_a_failed_probe_opens_the_breaker_again(pair, build, fake_openai, fake_openai_b, openai_client):
    primary, _ = pair
    route = fallback_route(build, pair, breaker_failure_threshold=2, breaker_cooldown_s=1)
    fake_openai.fail(500, times=3)
    client = openai_client(build.key())
    for _ in range(2):
        ask(client)
    wait_past_cooldown(primary, route)

    probe = ask(client)

    assert answer(probe) == "from backup"
    assert probe.headers["x-gateway-attempt-log"] == f"{PRIMARY}=unavailable,{BACKUP}=ok"
    status = breaker(primary, route)
    assert (status.state, status.opens) == (State.OPEN, 2)
    assert status.retry_in_s is not None and status.retry_in_s > 0.5  # a fresh cooldown
    after = ask(client)
    assert fake_openai.request_count == 3  # not called again
    assert after.headers["x-gateway-attempt-log"] == f"{BACKUP}=ok"
    assert after.headers["x-gateway-candidates"] == f"{BACKUP},{PRIMARY}"


def test_client_errors_do_not_count_against_the_provider(pair, build, fake_openai, fake_openai_b, openai_client):
    primary, _ = pair
    route = fallback_route(build, pair, breaker_failure_threshold=2)
    client = openai_client(build.key())
    fake_openai.fail(400, times=3)
    for _ in range(3):
        with pytest.raises(openai.BadRequestError):
            ask(client)
    fake_openai.fail(401, times=3)
    assert [answer(ask(client)) for _ in range(3)] == ["from backup"] * 3

    status = breaker(primary, route)
    assert (status.state, status.opens, status.consecutive_failures, status.window_failures) == (State.CLOSED, 0, 0, 0)
    assert answer(ask(client)) == "from primary"
    assert fake_openai.request_count == 7
    fake_openai.fail(500)  # ...while a 5xx does count
    ask(client)
    assert breaker(primary, route).consecutive_failures == 1


@BOTH_STORES
def test_every_target_open_is_a_clear_503_without_calling_anyone(pair, build, fake_openai, fake_openai_b, openai_client):
    fallback_route(build, pair, breaker_failure_threshold=1)
    fake_openai.fail(500)
    fake_openai_b.fail(500)
    client = openai_client(build.key())
    with pytest.raises(openai.InternalServerError):
        ask(client)  # both fail once: both open
    assert wait_for(lambda: UsageRecord.objects.count() == 1)

    with pytest.raises(openai.InternalServerError) as exc:
        ask(client)

    response = exc.value.response
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "circuit_open" and error["type"] == "upstream_error"
    assert "circuit breaker open" in error["message"] and "chat-default" in error["message"]
    assert PRIMARY in error["message"] and BACKUP in error["message"]
    assert response.headers["retry-after"] == "60"
    assert response.headers["x-gateway-attempts"] == "0"
    assert response.headers["x-gateway-attempt-log"] == f"{PRIMARY}=breaker_open,{BACKUP}=breaker_open"
    assert (fake_openai.request_count, fake_openai_b.request_count) == (1, 1)
    assert UsageRecord.objects.count() == 1  # nothing was called: nothing to record


def test_try_anyway_calls_the_targets_when_every_breaker_is_open(pair, build, fake_openai, fake_openai_b, openai_client):
    fallback_route(build, pair, breaker_failure_threshold=1, when_all_open="try_anyway")
    fake_openai.fail(500)
    fake_openai_b.fail(500)
    client = openai_client(build.key())
    with pytest.raises(openai.InternalServerError):
        ask(client)

    raw = ask(client)

    assert answer(raw) == "from primary"
    assert raw.headers["x-gateway-attempt-log"] == f"{PRIMARY}=breaker_open,{BACKUP}=breaker_open,{PRIMARY}=ok"
    assert raw.headers["x-gateway-attempts"] == "1"
    assert fake_openai.request_count == 2
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert [a["outcome"] for a in record.attempt_log] == ["breaker_open", "breaker_open", "ok"]


def test_a_failure_rate_over_the_window_opens_the_breaker(pair, build, fake_openai, fake_openai_b, openai_client):
    primary, _ = pair
    route = fallback_route(
        build, pair, breaker_failure_threshold=0, breaker_failure_rate="0.5", breaker_min_requests=4, breaker_window_s=60
    )
    fake_openai.fail(500, times=2)
    fake_openai.reply("fine")
    fake_openai.fail(500)
    client = openai_client(build.key())
    for _ in range(3):
        ask(client)
    status = breaker(primary, route)
    assert (status.state, status.window_requests, status.window_failures) == (State.CLOSED, 3, 2)

    ask(client)  # 3 failures in 4 requests

    assert breaker(primary, route).state is State.OPEN
    ask(client)
    assert fake_openai.request_count == 4


def test_routes_without_breaker_settings_use_the_gateway_defaults(pair, build, fake_openai, openai_client, settings):
    settings.GATEWAY_BREAKER_FAILURES = 2
    settings.GATEWAY_BREAKER_FAILURE_RATE = 0
    primary, _ = pair
    route = build.route("chat-default", *pair)
    fake_openai.fail(500, times=5)
    client = openai_client(build.key())
    for _ in range(4):
        ask(client)
    assert breaker(primary, route).state is State.OPEN
    assert fake_openai.request_count == 2


def test_retries_stop_once_the_targets_breaker_has_opened(pair, build, fake_openai, fake_openai_b, openai_client):
    primary, _ = pair
    route = fallback_route(build, pair, breaker_failure_threshold=2, max_attempts=4)
    fake_openai.fail(500, times=4)

    raw = ask(openai_client(build.key()))

    assert answer(raw) == "from backup"
    assert breaker(primary, route).state is State.OPEN
    assert fake_openai.request_count == 2  # the breaker opened on the 2nd failure



async def test_a_closed_snapshot_stands_in_for_admit_only_while_fresh(monkeypatch):
    """The request's breaker snapshot (read when it arrived) spares the first attempt
    a second read; a snapshot older than SNAPSHOT_TRUST_S (a slow first choice) is not
    trusted, and the store is asked."""
    from types import SimpleNamespace

    from routing import engine
    from routing.breaker import BreakerPolicy, InProcessBreakerStore, Permit

    store = InProcessBreakerStore()
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=60)
    await store.record("t", policy, success=False)  # opened after the snapshot was read
    target = SimpleNamespace(key="t", model=SimpleNamespace(label="p/m"))
    run = engine.Run(SimpleNamespace(breaker=policy), decision=None, closed=frozenset({"t"}))
    monkeypatch.setattr(engine, "get_breaker_store", lambda: store)
    assert await engine._admit(run, target, False, first=True) is Permit.ALLOWED
    assert await engine._admit(run, target, False) is Permit.REJECTED  # retries always ask
    run.started -= engine.SNAPSHOT_TRUST_S
    assert await engine._admit(run, target, False, first=True) is Permit.REJECTED
    fresh = engine.Run(SimpleNamespace(breaker=policy), decision=None)  # snapshot did not see it closed
    assert await engine._admit(fresh, target, False, first=True) is Permit.REJECTED
