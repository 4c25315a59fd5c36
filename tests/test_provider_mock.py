"""The built-in mock provider (kind="mock"), used through the gateway with the OpenAI SDK.

It backs the offline demo and chaos testing, so what matters: answers are
deterministic, the latency / pacing / failure options do what they say (and a
simulated failure is handled like a real outage: fallback, logged as unavailable),
it never costs anything, and streaming agrees with non-streaming.
"""

from __future__ import annotations

import time
from decimal import Decimal
from types import SimpleNamespace

import openai
import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for
from tests.sdk_helpers import only_record as _only_record, streamed as _streamed

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me about gateways"}]


def _mock_model(build, name="mock-a", model="mock-small", **options):
    provider = build.provider(name=name, kind="mock", options=options)
    return build.model(provider, model, input_price="5", output_price="10")


@pytest.fixture
def mock_client(build, openai_client):
    """Make route `chat-mock` -> one mock model with the given options; return a client."""

    def make(**options):
        build.route("chat-mock", _mock_model(build, **options))
        return openai_client(build.key())

    return make


def _ask(client, content="Tell me about gateways", **kw):
    messages = [MESSAGES[0], {"role": "user", "content": content}]
    return client.chat.completions.create(model="chat-mock", messages=messages, **kw)


# --- deterministic answers ---------------------------------------------------------------------
def test_same_prompt_gives_the_same_answer(mock_client):
    client = mock_client()
    first = _ask(client).choices[0].message.content
    second = _ask(client).choices[0].message.content
    assert first == second
    assert first.startswith("[mock mock-small] ") and first.endswith(".")
    assert len(first.split()) == 2 + 12  # prefix + 12 words
    assert _ask(client, "Something else entirely").choices[0].message.content != first


def test_answer_depends_on_the_last_user_message_only(mock_client):
    client = mock_client()
    base = _ask(client, "Same question").choices[0].message.content
    history = [{"role": "user", "content": "Earlier"}, {"role": "assistant", "content": "Sure."},
               {"role": "user", "content": "Same question"}]
    again = client.chat.completions.create(model="chat-mock", messages=history).choices[0].message.content
    assert again == base


def test_fixed_reply_option(mock_client):
    completion = _ask(mock_client(reply="Always this answer."))
    assert completion.choices[0].message.content == "Always this answer."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 3


@pytest.mark.proves("mock", "chat")
def test_non_stream_shape_and_usage(mock_client):
    raw = mock_client().chat.completions.with_raw_response.create(model="chat-mock", messages=MESSAGES)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    # mock usage: words + 3 per message for the prompt, words of the answer for the completion
    assert completion.usage.prompt_tokens == (2 + 3) + (4 + 3)
    assert completion.usage.completion_tokens == len(completion.choices[0].message.content.split())
    assert raw.headers["x-gateway-provider"] == "mock-a"
    assert raw.headers["x-gateway-model"] == "mock-a/mock-small"


# --- streaming -------------------------------------------------------------------------------------
@pytest.mark.proves("mock", "stream", "stream_usage")
def test_stream_gives_the_same_text_and_usage_as_non_stream(mock_client):
    client = mock_client()
    plain = _ask(client)
    chunks, text = _streamed(_ask(client, stream=True, stream_options={"include_usage": True}))
    assert text == plain.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == len(text.split())
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        plain.usage.prompt_tokens, plain.usage.completion_tokens)
    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    streamed = UsageRecord.objects.get(stream=True)
    assert streamed.status == "success" and not streamed.usage_estimated
    assert streamed.completion_tokens == plain.usage.completion_tokens


# --- options: latency, pacing, failures ----------------------------------------------------------------
def test_latency_ms_delays_the_answer(mock_client):
    client = mock_client(latency_ms=400)
    started = time.monotonic()
    _ask(client)
    assert time.monotonic() - started >= 0.4
    assert _only_record().latency_ms >= 400


def test_latency_ms_delays_the_first_streamed_token(mock_client):
    client = mock_client(latency_ms=400)
    list(_ask(client, stream=True))
    record = _only_record()
    assert record.ttft_ms is not None and record.ttft_ms >= 400


