"""A route to an AWS Bedrock (Converse) provider, used through the official OpenAI SDK.

The gateway speaks OpenAI to its clients and Converse upstream, SigV4-signed (the fake
recomputes every signature with botocore's signer and answers 403 to a bad one): these
tests check the translation both ways (system blocks, role merging, inferenceConfig,
tools and tool choice, images, reasoning with its signature), usage and cost (cache
reads and writes), and ConverseStream's event stream read back as OpenAI chunks.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.bedrock_helpers import (  # noqa: F401 - the *_fixture names are fixtures
    MODEL_ID, UPSTREAM_PATH, only_record, upstream_body,
    bedrock_route_fixture, bedrock_server_fixture, client_fixture, fake_bedrock_fixture,
)
from tests.fakes.bedrock import reasoning_signature
from tests.sdk_helpers import streamed as _streamed

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the gateway"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _tool_calls(chunks) -> dict[int, dict]:
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            slot = calls.setdefault(call.index, {"id": None, "name": "", "arguments": ""})
            slot["id"] = call.id or slot["id"]
            slot["name"] += call.function.name or ""
            slot["arguments"] += call.function.arguments or ""
    return calls


# --- chat ----------------------------------------------------------------------------------------------
@pytest.mark.proves("bedrock", "chat")
def test_chat_is_sent_signed_to_converse_and_mapped_back(fake_bedrock, client):
    completion = client.chat.completions.create(model="chat-bedrock", messages=MESSAGES, max_tokens=64,
                                                temperature=0.3, top_p=0.9, stop="END", extra_body={"top_k": 40})
    assert completion.choices[0].message.content == "Hello from fake-bedrock."
    assert completion.choices[0].finish_reason == "stop"
    sent = fake_bedrock.last_request
    assert sent.path == UPSTREAM_PATH  # the model id's ':' percent-encoded, as botocore does
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={fake_bedrock.access_key}/")
    assert sent.body == {
        "messages": [{"role": "user", "content": [{"text": "Say hello to the gateway"}]}],
        "system": [{"text": "Be brief."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]},
        "additionalModelRequestFields": {"top_k": 40},
    }
    record = only_record()
    assert record.status == "success" and record.prompt_tokens == completion.usage.prompt_tokens
    assert record.completion_tokens == 3


def test_consecutive_same_role_messages_are_merged_and_temperature_clamped(fake_bedrock, client):
    client.chat.completions.create(model="chat-bedrock", temperature=1.7, messages=[
        {"role": "user", "content": "First."}, {"role": "user", "content": "Second."},
        {"role": "assistant", "content": ""}, {"role": "user", "content": "Third."}])
    body = upstream_body(fake_bedrock)
    assert body["messages"] == [{"role": "user", "content": [{"text": "First."}, {"text": "Second."}, {"text": "Third."}]}]
    assert body["inferenceConfig"] == {"temperature": 1.0}


@pytest.mark.parametrize("reply, kwargs, finish", [
    ("one two three four five", {"max_tokens": 2}, "length"),
    ("Hello END there", {"stop": ["END"]}, "stop"),
])
def test_stop_reasons_map_to_finish_reasons(fake_bedrock, client, reply, kwargs, finish):
    fake_bedrock.reply_text = reply
    completion = client.chat.completions.create(model="chat-bedrock", messages=MESSAGES, **kwargs)
    assert completion.choices[0].finish_reason == finish


# --- streams ---------------------------------------------------------------------------------------------
@pytest.mark.proves("bedrock", "stream", "stream_usage")
def test_converse_stream_event_stream_becomes_openai_chunks_with_usage(fake_bedrock, client):
    chunks, text = _streamed(client.chat.completions.create(
        model="chat-bedrock", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert text == "Hello from fake-bedrock."
    assert fake_bedrock.last_request.path == UPSTREAM_PATH + "-stream"
    assert fake_bedrock.last_request.headers["accept"] == "application/vnd.amazon.eventstream"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage.completion_tokens == 3 and usage.prompt_tokens > 0
    record = only_record()
    assert record.status == "success" and not record.usage_estimated
    assert (record.prompt_tokens, record.completion_tokens) == (usage.prompt_tokens, 3)


# --- tools -------------------------------------------------------------------------------------------------
@pytest.mark.proves("bedrock", "tools")
def test_tools_become_tool_config_and_tool_use_comes_back_as_tool_calls(fake_bedrock, client):
    completion = client.chat.completions.create(
        model="chat-bedrock", tools=[WEATHER_TOOL], tool_choice="required",
        messages=[{"role": "user", "content": "What is the weather in Paris today?"}])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in choice.message.tool_calls] == [
        ("get_weather", {"city": "Paris"})]
    assert upstream_body(fake_bedrock)["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "get_weather", "description": "Current weather for a city",
                                "inputSchema": {"json": WEATHER_TOOL["function"]["parameters"]}}}],
        "toolChoice": {"any": {}}}


@pytest.mark.parametrize("choice, expected", [
    ("auto", {"auto": {}}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"tool": {"name": "get_weather"}}),
])
def test_tool_choice_is_translated(fake_bedrock, client, choice, expected):
    client.chat.completions.create(model="chat-bedrock", tools=[WEATHER_TOOL], tool_choice=choice, messages=MESSAGES)
    assert upstream_body(fake_bedrock)["toolConfig"]["toolChoice"] == expected


def test_tool_choice_none_sends_no_tools(fake_bedrock, client):
    client.chat.completions.create(model="chat-bedrock", tools=[WEATHER_TOOL], tool_choice="none",
                                   messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    assert "toolConfig" not in upstream_body(fake_bedrock)


@pytest.mark.proves("bedrock", "parallel_tools")
def test_parallel_tool_calls_and_their_results_share_one_user_turn(fake_bedrock, client):
    question = [{"role": "user", "content": "What is the weather in Paris and London?"}]
    first = client.chat.completions.create(model="chat-bedrock", tools=[WEATHER_TOOL], messages=question)
    calls = first.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments)["city"] for c in calls] == ["Paris", "London"]
    follow_up = [*question, first.choices[0].message.model_dump(exclude_none=True),
                 *({"role": "tool", "tool_call_id": c.id, "content": f"Sunny in {c.id[-4:]}"} for c in calls)]
    second = client.chat.completions.create(model="chat-bedrock", tools=[WEATHER_TOOL], messages=follow_up)
    assert second.choices[0].message.content == "Hello from fake-bedrock."
    sent = upstream_body(fake_bedrock)["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["toolUse"]["toolUseId"] for b in sent[1]["content"]] == [c.id for c in calls]
    assert [b["toolResult"] for b in sent[2]["content"]] == [
        {"toolUseId": c.id, "content": [{"text": f"Sunny in {c.id[-4:]}"}]} for c in calls]


@pytest.mark.proves("bedrock", "tool_deltas")
def test_streamed_tool_use_arrives_as_tool_call_deltas(fake_bedrock, client):
    chunks = list(client.chat.completions.create(
        model="chat-bedrock", tools=[WEATHER_TOOL], stream=True,
        messages=[{"role": "user", "content": "What is the weather in Tokyo and Berlin?"}]))
    calls = _tool_calls(chunks)
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("get_weather", {"city": "Tokyo"}), ("get_weather", {"city": "Berlin"})]
    assert all(c["id"].startswith("tooluse_") for c in calls.values())
    assert sum(len(c.choices[0].delta.tool_calls or []) for c in chunks if c.choices) > 4  # really in pieces
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


# --- vision ---------------------------------------------------------------------------------------------------
@pytest.mark.proves("bedrock", "vision")
def test_image_data_urls_become_image_blocks_with_bytes(fake_bedrock, client):
    client.chat.completions.create(model="chat-bedrock", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}}]}])
    assert upstream_body(fake_bedrock)["messages"][0]["content"] == [
        {"text": "What is in this picture?"},
        {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQSkZJRg=="}}}]


def test_an_image_link_is_the_clients_400_and_nothing_is_sent(fake_bedrock, client):
    import openai

    with pytest.raises(openai.BadRequestError, match="data: URL"):
        client.chat.completions.create(model="chat-bedrock", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert fake_bedrock.request_count == 0


# --- usage, cache and cost ---------------------------------------------------------------------------------
@pytest.mark.proves("bedrock", "cached_tokens")
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_cache_reads_and_writes_are_counted_and_billed_at_cache_prices(fake_bedrock, client, stream):
    fake_bedrock.mangle(lambda obj: {**obj, "usage": {"inputTokens": 100, "outputTokens": 200, "totalTokens": 1200,
                                                      "cacheReadInputTokens": 800, "cacheWriteInputTokens": 100}}
                        if "usage" in obj else obj)
    if stream:
        chunks = list(client.chat.completions.create(model="chat-bedrock", messages=MESSAGES, stream=True,
                                                     stream_options={"include_usage": True}))
        usage = chunks[-1].usage
    else:
        usage = client.chat.completions.create(model="chat-bedrock", messages=MESSAGES).usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (1000, 200)
    record = only_record()
    assert (record.cache_read_tokens, record.cache_write_tokens) == (800, 100)
    expected = (100 * Decimal("3") + 800 * Decimal("0.30") + 100 * Decimal("3.75") + 200 * Decimal("15")) / 1_000_000
    assert record.cost_usd == expected


# --- reasoning ------------------------------------------------------------------------------------------------
@pytest.mark.proves("bedrock", "thinking")
def test_reasoning_content_and_its_signature_come_back_and_are_sent_back(fake_bedrock, client):
    thinking = {"type": "enabled", "budget_tokens": 1024}
    first = client.chat.completions.create(model="chat-bedrock", messages=MESSAGES, max_tokens=2000,
                                           extra_body={"thinking": thinking})
    message = first.choices[0].message
    assert message.model_extra["reasoning_content"] == fake_bedrock.thinking_text
    assert message.model_extra["reasoning_signature"] == reasoning_signature(fake_bedrock.thinking_text)
    assert upstream_body(fake_bedrock)["additionalModelRequestFields"] == {"thinking": thinking}
    # the signed thought goes back in the history as the model wrote it (the fake checks the signature)
    history = [*MESSAGES, message.model_dump(exclude_none=True), {"role": "user", "content": "And again?"}]
    client.chat.completions.create(model="chat-bedrock", messages=history, extra_body={"thinking": thinking})
    assert upstream_body(fake_bedrock)["messages"][1]["content"][0] == {"reasoningContent": {"reasoningText": {
        "text": fake_bedrock.thinking_text, "signature": reasoning_signature(fake_bedrock.thinking_text)}}}


@pytest.mark.proves("bedrock", "thinking")
def test_streamed_reasoning_arrives_as_reasoning_content_deltas(fake_bedrock, client):
    chunks = list(client.chat.completions.create(model="chat-bedrock", messages=MESSAGES, stream=True,
                                                 reasoning_effort="low"))
    deltas = [c.choices[0].delta.model_extra or {} for c in chunks if c.choices]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == fake_bedrock.thinking_text
    assert [d["reasoning_signature"] for d in deltas if d.get("reasoning_signature")] == [
        reasoning_signature(fake_bedrock.thinking_text)]
    assert upstream_body(fake_bedrock)["additionalModelRequestFields"] == {
        "thinking": {"type": "enabled", "budget_tokens": 1024}}


def test_tool_choice_none_keeps_the_tools_when_the_history_holds_tool_calls(fake_bedrock, client):
    history = [{"role": "user", "content": "What is the weather in Paris?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
               {"role": "tool", "tool_call_id": "tooluse_1", "content": ""}]
    client.chat.completions.create(model="chat-bedrock", tools=[WEATHER_TOOL], tool_choice="none", messages=history)
    body = upstream_body(fake_bedrock)  # the fake refuses toolUse/toolResult blocks without toolConfig
    assert [t["toolSpec"]["name"] for t in body["toolConfig"]["tools"]] == ["get_weather"]
    assert "toolChoice" not in body["toolConfig"]
    assert body["messages"][2]["content"] == [{"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "(empty)"}]}}]


def test_pdf_file_parts_become_document_blocks(fake_bedrock, client):
    client.chat.completions.create(model="chat-bedrock", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Summarise this."},
        {"type": "file", "file": {"filename": "report_2024.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}}]}])
    assert upstream_body(fake_bedrock)["messages"][0]["content"][1] == {
        "document": {"format": "pdf", "name": "report-2024-pdf", "source": {"bytes": "JVBERi0xLjQ="}}}
