"""The Messages API's parts on their own: the body's translation to the internal shape,
the event sequence built from mixed chunks (the provider's events, and chunks a stream
filter rebuilt), the Anthropic adapter's passthrough against the fake (stream events one
chunk each), the byte-keeping model splice, the error mapping, and the fake's thinking
signatures and prompt-cache accounting proven with the SDK.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from types import SimpleNamespace

import anthropic
import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event

from gateway_project.errors import GatewayError, InvalidRequest, NotFound, UpstreamFailed
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.json_splice import replace_member
from providers.catalog import ModelInfo, ProviderInfo
from providers.http import close_session
from providers.kinds import KINDS
from providers.types import ChatChunk, ChatRequest, Price, Usage
from routing.inbound.anthropic import anthropic_status, models_body
from routing.inbound.anthropic_request import estimate_input_tokens, parse_messages_request
from routing.inbound.anthropic_response import _Events
from routing.stages.streams import TextHoldBack
from tests.fakes import FakeAnthropic
from tests.fakes.anthropic import THINKING_TEXT, signature

pytestmark = pytest.mark.timeout(60)
USER = [{"role": "user", "content": "Say hello"}]


def parse(**body) -> ChatRequest:
    return parse_messages_request(orjson.dumps({"model": "r", "max_tokens": 64, "messages": USER, **body}), {})


# --- the request ------------------------------------------------------------------------------------------
def test_the_native_copy_is_the_clients_bytes_and_headers():
    raw = b'{"model": "r",  "max_tokens": 64, "messages": [{"role": "user", "content": "x"}], "n": 1e2}'
    req = parse_messages_request(raw, {"anthropic-beta": "b1"})
    assert req.native["raw"] is raw and req.native["headers"] == {"anthropic-beta": "b1"}
    assert req.native["dialect"] == "anthropic" and req.native["body"]["n"] == 100.0
    assert (req.model, req.max_tokens, req.stream) == ("r", 64, False)


def test_system_blocks_images_documents_and_params_translate():
    req = parse(
        system=[{"type": "text", "text": "A."}, {"type": "text", "text": "B.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "Look"},
            {"type": "image", "source": {"type": "url", "url": "https://x/cat.png"}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
             "title": "spec.pdf"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain words"}}]}],
        stop_sequences=["a", "b", "c", "d", "e"], temperature=0.2, top_k=5, metadata={"user_id": "u1"},
        stream=True)
    assert req.messages == [
        {"role": "system", "content": "A.\n\nB."},
        {"role": "user", "content": [
            {"type": "text", "text": "Look"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
            {"type": "file", "file": {"filename": "spec.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
            {"type": "text", "text": "plain words"}]},
    ]
    assert req.params == {"max_tokens": 64, "temperature": 0.2, "stop": ["a", "b", "c", "d"], "user": "u1"}
    assert req.stream and req.include_usage and req.needs == frozenset({"vision", "streaming"})


def test_tools_and_thinking_translate_and_server_tools_stay_anthropics():
    req = parse(tools=[{"name": "f", "input_schema": {"type": "object"}},
                       {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}],
                tool_choice={"type": "tool", "name": "f", "disable_parallel_tool_use": True}, thinking={"type": "enabled", "budget_tokens": 2000})
    assert req.params["tools"] == [{"type": "function", "function": {"name": "f", "description": "",
                                                                     "parameters": {"type": "object"}}}]
    assert req.params["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert req.params["parallel_tool_calls"] is False and "thinking" not in req.params
    assert req.needs == frozenset({"tools"})  # thinking can be dropped; tools and images cannot
    history = parse(messages=[*USER, {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
                              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "1"}]}])
    assert history.needs == frozenset({"tools"})
    assert estimate_input_tokens(req) > estimate_input_tokens(parse())


def test_count_tokens_bodies_need_no_max_tokens_and_never_stream():
    req = parse_messages_request(orjson.dumps({"model": "r", "messages": USER, "stream": True}), {}, count_tokens=True)
    assert req.max_tokens is None and not req.stream
    with pytest.raises(InvalidRequest, match="max_tokens: Field required"):
        parse_messages_request(orjson.dumps({"model": "r", "messages": USER}), {})


# --- the event sequence -------------------------------------------------------------------------------------
def fake_call(req: ChatRequest | None = None, usage: Usage | None = None):
    return SimpleNamespace(request_id="r1", req=req or parse(), usage_or_zero=lambda: usage or Usage(9, 7))


def sse_events(frames: list[bytes]) -> list[tuple[str, dict]]:
    out = []
    for block in b"".join(frames).decode().split("\n\n"):
        if block:
            name, data = block.split("\n", 1)
            out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def assert_well_formed(seen: list[tuple[str, dict]]) -> anthropic.types.Message:
    """Anthropic's order (start; blocks opened, filled and closed one at a time, in index
    order; delta; stop), and what the SDK's own accumulator makes of it."""
    names = [n for n, _ in seen]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    open_index, next_index = None, 0
    for name, data in seen[1:-2]:
        if name == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index, next_index = data["index"], next_index + 1
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
        else:
            assert name == "ping"
    assert open_index is None
    snapshot, json_bufs = None, {}
    for name, data in seen:
        if name != "ping":
            snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot


