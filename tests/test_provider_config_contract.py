"""The issue's configuration contract, as an operator writes it: four providers of the new
kinds imported from YAML (gemini, cohere, azure_openai, bedrock; options as documented),
one route each, and the official OpenAI SDK through each of them, JSON and streamed.
Every fake records what it received: the path, the auth header and (Bedrock) a SigV4
signature the fake verifies with botocore's signer."""

from __future__ import annotations

import pytest

from billing.models import UsageRecord
from routing.config import load_config_text
from routing.config.importer import import_config
from tests.conftest import wait_for
from tests.fakes.azure import FakeAzureOpenAI
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.cohere import FakeCohere
from tests.fakes.gemini import FakeGemini

pytestmark = pytest.mark.django_db(transaction=True)

CONTRACT = """
providers:
  - {{name: g,  kind: gemini,       base_url: {gemini}, api_key: GEMINI-KEY,
      models: [{{name: flash, upstream_id: gemini-2.5-flash, input_price_per_mtok: 0.3, output_price_per_mtok: 2.5}}]}}
  - {{name: co, kind: cohere,       base_url: {cohere}, api_key: COHERE-KEY,
      models: [{{name: command, upstream_id: command-a-03-2025, input_price_per_mtok: 2.5, output_price_per_mtok: 10}}]}}
  - {{name: az, kind: azure_openai, base_url: {azure}, api_key: AZURE-KEY, options: {{api_version: "2024-10-21"}},
      models: [{{name: gpt, upstream_id: my-gpt4o-deployment, input_price_per_mtok: 2.5, output_price_per_mtok: 10}}]}}
  - {{name: br, kind: bedrock,      base_url: {bedrock}, api_key: "AKIDFAKEBEDROCK00001:fake/secret+key0000000000000000",
      options: {{region: us-east-1}},
      models: [{{name: claude, upstream_id: anthropic.claude-3-5-sonnet-20240620-v1:0, input_price_per_mtok: 3,
                 output_price_per_mtok: 15}}]}}
routes:
  - {{name: via-gemini,  targets: [{{model: g/flash}}]}}
  - {{name: via-cohere,  targets: [{{model: co/command}}]}}
  - {{name: via-azure,   targets: [{{model: az/gpt}}]}}
  - {{name: via-bedrock, targets: [{{model: br/claude}}]}}
"""


@pytest.fixture(scope="module")
def fakes():
    servers = {
        "gemini": FakeGemini(api_key="GEMINI-KEY"),
        "cohere": FakeCohere(api_key="COHERE-KEY"),
        "azure": FakeAzureOpenAI(api_key="AZURE-KEY"),
        "bedrock": FakeBedrock(),
    }
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture
def client(fakes, build, openai_client):
    for server in fakes.values():
        server.reset()
    import_config(load_config_text(CONTRACT.format(**{name: s.base_url for name, s in fakes.items()})))
    return openai_client(build.key())


def _check_upstream(name: str, fake, stream: bool) -> None:
    request = fake.last_request
    assert request is not None, f"{name}: nothing reached the fake"
    if name == "gemini":
        method = "streamGenerateContent" if stream else "generateContent"
        assert request.path == f"/v1beta/models/gemini-2.5-flash:{method}"
        assert request.headers["x-goog-api-key"] == "GEMINI-KEY"
        assert request.query.get("alt") == ("sse" if stream else None)
    elif name == "cohere":
        assert request.path == "/v2/chat" and request.headers["authorization"] == "Bearer COHERE-KEY"
        assert request.body["model"] == "command-a-03-2025"
    elif name == "azure":
        assert request.path == "/openai/deployments/my-gpt4o-deployment/chat/completions"
        assert request.query["api-version"] == "2024-10-21" and request.headers["api-key"] == "AZURE-KEY"
        assert "authorization" not in request.headers
    else:
        model = "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
        assert request.path == f"/model/{model}/{'converse-stream' if stream else 'converse'}"
        auth = request.headers["authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDFAKEBEDROCK00001/")
        assert "/us-east-1/bedrock/aws4_request" in auth


@pytest.mark.parametrize("name", ["gemini", "cohere", "azure", "bedrock"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_each_contract_provider_answers_through_its_route(fakes, client, name, stream):
    route = f"via-{name}"
    messages = [{"role": "user", "content": "Say hello"}]
    if stream:
        chunks = list(client.chat.completions.create(model=route, messages=messages, stream=True,
                                                     stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
    else:
        answer = client.chat.completions.create(model=route, messages=messages)
        text, usage = answer.choices[0].message.content, answer.usage
    assert text
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    _check_upstream(name, fakes[name], stream)
    assert wait_for(lambda: UsageRecord.objects.filter(route_name=route).exists())
    record = UsageRecord.objects.get(route_name=route)
    assert record.status == "success" and record.cost_usd > 0
    assert (record.prompt_tokens, record.completion_tokens) == (usage.prompt_tokens, usage.completion_tokens)
