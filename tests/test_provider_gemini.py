"""A route to a Gemini API provider, used through the official OpenAI SDK.

The gateway speaks OpenAI to its clients and Gemini's generateContent upstream: these
tests check the translation both ways (systemInstruction, roles, generationConfig,
tools and their thought signatures, images, JSON mode, thinking), usage (cached and
thoughts tokens, in streams too), safety blocks, embeddings, and that Google's errors
are classified so the route falls back.
"""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from tests.fakes.gemini import BLOCK_PROMPT, THINKING_TEXT, UNSAFE_ANSWER, thought_signature
from tests.fakes.text import prompt_token_count
from tests.fakes.vectors import embedding
from tests.gemini_helpers import (
    MESSAGES, PNG, WEATHER_QUESTION, WEATHER_TOOL, fresh, only_record, serve, stream_tool_calls, streamed,
)

pytestmark = pytest.mark.django_db(transaction=True)
FLASH = "gemini-2.5-flash"
PRO3 = "gemini-3-pro-preview"


@pytest.fixture(scope="session")
def _gemini_server():
    yield from serve()


@pytest.fixture
def fake_gemini(_gemini_server):
    yield from fresh(_gemini_server)


@pytest.fixture
def gemini_route(fake_gemini, build):
    """Route `chat-gemini` -> gemini-2.5-flash; `chat-gemini-3` -> gemini-3-pro-preview."""
    provider = build.provider(fake_gemini, name="gemini-main", kind="gemini")
    flash = build.model(provider, FLASH, input_price="0.30", output_price="2.50", cache_read_price_per_mtok=Decimal("0.03"),
                        capabilities=["chat", "streaming", "tools", "vision", "json_mode", "thinking"])
    pro = build.model(provider, PRO3, input_price="2", output_price="12",
                      capabilities=["chat", "streaming", "tools", "vision", "json_mode", "thinking"])
    build.route("chat-gemini", flash)
    build.route("chat-gemini-3", pro)
    return flash


@pytest.fixture
def client(gemini_route, build, openai_client):
    return openai_client(build.key())


def _upstream(fake, method: str = "generateContent", model: str = FLASH):
    request = fake.last_request
    assert request is not None and request.path == f"/v1beta/models/{model}:{method}"
    return request


# --- answers and usage ---------------------------------------------------------------------------
@pytest.mark.proves("gemini", "chat")
def test_chat_is_translated_to_generate_content_and_back(fake_gemini, client):
    completion = client.chat.completions.create(model="chat-gemini", messages=MESSAGES)
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content, choice.finish_reason) == ("assistant", "Hello from fake-gemini.", "stop")
    assert choice.message.tool_calls is None
    expected_prompt = prompt_token_count([MESSAGES[1]], system="Be brief.")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (expected_prompt, 3)
    assert completion.model == FLASH
    upstream = _upstream(fake_gemini)
    assert upstream.headers["x-goog-api-key"] == fake_gemini.api_key
    assert "authorization" not in upstream.headers
    assert upstream.body == {"systemInstruction": {"parts": [{"text": "Be brief."}]},
                             "contents": [{"role": "user", "parts": [{"text": "Say hello to the gateway"}]}]}
    record = only_record()
    assert (record.status, record.prompt_tokens, record.completion_tokens) == ("success", expected_prompt, 3)
    assert record.cost_usd == (expected_prompt * Decimal("0.30") + 3 * Decimal("2.50")) / 1_000_000


