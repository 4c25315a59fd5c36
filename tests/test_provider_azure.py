"""A route to Azure OpenAI classic deployments, used through the official OpenAI SDK.

The body is OpenAI's; what the adapter must get right is Azure's URL (the deployment
and the api-version, per provider or per deployment), its `api-key` header, the
fields an older api-version refuses, and Azure's extras in answers: the content
filter's 400 (content policy), finish_reason "content_filter", the filter-only first
chunk of a stream.
"""

from __future__ import annotations

import json

import openai
import pytest

from tests.fakes.azure import content_filter_error
from tests.openai_dialect_helpers import (  # noqa: F401 - the *_fixture imports register fixtures
    AZURE_KEY, IMAGE, WEATHER_TOOL, _azure_server_fixture, _compatible_server_fixture, fake_azure_fixture,
    fake_compatible_fixture, only_record, streamed, streamed_calls,
)

pytestmark = pytest.mark.django_db(transaction=True)

HI = [{"role": "user", "content": "Say hello"}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris and London?"}]


@pytest.fixture
def azure(fake_azure, build):
    """Make route `chat-az` -> deployment `chat-4o` of an azure_openai provider (options overridable)."""

    def make(options=None, *, upstream_id="chat-4o", **provider_kw):
        provider = build.provider(fake_azure, name="az", kind="azure_openai",
                                  options={"api_version": "2024-10-21"} if options is None else options, **provider_kw)
        model = build.model(provider, "gpt-4o", upstream_id=upstream_id, input_price="2.5", output_price="10")
        build.route("chat-az", model)
        return model
    return make


@pytest.fixture
def client(azure, build, openai_client):
    azure()
    return openai_client(build.key())


@pytest.mark.proves("azure_openai", "chat", "cached_tokens")
def test_chat_goes_to_the_deployment_with_api_key_and_version(fake_azure, client):
    fake_azure.cached_tokens = 2
    completion = client.chat.completions.create(model="chat-az", messages=HI, temperature=0.3)
    assert completion.choices[0].message.content == "Hello from fake-azure."
    assert completion.choices[0].finish_reason == "stop"
    request = fake_azure.last_request
    assert request.path == "/openai/deployments/chat-4o/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == AZURE_KEY and "authorization" not in request.headers
    assert request.body == {"model": "chat-4o", "messages": HI, "temperature": 0.3}
    record = only_record()
    assert (record.status, record.cache_read_tokens) == ("success", 2)
    assert record.prompt_tokens == completion.usage.prompt_tokens


@pytest.mark.proves("azure_openai", "stream", "stream_usage")
def test_stream_skips_the_filter_only_first_chunk_and_reports_usage(fake_azure, client):
    chunks, text = streamed(client.chat.completions.create(
        model="chat-az", messages=HI, stream=True, stream_options={"include_usage": True}))
    assert text == "Hello from fake-azure."
    assert all(c.model for c in chunks)  # Azure's first chunk (model "", no choices) did not reach the client
    assert chunks[-1].usage.completion_tokens == 3
    assert fake_azure.last_request.body["stream_options"] == {"include_usage": True}
    assert only_record().completion_tokens == 3


@pytest.mark.proves("azure_openai", "tools", "parallel_tools")
def test_parallel_tool_calls_come_back(fake_azure, client):
    message = client.chat.completions.create(model="chat-az", messages=WEATHER, tools=[WEATHER_TOOL],
                                             tool_choice="auto").choices[0].message
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "London"})]
    assert fake_azure.last_request.body["tools"] == [WEATHER_TOOL]


@pytest.mark.proves("azure_openai", "tool_deltas")
def test_streamed_tool_call_deltas_assemble(client):
    chunks, _ = streamed(client.chat.completions.create(model="chat-az", messages=WEATHER, tools=[WEATHER_TOOL],
                                                        stream=True))
    calls = streamed_calls(chunks)
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "London"})]
    assert all(c["id"].startswith("call_") for c in calls)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.proves("azure_openai", "vision")
