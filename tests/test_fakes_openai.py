"""Prove the fake OpenAI server is faithful, using the official SDK as client, and the
behaviour all fakes share (hangs, concurrency, recording).

Plain sync tests: no Django, no database.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fakes import FakeOpenAI
from tests.fakes_helpers import MESSAGES, USER_ONLY

pytestmark = pytest.mark.timeout(60)

OPENAI_KEY = "sk-test-openai"


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


def _chat(client: openai.OpenAI, **kwargs):
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)


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
