"""Errors on /v1/messages in Anthropic's format ({"type": "error", "error": {"type",
"message"}}), with the statuses the official SDK turns into its exception classes; bad
bodies are the client's 400 (never a 500, never sent upstream); a failing first target
fails over before the first byte; a stream that breaks after it ends with an `error`
event; every request that reached a provider gets exactly one usage record.
"""

from __future__ import annotations

import json

import anthropic
import httpx
import pytest

from billing.models import UsageRecord
from routing.schemas import MAX_DEPTH
from tests.conftest import wait_for
from tests.test_inbound_anthropic import USER, claude, claude_model, only_record  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)

BASE = {"model": "claude", "max_tokens": 50, "messages": USER}


def post(gateway: str, key: str, content: bytes | str, path: str = "/v1/messages") -> httpx.Response:
    return httpx.post(f"{gateway}{path}", content=content, timeout=30,
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"})


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == error_type
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


# --- each error class of the SDK ---------------------------------------------------------------------------
def test_sdk_error_classes(fake_anthropic, claude_model, build, claude):
    key = build.key()
    client = claude(key)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(model="claude", max_tokens=50, messages=[{"role": "system", "content": "no"}])
    assert bad.value.body["error"] == {"type": "invalid_request_error",
                                       "message": "messages.0.role: Input should be 'user' or 'assistant'"}
    with pytest.raises(anthropic.AuthenticationError) as unknown:
        claude("gw-wrong-key").messages.create(**BASE)
    assert unknown.value.body["error"]["type"] == "authentication_error"
    with pytest.raises(anthropic.AuthenticationError):  # a wrong Bearer token (ANTHROPIC_AUTH_TOKEN)
        claude(None, auth_token="gw-wrong-token").messages.create(**BASE)
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(**{**BASE, "model": "no-such-route"})
    assert missing.value.body["error"]["type"] == "not_found_error"

    other = build.route("other", claude_model)
    with pytest.raises(anthropic.NotFoundError) as denied:  # no enumeration: like a missing route
        claude(build.key("narrow", routes=[other])).messages.create(**BASE)
    assert denied.value.body["error"]["type"] == "not_found_error"

    with pytest.raises(anthropic.RateLimitError) as limited:
        claude(build.key("slow", rpm_limit=0)).messages.create(**BASE)
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    assert fake_anthropic.request_count == 0  # none of these reached the provider
    assert UsageRecord.objects.count() == 0  # nor the ledger


def garbled(obj: dict) -> dict:
    """A provider answering 200 with a Message (or a message_start) of the wrong shape."""
    if obj.get("type") == "message":
        return {**obj, "content": "not a list"}
    return {**obj, "message": "not an object"} if obj.get("type") == "message_start" else obj


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("break_provider, status, error_class, error_type", [
    (lambda f: f.fail(500, times=3), 529, anthropic.OverloadedError, "overloaded_error"),
    (lambda f: f.fail(529, times=3), 529, anthropic.OverloadedError, "overloaded_error"),
    (lambda f: f.fail(429, times=3), 529, anthropic.OverloadedError, "overloaded_error"),
    (lambda f: f.mangle(garbled, times=3), 502, anthropic.InternalServerError, "api_error"),
    (lambda f: f.fail(401), 502, anthropic.InternalServerError, "api_error"),
    (lambda f: f.hang(3), 504, anthropic.InternalServerError, "timeout_error"),
    (lambda f: f.fail(400), 400, anthropic.BadRequestError, "invalid_request_error"),
])
def test_provider_failures_map_to_sdk_classes(fake_anthropic, build, claude, stream, break_provider, status,
                                              error_class, error_type):
    provider = build.provider(fake_anthropic, name="anthropic-slow", kind="anthropic", timeout_s="1")
    build.route("claude", build.model(provider, "claude-sonnet-4-6"))
    break_provider(fake_anthropic)
    client = claude(build.key())
    with pytest.raises(error_class) as raised:
        if stream:
            with client.messages.stream(**BASE) as events:
                events.get_final_message()
        else:
            client.messages.create(**BASE)
    assert raised.value.status_code == status
    assert raised.value.body["type"] == "error" and raised.value.body["error"]["type"] == error_type
    assert raised.value.response.headers.get("x-should-retry") == ("false" if status >= 500 else None)
    record = only_record()
    # the ledger keeps the gateway's own status (503: every target unavailable), whatever the API calls it
    assert (record.status, record.endpoint, record.http_status) == ("error", "messages", 503 if status == 529 else status)


def test_budget_exhausted_is_a_rate_limit_error(fake_anthropic, claude_model, build, claude):
    from decimal import Decimal

    client = claude(build.key("tight", budget_usd=Decimal("0")))
    with pytest.raises(anthropic.RateLimitError) as raised:
        client.messages.create(**BASE)
    assert "budget" in raised.value.body["error"]["message"].lower()


# --- failover before the first byte, errors after it -------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_failing_first_target_fails_over_before_the_first_byte(fake_anthropic, fake_openai, build, claude, stream):
    primary = build.model(build.provider(fake_anthropic, name="anthropic-main", kind="anthropic"), "claude-sonnet-4-6")
    backup = build.model(build.provider(fake_openai, name="openai-backup"), "gpt-4o-mini")
    build.route("claude", primary, backup)
    fake_anthropic.fail(529)
    fake_openai.reply_text = "From the backup."
    client = claude(build.key())
    if stream:
        with client.messages.stream(**BASE) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**BASE)
    assert message.content[0].text == "From the backup." and message.model == "gpt-4o-mini"
    record = only_record()
    assert [a["outcome"] for a in record.attempt_log] == ["unavailable", "ok"]
    assert (record.status, record.provider_name, record.stream) == ("success", "openai-backup", stream)


