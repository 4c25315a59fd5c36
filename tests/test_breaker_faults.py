"""Fault scenarios against the fake providers with breakers active: each request ends
in a fallback answer or a clean error with exactly one usage record, the failures
count against the target's breaker, and once it is open the target is not called."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import openai
import pytest

from routing.breaker import State
from tests.breaker_helpers import (
    MESSAGES,
    answer,
    ask,
    breaker,
    breakers,  # noqa: F401 - fixture
    one_record_per_request,
)
from tests.conftest import free_port, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("breakers")]
BACKUP = "backup/gpt-4o-mini"
THRESHOLD = 2


@dataclass(frozen=True)
class Fault:
    break_primary: Callable  # (fake, times) -> None
    outcomes: list[str]  # attempt outcomes of one request while the breaker is closed
    stream: bool = False
    answered: bool = True  # the client gets the backup's answer (else a clean error)
    provider: dict | None = None  # provider overrides (a dead port, a short timeout)
    route: dict | None = None


FAULTS = {
    # Two 429s in one request: retried after Retry-After, then the breaker is open.
    "429-retry-after": Fault(
        lambda f, n: f.fail(429, headers={"Retry-After": "0.2"}, times=n),
        ["rate_limited", "rate_limited", "ok"],
        route={"max_attempts": 2},
    ),
    "500": Fault(lambda f, n: f.fail(500, times=n), ["unavailable", "ok"]),
    "hang-past-timeout": Fault(lambda f, n: f.hang(3, times=n), ["timeout", "ok"], provider={"timeout_s": "0.5"}),
    "connection-refused": Fault(
        lambda f, n: None, ["unavailable", "ok"], provider={"base_url": "dead"}
    ),
    "stream-500": Fault(lambda f, n: f.fail(500, times=n), ["unavailable", "ok"], stream=True),
    "stream-cut-before-first-chunk": Fault(
        lambda f, n: f.cut_stream(after_chunks=0, times=n), ["bad_response", "ok"], stream=True
    ),
    "stream-cut-after-first-chunk": Fault(
        lambda f, n: f.cut_stream(after_chunks=1, times=n), ["ok"], stream=True, answered=False
    ),
}


def send(client, stream: bool) -> tuple[str, str]:
    """One request; (request id, the text received or "error: <message>")."""
    if not stream:
        try:
            raw = ask(client)
        except openai.APIStatusError as exc:
            return exc.response.headers["x-request-id"], f"error: {exc.message}"
        return raw.headers["x-request-id"], answer(raw)
    raw = ask(client, stream=True)
    text = []
    try:
        for chunk in raw.parse():
            text.extend(c.delta.content or "" for c in chunk.choices)
    except openai.APIError as exc:
        return raw.headers["x-request-id"], f"error: {exc.message}"
    return raw.headers["x-request-id"], "".join(text)


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_fault_ends_cleanly_counts_against_the_target_and_opens_its_breaker(
    name, fake_openai, fake_openai_b, build, openai_client
):
    fault = FAULTS[name]
    fake_openai.reply_text = "one two three four five"
    fake_openai_b.reply_text = "from backup"
    provider_kw = dict(fault.provider or {})
    if provider_kw.get("base_url") == "dead":
        provider_kw.update(base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k")
        primary_provider = build.provider(name="primary", **{"timeout_s": "2", **provider_kw})
    else:
        primary_provider = build.provider(fake_openai, name="primary", **{"timeout_s": "2", **provider_kw})
    primary = build.model(primary_provider)
    backup = build.model(build.provider(fake_openai_b, name="backup"))
    route = build.route(
        "chat-default", primary, backup, breaker_failure_threshold=THRESHOLD, breaker_failure_rate=0,
        breaker_cooldown_s=60, **(fault.route or {}),
    )
    failures_per_request = sum(o != "ok" for o in fault.outcomes) or 1  # a cut mid-stream: 1
    n = THRESHOLD // failures_per_request
    fault.break_primary(fake_openai, THRESHOLD)
    client = openai_client(build.key())

    started = time.monotonic()
    results = [send(client, fault.stream) for _ in range(n)]

    for _, text in results:
        if fault.answered:
            assert text == "from backup"
        else:  # the first words, then a clean in-band error (no fallback after the first byte)
            assert text.startswith("error: The stream was interrupted")
    records = one_record_per_request([rid for rid, _ in results])
    for record in records:
        assert [a["outcome"] for a in record.attempt_log] == fault.outcomes
        assert record.status == ("success" if fault.answered else "error")
        assert record.stream is fault.stream
    if not fault.answered:
        assert all(r.error_kind == "bad_response" and r.completion_tokens > 0 for r in records)
    if name == "429-retry-after":
        assert time.monotonic() - started >= 0.2  # the Retry-After was honoured before the retry
    status = breaker(primary, route)
    assert (status.state, status.opens) == (State.OPEN, 1)
    called = fake_openai.request_count

    rid, text = send(client, fault.stream)  # the open target is left alone

    assert text == "from backup"
    assert fake_openai.request_count == called
    (record,) = one_record_per_request([rid], others=n)
    assert [a["target"] for a in record.attempt_log] == [BACKUP]
    assert record.candidates[-1]["reason"].endswith("circuit breaker open")


def test_a_stream_cut_after_its_first_chunk_is_a_clean_error_counted_against_the_target(
    fake_openai, fake_openai_b, build, openai_client
):
    fake_openai.reply_text = "one two three four five"
    primary = build.model(build.provider(fake_openai, name="primary"))
    backup = build.model(build.provider(fake_openai_b, name="backup"))
    route = build.route("chat-default", primary, backup, breaker_failure_threshold=5, breaker_failure_rate=0)
    fake_openai.cut_stream(after_chunks=1)

    rid, text = send(openai_client(build.key()), stream=True)

    assert text.startswith("error: The stream was interrupted")
    assert fake_openai_b.request_count == 0  # no fallback once output was sent
    (record,) = one_record_per_request([rid])
    assert (record.status, record.error_kind, record.provider_name) == ("error", "bad_response", "primary")
    status = breaker(primary, route)
    assert (status.state, status.consecutive_failures, status.window_failures) == (State.CLOSED, 1, 1)


def test_a_client_disconnect_cancels_the_upstream_stream_and_does_not_count_against_it(
    fake_openai, build, openai_client
):
    fake_openai.reply_text = " ".join(f"w{i}" for i in range(40))
    fake_openai.chunk_delay = 0.1
    primary = build.model(build.provider(fake_openai, name="primary"))
    route = build.route("chat-default", primary, breaker_failure_threshold=1, breaker_failure_rate=0)
    client = openai_client(build.key())

    stream = client.chat.completions.create(model="chat-default", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()

    assert wait_for(lambda: fake_openai.aborted_streams == 1, timeout=6), "the upstream stream kept running"
    (record,) = one_record_per_request([wait_for(lambda: _only_request_id())])
    assert (record.status, record.http_status) == ("client_closed", 499)
    status = breaker(primary, route)
    assert (status.state, status.consecutive_failures) == (State.CLOSED, 0)


def _only_request_id() -> str | None:
    from billing.models import UsageRecord

    record = UsageRecord.objects.first()
    return record.request_id if record else None
