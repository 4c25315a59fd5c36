"""The adapters' shared error machinery (providers/adapters/base.py), and upstream teardown.

Unit tests (no gateway): status/message classification, Retry-After parsing, secret
scrubbing, transport errors, SSE parsing. Gateway tests: what those mean end to end
(a client never sees an upstream secret; a weird Retry-After does not break fallback),
and that a client hanging up mid-stream makes the gateway hang up upstream too.
"""

from __future__ import annotations

import asyncio
import email.utils
import time

import aiohttp
import httpx
import openai
import pytest
from aiohttp.client_reqrep import ConnectionKey
from multidict import CIMultiDict

from billing.models import UsageRecord
from providers.adapters.anthropic import AnthropicAdapter
from providers.adapters.base import classify_status, loads, parse_retry_after, scrub, sse_events, transport_error
from providers.adapters.ollama import OllamaAdapter
from providers.adapters.openai import OpenAIAdapter
from providers.types import ErrorKind, ProviderError
from tests.conftest import wait_for

K = ErrorKind


# --- classify_status ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "status, message, code, kind",
    [
        (400, "Invalid 'messages[0].role'.", "invalid_value", K.BAD_REQUEST),
        (401, "Incorrect API key provided.", "invalid_api_key", K.AUTH),
        (403, "Country, region, or territory not supported", "unsupported_country_region_territory", K.AUTH),
        (404, "Not found.", "model_not_found", K.NOT_FOUND),
        (408, "Request timeout", "", K.TIMEOUT),
        (413, "Request exceeds the maximum allowed number of bytes.", "request_too_large", K.CONTEXT_LENGTH),
        (422, "Unprocessable entity", "", K.BAD_REQUEST),
        (429, "Rate limit reached for requests.", "rate_limit_exceeded", K.RATE_LIMITED),
        (429, "Number of request tokens has exceeded your per-minute rate limit", "rate_limit_error", K.RATE_LIMITED),
        (500, "The server had an error while processing your request.", "", K.UNAVAILABLE),
        (502, "Bad gateway", "", K.UNAVAILABLE),
        (503, "The engine is currently overloaded, please try again later.", "", K.UNAVAILABLE),
        (529, "Overloaded", "overloaded_error", K.UNAVAILABLE),
    ],
    ids=lambda v: str(v) if isinstance(v, int) else None,
)
def test_classify_status(status, message, code, kind):
    assert classify_status(status, message, code) is kind


@pytest.mark.parametrize(
    "status, message, code",
    [
        (400, "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.", ""),
        (400, "Please reduce the length of the messages.", "context_length_exceeded"),
        (400, "prompt is too long: 215000 tokens > 200000 maximum", "invalid_request_error"),
        (400, "Input is longer than the model's context window", ""),
        (422, "Too many tokens in the prompt", ""),
        (400, "The prompt exceeds the CONTEXT LENGTH of this model", ""),
    ],
    ids=["openai-message", "openai-code", "anthropic", "context-window", "422-too-many-tokens", "case-insensitive"],
)
def test_context_length_messages_are_recognised(status, message, code):
    assert classify_status(status, message, code) is K.CONTEXT_LENGTH


@pytest.mark.parametrize(
    "status, message, code",
    [
        (400, "Your request was rejected as a result of our safety system.", "content_policy_violation"),
        (400, "The response was filtered due to the prompt triggering content management policy.", "content_filter"),
        (400, "Rejected by our Content Policy.", ""),
    ],
    ids=["openai", "azure", "message-only"],
)
def test_content_policy_messages_are_recognised(status, message, code):
    assert classify_status(status, message, code) is K.CONTENT_POLICY


def test_hints_only_refine_client_errors_not_auth_rate_or_server_errors():
    # the status decides first: a 5xx mentioning a context length is still an outage
    assert classify_status(500, "maximum context length exceeded") is K.UNAVAILABLE
    assert classify_status(429, "too many tokens per minute") is K.RATE_LIMITED
    assert classify_status(401, "content policy") is K.AUTH