def test_sampling_parameters_go_to_generation_config(fake_gemini, client):
    completion = client.chat.completions.create(
        model="chat-gemini", messages=MESSAGES, temperature=0.4, top_p=0.9, stop="END", n=2, seed=7,
        presence_penalty=0.5, frequency_penalty=-0.5, max_tokens=50, user="u-1", logit_bias={"1": 2})
    assert [c.index for c in completion.choices] == [0, 1]
    body = _upstream(fake_gemini).body
    assert body["generationConfig"] == {"temperature": 0.4, "topP": 0.9, "stopSequences": ["END"], "candidateCount": 2,
                                        "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.5, "maxOutputTokens": 50}
    assert set(body) == {"contents", "systemInstruction", "generationConfig"}  # user, logit_bias: no such field


def test_roles_alternate_and_consecutive_turns_merge(fake_gemini, client):
    messages = [{"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Hi"}, {"role": "user", "content": "there"},
                {"role": "assistant", "content": "Bonjour"}, {"role": "user", "content": "Again"}]
    client.chat.completions.create(model="chat-gemini", messages=messages)
    body = _upstream(fake_gemini).body
    assert body["systemInstruction"] == {"parts": [{"text": "Answer in French."}]}
    assert [(c["role"], [p["text"] for p in c["parts"]]) for c in body["contents"]] == [
        ("user", ["Hi", "there"]), ("model", ["Bonjour"]), ("user", ["Again"])]


@pytest.mark.parametrize("kwargs, text, finish", [
    ({"max_tokens": 2}, "one two", "length"),
    ({"stop": ["END"]}, "one two ", "stop"),
], ids=["MAX_TOKENS->length", "stopSequences->stop"])
def test_finish_reasons(fake_gemini, client, kwargs, text, finish):
    fake_gemini.reply_text = "one two END three"
    completion = client.chat.completions.create(model="chat-gemini", messages=MESSAGES, **kwargs)
    assert (completion.choices[0].message.content, completion.choices[0].finish_reason) == (text, finish)
    chunks, streamed_text = streamed(client.chat.completions.create(model="chat-gemini", messages=MESSAGES, stream=True, **kwargs))
    assert streamed_text == text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [finish]


@pytest.mark.proves("gemini", "stream", "stream_usage")
def test_stream_relays_text_and_usage(fake_gemini, client):
    fake_gemini.reply_text = "One two three four five."
    chunks, text = streamed(client.chat.completions.create(
        model="chat-gemini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert text == "One two three four five."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) == 5
    assert chunks[-1].usage is not None
    expected_prompt = prompt_token_count([MESSAGES[1]], system="Be brief.")
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (expected_prompt, 5)
    request = _upstream(fake_gemini, "streamGenerateContent")
    assert request.query == {"alt": "sse"}
    record = only_record()
    assert (record.stream, record.prompt_tokens, record.completion_tokens, record.usage_estimated) == (
        True, expected_prompt, 5, False)


@pytest.mark.proves("gemini", "cached_tokens")
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_cached_content_tokens_are_billed_at_the_cache_price(fake_gemini, client, stream):
    fake_gemini.reply("Cached answer.", prompt_tokens=1000, completion_tokens=10)
    fake_gemini.cached_tokens = 600
    if stream:
        list(client.chat.completions.create(model="chat-gemini", messages=MESSAGES, stream=True))
    else:
        client.chat.completions.create(model="chat-gemini", messages=MESSAGES)
    record = only_record()
    assert (record.prompt_tokens, record.cache_read_tokens, record.completion_tokens) == (1000, 600, 10)
    assert record.cost_usd == (400 * Decimal("0.30") + 600 * Decimal("0.03") + 10 * Decimal("2.50")) / 1_000_000


# --- thinking ---------------------------------------------------------------------------------------
@pytest.mark.proves("gemini", "thinking")
def test_reasoning_effort_asks_for_thoughts_and_they_come_back_as_reasoning(fake_gemini, client):
    completion = client.chat.completions.create(model="chat-gemini", messages=MESSAGES, reasoning_effort="low")
    assert _upstream(fake_gemini).body["generationConfig"] == {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}
    message = completion.choices[0].message
    assert message.content == "Hello from fake-gemini."
    assert message.model_extra["reasoning_content"] == THINKING_TEXT
    thoughts = len(THINKING_TEXT.split())
    assert completion.usage.completion_tokens == 3 + thoughts  # thoughtsTokenCount is billed as output

    chunks = list(client.chat.completions.create(model="chat-gemini", messages=MESSAGES, reasoning_effort="low",
                                                 stream=True, stream_options={"include_usage": True}))
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices)
    assert reasoning == THINKING_TEXT
    assert chunks[-1].usage.completion_tokens == 3 + thoughts


def test_gemini_3_takes_a_thinking_level(fake_gemini, client):
    client.chat.completions.create(model="chat-gemini-3", messages=MESSAGES, reasoning_effort="high")
    config = _upstream(fake_gemini, model=PRO3).body["generationConfig"]
    assert config == {"thinkingConfig": {"thinkingLevel": "HIGH", "includeThoughts": True}}


# --- tools --------------------------------------------------------------------------------------------
@pytest.mark.proves("gemini", "tools", "thinking")
def test_tool_call_carries_its_thought_signature_and_the_round_trip_sends_it_back(fake_gemini, client):
    first = client.chat.completions.create(model="chat-gemini-3", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})
    signature = thought_signature("get_weather", {"city": "Paris"})
    assert call.model_extra["extra_content"] == {"google": {"thought_signature": signature}}
    declarations = _upstream(fake_gemini, model=PRO3).body["tools"][0]["functionDeclarations"]
    assert declarations == [{"name": "get_weather", "description": "Current weather for a city",
                             "parametersJsonSchema": WEATHER_TOOL["function"]["parameters"]}]

    history = [*WEATHER_QUESTION, choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}]
    final = client.chat.completions.create(model="chat-gemini-3", messages=history, tools=[WEATHER_TOOL])
    assert final.choices[0].message.content == "Hello from fake-gemini."  # Gemini 3 accepted the signature
    contents = _upstream(fake_gemini, model=PRO3).body["contents"]
    assert contents[1] == {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": signature}]}
    assert contents[2] == {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}}]}


