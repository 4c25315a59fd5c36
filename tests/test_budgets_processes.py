"""Budgets and rate limits stay exact with two real gateway processes sharing Redis
(and the database: PostgreSQL in the suite's PostgreSQL run)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest

from billing.models import Budget, Team, UsageRecord, VirtualKey
from tests.breaker_helpers import Daphne, flush, gateway_env, redis_up
from tests.conftest import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
REDIS_URL = "redis://127.0.0.1:6379/10"
MESSAGES = [{"role": "user", "content": "one two three four"}]


@pytest.fixture
def two_gateways():
    if not redis_up(REDIS_URL):
        pytest.skip("no Redis at 127.0.0.1:6379")
    flush(REDIS_URL)
    gateways = [Daphne(gateway_env(REDIS_URL=REDIS_URL)) for _ in range(2)]
    try:
        for g in gateways:
            g.wait_ready()
        yield [g.url for g in gateways]
    finally:
        for g in gateways:
            g.stop()
        flush(REDIS_URL)


@pytest.fixture
def priced(fake_openai, build):
    fake_openai.reply_text = "a b c d"
    fake_openai.chunk_delay = 0.005
    model = build.model(build.provider(fake_openai, name="p"), input_price="1000", output_price="1000")
    build.route("chat-default", model)


def _fire(urls: list[str], secret: str, n: int) -> list[int]:
    async def go():
        clients = [httpx.AsyncClient(base_url=u, timeout=30) for u in urls]
        try:
            async def one(i):
                body = {"model": "chat-default", "messages": MESSAGES, "max_tokens": 4, "stream": bool(i % 3 == 0)}
                r = await clients[i % len(clients)].post(
                    "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"}
                )
                await r.aread()
                return r.status_code
            return await asyncio.gather(*(one(i) for i in range(n)))
        finally:
            for c in clients:
                await c.aclose()
    return asyncio.run(go())


def test_budget_holds_across_two_processes(two_gateways, priced, build):
    team = Team.objects.create(name="t")
    secret = build.key("k", team=team)
    budget = Decimal("0.08")
    Budget.objects.create(scope="team", team=team, amount_usd=budget, period="month")
    statuses = _fire(two_gateways, secret, 100)
    accepted = statuses.count(200)
    assert 0 < accepted < 100 and set(statuses) <= {200, 429}
    assert wait_for(lambda: UsageRecord.objects.count() == accepted, timeout=15)
    spent = sum(r.cost_usd for r in UsageRecord.objects.all())
    assert spent <= budget, f"spent {spent} over a budget of {budget}"
    # and the limit is not hopelessly conservative: most of the budget got used
    assert spent >= budget / 2


def test_rate_limit_exact_across_two_processes(two_gateways, priced, build):
    secret = build.key("k")
    VirtualKey.objects.filter(name="k").update(rpm_limit=30)
    statuses = _fire(two_gateways, secret, 80)
    assert statuses.count(200) == 30 and statuses.count(429) == 50
