"""Structured logs through the live gateway: every line a request logs carries the
x-request-id its client received, also under concurrency; one gateway.access line per
request with route, model, provider, status, latency, tokens, cost and cache result,
and never the prompt, the answer, the virtual key or the provider key."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway_project.logs import JsonFormatter, RequestContextFilter
from providers.secrets import ScrubSecrets
from routing import engine

pytestmark = pytest.mark.django_db(transaction=True)
PROVIDER_KEY = "sk-test-logs-gateway-provider-0123456789"
ANSWER = "the answer text never logged"


@pytest.fixture
def json_lines():
    """The JSON lines every logger writes while the test runs (the root logger's
    handler, built like settings.LOGGING's console handler in JSON mode)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestContextFilter())
    handler.addFilter(ScrubSecrets())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


@pytest.fixture
def probed(monkeypatch):
    """Log a line (logger t.probe) before and after each upstream call, with a pause
    between so that concurrent requests interleave; the line names the request's
    marker (the test's own line: the gateway itself never logs prompts)."""
    original = engine.complete
    log = logging.getLogger("t.probe")

    async def complete(run, req):
        marker = req.messages[-1]["content"]
        log.info("before %s", marker)
        await asyncio.sleep(0.002 * (hash(marker) % 5))
        try:
            return await original(run, req)
        finally:
            log.info("after %s", marker)

    monkeypatch.setattr(engine, "complete", complete)


def _chat(gateway: str, key: str, content: str, **extra) -> httpx.Response:
    return httpx.post(f"{gateway}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                      json={"model": "chat-default", "messages": [{"role": "user", "content": content}], **extra},
                      timeout=30)


def test_concurrent_requests_each_log_with_their_own_request_id(gateway, build, fake_openai, json_lines, probed):
    fake_openai.api_key = PROVIDER_KEY
    fake_openai.reply_text = ANSWER
    build.route("chat-default", build.model(build.provider(fake_openai, name="openai-main", api_key=PROVIDER_KEY)))
    key = build.key()
    markers = [f"marker-{n}-prompt" for n in range(24)]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda m: _chat(gateway, key, m), markers))
    assert all(r.status_code == 200 for r in responses)
    sent = {m: r.headers["x-request-id"] for m, r in zip(markers, responses)}
    assert len(set(sent.values())) == len(markers)

    lines = json_lines()
    probes = [line for line in lines if line["logger"] == "t.probe"]
    assert len(probes) == 2 * len(markers)
    for line in probes:
        assert line["request_id"] == sent[line["message"].split()[1]]  # never another request's id

    access = [line for line in lines if line["logger"] == "gateway.access"]
    assert sorted(line["request_id"] for line in access) == sorted(sent.values())  # one line per request
    line = access[0]
    assert line["route"] == "chat-default" and line["provider"] == "openai-main" and line["model"]
    assert line["status"] == "success" and line["http_status"] == 200 and line["stream"] is False
    assert line["tokens_in"] > 0 and line["tokens_out"] > 0 and isinstance(line["latency_ms"], int)
    by_id = {r.headers["x-request-id"]: r for r in responses}
    assert line["cost_usd"] == by_id[line["request_id"]].headers["x-gateway-cost-usd"] != "0"
    assert set(line) >= {"time", "level", "logger", "message", "cache", "error_kind", "attempts"}

    gateway_text = json.dumps([line for line in lines if line["logger"] != "t.probe"])
    assert "marker-" not in gateway_text and ANSWER not in gateway_text  # no prompt, no answer
    assert key not in gateway_text and key[:12] not in gateway_text and PROVIDER_KEY not in gateway_text


def test_refusals_streams_and_listings_get_one_access_line_each(gateway, build, fake_openai, json_lines):
    build.route("chat-default", build.model(build.provider(fake_openai)))
    key = build.key()
    streamed = _chat(gateway, key, "hello", stream=True)
    assert streamed.status_code == 200
    assert _chat(gateway, "sk-gw-not-a-key", "hello").status_code == 401
    assert httpx.get(f"{gateway}/v1/models", headers={"authorization": f"Bearer {key}"}).status_code == 200
    assert httpx.get(f"{gateway}/v1/nowhere", headers={"authorization": f"Bearer {key}"}).status_code == 404

    access = [line for line in json_lines() if line["logger"] == "gateway.access"]
    assert [(a["endpoint"], a["status"], a["http_status"]) for a in access] == [
        ("chat", "success", 200),
        ("/v1/chat/completions", "rejected", 401),
        ("/v1/models", "success", 200),
        ("/v1/nowhere", "rejected", 404),
    ]
    assert access[0]["stream"] is True and access[0]["request_id"] == streamed.headers["x-request-id"]
    assert access[0]["tokens_out"] > 0
    assert access[1]["error_kind"] and access[1]["request_id"]  # its own id, though no Call existed


def test_the_access_log_can_be_switched_off(gateway, build, fake_openai, json_lines, settings):
    settings.GATEWAY_ACCESS_LOG = False
    build.route("chat-default", build.model(build.provider(fake_openai)))
    assert _chat(gateway, build.key(), "hello").status_code == 200
    assert _chat(gateway, "sk-gw-not-a-key", "hello").status_code == 401
    assert not [line for line in json_lines() if line["logger"] == "gateway.access"]
