"""A route to a Cohere (API v2) provider, used through the official OpenAI SDK.

The gateway speaks OpenAI to its clients and Cohere upstream: these tests check the
translation both ways (roles, parameters by the table, tools and tool choice, images,
JSON mode), the answers mapped back (text, tool calls with the tool plan, finish
reasons, billed usage and cost) and streams of Cohere's typed events.
"""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from billing.models import UsageRecord
from tests.cohere_helpers import (
    COHERE_KEY, MESSAGES, MODEL, VISION_MODEL, WEATHER_TOOL, only_record, streamed, tool_calls_of, upstream_body,
)
from tests.conftest import wait_for
from tests.fakes.cohere import PREAMBLE_TOKENS
from tests.fakes.text import prompt_token_count

pytestmark = pytest.mark.django_db(transaction=True)
pytest_plugins = ("tests.cohere_fixtures",)  # the fake_cohere, cohere_route and client fixtures


@pytest.fixture
def client(cohere_client):
    return cohere_client

PARIS = [{"role": "user", "content": "What is the weather in Paris today?"}]
PARIS_AND_LONDON = [{"role": "user", "content": "What is the weather in Paris and London?"}]
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


# --- answers, usage and cost ---------------------------------------------------------------------
@pytest.mark.proves("cohere", "chat")
def test_answer_is_mapped_and_billed_by_billed_units(fake_cohere, client):
    fake_cohere.reply_text = "Hello there, gateway user."
    completion = client.chat.completions.create(model="chat-cohere", messages=MESSAGES)
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content, choice.message.tool_calls) == (
        "assistant", "Hello there, gateway user.", None)
    assert choice.finish_reason == "stop"  # COMPLETE
    billed = prompt_token_count(MESSAGES)
    # billed_units, not `tokens` (which adds Cohere's own preamble, PREAMBLE_TOKENS more)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (billed, 4)
    upstream = fake_cohere.last_request
    assert upstream.headers["authorization"] == f"Bearer {COHERE_KEY}"
    assert upstream.body == {"model": MODEL, "messages": MESSAGES}
    record = only_record()
    assert (record.status, record.prompt_tokens, record.completion_tokens) == ("success", billed, 4)
    assert record.cost_usd == (Decimal(billed) * Decimal("2.5") + 4 * Decimal(10)) / 1_000_000
    assert PREAMBLE_TOKENS > 0


@pytest.mark.parametrize("reply, kwargs, text, finish", [
    ("one two three four five", {"max_tokens": 3}, "one two three", "length"),  # MAX_TOKENS
    ("alpha beta END gamma", {"stop": ["END"]}, "alpha beta ", "stop"),  # STOP_SEQUENCE
    ("alpha beta END gamma", {"stop": "END"}, "alpha beta ", "stop"),  # a plain string
    ("alpha beta gamma", {}, "alpha beta gamma", "stop"),  # COMPLETE
], ids=["MAX_TOKENS->length", "STOP_SEQUENCE->stop", "stop-string", "COMPLETE->stop"])
def test_finish_reasons_json_and_streamed(fake_cohere, client, reply, kwargs, text, finish):
    fake_cohere.reply_text = reply
    completion = client.chat.completions.create(model="chat-cohere", messages=MESSAGES, **kwargs)
    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == (text, finish)
    chunks, streamed_text = streamed(client.chat.completions.create(model="chat-cohere", messages=MESSAGES,
                                                                    stream=True, **kwargs))
    assert streamed_text == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [finish]


def test_parameters_by_the_table(fake_cohere, client):
    client.chat.completions.create(
        model="chat-cohere", messages=MESSAGES, temperature=0.4, top_p=1.0, frequency_penalty=1.5,
        presence_penalty=-0.5, seed=7, stop="END", max_tokens=20, logit_bias={"50256": -100}, user="u-1",
        logprobs=True, parallel_tool_calls=False, n=1, extra_body={"top_k": 900})
    body = upstream_body(fake_cohere)
    assert {k: v for k, v in body.items() if k not in ("model", "messages")} == {
        "temperature": 0.4, "p": 0.99, "k": 500, "frequency_penalty": 1.0, "presence_penalty": 0.0, "seed": 7,
        "stop_sequences": ["END"], "max_tokens": 20}  # clamped into Cohere's ranges; the rest left out


