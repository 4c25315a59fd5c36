"""OpenTelemetry traces from the live gateway, received by a fake OTLP/HTTP collector
(tests/tracing_helpers.py): one server span per request, one client span per upstream
attempt (a fallback shows two), the GenAI attributes, traceparent continued from the
client and forwarded to the provider, no keys in any attribute."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.tracing_helpers import CLIENT, SERVER, STATUS_ERROR, FakeCollector, all_values
from tests.tracing_helpers import collector_fixture, collector_server  # noqa: F401 - the fixtures

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "Tell me something"}]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def route(build, fake_openai):
    fake_openai.reply_text = "from primary"
    provider = build.provider(fake_openai, name="primary")
    return build.route("chat-default", build.model(provider, "gpt-4o-mini", upstream_id="gpt-4o-mini-2024"))


def _only_server(collector: FakeCollector):
    servers = collector.servers()
    assert len(servers) == 1, [s.name for s in servers]
    return servers[0]


def test_a_request_is_one_server_span_with_one_client_span_beneath_it(collector, route, build, openai_client,
                                                                     fake_openai):
    raw = openai_client(build.key()).chat.completions.with_raw_response.create(model="chat-default", messages=MESSAGES)
    collector.wait(servers=1, clients=1)
    server = _only_server(collector)
    (client,) = collector.clients()
    assert server.kind == SERVER and client.kind == CLIENT
    assert client.trace_id == server.trace_id and client.parent_id == server.span_id
    assert server.parent_id == ""  # no traceparent came in: a new trace
    assert server.name == "chat chat-default"
    a = server.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gateway.route"] == "chat-default"
    assert a["gateway.request_id"] == raw.headers["x-request-id"]
    assert a["http.response.status_code"] == 200 and a["gateway.status"] == "success"
    assert a["gen_ai.request.model"] == "chat-default"
    usage = raw.parse().usage
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == usage.completion_tokens > 0
    assert a["gateway.cost.currency"] == "USD"
    assert a["gateway.cost"] == pytest.approx(float(raw.headers["x-gateway-cost-usd"])) and a["gateway.cost"] > 0
    c = client.attributes
    assert client.name == "chat gpt-4o-mini-2024"
    assert c["gen_ai.operation.name"] == "chat" and c["gen_ai.provider.name"] == "openai"
    assert c["gen_ai.request.model"] == "gpt-4o-mini-2024"
    assert c["gen_ai.response.model"] == raw.parse().model
    assert c["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert c["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert c["gen_ai.response.finish_reasons"] == ["stop"]
    assert (c["server.address"], c["server.port"]) == ("127.0.0.1", fake_openai.port)
    assert "error.type" not in c and client.status != STATUS_ERROR
    assert server.resource["service.name"] == "llm-gateway"
    assert set(collector.content_types) == {"application/x-protobuf"}


def test_a_fallback_shows_as_two_attempts(collector, build, openai_client, fake_openai, fake_openai_b):
    fake_openai.fail(500)
    fake_openai_b.reply_text = "from backup"
    primary = build.model(build.provider(fake_openai, name="primary"))
    backup = build.model(build.provider(fake_openai_b, name="backup"), "gpt-4o")
    build.route("chat-default", primary, backup)
    answer = openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert answer.choices[0].message.content == "from backup"
    collector.wait(servers=1, clients=2)
    server = _only_server(collector)
    first, second = collector.clients()
    assert first.parent_id == second.parent_id == server.span_id
    assert (first.attributes["gateway.provider"], second.attributes["gateway.provider"]) == ("primary", "backup")
    assert first.attributes["error.type"] == "unavailable" and first.status == STATUS_ERROR
    assert first.attributes["http.response.status_code"] == 500
    assert "error.type" not in second.attributes and second.attributes["gen_ai.request.model"] == "gpt-4o"
    assert (first.attributes["gateway.attempt"], second.attributes["gateway.attempt"]) == (1, 2)
    assert server.attributes["gateway.attempts"] == 2 and "error.type" not in server.attributes


def test_every_attempt_failing_marks_the_server_span_an_error(collector, route, build, openai_client, fake_openai):
    fake_openai.fail(503)
    with pytest.raises(openai.APIStatusError):
        openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    collector.wait(servers=1, clients=1)
    server = _only_server(collector)
    assert server.status == STATUS_ERROR and server.attributes["http.response.status_code"] == 503
    assert server.attributes["error.type"] == "unavailable"
    assert collector.clients()[0].attributes["error.type"] == "unavailable"


def test_the_callers_traceparent_is_continued_and_the_attempts_is_sent_upstream(collector, route, build, gateway,
                                                                               fake_openai):
    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    response = httpx.post(f"{gateway}/v1/chat/completions", json={"model": "chat-default", "messages": MESSAGES},
                          headers={"authorization": f"Bearer {build.key()}", "traceparent": traceparent,
                                   "tracestate": "vendor=abc"})
    assert response.status_code == 200
    collector.wait(servers=1, clients=1)
    server = _only_server(collector)
    (client,) = collector.clients()
    assert server.trace_id == client.trace_id == TRACE_ID
    assert server.parent_id == PARENT_ID
    sent = fake_openai.last_request.headers
    assert sent["traceparent"] == f"00-{TRACE_ID}-{client.span_id}-01"  # the attempt's own span
    assert sent["tracestate"] == "vendor=abc"


def test_each_attempt_sends_its_own_traceparent(collector, build, openai_client, fake_openai, fake_openai_b):
    fake_openai.fail(500)
    build.route("chat-default", build.model(build.provider(fake_openai, name="primary")),
                build.model(build.provider(fake_openai_b, name="backup")))
    openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    collector.wait(servers=1, clients=2)
    first, second = collector.clients()
    assert fake_openai.last_request.headers["traceparent"].split("-")[2] == first.span_id
    assert fake_openai_b.last_request.headers["traceparent"].split("-")[2] == second.span_id


def test_a_stream_has_its_time_to_first_chunk_and_usage_on_the_attempt(collector, route, build, openai_client,
                                                                       fake_openai):
    fake_openai.chunk_delay = 0.02
    client = openai_client(build.key())
    stream = client.chat.completions.create(model="chat-default", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from primary"
    usage = chunks[-1].usage
    collector.wait(servers=1, clients=1)
    server = _only_server(collector)
    (attempt,) = collector.clients()
    assert attempt.parent_id == server.span_id
    ttfc = attempt.attributes["gen_ai.response.time_to_first_chunk"]
    assert 0 < ttfc < (attempt.end_ns - attempt.start_ns) / 1e9  # the span lasts until the stream ended
    assert attempt.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens > 0
    assert attempt.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens > 0
    assert attempt.attributes["gen_ai.response.model"]
    assert 0 < server.attributes["gen_ai.response.time_to_first_chunk"]
    assert attempt.end_ns <= server.end_ns


def test_a_stream_cut_midway_ends_its_attempt_as_failed(collector, route, build, openai_client, fake_openai):
    fake_openai.cut_stream(after_chunks=1)
    stream = openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    collector.wait(servers=1, clients=1)
    (attempt,) = collector.clients()
    assert attempt.status == STATUS_ERROR and attempt.attributes["error.type"]


def test_embeddings_are_their_own_operation(collector, build, fake_openai, gateway):
    fake_openai.embedding_size = 8
    try:
        build.route("embed", build.model(build.provider(fake_openai, name="primary"), "text-embedding-3-small",
                                         capabilities=["embeddings"]))
        response = httpx.post(f"{gateway}/v1/embeddings", json={"model": "embed", "input": "hello"},
                              headers={"authorization": f"Bearer {build.key()}"})
    finally:
        fake_openai.embedding_size = None
    assert response.status_code == 200, response.text
    collector.wait(servers=1, clients=1)
    server = _only_server(collector)
    (attempt,) = collector.clients()
    assert server.name == "embeddings embed" and server.attributes["gen_ai.operation.name"] == "embeddings"
    assert attempt.name == "embeddings text-embedding-3-small"
    assert attempt.attributes["gen_ai.operation.name"] == "embeddings"
    assert attempt.attributes["gen_ai.usage.input_tokens"] > 0


def test_a_refused_request_is_a_server_span_without_attempts(collector, route, gateway):
    response = httpx.post(f"{gateway}/v1/chat/completions", json={"model": "chat-default", "messages": MESSAGES},
                          headers={"authorization": "Bearer sk-gw-not-a-key"})
    assert response.status_code == 401
    collector.wait(servers=1)
    server = _only_server(collector)
    assert server.attributes["http.response.status_code"] == 401
    assert server.status != STATUS_ERROR  # a client error is not the server's (HTTP conventions)
    assert collector.clients() == []
    assert "sk-gw-not-a-key" not in all_values(collector.spans)


def test_no_provider_or_virtual_key_in_any_attribute(collector, route, build, openai_client, fake_openai):
    secret = build.key()
    openai_client(secret).chat.completions.create(model="chat-default", messages=MESSAGES)
    stream = openai_client(secret).chat.completions.create(model="chat-default", messages=MESSAGES, stream=True)
    list(stream)
    collector.wait(servers=2, clients=2)
    text = all_values(collector.spans)
    assert fake_openai.api_key not in text
    assert secret not in text and secret[:12] not in text
    assert "authorization" not in text.lower()


def test_models_list_is_a_plain_server_span(collector, route, build, gateway):
    response = httpx.get(f"{gateway}/v1/models", headers={"authorization": f"Bearer {build.key()}"})
    assert response.status_code == 200
    collector.wait(servers=1)
    server = _only_server(collector)
    assert server.name == "GET /v1/models" and "gen_ai.operation.name" not in server.attributes


def test_count_tokens_forwards_the_traceparent_too(collector, build, gateway, fake_anthropic):
    """Not only chat: Anthropic's count_tokens (and Replicate's stream GET, Vertex's token
    exchange, Ollama's /api/show) carry the trace upstream."""
    provider = build.provider(fake_anthropic, name="anthropic-main", kind="anthropic")
    build.route("claude", build.model(provider, "claude-sonnet-4-6"))
    response = httpx.post(f"{gateway}/v1/messages/count_tokens",
                          json={"model": "claude", "messages": MESSAGES},
                          headers={"x-api-key": build.key(), "anthropic-version": "2023-06-01",
                                   "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert response.status_code == 200, response.text
    sent = fake_anthropic.last_request
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.headers["traceparent"].split("-")[1] == TRACE_ID
