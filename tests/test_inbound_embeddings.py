"""POST /v1/embeddings through a running gateway with the official OpenAI SDK: both
encodings against the OpenAI and the Ollama fakes (which record what they received),
routing and fallback like chat, and exactly one usage record per request."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import openai
import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for
from tests.fakes.vectors import embedding, from_base64

pytestmark = pytest.mark.django_db(transaction=True)
SIZE = 8  # the fakes' vector size in these tests
EMBEDDINGS = ["embeddings"]


@pytest.fixture(autouse=True)
def small_vectors(fake_openai, fake_openai_b, fake_ollama, monkeypatch):
    for fake in (fake_openai, fake_openai_b, fake_ollama):
        monkeypatch.setattr(fake, "embedding_size", SIZE)


def embedding_model(build, fake, name="text-embedding-3-small", *, provider=None, kind="openai", price="0.02"):
    provider = provider or build.provider(fake, kind=kind)
    return build.model(provider, name, input_price=price, output_price="0", capabilities=EMBEDDINGS)


def only_record() -> UsageRecord:
    assert wait_for(lambda: UsageRecord.objects.count() >= 1)
    time.sleep(0.05)  # a second (double) record would show up by now
    return UsageRecord.objects.get()


# --- both encodings, both providers ---------------------------------------------------------
def test_sdk_default_base64_against_the_openai_fake(fake_openai, build, openai_client):
    build.route("embed", embedding_model(build, fake_openai, price="20"))
    client = openai_client(build.key())
    raw = client.embeddings.with_raw_response.create(model="embed", input=["the quick fox", "jumps"])
    answer = raw.parse()
    # The SDK asked the gateway for base64 and decoded it; the provider was asked for floats.
    sent = fake_openai.last_request.body
    assert sent == {"model": "text-embedding-3-small", "input": ["the quick fox", "jumps"], "encoding_format": "float"}
    assert isinstance(raw.http_response.json()["data"][0]["embedding"], str)
    assert [e.embedding for e in answer.data] == [embedding("text-embedding-3-small", t, SIZE)
                                                  for t in ["the quick fox", "jumps"]]
    assert [e.index for e in answer.data] == [0, 1] and answer.model == "text-embedding-3-small"
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (4, 4)
    record = only_record()
    assert (record.endpoint, record.status, record.stream, record.route_name) == ("embeddings", "success", False, "embed")
    assert (record.prompt_tokens, record.completion_tokens, record.usage_estimated) == (4, 0, False)
    assert record.cost_usd == Decimal("20") * 4 / 1_000_000
    assert Decimal(raw.headers["x-gateway-cost-usd"]) == record.cost_usd
    assert record.annotations["embeddings"] == {"inputs": 2}


@pytest.mark.proves("openai", "embeddings")
def test_float_encoding_against_the_openai_fake(fake_openai, build, openai_client):
    build.route("embed", embedding_model(build, fake_openai))
    answer = openai_client(build.key()).embeddings.create(model="embed", input="hello world", encoding_format="float")
    assert answer.data[0].embedding == embedding("text-embedding-3-small", "hello world", SIZE)
    assert fake_openai.last_request.body["input"] == ["hello world"]  # always a list upstream
    assert only_record().prompt_tokens == 2


@pytest.mark.parametrize("encoding", ["base64", "float", None])
@pytest.mark.proves("ollama", "embeddings")
def test_both_encodings_against_the_ollama_fake(fake_ollama, build, openai_client, encoding):
    model = embedding_model(build, fake_ollama, "nomic-embed-text", kind="ollama")
    build.route("embed-local", model)
    extra = {"encoding_format": encoding} if encoding else {}
    answer = openai_client(build.key()).embeddings.create(model="embed-local", input=["why is the sky blue", "grass"],
                                                          **extra)
    request = fake_ollama.last_request
    assert (request.path, request.body) == ("/api/embed", {"model": "nomic-embed-text",
                                                           "input": ["why is the sky blue", "grass"]})
    # Asked explicitly for base64, the SDK leaves the strings as they came.
    vectors = [from_base64(e.embedding) if encoding == "base64" else e.embedding for e in answer.data]
    assert vectors == [embedding("nomic-embed-text", t, SIZE) for t in ["why is the sky blue", "grass"]]
    assert answer.usage.prompt_tokens == 6  # Ollama's prompt_eval_count
    record = only_record()
    assert (record.endpoint, record.provider_name, record.prompt_tokens, record.cost_usd) == (
        "embeddings", model.provider.name, 6, Decimal(0))  # a free kind


def test_dimensions_pass_through_to_both_providers(fake_openai, fake_ollama, build, openai_client):
    build.route("embed", embedding_model(build, fake_openai))
    build.route("embed-local", embedding_model(build, fake_ollama, "all-minilm", kind="ollama"))
    client = openai_client(build.key())
    remote = client.embeddings.create(model="embed", input="x", dimensions=4)
    local = client.embeddings.create(model="embed-local", input="x", dimensions=3)
    assert fake_openai.last_request.body["dimensions"] == 4 and fake_ollama.last_request.body["dimensions"] == 3
    assert (len(remote.data[0].embedding), len(local.data[0].embedding)) == (4, 3)


def test_token_ids_go_to_a_target_that_takes_them(fake_openai, fake_ollama, build, openai_client):
    local = embedding_model(build, fake_ollama, "all-minilm", kind="ollama")
    build.route("embed", local, embedding_model(build, fake_openai))
    raw = openai_client(build.key()).embeddings.with_raw_response.create(model="embed", input=[[1, 2, 3], [4, 5]])
    assert [len(e.embedding) for e in raw.parse().data] == [SIZE, SIZE]
    assert fake_ollama.request_count == 0  # Ollama's embed API takes text only: never sent the ids
    assert fake_openai.last_request.body["input"] == [[1, 2, 3], [4, 5]]
    record = only_record()
    assert [a["outcome"] for a in record.attempt_log] == ["not_translatable", "ok"]
    assert record.prompt_tokens == 5


@pytest.mark.proves("mock", "embeddings")
def test_the_mock_provider_embeds_offline(build, openai_client):
    mock = build.provider(kind="mock", base_url="")
    build.route("embed", build.model(mock, "mock-embed", capabilities=EMBEDDINGS))
    answer = openai_client(build.key()).embeddings.create(model="embed", input=["a b", "a b", "c"])
    vectors = [e.embedding for e in answer.data]
    assert len(vectors[0]) == 16 and vectors[0] == vectors[1] != vectors[2]
    assert answer.usage.prompt_tokens == 5


# --- routing like chat ----------------------------------------------------------------------
def test_falls_back_to_the_next_embedding_model(fake_openai, fake_openai_b, build, openai_client):
    first = embedding_model(build, fake_openai)
    second = embedding_model(build, fake_openai_b, "text-embedding-3-large")
    build.route("embed", first, second)
    fake_openai.fail(503)
    raw = openai_client(build.key()).embeddings.with_raw_response.create(model="embed", input="x")
    assert raw.parse().model == "text-embedding-3-large"
    assert raw.headers["x-gateway-attempts"] == "2" and raw.headers["x-gateway-provider"] == second.provider.name
    record = only_record()
    assert [a["outcome"] for a in record.attempt_log] == ["unavailable", "ok"] and record.attempts == 2


def test_an_open_breaker_keeps_requests_away_from_a_failing_target(fake_openai, fake_openai_b, build, openai_client):
    first = embedding_model(build, fake_openai)
    build.route("embed", first, embedding_model(build, fake_openai_b, "text-embedding-3-large"),
                breaker_failure_threshold=1, breaker_cooldown_s=60)
    client = openai_client(build.key())
    fake_openai.fail(500)
    client.embeddings.create(model="embed", input="x")
    calls = fake_openai.request_count
    raw = client.embeddings.with_raw_response.create(model="embed", input="y")
    # Out of rotation: moved behind the healthy target, so never reached.
    assert raw.headers["x-gateway-candidates"].split(",")[-1] == f"{first.provider.name}/{first.name}"
    assert raw.headers["x-gateway-attempt-log"] == f"{raw.headers['x-gateway-model']}=ok"
    assert fake_openai.request_count == calls


def test_all_targets_failing_is_one_error_record(fake_openai, build, openai_client):
    build.route("embed", embedding_model(build, fake_openai))
    fake_openai.fail(500)
    with pytest.raises(openai.InternalServerError) as exc:
        openai_client(build.key()).embeddings.create(model="embed", input="x")
    assert exc.value.status_code == 503
    record = only_record()
    assert (record.status, record.endpoint, record.error_kind) == ("error", "embeddings", "unavailable")


def test_a_broken_answer_counts_against_the_provider(fake_openai, fake_openai_b, build, openai_client):
    build.route("embed", embedding_model(build, fake_openai), embedding_model(build, fake_openai_b, "other"))
    fake_openai.mangle(lambda body: {**body, "data": body["data"][:1]})  # one vector for two inputs
    openai_client(build.key()).embeddings.create(model="embed", input=["a", "b"])
    assert [a["outcome"] for a in only_record().attempt_log] == ["bad_response", "ok"]


def test_usage_is_estimated_when_the_provider_reports_none(fake_openai, build, openai_client):
    build.route("embed", embedding_model(build, fake_openai))
    fake_openai.mangle(lambda body: {k: v for k, v in body.items() if k != "usage"})
    answer = openai_client(build.key()).embeddings.create(model="embed", input="twelve characters")
    record = only_record()
    assert record.usage_estimated and record.prompt_tokens == answer.usage.prompt_tokens == 5  # 17 chars / 4


# --- what a route can serve -------------------------------------------------------------------
def test_a_chat_only_route_refuses_embeddings_clearly(fake_openai, build, openai_client):
    build.openai_route(fake_openai)  # chat-default: a chat model (the default capabilities)
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client(build.key()).embeddings.create(model="chat-default", input="x")
    error = exc.value.response.json()["error"]
    assert error["code"] == "unsupported_capability" and error["param"] == "model"
    assert "cannot serve embeddings" in error["message"] and "lacks embeddings" in error["message"]
    assert fake_openai.request_count == 0
    time.sleep(0.05)
    assert UsageRecord.objects.count() == 0  # the client's mistake: no record


def test_a_chat_request_to_an_embeddings_route_is_refused_clearly(fake_openai, build, openai_client):
    build.route("embed", embedding_model(build, fake_openai))
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client(build.key()).chat.completions.create(model="embed", messages=[{"role": "user", "content": "hi"}])
    error = exc.value.response.json()["error"]
    assert error["code"] == "unsupported_capability"
    assert "serves embeddings only" in error["message"] and "POST /v1/embeddings" in error["message"]
    assert fake_openai.request_count == 0


def test_a_mixed_route_sends_each_request_to_a_model_that_serves_it(fake_openai, fake_openai_b, build, openai_client):
    chat = build.model(build.provider(fake_openai_b), "gpt-4o-mini")
    embed = embedding_model(build, fake_openai)
    build.route("both", chat, embed)
    client = openai_client(build.key())
    raw = client.embeddings.with_raw_response.create(model="both", input="x")
    assert fake_openai_b.request_count == 0 and fake_openai.request_count == 1
    assert raw.headers["x-gateway-attempt-log"].startswith(f"{chat.provider.name}/gpt-4o-mini=unsupported_capability")
    client.chat.completions.create(model="both", messages=[{"role": "user", "content": "hi"}])
    assert fake_openai.request_count == 1 and fake_openai_b.last_request.path == "/v1/chat/completions"
    skipped = UsageRecord.objects.get(endpoint="embeddings").attempt_log[0]
    assert skipped["outcome"] == "unsupported_capability" and skipped["reason"] == "lacks embeddings"


# --- bad bodies: OpenAI's error format, never a 500 -----------------------------------------------
@pytest.mark.parametrize("body, param", [
    ({"model": "embed"}, "input"),
    ({"model": "embed", "input": ""}, "input"),
    ({"model": "embed", "input": []}, "input"),
    ({"model": "embed", "input": ["a", ""]}, "input"),
    ({"model": "embed", "input": ["a", 3]}, "input"),
    ({"model": "embed", "input": [[1], "a"]}, "input"),
    ({"model": "embed", "input": [[]]}, "input"),
    ({"model": "embed", "input": [[1, -2]]}, "input"),
    ({"model": "embed", "input": [[1, True]]}, "input"),
    ({"model": "embed", "input": [1.5]}, "input"),
    ({"model": "embed", "input": {"text": "a"}}, "input"),
    ({"model": "embed", "input": ["a"] * 2049}, "input"),
    ({"model": "embed", "input": "x" * 200_000}, "input"),
    ({"model": "embed", "input": ["x" * 100_000] * 13}, "input"),
    ({"model": "embed", "input": "a", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "embed", "input": "a", "dimensions": 0}, "dimensions"),
    ({"model": "embed", "input": "a", "dimensions": "8"}, "dimensions"),
    ({"model": "embed", "input": "a", "user": 7}, "user"),
    ({"input": "a"}, "model"),
    ({"model": "embed", "input": "a", "extra": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}, "extra"),
], ids=lambda v: "" if isinstance(v, dict) else v)
def test_bad_bodies_are_400s_naming_the_param(fake_openai, build, gateway, body, param):
    build.route("embed", embedding_model(build, fake_openai))
    response = httpx.post(f"{gateway}/v1/embeddings", json=body, headers={"Authorization": f"Bearer {build.key()}"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert fake_openai.request_count == 0


def test_not_json_wrong_method_and_unknown_route(build, gateway):
    headers = {"Authorization": f"Bearer {build.key()}"}
    assert httpx.post(f"{gateway}/v1/embeddings", content=b"{", headers=headers).status_code == 400
    wrong = httpx.get(f"{gateway}/v1/embeddings", headers=headers)
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")
    unknown = httpx.post(f"{gateway}/v1/embeddings", json={"model": "nope", "input": "a"}, headers=headers)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")
    anonymous = httpx.post(f"{gateway}/v1/embeddings", json={"model": "nope", "input": "a"})
    assert anonymous.status_code == 401 and "error" in anonymous.json()
