"""Prove the fake provider servers are faithful, using the official SDKs as clients.

Plain sync tests: no Django, no database.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import anthropic
import httpx
import httpx2
import openai
import pytest

from tests.fakes import FakeAnthropic, FakeOllama, FakeOpenAI

pytestmark = pytest.mark.timeout(60)

OPENAI_KEY = "sk-test-openai"
ANTHROPIC_KEY = "sk-ant-test"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to me"}]
USER_ONLY = [{"role": "user", "content": "Say hello to me"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


# -- fixtures ----------------------------------------------------------------------------------------
# These deliberately shadow the session-wide fakes of tests/conftest.py: each test here gets
# its own fresh server (own keys / known_models), so nothing leaks into the gateway tests.
@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=OPENAI_KEY) as fake:
        yield fake
    assert fake.errors == []  # no exception inside the fake itself


@pytest.fixture
def oai(fake_openai: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=ANTHROPIC_KEY) as fake:
        yield fake
    assert fake.errors == []  # no exception inside the fake itself


@pytest.fixture
def claude(fake_anthropic: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake_anthropic.base_url, api_key=ANTHROPIC_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama(known_models=["llama3.2:latest"]) as fake:
        yield fake
    assert fake.errors == []  # no exception inside the fake itself


@pytest.fixture
def ollama_http(fake_ollama: FakeOllama) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_ollama.base_url, timeout=10) as client:
        yield client


def _chat(client: openai.OpenAI, **kwargs):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)


def _claude(client: anthropic.Anthropic, **kwargs):
    kwargs.setdefault("messages", USER_ONLY)
    return client.messages.create(model="claude-sonnet-4-6", max_tokens=256, **kwargs)


# -- OpenAI --------------------------------------------------------------------------------------------
def test_openai_non_stream(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    completion = _chat(oai)
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4o-mini"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == fake_openai.reply_text == "Hello from fake-openai."
    assert choice.finish_reason == "stop"
    # 2 + 4 words, +3 per message; the reply has 3 words
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (12, 3)
    assert completion.usage.total_tokens == 15

    request = fake_openai.last_request
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert request.body["messages"] == MESSAGES
    assert fake_openai.request_count == 1


def test_openai_stream_matches_non_stream(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.reply_text = "The quick brown fox jumps over the lazy dog."
    plain = _chat(oai)
    chunks = list(_chat(oai, stream=True, stream_options={"include_usage": True}))

    assert chunks[0].choices[0].delta.role == "assistant"
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) == 9
    assert "".join(deltas) == plain.choices[0].message.content == fake_openai.reply_text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.model_dump() == plain.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])


def test_openai_stream_without_include_usage_has_no_usage_chunk(oai: openai.OpenAI) -> None:
    chunks = list(_chat(oai, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_openai_sse_wire_format(fake_openai: FakeOpenAI) -> None:
    body = {"model": "gpt-4o-mini", "messages": USER_ONLY, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    with httpx.stream("POST", f"{fake_openai.base_url}/chat/completions", json=body, headers=headers) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["transfer-encoding"] == "chunked"
        raw = resp.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events[:-1])
    assert json.loads(events[0][6:])["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}


def test_openai_max_tokens_truncates(oai: openai.OpenAI) -> None:
    completion = _chat(oai, max_tokens=2)
    assert completion.choices[0].message.content == "Hello from"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 2
    chunks = list(_chat(oai, max_completion_tokens=2, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 2


def test_openai_scripted_reply_is_used_once(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.reply("Scripted answer", prompt_tokens=100, completion_tokens=7)
    first, second = _chat(oai), _chat(oai)
    assert first.choices[0].message.content == "Scripted answer"
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (100, 7)
    assert second.choices[0].message.content == "Hello from fake-openai."


def test_openai_error_classes(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.fail(429, headers={"Retry-After": "1"})
    with pytest.raises(openai.RateLimitError) as rate_limited:
        _chat(oai)
    assert rate_limited.value.code == "rate_limit_exceeded"
    assert rate_limited.value.response.headers["retry-after"] == "1"

    fake_openai.fail(500)
    with pytest.raises(openai.InternalServerError) as server_error:
        _chat(oai)
    assert server_error.value.type == "server_error"

    bad_key = openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        _chat(bad_key)
    assert unauthorized.value.code == "invalid_api_key"

    with pytest.raises(openai.BadRequestError) as bad_request:
        oai.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert bad_request.value.param == "messages"


def test_openai_missing_fields_give_400(fake_openai: FakeOpenAI) -> None:
    headers = {"Authorization": f"Bearer {OPENAI_KEY}"}
    url = f"{fake_openai.base_url}/chat/completions"
    no_model = httpx.post(url, json={"messages": USER_ONLY}, headers=headers)
    assert no_model.status_code == 400
    assert set(no_model.json()["error"]) == {"message", "type", "param", "code"}
    no_messages = httpx.post(url, json={"model": "gpt-4o-mini"}, headers=headers)
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["code"] == "missing_required_parameter"


def test_openai_fail_times_then_recovers_with_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.fail(503, headers={"retry-after-ms": "10"}, times=2)
    client = openai.OpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=2)
    assert _chat(client).choices[0].message.content == "Hello from fake-openai."
    assert fake_openai.request_count == 3
    assert [r.headers["x-stainless-retry-count"] for r in fake_openai.requests] == ["0", "1", "2"]
    assert len({r.client_port for r in fake_openai.requests}) == 1  # keep-alive connection reused


def test_openai_custom_error_body(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.fail(400, body={"error": {"message": "context too long", "type": "invalid_request_error",
                                          "param": "messages", "code": "context_length_exceeded"}})
    with pytest.raises(openai.BadRequestError) as err:
        _chat(oai)
    assert err.value.code == "context_length_exceeded"


def test_openai_cut_stream(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.cut_stream(after_chunks=1)
    received: list[str] = []
    finish = None
    with pytest.raises(openai.APIConnectionError):
        for chunk in _chat(oai, stream=True):
            received.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason
    assert "".join(received) == "Hello"
    assert finish is None
    assert _chat(oai).choices[0].message.content == "Hello from fake-openai."  # next request is fine


def test_openai_cut_non_stream_body(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.cut_stream()
    with pytest.raises(openai.APIConnectionError):
        _chat(oai)


def test_openai_malformed(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.malformed(times=2)
    with pytest.raises(ValueError):  # json.JSONDecodeError
        _chat(oai)
    with pytest.raises(ValueError):
        list(_chat(oai, stream=True))


def test_openai_models_list_and_unknown_model(oai: openai.OpenAI) -> None:
    assert [m.id for m in oai.models.list()] == ["gpt-4o-mini", "gpt-4o"]
    with FakeOpenAI(known_models=["gpt-4o"]) as fake:
        client = openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0)
        with pytest.raises(openai.NotFoundError) as err:
            _chat(client)
        assert err.value.code == "model_not_found"


# -- hang / concurrency / recording (shared base behaviour) -------------------------------------------
def test_hang_triggers_client_timeout(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.hang(5)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        _chat(oai, timeout=0.3)
    assert time.monotonic() - started < 3
    assert _chat(oai).choices[0].message.content == "Hello from fake-openai."


def test_hang_does_not_block_other_requests(fake_openai: FakeOpenAI) -> None:
    fake_openai.hang(1.5)
    slow_result: dict[str, object] = {}

    def slow_call() -> None:
        client = openai.OpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=0)
        slow_result["text"] = _chat(client).choices[0].message.content
        slow_result["done_at"] = time.monotonic()

    thread = threading.Thread(target=slow_call)
    started = time.monotonic()
    thread.start()
    assert fake_openai.wait_for_requests(1)
    fast = openai.OpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=0)
    assert _chat(fast).choices[0].message.content == "Hello from fake-openai."
    fast_done = time.monotonic()
    thread.join(10)
    assert fast_done - started < 1.2
    assert slow_result["text"] == "Hello from fake-openai."
    assert slow_result["done_at"] - started >= 1.4  # type: ignore[operator]


def test_hang_mid_stream(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.hang(5, after_chunks=1)
    seen: list[str] = []
    with pytest.raises(openai.APITimeoutError):
        for chunk in _chat(oai, stream=True, timeout=0.5):
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "Hello"


def test_recording_and_reset(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    _chat(oai, temperature=0.2)
    oai.models.list()
    assert fake_openai.request_count == 2
    first, second = fake_openai.requests
    assert first.body["temperature"] == 0.2 and first["body"] is first.body
    assert (second.method, second.path, second.body) == ("GET", "/v1/models", None)
    fake_openai.fail(500, times=3)
    assert fake_openai.pending == 3
    fake_openai.reset()
    assert (fake_openai.request_count, fake_openai.pending) == (0, 0)
    assert _chat(oai).choices[0].finish_reason == "stop"


def test_stop_is_quick_even_with_hanging_request() -> None:
    fake = FakeOpenAI().start()
    fake.hang(30)

    def call() -> None:  # answered early or hung up on: either way it must not wait 30 s
        try:
            httpx.post(f"{fake.base_url}/chat/completions", timeout=60, json={"model": "m", "messages": USER_ONLY})
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=call)
    thread.start()
    assert fake.wait_for_requests(1)
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    thread.join(5)
    assert not thread.is_alive()


def test_chunk_delay_spaces_events(fake_openai: FakeOpenAI, oai: openai.OpenAI) -> None:
    fake_openai.chunk_delay = 0.05
    started = time.monotonic()
    list(_chat(oai, stream=True))
    assert time.monotonic() - started >= 0.2  # 6 events, 5 gaps


# -- Anthropic ---------------------------------------------------------------------------------------
def test_anthropic_non_stream(fake_anthropic: FakeAnthropic, claude: anthropic.Anthropic) -> None:
    message = _claude(claude, system="You are terse.")
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == "claude-sonnet-4-6"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from fake-anthropic."
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    # user 4 words + 3, system 3 words + 3 (counted like a message)
    assert (message.usage.input_tokens, message.usage.output_tokens) == (13, 3)

    assert fake_anthropic.last_system == "You are terse."
    request = fake_anthropic.last_request
    assert request.path == "/v1/messages"
    assert request.headers["anthropic-version"]
    assert ANTHROPIC_KEY in (request.headers.get("x-api-key"), request.headers.get("authorization", "")[7:])


def test_anthropic_stream_matches_non_stream(fake_anthropic: FakeAnthropic, claude: anthropic.Anthropic) -> None:
    fake_anthropic.reply_text = "One two three four five."
    plain = _claude(claude)
    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=256, messages=USER_ONLY) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) == 5
    assert "".join(pieces) == final.content[0].text == plain.content[0].text == "One two three four five."
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_anthropic_sse_event_sequence(fake_anthropic: FakeAnthropic) -> None:
    body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": USER_ONLY, "stream": True}
    headers = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    with httpx.stream("POST", f"{fake_anthropic.base_url}/v1/messages", json=body, headers=headers) as resp:
        raw = resp.read().decode()
    names = [block.split("\n")[0].removeprefix("event: ") for block in raw.split("\n\n") if block]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                     "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]
    start = json.loads(raw.split("\n\n")[0].split("\ndata: ")[1])
    assert start["message"]["usage"]["output_tokens"] == 1


def test_anthropic_max_tokens_and_stop_sequence(claude: anthropic.Anthropic) -> None:
    truncated = claude.messages.create(model="claude-sonnet-4-6", max_tokens=1, messages=USER_ONLY)
    assert truncated.content[0].text == "Hello"
    assert truncated.stop_reason == "max_tokens" and truncated.usage.output_tokens == 1
    stopped = _claude(claude, stop_sequences=["fake"])
    assert stopped.content[0].text == "Hello from "
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "fake")


def test_anthropic_errors(fake_anthropic: FakeAnthropic, claude: anthropic.Anthropic) -> None:
    fake_anthropic.fail(529)
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        _claude(claude)
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"

    fake_anthropic.fail(429, headers={"retry-after": "2"})
    with pytest.raises(anthropic.RateLimitError) as limited:
        _claude(claude)
    assert limited.value.response.headers["retry-after"] == "2"

    fake_anthropic.fail(500)
    with pytest.raises(anthropic.InternalServerError):
        _claude(claude)

    wrong = anthropic.Anthropic(base_url=fake_anthropic.base_url, api_key="sk-ant-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        _claude(wrong)

    with pytest.raises(anthropic.BadRequestError, match="system"):
        _claude(claude, messages=[{"role": "system", "content": "no"}, *USER_ONLY])


def test_anthropic_required_headers_and_fields(fake_anthropic: FakeAnthropic) -> None:
    url = f"{fake_anthropic.base_url}/v1/messages"
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": USER_ONLY}
    no_version = httpx.post(url, json=body, headers={"x-api-key": ANTHROPIC_KEY})
    assert no_version.status_code == 400
    assert no_version.json()["type"] == "error"
    assert no_version.json()["error"]["type"] == "invalid_request_error"
    headers = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    no_max = httpx.post(url, json={k: v for k, v in body.items() if k != "max_tokens"}, headers=headers)
    assert no_max.status_code == 400 and "max_tokens" in no_max.json()["error"]["message"]
    missing_key = httpx.post(url, json=body, headers={"anthropic-version": "2023-06-01"})
    assert missing_key.status_code == 401
    assert missing_key.json()["error"]["type"] == "authentication_error"


def test_anthropic_tool_use(claude: anthropic.Anthropic) -> None:
    question = [{"role": "user", "content": "What's the weather in Paris?"}]
    message = _claude(claude, messages=question, tools=[WEATHER_TOOL])
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"city": "Paris"})
    assert block.id.startswith("toolu_")

    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=256, messages=question,
                                tools=[WEATHER_TOOL]) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].input == {"city": "Paris"}
    assert final.usage.output_tokens == message.usage.output_tokens

    follow_up = [*question, {"role": "assistant", "content": message.model_dump()["content"]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id,
                                               "content": "Sunny weather, 21C"}]}]
    answer = _claude(claude, messages=follow_up, tools=[WEATHER_TOOL])
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"


def test_anthropic_cut_stream(fake_anthropic: FakeAnthropic, claude: anthropic.Anthropic) -> None:
    fake_anthropic.cut_stream(after_chunks=2)
    pieces: list[str] = []
    # the SDK surfaces the transport error of its HTTP library (httpx2) for a broken chunked body
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=256, messages=USER_ONLY) as stream:
            for text in stream.text_stream:
                pieces.append(text)
    assert "".join(pieces) == "Hello from"


def test_anthropic_malformed_stream(fake_anthropic: FakeAnthropic, claude: anthropic.Anthropic) -> None:
    fake_anthropic.malformed()
    with pytest.raises(ValueError):
        with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=256, messages=USER_ONLY) as stream:
            stream.get_final_message()


def test_anthropic_count_tokens(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model="claude-sonnet-4-6", messages=USER_ONLY, system="Be nice.")
    assert counted.input_tokens == _claude(claude, system="Be nice.").usage.input_tokens == 12


# -- Ollama -----------------------------------------------------------------------------------------
def _ndjson(client: httpx.Client, body: dict) -> list[dict]:
    with client.stream("POST", "/api/chat", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in resp.iter_lines() if line]


def test_ollama_non_stream(fake_ollama: FakeOllama, ollama_http: httpx.Client) -> None:
    resp = ollama_http.post("/api/chat", json={"model": "llama3.2", "messages": MESSAGES, "stream": False})
    data = resp.json()
    assert resp.status_code == 200
    assert data["message"] == {"role": "assistant", "content": "Hello from fake-ollama."}
    assert data["done"] is True and data["done_reason"] == "stop"
    assert (data["prompt_eval_count"], data["eval_count"]) == (12, 3)
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration", "created_at"):
        assert key in data


def test_ollama_stream_is_default(fake_ollama: FakeOllama, ollama_http: httpx.Client) -> None:
    fake_ollama.reply_text = "Streaming is the default in Ollama."
    lines = _ndjson(ollama_http, {"model": "llama3.2:latest", "messages": MESSAGES, "stream": None})
    *parts, final = lines
    assert len(parts) == 6 and all(p["done"] is False for p in parts)
    assert "".join(p["message"]["content"] for p in parts) == fake_ollama.reply_text
    assert final["done"] is True and final["done_reason"] == "stop" and final["message"]["content"] == ""
    plain = ollama_http.post("/api/chat", json={"model": "llama3.2", "messages": MESSAGES, "stream": False}).json()
    assert (final["prompt_eval_count"], final["eval_count"]) == (plain["prompt_eval_count"], plain["eval_count"])


def test_ollama_num_predict_truncates(ollama_http: httpx.Client) -> None:
    body = {"model": "llama3.2", "messages": USER_ONLY, "options": {"num_predict": 1}, "stream": True}
    *parts, final = _ndjson(ollama_http, body)
    assert "".join(p["message"]["content"] for p in parts) == "Hello"
    assert (final["done_reason"], final["eval_count"]) == ("length", 1)


def test_ollama_unknown_model_and_tags(ollama_http: httpx.Client) -> None:
    resp = ollama_http.post("/api/chat", json={"model": "mistral", "messages": USER_ONLY})
    assert resp.status_code == 404
    assert resp.json() == {"error": 'model "mistral" not found, try pulling it first'}
    tags = ollama_http.get("/api/tags").json()
    assert [m["name"] for m in tags["models"]] == ["llama3.2:latest"]
    assert ollama_http.get("/").text == "Ollama is running"


def test_ollama_faults(fake_ollama: FakeOllama, ollama_http: httpx.Client) -> None:
    fake_ollama.fail(500, body={"error": "llama runner process has terminated"})
    failed = ollama_http.post("/api/chat", json={"model": "llama3.2", "messages": USER_ONLY})
    assert failed.status_code == 500 and failed.json() == {"error": "llama runner process has terminated"}

    fake_ollama.cut_stream(after_chunks=1)
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with ollama_http.stream("POST", "/api/chat", json={"model": "llama3.2", "messages": USER_ONLY}) as resp:
            for line in resp.iter_lines():
                received.append(json.loads(line)["message"]["content"])
    assert received == ["Hello"]

    fake_ollama.malformed()
    with pytest.raises(ValueError):
        _ndjson(ollama_http, {"model": "llama3.2", "messages": USER_ONLY})
    assert fake_ollama.request_count == 3
