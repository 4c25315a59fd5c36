"""The `custom` kind: an OpenAI-compatible API whose key goes in a header of the
provider's choosing (options.auth_header, options.auth_scheme), with extra headers;
checked when the provider is saved. Other kinds' headers are unchanged."""

from __future__ import annotations

import json

import pytest

from tests.fakes.openai_tools import ToolCallingOpenAI
from tests.openai_dialect_helpers import IMAGE, WEATHER_TOOL, only_record, streamed, streamed_calls

pytestmark = pytest.mark.django_db(transaction=True)

HI = [{"role": "user", "content": "Say hello"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris and Tokyo?"}]
KEY = "custom-upstream-key-0000000000000"


@pytest.fixture(scope="module")
def _open_server():
    with ToolCallingOpenAI() as fake:  # no key check of its own: the tests read the headers it received
        yield fake


@pytest.fixture
def fake(_open_server):
    _open_server.reset()
    yield _open_server
    _open_server.cached_tokens = 0
    _open_server.embedding_size = None


@pytest.fixture
def custom(fake, build, openai_client):
    def make(options=None, *, api_key=KEY, **model_kw):
        provider = build.provider(fake, name="custom", kind="custom", api_key=api_key, options=options or {})
        build.route("chat-custom", build.model(provider, "served-model", **model_kw))
        return openai_client(build.key())
    return make


@pytest.mark.parametrize("options, header, value", [
    ({}, "authorization", f"Bearer {KEY}"),
    ({"auth_scheme": "Token"}, "authorization", f"Token {KEY}"),
    ({"auth_header": "X-API-Key", "auth_scheme": ""}, "x-api-key", KEY),
    ({"auth_header": "api-key", "auth_scheme": "Key"}, "api-key", f"Key {KEY}"),
], ids=["default-bearer", "token-scheme", "raw-key-header", "scheme-in-own-header"])
def test_the_key_goes_in_the_configured_header(fake, custom, options, header, value):
    custom(options).chat.completions.create(model="chat-custom", messages=HI)
    headers = fake.last_request.headers
    assert headers[header] == value
    if header != "authorization":
        assert "authorization" not in headers


def test_extra_headers_are_sent_and_the_key_header_wins(fake, custom):
    client = custom({"auth_header": "x-api-key", "auth_scheme": "",
                     "headers": {"X-Tenant": "acme", "x-api-key": "not-the-key"}})
    client.chat.completions.create(model="chat-custom", messages=HI)
    headers = fake.last_request.headers
    assert headers["x-tenant"] == "acme" and headers["x-api-key"] == KEY


def test_without_a_key_no_auth_header_is_sent(fake, custom):
    custom(api_key="").chat.completions.create(model="chat-custom", messages=HI)
    assert "authorization" not in fake.last_request.headers


@pytest.mark.proves("custom", "chat", "cached_tokens")
def test_chat_and_cached_tokens(fake, custom):
    fake.cached_tokens = 2
    completion = custom().chat.completions.create(model="chat-custom", messages=HI)
    assert completion.choices[0].message.content == "Hello from fake-openai."
    assert fake.last_request.path == "/v1/chat/completions"
    assert only_record().cache_read_tokens == 2


@pytest.mark.proves("custom", "stream", "stream_usage")
def test_stream_with_usage(fake, custom):
    chunks, text = streamed(custom({"auth_scheme": "Token"}).chat.completions.create(
        model="chat-custom", messages=HI, stream=True, stream_options={"include_usage": True}))
    assert text == "Hello from fake-openai." and chunks[-1].usage.completion_tokens == 3
    assert fake.last_request.headers["authorization"] == f"Token {KEY}"


@pytest.mark.proves("custom", "tools", "parallel_tools", "tool_deltas")
def test_tool_calls_whole_and_streamed(custom):
    client = custom()
    message = client.chat.completions.create(model="chat-custom", messages=WEATHER, tools=[WEATHER_TOOL]).choices[0].message
    assert [json.loads(c.function.arguments) for c in message.tool_calls] == [{"city": "Paris"}, {"city": "Tokyo"}]
    chunks, _ = streamed(client.chat.completions.create(model="chat-custom", messages=WEATHER, tools=[WEATHER_TOOL],
                                                        stream=True))
    assert [json.loads(c["arguments"]) for c in streamed_calls(chunks)] == [{"city": "Paris"}, {"city": "Tokyo"}]


@pytest.mark.proves("custom", "vision", "json_mode")
def test_images_and_response_format_pass_through(fake, custom):
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}]
    custom().chat.completions.create(model="chat-custom", messages=messages, response_format={"type": "json_object"})
    body = fake.last_request.body
    assert body["messages"] == messages and body["response_format"] == {"type": "json_object"}


@pytest.mark.proves("custom", "embeddings")
def test_embeddings_carry_the_custom_header(fake, custom):
    fake.embedding_size = 4
    result = custom({"auth_header": "x-api-key", "auth_scheme": ""}, capabilities=["embeddings"]).embeddings.create(
        model="chat-custom", input=["one", "two"])
    assert [len(item.embedding) for item in result.data] == [4, 4]
    assert fake.last_request.path == "/v1/embeddings" and fake.last_request.headers["x-api-key"] == KEY


@pytest.mark.parametrize("options, error", [
    ({"auth_header": "X Key"}, '"auth_header" must be an HTTP header name'),
    ({"auth_header": "x-key\r\nInjected: 1"}, '"auth_header" must be an HTTP header name'),
    ({"auth_header": ""}, '"auth_header" must be an HTTP header name'),
    ({"auth_header": 7}, '"auth_header" must be an HTTP header name'),
    ({"auth_scheme": "Bearer token"}, '"auth_scheme" must be one word'),
    ({"auth_scheme": None}, '"auth_scheme" must be one word'),
    ({"headers": {"Bad Name": "x"}}, "is not an HTTP header name"),
    ({"headers": {"X-Ok": "a\nb"}}, "without line breaks"),
])
def test_check_config_refuses_bad_header_settings(options, error):
    from django.core.exceptions import ValidationError

    from providers.models import Provider

    with pytest.raises(ValidationError) as exc:
        Provider(name="c", kind="custom", base_url="https://llm.example.com/v1", options=options).clean()
    assert error in str(exc.value)


def test_check_config_accepts_good_settings_and_wants_a_base_url():
    from django.core.exceptions import ValidationError

    from providers.models import Provider

    Provider(name="c", kind="custom", base_url="https://llm.example.com/v1",
             options={"auth_header": "X-API-Key", "auth_scheme": "", "headers": {"X-Org": "o-1"}}).clean()
    with pytest.raises(ValidationError):
        Provider(name="c", kind="custom", base_url="", options={}).clean()


def test_other_kinds_keep_their_headers():
    from providers.adapters.base import provider_headers
    from providers.catalog import ProviderInfo
    from providers.kinds import KINDS

    def info(kind, options):
        return ProviderInfo(1, "p", kind, KINDS[kind], "http://x", "k-1", None, 5.0, options)

    # options meant for the custom kind change nothing for the others
    options = {"auth_header": "x-other", "auth_scheme": "Token"}
    assert provider_headers(info("openai", options))["authorization"] == "Bearer k-1"
    assert "x-other" not in provider_headers(info("openai", options))
    assert provider_headers(info("anthropic", {}), "x-api-key")["x-api-key"] == "k-1"