def test_an_image_part_reaches_the_deployment(fake_azure, client):
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, IMAGE]}]
    client.chat.completions.create(model="chat-az", messages=messages)
    assert fake_azure.last_request.body["messages"] == messages


@pytest.mark.proves("azure_openai", "json_mode")
def test_response_format_reaches_the_deployment(fake_azure, client):
    schema = {"type": "json_schema", "json_schema": {"name": "greeting", "strict": True, "schema": {
        "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
        "additionalProperties": False}}}
    client.chat.completions.create(model="chat-az", messages=HI, response_format=schema)
    assert fake_azure.last_request.body["response_format"] == schema
    client.chat.completions.create(model="chat-az", messages=HI, response_format={"type": "json_object"})
    assert fake_azure.last_request.body["response_format"] == {"type": "json_object"}


@pytest.mark.proves("azure_openai", "embeddings")
def test_embeddings_go_to_the_deployment(fake_azure, build, openai_client):
    provider = build.provider(fake_azure, name="az-embed", kind="azure_openai", options={"api_version": "2024-10-21"})
    model = build.model(provider, "embed", upstream_id="embed-3", capabilities=["embeddings"])
    build.route("embed-az", model)
    fake_azure.embedding_size = 8
    try:
        result = openai_client(build.key()).embeddings.create(model="embed-az", input=["one", "two three"])
    finally:
        fake_azure.embedding_size = None
    assert [len(item.embedding) for item in result.data] == [8, 8]
    request = fake_azure.last_request
    assert request.path == "/openai/deployments/embed-3/embeddings"
    assert request.query == {"api-version": "2024-10-21"} and request.headers["api-key"] == AZURE_KEY
    assert only_record().prompt_tokens == 3


def test_a_deployment_has_its_own_api_version(fake_azure, azure, build, openai_client):
    azure({"api_version": "2024-10-21", "deployments": {"chat-4o": {"api_version": "2025-04-01-preview"}}})
    openai_client(build.key()).chat.completions.create(model="chat-az", messages=HI)
    assert fake_azure.last_request.query == {"api-version": "2025-04-01-preview"}


def test_fields_an_older_api_version_refuses_are_dropped(fake_azure, azure, build, openai_client):
    azure({"api_version": "2024-06-01"})
    client = openai_client(build.key())
    chunks, text = streamed(client.chat.completions.create(
        model="chat-az", messages=WEATHER, tools=[WEATHER_TOOL], parallel_tool_calls=False, max_completion_tokens=50,
        stream=True, stream_options={"include_usage": True}))
    body = fake_azure.last_request.body
    assert "stream_options" not in body and "parallel_tool_calls" not in body and "max_completion_tokens" not in body
    assert body["tools"] == [WEATHER_TOOL]  # 2024-06-01 has tools
    assert len(streamed_calls(chunks)) == 2
    assert only_record().status == "success"  # usage estimated: that version streams none


def test_content_filter_refusal_is_a_content_policy_error(fake_azure, client):
    fake_azure.filter_prompt("violence")
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="chat-az", messages=HI)
    assert exc.value.code == "content_policy_violation"
    assert "content management policy" in exc.value.message
    record = only_record()
    assert (record.status, record.error_kind) == ("error", "content_policy")


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_filtered_output_ends_with_finish_reason_content_filter(fake_azure, client, stream):
    fake_azure.filter_completion()
    if stream:
        chunks, _ = streamed(client.chat.completions.create(model="chat-az", messages=HI, stream=True))
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    else:
        finish = [client.chat.completions.create(model="chat-az", messages=HI).choices[0].finish_reason]
    assert finish == ["content_filter"]


