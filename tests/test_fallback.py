"""Fallback and retry against failing fake providers; exactly one usage record each."""

from __future__ import annotations

import time

import openai
import pytest

from billing.models import UsageRecord
from tests.conftest import free_port, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "Tell me something"}]


@pytest.fixture
def two_targets(fake_openai, fake_openai_b, build):
    """chat-default: primary (fake_openai) then backup (fake_openai_b)."""
    fake_openai.reply_text = "from primary"
    fake_openai_b.reply_text = "from backup"
    primary = build.model(build.provider(fake_openai, name="primary", timeout_s="1"))
    backup = build.model(build.provider(fake_openai_b, name="backup", timeout_s="1"))
    build.route("chat-default", primary, backup)
    return build.key()


def _only_record() -> UsageRecord:
    assert wait_for(lambda: UsageRecord.objects.count() >= 1)
    time.sleep(0.05)  # a second (double) record would show up by now
    return UsageRecord.objects.get()


@pytest.mark.parametrize(
    "break_primary, outcome",
    [
        (lambda f: f.fail(500), "unavailable"),
        (lambda f: f.fail(503), "unavailable"),
        (lambda f: f.fail(429, headers={"Retry-After": "0"}), "rate_limited"),
        (lambda f: f.hang(3), "timeout"),
        (lambda f: f.malformed(), "bad_response"),
        (lambda f: f.fail(401), "auth"),
    ],
    ids=["500", "503", "429", "timeout", "malformed", "auth"],
)
def test_non_stream_falls_back_to_the_next_target(two_targets, fake_openai, fake_openai_b, openai_client, break_primary, outcome):
    break_primary(fake_openai)
    raw = openai_client(two_targets).chat.completions.with_raw_response.create(model="chat-default", messages=MESSAGES)
    assert raw.parse().choices[0].message.content == "from backup"
    assert raw.headers["x-gateway-provider"] == "backup"
    assert raw.headers["x-gateway-attempts"] == "2"
    record = _only_record()
    assert record.status == "success" and record.provider_name == "backup" and record.attempts == 2
    assert [a["outcome"] for a in record.attempt_log] == [outcome, "ok"]


def test_connection_refused_falls_back(fake_openai_b, build, openai_client):
    fake_openai_b.reply_text = "from backup"
    dead = build.model(build.provider(name="dead", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k"))
    backup = build.model(build.provider(fake_openai_b, name="backup"))
    build.route("chat-default", dead, backup)
    answer = openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert answer.choices[0].message.content == "from backup"
    assert [a["outcome"] for a in _only_record().attempt_log] == ["unavailable", "ok"]


def test_openai_sdk_streams_through_a_route_whose_first_target_fails(two_targets, fake_openai, openai_client):
    fake_openai.fail(500)
    stream = openai_client(two_targets).chat.completions.create(
        model="chat-default", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from backup"
    assert chunks[-1].usage.completion_tokens == 2
    record = _only_record()
    assert record.stream and record.provider_name == "backup" and record.status == "success"


@pytest.mark.parametrize("break_primary", [lambda f: f.hang(3), lambda f: f.cut_stream(after_chunks=0), lambda f: f.fail(429)],
                         ids=["timeout", "cut-before-first-chunk", "429"])
def test_stream_failing_before_first_chunk_falls_back(two_targets, fake_openai, openai_client, break_primary):
    break_primary(fake_openai)
    chunks = list(openai_client(two_targets).chat.completions.create(model="chat-default", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from backup"
    assert _only_record().attempts == 2


def test_stream_cut_after_first_chunk_ends_with_an_error_event(two_targets, fake_openai, fake_openai_b, openai_client):
    fake_openai.reply_text = "alpha beta gamma delta"
    fake_openai.cut_stream(after_chunks=2)
    stream = openai_client(two_targets).chat.completions.create(model="chat-default", messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in stream:
            received.append(chunk)
    assert "interrupted" in str(exc.value.message)
    assert received  # the client got what was generated before the cut
    assert fake_openai_b.request_count == 0  # no fallback after the first byte
    record = _only_record()
    assert record.status == "error" and record.error_kind == "bad_response"
    assert record.completion_tokens > 0 and record.usage_estimated


def test_retry_on_same_target_honours_retry_after(fake_openai, build, openai_client):
    provider = build.provider(fake_openai, name="only")
    build.route("chat-default", build.model(provider), max_attempts=3)
    fake_openai.fail(429, headers={"Retry-After": "0.3"})
    started = time.monotonic()
    openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert time.monotonic() - started >= 0.3
    assert fake_openai.request_count == 2
    assert _only_record().attempts == 2


def test_retry_after_beyond_the_cap_moves_on_instead_of_waiting(two_targets, fake_openai, fake_openai_b, build, openai_client):
    from routing.models import Route

    Route.objects.filter(name="chat-default").update(max_attempts=3, retry_after_cap_s=1)
    fake_openai.fail(429, headers={"Retry-After": "30"})
    started = time.monotonic()
    answer = openai_client(two_targets).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert answer.choices[0].message.content == "from backup"
    assert time.monotonic() - started < 5 and fake_openai.request_count == 1


@pytest.mark.parametrize(
    "fail, status, exc_type",
    [
        (lambda f: f.fail(500, times=5), 503, openai.InternalServerError),
        (lambda f: f.hang(3, times=5), 504, openai.InternalServerError),
        (lambda f: f.malformed(times=5), 502, openai.InternalServerError),
    ],
    ids=["all-5xx", "all-timeout", "all-malformed"],
)
def test_every_attempt_failing_is_a_clear_5xx(two_targets, fake_openai, fake_openai_b, openai_client, fail, status, exc_type):
    fail(fake_openai)
    fail(fake_openai_b)
    with pytest.raises(exc_type) as exc:
        openai_client(two_targets).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert exc.value.status_code == status
    message = exc.value.response.json()["error"]["message"]
    assert "All 2 attempts" in message and "primary" in message and "backup" in message
    assert exc.value.response.headers["x-request-id"]
    record = _only_record()
    assert record.status == "error" and record.http_status == status and record.attempts == 2


def test_route_timeout_bounds_the_total_wait(fake_openai, fake_openai_b, build, openai_client):
    slow_a = build.model(build.provider(fake_openai, name="a", timeout_s="5"))
    slow_b = build.model(build.provider(fake_openai_b, name="b", timeout_s="5"))
    build.route("chat-default", slow_a, slow_b, timeout_s=1)
    fake_openai.hang(4)
    fake_openai_b.hang(4)
    started = time.monotonic()
    with pytest.raises(openai.InternalServerError) as exc:
        openai_client(build.key()).chat.completions.create(model="chat-default", messages=MESSAGES)
    assert exc.value.status_code == 504
    assert time.monotonic() - started < 2.5