def test_openai_chunks_become_anthropics_sequence_with_an_estimate_then_the_count():
    call = fake_call(usage=Usage(40, 12))
    events = _Events(call)
    chunks = [
        ChatChunk("gpt", [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
        ChatChunk("gpt", [{"index": 0, "delta": {"content": "Hi "}, "finish_reason": None}]),
        ChatChunk("gpt", [{"index": 0, "delta": {"content": "there."}, "finish_reason": None}]),
        ChatChunk("gpt", [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}}]),
        ChatChunk("gpt", [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}}]),
        ChatChunk("gpt", [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}]}}]),
        ChatChunk("gpt", [{"index": 0, "delta": {}, "finish_reason": "stop"}]),  # a server that says stop
        ChatChunk("gpt", [], Usage(40, 12)),
    ]
    frames = [f for c in chunks for f in events.feed(c)] + events.close()
    seen = sse_events(frames)
    message = assert_well_formed(seen)
    assert seen[0][1]["message"]["usage"]["input_tokens"] == estimate_input_tokens(call.req)
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "Hi there." and message.content[1].input == {"a": 1}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (40, 12)


async def _adapter_chunks(fake: FakeAnthropic, body: dict) -> list[ChatChunk]:
    provider = ProviderInfo(1, "anthropic-unit", "anthropic", KINDS["anthropic"], fake.url, fake.api_key, None, 5.0, {})
    model = ModelInfo(1, "claude", "claude-sonnet-4-6", provider, Price(Decimal(3), Decimal(15)), None)
    raw = orjson.dumps({"model": "claude-route", **body, "stream": True})
    req = parse_messages_request(raw, {"anthropic-version": "2023-06-01"})
    try:
        return [chunk async for chunk in AnthropicAdapter().stream(model, req, 5.0)]
    finally:
        await close_session()


@pytest.fixture
def fake():
    with FakeAnthropic(api_key="sk-ant-unit") as server:
        yield server
    assert server.errors == []


def test_the_adapter_gives_one_chunk_per_event_with_the_event(fake):
    chunks = asyncio.run(_adapter_chunks(fake, {"max_tokens": 4096, "messages": USER,
                                                "thinking": {"type": "enabled", "budget_tokens": 2048}}))
    sent = fake.last_request
    assert sent.raw_body.startswith(b'{"model":"claude-sonnet-4-6",')  # the client's bytes, the model replaced
    assert all(c.native is not None and len(c.native) == 1 for c in chunks)
    names = [c.native[0][0] for c in chunks]
    assert names[:3] == ["message_start", "content_block_start", "ping"] and names[-1] == "message_stop"
    assert "".join(c.choices[0]["delta"].get("content") or "" for c in chunks if c.choices) == fake.reply_text
    thinking = [c for c in chunks if c.native[0][1].get("delta", {}).get("type") == "thinking_delta"]
    assert thinking and all(c.choices == [] for c in thinking)  # nothing a filter would rebuild
    assert chunks[-1].usage.prompt_tokens > 0 and chunks[-1].usage.completion_tokens > 0


def test_a_filtered_passthrough_stream_keeps_one_numbering_and_its_thinking(fake):
    """An output filter (TextHoldBack, as the guardrails use it) rebuilds the chunks
    whose text it checks and holds the text until the block's end: the text is released
    into its own block, and thinking, signature and usage stay the provider's."""
    fake.reply_text = "Mail me at once."
    chunks = asyncio.run(_adapter_chunks(fake, {"max_tokens": 4096, "messages": USER,
                                                "thinking": {"type": "enabled", "budget_tokens": 2048}}))
    hold_all = TextHoldBack(lambda buffer, final: (buffer.upper(), "") if final else ("", buffer), max_hold=10_000)
    filtered = [out for c in chunks for out in hold_all.feed(c)] + hold_all.flush()
    assert any(c.native is None for c in filtered) and any(c.native is not None for c in filtered)
    events = _Events(fake_call(usage=chunks[-1].usage))
    seen = sse_events([f for c in filtered for f in events.feed(c)] + events.close())
    message = assert_well_formed(seen)
    thinking, text = message.content
    assert (thinking.thinking, thinking.signature) == (THINKING_TEXT, signature(THINKING_TEXT))
    assert text.text == "MAIL ME AT ONCE."
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == chunks[-1].usage.completion_tokens


