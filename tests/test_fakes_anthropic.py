"""Prove the fake Anthropic server is faithful, using the official SDK as client.

Plain sync tests: no Django, no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import httpx2
import pytest

from tests.fakes import FakeAnthropic
from tests.fakes_helpers import USER_ONLY

pytestmark = pytest.mark.timeout(60)

ANTHROPIC_KEY = "sk-ant-test"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


# -- fixtures ----------------------------------------------------------------------------------------
# These deliberately shadow the session-wide fakes of tests/conftest.py: each test here gets
# its own fresh server (own keys / known_models), so nothing leaks into the gateway tests.
@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=ANTHROPIC_KEY) as fake:
        yield fake
    assert fake.errors == []  # no exception inside the fake itself


@pytest.fixture
def claude(fake_anthropic: FakeAnthropic) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=fake_anthropic.base_url, api_key=ANTHROPIC_KEY, max_retries=0) as client:
        yield client


def _claude(client: anthropic.Anthropic, **kwargs):
    kwargs.setdefault("messages", USER_ONLY)
    return client.messages.create(model="claude-sonnet-4-6", max_tokens=256, **kwargs)


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
