"""Active health checks (routing.health.sweep): one minimal request per enabled model,
a HealthCheck row each, and the results fed to breakers and latency statistics —
directly with Redis, absorbed from the database by the gateway without it."""

from __future__ import annotations

import time

import pytest

from billing.models import UsageRecord
from providers.models import HealthCheck
from routing.breaker import State
from routing.health import absorb_health, sweep
from tests.breaker_helpers import (
    ask,
    breaker,
    breakers,  # noqa: F401 - fixture
    latency,
    run,
)
from tests.conftest import free_port

pytestmark = pytest.mark.django_db(transaction=True)
REDIS = pytest.mark.parametrize("breakers", ["redis"], indirect=True)


@pytest.fixture
def fleet(fake_openai, fake_openai_b, fake_anthropic, build, settings):
    """Four enabled models (healthy, 500, hanging past its timeout, connection refused)
    and one disabled, all on the route "chat-default" (FLEET_ROUTE); a single failed
    probe opens a breaker."""
    settings.GATEWAY_BREAKER_FAILURES = 1
    settings.GATEWAY_BREAKER_FAILURE_RATE = 0
    fake_openai.fail(500)
    fake_anthropic.hang(3)
    dead_url = f"http://127.0.0.1:{free_port()}/v1"
    models = {
        "healthy": build.model(build.provider(fake_openai_b, name="healthy")),
        "failing": build.model(build.provider(fake_openai, name="failing")),
        "hanging": build.model(
            build.provider(fake_anthropic, name="hanging", kind="anthropic", timeout_s="0.5"), "claude-3-5-haiku"
        ),
        "refused": build.model(build.provider(name="refused", base_url=dead_url, api_key="k")),
    }
    build.model(build.provider(fake_openai_b, name="off"), enabled=False)
    build.route("chat-default", *models.values())
    return models


def on_route(model, name: str = "chat-default"):
    """The breaker of the route `name`'s use of `model`."""
    from routing.models import Route

    return breaker(model, Route.objects.get(name=name))


def rows_by_name(models) -> dict[str, HealthCheck]:
    names = {m.id: name for name, m in models.items()}
    rows = list(HealthCheck.objects.all())
    assert sorted(names[r.model_id] for r in rows) == sorted(models)  # one row per enabled model
    return {names[r.model_id]: r for r in rows}


@REDIS
def test_a_sweep_records_each_probe_and_feeds_the_shared_breakers(breakers, fleet, fake_openai, fake_openai_b, fake_anthropic):
    started = time.monotonic()
    results = run(sweep)

    assert time.monotonic() - started < 2.5  # probes run concurrently, bounded by their timeouts
    assert len(results) == 4 and sum(r.ok for r in results) == 1
    rows = rows_by_name(fleet)
    assert (rows["healthy"].ok, rows["healthy"].error_kind) == (True, "")
    assert rows["healthy"].latency_ms is not None and rows["healthy"].latency_ms < 1000
    assert (rows["failing"].ok, rows["failing"].error_kind) == (False, "unavailable")
    assert (rows["hanging"].ok, rows["hanging"].error_kind) == (False, "timeout")
    assert 450 <= rows["hanging"].latency_ms < 2000
    assert (rows["refused"].ok, rows["refused"].error_kind) == (False, "unavailable")
    secrets = (fake_openai.api_key, fake_openai_b.api_key, fake_anthropic.api_key)
    assert not [r.message for r in rows.values() if any(s in r.message for s in secrets)]

    probe = fake_openai_b.last_request.json
    assert probe["max_tokens"] == 1 and len(probe["messages"]) == 1
    for name in ("failing", "hanging", "refused"):
        assert on_route(fleet[name]).state is State.OPEN, name
    assert on_route(fleet["healthy"]).state is State.CLOSED
    stats = latency(fleet["healthy"])
    assert stats.samples == 1 and abs(stats.total_s * 1000 - rows["healthy"].latency_ms) <= 1


def test_without_redis_the_sweep_only_stores_rows_and_the_gateway_absorbs_them(breakers, fleet):
    run(sweep)

    assert len(rows_by_name(fleet)) == 4
    assert on_route(fleet["failing"]).state is State.CLOSED  # nothing fed yet: the worker's memory is its own
    assert run(absorb_health) == 4
    for name in ("failing", "hanging", "refused"):
        assert on_route(fleet[name]).state is State.OPEN, name
    assert latency(fleet["healthy"]).samples == 1
    assert run(absorb_health) == 0  # each result is fed once


