"""The fakes' embeddings endpoints are faithful: OpenAI's POST /v1/embeddings proven with
the official SDK (both encodings), Ollama's POST /api/embed over plain HTTP.

Plain sync tests: no Django, no database.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fakes import FakeOllama, FakeOpenAI
from tests.fakes.vectors import from_base64

pytestmark = pytest.mark.timeout(60)
OPENAI_KEY = "sk-test-openai"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=OPENAI_KEY, known_models=["text-embedding-3-small", "text-embedding-ada-002"]) as fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def oai(fake_openai: FakeOpenAI) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake_openai.base_url, api_key=OPENAI_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama(known_models=["nomic-embed-text:latest", "all-minilm"]) as fake:
        yield fake
    assert fake.errors == []


@pytest.fixture
def ollama_http(fake_ollama: FakeOllama) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_ollama.base_url, timeout=10) as client:
        yield client


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


# -- OpenAI ----------------------------------------------------------------------------------
def test_openai_sdk_default_asks_for_base64_and_decodes_it(fake_openai, oai):
    answer = oai.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
    assert fake_openai.last_request.body["encoding_format"] == "base64"  # the SDK's default
    assert [e.index for e in answer.data] == [0, 1] and answer.object == "list"
    assert len(answer.data[0].embedding) == 1536 and abs(_norm(answer.data[0].embedding) - 1) < 1e-5
    assert (answer.usage.prompt_tokens, answer.usage.total_tokens) == (3, 3)  # one token a word
    floats = oai.embeddings.create(model="text-embedding-3-small", input=["one two", "three"], encoding_format="float")
    assert fake_openai.last_request.body["encoding_format"] == "float"
    assert [e.embedding for e in floats.data] == [e.embedding for e in answer.data]  # the same float32 values


def test_openai_base64_is_little_endian_float32(fake_openai):
    raw = httpx.post(f"{fake_openai.base_url}/embeddings", headers={"authorization": f"Bearer {OPENAI_KEY}"},
                     json={"model": "text-embedding-3-small", "input": "hello", "encoding_format": "base64"})
    text = raw.json()["data"][0]["embedding"]
    assert isinstance(text, str) and len(from_base64(text)) == 1536
    floats = httpx.post(f"{fake_openai.base_url}/embeddings", headers={"authorization": f"Bearer {OPENAI_KEY}"},
                        json={"model": "text-embedding-3-small", "input": "hello"}).json()
    assert floats["data"][0]["embedding"] == from_base64(text)  # float is the default


def test_openai_dimensions_and_token_ids(fake_openai, oai):
    short = oai.embeddings.create(model="text-embedding-3-small", input=[[1, 2, 3], [4]], dimensions=8)
    assert [len(e.embedding) for e in short.data] == [8, 8]
    assert abs(_norm(short.data[0].embedding) - 1) < 1e-5  # shortened, then normalised again
    assert short.usage.prompt_tokens == 4  # token ids count one each
    assert fake_openai.last_request.body["input"] == [[1, 2, 3], [4]]
    with pytest.raises(openai.BadRequestError, match="does not support specifying dimensions"):
        oai.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=8)


@pytest.mark.parametrize("bad", ["", [], ["a", ""], ["a", 1], [[]], [[-1]], {"text": "a"}, ["x"] * 2049],
                         ids=["empty", "empty-list", "empty-item", "mixed", "empty-ids", "negative-id", "object",
                              "too-many"])
def test_openai_refuses_bad_input_like_the_api(oai, bad):
    with pytest.raises(openai.BadRequestError, match=r"'\$\.input' is invalid"):
        oai.embeddings.create(model="text-embedding-3-small", input=bad)


def test_openai_embeddings_faults_and_unknown_model(fake_openai, oai):
    fake_openai.fail(500)
    with pytest.raises(openai.InternalServerError):
        oai.embeddings.create(model="text-embedding-3-small", input="x")
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="text-embedding-9", input="x")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=fake_openai.base_url, api_key="sk-wrong", max_retries=0).embeddings.create(
            model="text-embedding-3-small", input="x")
    assert [r.path for r in fake_openai.requests] == ["/v1/embeddings"] * 3


# -- Ollama ----------------------------------------------------------------------------------
def test_ollama_embed_normalised_vectors_in_order(fake_ollama, ollama_http):
    resp = ollama_http.post("/api/embed", json={"model": "nomic-embed-text", "input": ["why is the sky blue", "grass"]})
    data = resp.json()
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json; charset=utf-8"
    assert data["model"] == "nomic-embed-text" and data["prompt_eval_count"] == 6
    assert [len(v) for v in data["embeddings"]] == [768, 768]
    assert all(abs(_norm(v) - 1) < 1e-5 for v in data["embeddings"])
    assert data["embeddings"][0] != data["embeddings"][1]
    single = ollama_http.post("/api/embed", json={"model": "nomic-embed-text", "input": "grass"}).json()
    assert single["embeddings"] == [data["embeddings"][1]]  # a string is one input
    assert "total_duration" in data and "load_duration" in data


def test_ollama_embed_dimensions_empty_and_errors(ollama_http):
    short = ollama_http.post("/api/embed", json={"model": "all-minilm", "input": "x", "dimensions": 4}).json()
    assert len(short["embeddings"][0]) == 4 and abs(_norm(short["embeddings"][0]) - 1) < 1e-5
    assert ollama_http.post("/api/embed", json={"model": "all-minilm", "input": ""}).json() == {
        "model": "all-minilm", "embeddings": []}
    bad = ollama_http.post("/api/embed", json={"model": "all-minilm", "input": [[1, 2]]})
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid input type"})
    missing = ollama_http.post("/api/embed", json={"model": "bge-m3", "input": "x"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'bge-m3' not found"})