def test_a_dropped_signature_is_gemini_3s_400(fake_gemini, client):
    history = [*WEATHER_QUESTION,
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
               {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat-gemini-3", messages=history, tools=[WEATHER_TOOL])
    assert "thought_signature" in caught.value.response.text
    body = _upstream(fake_gemini, model=PRO3).body
    assert body["contents"][2]["parts"] == [{"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}}]


@pytest.mark.proves("gemini", "parallel_tools", "tool_deltas")
def test_parallel_calls_and_streamed_call_deltas(fake_gemini, client):
    question = [{"role": "user", "content": "What is the weather in Paris and London?"}]
    completion = client.chat.completions.create(model="chat-gemini", messages=question, tools=[WEATHER_TOOL])
    calls = completion.choices[0].message.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}, {"city": "London"}]
    assert len({c.id for c in calls}) == 2

    chunks = list(client.chat.completions.create(model="chat-gemini", messages=question, tools=[WEATHER_TOOL], stream=True))
    streamed_calls = stream_tool_calls(chunks)
    assert [(c["name"], json.loads(c["arguments"])) for c in streamed_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "London"})]
    assert streamed_calls[0]["extra"] == {"google": {"thought_signature": thought_signature("get_weather", {"city": "Paris"})}}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.parametrize("tool_choice, config", [
    ("auto", {"mode": "AUTO"}),
    ("none", {"mode": "NONE"}),
    ("required", {"mode": "ANY"}),
    ({"type": "function", "function": {"name": "get_weather"}}, {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
], ids=["auto", "none", "required", "named"])
def test_tool_choice_becomes_function_calling_config(fake_gemini, client, tool_choice, config):
    client.chat.completions.create(model="chat-gemini", messages=WEATHER_QUESTION, tools=[WEATHER_TOOL], tool_choice=tool_choice)
    assert _upstream(fake_gemini).body["toolConfig"] == {"functionCallingConfig": config}


def test_a_tool_result_for_no_call_is_the_clients_400(fake_gemini, client):
    messages = [*WEATHER_QUESTION, {"role": "tool", "tool_call_id": "call_unknown", "content": "sunny"}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat-gemini", messages=messages, tools=[WEATHER_TOOL])
    assert "tool_call_id" in caught.value.response.text
    assert fake_gemini.request_count == 0


# --- vision and JSON mode ------------------------------------------------------------------------------
@pytest.mark.proves("gemini", "vision")
def test_images_become_inline_data_or_file_data(fake_gemini, client):
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": PNG}},
               {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]
    client.chat.completions.create(model="chat-gemini", messages=[{"role": "user", "content": content}])
    parts = _upstream(fake_gemini).body["contents"][0]["parts"]
    assert parts == [{"text": "What is this?"},
                     {"inlineData": {"mimeType": "image/png", "data": PNG.split(",", 1)[1]}},
                     {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}}]


def test_an_image_url_of_unknown_type_is_a_clear_400(fake_gemini, client):
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/render?id=4"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat-gemini", messages=[{"role": "user", "content": content}])
    assert "MIME type" in caught.value.response.json()["error"]["message"]
    assert fake_gemini.request_count == 0


@pytest.mark.proves("gemini", "json_mode")
def test_response_format_becomes_a_response_mime_type_and_schema(fake_gemini, client):
    completion = client.chat.completions.create(model="chat-gemini", messages=MESSAGES, response_format={"type": "json_object"})
    assert json.loads(completion.choices[0].message.content) == {"reply": "Hello from fake-gemini."}
    assert _upstream(fake_gemini).body["generationConfig"] == {"responseMimeType": "application/json"}
    schema = {"type": "object", "properties": {"reply": {"type": "string"}}, "required": ["reply"], "additionalProperties": False}
    client.chat.completions.create(model="chat-gemini", messages=MESSAGES, response_format={
        "type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}})
    assert _upstream(fake_gemini).body["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": schema}


# --- safety ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_a_blocked_prompt_is_a_content_policy_400(fake_gemini, client, stream):
    with pytest.raises(openai.BadRequestError) as caught:
        result = client.chat.completions.create(model="chat-gemini", messages=[{"role": "user", "content": f"Tell {BLOCK_PROMPT}"}],
                                                stream=stream)
        list(result) if stream else None
    assert caught.value.response.json()["error"]["code"] == "content_policy_violation"
    record = only_record()
    assert (record.status, record.error_kind) == ("error", "content_policy")


def test_a_safety_stop_is_content_filter(fake_gemini, client):
    completion = client.chat.completions.create(model="chat-gemini", messages=[{"role": "user", "content": f"Tell {UNSAFE_ANSWER}"}])
    assert completion.choices[0].finish_reason == "content_filter"
    chunks = list(client.chat.completions.create(model="chat-gemini", messages=[{"role": "user", "content": f"Tell {UNSAFE_ANSWER}"}],
                                                 stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["content_filter"]


# --- embeddings ------------------------------------------------------------------------------------------
@pytest.mark.proves("gemini", "embeddings")
def test_embeddings_use_batch_embed_contents(fake_gemini, build, openai_client):
    provider = build.provider(fake_gemini, name="gemini-embed", kind="gemini")
    build.route("embed", build.model(provider, "gemini-embedding-001", input_price="0.15", output_price="0",
                                     capabilities=["embeddings"]))
    answer = openai_client(build.key()).embeddings.create(model="embed", input=["first text", "second"], dimensions=8,
                                                          encoding_format="float")
    assert [d.embedding for d in answer.data] == [embedding("gemini-embedding-001", t, 768, 8) for t in ("first text", "second")]
    request = _upstream(fake_gemini, "batchEmbedContents", "gemini-embedding-001")
    assert request.body == {"requests": [
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "first text"}]}, "outputDimensionality": 8},
        {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]}, "outputDimensionality": 8}]}
    record = only_record()
    assert (record.status, record.usage_estimated) == ("success", True)  # Gemini reports no embedding token counts


