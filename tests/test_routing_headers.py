"""What the routing decided and what happened, as the client sees it (x-gateway-*
response headers) and as the usage record keeps it (strategy, task type, candidates
with reasons, attempt log including targets skipped because their breaker is open)."""

from __future__ import annotations

import openai
import pytest

from billing.models import UsageRecord
from routing.models import RouteTarget
from tests.breaker_helpers import (
    MESSAGES,
    answer,
    ask,
    breakers,  # noqa: F401 - fixture
    one_record_per_request,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("breakers")]
A, B, C = "a/gpt-4o-mini", "b/gpt-4o-mini", "c/gpt-4o-mini"


@pytest.fixture
def models(fake_openai, fake_openai_b, build):
    """a (fake_openai: quality 90, priciest), b (fake_openai_b: quality 40, cheapest),
    c (a second provider on fake_openai_b: quality 70, in between)."""
    fake_openai.reply_text = "from a"
    fake_openai_b.reply_text = "from b"
    a = build.model(build.provider(fake_openai, name="a"), input_price="1", output_price="2", quality_score=90)
    b = build.model(build.provider(fake_openai_b, name="b"), input_price="0.1", output_price="0.2", quality_score=40)
    c = build.model(build.provider(fake_openai_b, name="c"), input_price="0.5", output_price="1", quality_score=70)
    return a, b, c


def record_of(raw) -> UsageRecord:
    (record,) = one_record_per_request([raw.headers["x-request-id"]])
    return record


def test_fallback_headers_and_record_show_candidates_and_each_attempt(models, build, fake_openai, openai_client):
    a, b, _ = models
    build.route("chat-default", a, b)
    fake_openai.fail(500)

    raw = ask(openai_client(build.key()))

    assert answer(raw) == "from b"
    assert raw.headers["x-gateway-strategy"] == "fallback"
    assert raw.headers["x-gateway-candidates"] == f"{A},{B}"
    assert raw.headers["x-gateway-attempt-log"] == f"{A}=unavailable,{B}=ok"
    assert raw.headers["x-gateway-attempts"] == "2"
    assert "x-gateway-task" not in raw.headers
    record = record_of(raw)
    assert (record.strategy, record.task_type, record.attempts) == ("fallback", "", 2)
    assert record.candidates == [{"target": A, "reason": "first choice"}, {"target": B, "reason": "fallback #1"}]
    assert [(x["target"], x["outcome"], x["status"]) for x in record.attempt_log] == [(A, "unavailable", 500), (B, "ok", None)]
    assert all(isinstance(x["latency_ms"], int) for x in record.attempt_log)


def test_a_task_route_follows_the_task_hint_header(models, build, openai_client):
    a, b, c = models
    route = build.route("chat-task", a, b, c, strategy="task")
    RouteTarget.objects.filter(route=route, model=b).update(task_types=["code_generation"])
    RouteTarget.objects.filter(route=route, model=c).update(task_types=["translation"])
    client = openai_client(build.key())

    # The message reads like a translation request; the client's hint wins.
    raw = client.chat.completions.with_raw_response.create(
        model="chat-task", messages=[{"role": "user", "content": "Translate into French: good morning"}],
        extra_headers={"x-gateway-task": "code_generation"},
    )

    assert answer(raw) == "from b"
    assert raw.headers["x-gateway-strategy"] == "task"
    assert raw.headers["x-gateway-task"] == "code_generation"
    assert raw.headers["x-gateway-candidates"] == f"{B},{A}"  # its own target, then the default one
    record = record_of(raw)
    assert (record.strategy, record.task_type) == ("task", "code_generation")
    assert record.candidates == [
        {"target": B, "reason": "serves code_generation"},
        {"target": A, "reason": "default target (serves any task)"},
    ]


def test_a_task_route_detects_the_task_without_a_hint(models, build, openai_client):
    a, b, c = models
    route = build.route("chat-task", a, b, c, strategy="task")
    RouteTarget.objects.filter(route=route, model=c).update(task_types=["translation"])

    raw = openai_client(build.key()).chat.completions.with_raw_response.create(
        model="chat-task", messages=[{"role": "user", "content": "Translate into French: good morning"}]
    )

    assert raw.headers["x-gateway-task"] == "translation"
    assert raw.headers["x-gateway-candidates"] == f"{C},{A},{B}"
    assert record_of(raw).task_type == "translation"


