"""Tool calls through /v1/responses with the official OpenAI SDK: function_call items
out (JSON and streamed argument deltas), function_call_output items in on the next
turn, and a multi-turn conversation the way Codex CLI holds it (stateless: the whole
history in `input` each turn), against the OpenAI and the Anthropic fakes."""

from __future__ import annotations

import json

import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for
from tests.fakes.anthropic import TOOL_INPUT

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ARGUMENTS = json.dumps(TOOL_INPUT)  # what the Anthropic fake's tool_use carries: {"city": "Paris"}


@pytest.fixture
def claude(build, fake_anthropic):
    provider = build.provider(fake_anthropic, name="claude", kind="anthropic")
    return build.route("agent", build.model(provider, "claude-sonnet-4-6"))


@pytest.fixture
def gpt(build, fake_openai):
    return build.route("agent", build.model(build.provider(fake_openai, name="oai"), "gpt-4o-mini"))


# The OpenAI fake answers text; `mangle` turns its answer into tool calls, as OpenAI sends them.
def tool_calls_answer(*calls: tuple[str, str, str]):
    def edit(obj):
        choice = obj["choices"][0]
        choice["message"].update(content=None, tool_calls=[
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            for call_id, name, arguments in calls])
        choice["finish_reason"] = "tool_calls"
        return obj
    return edit


def streamed_tool_calls(calls: list[tuple[str, str]], pieces_per_call: int):
    """Chunks whose text pieces become argument deltas: the first `pieces_per_call`
    pieces to call 0, the next to call 1, ... (both calls opened by the first chunk)."""
    state = {"pieces": 0}

    def edit(obj):
        for choice in obj.get("choices") or []:
            delta = choice["delta"]
            if "role" in delta:
                delta["content"] = None
                delta["tool_calls"] = [{"index": i, "id": call_id, "type": "function",
                                        "function": {"name": name, "arguments": ""}}
                                       for i, (call_id, name) in enumerate(calls)]
            elif "content" in delta:
                index = min(state["pieces"] // pieces_per_call, len(calls) - 1)
                state["pieces"] += 1
                delta["tool_calls"] = [{"index": index, "function": {"arguments": delta.pop("content")}}]
            if choice.get("finish_reason"):
                choice["finish_reason"] = "tool_calls"
        return obj
    return edit


def _records(n: int) -> list[UsageRecord]:
    assert wait_for(lambda: UsageRecord.objects.count() >= n)
    records = list(UsageRecord.objects.order_by("created_at"))
    assert len(records) == n
    return records


def _items(output) -> list[dict]:
    """Output items as the client sends them back in the next turn's input."""
    return [item.model_dump(exclude_none=True) for item in output]


# --- Anthropic target: translated both ways ---------------------------------------------------
def test_function_call_out_and_its_output_in_with_an_anthropic_target(claude, fake_anthropic, build, openai_client):
    client = openai_client(build.key())
    question = {"role": "user", "content": "What's the weather in Paris?"}

    first = client.responses.create(model="agent", input=[question], tools=[WEATHER], tool_choice="auto")

    [call] = first.output
    assert call.type == "function_call" and call.status == "completed" and call.id.startswith("fc_")
    assert call.name == "get_weather" and json.loads(call.arguments) == TOOL_INPUT
    assert call.call_id.startswith("toolu_")  # the target's tool id: it comes back in function_call_output
    sent = fake_anthropic.last_request.body
    assert sent["tools"] == [{"name": "get_weather", "description": "The weather in a city.",
                              "input_schema": WEATHER["parameters"]}]
    assert sent["tool_choice"] == {"type": "auto"}

    output = {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}
    second = client.responses.create(model="agent", input=[question, *_items(first.output), output], tools=[WEATHER])

    assert second.output_text == "Hello from fake-anthropic."
    assert fake_anthropic.last_request.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What's the weather in Paris?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": call.call_id, "name": "get_weather",
                                           "input": TOOL_INPUT}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.call_id, "content": "18C and sunny"}]},
    ]
    assert all(r.endpoint == "responses" for r in _records(2))


