"""Prove the fake Cohere server is faithful, with the official `cohere` SDK (ClientV2) as
its client: what the SDK sends the fake accepts, and what the fake answers the SDK
parses (chat, chat_stream with text and tool calls, embed, models.list, errors).

Plain sync tests: no Django, no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import cohere
import httpx
import pytest

from tests.fakes.cohere import PREAMBLE_TOKENS, FakeCohere
from tests.fakes.text import prompt_token_count

pytestmark = pytest.mark.timeout(60)

KEY = "co-test-key"
MODEL = "command-a-03-2025"
USER = [{"role": "user", "content": "Say hello to me"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


@pytest.fixture
def fake() -> Iterator[FakeCohere]:
    with FakeCohere(api_key=KEY) as server:
        server.embedding_size = 16
        yield server
    assert server.errors == []  # no exception inside the fake itself


@pytest.fixture
def co(fake: FakeCohere) -> cohere.ClientV2:
    return cohere.ClientV2(api_key=KEY, base_url=fake.base_url, max_retries=0)


# -- chat ----------------------------------------------------------------------------------------
def test_chat_answer_usage_and_the_request_the_sdk_sends(fake, co):
    messages = [{"role": "system", "content": "Be brief."}, *USER]
    response = co.chat(model=MODEL, messages=messages, temperature=0.2, p=0.5, k=40, max_tokens=50)
    assert response.finish_reason == "COMPLETE"
    assert response.message.role == "assistant"
    assert [(c.type, c.text) for c in response.message.content] == [("text", "Hello from fake-cohere.")]
    billed = prompt_token_count(messages)
    assert (response.usage.billed_units.input_tokens, response.usage.billed_units.output_tokens) == (billed, 3)
    assert response.usage.tokens.input_tokens == billed + PREAMBLE_TOKENS  # the preamble is counted, not billed
    request = fake.last_request
    assert (request.method, request.path) == ("POST", "/v2/chat")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {"model": MODEL, "messages": messages, "temperature": 0.2, "p": 0.5, "k": 40,
                            "max_tokens": 50, "stream": False}


def test_max_tokens_and_stop_sequences_finish_reasons(fake, co):
    fake.reply_text = "one two three END four"
    assert co.chat(model=MODEL, messages=USER, max_tokens=2).finish_reason == "MAX_TOKENS"
    stopped = co.chat(model=MODEL, messages=USER, stop_sequences=["END"])
    assert (stopped.finish_reason, stopped.message.content[0].text) == ("STOP_SEQUENCE", "one two three ")


def test_chat_stream_event_sequence_text_and_usage(fake, co):
    fake.reply_text = "One two three four."
    events = list(co.chat_stream(model=MODEL, messages=USER))
    types = [e.type for e in events]
    assert types == ["message-start", "content-start", *["content-delta"] * 4, "content-end", "message-end"]
    assert events[0].delta.message.role == "assistant"
    assert "".join(e.delta.message.content.text for e in events if e.type == "content-delta") == "One two three four."
    end = events[-1]
    assert end.delta.finish_reason == "COMPLETE"
    assert (end.delta.usage.billed_units.input_tokens, end.delta.usage.billed_units.output_tokens) == (7, 4)
    assert fake.last_request.body["stream"] is True


def test_raw_stream_is_named_sse_events_ending_with_done(fake):
    body = {"model": MODEL, "messages": USER, "stream": True}
    with httpx.stream("POST", f"{fake.base_url}/v2/chat", json=body, headers={"authorization": f"Bearer {KEY}"}) as r:
        raw = r.read().decode()
    assert r.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in raw.split("\n\n") if b]
    assert blocks[0].startswith("event: message-start\ndata: ")
    assert blocks[-1] == "data: [DONE]"
    for block in blocks[:-1]:
        event, data = block.split("\n")
        assert json.loads(data.removeprefix("data: "))["type"] == event.removeprefix("event: ")


def test_parallel_tool_calls_with_a_tool_plan(co):
    question = [{"role": "user", "content": "What is the weather in Paris and London?"}]
    response = co.chat(model=MODEL, messages=question, tools=[WEATHER_TOOL])
    assert response.finish_reason == "TOOL_CALL"
    assert response.message.tool_plan == "I will look up the weather in Paris and London."
    calls = response.message.tool_calls
    assert [(c.type, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("function", "get_weather", {"city": "Paris"}), ("function", "get_weather", {"city": "London"})]
    assert all(c.id.startswith("get_weather_") for c in calls) and calls[0].id != calls[1].id


def test_streamed_tool_calls_assemble_from_deltas(co):
    question = [{"role": "user", "content": "Weather in Tokyo and Madrid, please"}]
    events = list(co.chat_stream(model=MODEL, messages=question, tools=[WEATHER_TOOL]))
    plan = "".join(e.delta.message.tool_plan for e in events if e.type == "tool-plan-delta")
    assert plan == "I will look up the weather in Tokyo and Madrid."
    starts = [e for e in events if e.type == "tool-call-start"]
    assert [(e.index, e.delta.message.tool_calls.function.name) for e in starts] == [(0, "get_weather"), (1, "get_weather")]
    arguments = {0: "", 1: ""}
    for e in events:
        if e.type == "tool-call-delta":
            arguments[e.index] += e.delta.message.tool_calls.function.arguments
    assert [json.loads(a) for a in arguments.values()] == [{"city": "Tokyo"}, {"city": "Madrid"}]
    assert [e.type for e in events].count("tool-call-end") == 2
    assert events[-1].delta.finish_reason == "TOOL_CALL"


def test_tool_results_round_trip_and_tool_choice(fake, co):
    first = co.chat(model=MODEL, messages=[{"role": "user", "content": "weather in Paris?"}], tools=[WEATHER_TOOL])
    call = first.message.tool_calls[0]
    history = [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "tool_plan": first.message.tool_plan, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call.id, "content": "18 C and sunny"},
    ]
    answer = co.chat(model=MODEL, messages=history, tools=[WEATHER_TOOL])
    assert answer.finish_reason == "COMPLETE" and answer.message.content[0].text == fake.reply_text
    assert fake.last_request.body["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Paris"}'
    forced = co.chat(model=MODEL, messages=USER, tools=[WEATHER_TOOL], tool_choice="REQUIRED")
    assert forced.finish_reason == "TOOL_CALL"
    refused = co.chat(model=MODEL, messages=[{"role": "user", "content": "weather?"}], tools=[WEATHER_TOOL], tool_choice="NONE")
    assert refused.finish_reason == "COMPLETE"


def test_images_only_for_a_vision_model(co):
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": PIXEL}}]
    answer = co.chat(model="command-a-vision-07-2025", messages=[{"role": "user", "content": content}])
    assert answer.finish_reason == "COMPLETE"
    with pytest.raises(cohere.BadRequestError, match="image"):
        co.chat(model=MODEL, messages=[{"role": "user", "content": content}])


def test_json_object_with_a_schema(co):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
    answer = co.chat(model=MODEL, messages=[{"role": "user", "content": "Generate a JSON person"}],
                     response_format={"type": "json_object", "json_schema": schema})
    assert json.loads(answer.message.content[0].text) == {"name": "fake", "age": 1}


def test_a_generation_failing_mid_stream_ends_with_error(fake, co):
    fake.reply_text = "one two three four"
    fake.stream_error("internal error, please retry", after_chunks=2)
    events = list(co.chat_stream(model=MODEL, messages=USER))
    assert [e.delta.message.content.text for e in events if e.type == "content-delta"] == ["one", " two"]
    assert events[-1].type == "message-end"
    assert (events[-1].delta.finish_reason, events[-1].delta.error) == ("ERROR", "internal error, please retry")


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize("status, error", [
    (400, cohere.BadRequestError), (422, cohere.UnprocessableEntityError), (429, cohere.TooManyRequestsError),
    (499, cohere.ClientClosedRequestError), (500, cohere.InternalServerError), (503, cohere.ServiceUnavailableError),
])
def test_scripted_errors_reach_the_sdk_as_its_exceptions(fake, co, status, error):
    fake.fail(status)
    with pytest.raises(error) as raised:
        co.chat(model=MODEL, messages=USER)
    assert raised.value.status_code == status and isinstance(raised.value.body["message"], str)


def test_refusals_the_api_makes_itself(fake, co):
    with pytest.raises(cohere.UnauthorizedError):
        cohere.ClientV2(api_key="wrong", base_url=fake.base_url, max_retries=0).chat(model=MODEL, messages=USER)
    fake.known_models = {MODEL}  # by default the fake knows every model name
    with pytest.raises(cohere.NotFoundError, match="not found"):
        co.chat(model="command-nope", messages=USER)
    headers = {"authorization": f"Bearer {KEY}"}
    unknown = httpx.post(f"{fake.base_url}/v2/chat", json={"model": MODEL, "messages": USER, "top_p": 0.5}, headers=headers)
    assert unknown.status_code == 400 and "top_p" in unknown.json()["message"]
    lowercase = httpx.post(f"{fake.base_url}/v2/chat", json={"model": MODEL, "messages": USER, "tools": [WEATHER_TOOL],
                                                             "tool_choice": "auto"}, headers=headers)
    assert lowercase.status_code == 400 and "tool_choice" in lowercase.json()["message"]
    no_id = [*USER, {"role": "tool", "content": "x"}]
    assert httpx.post(f"{fake.base_url}/v2/chat", json={"model": MODEL, "messages": no_id}, headers=headers).status_code == 400


# -- embed and models ----------------------------------------------------------------------------
def test_embed_floats_in_order_with_billed_units(fake, co):
    answer = co.embed(model="embed-v4.0", texts=["one two", "three"], input_type="search_document",
                      embedding_types=["float"])
    vectors = answer.embeddings.float_
    assert [len(v) for v in vectors] == [16, 16] and vectors[0] != vectors[1]
    assert answer.meta.billed_units.input_tokens == 3
    assert answer.texts == ["one two", "three"]
    body = fake.last_request.body
    assert (fake.last_request.path, body["input_type"], body["embedding_types"]) == ("/v2/embed", "search_document", ["float"])
    short = co.embed(model="embed-v4.0", texts=["x"], input_type="search_query", embedding_types=["float"], output_dimension=256)
    assert len(short.embeddings.float_[0]) == 16  # the fake's vectors are small; the field was accepted
    with pytest.raises(cohere.BadRequestError, match="input_type"):
        co.embed(model="embed-v4.0", texts=["x"], input_type="anything", embedding_types=["float"])


def test_models_list_with_pages_and_endpoint_filter(fake, co):
    listed = co.models.list(page_size=1000)
    names = [m.name for m in listed.models]
    assert "command-a-03-2025" in names and "embed-v4.0" in names
    vision = next(m for m in listed.models if m.name == "command-a-vision-07-2025")
    assert (vision.endpoints, vision.context_length, "vision" in vision.features) == (["chat"], 128000, True)
    first = co.models.list(page_size=2)
    assert len(first.models) == 2 and first.next_page_token
    second = co.models.list(page_size=2, page_token=first.next_page_token)
    assert [m.name for m in second.models] == names[2:4]
    assert {m.name for m in co.models.list(endpoint="embed").models} == {"embed-v4.0", "embed-english-v3.0"}
    assert fake.last_request.headers["authorization"] == f"Bearer {KEY}"
