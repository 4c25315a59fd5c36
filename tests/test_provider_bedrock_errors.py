"""Bedrock's failures through the gateway: HTTP errors by x-amzn-errortype, a bad SigV4
signature (the fake refuses it with 403 as AWS does), exceptions inside ConverseStream,
corrupt and cut event-stream frames, credentials (secret shapes, the environment),
provider settings (check_config) and model discovery (ListFoundationModels)."""

from __future__ import annotations

import asyncio
import re

import openai
import pytest
from django.core.exceptions import ValidationError

from providers.adapters import ADAPTERS
from providers.catalog import model_info
from providers.http import close_session
from providers.types import ErrorKind, ProviderError
from tests.bedrock_helpers import (  # noqa: F401 - the *_fixture names are fixtures
    MODEL_ID, OPTIONS, only_record,
    bedrock_route_fixture, bedrock_server_fixture, client_fixture, fake_bedrock_fixture,
)
from tests.fakes.bedrock import FakeBedrock

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGES = [{"role": "user", "content": "Say hello to the gateway"}]
THROTTLED = {"x-amzn-ErrorType": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}


@pytest.fixture
def bedrock_then_openai(fake_bedrock, fake_openai, build):
    """Route `chat-default`: Bedrock first, then an OpenAI backup."""

    def make(**provider_kw):
        fake_openai.reply_text = "from openai backup"
        provider_kw.setdefault("options", dict(OPTIONS))
        bedrock = build.model(build.provider(fake_bedrock, name="br", kind="bedrock", timeout_s="2", **provider_kw),
                              "claude-sonnet", upstream_id=MODEL_ID)
        backup = build.model(build.provider(fake_openai, name="backup"))
        build.route("chat-default", bedrock, backup)
        return build.key()

    return make


def _ask(client, stream: bool) -> tuple[str, dict]:
    if stream:
        with client.chat.completions.with_streaming_response.create(
                model="chat-default", messages=MESSAGES, stream=True) as raw:
            return "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices), raw.headers
    raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=MESSAGES)
    return raw.parse().choices[0].message.content, raw.headers


@pytest.mark.parametrize("break_bedrock, provider_kw, status, outcome", [
    (lambda f: f.fail(429), {}, 429, "rate_limited"),
    (lambda f: f.fail(429, body={"message": "Model is not ready for inference."},
                      headers={"x-amzn-ErrorType": "ModelNotReadyException"}), {}, 429, "unavailable"),
    (lambda f: f.fail(503), {}, 503, "unavailable"),
    (lambda f: f.fail(424), {}, 424, "unavailable"),
    (lambda f: f.fail(408), {}, 408, "timeout"),
    (lambda f: None, {"api_key": "AKIDFAKEBEDROCK00001:the-wrong-secret-000000"}, 403, "auth"),
    (lambda f: None, {"api_key": "AKIDUNKNOWN000000000:fake/secret+key0000000000000000"}, 403, "auth"),
    (lambda f: f.fail(400, body={"message": "The provided model identifier is invalid."}), {}, 400, "bad_request"),
], ids=["429-throttling", "429-model-not-ready", "503", "424-model-error", "408-model-timeout",
        "403-bad-signature", "403-unknown-key", "400-validation"])
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_bedrock_errors_are_classified_and_fall_back(bedrock_then_openai, fake_bedrock, fake_openai, openai_client,
                                                       break_bedrock, provider_kw, status, outcome, stream):
    key = bedrock_then_openai(**provider_kw)
    break_bedrock(fake_bedrock)
    client = openai_client(key)
    if outcome == "bad_request":  # the request's own fault: no fallback, the client's 400
        with pytest.raises(openai.APIStatusError) as exc:
            _ask(client, stream)
        assert "model identifier is invalid" in exc.value.response.text
        assert fake_openai.request_count == 0
        record = only_record()
        assert record.status == "error" and record.error_kind == "bad_request"
        return
    text, headers = _ask(client, stream)
    assert text == "from openai backup" and headers["x-gateway-provider"] == "backup"
    assert fake_bedrock.request_count == 1 and fake_openai.request_count == 1
    record = only_record()
    assert record.status == "success" and record.attempts == 2
    assert [(a["outcome"], a["status"]) for a in record.attempt_log] == [(outcome, status), ("ok", None)]


