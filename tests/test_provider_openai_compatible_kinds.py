"""Perplexity and xAI: OpenAI-compatible kinds that are rows in providers/kinds.py.
Their rows are proven here through the gateway: what each drops never reaches the
provider, clamped values arrive clamped, and their answers' extra fields (Perplexity's
`citations` and `search_results`, its usage extras) are read past."""

from __future__ import annotations

import json

import pytest

from tests.openai_dialect_helpers import (  # noqa: F401 - the *_fixture imports register fixtures
    IMAGE, WEATHER_TOOL, _compatible_server_fixture, fake_compatible_fixture, only_record, streamed, streamed_calls,
)

pytestmark = pytest.mark.django_db(transaction=True)

HI = [{"role": "user", "content": "Say hello"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris and Berlin?"}]
PERPLEXITY_DROPS = ("logit_bias", "logprobs", "top_logprobs", "n", "seed", "user", "tools", "tool_choice",
                    "parallel_tool_calls")
CITATIONS = ["https://en.wikipedia.org/wiki/Paris", "https://www.paris.fr/"]
SEARCH_RESULTS = [{"title": "Paris - Wikipedia", "url": CITATIONS[0], "date": "2025-01-02"}]


@pytest.fixture
def route(fake_compatible, build, openai_client):
    def make(kind):
        provider = build.provider(fake_compatible, name=kind, kind=kind)
        build.route(f"chat-{kind}", build.model(provider, "m", upstream_id="sonar" if kind == "perplexity" else "grok-3"))
        return openai_client(build.key())
    return make


def _with_citations(answer: dict) -> dict:
    if "object" in answer and answer.get("choices") is not None:
        answer = {**answer, "citations": CITATIONS, "search_results": SEARCH_RESULTS}
    if answer.get("usage"):
        answer["usage"] = {**answer["usage"], "search_context_size": "low", "citation_tokens": 12,
                           "num_search_queries": 1, "cost": {"total_cost": 0.005}}
    return answer


# --- Perplexity ------------------------------------------------------------------------------------
@pytest.mark.proves("perplexity", "chat")
def test_perplexity_answers_with_citations_are_read(fake_compatible, route):
    fake_compatible.mangle(_with_citations)
    completion = route("perplexity").chat.completions.create(model="chat-perplexity", messages=HI)
    assert completion.choices[0].message.content == "Hello from fake-openai."
    assert completion.usage.completion_tokens == 3
    assert fake_compatible.last_request.body["model"] == "sonar"
    assert only_record().status == "success"


@pytest.mark.proves("perplexity", "stream", "stream_usage")
def test_perplexity_stream_with_citations_and_usage(fake_compatible, route):
    fake_compatible.mangle(_with_citations)
    chunks, text = streamed(route("perplexity").chat.completions.create(
        model="chat-perplexity", messages=HI, stream=True, stream_options={"include_usage": True}))
    assert text == "Hello from fake-openai." and chunks[-1].usage.completion_tokens == 3
    assert fake_compatible.last_request.body["stream_options"] == {"include_usage": True}


def test_perplexity_never_receives_what_it_drops_and_temperature_stays_below_2(fake_compatible, route):
    route("perplexity").chat.completions.create(
        model="chat-perplexity", messages=WEATHER, logit_bias={"1": 1}, logprobs=True, top_logprobs=2, n=1, seed=7,
        user="u-1", tools=[WEATHER_TOOL], tool_choice="auto", parallel_tool_calls=True, temperature=2, top_p=0.9)
    body = fake_compatible.last_request.body
    assert not set(PERPLEXITY_DROPS) & set(body), body
    assert body["temperature"] == 1.99 and body["top_p"] == 0.9


@pytest.mark.proves("perplexity", "vision", "json_mode")
def test_perplexity_images_and_json_schema_pass_through(fake_compatible, route):
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}]
    schema = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
    route("perplexity").chat.completions.create(model="chat-perplexity", messages=messages, response_format=schema)
    body = fake_compatible.last_request.body
    assert body["messages"] == messages and body["response_format"] == schema


# --- xAI -------------------------------------------------------------------------------------------
@pytest.mark.proves("xai", "chat", "cached_tokens")
def test_xai_chat_and_cached_tokens(fake_compatible, route):
    fake_compatible.cached_tokens = 3
    completion = route("xai").chat.completions.create(model="chat-xai", messages=HI, logit_bias={"1": 1}, seed=3)
    assert completion.choices[0].message.content == "Hello from fake-openai."
    body = fake_compatible.last_request.body
    assert "logit_bias" not in body and body["seed"] == 3  # xAI drops only logit_bias
    assert only_record().cache_read_tokens == 3


@pytest.mark.proves("xai", "stream", "stream_usage")
def test_xai_stream_with_usage(route):
    chunks, text = streamed(route("xai").chat.completions.create(
        model="chat-xai", messages=HI, stream=True, stream_options={"include_usage": True}))
    assert text == "Hello from fake-openai." and chunks[-1].usage.completion_tokens == 3


@pytest.mark.proves("xai", "tools", "parallel_tools", "tool_deltas")
def test_xai_tool_calls_whole_and_streamed(route):
    client = route("xai")
    message = client.chat.completions.create(model="chat-xai", messages=WEATHER, tools=[WEATHER_TOOL]).choices[0].message
    assert [json.loads(c.function.arguments) for c in message.tool_calls] == [{"city": "Paris"}, {"city": "Berlin"}]
    chunks, _ = streamed(client.chat.completions.create(model="chat-xai", messages=WEATHER, tools=[WEATHER_TOOL],
                                                        stream=True))
    assert [json.loads(c["arguments"]) for c in streamed_calls(chunks)] == [{"city": "Paris"}, {"city": "Berlin"}]


@pytest.mark.proves("xai", "vision", "json_mode")
def test_xai_images_and_response_format_pass_through(fake_compatible, route):
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}]
    route("xai").chat.completions.create(model="chat-xai", messages=messages, response_format={"type": "json_object"})
    body = fake_compatible.last_request.body
    assert body["messages"] == messages and body["response_format"] == {"type": "json_object"}