# --- errors and fallback -------------------------------------------------------------------------------
@pytest.fixture
def gemini_then_openai(fake_gemini, fake_openai, build):
    def make(**provider_kw):
        fake_openai.reply_text = "from openai backup"
        gemini = build.model(build.provider(fake_gemini, name="gem", kind="gemini", timeout_s="2", **provider_kw), FLASH)
        backup = build.model(build.provider(fake_openai, name="backup"))
        build.route("chat-default", gemini, backup)
        return build.key()

    return make


@pytest.mark.parametrize("break_gemini, provider_kw, status, outcome", [
    (lambda f: f.fail(429), {}, 429, "rate_limited"),
    (lambda f: f.fail(503), {}, 503, "unavailable"),
    (lambda f: f.fail(500), {}, 500, "unavailable"),
    (lambda f: None, {"api_key": "wrong-gemini-key-000000"}, 400, "auth"),  # 400 API_KEY_INVALID
    (lambda f: f.fail(403), {}, 403, "auth"),
    (lambda f: setattr(f, "known_models", {"other"}), {}, 404, "not_found"),
    (lambda f: f.cut_stream(after_chunks=0), {}, None, "bad_response"),  # stream: before its first event
], ids=["429-RESOURCE_EXHAUSTED", "503-UNAVAILABLE", "500-INTERNAL", "400-API_KEY_INVALID", "403-PERMISSION_DENIED",
        "404-NOT_FOUND", "cut"])
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_gemini_errors_fall_back_and_are_logged_with_their_kind(
    gemini_then_openai, fake_gemini, fake_openai, openai_client, break_gemini, provider_kw, status, outcome, stream
):
    fake_gemini.reply_text = "One two three four five."
    key = gemini_then_openai(**provider_kw)
    break_gemini(fake_gemini)
    client = openai_client(key)
    if stream:
        with client.chat.completions.with_streaming_response.create(model="chat-default", messages=MESSAGES, stream=True) as raw:
            headers, (_, text) = raw.headers, streamed(raw.parse())
    else:
        raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=MESSAGES)
        headers, text = raw.headers, raw.parse().choices[0].message.content
    assert text == "from openai backup"
    assert headers["x-gateway-provider"] == "backup"
    record = only_record()
    assert record.status == "success" and record.provider_name == "backup" and record.attempts == 2
    assert [(a["target"], a["outcome"], a["status"]) for a in record.attempt_log] == [
        (f"gem/{FLASH}", outcome, status), ("backup/gpt-4o-mini", "ok", None)]