@pytest.mark.parametrize(
    "break_azure, provider_kw, status, outcome",
    [
        (lambda f: f.fail(429, headers={"retry-after": "0"}), {}, 429, "rate_limited"),
        (lambda f: f.fail(500), {}, 500, "unavailable"),
        (lambda f: None, {"api_key": "azure-wrong-key-00000000000000"}, 401, "auth"),
        (lambda f: None, {"upstream_id": "missing-deployment"}, 404, "not_found"),
    ],
    ids=["429", "500", "401-bad-key", "404-DeploymentNotFound"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_azure_errors_fall_back_with_their_kind(fake_azure, fake_compatible, build, openai_client, break_azure,
                                                provider_kw, status, outcome, stream):
    fake_azure.known_models = {"chat-4o"}
    provider_kw = dict(provider_kw)  # the parameter is shared by both stream cases
    try:
        upstream_id = provider_kw.pop("upstream_id", "chat-4o")
        az = build.provider(fake_azure, name="az", kind="azure_openai", options={"api_version": "2024-10-21"},
                            **provider_kw)
        backup = build.provider(fake_compatible, name="backup")
        fake_compatible.reply_text = "from backup"
        build.route("chat-az", build.model(az, "gpt-4o", upstream_id=upstream_id), build.model(backup, "gpt-4o-mini"))
        break_azure(fake_azure)
        client = openai_client(build.key())
        if stream:
            _, text = streamed(client.chat.completions.create(model="chat-az", messages=HI, stream=True))
        else:
            text = client.chat.completions.create(model="chat-az", messages=HI).choices[0].message.content
    finally:
        fake_azure.known_models = None
    assert text == "from backup"
    record = only_record()
    assert [(a["outcome"], a["status"]) for a in record.attempt_log] == [(outcome, status), ("ok", None)]


def test_429_retry_after_beyond_the_cap_goes_to_the_next_target(fake_azure, fake_compatible, build, openai_client):
    az = build.provider(fake_azure, name="az", kind="azure_openai", options={"api_version": "2024-10-21"})
    backup = build.provider(fake_compatible, name="backup")
    build.route("chat-az", build.model(az, "gpt-4o", upstream_id="chat-4o"), build.model(backup, "gpt-4o-mini"),
                max_attempts=2)
    fake_azure.fail(429, headers={"retry-after": "60"})
    openai_client(build.key()).chat.completions.create(model="chat-az", messages=HI)
    assert fake_azure.request_count == 1  # not retried: Azure asked for 60 s, more than the route's cap


@pytest.mark.parametrize("options, error", [
    ({}, '"api_version" is required'),
    ({"api_version": "latest"}, '"api_version" is required'),
    ({"api_version": "2024-10-21", "deployments": []}, '"deployments" must be an object'),
    ({"api_version": "2024-10-21", "deployments": {"d": {"api_version": "v1"}}}, "is not an API version"),
    ({"api_version": "2024-10-21", "deployments": {"d": {"version": "2024-10-21"}}}, 'only "api_version"'),
])
def test_check_config_refuses_missing_or_ill_formed_versions(options, error):
    from django.core.exceptions import ValidationError

    from providers.models import Provider

    provider = Provider(name="az", kind="azure_openai", base_url="https://r.openai.azure.com", api_key="k",
                        options=options)
    with pytest.raises(ValidationError) as exc:
        provider.clean()
    assert error in str(exc.value)
    Provider(name="az", kind="azure_openai", base_url="https://r.openai.azure.com", api_key="k",
             options={"api_version": "2024-10-21", "deployments": {"d": {"api_version": "2025-04-01-preview"}}}).clean()


def test_a_base_url_ending_in_openai_is_not_doubled(fake_azure, azure, build, openai_client):
    azure(base_url=f"{fake_azure.base_url}/openai")
    openai_client(build.key()).chat.completions.create(model="chat-az", messages=HI)
    assert fake_azure.last_request.path == "/openai/deployments/chat-4o/chat/completions"


def test_content_filter_error_shape_is_azures():
    body = content_filter_error()
    assert body["error"]["code"] == "content_filter" and body["error"]["param"] == "prompt"