def test_a_stream_cut_after_the_first_byte_ends_with_an_error_event(fake_anthropic, claude_model, build, claude,
                                                                    gateway):
    fake_anthropic.reply_text = "One two three four five six."
    fake_anthropic.cut_stream(after_chunks=2)
    key = build.key()
    with httpx.stream("POST", f"{gateway}/v1/messages", json={**BASE, "stream": True}, timeout=30,
                      headers={"x-api-key": key, "anthropic-version": "2023-06-01"}) as response:
        assert response.status_code == 200
        raw = response.read().decode()
    blocks = [b for b in raw.split("\n\n") if b]
    name, data = blocks[-1].split("\n", 1)
    assert name == "event: error" and "message_stop" not in raw
    error = json.loads(data.removeprefix("data: "))
    assert error["type"] == "error" and error["error"]["type"] == "api_error"
    assert "interrupted" in error["error"]["message"] and fake_anthropic.api_key not in raw
    record = only_record()
    assert (record.status, record.http_status, record.stream) == ("error", 200, True)
    assert record.completion_tokens > 0 and record.prompt_tokens > 0

    fake_anthropic.cut_stream(after_chunks=2)
    with pytest.raises(anthropic.APIStatusError) as raised:  # the SDK raises the error event
        with claude(key).messages.stream(**BASE) as events:
            events.get_final_message()
    assert raised.value.body["error"]["type"] == "api_error"
    assert wait_for(lambda: UsageRecord.objects.count() == 2)


# --- bad bodies ------------------------------------------------------------------------------------------
def nested(levels: int):
    value: object = 1
    for _ in range(levels):
        value = {"a": value}
    return value


def with_(**changes) -> str:
    return json.dumps({**BASE, **changes})


def user(content) -> str:
    return with_(messages=[{"role": "user", "content": content}])


