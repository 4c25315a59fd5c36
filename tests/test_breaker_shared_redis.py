"""Two real gateway processes (daphne, REDIS_URL set) and this process's live gateway
share breaker state through Redis: failures seen by one process keep every other from
calling the target, and after the cooldown exactly one probe goes through among all."""

from __future__ import annotations

import openai
import pytest
from django.db import connection

from billing.models import UsageRecord
from routing.breaker import State
from tests.breaker_helpers import (
    BREAKER_REDIS_URL,
    Daphne,
    all_at_once,
    answer,
    ask,
    breaker,
    breakers,  # noqa: F401 - fixture
    gateway_env,
    needs_redis,
    wait_past_cooldown,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, needs_redis]
PRIMARY_LABEL, BACKUP_LABEL = "primary/gpt-4o-mini", "backup/gpt-4o-mini"


@pytest.fixture
def two_daphnes(transactional_db):
    connection.ensure_connection()
    env = gateway_env(REDIS_URL=BREAKER_REDIS_URL)
    processes = [Daphne(env), Daphne(env)]  # started together: their start-up overlaps
    try:
        for process in processes:
            process.wait_ready()
        yield processes
    finally:
        for process in processes:
            process.stop()


def sdk(gateway_url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway_url}/v1", api_key=key, max_retries=0, timeout=30)


@pytest.mark.parametrize("breakers", ["redis"], indirect=True)
def test_processes_sharing_redis_see_one_breaker(breakers, two_daphnes, fake_openai, fake_openai_b, build, openai_client):
    a, b = two_daphnes
    fake_openai.reply_text = "from primary"
    fake_openai_b.reply_text = "from backup"
    primary = build.model(build.provider(fake_openai, name="primary"))
    backup = build.model(build.provider(fake_openai_b, name="backup"))
    policy = {"breaker_failure_threshold": 3, "breaker_failure_rate": 0, "breaker_cooldown_s": 2}
    route = build.route("chat-default", primary, backup, **policy)
    build.route("solo", primary, **policy)
    key = build.key()
    client_a, client_b, client_here = sdk(a.url, key), sdk(b.url, key), openai_client(key)
    assert a.proc.pid != b.proc.pid
    fake_openai.fail(500, times=3)

    assert [answer(ask(client_a)) for _ in range(3)] == ["from backup"] * 3  # process A sees the failures

    status = breaker(primary, route)  # this process reads the same Redis
    assert (status.state, status.opens) == (State.OPEN, 1)
    for client in (client_b, client_here):  # ...and neither B nor this process calls the target
        raw = ask(client)
        assert answer(raw) == "from backup"
        assert raw.headers["x-gateway-attempt-log"] == f"{BACKUP_LABEL}=ok"
        assert raw.headers["x-gateway-candidates"] == f"{BACKUP_LABEL},{PRIMARY_LABEL}"
    # The breaker is chat-default's use of primary: "solo", another route to the same
    # model, keeps its own (closed) breaker, in every process.
    solo = ask(client_b, model="solo")
    assert (answer(solo), solo.headers["x-gateway-attempt-log"]) == ("from primary", f"{PRIMARY_LABEL}=ok")
    assert fake_openai.request_count == 4
    assert UsageRecord.objects.count() == 6

    wait_past_cooldown(primary, route)
    fake_openai.hang(1.0)  # the probe is slow: requests to all three processes come meanwhile
    clients = (client_a, client_b, client_here)
    raws = all_at_once(9, lambda i: ask(clients[i % 3]))

    assert fake_openai.request_count == 5  # one probe among all processes
    assert sorted(answer(r) for r in raws) == ["from backup"] * 8 + ["from primary"]
    status = breaker(primary, route)
    assert (status.state, status.opens) == (State.CLOSED, 1)
    assert answer(ask(client_b)) == "from primary"  # closed for every process
    assert answer(ask(client_a, model="solo")) == "from primary"