# --- the model splice, errors, models ---------------------------------------------------------------------
@pytest.mark.parametrize("raw, expected", [
    (b'{"model":"r","messages":[]}', b'{"model":"up","messages":[]}'),
    (b' {\n "a": {"model": "inner"},\t"model" : "r" , "b": "\\"model\\": \\"r\\""}',
     b' {\n "a": {"model": "inner"},\t"model" : "up" , "b": "\\"model\\": \\"r\\""}'),
    (b'{"mod\\u0065l": "r", "n": 99999999999999999999, "s": "}]{["}', b'{"mod\\u0065l": "up", "n": 99999999999999999999, "s": "}]{["}'),
    (b'{"model": "r", "model": "s"}', None),  # which one counts is the parser's business: re-encode instead
    (b'{"messages": []}', None),
    (b'["model", "r"]', None),
])
def test_replace_member_keeps_every_other_byte(raw, expected):
    assert replace_member(raw, "model", "up") == expected


@pytest.mark.parametrize("error, expected", [
    (InvalidRequest("x"), (400, "invalid_request_error")),
    (NotFound("x"), (404, "not_found_error")),
    (GatewayError("x", status=413), (413, "request_too_large")),
    (UpstreamFailed("x", status=503, code="upstream_unavailable"), (529, "overloaded_error")),
    (UpstreamFailed("x", status=503, code="circuit_open"), (529, "overloaded_error")),
    (UpstreamFailed("x", status=503, code="no_available_target"), (503, "api_error")),
    (UpstreamFailed("x", status=502, code="upstream_bad_response"), (502, "api_error")),
    (UpstreamFailed("x", status=504, code="upstream_timeout"), (504, "timeout_error")),
    (GatewayError("x", status=429), (429, "rate_limit_error")),
    (GatewayError("x", status=418), (418, "invalid_request_error")),
])
def test_gateway_errors_map_to_anthropic_statuses_and_types(error, expected):
    assert anthropic_status(error) == expected


def test_models_body_has_anthropics_shape():
    route = SimpleNamespace(name="claude", created=1767225600)
    assert orjson.loads(models_body([route])) == {
        "data": [{"type": "model", "id": "claude", "display_name": "claude", "created_at": "2026-01-01T00:00:00Z"}],
        "has_more": False, "first_id": "claude", "last_id": "claude"}
    assert orjson.loads(models_body([route], single=True))["id"] == "claude"
    assert orjson.loads(models_body([])) == {"data": [], "has_more": False, "first_id": None, "last_id": None}


# --- the fake, as the SDK sees it ------------------------------------------------------------------------
def test_fake_thinking_is_signed_and_checked(fake):
    client = anthropic.Anthropic(base_url=fake.base_url, api_key="sk-ant-unit", max_retries=0)
    message = client.messages.create(model="claude-sonnet-4-6", max_tokens=4096, messages=USER,
                                     thinking={"type": "enabled", "budget_tokens": 2048})
    assert message.content[0].signature == signature(THINKING_TEXT)
    assert message.usage.output_tokens == len(THINKING_TEXT.split()) + len(fake.reply_text.split())
    with pytest.raises(anthropic.BadRequestError, match="budget_tokens"):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=4096, messages=USER,
                               thinking={"type": "enabled", "budget_tokens": 100})
    forged = [*USER, {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "AAAA"}]},
              {"role": "user", "content": "Go on"}]
    with pytest.raises(anthropic.BadRequestError, match="signature"):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=4096, messages=forged,
                               thinking={"type": "enabled", "budget_tokens": 2048})
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=4096, messages=USER,
                                thinking={"type": "enabled", "budget_tokens": 2048}) as stream:
        final = stream.get_final_message()
    assert final.content[0].model_dump() == message.content[0].model_dump()
    assert final.usage.output_tokens == message.usage.output_tokens


def test_fake_prompt_cache_reads_the_longest_prefix_seen(fake):
    client = anthropic.Anthropic(base_url=fake.base_url, api_key="sk-ant-unit", max_retries=0)
    system = [{"type": "text", "text": "Rules one two three.", "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model="claude-sonnet-4-6", max_tokens=50, system=system, messages=USER)
    turn = [*USER, {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": [{"type": "text", "text": "More", "cache_control": {"type": "ephemeral"}}]}]
    second = client.messages.create(model="claude-sonnet-4-6", max_tokens=50, system=system, messages=turn)
    third = client.messages.create(model="claude-sonnet-4-6", max_tokens=50, system=system, messages=turn)
    system_tokens = 4 + 3
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (system_tokens, 0)
    assert second.usage.cache_read_input_tokens == system_tokens  # the system prompt, written before
    assert second.usage.cache_creation_input_tokens > 0  # and the new turns after it
    assert third.usage.cache_read_input_tokens == second.usage.cache_read_input_tokens + second.usage.cache_creation_input_tokens
    assert third.usage.cache_creation_input_tokens == 0
    usage = third.usage
    assert usage.input_tokens + usage.cache_read_input_tokens == second.usage.input_tokens + \
        second.usage.cache_read_input_tokens + second.usage.cache_creation_input_tokens