@REDIS
def test_a_healthy_probe_closes_a_tripped_breaker_after_the_cooldown(breakers, fake_openai, build, settings):
    settings.GATEWAY_BREAKER_FAILURES = 1
    settings.GATEWAY_BREAKER_COOLDOWN_S = 0.3
    model = build.model(build.provider(fake_openai, name="flaky"))
    route = build.route("chat-default", model)
    fake_openai.fail(500)
    run(sweep)
    assert breaker(model, route).state is State.OPEN
    run(sweep)  # healthy again, but still within the cooldown: stays open
    assert breaker(model, route).state is State.OPEN
    time.sleep(0.35)

    run(sweep)

    status = breaker(model, route)
    assert (status.state, status.opens) == (State.CLOSED, 1)
    assert list(HealthCheck.objects.order_by("id").values_list("ok", flat=True)) == [False, True, True]


@REDIS
def test_probe_latencies_order_a_least_latency_route(breakers, fake_openai, fake_openai_b, build, openai_client):
    fake_openai.reply_text = "slow answer"
    fake_openai_b.reply_text = "fast answer"
    slow = build.model(build.provider(fake_openai, name="slow"))
    fast = build.model(build.provider(fake_openai_b, name="fast"))
    build.route("chat-fast", slow, fast, strategy="least_latency", explore_rate=0)
    fake_openai.hang(0.3)  # the slow model's probe takes 300 ms
    run(sweep)
    assert latency(slow).total_s > 0.25 > latency(fast).total_s

    raw = ask(openai_client(build.key()), model="chat-fast")

    assert raw.parse().choices[0].message.content == "fast answer"
    assert raw.headers["x-gateway-strategy"] == "least_latency"
    assert raw.headers["x-gateway-candidates"] == "fast/gpt-4o-mini,slow/gpt-4o-mini"
    record = UsageRecord.objects.get(request_id=raw.headers["x-request-id"])
    assert [c["reason"].split(" ")[:2] for c in record.candidates] == [["recent", "latency"]] * 2


@pytest.mark.parametrize("breakers", ["memory", "redis"], indirect=True)
def test_a_probe_feeds_every_route_using_the_model_each_under_its_own_policy(breakers, fake_openai, build):
    """A probe is about the model; the breakers it feeds are each route's: a strict
    route opens at once, a lenient one later, one with its rules off never."""
    model = build.model(build.provider(fake_openai, name="flaky"))
    strict = build.route("strict", model, breaker_failure_threshold=1, breaker_failure_rate=0)
    lenient = build.route("lenient", model, breaker_failure_threshold=3, breaker_failure_rate=0)
    off = build.route("off", model, breaker_failure_threshold=0, breaker_failure_rate=0)
    fake_openai.fail(500, times=3)

    def probe_round() -> None:
        run(sweep)
        if breakers == "memory":  # the worker's results reach this process from the database
            assert run(absorb_health) == 1

    for _ in range(2):
        probe_round()
    assert [breaker(model, r).state for r in (strict, lenient, off)] == [State.OPEN, State.CLOSED, State.CLOSED]
    assert breaker(model, lenient).consecutive_failures == 2
    probe_round()
    assert [breaker(model, r).state for r in (strict, lenient, off)] == [State.OPEN, State.OPEN, State.CLOSED]
    assert (breaker(model, off).consecutive_failures, breaker(model, strict).opens) == (3, 1)
    probe_round()  # healthy again: a closed breaker's count starts over; open ones wait out their cooldown
    assert breaker(model, off).consecutive_failures == 0
    assert breaker(model, strict).state is State.OPEN
    assert latency(model).samples == 1  # failed probes measure nothing; the model's statistics, once


def test_an_embeddings_only_model_is_probed_with_an_embedding_not_a_chat(breakers, fake_openai, build):
    """A model that serves embeddings only would refuse a one-token chat (and show as
    failing on the health page): its probe is one embedding of one word."""
    embedder = build.model(build.provider(fake_openai, name="embed"), "text-embedding-3-small",
                           capabilities=["embeddings"])
    chat = build.model(build.provider(fake_openai, name="chat"), "gpt-4o-mini")
    build.route("chat-default", chat)

    run(sweep)

    rows = {r.model_id: r for r in HealthCheck.objects.all()}
    assert rows[embedder.id].ok and rows[chat.id].ok, [(r.error_kind, r.message) for r in rows.values()]
    paths = sorted(r.path for r in fake_openai.requests)
    assert paths == ["/v1/chat/completions", "/v1/embeddings"]
    embedding = next(r for r in fake_openai.requests if r.path == "/v1/embeddings")
    assert embedding.body["input"] == ["ping"] and embedding.body["model"] == "text-embedding-3-small"
