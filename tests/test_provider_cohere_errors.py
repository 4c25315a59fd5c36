"""Cohere's failures through the gateway: each error status, a broken answer and a
generation that fails (finish_reason ERROR, also mid-stream) classified so the route
falls back, the breaker counts what is about the provider, and the client is told
what a request of its own did wrong."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.cohere_helpers import COHERE_KEY, MESSAGES, MODEL, only_record, streamed

pytestmark = pytest.mark.django_db(transaction=True)
pytest_plugins = ("tests.cohere_fixtures",)


@pytest.fixture
def cohere_then_openai(fake_cohere, fake_openai, build):
    """Route `chat-default`: Cohere first, then an OpenAI backup."""

    def make(**provider_kw):
        fake_openai.reply_text = "from openai backup"
        first = build.model(build.provider(fake_cohere, name="co", kind="cohere", timeout_s="2", **provider_kw), MODEL)
        backup = build.model(build.provider(fake_openai, name="backup"))
        build.route("chat-default", first, backup)
        return build.key()

    return make


def _unknown_model(fake):
    fake.known_models = {"command-r7b-12-2024"}


@pytest.mark.parametrize("break_cohere, provider_kw, status, outcome", [
    (lambda f: f.fail(429, headers={"retry-after": "0"}), {}, 429, "rate_limited"),
    (lambda f: None, {"api_key": "co-wrong-key-000000"}, 401, "auth"),
    (lambda f: f.fail(402), {}, 402, "auth"),
    (_unknown_model, {}, 404, "not_found"),
    (lambda f: f.fail(499), {}, 499, "unavailable"),
    (lambda f: f.fail(500), {}, 500, "unavailable"),
    (lambda f: f.fail(503), {}, 503, "unavailable"),
    (lambda f: f.stream_error("internal error", after_chunks=0), {}, None, "unavailable"),
], ids=["429", "401", "402", "404-unknown-model", "499", "500", "503", "finish_reason-ERROR"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_errors_fall_back_and_are_logged_with_their_kind(
    cohere_then_openai, fake_cohere, fake_openai, openai_client, break_cohere, provider_kw, status, outcome, stream
):
    key = cohere_then_openai(**provider_kw)
    break_cohere(fake_cohere)
    client = openai_client(key)
    if stream:
        with client.chat.completions.with_streaming_response.create(model="chat-default", messages=MESSAGES,
                                                                    stream=True) as raw:
            headers = raw.headers
            _, text = streamed(raw.parse())
    else:
        raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=MESSAGES)
        headers, text = raw.headers, raw.parse().choices[0].message.content
    assert text == "from openai backup" and headers["x-gateway-provider"] == "backup"
    assert fake_cohere.request_count == 1 and fake_openai.request_count == 1
    record = only_record()
    assert record.status == "success" and record.attempts == 2
    assert [(a["target"], a["outcome"], a["status"]) for a in record.attempt_log] == [
        (f"co/{MODEL}", outcome, status), ("backup/gpt-4o-mini", "ok", None)]


def test_a_malformed_answer_is_a_bad_response_and_falls_back(cohere_then_openai, fake_cohere, openai_client):
    key = cohere_then_openai()
    fake_cohere.malformed()  # a stream's garbage comes after its first text: see the cut-stream test below
    completion = openai_client(key).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert completion.choices[0].message.content == "from openai backup"
    assert [a["outcome"] for a in only_record().attempt_log] == ["bad_response", "ok"]


def test_a_rejected_request_is_the_clients_400_without_fallback(cohere_then_openai, fake_cohere, fake_openai,
                                                                openai_client):
    key = cohere_then_openai()
    fake_cohere.fail(400, body={"id": "e1", "message": "invalid request: message must be at least 1 token long"})
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client(key).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert refused.value.body["code"] == "upstream_bad_request"
    assert "at least 1 token long" in refused.value.body["message"]
    assert fake_openai.request_count == 0
    assert only_record().error_kind == "bad_request"


def test_too_many_tokens_is_context_length(fake_cohere, build, openai_client):
    build.route("chat-cohere", build.model(build.provider(fake_cohere, name="co", kind="cohere"), MODEL))
    fake_cohere.fail(400, body={"id": "e2", "message": "too many tokens: size limit exceeded by 1021 tokens. "
                                                       "Try using shorter or fewer inputs."})
    with pytest.raises(openai.BadRequestError) as refused:
        openai_client(build.key()).chat.completions.create(model="chat-cohere", messages=MESSAGES)
    assert refused.value.body["code"] == "context_length_exceeded"
    assert only_record().error_kind == "context_length"


def test_an_error_message_reaches_the_client_without_the_key(fake_cohere, build, openai_client):
    build.route("chat-cohere", build.model(
        build.provider(fake_cohere, name="co", kind="cohere", api_key="co-wrong-key-0123456789"), MODEL))
    with pytest.raises(openai.APIStatusError) as failed:
        openai_client(build.key()).chat.completions.create(model="chat-cohere", messages=MESSAGES)
    message = failed.value.response.json()["error"]["message"]
    assert "co" in message and "401" in message and "invalid api token" in message
    assert "co-wrong-key" not in failed.value.response.text and COHERE_KEY not in failed.value.response.text
    assert only_record().error_kind == "auth"


def test_a_generation_failing_after_output_ends_the_stream_with_an_error_event(fake_cohere, build, gateway):
    build.route("chat-cohere", build.model(build.provider(fake_cohere, name="co", kind="cohere"), MODEL))
    fake_cohere.reply_text = "one two three four"
    fake_cohere.stream_error("internal error, please retry", after_chunks=2)
    body = {"model": "chat-cohere", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", f"{gateway}/v1/chat/completions", json=body, timeout=30,
                      headers={"authorization": f"Bearer {build.key()}"}) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert '"content":"one"' in lines[1] and '"content":" two"' in lines[2]
    assert "upstream_unavailable" in lines[-1] and "generation ended with ERROR" in lines[-1]
    assert "internal error, please retry" in lines[-1]
    record = only_record()
    assert (record.status, record.error_kind) == ("error", "unavailable")


def test_a_stream_cut_before_message_end_is_a_bad_response(fake_cohere, build, openai_client):
    build.route("chat-cohere", build.model(build.provider(fake_cohere, name="co", kind="cohere"), MODEL))
    fake_cohere.cut_stream(after_chunks=0)
    with pytest.raises(openai.APIStatusError) as failed:
        list(openai_client(build.key()).chat.completions.create(model="chat-cohere", messages=MESSAGES, stream=True))
    assert failed.value.status_code == 502
    assert only_record().error_kind == "bad_response"


def _without_usage(obj):
    obj.pop("usage", None)
    (obj.get("delta") or {}).pop("usage", None)
    return obj


def _absurd_usage(obj):
    usage = obj.get("usage") or (obj.get("delta") or {}).get("usage")
    if usage:
        usage["billed_units"]["input_tokens"] = "many"
    return obj


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_answer_without_usage_is_estimated(fake_cohere, build, openai_client, stream):
    build.route("chat-cohere", build.model(build.provider(fake_cohere, name="co", kind="cohere"), MODEL))
    fake_cohere.mangle(_without_usage)
    client = openai_client(build.key())
    if stream:
        _, text = streamed(client.chat.completions.create(model="chat-cohere", messages=MESSAGES, stream=True))
    else:
        text = client.chat.completions.create(model="chat-cohere", messages=MESSAGES).choices[0].message.content
    assert text == fake_cohere.reply_text
    record = only_record()
    assert record.status == "success" and record.usage_estimated and record.prompt_tokens > 0


def test_usage_that_is_not_a_count_is_a_bad_response(cohere_then_openai, fake_cohere, openai_client):
    key = cohere_then_openai()
    fake_cohere.mangle(_absurd_usage)
    completion = openai_client(key).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert completion.choices[0].message.content == "from openai backup"
    assert [a["outcome"] for a in only_record().attempt_log] == ["bad_response", "ok"]
