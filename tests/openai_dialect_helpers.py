"""Fixtures and helpers of the OpenAI-dialect provider tests (Azure OpenAI, Hugging
Face TGI, custom, Perplexity, xAI): one fake server per session, reset per test.

A test module imports the `*_fixture` functions it uses (the fixtures are named
without the suffix, so the import does not shadow the test arguments)."""

from __future__ import annotations


import pytest

from tests.conftest import _fresh
from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.huggingface import FakeTGI
from tests.fakes.openai_tools import ToolCallingOpenAI
from tests.sdk_helpers import only_record, streamed  # noqa: F401 - re-exported to this module's users

AZURE_KEY = "azure-upstream-key-0000000000000000"
HF_TOKEN = "hf_upstream_token_000000000000000000"

WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "description": "Current weather for a city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAf"
                                                  "FcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="}}


@pytest.fixture(scope="session", name="_azure_server")
def _azure_server_fixture():
    with FakeAzureOpenAI(api_key=AZURE_KEY) as fake:
        yield fake


@pytest.fixture(scope="session", name="_tgi_server")
def _tgi_server_fixture():
    with FakeTGI(api_key=HF_TOKEN) as fake:
        yield fake


@pytest.fixture(scope="session", name="_compatible_server")
def _compatible_server_fixture():
    with ToolCallingOpenAI(api_key="sk-compatible-upstream-000000") as fake:
        yield fake


def _fresh_with_cache(fake):
    cached = fake.cached_tokens
    yield from _fresh(fake)
    fake.cached_tokens = cached


@pytest.fixture(name="fake_azure")
def fake_azure_fixture(_azure_server):
    yield from _fresh_with_cache(_azure_server)


@pytest.fixture(name="fake_tgi")
def fake_tgi_fixture(_tgi_server):
    yield from _fresh_with_cache(_tgi_server)


@pytest.fixture(name="fake_compatible")
def fake_compatible_fixture(_compatible_server):
    """An OpenAI-compatible server (Perplexity, xAI and custom kinds point at it)."""
    yield from _fresh_with_cache(_compatible_server)


def streamed_calls(chunks) -> list[dict]:
    """Tool calls assembled from streamed deltas, by index."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or ():
                slot = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                slot["id"] = slot["id"] or delta.id
                if delta.function is not None:
                    slot["name"] += delta.function.name or ""
                    slot["arguments"] += delta.function.arguments or ""
    return [calls[i] for i in sorted(calls)]