def test_more_than_one_choice_is_refused_before_anything_is_sent(fake_cohere, client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="chat-cohere", messages=MESSAGES, n=2)
    assert refused.value.body["param"] == "n" and "one choice" in refused.value.body["message"]
    assert fake_cohere.request_count == 0


def test_roles_are_kept_and_developer_becomes_system(fake_cohere, client):
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "First."}, {"role": "user", "content": [{"type": "text", "text": "Second."}]},
        {"role": "assistant", "content": "An answer."}, {"role": "user", "content": "And now?"},
    ]
    client.chat.completions.create(model="chat-cohere", messages=messages)
    assert upstream_body(fake_cohere)["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "First."}, {"role": "user", "content": [{"type": "text", "text": "Second."}]},
        {"role": "assistant", "content": "An answer."}, {"role": "user", "content": "And now?"},
    ]


# --- streams --------------------------------------------------------------------------------------
@pytest.mark.proves("cohere", "stream", "stream_usage")
def test_stream_has_the_same_text_and_usage_as_json(fake_cohere, client):
    fake_cohere.reply_text = "One two three four five six."
    plain = client.chat.completions.create(model="chat-cohere", messages=MESSAGES)
    chunks, text = streamed(client.chat.completions.create(
        model="chat-cohere", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert text == plain.choices[0].message.content == "One two three four five six."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 6  # one per content-delta
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        plain.usage.prompt_tokens, plain.usage.completion_tokens)
    assert upstream_body(fake_cohere)["stream"] is True
    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    on_stream = UsageRecord.objects.get(stream=True)
    assert on_stream.status == "success" and not on_stream.usage_estimated
    assert on_stream.prompt_tokens == plain.usage.prompt_tokens


# --- tools -----------------------------------------------------------------------------------------
@pytest.mark.proves("cohere", "tools")
def test_tools_go_as_function_tools_and_a_tool_call_comes_back(fake_cohere, client):
    completion = client.chat.completions.create(model="chat-cohere", messages=PARIS, tools=[WEATHER_TOOL])
    body = upstream_body(fake_cohere)
    assert body["tools"] == [WEATHER_TOOL] and "tool_choice" not in body  # "auto" is Cohere's default
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"  # TOOL_CALL
    assert choice.message.content == "I will look up the weather in Paris."  # the tool plan
    [call] = choice.message.tool_calls
    assert (call.type, call.function.name, json.loads(call.function.arguments)) == ("function", "get_weather", {"city": "Paris"})
    assert call.id.startswith("get_weather_")


@pytest.mark.parametrize("choice, sent, tools", [
    ("auto", None, 2), ("required", "REQUIRED", 2), ("none", "NONE", 2),
    ({"type": "function", "function": {"name": "get_time"}}, "REQUIRED", 1),
], ids=["auto", "required", "none", "named->REQUIRED with that tool only"])
def test_tool_choice(fake_cohere, client, choice, sent, tools):
    time_tool = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    completion = client.chat.completions.create(model="chat-cohere", messages=[{"role": "user", "content": "Hi"}],
                                                tools=[WEATHER_TOOL, time_tool], tool_choice=choice)
    body = upstream_body(fake_cohere)
    assert body.get("tool_choice") == sent and len(body["tools"]) == tools
    if isinstance(choice, dict):
        assert body["tools"][0]["function"]["name"] == "get_time"
        assert completion.choices[0].message.tool_calls[0].function.name == "get_time"


def test_a_named_tool_choice_that_is_not_offered_is_refused(fake_cohere, client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="chat-cohere", messages=PARIS, tools=[WEATHER_TOOL],
                                       tool_choice={"type": "function", "function": {"name": "nope"}})
    assert refused.value.body["param"] == "tool_choice" and fake_cohere.request_count == 0


@pytest.mark.proves("cohere", "parallel_tools")
def test_parallel_tool_calls_come_back_together(client):
    completion = client.chat.completions.create(model="chat-cohere", messages=PARIS_AND_LONDON, tools=[WEATHER_TOOL])
    calls = completion.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}, {"city": "London"}]
    assert len({c.id for c in calls}) == 2


