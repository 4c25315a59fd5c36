"""The /v1 API through the official OpenAI SDK: answers, streams, usage, headers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the gateway"}]


def test_non_stream_answer_has_openai_shape_usage_and_cost(fake_openai, build, openai_client):
    fake_openai.reply_text = "Hello there, gateway user."
    route, model = build.openai_route(fake_openai)
    client = openai_client(build.key())

    raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=MESSAGES)
    completion = raw.parse()

    assert completion.choices[0].message.content == "Hello there, gateway user."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 4
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 4
    # the upstream saw the upstream model id, and our key, never the client's
    upstream = fake_openai.last_request
    assert upstream.body["model"] == "gpt-4o-mini"
    assert upstream.headers["authorization"] == f"Bearer {fake_openai.api_key}"
    # headers tell who answered and what it cost
    rid = raw.headers["x-request-id"]
    assert raw.headers["x-gateway-route"] == "chat-default"
    assert raw.headers["x-gateway-provider"] == model.provider.name
    assert raw.headers["x-gateway-model"] == f"{model.provider.name}/gpt-4o-mini"
    record = UsageRecord.objects.get()
    assert record.request_id == rid
    expected = (Decimal(completion.usage.prompt_tokens) * Decimal("0.15") + 4 * Decimal("0.60")) / 1_000_000
    assert record.cost_usd == expected.quantize(Decimal("1e-10"))
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == expected
    assert record.status == "success" and record.attempts == 1 and not record.stream
    assert (record.prompt_tokens, record.completion_tokens) == (completion.usage.prompt_tokens, 4)


def test_stream_delivers_deltas_usage_and_done(fake_openai, build, openai_client):
    fake_openai.reply_text = "One two three four five."
    build.openai_route(fake_openai)
    client = openai_client(build.key())

    stream = client.chat.completions.create(
        model="chat-default", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "One two three four five."
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert len({c.id for c in chunks}) == 1
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.stream and record.status == "success" and record.completion_tokens == 5
    assert record.ttft_ms is not None


def test_stream_without_include_usage_sends_no_usage_chunk(fake_openai, build, openai_client):
    build.openai_route(fake_openai)
    chunks = list(openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES, stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    # ...but the gateway asked upstream for usage anyway, to bill the stream
    assert fake_openai.last_request.body["stream_options"] == {"include_usage": True}
    assert UsageRecord.objects.get().completion_tokens > 0


def test_stream_and_non_stream_record_same_tokens_and_cost(fake_openai, build, openai_client):
    build.openai_route(fake_openai)
    client = openai_client(build.key())
    client.chat.completions.create(model="chat-default", messages=MESSAGES)
    list(client.chat.completions.create(model="chat-default", messages=MESSAGES, stream=True))

    plain, streamed = (UsageRecord.objects.get(stream=s) for s in (False, True))
    assert (plain.prompt_tokens, plain.completion_tokens, plain.cost_usd) == (
        streamed.prompt_tokens,
        streamed.completion_tokens,
        streamed.cost_usd,
    )
    assert not plain.usage_estimated and not streamed.usage_estimated


def test_models_lists_only_routes_the_key_may_use(fake_openai, build, openai_client):
    allowed, _ = build.openai_route(fake_openai, name="chat-a")
    model = allowed.targets.first().model
    build.route("chat-b", model)
    client = openai_client(build.key(routes=[allowed]))

    assert [m.id for m in client.models.list()] == ["chat-a"]
    assert client.models.retrieve("chat-a").id == "chat-a"
    unrestricted = openai_client(build.key("all"))
    assert sorted(m.id for m in unrestricted.models.list()) == ["chat-a", "chat-b"]


def test_parameters_reach_the_upstream_and_unsupported_ones_are_dropped(fake_openai, build, openai_client):
    build.openai_route(fake_openai)
    client = openai_client(build.key())
    client.chat.completions.create(
        model="chat-default", messages=MESSAGES, temperature=0.2, max_tokens=50, stop=["\n\n"], seed=7, user="u-1"
    )
    body = fake_openai.last_request.body
    assert (body["temperature"], body["max_tokens"], body["stop"], body["seed"], body["user"]) == (
        0.2, 50, ["\n\n"], 7, "u-1"
    )
    assert "metadata" not in body


def test_max_tokens_truncation_reports_length(fake_openai, build, openai_client):
    fake_openai.reply_text = "a b c d e f g h"
    build.openai_route(fake_openai)
    completion = openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3
