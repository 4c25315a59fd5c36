"""POST /v1/messages through the official `anthropic` SDK: a route to an Anthropic model
gets the request passed through as it came (byte for byte but the model, thinking and
signatures, cache_control, beta headers), a route to an OpenAI model its translation;
either way the client sees Anthropic's Message and event sequence, and the ledger one
record per request with the cache tokens and Claude Code's session id.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal

import anthropic
import httpx
import orjson
import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for
from tests.fakes.anthropic import THINKING_TEXT, signature
from tests.fakes.text import prompt_token_count

pytestmark = pytest.mark.django_db(transaction=True)

USER = [{"role": "user", "content": "Say hello to the gateway"}]
THINKING = {"type": "enabled", "budget_tokens": 2048}


@pytest.fixture
def claude_model(fake_anthropic, build):
    """Route `claude` -> one Anthropic model: $3 / $15 per million, cache reads $0.30, writes $3.75."""
    provider = build.provider(fake_anthropic, name="anthropic-main", kind="anthropic")
    model = build.model(provider, "claude-sonnet-4-6", input_price="3", output_price="15",
                        cache_read_price_per_mtok=Decimal("0.30"), cache_write_price_per_mtok=Decimal("3.75"))
    build.route("claude", model)
    return model


@pytest.fixture
def gpt_model(fake_openai, build):
    """Route `gpt` -> one OpenAI model (the translation both ways)."""
    model = build.model(build.provider(fake_openai, name="openai-main"), "gpt-4o-mini")
    build.route("gpt", model)
    return model


@pytest.fixture
def claude(gateway):
    """anthropic.Anthropic(base_url=gateway, api_key=...), recording the bytes it sends."""
    sent: list = []
    clients: list[anthropic.Anthropic] = []

    def make(key: str | None = None, **kw) -> anthropic.Anthropic:
        hooks = {"request": [lambda request: sent.append(request)]}
        kw.setdefault("http_client", anthropic.DefaultHttpxClient(event_hooks=hooks))
        clients.append(anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0, timeout=30, **kw))
        return clients[-1]

    make.sent = sent
    yield make
    for client in clients:
        client.close()


def only_record() -> UsageRecord:
    assert wait_for(lambda: UsageRecord.objects.count() >= 1)
    time.sleep(0.05)  # a second (double) record would show up by now
    return UsageRecord.objects.get()


def upstream(fake):
    request = fake.last_request
    assert request is not None
    return request


def events(gateway: str, key: str, body: dict, headers: dict | None = None) -> list[tuple[str, dict]]:
    """The raw SSE events of a streamed /v1/messages call: (event name, data)."""
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01", **(headers or {})}
    with httpx.stream("POST", f"{gateway}/v1/messages", json={**body, "stream": True}, headers=headers,
                      timeout=30) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    out = []
    for block in raw.split("\n\n"):
        if block:
            name, data = block.split("\n", 1)
            out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


# --- passthrough to an Anthropic target ----------------------------------------------------------
def test_passthrough_sends_the_clients_bytes_with_only_the_model_replaced(fake_anthropic, claude_model, build, claude):
    client = claude(build.key())
    raw = client.messages.with_raw_response.create(
        model="claude", max_tokens=300, system="Be brief.", messages=USER,
        extra_body={"temperature": 0.5, "top_k": 7, "some_future_field": {"kept": [1, 2.50, None]}})
    message = raw.parse()

    assert message.content[0].text == "Hello from fake-anthropic."
    assert message.model == "claude-sonnet-4-6" and message.stop_reason == "end_turn"
    expected_input = prompt_token_count(USER, system="Be brief.")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (expected_input, 3)
    sent = claude.sent[-1].read()
    received = upstream(fake_anthropic)
    assert received.path == "/v1/messages"
    assert received.raw_body == sent.replace(b'"model":"claude"', b'"model":"claude-sonnet-4-6"', 1)
    assert received.raw_body != sent
    assert received.headers["x-api-key"] == fake_anthropic.api_key  # ours, never the client's
    assert received.headers["anthropic-version"] == claude.sent[-1].headers["anthropic-version"]  # the client's
    assert raw.headers["x-gateway-route"] == "claude" and raw.headers["request-id"] == raw.headers["x-request-id"]
    record = only_record()
    assert (record.endpoint, record.status, record.stream) == ("messages", "success", False)
    assert (record.prompt_tokens, record.completion_tokens) == (expected_input, 3)
    assert record.cost_usd == (Decimal(expected_input) * 3 + 3 * 15) / 1_000_000
    assert record.request_id == raw.headers["x-request-id"]


@pytest.mark.proves("anthropic", "thinking")
def test_thinking_and_its_signature_pass_both_ways_unmodified(fake_anthropic, claude_model, build, claude):
    client = claude(build.key())
    first = client.messages.create(model="claude", max_tokens=4096, thinking=THINKING, messages=USER)
    thinking, text = first.content
    assert (thinking.type, thinking.thinking, thinking.signature) == ("thinking", THINKING_TEXT, signature(THINKING_TEXT))
    assert text.text == "Hello from fake-anthropic."
    assert upstream(fake_anthropic).body["thinking"] == THINKING

    # the next turn sends the signed block back: Anthropic (the fake) checks the signature
    history = [*USER, {"role": "assistant", "content": [b.model_dump() for b in first.content]},
               {"role": "user", "content": "And once more?"}]
    second = client.messages.create(model="claude", max_tokens=4096, thinking=THINKING, messages=history)
    assert second.content[1].text == "Hello from fake-anthropic."
    received = upstream(fake_anthropic)
    assert received.raw_body == claude.sent[-1].read().replace(b'"model":"claude"', b'"model":"claude-sonnet-4-6"', 1)
    assert received.body["messages"][1]["content"][0]["signature"] == signature(THINKING_TEXT)

    tampered = json.loads(json.dumps(history))
    tampered[1]["content"][0]["thinking"] = "Something else."
    with pytest.raises(anthropic.BadRequestError, match="signature"):
        client.messages.create(model="claude", max_tokens=4096, thinking=THINKING, messages=tampered)


@pytest.mark.proves("anthropic", "thinking")
def test_streamed_thinking_arrives_as_anthropic_sent_it(fake_anthropic, claude_model, build, claude, gateway):
    key = build.key()
    with claude(key).messages.stream(model="claude", max_tokens=4096, thinking=THINKING, messages=USER) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].thinking == THINKING_TEXT and final.content[0].signature == signature(THINKING_TEXT)
    assert final.content[1].text == "Hello from fake-anthropic."
    assert "thinking" in kinds and "signature" in kinds

    seen = events(gateway, key, {"model": "claude", "max_tokens": 4096, "thinking": THINKING, "messages": USER})
    names = [name for name, _ in seen]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    deltas = [data["delta"]["type"] for name, data in seen if name == "content_block_delta"]
    assert deltas.count("signature_delta") == 1 and "thinking_delta" in deltas and "text_delta" in deltas
    assert names[-2:] == ["message_delta", "message_stop"]
    start = seen[0][1]["message"]
    assert start["id"].startswith("msg_01")  # Anthropic's own message, not rebuilt
    assert start["usage"]["input_tokens"] == prompt_token_count(USER)


def test_beta_and_version_headers_are_forwarded(fake_anthropic, claude_model, build, claude):
    beta = "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
    client = claude(build.key(), default_headers={"anthropic-beta": beta})
    client.messages.create(model="claude", max_tokens=50, messages=USER)
    received = upstream(fake_anthropic).headers
    assert received["anthropic-beta"] == beta
    assert received["anthropic-version"] == claude.sent[-1].headers["anthropic-version"]
    assert "x-claude-code-session-id" not in received


@pytest.mark.proves("anthropic", "cached_tokens")
def test_prompt_cache_writes_then_reads_are_reported_recorded_and_billed(fake_anthropic, claude_model, build, claude):
    client = claude(build.key())
    system = [{"type": "text", "text": "You are a careful assistant."},
              {"type": "text", "text": "Project rules: keep answers short and kind.", "cache_control": {"type": "ephemeral"}}]
    written = client.messages.create(model="claude", max_tokens=50, system=system, messages=USER)
    read = client.messages.create(model="claude", max_tokens=50, system=system, messages=USER)

    cached = prompt_token_count([], system=system)
    total = prompt_token_count(USER, system=system)
    assert (written.usage.cache_creation_input_tokens, written.usage.cache_read_input_tokens) == (cached, 0)
    assert (read.usage.cache_creation_input_tokens, read.usage.cache_read_input_tokens) == (0, cached)
    assert read.usage.input_tokens == total - cached
    assert upstream(fake_anthropic).body["system"] == system  # cache_control reached Anthropic
    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    first, second = UsageRecord.objects.order_by("created_at")
    assert (first.prompt_tokens, first.cache_write_tokens, first.cache_read_tokens) == (total, cached, 0)
    assert (second.prompt_tokens, second.cache_write_tokens, second.cache_read_tokens) == (total, 0, cached)
    fresh = Decimal(total - cached)
    assert first.cost_usd == (fresh * 3 + cached * Decimal("3.75") + 3 * 15) / 1_000_000
    assert second.cost_usd == (fresh * 3 + cached * Decimal("0.30") + 3 * 15) / 1_000_000


@pytest.mark.proves("anthropic", "cached_tokens", "stream_usage")
def test_streamed_cache_usage_is_recorded_once(fake_anthropic, claude_model, build, claude):
    client = claude(build.key())
    system = [{"type": "text", "text": "Rules, cached.", "cache_control": {"type": "ephemeral"}}]
    for _ in range(2):
        with client.messages.stream(model="claude", max_tokens=50, system=system, messages=USER) as stream:
            final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens == prompt_token_count([], system=system)
    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    time.sleep(0.05)
    records = list(UsageRecord.objects.order_by("created_at"))
    assert len(records) == 2 and all(r.stream and r.endpoint == "messages" for r in records)
    assert [r.cache_read_tokens for r in records] == [0, final.usage.cache_read_input_tokens]
    assert records[0].cache_write_tokens == final.usage.cache_read_input_tokens


# --- translation to an OpenAI target -----------------------------------------------------------------
def test_an_openai_target_gets_the_translation_and_the_client_a_message(fake_openai, gpt_model, build, claude):
    fake_openai.reply_text = "Hello there, Anthropic client."
    client = claude(build.key())
    message = client.messages.create(
        model="gpt", max_tokens=100, extra_body={"temperature": 0.3}, stop_sequences=["END"], metadata={"user_id": "user-42"},
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Say hello"},
                                                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}],
        thinking=THINKING)
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].text == "Hello there, Anthropic client."
    assert message.stop_reason == "end_turn" and message.model == "gpt-4o-mini"
    body = upstream(fake_openai).body
    assert body["model"] == "gpt-4o-mini" and body["max_tokens"] == 100
    assert body["messages"] == [
        {"role": "system", "content": "Be brief.\n\nBe kind."},
        {"role": "user", "content": [{"type": "text", "text": "Say hello"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]},
    ]
    assert (body["temperature"], body["stop"], body["user"]) == (0.3, ["END"], "user-42")
    assert "thinking" not in body and "metadata" not in body and "system" not in body
    record = only_record()
    assert (record.endpoint, record.prompt_tokens, record.completion_tokens) == ("messages", message.usage.input_tokens, 4)


def test_a_translated_stream_has_anthropics_event_sequence_and_real_input_usage(fake_openai, gpt_model, build,
                                                                                claude, gateway):
    fake_openai.reply_text = "One two three four five."
    key = build.key()
    seen = events(gateway, key, {"model": "gpt", "max_tokens": 100, "messages": USER})
    names = [name for name, _ in seen]
    assert names == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 5 + [
        "content_block_stop", "message_delta", "message_stop"]
    start = seen[0][1]["message"]
    assert start["usage"]["input_tokens"] > 0 and start["usage"]["output_tokens"] == 1  # an estimate, never 0/0
    assert start["content"] == [] and start["id"].startswith("msg_")
    assert seen[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert "".join(d["delta"]["text"] for n, d in seen if n == "content_block_delta") == "One two three four five."
    delta = seen[-2][1]
    reported = prompt_token_count(fake_openai.last_request.body["messages"])
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"] == {"input_tokens": reported, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 0, "output_tokens": 5}

    with claude(key).messages.stream(model="gpt", max_tokens=100, messages=USER) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "One two three four five."
    assert (final.usage.input_tokens, final.usage.output_tokens) == (reported, 5)  # the reported count wins
    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    assert all(r.stream and r.completion_tokens == 5 for r in UsageRecord.objects.all())


# --- the session header, models, count_tokens ------------------------------------------------------------
def test_claude_code_session_id_is_recorded_bounded_and_printable(fake_anthropic, claude_model, build, claude):
    client = claude(build.key(), default_headers={"X-Claude-Code-Session-Id": "3f2a-\tsession\xe9" + "x" * 300})
    client.messages.create(model="claude", max_tokens=20, messages=USER)
    record = only_record()
    assert record.client_session == ("3f2a-session" + "x" * 300)[:100]


def test_session_id_is_never_authentication(claude_model, build, claude):
    client = claude("gw-not-a-key", default_headers={"X-Claude-Code-Session-Id": build.key()})
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model="claude", max_tokens=20, messages=USER)


def test_models_list_in_anthropics_shape(claude_model, gpt_model, build, claude):
    client = claude(build.key())
    page = client.models.list()
    assert sorted(m.id for m in page.data) == ["claude", "gpt"]
    assert all(m.type == "model" and m.display_name == m.id and m.created_at.year >= 2024 for m in page.data)
    assert page.has_more is False and page.first_id == page.data[0].id and page.last_id == page.data[-1].id
    assert client.models.retrieve("gpt").id == "gpt"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nope")


def test_count_tokens_asks_an_anthropic_first_target_and_estimates_otherwise(fake_anthropic, claude_model, gpt_model,
                                                                             build, claude):
    client = claude(build.key())
    system = [{"type": "text", "text": "Be nice.", "cache_control": {"type": "ephemeral"}}]
    raw = client.messages.with_raw_response.count_tokens(model="claude", messages=USER, system=system)
    assert raw.parse().input_tokens == prompt_token_count(USER, system=system)
    assert raw.headers["x-gateway-token-count"] == "provider"
    received = upstream(fake_anthropic)
    assert received.path == "/v1/messages/count_tokens"
    assert received.raw_body == claude.sent[-1].read().replace(b'"model":"claude"', b'"model":"claude-sonnet-4-6"', 1)

    estimated = client.messages.with_raw_response.count_tokens(model="gpt", messages=USER, system=system)
    assert estimated.headers["x-gateway-token-count"] == "estimate"
    assert estimated.parse().input_tokens > 0

    fake_anthropic.api_key, real = "sk-ant-other", fake_anthropic.api_key  # the provider refuses: the estimate
    try:
        fallback = client.messages.with_raw_response.count_tokens(model="claude", messages=USER)
    finally:
        fake_anthropic.api_key = real
    assert fallback.headers["x-gateway-token-count"] == "estimate" and fallback.parse().input_tokens > 0
    assert UsageRecord.objects.count() == 0  # counting is free and unrecorded


def test_auth_token_is_the_bearer_virtual_key(fake_anthropic, claude_model, build, gateway):
    client = anthropic.Anthropic(base_url=gateway, auth_token=build.key(), max_retries=0)
    assert client.messages.create(model="claude", max_tokens=20, messages=USER).content[0].text
    assert "authorization" not in upstream(fake_anthropic).headers  # our key only, as x-api-key


def test_messages_and_chat_share_the_route(fake_anthropic, claude_model, build, claude, openai_client):
    key = build.key()
    claude(key).messages.create(model="claude", max_tokens=20, messages=USER)
    openai_client(key).chat.completions.create(model="claude", messages=USER)
    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    assert sorted(UsageRecord.objects.values_list("endpoint", flat=True)) == ["chat", "messages"]
    chat_body = fake_anthropic.requests[-1].body
    assert chat_body["messages"] == [{"role": "user", "content": [{"type": "text", "text": USER[0]["content"]}]}]
    assert orjson.loads(fake_anthropic.requests[0].raw_body)["messages"] == USER  # passthrough kept its shape


def test_a_long_thinking_phase_streams_and_is_not_a_timeout(fake_anthropic, build, claude, monkeypatch):
    provider = build.provider(fake_anthropic, name="anthropic-main", kind="anthropic", timeout_s="1")
    build.route("claude", build.model(provider, "claude-sonnet-4-6"))
    monkeypatch.setattr(fake_anthropic, "thinking_text", " ".join(["Hmm."] * 8))
    fake_anthropic.chunk_delay = 0.25  # 2 s of thinking before the first text, each event well within 1 s
    with claude(build.key()).messages.stream(model="claude", max_tokens=4096, thinking=THINKING,
                                             messages=USER) as stream:
        final = stream.get_final_message()
    assert final.content[0].thinking == " ".join(["Hmm."] * 8)