def test_streamed_function_call_sends_argument_deltas(claude, build, openai_client):
    client = openai_client(build.key())

    events = list(client.responses.create(model="agent", input="What's the weather in Paris?", tools=[WEATHER],
                                          stream=True))

    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    deltas = [e for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(deltas) >= 2 and set(kinds[3:-3]) == {"response.function_call_arguments.delta"}
    added, done = events[2].item, events[-3]
    assert added.type == "function_call" and added.arguments == "" and added.status == "in_progress"
    assert "".join(d.delta for d in deltas) == done.arguments == ARGUMENTS
    assert {d.item_id for d in deltas} == {added.id} and done.item_id == added.id
    [final] = events[-1].response.output
    assert (final.call_id, final.name, final.arguments, final.status) == (added.call_id, "get_weather", ARGUMENTS, "completed")
    [record] = _records(1)
    assert record.stream and record.completion_tokens > 0


def test_stream_helper_gives_the_function_call_in_the_final_response(claude, build, openai_client):
    client = openai_client(build.key())
    with client.responses.stream(model="agent", input="weather in Paris?", tools=[WEATHER]) as stream:
        snapshots = [e.snapshot for e in stream if e.type == "response.function_call_arguments.delta"]
        final = stream.get_final_response()
    assert snapshots[-1] == ARGUMENTS
    [call] = final.output
    assert call.type == "function_call" and json.loads(call.arguments) == TOOL_INPUT


# --- OpenAI target: chat tool calls <-> Responses items ----------------------------------------
def test_parallel_function_calls_from_an_openai_target(gpt, fake_openai, build, openai_client):
    fake_openai.mangle(tool_calls_answer(("call_1", "get_weather", '{"city": "Paris"}'),
                                         ("call_2", "get_weather", '{"city": "Rome"}')))
    client = openai_client(build.key())

    first = client.responses.create(model="agent", input="Weather in Paris and Rome?", tools=[WEATHER],
                                    parallel_tool_calls=True, tool_choice={"type": "function", "name": "get_weather"})

    assert [(i.type, i.call_id, i.arguments) for i in first.output] == [
        ("function_call", "call_1", '{"city": "Paris"}'), ("function_call", "call_2", '{"city": "Rome"}')]
    sent = fake_openai.last_request.body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is True

    outputs = [{"type": "function_call_output", "call_id": "call_1", "output": "18C"},
               {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "21C"}]}]
    client.responses.create(model="agent", input=[{"role": "user", "content": "Weather in Paris and Rome?"},
                                                  *_items(first.output), *outputs], tools=[WEATHER])

    assert fake_openai.last_request.body["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [  # two calls: one assistant turn
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "21C"},
    ]


def test_streamed_parallel_calls_land_on_their_own_items(gpt, fake_openai, build, openai_client):
    fake_openai.reply_text = '{"city": "Paris"} {"city": "Rome"}'  # pieces: '{"city":' ' "Paris"}' ' {"city":' ' "Rome"}'
    fake_openai.mangle(streamed_tool_calls([("call_1", "get_weather"), ("call_2", "get_weather")], pieces_per_call=2))
    client = openai_client(build.key())

    events = list(client.responses.create(model="agent", input="Weather in Paris and Rome?", tools=[WEATHER],
                                          stream=True))

    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [a.call_id for a in added] == ["call_1", "call_2"]
    by_item: dict[str, str] = {}
    for e in events:
        if e.type == "response.function_call_arguments.delta":
            by_item[e.item_id] = by_item.get(e.item_id, "") + e.delta
    assert [json.loads(by_item[a.id]) for a in added] == [{"city": "Paris"}, {"city": "Rome"}]
    done = [e for e in events if e.type == "response.output_item.done"]
    assert [(d.output_index, d.item.call_id) for d in done] == [(0, "call_1"), (1, "call_2")]
    final = events[-1].response
    assert final.status == "completed" and [json.loads(i.arguments)["city"] for i in final.output] == ["Paris", "Rome"]


def test_text_then_function_call_in_one_stream_closes_the_message_first(gpt, fake_openai, build, openai_client):
    state = {"n": 0}

    def text_then_call(obj):
        for choice in obj.get("choices") or []:
            delta = choice["delta"]
            if "content" in delta and "role" not in delta:
                state["n"] += 1
                if state["n"] > 1:  # the first piece stays text, the rest become the call's arguments
                    args = delta.pop("content")
                    call = {"index": 0, "function": {"arguments": args}}
                    if state["n"] == 2:
                        call.update(id="call_9", type="function", function={"name": "get_weather", "arguments": args})
                    delta["tool_calls"] = [call]
            if choice.get("finish_reason"):
                choice["finish_reason"] = "tool_calls"
        return obj

    fake_openai.reply_text = 'Checking. {"city": "Paris"}'
    fake_openai.mangle(text_then_call)
    events = list(openai_client(build.key()).responses.create(model="agent", input="weather?", tools=[WEATHER],
                                                              stream=True))

    kinds = [e.type for e in events]
    message_done = kinds.index("response.output_item.done")
    assert kinds.index("response.output_text.done") < message_done < kinds.index("response.function_call_arguments.delta")
    message, call = events[-1].response.output
    assert message.type == "message" and message.content[0].text == "Checking."
    assert call.type == "function_call" and call.arguments == ' {"city": "Paris"}' and call.call_id == "call_9"