def test_the_record_keeps_targets_skipped_because_their_breaker_is_open(models, build, fake_openai, fake_openai_b, openai_client):
    a, b, _ = models
    build.route("chat-default", a, b, breaker_failure_threshold=1, breaker_failure_rate=0, breaker_cooldown_s=60)
    client = openai_client(build.key())
    fake_openai.fail(500)
    first = ask(client)  # a fails once: its breaker opens
    fake_openai_b.fail(503)

    with pytest.raises(openai.InternalServerError) as exc:
        ask(client)  # b goes first now and fails; a is skipped, not called

    headers = exc.value.response.headers
    assert headers["x-gateway-candidates"] == f"{B},{A}"
    assert headers["x-gateway-attempt-log"] == f"{B}=unavailable,{A}=breaker_open"
    assert headers["x-gateway-attempts"] == "1"
    assert fake_openai.request_count == 1
    (_, record) = one_record_per_request([first.headers["x-request-id"], headers["x-request-id"]])
    assert (record.status, record.http_status, record.attempts) == ("error", 503, 1)
    assert record.attempt_log == [
        {"target": B, "outcome": "unavailable", "latency_ms": record.attempt_log[0]["latency_ms"], "status": 503},
        {"target": A, "outcome": "breaker_open", "latency_ms": 0, "status": None},
    ]
    assert record.candidates == [
        {"target": B, "reason": "fallback #1"},
        {"target": A, "reason": "first choice; circuit breaker open"},
    ]


def test_a_stream_carries_the_same_headers_and_record(models, build, fake_openai, openai_client):
    a, b, _ = models
    build.route("chat-default", a, b)
    fake_openai.fail(429, headers={"Retry-After": "0"})

    raw = ask(openai_client(build.key()), stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)

    assert text == "from b"
    assert raw.headers["x-gateway-strategy"] == "fallback"
    assert raw.headers["x-gateway-candidates"] == f"{A},{B}"
    assert raw.headers["x-gateway-attempt-log"] == f"{A}=rate_limited,{B}=ok"
    record = record_of(raw)
    assert record.stream and record.strategy == "fallback"
    assert [x["outcome"] for x in record.attempt_log] == ["rate_limited", "ok"]


def test_a_conditional_route_records_the_rule_that_matched(models, build, openai_client):
    a, b, _ = models
    rules = [{"when": "metadata.tier == 'premium'", "targets": [A]}]
    build.route("chat-cond", b, a, strategy="conditional", rules=rules)
    client = openai_client(build.key())

    premium = client.chat.completions.with_raw_response.create(
        model="chat-cond", messages=MESSAGES, extra_body={"metadata": {"tier": "premium"}}
    )
    other = client.chat.completions.with_raw_response.create(model="chat-cond", messages=MESSAGES)

    assert (answer(premium), answer(other)) == ("from a", "from b")
    assert premium.headers["x-gateway-strategy"] == other.headers["x-gateway-strategy"] == "conditional"
    assert premium.headers["x-gateway-candidates"] == A
    assert other.headers["x-gateway-candidates"] == f"{B},{A}"
    first, second = one_record_per_request([premium.headers["x-request-id"], other.headers["x-request-id"]])
    assert first.candidates == [{"target": A, "reason": "rule 1 matched: metadata.tier == 'premium'"}]
    assert {c["reason"] for c in second.candidates} == {"no rule matched: default order"}


def test_a_cost_route_orders_by_price_above_the_quality_floor(models, build, openai_client):
    a, b, c = models
    build.route("chat-cheap", a, b, c, strategy="cost", min_quality=50)

    raw = ask(openai_client(build.key()), model="chat-cheap")

    assert raw.headers["x-gateway-strategy"] == "cost"
    assert raw.headers["x-gateway-candidates"] == f"{C},{A}"  # b is cheaper but below quality 50
    record = record_of(raw)
    assert record.provider_name == "c"
    assert record.candidates[0]["reason"].startswith("cheapest: ~$")
    assert record.candidates[1]["reason"].startswith("#2 cheapest: ~$")


def test_a_loadbalance_route_names_the_drawn_arm(models, build, openai_client):
    a, b, _ = models
    route = build.route("chat-ab", a, b, strategy="loadbalance", sticky_by="key")
    RouteTarget.objects.filter(route=route, model=b).update(weight=0)  # b: fallback only

    raws = [ask(openai_client(build.key()), model="chat-ab") for _ in range(3)]

    assert {r.headers["x-gateway-candidates"] for r in raws} == {f"{A},{B}"}
    assert {r.headers["x-gateway-strategy"] for r in raws} == {"loadbalance"}
    records = one_record_per_request([r.headers["x-request-id"] for r in raws])
    assert records[0].candidates == [
        {"target": A, "reason": "load-balanced arm: weight 1 of 1 (100%), sticky by key"},
        {"target": B, "reason": "fallback #1"},
    ]