def test_tokens_per_s_paces_the_stream(mock_client):
    client = mock_client(tokens_per_s=40)  # 14 words -> ~0.35 s
    arrivals = []
    for chunk in _ask(client, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 14
    assert arrivals[-1] - arrivals[0] >= 13 / 40 * 0.8  # tokens arrive spread out, not at once


def test_no_latency_option_answers_fast(mock_client):
    client = mock_client()
    started = time.monotonic()
    _ask(client)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_failure_rate_one_falls_back_and_is_recorded_as_unavailable(build, openai_client, stream):
    flaky = _mock_model(build, name="mock-flaky", model="flaky", failure_rate=1.0)
    steady = _mock_model(build, name="mock-steady", model="steady")
    build.route("chat-mock", flaky, steady)
    client = openai_client(build.key())
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="chat-mock", messages=MESSAGES, stream=True
        ) as raw:
            headers = raw.headers
            _, text = _streamed(raw.parse())
    else:
        raw = client.chat.completions.with_raw_response.create(model="chat-mock", messages=MESSAGES)
        headers, text = raw.headers, raw.parse().choices[0].message.content
    assert text.startswith("[mock steady] ")
    assert headers["x-gateway-provider"] == "mock-steady" and headers["x-gateway-attempts"] == "2"
    record = _only_record()
    assert record.status == "success" and record.provider_name == "mock-steady"
    assert [(a["target"], a["outcome"], a["status"]) for a in record.attempt_log] == [
        ("mock-flaky/flaky", "unavailable", 503), ("mock-steady/steady", "ok", None)]


def test_failure_rate_one_alone_is_a_clear_503(mock_client):
    client = mock_client(failure_rate=1.0)
    with pytest.raises(openai.InternalServerError) as exc:
        _ask(client)
    assert exc.value.status_code == 503
    assert "simulated failure" in exc.value.response.json()["error"]["message"]
    record = _only_record()
    assert record.status == "error" and record.error_kind == "unavailable" and record.http_status == 503
    assert record.cost_usd == 0 and record.completion_tokens == 0


def test_failure_rate_is_a_probability_threshold(mock_client, monkeypatch):
    from providers.adapters import mock as mock_adapter

    client = mock_client(failure_rate=0.5)
    monkeypatch.setattr(mock_adapter, "random", SimpleNamespace(random=lambda: 0.7))
    assert _ask(client).choices[0].message.content  # draw above the rate: success
    monkeypatch.setattr(mock_adapter, "random", SimpleNamespace(random=lambda: 0.3))
    with pytest.raises(openai.InternalServerError):  # draw below the rate: simulated outage
        _ask(client)


def test_failure_rate_zero_never_fails(mock_client):
    client = mock_client(failure_rate=0)
    for _ in range(5):
        assert _ask(client).choices[0].message.content


def test_max_tokens_truncates_the_mock_answer(mock_client):
    completion = _ask(mock_client(), max_tokens=4)
    assert len(completion.choices[0].message.content.split()) == 4
    assert completion.usage.completion_tokens == 4


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_max_tokens_truncation_reports_length(mock_client, stream):
    client = mock_client()
    if stream:
        chunks, _ = _streamed(_ask(client, max_tokens=4, stream=True))
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason][-1]
    else:
        finish = _ask(client, max_tokens=4).choices[0].finish_reason
    assert finish == "length"


# --- cost -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_mock_costs_nothing_even_with_prices(mock_client, stream):
    client = mock_client()
    if stream:
        list(_ask(client, stream=True))
    else:
        raw = client.chat.completions.with_raw_response.create(model="chat-mock", messages=MESSAGES)
        assert Decimal(raw.headers["x-gateway-cost-usd"]) == 0
    record = _only_record()
    assert record.status == "success" and record.completion_tokens > 0
    assert record.cost_usd == 0
    assert record.input_price_per_mtok == 0 and record.output_price_per_mtok == 0


def test_max_tokens_above_the_answer_length_is_a_normal_stop(mock_client):
    client = mock_client()
    full = _ask(client).choices[0].message.content
    completion = _ask(client, max_tokens=100)
    assert completion.choices[0].message.content == full
    assert completion.choices[0].finish_reason == "stop"