# --- a Codex-like session ---------------------------------------------------------------------
CODEX_INSTRUCTIONS = "You are a coding agent running in the Codex CLI. Keep going until the task is done."


def codex_turn(client, history: list[dict]) -> list[dict]:
    """One Codex turn: the whole history, store false, streamed; the items come from
    response.output_item.done events, as Codex collects them."""
    stream = client.responses.create(
        model="agent", instructions=CODEX_INSTRUCTIONS, input=history, tools=[WEATHER], tool_choice="auto",
        parallel_tool_calls=False, reasoning={"effort": "medium", "summary": "auto"}, store=False, stream=True,
        include=["reasoning.encrypted_content"], prompt_cache_key="conv-123",
    )
    events = list(stream)
    assert events[-1].type == "response.completed"
    return [e.item.model_dump(exclude_none=True) for e in events if e.type == "response.output_item.done"]


@pytest.mark.parametrize("target", ["anthropic", "openai"])
def test_codex_like_multi_turn_conversation(target, request, fake_openai, fake_anthropic, build, openai_client):
    if target == "anthropic":
        request.getfixturevalue("claude")
        fake = fake_anthropic
    else:
        request.getfixturevalue("gpt")
        fake = fake_openai
        fake_openai.reply_text = ARGUMENTS
        fake_openai.mangle(streamed_tool_calls([("call_weather", "get_weather")], pieces_per_call=99))
    client = openai_client(build.key(), default_headers={"session_id": "codex-abc"})
    history: list[dict] = [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox: read-only"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What's the weather in Paris?"}]},
    ]

    # turn 1: the model calls the tool
    items = codex_turn(client, history)
    [call] = items
    assert call["type"] == "function_call" and json.loads(call["arguments"]) == TOOL_INPUT
    fake_openai.reply_text = "Hello from fake-openai."  # (the OpenAI fake's arguments were its text)
    # Codex replays its reasoning items (encrypted) too; the gateway drops them
    history += [{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA..."}, *items,
                {"type": "function_call_output", "call_id": call["call_id"], "output": "18C and sunny"}]

    # turn 2: the tool's output goes back; the model answers in text
    items = codex_turn(client, history)
    [answer] = items
    assert answer["type"] == "message" and answer["content"][0]["text"].startswith("Hello from fake")
    history += items + [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks!"}]}]

    # turn 3: a follow-up over the whole history
    codex_turn(client, history)

    body = fake.last_request.body
    if target == "anthropic":
        assert body["system"] == f"{CODEX_INSTRUCTIONS}\n\nsandbox: read-only"
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user", "assistant", "user"]
        assert body["messages"][1]["content"][0]["id"] == call["call_id"]
        assert body["messages"][2]["content"][0]["tool_use_id"] == call["call_id"]
        assert body["messages"][3]["content"] == [{"type": "text", "text": answer["content"][0]["text"]}]
    else:
        assert [m["role"] for m in body["messages"]] == ["system", "system", "user", "assistant", "tool", "assistant", "user"]
        assert body["messages"][3]["tool_calls"][0]["id"] == "call_weather"
        assert body["messages"][4] == {"role": "tool", "tool_call_id": "call_weather", "content": "18C and sunny"}
        assert body["reasoning_effort"] == "medium" and body["parallel_tool_calls"] is False
    records = _records(3)
    assert [r.endpoint for r in records] == ["responses"] * 3
    assert {r.client_session for r in records} == {"codex-abc"} and all(r.stream for r in records)


# --- capabilities --------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [
    {"tools": [WEATHER]},
    {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]}]},
    {"text": {"format": {"type": "json_object"}}},
], ids=["tools", "image", "json"])
def test_a_model_lacking_what_the_response_needs_is_skipped(extra, fake_openai, fake_openai_b, build, openai_client):
    fake_openai_b.reply_text = "from capable"
    plain = build.model(build.provider(fake_openai, name="plain"), capabilities=["chat", "streaming"])
    capable = build.model(build.provider(fake_openai_b, name="capable"))
    build.route("agent", plain, capable)

    response = openai_client(build.key()).responses.create(**{"model": "agent", "input": "hello", **extra})

    assert response.output_text == "from capable"
    assert fake_openai.request_count == 0
    assert [a["outcome"] for a in _records(1)[0].attempt_log] == ["unsupported_capability", "ok"]