def test_a_malformed_answer_falls_back(gemini_then_openai, fake_gemini, openai_client):
    key = gemini_then_openai()
    fake_gemini.malformed()
    completion = openai_client(key).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert completion.choices[0].message.content == "from openai backup"
    assert [a["outcome"] for a in only_record().attempt_log] == ["bad_response", "ok"]


@pytest.mark.parametrize("fault", [lambda f: f.malformed(), lambda f: f.cut_stream(after_chunks=2)], ids=["malformed", "cut"])
def test_a_stream_broken_after_its_first_event_is_interrupted_and_recorded(gemini_then_openai, fake_gemini, openai_client, fault):
    fake_gemini.reply_text = "One two three four five."
    key = gemini_then_openai()
    fault(fake_gemini)
    with pytest.raises(openai.APIError) as caught:
        list(openai_client(key).chat.completions.create(model="chat-default", messages=MESSAGES, stream=True))
    assert "The stream was interrupted" in str(caught.value)
    record = only_record()
    assert (record.status, record.error_kind, record.provider_name) == ("error", "bad_response", "gem")


def test_the_error_text_reaches_the_client_without_the_key(fake_gemini, build, openai_client):
    build.route("chat-gemini", build.model(build.provider(fake_gemini, name="gem", kind="gemini",
                                                          api_key="wrong-gemini-key-0123456789"), FLASH))
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client(build.key()).chat.completions.create(model="chat-gemini", messages=MESSAGES)
    message = caught.value.response.json()["error"]["message"]
    assert "API_KEY_INVALID" in message and "API key not valid" in message
    assert "wrong-gemini-key" not in caught.value.response.text
    assert only_record().error_kind == "auth"


def test_a_429s_retry_delay_is_read(fake_gemini):
    from providers.adapters.gemini import GeminiAdapter

    error = GeminiAdapter().http_error("gem", 429, {}, json.dumps(
        {"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED",
                   "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "27s"}]}}).encode())
    assert (error.kind, error.retry_after, error.status) == ("rate_limited", 27.0, 429)
    too_long = GeminiAdapter().http_error("gem", 400, {}, json.dumps(
        {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                   "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."}}).encode())
    assert too_long.kind == "context_length"
    region = GeminiAdapter().http_error("gem", 400, {}, json.dumps(
        {"error": {"code": 400, "status": "FAILED_PRECONDITION", "message": "User location is not supported for the API use."}}).encode())
    assert region.kind == "auth"  # the account, not the request: fall back


# --- the other client dialects reach Gemini through the same translation ---------------------------
def test_an_anthropic_messages_client_with_a_tool_reaches_gemini(fake_gemini, gemini_route, build, gateway):
    import anthropic

    claude = anthropic.Anthropic(base_url=gateway, api_key=build.key(), max_retries=0, timeout=30)
    message = claude.messages.create(
        model="chat-gemini", max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"name": "get_weather", "description": "Current weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}])
    assert message.stop_reason == "tool_use"
    (block,) = [b for b in message.content if b.type == "tool_use"]
    assert (block.name, block.input) == ("get_weather", {"city": "Paris"})
    body = _upstream(fake_gemini).body
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["generationConfig"]["maxOutputTokens"] == 100


def test_a_responses_api_client_reaches_gemini(fake_gemini, client):
    response = client.responses.create(model="chat-gemini", instructions="Be brief.", input="Say hello")
    assert response.output_text == "Hello from fake-gemini."
    assert _upstream(fake_gemini).body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
