"""End to end through the live gateway: ~100 concurrent requests, a few answered with
absurd usage, the database refusing rows or down for the first writes. Every healthy
request gets its 200 and exactly one row (in the ledger, or dead-lettered and then
replayed by the command to exactly one ledger row); the absurd ones fall back or get
a 502 upstream_bad_response, never a 500."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from django.core.management import call_command

from billing.models import UsageDeadLetter, UsageRecord
from tests.conftest import wait_for
from tests.ledger_helpers import POISON_ROUTE, DatabaseDown, on_ledger_connection, poison_trigger
from tests.test_adapter_usage_values import openai_usage

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 100
ABSURD = [-3, 10**19, 12.5, "12", None, 2 * 10**9]


@pytest.fixture(autouse=True)
def dead_letter_file(settings, tmp_path):
    settings.GATEWAY_LEDGER_DEAD_LETTER_PATH = str(tmp_path / "dead.jsonl")
    return tmp_path / "dead.jsonl"


@pytest.fixture
def routes(fake_openai, fake_openai_b, build):
    fake_openai.chunk_delay = 0.002
    primary = build.model(build.provider(fake_openai, name="primary"))
    backup = build.model(build.provider(fake_openai_b, name="backup"))
    build.route("chat-default", primary, backup, breaker_failure_threshold=0)  # breaker off: every absurd answer reaches us
    build.route("chat-alone", primary, breaker_failure_threshold=0)
    return build.key()


def run_all(gateway: str, key: str, route_of) -> list[tuple[int, str, str]]:
    """(status, error code or '', request id) of REQUESTS concurrent requests, odd ones streamed."""

    async def one(http: httpx.AsyncClient, i: int):
        body = {"model": route_of(i), "stream": bool(i % 2), "messages": [{"role": "user", "content": f"q{i}"}]}
        response = await http.post("/v1/chat/completions", json=body)
        code = response.json()["error"]["code"] if response.status_code >= 400 else ""
        return response.status_code, code, response.headers.get("x-request-id", "")

    async def main():
        limits = httpx.Limits(max_connections=REQUESTS)
        async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {key}"},
                                     timeout=30, limits=limits) as http:
            return await asyncio.gather(*(one(http, i) for i in range(REQUESTS)))

    return asyncio.run(main())


def ledger_ids() -> Counter:
    return Counter(UsageRecord.objects.values_list("request_id", flat=True))


def test_absurd_usage_never_costs_healthy_requests_their_answer_or_row(fake_openai, routes, gateway):
    for value in ABSURD:
        fake_openai.mangle(openai_usage(value))
    results = run_all(gateway, routes, lambda i: "chat-default")
    assert Counter(status for status, _, _ in results) == {200: REQUESTS}
    assert wait_for(lambda: UsageRecord.objects.count() >= REQUESTS, timeout=15)
    ids = ledger_ids()
    assert set(ids) == {rid for _, _, rid in results} and set(ids.values()) == {1}
    # streams report usage at their end: the few absurd ones among them end in-band
    cut = UsageRecord.objects.filter(error_kind="bad_response").count()
    fell_back = UsageRecord.objects.filter(attempts=2, status="success").count()
    assert cut + fell_back == len(ABSURD)
    assert UsageDeadLetter.objects.count() == 0


def test_absurd_usage_alone_is_a_502_never_a_500(fake_openai, routes, gateway):
    for value in ABSURD:
        fake_openai.mangle(openai_usage(value))
    results = run_all(gateway, routes, lambda i: "chat-alone" if i % 2 == 0 else "chat-default")
    statuses = Counter(status for status, _, _ in results)
    assert 500 not in statuses and set(statuses) <= {200, 502}
    assert all(code == "upstream_bad_response" for status, code, _ in results if status == 502)
    assert wait_for(lambda: UsageRecord.objects.count() >= REQUESTS, timeout=15)
    assert set(ledger_ids().values()) == {1} and len(ledger_ids()) == REQUESTS


def test_a_database_down_for_the_first_writes_loses_no_row_and_the_replay_counts_each_once(
        fake_openai, routes, gateway, dead_letter_file):
    for value in ABSURD:
        fake_openai.mangle(openai_usage(value))
    with on_ledger_connection(DatabaseDown(statements=4)) as down:
        results = run_all(gateway, routes, lambda i: "chat-default")
    assert down.failed == 4
    assert Counter(status for status, _, _ in results) == {200: REQUESTS}
    expected = {rid for _, _, rid in results}
    in_file = dead_letter_file.read_bytes().count(b"\n") if dead_letter_file.exists() else 0
    assert in_file > 0  # the first batches went to the file
    assert wait_for(lambda: UsageRecord.objects.count() + in_file >= REQUESTS, timeout=15)
    assert UsageRecord.objects.count() + in_file == REQUESTS
    call_command("replay_usage_dead_letters")
    call_command("replay_usage_dead_letters")  # twice: still one row each
    ids = ledger_ids()
    assert set(ids) == expected and set(ids.values()) == {1}


def test_rows_the_database_refuses_are_dead_lettered_and_their_clients_still_answered(routes, build, gateway):
    from providers.models import Model

    build.route(POISON_ROUTE, Model.objects.get(provider__name="primary"), breaker_failure_threshold=0)
    with poison_trigger():
        results = run_all(gateway, routes, lambda i: POISON_ROUTE if i % 10 == 0 else "chat-default")
        assert Counter(status for status, _, _ in results) == {200: REQUESTS}
        assert wait_for(lambda: UsageRecord.objects.count() + UsageDeadLetter.objects.count() >= REQUESTS, timeout=15)
        assert UsageRecord.objects.count() == REQUESTS - REQUESTS // 10
        assert UsageDeadLetter.objects.count() == REQUESTS // 10
    call_command("replay_usage_dead_letters")  # the database takes them now
    ids = ledger_ids()
    assert set(ids) == {rid for _, _, rid in results} and set(ids.values()) == {1}

