"""A route to Vertex AI (Gemini), used through the official OpenAI SDK.

Vertex takes Gemini's bodies under its own URL and OAuth: these tests check the URL,
the service-account token (a JWT assertion the fake token endpoint verifies with the
credential's public key), its cache, the one retry after a 401, token failures
classified for fallback, and that the Gemini translation holds on Vertex too.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from providers.adapters.vertex import VertexAdapter, public_endpoint
from providers.kinds import KINDS
from tests.fakes.gemini import THINKING_TEXT, thought_signature
from tests.fakes.text import prompt_token_count
from tests.conftest import wait_for
from tests.fakes.vertex import FakeVertex
from tests.gemini_helpers import MESSAGES, PNG, WEATHER_TOOL, fresh, only_record, stream_tool_calls, streamed

pytestmark = pytest.mark.django_db(transaction=True)
FLASH = "gemini-2.5-flash"
OPTIONS = {"project": "test-project", "location": "us-central1"}
PATH = "/v1/projects/test-project/locations/us-central1/publishers/google/models"


@pytest.fixture(scope="session")
def _vertex_server():
    with FakeVertex(project="test-project", location="us-central1") as fake:
        yield fake


@pytest.fixture
def fake_vertex(_vertex_server):
    yield from fresh(_vertex_server)


@pytest.fixture
def credential(fake_vertex) -> str:
    """A new service account per test: the gateway's token cache (by credential) starts empty."""
    return fake_vertex.credential()


@pytest.fixture
def vertex_model(fake_vertex, credential, build):
    provider = build.provider(fake_vertex, name="vertex-main", kind="vertex_ai", api_key=credential, options=OPTIONS)
    model = build.model(provider, FLASH, input_price="0.30", output_price="2.50", cache_read_price_per_mtok=Decimal("0.03"),
                        capabilities=["chat", "streaming", "tools", "vision", "json_mode", "thinking"])
    build.route("chat-vertex", model)
    return model


@pytest.fixture
def client(vertex_model, build, openai_client):
    return openai_client(build.key())


def _calls(fake, method: str = "generateContent", model: str = FLASH) -> list:
    return [r for r in fake.requests if r.path == f"{PATH}/{model}:{method}"]


@pytest.mark.proves("vertex_ai", "chat")
def test_chat_goes_to_the_vertex_url_with_a_service_account_token(fake_vertex, client):
    completion = client.chat.completions.create(model="chat-vertex", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello from fake-gemini."
    expected_prompt = prompt_token_count([MESSAGES[1]], system="Be brief.")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (expected_prompt, 3)
    token, call = fake_vertex.requests
    assert token.path == "/token"
    assert call.path == f"{PATH}/{FLASH}:generateContent"
    assert call.headers["authorization"] == f"Bearer {fake_vertex.issued[0]}"
    assert "x-goog-api-key" not in call.headers
    assert call.body == {"systemInstruction": {"parts": [{"text": "Be brief."}]},
                         "contents": [{"role": "user", "parts": [{"text": "Say hello to the gateway"}]}]}
    (claims,) = fake_vertex.assertions  # the fake verified the RS256 signature with the credential's public key
    assert claims["iss"] == fake_vertex.client_email
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert claims["exp"] - claims["iat"] == 3600
    assert only_record().status == "success"


def test_the_token_is_cached_and_one_exchange_serves_concurrent_requests(fake_vertex, client):
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: client.chat.completions.create(model="chat-vertex", messages=MESSAGES), range(6)))
    assert all(a.choices[0].message.content == "Hello from fake-gemini." for a in answers)
    client.chat.completions.create(model="chat-vertex", messages=MESSAGES)
    assert fake_vertex.token_requests == 1
    assert len(_calls(fake_vertex)) == 7


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_a_401_gets_one_fresh_token_and_one_retry(fake_vertex, client, stream):
    client.chat.completions.create(model="chat-vertex", messages=MESSAGES)
    fake_vertex.revoke_tokens()  # the cached token is now refused (revoked, or expired early)
    before = fake_vertex.request_count
    if stream:
        _, text = streamed(client.chat.completions.create(model="chat-vertex", messages=MESSAGES, stream=True))
    else:
        text = client.chat.completions.create(model="chat-vertex", messages=MESSAGES).choices[0].message.content
    assert text == "Hello from fake-gemini."
    first, second = fake_vertex.issued
    method = "streamGenerateContent" if stream else "generateContent"
    assert [(r.path.rsplit(":", 1)[-1] if r.path != "/token" else "token", r.headers.get("authorization"))
            for r in fake_vertex.requests[before:]] == [
        (method, f"Bearer {first}"), ("token", None), (method, f"Bearer {second}")]
    from billing.models import UsageRecord

    assert wait_for(lambda: UsageRecord.objects.count() == 2)
    # the retry is inside the adapter: one attempt, one record, no failure counted
    assert sorted(UsageRecord.objects.values_list("status", "attempts")) == [("success", 1), ("success", 1)]


