"""The fake Azure OpenAI server (tests/fakes/azure.py) is what the official SDK's
AzureOpenAI client sends to and accepts: chat, a stream (with Azure's filter-only first
chunk), tool calls, embeddings, the content filter's 400 and Azure's auth header."""

from __future__ import annotations

import openai
import pytest

from tests.fakes.azure import FakeAzureOpenAI
from tests.openai_dialect_helpers import WEATHER_TOOL

KEY = "azure-sdk-key-00000000000000000000"


@pytest.fixture(scope="module")
def fake():
    with FakeAzureOpenAI(api_key=KEY, known_models={"chat-4o", "embed-3"}) as server:
        yield server


@pytest.fixture
def sdk(fake):
    fake.reset()
    return openai.AzureOpenAI(azure_endpoint=fake.base_url, api_version="2024-10-21", api_key=KEY, max_retries=0)


def test_sdk_chat_goes_to_the_deployment_with_api_key_and_version(fake, sdk):
    completion = sdk.chat.completions.create(model="chat-4o", messages=[{"role": "user", "content": "Hi"}])
    assert completion.choices[0].message.content == "Hello from fake-azure."
    assert completion.model == "gpt-4o-2024-11-20"  # the deployed model, not the deployment
    assert completion.model_extra["prompt_filter_results"][0]["prompt_index"] == 0
    request = fake.last_request
    assert request.path == "/openai/deployments/chat-4o/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == KEY and "authorization" not in request.headers


def test_sdk_stream_reads_the_filter_only_first_chunk_and_usage(fake, sdk):
    chunks = list(sdk.chat.completions.create(model="chat-4o", messages=[{"role": "user", "content": "Hi"}],
                                              stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices == [] and chunks[0].model_extra["prompt_filter_results"]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from fake-azure."
    assert chunks[-1].usage.completion_tokens == 3  # one token per word


def test_sdk_tool_calls_streamed_and_not(fake, sdk):
    question = [{"role": "user", "content": "Weather in Paris and London?"}]
    message = sdk.chat.completions.create(model="chat-4o", messages=question, tools=[WEATHER_TOOL]).choices[0].message
    assert [c.function.arguments for c in message.tool_calls] == ['{"city": "Paris"}', '{"city": "London"}']
    chunks = list(sdk.chat.completions.create(model="chat-4o", messages=question, tools=[WEATHER_TOOL], stream=True))
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or ()]
    assert {d.index for d in deltas} == {0, 1}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_sdk_embeddings(fake, sdk):
    fake.embedding_size = 8
    try:
        result = sdk.embeddings.create(model="embed-3", input=["one", "two"])
    finally:
        fake.embedding_size = None
    assert [len(item.embedding) for item in result.data] == [8, 8]
    assert fake.last_request.path == "/openai/deployments/embed-3/embeddings"


def test_sdk_sees_content_filter_unknown_deployment_and_bad_key(fake, sdk):
    fake.filter_prompt()
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.chat.completions.create(model="chat-4o", messages=[{"role": "user", "content": "Hi"}])
    assert exc.value.code == "content_filter"
    assert exc.value.body["innererror"]["content_filter_result"]["violence"]["filtered"] is True
    with pytest.raises(openai.NotFoundError) as exc:
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "Hi"}])
    assert exc.value.code == "DeploymentNotFound"
    wrong = openai.AzureOpenAI(azure_endpoint=fake.base_url, api_version="2024-10-21", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="chat-4o", messages=[{"role": "user", "content": "Hi"}])


def test_sdk_fields_newer_than_the_api_version_are_refused(fake):
    old = openai.AzureOpenAI(azure_endpoint=fake.base_url, api_version="2024-06-01", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as exc:
        old.chat.completions.create(model="chat-4o", messages=[{"role": "user", "content": "Hi"}], stream=True,
                                    stream_options={"include_usage": True})
    assert "stream_options" in exc.value.message