@pytest.mark.proves("cohere", "tool_deltas")
def test_streamed_tool_calls_arrive_as_argument_deltas(client):
    chunks = list(client.chat.completions.create(model="chat-cohere", messages=PARIS_AND_LONDON, tools=[WEATHER_TOOL],
                                                 stream=True, stream_options={"include_usage": True}))
    calls = tool_calls_of(chunks)
    assert list(calls) == [0, 1]
    assert [json.loads(c["arguments"]) for c in calls.values()] == [{"city": "Paris"}, {"city": "London"}]
    assert all(c["name"] == "get_weather" and c["id"].startswith("get_weather_") and c["pieces"] > 1
               for c in calls.values())
    plan = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert plan == "I will look up the weather in Paris and London."  # tool-plan-delta events
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage.completion_tokens > 0


def test_a_tool_result_history_is_sent_as_cohere_messages(fake_cohere, client):
    fake_cohere.reply_text = "Paris: 18 C and sunny; London: 12 C."
    messages = [
        *PARIS_AND_LONDON,
        {"role": "assistant", "content": "Checking both.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "c2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "London"}'}},
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 C, sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "12 C"}]},
    ]
    completion = client.chat.completions.create(model="chat-cohere", messages=messages, tools=[WEATHER_TOOL])
    assert completion.choices[0].message.content == "Paris: 18 C and sunny; London: 12 C."
    assert upstream_body(fake_cohere)["messages"][1:] == [
        {"role": "assistant", "tool_plan": "Checking both.", "tool_calls": messages[1]["tool_calls"]},
        {"role": "tool", "tool_call_id": "c1", "content": "18 C, sunny"},
        {"role": "tool", "tool_call_id": "c2", "content": "12 C"},
    ]


# --- images and JSON -------------------------------------------------------------------------------
@pytest.mark.proves("cohere", "vision")
def test_image_parts_reach_a_vision_model(fake_cohere, build, openai_client):
    provider = build.provider(fake_cohere, name="cohere-vision", kind="cohere")
    build.route("vision", build.model(provider, VISION_MODEL))
    content = [{"type": "text", "text": "What is in this picture?"},
               {"type": "image_url", "image_url": {"url": PIXEL, "detail": "low"}}]
    completion = openai_client(build.key()).chat.completions.create(
        model="vision", messages=[{"role": "user", "content": content}])
    assert completion.choices[0].message.content == fake_cohere.reply_text
    assert upstream_body(fake_cohere)["messages"] == [{"role": "user", "content": content}]


def test_an_unsupported_content_part_is_refused(fake_cohere, client):
    part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="chat-cohere", messages=[{"role": "user", "content": [part]}])
    assert fake_cohere.request_count == 0


@pytest.mark.proves("cohere", "json_mode")
def test_response_format_json_object_and_json_schema(fake_cohere, client):
    ask = [{"role": "user", "content": "Generate a JSON person"}]
    plain = client.chat.completions.create(model="chat-cohere", messages=ask, response_format={"type": "json_object"})
    assert upstream_body(fake_cohere)["response_format"] == {"type": "json_object"}
    assert json.loads(plain.choices[0].message.content) == {"answer": fake_cohere.reply_text}
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}, "required": ["name"]}
    shaped = client.chat.completions.create(model="chat-cohere", messages=ask, response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}})
    assert upstream_body(fake_cohere)["response_format"] == {"type": "json_object", "json_schema": schema}
    assert json.loads(shaped.choices[0].message.content) == {"name": "fake", "age": 1}
