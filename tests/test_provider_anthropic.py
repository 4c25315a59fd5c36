"""A route to an Anthropic (Messages API) provider, used through the official OpenAI SDK.

The gateway speaks OpenAI to its clients and Anthropic upstream: these tests check the
translation both ways (system prompt, role alternation, max_tokens, stop sequences,
tools), the mapping of answers back (text, finish_reason, usage, cost), streaming, and
that Anthropic's errors are classified so the route falls back.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from billing.models import UsageRecord
from providers.adapters.anthropic import DEFAULT_MAX_TOKENS
from tests.conftest import wait_for
from tests.fakes.text import prompt_token_count
from tests.sdk_helpers import only_record as _only_record, streamed as _streamed

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
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris today?"}]


@pytest.fixture
def claude_route(fake_anthropic, build):
    """Route `chat-claude` -> one Anthropic model priced $3 / $15 per million tokens."""
    provider = build.provider(fake_anthropic, name="anthropic-main", kind="anthropic")
    model = build.model(provider, "claude-sonnet-4-6", input_price="3", output_price="15")
    build.route("chat-claude", model)
    return model


@pytest.fixture
def client(claude_route, build, openai_client):
    return openai_client(build.key())


def _upstream_body(fake) -> dict:
    request = fake.last_request
    assert request is not None and request.path == "/v1/messages"
    return request.body


# --- answers, finish reasons and usage --------------------------------------------------------
@pytest.mark.proves("anthropic", "chat")
def test_non_stream_answer_is_mapped_to_openai_shape(fake_anthropic, client):
    fake_anthropic.reply_text = "Hello there, gateway user."
    completion = client.chat.completions.create(model="chat-claude", messages=MESSAGES)

    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello there, gateway user."
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"  # end_turn
    expected_prompt = prompt_token_count([MESSAGES[1]], system="Be brief.")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (expected_prompt, 4)
    assert completion.usage.total_tokens == expected_prompt + 4
    # the upstream saw an Anthropic request: our key, the version header, the upstream model id
    upstream = fake_anthropic.last_request
    assert upstream.headers["x-api-key"] == fake_anthropic.api_key
    assert upstream.headers["anthropic-version"]
    assert "authorization" not in upstream.headers
    assert upstream.body["model"] == "claude-sonnet-4-6"
    assert "stream" not in upstream.body


@pytest.mark.parametrize(
    "reply, kwargs, text, finish",
    [
        ("one two three four five six", {"max_tokens": 3}, "one two three", "length"),  # max_tokens
        ("alpha beta END gamma delta", {"stop": ["END"]}, "alpha beta ", "stop"),  # stop_sequence
        ("alpha beta END gamma delta", {"stop": "END"}, "alpha beta ", "stop"),  # stop as a plain string
        ("alpha beta gamma", {}, "alpha beta gamma", "stop"),  # end_turn
    ],
    ids=["max_tokens->length", "stop_sequence->stop", "stop-string->stop", "end_turn->stop"],
)
def test_stop_reasons_map_to_finish_reasons(fake_anthropic, client, reply, kwargs, text, finish):
    fake_anthropic.reply_text = reply
    completion = client.chat.completions.create(model="chat-claude", messages=MESSAGES, **kwargs)
    assert completion.choices[0].message.content == text
    assert completion.choices[0].finish_reason == finish
    assert completion.usage.completion_tokens == len(text.split())
    # ... and the same finish reason in a stream
    chunks, streamed_text = _streamed(
        client.chat.completions.create(model="chat-claude", messages=MESSAGES, stream=True, **kwargs)
    )
    assert streamed_text == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [finish]


def test_stop_is_sent_as_stop_sequences(fake_anthropic, client):
    client.chat.completions.create(model="chat-claude", messages=MESSAGES, stop=["END", "\n\nHuman:"])
    body = _upstream_body(fake_anthropic)
    assert body["stop_sequences"] == ["END", "\n\nHuman:"]
    assert "stop" not in body
    client.chat.completions.create(model="chat-claude", messages=MESSAGES, stop="END")
    assert _upstream_body(fake_anthropic)["stop_sequences"] == ["END"]


def test_sampling_parameters_reach_anthropic_under_their_names(fake_anthropic, client):
    client.chat.completions.create(model="chat-claude", messages=MESSAGES, temperature=0.3, top_p=0.9, user="u-42")
    body = _upstream_body(fake_anthropic)
    assert (body["temperature"], body["top_p"]) == (0.3, 0.9)
    assert body["metadata"] == {"user_id": "u-42"}
    assert "user" not in body


# --- request translation --------------------------------------------------------------------
def test_system_messages_go_to_the_top_level_system_field(fake_anthropic, client):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Say hello"},
    ]
    client.chat.completions.create(model="chat-claude", messages=messages)
    body = _upstream_body(fake_anthropic)
    assert body["system"] == "Be brief.\n\nAnswer in French."
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert all(m["role"] not in ("system", "developer") for m in body["messages"])
    assert body["messages"][0]["content"] == [{"type": "text", "text": "Say hello"}]


def test_no_system_field_without_system_messages(fake_anthropic, client):
    client.chat.completions.create(model="chat-claude", messages=[{"role": "user", "content": "Hi"}])
    assert "system" not in _upstream_body(fake_anthropic)


def test_consecutive_same_role_messages_are_merged_to_alternate(fake_anthropic, client):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First question."},
        {"role": "user", "content": "Second question."},
        {"role": "assistant", "content": "First answer."},
        {"role": "assistant", "content": "Second answer."},
        {"role": "user", "content": "Thanks, and now?"},
    ]
    completion = client.chat.completions.create(model="chat-claude", messages=messages)
    assert completion.choices[0].message.content == fake_anthropic.reply_text  # Anthropic accepted it
    body = _upstream_body(fake_anthropic)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "First question."},
        {"type": "text", "text": "Second question."},
    ]
    assert body["messages"][1]["content"] == [
        {"type": "text", "text": "First answer."},
        {"type": "text", "text": "Second answer."},
    ]


def test_max_tokens_is_always_sent(fake_anthropic, client):
    client.chat.completions.create(model="chat-claude", messages=MESSAGES)
    assert _upstream_body(fake_anthropic)["max_tokens"] == DEFAULT_MAX_TOKENS
    client.chat.completions.create(model="chat-claude", messages=MESSAGES, max_tokens=77)
    assert _upstream_body(fake_anthropic)["max_tokens"] == 77
    client.chat.completions.create(model="chat-claude", messages=MESSAGES, max_completion_tokens=55)
    body = _upstream_body(fake_anthropic)
    assert body["max_tokens"] == 55 and "max_completion_tokens" not in body
    list(client.chat.completions.create(model="chat-claude", messages=MESSAGES, stream=True))
    body = _upstream_body(fake_anthropic)
    assert body["stream"] is True and body["max_tokens"] == DEFAULT_MAX_TOKENS


# --- streaming -------------------------------------------------------------------------------
@pytest.mark.proves("anthropic", "stream", "stream_usage")
def test_stream_yields_same_text_and_usage_as_non_stream(fake_anthropic, client):
    fake_anthropic.reply_text = "One two three four five six seven."
    plain = client.chat.completions.create(model="chat-claude", messages=MESSAGES)
    chunks, text = _streamed(
        client.chat.completions.create(
            model="chat-claude", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert text == plain.choices[0].message.content == "One two three four five six seven."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # really streamed
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        plain.usage.prompt_tokens,
        plain.usage.completion_tokens,
    )
    assert len({c.id for c in chunks}) == 1
    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    streamed, non_streamed = UsageRecord.objects.get(stream=True), UsageRecord.objects.get(stream=False)
    assert streamed.status == "success" and not streamed.usage_estimated
    assert (streamed.prompt_tokens, streamed.completion_tokens, streamed.cost_usd) == (
        non_streamed.prompt_tokens,
        non_streamed.completion_tokens,
        non_streamed.cost_usd,
    )


# --- tools ------------------------------------------------------------------------------------
@pytest.mark.proves("anthropic", "tools")
def test_openai_tools_are_translated_and_tool_use_comes_back_as_tool_calls(fake_anthropic, client):
    completion = client.chat.completions.create(
        model="chat-claude", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    body = _upstream_body(fake_anthropic)
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "auto"}
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"  # tool_use
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.id.startswith("toolu_")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert completion.usage.completion_tokens > 0


@pytest.mark.parametrize(
    "choice, expected",
    [
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "tool", "name": "get_weather"}),
    ],
    ids=["required", "none", "named"],
)
def test_tool_choice_is_translated(fake_anthropic, client, choice, expected):
    client.chat.completions.create(model="chat-claude", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL], tool_choice=choice)
    assert _upstream_body(fake_anthropic)["tool_choice"] == expected


@pytest.mark.proves("anthropic", "tool_deltas")
def test_streamed_tool_call_arguments_concatenate_to_valid_json(fake_anthropic, client):
    stream = client.chat.completions.create(
        model="chat-claude", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL], stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                entry["id"] = tc.id or entry["id"]
                entry["name"] = (tc.function.name if tc.function else None) or entry["name"]
                entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("toolu_")
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    pieces = [tc.function.arguments for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []
              if tc.function and tc.function.arguments]
    assert len(pieces) > 1  # the arguments really arrived in several pieces
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage.completion_tokens > 0


def test_tool_result_follow_up_is_translated_to_tool_use_and_tool_result_blocks(fake_anthropic, client):
    fake_anthropic.reply_text = "It is 18 degrees and sunny in Paris."
    messages = [
        {"role": "system", "content": "You are a weather bot."},
        *WEATHER_QUESTION,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "toolu_01ABC", "type": "function",
                 "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01ABC", "content": "18C, sunny"},
    ]
    completion = client.chat.completions.create(model="chat-claude", messages=messages, tools=[WEATHER_TOOL])
    assert completion.choices[0].message.content == "It is 18 degrees and sunny in Paris."
    assert completion.choices[0].finish_reason == "stop"
    body = _upstream_body(fake_anthropic)
    assert body["system"] == "You are a weather bot."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "What is the weather in Paris today?"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_01ABC", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01ABC", "content": "18C, sunny"}]},
    ]


@pytest.mark.proves("anthropic", "parallel_tools")
def test_parallel_tool_results_share_one_user_turn(fake_anthropic, client):
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking both.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
        ]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "25C"},
        {"role": "user", "content": "Which is warmer?"},
    ]
    client.chat.completions.create(model="chat-claude", messages=messages, tools=[WEATHER_TOOL])
    body = _upstream_body(fake_anthropic)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assistant, results = body["messages"][1]["content"], body["messages"][2]["content"]
    assert assistant[0] == {"type": "text", "text": "Checking both."}
    assert [(b["type"], b["id"], b["input"]) for b in assistant[1:]] == [
        ("tool_use", "toolu_1", {"city": "Paris"}), ("tool_use", "toolu_2", {"city": "Rome"})]
    # tool_result blocks first (Anthropic requires them at the start of the user turn), then the text
    assert results == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "25C"},
        {"type": "text", "text": "Which is warmer?"},
    ]


# --- errors and fallback -------------------------------------------------------------------------
@pytest.fixture
def claude_then_openai(fake_anthropic, fake_openai, build):
    """Route `chat-default`: Anthropic first, then an OpenAI backup."""

    def make(**provider_kw):
        fake_openai.reply_text = "from openai backup"
        claude = build.model(
            build.provider(fake_anthropic, name="claude", kind="anthropic", timeout_s="2", **provider_kw),
            "claude-sonnet-4-6", input_price="3", output_price="15",
        )
        backup = build.model(build.provider(fake_openai, name="backup"))
        build.route("chat-default", claude, backup)
        return build.key()

    return make


@pytest.mark.parametrize(
    "break_claude, provider_kw, status, outcome",
    [
        (lambda f: f.fail(429, headers={"retry-after": "0"}), {}, 429, "rate_limited"),
        (lambda f: f.fail(529), {}, 529, "unavailable"),
        (lambda f: None, {"api_key": "sk-ant-wrong-key-000000"}, 401, "auth"),
        (lambda f: f.fail(404, body={"type": "error", "error": {"type": "not_found_error",
                                                                "message": "model: claude-sonnet-4-6"}}),
         {}, 404, "not_found"),
    ],
    ids=["429-rate_limit_error", "529-overloaded_error", "401-authentication_error", "404-not_found_error"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_anthropic_errors_fall_back_and_are_logged_with_their_kind(
    claude_then_openai, fake_anthropic, fake_openai, openai_client, break_claude, provider_kw, status, outcome, stream
):
    key = claude_then_openai(**provider_kw)
    break_claude(fake_anthropic)
    client = openai_client(key)
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="chat-default", messages=MESSAGES, stream=True
        ) as raw:
            headers = raw.headers
            _, text = _streamed(raw.parse())
    else:
        raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=MESSAGES)
        headers, text = raw.headers, raw.parse().choices[0].message.content
    assert text == "from openai backup"
    assert headers["x-gateway-provider"] == "backup"
    assert fake_anthropic.request_count == 1 and fake_openai.request_count == 1
    record = _only_record()
    assert record.status == "success" and record.provider_name == "backup" and record.attempts == 2
    assert [(a["target"], a["outcome"], a["status"]) for a in record.attempt_log] == [
        ("claude/claude-sonnet-4-6", outcome, status),
        ("backup/gpt-4o-mini", "ok", None),
    ]


def test_anthropic_error_message_reaches_the_client_without_the_key(fake_anthropic, build, openai_client):
    import openai

    build.route("chat-claude", build.model(
        build.provider(fake_anthropic, name="claude", kind="anthropic", api_key="sk-ant-wrong-key-0123456789"),
        "claude-sonnet-4-6"))
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(build.key()).chat.completions.create(model="chat-claude", messages=MESSAGES)
    assert exc.value.status_code >= 500
    message = exc.value.response.json()["error"]["message"]
    assert "claude" in message and "401" in message and "invalid x-api-key" in message
    assert "sk-ant-wrong-key" not in exc.value.response.text
    record = _only_record()
    assert record.status == "error" and record.error_kind == "auth"


# --- cost ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_cost_uses_model_prices_with_anthropic_token_counts(fake_anthropic, client, stream):
    fake_anthropic.reply("Priced answer.", prompt_tokens=1000, completion_tokens=200)
    expected = (1000 * Decimal("3") + 200 * Decimal("15")) / 1_000_000  # $0.006
    if stream:
        chunks = list(client.chat.completions.create(
            model="chat-claude", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
        assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (1000, 200)
    else:
        raw = client.chat.completions.with_raw_response.create(model="chat-claude", messages=MESSAGES)
        assert (raw.parse().usage.prompt_tokens, raw.parse().usage.completion_tokens) == (1000, 200)
        assert Decimal(raw.headers["x-gateway-cost-usd"]) == expected
    record = _only_record()
    assert (record.prompt_tokens, record.completion_tokens) == (1000, 200)
    assert (record.input_price_per_mtok, record.output_price_per_mtok) == (Decimal("3"), Decimal("15"))
    assert record.cost_usd == expected
    assert record.model_name == "anthropic-main/claude-sonnet-4-6" and not record.usage_estimated


@pytest.mark.proves("anthropic", "vision")
def test_image_parts_become_anthropic_image_blocks(fake_anthropic, client):
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "What is in these pictures?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]}]
    client.chat.completions.create(model="chat-claude", messages=messages)
    assert _upstream_body(fake_anthropic)["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these pictures?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