# --- parse_retry_after -----------------------------------------------------------------------------------
def _h(**headers) -> CIMultiDict:
    return CIMultiDict({k.replace("_", "-"): v for k, v in headers.items()})


@pytest.mark.parametrize(
    "headers, expected",
    [
        (_h(retry_after="3"), 3.0),
        (_h(retry_after="0.5"), 0.5),
        (_h(retry_after="0"), 0.0),
        (_h(retry_after="-4"), 0.0),  # never negative
        (_h(retry_after_ms="1500"), 1.5),
        (_h(retry_after_ms="250", retry_after="7"), 0.25),  # the precise header wins
        (_h(retry_after_ms="abc", retry_after="2"), 2.0),  # a bad ms header falls back to retry-after
        (_h(), None),
        (_h(retry_after=""), None),
    ],
    ids=["seconds", "fraction", "zero", "negative", "ms", "ms-wins", "bad-ms", "absent", "empty"],
)
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date():
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= parse_retry_after(_h(retry_after=future)) <= 31
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(_h(retry_after=past)) == 0.0


@pytest.mark.parametrize("value", ["soon", "1s", "tomorrow at noon"])
def test_parse_retry_after_garbage_is_ignored(value):
    assert parse_retry_after(_h(retry_after=value)) is None


# --- scrub ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
        "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "sk-upstr*********************1234",  # the masked form OpenAI echoes back
        "gsk_0123456789abcdefABCDEF0123456789abcdefABCDEF0123",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "0123456789abcdef0123456789abcdef01234567",  # a bare 40-char hex token
        "key-1234567890abcdef",
    ],
)
def test_scrub_removes_key_like_strings(secret):
    text = scrub(f"Incorrect API key provided: {secret}. You can find your key in the dashboard.")
    assert secret not in text
    assert secret[4:14] not in text  # not even a recognisable part of it
    assert text.startswith("Incorrect API key provided: ")
    assert "[redacted]" in text and text.endswith("You can find your key in the dashboard.")


def test_scrub_keeps_ordinary_error_text():
    message = "Rate limit reached for gpt-4o-mini in organization on requests per min (RPM): Limit 3, Used 3."
    assert scrub(message) == message
    assert scrub("model \"llama3.2\" not found, try pulling it first") == 'model "llama3.2" not found, try pulling it first'


def test_scrub_bounds_length():
    long = "word " * 1000
    text = scrub(long)
    assert len(text) <= 300 and text.endswith("…")
    assert len(scrub(long, limit=50)) <= 50
    assert scrub("short message") == "short message"
    assert scrub("x" * 10, limit=10) == "x" * 10  # exactly at the limit: untouched


def test_scrub_handles_empty_and_non_strings():
    assert scrub(None) == ""
    assert scrub("") == ""
    assert scrub("  padded  ") == "padded"


