"""Prove the fake Ollama server is faithful to Ollama's HTTP API.

Plain sync tests: no Django, no database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import FakeOllama
from tests.fakes_helpers import MESSAGES, USER_ONLY

pytestmark = pytest.mark.timeout(60)


# -- fixtures ----------------------------------------------------------------------------------------
# These deliberately shadow the session-wide fakes of tests/conftest.py: each test here gets
# its own fresh server (own keys / known_models), so nothing leaks into the gateway tests.
@pytest.fixture
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama(known_models=["llama3.2:latest"]) as fake:
        yield fake
    assert fake.errors == []  # no exception inside the fake itself


@pytest.fixture
def ollama_http(fake_ollama: FakeOllama) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_ollama.base_url, timeout=10) as client:
        yield client


# -- Ollama -----------------------------------------------------------------------------------------
def _ndjson(client: httpx.Client, body: dict) -> list[dict]:
    with client.stream("POST", "/api/chat", json=body) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in resp.iter_lines() if line]


def test_ollama_non_stream(fake_ollama: FakeOllama, ollama_http: httpx.Client) -> None:
    resp = ollama_http.post("/api/chat", json={"model": "llama3.2", "messages": MESSAGES, "stream": False})
    data = resp.json()
    assert resp.status_code == 200
    assert data["message"] == {"role": "assistant", "content": "Hello from fake-ollama."}
    assert data["done"] is True and data["done_reason"] == "stop"
    assert (data["prompt_eval_count"], data["eval_count"]) == (12, 3)
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration", "created_at"):
        assert key in data


def test_ollama_stream_is_default(fake_ollama: FakeOllama, ollama_http: httpx.Client) -> None:
    fake_ollama.reply_text = "Streaming is the default in Ollama."
    lines = _ndjson(ollama_http, {"model": "llama3.2:latest", "messages": MESSAGES, "stream": None})
    *parts, final = lines
    assert len(parts) == 6 and all(p["done"] is False for p in parts)
    assert "".join(p["message"]["content"] for p in parts) == fake_ollama.reply_text
    assert final["done"] is True and final["done_reason"] == "stop" and final["message"]["content"] == ""
    plain = ollama_http.post("/api/chat", json={"model": "llama3.2", "messages": MESSAGES, "stream": False}).json()
    assert (final["prompt_eval_count"], final["eval_count"]) == (plain["prompt_eval_count"], plain["eval_count"])


def test_ollama_num_predict_truncates(ollama_http: httpx.Client) -> None:
    body = {"model": "llama3.2", "messages": USER_ONLY, "options": {"num_predict": 1}, "stream": True}
    *parts, final = _ndjson(ollama_http, body)
    assert "".join(p["message"]["content"] for p in parts) == "Hello"
    assert (final["done_reason"], final["eval_count"]) == ("length", 1)


def test_ollama_unknown_model_and_tags(ollama_http: httpx.Client) -> None:
    resp = ollama_http.post("/api/chat", json={"model": "mistral", "messages": USER_ONLY})
    assert resp.status_code == 404
    assert resp.json() == {"error": 'model "mistral" not found, try pulling it first'}
    tags = ollama_http.get("/api/tags").json()
    assert [m["name"] for m in tags["models"]] == ["llama3.2:latest"]
    assert ollama_http.get("/").text == "Ollama is running"


def test_ollama_faults(fake_ollama: FakeOllama, ollama_http: httpx.Client) -> None:
    fake_ollama.fail(500, body={"error": "llama runner process has terminated"})
    failed = ollama_http.post("/api/chat", json={"model": "llama3.2", "messages": USER_ONLY})
    assert failed.status_code == 500 and failed.json() == {"error": "llama runner process has terminated"}

    fake_ollama.cut_stream(after_chunks=1)
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with ollama_http.stream("POST", "/api/chat", json={"model": "llama3.2", "messages": USER_ONLY}) as resp:
            for line in resp.iter_lines():
                received.append(json.loads(line)["message"]["content"])
    assert received == ["Hello"]

    fake_ollama.malformed()
    with pytest.raises(ValueError):
        _ndjson(ollama_http, {"model": "llama3.2", "messages": USER_ONLY})
    assert fake_ollama.request_count == 3
