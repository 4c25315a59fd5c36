"""POST /v1/responses through the official OpenAI SDK (responses.create, stream=True and
the responses.stream helper) against the live gateway, with the OpenAI and the
Anthropic fakes as targets: answers, the typed event stream, instructions and
parameters as each target receives them, usage recorded once, fallback before the
first byte."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TEXT_EVENTS = [
    "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.output_text.delta",  # (one per piece: _types folds a run of them into one)
    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
]


@pytest.fixture
def claude_route(build, fake_anthropic):
    provider = build.provider(fake_anthropic, name="claude", kind="anthropic")
    model = build.model(provider, "claude-sonnet-4-6", input_price="3", output_price="15")
    return build.route("claude", model), model


def _record() -> UsageRecord:
    assert wait_for(lambda: UsageRecord.objects.count() >= 1)
    [record] = UsageRecord.objects.all()  # exactly one per request
    return record


def _types(events) -> list[str]:
    kinds = [e.type for e in events]
    return [k for i, k in enumerate(kinds) if k != "response.output_text.delta" or kinds[i - 1] != k]


# --- non-streamed ------------------------------------------------------------------------------
def test_text_answer_is_a_response_object_with_usage_and_one_record(fake_openai, build, openai_client):
    fake_openai.reply_text = "Hello there, Responses user."
    route, model = build.openai_route(fake_openai)
    client = openai_client(build.key())

    raw = client.responses.with_raw_response.create(model="chat-default", input="Say hello", store=False)
    response = raw.parse()

    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.error is None
    assert response.model == "gpt-4o-mini" and response.created_at > 0
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    assert message.id.startswith("msg_")
    assert [(p.type, p.text) for p in message.content] == [("output_text", "Hello there, Responses user.")]
    assert response.output_text == "Hello there, Responses user."
    usage = response.usage
    assert usage.output_tokens == 4 and usage.total_tokens == usage.input_tokens + 4
    assert usage.input_tokens_details.cached_tokens == 0 and usage.output_tokens_details.reasoning_tokens == 0
    # the target got a chat request, with the upstream model id and our key
    upstream = fake_openai.last_request
    assert upstream.path == "/v1/chat/completions"
    assert upstream.body["model"] == "gpt-4o-mini"
    assert upstream.body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert upstream.headers["authorization"] == f"Bearer {fake_openai.api_key}"
    record = _record()
    assert record.request_id == raw.headers["x-request-id"] == response.id.removeprefix("resp_")
    assert record.endpoint == "responses" and record.status == "success" and not record.stream
    assert (record.prompt_tokens, record.completion_tokens) == (usage.input_tokens, 4)
    expected = (Decimal(usage.input_tokens) * Decimal("0.15") + 4 * Decimal("0.60")) / 1_000_000
    assert record.cost_usd == expected.quantize(Decimal("1e-10"))
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == expected
    assert raw.headers["x-gateway-route"] == "chat-default"
    assert raw.headers["x-gateway-model"] == f"{model.provider.name}/gpt-4o-mini"


def test_anthropic_target_gets_instructions_as_system_and_answers_in_responses_shape(
        fake_anthropic, claude_route, build, openai_client):
    client = openai_client(build.key())

    response = client.responses.create(
        model="claude", instructions="You are terse.", max_output_tokens=50, temperature=1.5,
        input=[{"role": "developer", "content": "Answer in English."},
               {"role": "user", "content": [{"type": "input_text", "text": "Say hello"}]}],
    )

    assert response.output_text == "Hello from fake-anthropic."
    assert response.instructions == "You are terse." and response.max_output_tokens == 50
    body = fake_anthropic.last_request.body
    assert body["system"] == "You are terse.\n\nAnswer in English."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    assert body["max_tokens"] == 50 and body["temperature"] == 1.0  # Anthropic's range ends at 1
    record = _record()
    assert record.endpoint == "responses" and record.model_name == "claude/claude-sonnet-4-6"
    usage = response.usage
    assert (record.prompt_tokens, record.completion_tokens) == (usage.input_tokens, usage.output_tokens)


def test_parameters_reach_an_openai_target_in_chat_shape(fake_openai, build, openai_client):
    build.openai_route(fake_openai)
    client = openai_client(build.key())
    schema = {"type": "object", "properties": {"greeting": {"type": "string"}}, "required": ["greeting"]}

    response = client.responses.create(
        model="chat-default", input="Greet me", instructions="Be kind.", max_output_tokens=64, temperature=0.2,
        top_p=0.9, user="user-42", metadata={"tier": "gold"}, reasoning={"effort": "low"},
        text={"format": {"type": "json_schema", "name": "greeting", "schema": schema, "strict": True}},
        tools=[{"type": "function", "name": "noop", "description": "Does nothing.",
                "parameters": {"type": "object", "properties": {}}, "strict": False}],
        tool_choice="none", parallel_tool_calls=False,
    )

    body = fake_openai.last_request.body
    assert body["messages"] == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Greet me"}]
    assert body["max_completion_tokens"] == 64 and body["temperature"] == 0.2 and body["top_p"] == 0.9
    assert body["user"] == "user-42" and body["reasoning_effort"] == "low"
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "greeting", "schema": schema, "strict": True}}
    assert body["tools"] == [{"type": "function", "function": {
        "name": "noop", "description": "Does nothing.", "parameters": {"type": "object", "properties": {}}, "strict": False}}]
    assert body["tool_choice"] == "none" and body["parallel_tool_calls"] is False  # none stays none
    assert "metadata" not in body  # the gateway's routing metadata, not the provider's
    # the Response repeats the request's settings
    assert response.tool_choice == "none" and response.parallel_tool_calls is False
    assert response.tools[0].name == "noop" and response.metadata == {"tier": "gold"}
    assert response.text.format.type == "json_schema" and response.reasoning.effort == "low"
    assert response.top_p == 0.9 and response.user == "user-42"


def test_codex_like_body_without_tools_sends_no_tool_settings(fake_openai, build, openai_client):
    build.openai_route(fake_openai)
    client = openai_client(build.key())
    client.responses.create(model="chat-default", input="hi", instructions="", tools=[], tool_choice="auto",
                            parallel_tool_calls=True, store=False, include=["reasoning.encrypted_content"],
                            prompt_cache_key="conv-1")
    body = fake_openai.last_request.body
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    # chat refuses tool_choice and parallel_tool_calls without tools
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & body.keys()


def test_json_object_format_becomes_response_format(fake_openai, build, openai_client):
    build.openai_route(fake_openai)
    openai_client(build.key()).responses.create(model="chat-default", input="JSON please",
                                                text={"format": {"type": "json_object"}})
    assert fake_openai.last_request.body["response_format"] == {"type": "json_object"}


def test_cut_answer_is_incomplete_with_max_output_tokens(fake_openai, build, openai_client):
    fake_openai.reply_text = "one two three four five six"
    build.openai_route(fake_openai)
    response = openai_client(build.key()).responses.create(model="chat-default", input="count", max_output_tokens=3)
    assert response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output[0].status == "incomplete" and response.output_text == "one two three"


def test_codex_session_header_is_recorded(fake_openai, build, openai_client):
    build.openai_route(fake_openai)
    client = openai_client(build.key(), default_headers={"session_id": "codex-session-7"})
    client.responses.create(model="chat-default", input="hi")
    assert _record().client_session == "codex-session-7"


def _with_reasoning(obj):
    """The OpenAI fake's answer with the chain of thought an OpenAI-compatible target
    (DeepSeek, vLLM) sends next to it."""
    for choice in obj.get("choices") or []:
        if "message" in choice:
            choice["message"]["reasoning_content"] = "Think first."
        elif "role" in choice["delta"]:
            choice["delta"]["reasoning_content"] = "Think first."
    return obj


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_content_becomes_a_reasoning_item_before_the_message(stream, fake_openai, build, openai_client):
    build.openai_route(fake_openai)
    fake_openai.mangle(_with_reasoning)
    client = openai_client(build.key())

    if stream:
        events = list(client.responses.create(model="chat-default", input="hi", stream=True))
        assert _types(events)[:8] == [
            "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
            "response.reasoning_text.delta", "response.reasoning_text.done", "response.content_part.done",
            "response.output_item.done"]
        assert events[4].delta == "Think first." and events[2].item.type == "reasoning"
        response = events[-1].response
    else:
        response = client.responses.create(model="chat-default", input="hi")

    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_") and reasoning.summary == []
    assert [(c.type, c.text) for c in reasoning.content] == [("reasoning_text", "Think first.")]
    assert message.type == "message" and response.output_text == "Hello from fake-openai."


# --- streamed ------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["openai", "anthropic"])
def test_stream_sends_the_typed_event_sequence(target, fake_openai, fake_anthropic, build, openai_client, request):
    if target == "openai":
        fake_openai.reply_text = "One two three four."
        build.openai_route(fake_openai, name="r")
    else:
        fake_anthropic.reply_text = "One two three four."
        build.route("r", build.model(build.provider(fake_anthropic, kind="anthropic"), "claude-sonnet-4-6"))
    client = openai_client(build.key())

    events = list(client.responses.create(model="r", input="Count to four", stream=True))

    assert _types(events) == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert "".join(d.delta for d in deltas) == "One two three four."
    assert len(deltas) == 4
    created, completed = events[0].response, events[-1].response
    assert created.status == "in_progress" and created.output == [] and created.usage is None
    assert created.id == completed.id and completed.status == "completed"
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")}
    assert item_ids == {completed.output[0].id}
    assert events[-4].text == "One two three four."  # output_text.done
    assert completed.output_text == "One two three four."
    record = _record()
    assert record.stream and record.endpoint == "responses" and record.status == "success"
    usage = completed.usage
    assert (record.prompt_tokens, record.completion_tokens) == (usage.input_tokens, usage.output_tokens)
    assert completed.usage.output_tokens == 4 and record.ttft_ms is not None


def test_stream_helper_accumulates_the_final_response(fake_openai, build, openai_client):
    fake_openai.reply_text = "Streamed through the helper."
    build.openai_route(fake_openai)
    client = openai_client(build.key())

    with client.responses.stream(model="chat-default", input="hi", instructions="Be brief.") as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(texts) == final.output_text == "Streamed through the helper."
    assert final.usage.output_tokens == 4 and final.instructions == "Be brief."
    assert fake_openai.last_request.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert _record().stream


def test_streamed_and_json_answers_record_the_same_usage(fake_anthropic, claude_route, build, openai_client):
    client = openai_client(build.key())
    client.responses.create(model="claude", input="hello there")
    list(client.responses.create(model="claude", input="hello there", stream=True))
    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    plain, streamed = UsageRecord.objects.order_by("stream")
    assert (plain.stream, streamed.stream) == (False, True)
    assert (plain.prompt_tokens, plain.completion_tokens) == (streamed.prompt_tokens, streamed.completion_tokens)
    assert plain.cost_usd == streamed.cost_usd > 0


def test_stream_cut_after_its_first_byte_ends_with_error_and_response_failed(fake_openai, build, openai_client):
    fake_openai.reply_text = "one two three four five six seven"
    build.openai_route(fake_openai)
    fake_openai.cut_stream(after_chunks=2)
    client = openai_client(build.key())

    events = list(client.responses.create(model="chat-default", input="count", stream=True))

    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    error, failed = events[-2], events[-1].response
    assert error.code == "upstream_bad_response" and "interrupted" in error.message
    assert failed.status == "failed" and failed.error.code == "upstream_bad_response"
    assert failed.output[0].status == "incomplete" and failed.output[0].content[0].text == "one two"
    assert failed.usage is not None
    record = _record()
    assert record.status == "error" and record.error_kind == "bad_response" and record.stream


# --- fallback before the first byte ----------------------------------------------------------------
@pytest.fixture
def openai_then_claude(build, fake_openai, fake_anthropic):
    first = build.model(build.provider(fake_openai, name="oai"), "gpt-4o-mini")
    second = build.model(build.provider(fake_anthropic, name="claude", kind="anthropic"), "claude-sonnet-4-6")
    return build.route("mixed", first, second)


@pytest.mark.parametrize("stream", [False, True])
def test_failing_first_target_falls_over_before_the_first_byte(stream, openai_then_claude, fake_openai, fake_anthropic,
                                                               build, openai_client):
    fake_openai.fail(500)
    client = openai_client(build.key())

    if stream:
        events = list(client.responses.create(model="mixed", input="hi", stream=True))
        assert _types(events) == TEXT_EVENTS
        text = events[-1].response.output_text
    else:
        text = client.responses.create(model="mixed", input="hi").output_text

    assert text == "Hello from fake-anthropic."
    assert fake_openai.request_count == 1 and fake_anthropic.request_count == 1
    record = _record()
    assert record.attempts == 2 and record.status == "success" and record.provider_name == "claude"
    assert [a["outcome"] for a in record.attempt_log] == ["unavailable", "ok"]


def test_every_target_failing_is_a_5xx_in_openai_format(openai_then_claude, fake_openai, fake_anthropic, build,
                                                        openai_client):
    import openai

    fake_openai.fail(500)
    fake_anthropic.fail(529)
    with pytest.raises(openai.InternalServerError) as caught:
        openai_client(build.key()).responses.create(model="mixed", input="hi", stream=True)
    assert caught.value.status_code == 503
    assert caught.value.body["code"] == "upstream_unavailable" and caught.value.body["type"] == "upstream_error"
    assert _record().status == "error"


# --- the stages apply as on chat ----------------------------------------------------------------
def test_answer_cache_serves_a_repeated_response_json_and_streamed(fake_openai, build, openai_client):
    fake_openai.reply_text = "Paris is the capital."
    build.openai_route(fake_openai, cache_mode="exact", cache_ttl_s=60)
    client = openai_client(build.key())
    ask = {"model": "chat-default", "input": "What is the capital of France?", "temperature": 0}

    first = client.responses.create(**ask)
    assert wait_for(lambda: UsageRecord.objects.count() == 1)
    # the answer is stored right after the record (after_answer, in the background)
    def hit():
        raw = client.responses.with_raw_response.create(**ask)
        return raw if raw.headers["x-gateway-cache"] == "hit" else None

    again = wait_for(hit)
    events = list(client.responses.create(**ask, stream=True))

    assert first.output_text == again.parse().output_text == events[-1].response.output_text == "Paris is the capital."
    assert _types(events) == TEXT_EVENTS
    assert wait_for(lambda: UsageRecord.objects.filter(status="cache_hit").count() == 2)
    statuses = [r.status for r in UsageRecord.objects.order_by("created_at")]
    assert statuses[0] == "success" and statuses[-2:] == ["cache_hit", "cache_hit"]
    assert fake_openai.request_count == len(statuses) - 2  # (a miss while the answer was being stored)
    assert {r.endpoint for r in UsageRecord.objects.all()} == {"responses"}


def _banned_words(stage: str) -> None:
    from guardrails.models import Guardrail

    Guardrail.objects.create(name="banned-words", kind="keywords", stage=stage, action="block",
                             params={"words": ["project-nightingale"]})


def test_input_guardrail_blocks_a_response_before_any_provider(fake_openai, build, openai_client):
    import openai

    build.openai_route(fake_openai)
    _banned_words("input")
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client(build.key()).responses.create(model="chat-default", input="status of Project-Nightingale?")
    assert caught.value.code == "content_policy_violation"
    assert fake_openai.requests == []
    record = _record()
    assert (record.status, record.endpoint, record.cost_usd) == ("blocked", "responses", 0)


def test_output_guardrail_stops_a_stream_with_response_failed(fake_openai, build, openai_client):
    build.openai_route(fake_openai)
    _banned_words("output")
    fake_openai.reply("Well, the codename of the thing is project-nightingale and more text follows.")

    events = list(openai_client(build.key()).responses.create(model="chat-default", input="codename?", stream=True))

    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Well, the codename of the thing is "  # up to the word, none of it
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2].code == events[-1].response.error.code == "content_policy_violation"
    record = _record()
    assert record.status == "blocked" and record.error_kind == "blocked"