def test_a_bad_signature_reaches_the_client_worded_by_aws_without_the_secret(fake_bedrock, build, openai_client):
    build.route("chat-br", build.model(build.provider(
        fake_bedrock, name="br", kind="bedrock", options=dict(OPTIONS),
        api_key="AKIDFAKEBEDROCK00001:wrong-secret-value-0123456789"), "claude-sonnet", upstream_id=MODEL_ID))
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(build.key()).chat.completions.create(model="chat-br", messages=MESSAGES)
    message = exc.value.response.json()["error"]["message"]
    assert "403" in message and "InvalidSignatureException" in message and "signature we calculated" in message
    assert "wrong-secret-value" not in exc.value.response.text
    assert only_record().error_kind == "auth"


# --- errors inside ConverseStream ---------------------------------------------------------------------------
@pytest.mark.parametrize("exception_type, kind", [
    ("throttlingException", "rate_limited"),
    ("modelStreamErrorException", "unavailable"),
    ("serviceUnavailableException", "unavailable"),
    ("internalServerException", "unavailable"),
])
def test_an_exception_before_the_first_token_falls_back(bedrock_then_openai, fake_bedrock, openai_client,
                                                        exception_type, kind):
    key = bedrock_then_openai()
    fake_bedrock.stream_exception(exception_type, "Something went wrong upstream.", after_chunks=0)
    text, headers = _ask(openai_client(key), stream=True)
    assert text == "from openai backup"
    assert only_record().attempt_log[0]["outcome"] == kind


def test_an_exception_after_the_first_token_ends_the_stream_with_an_error(bedrock_then_openai, fake_bedrock,
                                                                        fake_openai, openai_client):
    key = bedrock_then_openai()
    fake_bedrock.reply_text = "alpha beta gamma delta"
    fake_bedrock.stream_exception("validationException", "Input is too long for requested model.", after_chunks=2)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in openai_client(key).chat.completions.create(model="chat-default", messages=MESSAGES, stream=True):
            received.append(chunk)
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "alpha beta"
    assert fake_openai.request_count == 0  # no fallback after the first byte
    record = only_record()
    assert record.status == "error" and record.error_kind == "context_length"  # ValidationException's wording


def test_a_stream_cut_before_the_first_token_is_a_bad_response_and_falls_back(bedrock_then_openai, fake_bedrock,
                                                                              openai_client):
    key = bedrock_then_openai()
    fake_bedrock.cut_stream(after_chunks=0)  # messageStart sent, then the connection closes
    text, _ = _ask(openai_client(key), stream=True)
    assert text == "from openai backup"
    assert only_record().attempt_log[0]["outcome"] == "bad_response"


def test_a_frame_with_a_bad_crc_ends_the_stream_as_a_bad_response(bedrock_then_openai, fake_bedrock, fake_openai,
                                                                  openai_client):
    key = bedrock_then_openai()
    fake_bedrock.malformed()  # a corrupt frame after the first text delta
    received = []
    with pytest.raises(openai.APIError, match="CRC"):
        for chunk in openai_client(key).chat.completions.create(model="chat-default", messages=MESSAGES, stream=True):
            received.append(chunk)
    # the delta before the broken frame arrived, however the bytes were split into reads
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "Hello"
    assert fake_openai.request_count == 0
    record = only_record()
    assert record.status == "error" and record.error_kind == "bad_response"


def test_a_malformed_converse_answer_is_a_bad_response(bedrock_then_openai, fake_bedrock, openai_client):
    key = bedrock_then_openai()
    fake_bedrock.mangle(lambda obj: {**obj, "output": {"message": {"role": "assistant", "content": "not a list"}}})
    text, _ = _ask(openai_client(key), stream=False)
    assert text == "from openai backup"
    assert only_record().attempt_log[0]["outcome"] == "bad_response"


