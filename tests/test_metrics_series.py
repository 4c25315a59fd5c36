"""/metrics as Prometheus reads it: the series of issue 15, their labels (never a key),
the overhead measured without the providers' time, breaker and budget gauges read at
scrape time, and the guard (allowlist, bearer token)."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing.models import Budget, Team, UsageRecord
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def scrape(gateway: str, **kw) -> dict[str, list]:
    """Samples by sample name (e.g. gateway_overhead_seconds_count)."""
    response = httpx.get(f"{gateway}/metrics", **kw)
    assert response.status_code == 200, response.text
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    return samples


def value(samples: dict[str, list], name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items()))


def ask(client, **kw):
    return client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "hi"}], **kw)


# Each test names its own provider: the registry lives as long as the test process,
# so its series are this test's alone.
def test_a_request_counts_by_route_model_provider_and_team_never_by_key(fake_openai, build, openai_client, gateway):
    _, model = build.openai_route(fake_openai, provider_name="m-labels")
    team = Team.objects.create(name="search")
    secret = build.key("alice", team=team)
    ask(openai_client(secret))
    samples = scrape(gateway)
    labels = {"route": "chat-default", "provider": model.provider.name, "model": f"{model.provider.name}/{model.name}", "team": "search"}
    assert value(samples, "gateway_requests_total", **labels, status="success", error_kind="", stream="false") == 1
    assert value(samples, "gateway_tokens_total", **labels, type="input") > 0
    assert value(samples, "gateway_tokens_total", **labels, type="output") > 0
    assert "gateway_tokens_total" in samples and {s.labels["type"] for s in samples["gateway_tokens_total"]} >= {
        "input", "output", "cache_read", "cache_write"}
    assert value(samples, "gateway_cost_usd_total", **labels) > 0
    text = httpx.get(f"{gateway}/metrics").text
    assert secret not in text and secret[:12] not in text and "alice" not in text  # no key label, no key name


def test_overhead_is_the_total_minus_the_time_waiting_on_the_provider(fake_openai, build, openai_client, gateway):
    _, model = build.openai_route(fake_openai, provider_name="m-overhead")
    client = openai_client(build.key())
    fake_openai.hang(0.4)
    ask(client)
    fake_openai.chunk_delay = 0.05  # a stream whose chunks come slowly: the reads are the provider's time too
    list(ask(client, stream=True))
    samples = scrape(gateway)
    labels = {"route": "chat-default", "model": f"{model.provider.name}/{model.name}"}
    assert value(samples, "gateway_request_latency_seconds_count", **labels) == 2
    total = value(samples, "gateway_request_latency_seconds_sum", **labels)
    overhead = value(samples, "gateway_overhead_seconds_sum", **labels)
    assert total > 0.4 + 0.05  # the hang, and at least one slow chunk
    assert 0 < overhead < 0.25, (total, overhead)  # what the gateway itself spent, on a shared 2-core machine
    assert value(samples, "gateway_time_to_first_token_seconds_count", **labels) == 1


def test_an_error_is_counted_with_its_kind(fake_openai, build, openai_client, gateway):
    import openai

    build.openai_route(fake_openai, provider_name="m-errors")
    fake_openai.fail(503)
    with pytest.raises(openai.APIStatusError):
        ask(openai_client(build.key()))
    samples = scrape(gateway)
    assert value(samples, "gateway_requests_total", provider="m-errors", status="error", error_kind="unavailable") == 1


def test_a_rate_limited_request_is_a_rejection(fake_openai, build, openai_client, gateway):
    import openai

    build.openai_route(fake_openai)
    before = value(scrape(gateway), "gateway_rejected_requests_total", code="rate_limit_exceeded")
    with pytest.raises(openai.RateLimitError):
        ask(openai_client(build.key(rpm_limit=0)))
    after = value(scrape(gateway), "gateway_rejected_requests_total", status="429", code="rate_limit_exceeded")
    assert after == before + 1


def test_breaker_state_and_opens_are_read_from_the_breaker_store(fake_openai, build, openai_client, gateway):
    import openai

    _, model = build.openai_route(fake_openai, provider_name="m-breaker", breaker_failure_threshold=1,
                                  breaker_cooldown_s=60)
    labels = {"route": "chat-default", "provider": model.provider.name, "model": f"{model.provider.name}/{model.name}"}
    assert value(scrape(gateway), "gateway_breaker_state", **labels) == 0  # every target, closed included
    fake_openai.fail(500)
    with pytest.raises(openai.APIStatusError):
        ask(openai_client(build.key()))
    samples = scrape(gateway)
    assert value(samples, "gateway_breaker_state", **labels) == 2
    assert value(samples, "gateway_breaker_opens_total", **labels) == 1
    assert [value(samples, "gateway_breaker_transitions_total", **labels, to=to)
            for to in ("open", "half_open", "closed")] == [1, 0, 0]


def test_breaker_transitions_count_half_open_and_closed(fake_openai, build, openai_client, gateway):
    import time

    import openai

    _, model = build.openai_route(fake_openai, provider_name="m-cycle", breaker_failure_threshold=1,
                                  breaker_cooldown_s=0.2)
    labels = {"route": "chat-default", "provider": model.provider.name, "model": f"{model.provider.name}/{model.name}"}
    fake_openai.fail(500)
    with pytest.raises(openai.APIStatusError):
        ask(openai_client(build.key()))
    time.sleep(0.3)  # past the cooldown: the next request is the probe, and it succeeds
    ask(openai_client(build.key()))
    samples = scrape(gateway)
    assert value(samples, "gateway_breaker_state", **labels) == 0
    assert [value(samples, "gateway_breaker_transitions_total", **labels, to=to)
            for to in ("open", "half_open", "closed")] == [1, 1, 1]


def test_budget_remaining_is_the_limit_minus_the_ledger_spend_per_team(fake_openai, build, openai_client, gateway):
    build.openai_route(fake_openai)
    team = Team.objects.create(name="research")
    budget = Budget.objects.create(scope="team", team=team, amount_usd=Decimal("5"), period="month")
    ask(openai_client(build.key(team=team)))
    spent = wait_for(lambda: UsageRecord.objects.filter(team_id=team.id).first()).cost_usd
    samples = scrape(gateway)
    labels = {"budget": str(budget.id), "scope": "team", "team": "research", "period": "month"}
    assert value(samples, "gateway_budget_limit_usd", **labels) == 5
    assert value(samples, "gateway_budget_remaining_usd", **labels) == pytest.approx(float(Decimal("5") - spent))


def test_metrics_need_the_token_when_one_is_set(gateway, settings):
    settings.GATEWAY_METRICS_TOKEN = "scrape-secret"
    assert httpx.get(f"{gateway}/metrics").status_code == 401
    wrong = httpx.get(f"{gateway}/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    assert scrape(gateway, headers={"authorization": "Bearer scrape-secret"})


def test_metrics_refuse_addresses_outside_the_allowlist(gateway, settings):
    settings.GATEWAY_METRICS_ALLOW = ["10.0.0.0/8"]
    assert httpx.get(f"{gateway}/metrics").status_code == 403
    settings.GATEWAY_METRICS_ALLOW = ["10.0.0.0/8", "127.0.0.0/8"]
    assert scrape(gateway)
    settings.GATEWAY_METRICS_ALLOW = []  # empty: any address
    assert scrape(gateway)


def test_reasoning_tokens_are_a_token_type_of_their_own(fake_openai, build, openai_client, gateway):
    """Reasoning models report the thinking part of their output (OpenAI's
    completion_tokens_details.reasoning_tokens): counted as output and as reasoning,
    and passed on to the client in the same field."""
    _, model = build.openai_route(fake_openai, provider_name="m-reasoning")

    def reasoning(body):
        if isinstance(body, dict) and isinstance(body.get("usage"), dict):
            body["usage"]["completion_tokens"] = 40
            body["usage"]["total_tokens"] = body["usage"]["prompt_tokens"] + 40
            body["usage"]["completion_tokens_details"] = {"reasoning_tokens": 32, "audio_tokens": 0}
        return body

    fake_openai.mangle(reasoning)
    reply = ask(openai_client(build.key()))
    assert reply.usage.completion_tokens == 40
    assert reply.usage.completion_tokens_details.reasoning_tokens == 32
    samples = scrape(gateway)
    labels = {"provider": "m-reasoning", "model": f"m-reasoning/{model.name}"}
    assert value(samples, "gateway_tokens_total", **labels, type="output") == 40
    assert value(samples, "gateway_tokens_total", **labels, type="reasoning") == 32