# --- http_error: the pieces together, per wire format --------------------------------------------------
class _Body:
    """The slice of aiohttp's StreamReader the adapters read: iter_any()."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    async def iter_any(self):
        for i in range(0, len(self.raw), 7):  # odd-sized pieces: lines split across reads
            yield self.raw[i:i + 7]


class _Response:
    def __init__(self, raw: bytes) -> None:
        self.content = _Body(raw)


def test_openai_http_error_is_classified_scrubbed_and_carries_retry_after():
    body = (b'{"error": {"message": "Rate limit reached. Key sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", '
            b'"type": "requests", "code": "rate_limit_exceeded"}}')
    error = OpenAIAdapter().http_error("primary", 429, _h(retry_after_ms="1200"), body)
    assert isinstance(error, ProviderError)
    assert error.kind is K.RATE_LIMITED and error.status == 429 and error.retry_after == 1.2
    assert error.message.startswith("primary: HTTP 429 - Rate limit reached.")
    assert "sk-proj" not in error.message and "Ab3dEf6hIj9k" not in error.message


def test_openai_http_error_uses_the_error_code_for_classification():
    body = b'{"error": {"message": "Please shorten your prompt.", "type": "invalid_request_error", "code": "context_length_exceeded"}}'
    assert OpenAIAdapter().http_error("p", 400, _h(), body).kind is K.CONTEXT_LENGTH


@pytest.mark.parametrize(
    "status, error_type, kind",
    [(429, "rate_limit_error", K.RATE_LIMITED), (529, "overloaded_error", K.UNAVAILABLE),
     (401, "authentication_error", K.AUTH), (413, "request_too_large", K.CONTEXT_LENGTH),
     (400, "invalid_request_error", K.BAD_REQUEST)],
)
def test_anthropic_http_error(status, error_type, kind):
    body = b'{"type": "error", "error": {"type": "%s", "message": "upstream says no"}}' % error_type.encode()
    error = AnthropicAdapter().http_error("claude", status, _h(), body)
    assert (error.kind, error.status) == (kind, status)
    assert error.message == f"claude: HTTP {status} - upstream says no"


def test_ollama_http_error_takes_the_plain_error_string():
    body = b'{"error": "model \\"qwen\\" not found, try pulling it first"}'
    error = OllamaAdapter().http_error("local", 404, _h(), body)
    assert error.status == 404 and 'model "qwen" not found' in error.message


def test_http_error_with_a_non_json_body_still_classifies_by_status():
    body = b"<html><body>502 Bad Gateway</body></html>"
    error = OpenAIAdapter().http_error("p", 502, _h(), body)
    assert (error.kind, error.status, error.message) == (K.UNAVAILABLE, 502, "p: HTTP 502")


# --- transport errors and JSON ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "exc, kind",
    [
        (asyncio.TimeoutError(), K.TIMEOUT),
        (aiohttp.ServerTimeoutError("Timeout on reading data from socket"), K.TIMEOUT),
        (aiohttp.ClientConnectorError(ConnectionKey("127.0.0.1", 9, False, True, None, None, None),
                                      ConnectionRefusedError(111, "refused")), K.UNAVAILABLE),
        (aiohttp.ServerDisconnectedError(), K.BAD_RESPONSE),
        (aiohttp.ClientPayloadError("Response payload is not completed"), K.BAD_RESPONSE),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_transport_errors(exc, kind):
    error = transport_error(exc, "prov")
    assert error.kind is kind and error.status is None and error.message.startswith("prov: ")


def test_loads_rejects_invalid_json_as_bad_response():
    assert loads(b'{"a": 1}', "p") == {"a": 1}
    with pytest.raises(ProviderError) as exc:
        loads(b'{"a": ', "p")
    assert exc.value.kind is K.BAD_RESPONSE


async def test_sse_events_parses_named_multiline_events_and_skips_comments():
    raw = (b": keep-alive comment\n\n"
           b"event: message_start\ndata: {\"a\":1}\n\n"
           b"data: line one\ndata: line two\n\n"
           b"data:no-space\n\n"
           b"data: [DONE]")  # no trailing blank line: still delivered
    events = [e async for e in sse_events(_Response(raw))]
    assert events == [("message_start", '{"a":1}'), ("", "line one\nline two"), ("", "no-space"), ("", "[DONE]")]


# --- through the gateway ----------------------------------------------------------------------------------
MESSAGES = [{"role": "user", "content": "Tell me a long story"}]


@pytest.fixture
def primary_then_backup(fake_openai, fake_openai_b, build):
    fake_openai.reply_text = "from primary"
    fake_openai_b.reply_text = "from backup"
    primary = build.model(build.provider(fake_openai, name="primary"))
    backup = build.model(build.provider(fake_openai_b, name="backup"))
    build.route("chat-default", primary, backup)
    return build.key()


def _only_record() -> UsageRecord:
    assert wait_for(lambda: UsageRecord.objects.count() >= 1)
    time.sleep(0.05)  # a second (double) record would show up by now
    return UsageRecord.objects.get()


@pytest.mark.django_db(transaction=True)
def test_upstream_secret_in_an_error_never_reaches_the_client(fake_openai, build, openai_client):
    secret = "sk-proj-LeakedUpstreamKey0123456789abcdefXYZ"
    fake_openai.fail(401, body={"error": {"message": f"Incorrect API key provided: {secret}.",
                                          "type": "invalid_request_error", "code": "invalid_api_key"}})
    build.openai_route(fake_openai)
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert "Incorrect API key provided" in exc.value.response.json()["error"]["message"]
    assert secret not in exc.value.response.text and "LeakedUpstreamKey" not in exc.value.response.text
    record = _only_record()
    assert record.error_kind == "auth"
    assert "LeakedUpstreamKey" not in str(record.attempt_log)


@pytest.mark.django_db(transaction=True)
def test_a_huge_upstream_error_message_is_bounded(fake_openai, build, openai_client):
    fake_openai.fail(500, body={"error": {"message": "stack trace line\n" * 2000, "type": "server_error"}})
    build.openai_route(fake_openai)
    with pytest.raises(openai.InternalServerError) as exc:
        openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert len(exc.value.response.json()["error"]["message"]) < 1000


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_garbage_retry_after_still_falls_back(primary_then_backup, fake_openai, openai_client, stream):
    fake_openai.fail(429, headers={"Retry-After": "soon"})
    client = openai_client(primary_then_backup)
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="chat-default", messages=MESSAGES, stream=True) if c.choices)
    else:
        text = client.chat.completions.create(model="chat-default", messages=MESSAGES).choices[0].message.content
    assert text == "from backup"
    assert [a["outcome"] for a in _only_record().attempt_log] == ["rate_limited", "ok"]


# --- a client hanging up mid-stream closes the upstream connection ------------------------------------------
LONG_REPLY = " ".join(f"word{i}" for i in range(400))  # 400 chunks x 25 ms = 10 s if nobody hangs up


@pytest.fixture(params=["openai", "anthropic", "ollama"])
def slow_stream_route(request, build):
    """Route `chat-slow` to a fake of each wire format that streams LONG_REPLY slowly."""
    kind = request.param
    fake = request.getfixturevalue(f"fake_{kind}")
    fake.reply_text = LONG_REPLY
    fake.chunk_delay = 0.025
    build.route("chat-slow", build.model(build.provider(fake, name=f"{kind}-slow", kind=kind), "slow-model"))
    return fake


@pytest.mark.django_db(transaction=True)
def test_client_disconnect_mid_stream_closes_the_upstream_stream(slow_stream_route, gateway, build):
    fake = slow_stream_route
    key = build.key()
    lines = []
    with httpx.Client(timeout=10) as http:
        with http.stream("POST", f"{gateway}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                         json={"model": "chat-slow", "messages": MESSAGES, "stream": True}) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("data: "):
                    lines.append(line)
                if len(lines) >= 5:
                    break
        # leaving the block closes the connection: the client is gone
    assert all("[DONE]" not in line for line in lines)
    started = time.monotonic()
    assert wait_for(lambda: fake.aborted_streams == 1, timeout=6), "the gateway kept reading the upstream stream"
    assert time.monotonic() - started < 6  # well before the 10 s the full stream takes
    assert fake.completed_streams == 0
    assert fake.request_count == 1  # no retry or fallback for a client that left
    record = wait_for(lambda: UsageRecord.objects.filter(status="client_closed").first(), timeout=5)
    assert record is not None, "no usage record for the abandoned stream"
    time.sleep(0.2)
    assert UsageRecord.objects.count() == 1
    assert record.http_status == 499 and record.stream and record.error_kind == "client_closed"
    assert record.completion_tokens > 0  # what was generated before the hang-up is accounted


@pytest.mark.django_db(transaction=True)
def test_a_stream_read_to_the_end_completes_upstream(fake_openai, build, openai_client):
    """Control for the test above: the counters see a normal stream as completed."""
    fake_openai.reply_text = "a short and complete answer"
    fake_openai.chunk_delay = 0.01
    build.openai_route(fake_openai)
    chunks = list(openai_client(build.key()).chat.completions.create(
        model="chat-default", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a short and complete answer"
    assert wait_for(lambda: fake_openai.completed_streams == 1)
    assert fake_openai.aborted_streams == 0
    assert _only_record().status == "success"


# --- error events inside a 200 stream ------------------------------------------------------------------------
def _model(kind: str):
    from decimal import Decimal

    from providers.catalog import ModelInfo, ProviderInfo
    from providers.kinds import KINDS
    from providers.types import Price

    provider = ProviderInfo(id=1, name="prov", kind=kind, spec=KINDS[kind], base_url="http://127.0.0.1:9",
                            api_key="k", api_key_ref=None, timeout_s=5.0, options={})
    return ModelInfo(id=1, name="m", upstream_id="m", provider=provider, price=Price(Decimal(1), Decimal(1)),
                     context_window=None)


async def _drain(adapter, kind: str, raw: bytes) -> list:
    out = []
    async for chunk in adapter.parse_stream(_model(kind), _Response(raw)):
        out.append(chunk)
    return out


@pytest.mark.parametrize("error_type, kind", [("overloaded_error", K.UNAVAILABLE), ("rate_limit_error", K.RATE_LIMITED),
                                              ("api_error", K.UNAVAILABLE)])
async def test_anthropic_error_event_in_a_stream_is_classified(error_type, kind):
    raw = (b'event: message_start\ndata: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":5}}}\n\n'
           b'event: error\ndata: {"type":"error","error":{"type":"%s","message":"Overloaded"}}\n\n' % error_type.encode())
    with pytest.raises(ProviderError) as exc:
        await _drain(AnthropicAdapter(), "anthropic", raw)
    assert exc.value.kind is kind and "Overloaded" in exc.value.message


async def test_anthropic_stream_without_message_stop_is_a_bad_response():
    raw = (b'event: message_start\ndata: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":5}}}\n\n'
           b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
           b'"delta":{"type":"text_delta","text":"Hi"}}\n\n')
    with pytest.raises(ProviderError) as exc:
        await _drain(AnthropicAdapter(), "anthropic", raw)
    assert exc.value.kind is K.BAD_RESPONSE


@pytest.mark.parametrize("code, kind", [("rate_limit_exceeded", K.RATE_LIMITED), ("server_error", K.UNAVAILABLE)])
async def test_openai_error_event_in_a_stream_is_classified(code, kind):
    raw = b'data: {"error": {"message": "boom", "type": "x", "code": "%s"}}\n\n' % code.encode()
    with pytest.raises(ProviderError) as exc:
        await _drain(OpenAIAdapter(), "openai", raw)
    assert exc.value.kind is kind


async def test_openai_stream_without_done_is_a_bad_response():
    raw = b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    with pytest.raises(ProviderError) as exc:
        await _drain(OpenAIAdapter(), "openai", raw)
    assert exc.value.kind is K.BAD_RESPONSE


async def test_ollama_error_line_and_missing_done_are_errors():
    with pytest.raises(ProviderError) as exc:
        await _drain(OllamaAdapter(), "ollama", b'{"error":"an unknown error was encountered while running the model"}\n')
    assert exc.value.kind is K.UNAVAILABLE and "unknown error" in exc.value.message
    with pytest.raises(ProviderError) as exc:
        await _drain(OllamaAdapter(), "ollama", b'{"model":"m","message":{"role":"assistant","content":"Hi"},"done":false}\n')
    assert exc.value.kind is K.BAD_RESPONSE