# --- credentials --------------------------------------------------------------------------------------------
def test_an_empty_key_signs_with_the_environments_credentials(fake_bedrock, build, openai_client, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", fake_bedrock.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", fake_bedrock.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    build.route("chat-br", build.model(build.provider(fake_bedrock, name="br", kind="bedrock", options=dict(OPTIONS),
                                                      api_key=""), "claude-sonnet", upstream_id=MODEL_ID))
    answer = openai_client(build.key()).chat.completions.create(model="chat-br", messages=MESSAGES)
    assert answer.choices[0].message.content == "Hello from fake-bedrock."


def test_a_session_token_in_the_key_is_sent_and_signed(build, openai_client):
    with FakeBedrock(session_token="FwoGZXIvYXdzEFAKE-session-token") as fake:
        build.route("chat-br", build.model(build.provider(fake, name="br", kind="bedrock", options=dict(OPTIONS)),
                                           "claude-sonnet", upstream_id=MODEL_ID))
        answer = openai_client(build.key()).chat.completions.create(model="chat-br", messages=MESSAGES)
        assert answer.choices[0].message.content == "Hello from fake-bedrock."
        sent = fake.last_request.headers
        assert sent["x-amz-security-token"] == "FwoGZXIvYXdzEFAKE-session-token"
        assert "x-amz-security-token" in sent["authorization"]  # a signed header
    assert fake.errors == []


def test_a_key_of_the_wrong_shape_fails_as_auth_before_anything_is_sent(fake_bedrock, build, openai_client):
    build.route("chat-br", build.model(build.provider(fake_bedrock, name="br", kind="bedrock", options=dict(OPTIONS),
                                                      api_key="just-one-part-000000"), "claude-sonnet"))
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(build.key()).chat.completions.create(model="chat-br", messages=MESSAGES)
    assert "ACCESS_KEY_ID:SECRET_ACCESS_KEY" in exc.value.response.json()["error"]["message"]
    assert fake_bedrock.request_count == 0 and only_record().error_kind == "auth"


# --- settings and discovery ---------------------------------------------------------------------------------
@pytest.mark.parametrize("options, error", [
    ({}, '"region" is required'),
    ({"region": "US East"}, '"region" is required'),
    ({"region": "us-east-1", "control_url": "bedrock.example"}, '"control_url" must be an http(s) URL'),
])
def test_provider_settings_are_checked_when_saved(build, options, error):
    from providers.models import Provider

    provider = Provider(name="br", kind="bedrock", base_url="", api_key="AKID:SECRET", options=options)
    with pytest.raises(ValidationError, match=re.escape(error)):
        provider.full_clean()


def test_a_region_is_enough_for_the_public_endpoint(build):
    from providers.models import Provider

    Provider(name="br", kind="bedrock", base_url="", api_key="", options={"region": "eu-central-1"}).full_clean()
    adapter = ADAPTERS["bedrock"]
    assert adapter.check_config(None, "", {"region": "us-gov-west-1"}) == {}


def test_list_models_asks_the_control_plane_signed_and_keeps_text_models(fake_bedrock, build):
    provider = build.provider(fake_bedrock, name="br", kind="bedrock",
                              options={**OPTIONS, "control_url": fake_bedrock.url})
    info = model_info(build.model(provider, "claude-sonnet", upstream_id=MODEL_ID)).provider

    async def discover():
        try:
            return await ADAPTERS["bedrock"].list_models(info, 5)
        finally:
            await close_session()

    found = asyncio.run(discover())
    assert [m.upstream_id for m in found] == list(fake_bedrock.default_models)  # not the embedding model
    assert found[0].capabilities == frozenset({"chat", "streaming", "vision"})
    assert found[0].display_name == "Anthropic claude-3-5-sonnet-20240620-v1:0"
    assert fake_bedrock.last_request.path == "/foundation-models"


def test_list_models_with_a_bad_secret_is_an_auth_error(fake_bedrock, build):
    provider = build.provider(fake_bedrock, name="br", kind="bedrock", api_key="AKIDFAKEBEDROCK00001:nope-0000000000",
                              options={**OPTIONS, "control_url": fake_bedrock.url})
    info = model_info(build.model(provider, "claude-sonnet")).provider

    async def discover():
        try:
            return await ADAPTERS["bedrock"].list_models(info, 5)
        finally:
            await close_session()

    with pytest.raises(ProviderError) as exc:
        asyncio.run(discover())
    assert exc.value.kind == ErrorKind.AUTH and exc.value.status == 403