@pytest.mark.proves("vertex_ai", "stream", "stream_usage")
def test_stream_with_usage(fake_vertex, client):
    fake_vertex.reply_text = "One two three four."
    chunks, text = streamed(client.chat.completions.create(
        model="chat-vertex", messages=MESSAGES, stream=True, stream_options={"include_usage": True}))
    assert text == "One two three four."
    assert chunks[-1].usage.completion_tokens == 4
    assert _calls(fake_vertex, "streamGenerateContent")[0].query == {"alt": "sse"}
    record = only_record()
    assert (record.stream, record.completion_tokens, record.usage_estimated) == (True, 4, False)


@pytest.mark.proves("vertex_ai", "tools", "parallel_tools", "tool_deltas", "thinking")
def test_tool_calls_and_their_signatures_on_vertex(fake_vertex, client):
    question = [{"role": "user", "content": "What is the weather in Paris and London?"}]
    chunks = list(client.chat.completions.create(model="chat-vertex", messages=question, tools=[WEATHER_TOOL], stream=True))
    calls = stream_tool_calls(chunks)
    assert [json.loads(c["arguments"]) for c in calls] == [{"city": "Paris"}, {"city": "London"}]
    assert calls[1]["extra"] == {"google": {"thought_signature": thought_signature("get_weather", {"city": "London"})}}
    history = [*question, {"role": "assistant", "content": None, "tool_calls": [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]},
         "extra_content": c["extra"]} for c in calls]},
        *({"role": "tool", "tool_call_id": c["id"], "content": "sunny"} for c in calls)]
    final = client.chat.completions.create(model="chat-vertex", messages=history, tools=[WEATHER_TOOL])
    assert final.choices[0].message.content == "Hello from fake-gemini."
    sent = _calls(fake_vertex)[-1].body["contents"][1]["parts"]
    assert [p["thoughtSignature"] for p in sent] == [thought_signature("get_weather", c) for c in ({"city": "Paris"}, {"city": "London"})]