BAD_BODIES = {
    "not json": b"this is not json",
    "truncated json": b'{"model": "claude", "max_tokens": 5, "messages": [',
    "an array": b"[1, 2]",
    "not utf-8": b'{"model": "cl\xff\xfeaude", "max_tokens": 5, "messages": []}',
    "raw NUL byte": b'{"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "a\x00b"}]}',
    "NUL in the model": with_(model="cla\u0000ude"),
    "no model": json.dumps({"max_tokens": 5, "messages": USER}),
    "model a number": with_(model=5),
    "no max_tokens": json.dumps({"model": "claude", "messages": USER}),
    "max_tokens a string": with_(max_tokens="10"),
    "max_tokens zero": with_(max_tokens=0),
    "max_tokens a bool": with_(max_tokens=True),
    "max_tokens huge": with_(max_tokens=2**40),
    "no messages": json.dumps({"model": "claude", "max_tokens": 5}),
    "messages empty": with_(messages=[]),
    "messages a string": with_(messages="hello"),
    "a system role": with_(messages=[{"role": "system", "content": "x"}]),
    "role a list": with_(messages=[{"role": ["user"], "content": "x"}]),
    "no content": with_(messages=[{"role": "user"}]),
    "content a number": user(5),
    "text missing": user([{"type": "text"}]),
    "text a number": user([{"type": "text", "text": 5}]),
    "block not an object": user(["hello"]),
    "block without type": user([{"text": "hello"}]),
    "image source a string": user([{"type": "image", "source": "http://x/cat.png"}]),
    "image base64 without data": user([{"type": "image", "source": {"type": "base64", "media_type": "image/png"}}]),
    "tool_use from the user": user([{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]),
    "tool_result without id": user([{"type": "tool_result", "content": "x"}]),
    "tool_result content a number": user([{"type": "tool_result", "tool_use_id": "t1", "content": 5}]),
    "tool_use input a string": with_(messages=[*USER, {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "f", "input": "{}"}]}]),
    "thinking without signature": with_(messages=[*USER, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hm"}]}]),
    "system a number": with_(system=5),
    "system block an image": with_(system=[{"type": "image", "source": {"type": "url", "url": "http://x"}}]),
    "tools not a list": with_(tools={"name": "f"}),
    "tool without name": with_(tools=[{"input_schema": {"type": "object"}}]),
    "tool without input_schema": with_(tools=[{"name": "f"}]),
    "tool_choice unknown": with_(tool_choice={"type": "sometimes"}),
    "tool_choice tool without name": with_(tool_choice={"type": "tool"}),
    "temperature above 1": with_(temperature=1.5),
    "top_p a string": with_(top_p="high"),
    "top_k negative": with_(top_k=-1),
    "stop_sequences a string": with_(stop_sequences="END"),
    "stream a string": with_(stream="yes"),
    "metadata a list": with_(metadata=[]),
    "user_id a number": with_(metadata={"user_id": 5}),
    "thinking without budget": with_(thinking={"type": "enabled"}),
    "nested too deeply": with_(metadata=nested(MAX_DEPTH)),
    "deeper than the parser takes": b'{"model": "claude", "max_tokens": 5, "messages": [' + b"[" * 2000 + b"]" * 2000 + b"]}",
}


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_bodies_are_anthropic_400s(fake_anthropic, claude_model, build, gateway, body, path):
    response = post(gateway, build.key(), body, path)
    if response.status_code == 200:  # count_tokens takes no max_tokens: those bodies are fine there
        assert path.endswith("count_tokens")
        return
    assert_anthropic_error(response, 400, "invalid_request_error")
    assert fake_anthropic.request_count == 0
    assert UsageRecord.objects.count() == 0


def test_max_tokens_problems_are_only_messages_problems(claude_model, build, gateway):
    key = build.key()
    for name in ("no max_tokens", "max_tokens a string", "max_tokens zero", "max_tokens huge"):
        assert post(gateway, key, BAD_BODIES[name], "/v1/messages/count_tokens").status_code == 200


def test_the_400_names_the_field(claude_model, build, gateway):
    body = assert_anthropic_error(post(gateway, build.key(), BAD_BODIES["text a number"]), 400, "invalid_request_error")
    assert body["error"]["message"] == "messages.0.content.0.text: Input should be a valid string"
    body = assert_anthropic_error(post(gateway, build.key(), BAD_BODIES["no max_tokens"]), 400, "invalid_request_error")
    assert body["error"]["message"] == "max_tokens: Field required"


def test_a_body_over_the_limit_is_request_too_large(claude_model, build, gateway, settings):
    settings.GATEWAY_MAX_BODY_BYTES = 10_000
    huge = with_(messages=[{"role": "user", "content": "word " * 5000}])
    assert_anthropic_error(post(gateway, build.key(), huge), 413, "request_too_large")
    with pytest.raises(anthropic.APIStatusError) as raised:
        anthropic.Anthropic(base_url=gateway, api_key=build.key(), max_retries=0).messages.create(
            model="claude", max_tokens=5, messages=[{"role": "user", "content": "word " * 5000}])
    assert raised.value.status_code == 413 and raised.value.body["error"]["type"] == "request_too_large"


def test_wrong_method_and_unknown_route_in_anthropic_format(claude_model, build, gateway):
    key = build.key()
    wrong = httpx.get(f"{gateway}/v1/messages", headers={"x-api-key": key})
    assert_anthropic_error(wrong, 405, "invalid_request_error")
    assert wrong.headers["allow"] == "POST"
    unknown = post(gateway, key, with_(model="nope"), "/v1/messages/count_tokens")
    assert_anthropic_error(unknown, 404, "not_found_error")
    no_key = httpx.post(f"{gateway}/v1/messages", content=with_(), headers={"anthropic-version": "2023-06-01"})
    assert_anthropic_error(no_key, 401, "authentication_error")
    models = httpx.get(f"{gateway}/v1/models", headers={"x-api-key": "gw-wrong", "anthropic-version": "2023-06-01"})
    assert_anthropic_error(models, 401, "authentication_error")


def test_an_unexpected_failure_is_an_api_error_not_a_traceback(fake_anthropic, claude_model, build, gateway,
                                                              monkeypatch):
    from routing.inbound import anthropic as inbound

    def broken(call, result):
        raise RuntimeError("boom")

    monkeypatch.setattr(inbound, "message_body", broken)
    response = post(gateway, build.key(), with_())
    body = assert_anthropic_error(response, 500, "api_error")
    assert "boom" not in response.text and "request" in body["error"]["message"]


def test_a_route_whose_models_cannot_serve_the_request_is_a_400(fake_anthropic, fake_openai, build, claude):
    """Images need vision, tools (offered, or in the history) need tools; thinking is not
    a need (dropped for a target that cannot think)."""
    plain = build.model(build.provider(fake_openai, name="text-only"), "gpt-4o-mini", capabilities=["chat", "streaming"])
    build.route("plain", plain)
    client = claude(build.key())
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model="plain", max_tokens=20, messages=[{"role": "user", "content": [image]}])
    assert "vision" in raised.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="plain", max_tokens=20, messages=USER,
                               tools=[{"name": "f", "input_schema": {"type": "object"}}])
    assert fake_openai.request_count == 0
    thought = client.messages.create(model="plain", max_tokens=4096, messages=USER,
                                     thinking={"type": "enabled", "budget_tokens": 2048})
    assert thought.content[0].type == "text"
