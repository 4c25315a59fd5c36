"""Provider-reported usage is checked at the adapter boundary: a negative, fractional,
absurdly large, non-numeric or missing-where-needed count is the provider's
bad_response (fallback applies, the breaker counts it), never a 500 and never a
ledger row the database cannot hold. Fakes send the values over real HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from billing.models import UsageRecord
from providers.types import MAX_REPORTED_TOKENS, ErrorKind, ProviderError, reported_tokens
from tests.conftest import wait_for
from tests.test_adapter_usage_shapes import assert_classified_by_the_adapter

pytestmark = pytest.mark.django_db(transaction=True)

ABSURD = [-1, 10**19, MAX_REPORTED_TOKENS + 1, 12.5, "12", True, None, [3], {"n": 3}]


def openai_usage(value):
    def edit(obj):
        if isinstance(obj.get("usage"), dict):  # the answer, or a stream's usage chunk
            obj["usage"]["prompt_tokens"] = value
        return obj
    return edit


def anthropic_usage(value):
    def edit(obj):
        if isinstance(obj.get("usage"), dict) and "input_tokens" in obj["usage"]:  # a Message
            obj["usage"]["input_tokens"] = value
        if obj.get("type") == "message_start":
            obj["message"]["usage"]["input_tokens"] = value
        return obj
    return edit


def ollama_usage(value):
    def edit(obj):
        if obj.get("done"):
            obj["eval_count"] = value
        return obj
    return edit


KINDS = {
    "openai": ("fake_openai", openai_usage),
    "anthropic": ("fake_anthropic", anthropic_usage),
    "ollama": ("fake_ollama", ollama_usage),
}


@pytest.fixture(params=sorted(KINDS))
def broken(request, build, fake_openai_b):
    """(the primary's fake, its mangle builder, key): route chat-default = the primary of
    this kind, then an OpenAI backup."""
    fixture, mangler = KINDS[request.param]
    fake = request.getfixturevalue(fixture)
    kind = request.param
    primary = build.model(build.provider(fake, name="primary", kind=kind), "m-1")
    backup = build.model(build.provider(fake_openai_b, name="backup"))
    build.route("chat-default", primary, backup)
    build.route("chat-alone", primary)
    return kind, fake, mangler, build.key()


def post(gateway: str, key: str, route: str, stream: bool) -> httpx.Response:
    body = {"model": route, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def only_record() -> UsageRecord:
    assert wait_for(lambda: UsageRecord.objects.count() >= 1)
    time.sleep(0.05)
    return UsageRecord.objects.get()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize("value", ABSURD, ids=repr)
def test_absurd_usage_is_a_bad_response_and_the_route_falls_back(broken, gateway, value, stream, caplog):
    kind, fake, mangler, key = broken
    if kind == "ollama" and value is None:
        pytest.skip("Ollama's counters are optional: null is 0")
    fake.mangle(mangler(value))
    response = post(gateway, key, "chat-default", stream)
    assert response.status_code == 200, response.text
    record = only_record()
    assert 0 <= record.prompt_tokens <= MAX_REPORTED_TOKENS and 0 <= record.completion_tokens <= MAX_REPORTED_TOKENS
    assert_classified_by_the_adapter(caplog)
    if late_usage(kind, stream):
        assert_cut_by_bad_usage(response, record)
        return
    assert response.headers["x-gateway-provider"] == "backup"
    assert [a["outcome"] for a in record.attempt_log] == [ErrorKind.BAD_RESPONSE.value, "ok"]
    assert record.status == "success"


def late_usage(kind: str, stream: bool) -> bool:
    """OpenAI and Ollama streams report usage at their end, after the content was
    sent: too late to fall back (Anthropic's message_start carries the input count)."""
    return stream and kind in ("openai", "ollama")


def assert_cut_by_bad_usage(response: httpx.Response, record: UsageRecord) -> None:
    """The stream ends with an in-band error event (as any provider failure mid-stream);
    the row has the gateway's own count of what was sent."""
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert any('"error"' in event for event in events), response.text
    assert record.status == "error" and record.error_kind == ErrorKind.BAD_RESPONSE.value
    assert record.usage_estimated


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_absurd_usage_with_no_fallback_is_a_502_bad_response(broken, gateway, stream):
    kind, fake, mangler, key = broken
    fake.mangle(mangler(10**19))
    response = post(gateway, key, "chat-alone", stream)
    record = only_record()
    if late_usage(kind, stream):
        assert response.status_code == 200
        assert_cut_by_bad_usage(response, record)
        return
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "upstream_bad_response"
    assert record.status == "error" and record.error_kind == ErrorKind.BAD_RESPONSE.value


def test_absurd_usage_counts_against_the_breaker(broken, gateway):
    """Five bad answers in a row open the primary's breaker: the next request goes
    straight to the backup, without calling the primary."""
    kind, fake, mangler, key = broken
    fake.mangle(mangler(-7), times=5)
    for _ in range(5):
        assert post(gateway, key, "chat-default", False).status_code == 200
    time.sleep(0.1)  # failure reports may land just after the answer
    calls = fake.request_count
    assert post(gateway, key, "chat-default", False).headers["x-gateway-provider"] == "backup"
    assert fake.request_count == calls


def test_an_integral_float_is_a_count(broken, gateway):
    kind, fake, mangler, key = broken
    fake.mangle(mangler(12.0))
    response = post(gateway, key, "chat-default", False)
    assert response.status_code == 200 and response.headers["x-gateway-provider"] == "primary"
    usage = response.json()["usage"]
    assert 12 in (usage["prompt_tokens"], usage["completion_tokens"])


def test_openai_usage_that_is_not_an_object_is_a_bad_response(fake_openai, fake_openai_b, build, gateway):
    primary = build.model(build.provider(fake_openai, name="primary"))
    build.route("chat-default", primary, build.model(build.provider(fake_openai_b, name="backup")))
    key = build.key()
    fake_openai.mangle(lambda obj: {**obj, "usage": "plenty"})
    response = post(gateway, key, "chat-default", False)
    assert response.status_code == 200 and response.headers["x-gateway-provider"] == "backup"


@pytest.mark.parametrize("value, expected", [(0, 0), (7, 7), (7.0, 7), (MAX_REPORTED_TOKENS, MAX_REPORTED_TOKENS)])
def test_reported_tokens_accepts_whole_numbers_in_range(value, expected):
    assert reported_tokens(value, "p", "prompt tokens") == expected


@pytest.mark.parametrize("value", ABSURD + [float("inf"), float("nan")], ids=repr)
def test_reported_tokens_refuses_the_rest_as_bad_response(value):
    with pytest.raises(ProviderError) as caught:
        reported_tokens(value, "p", "prompt tokens")
    assert caught.value.kind is ErrorKind.BAD_RESPONSE


def test_an_optional_count_may_be_null():
    assert reported_tokens(None, "p", "cache_read_input_tokens", optional=True) == 0


def test_the_fake_really_sends_the_absurd_value(fake_openai):
    """The faults above are on the wire, not in the adapter."""
    fake_openai.mangle(openai_usage(10**19))
    raw = httpx.post(f"{fake_openai.base_url}/chat/completions",
                     json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]},
                     headers={"Authorization": f"Bearer {fake_openai.api_key}"}).content
    assert b'"prompt_tokens":10000000000000000000' in raw