@pytest.mark.proves("vertex_ai", "vision", "json_mode")
def test_images_and_json_mode_on_vertex(fake_vertex, client):
    content = [{"type": "text", "text": "Describe"}, {"type": "image_url", "image_url": {"url": PNG}}]
    completion = client.chat.completions.create(model="chat-vertex", messages=[{"role": "user", "content": content}],
                                                response_format={"type": "json_object"})
    assert json.loads(completion.choices[0].message.content) == {"reply": "Hello from fake-gemini."}
    body = _calls(fake_vertex)[-1].body
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": PNG.split(",", 1)[1]}}
    assert body["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.proves("vertex_ai", "thinking", "cached_tokens")
def test_thoughts_and_cached_tokens_on_vertex(fake_vertex, client):
    fake_vertex.cached_tokens = 5
    completion = client.chat.completions.create(model="chat-vertex", messages=MESSAGES, reasoning_effort="medium")
    assert completion.choices[0].message.model_extra["reasoning_content"] == THINKING_TEXT
    record = only_record()
    assert record.cache_read_tokens == 5
    assert record.completion_tokens == 3 + len(THINKING_TEXT.split())


@pytest.mark.proves("vertex_ai", "embeddings")
def test_embeddings_use_predict(fake_vertex, credential, build, openai_client):
    provider = build.provider(fake_vertex, name="vertex-embed", kind="vertex_ai", api_key=credential, options=OPTIONS)
    build.route("embed", build.model(provider, "text-embedding-005", input_price="0.025", output_price="0",
                                     capabilities=["embeddings"]))
    answer = openai_client(build.key()).embeddings.create(model="embed", input=["first text", "second"], dimensions=8)
    assert [len(d.embedding) for d in answer.data] == [8, 8]
    (call,) = _calls(fake_vertex, "predict", "text-embedding-005")
    assert call.body == {"instances": [{"content": "first text"}, {"content": "second"}], "parameters": {"outputDimensionality": 8}}
    record = only_record()
    assert (record.prompt_tokens, record.usage_estimated) == (3, False)  # the predictions' token_count statistics


# --- token failures fall back -------------------------------------------------------------------------
@pytest.mark.parametrize("break_tokens, outcome", [
    (lambda f: f.fail_tokens(400), "auth"),  # invalid_grant
    (lambda f: f.fail_tokens(503), "unavailable"),
    (lambda f: f.fail(503), "unavailable"),
    (lambda f: f.fail(429), "rate_limited"),
], ids=["token-invalid_grant", "token-503", "vertex-503", "vertex-429"])
def test_failures_fall_back_with_their_kind(fake_vertex, fake_openai, credential, build, openai_client, break_tokens, outcome):
    fake_openai.reply_text = "from openai backup"
    vertex = build.model(build.provider(fake_vertex, name="vx", kind="vertex_ai", api_key=credential, options=OPTIONS), FLASH)
    backup = build.model(build.provider(fake_openai, name="backup"))
    build.route("chat-default", vertex, backup)
    break_tokens(fake_vertex)
    completion = openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert completion.choices[0].message.content == "from openai backup"
    record = only_record()
    assert [(a["target"], a["outcome"]) for a in record.attempt_log] == [(f"vx/{FLASH}", outcome), ("backup/gpt-4o-mini", "ok")]


def test_a_credential_that_is_not_a_service_account_is_an_auth_error(fake_vertex, build, openai_client):
    import openai

    build.route("chat-vertex", build.model(build.provider(fake_vertex, name="vx", kind="vertex_ai",
                                                          api_key="not-a-json-credential-1234", options=OPTIONS), FLASH))
    with pytest.raises(openai.APIStatusError) as caught:
        openai_client(build.key()).chat.completions.create(model="chat-vertex", messages=MESSAGES)
    assert "service-account JSON" in caught.value.response.json()["error"]["message"]
    assert fake_vertex.request_count == 0
    assert only_record().error_kind == "auth"


# --- configuration --------------------------------------------------------------------------------------
def test_check_config_wants_a_project_and_a_sane_location():
    adapter, spec = VertexAdapter(), KINDS["vertex_ai"]
    assert adapter.check_config(spec, "", {"project": "my-project-1"}) == {}  # empty base URL: the public endpoint
    assert "project" in adapter.check_config(spec, "", {})["options"]
    assert "location" in adapter.check_config(spec, "", {"project": "p-1", "location": "us central/1"})["options"]
    assert "api_version" in adapter.check_config(spec, "", {"project": "p-1", "api_version": "v2"})["options"]


def test_an_empty_base_url_is_the_regional_or_global_endpoint():
    assert public_endpoint("us-central1") == "https://us-central1-aiplatform.googleapis.com"
    assert public_endpoint("global") == "https://aiplatform.googleapis.com"
