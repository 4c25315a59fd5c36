"""Budgets and rate limits on the hot path, through the live gateway."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import openai
import pytest

from billing.models import Budget, Team, UsageRecord, VirtualKey
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
MESSAGES = [{"role": "user", "content": "one two three four"}]


@pytest.fixture
def priced_route(fake_openai, build):
    """Each answer costs: prompt ~ (3+4 words) and 4 completion tokens at $1000/M in+out
    (expensive on purpose, so a small budget is reached after a few requests)."""
    fake_openai.reply_text = "a b c d"
    provider = build.provider(fake_openai, name="p")
    model = build.model(provider, input_price="1000", output_price="1000")
    build.route("chat-default", model)
    return model


def _answer_cost() -> Decimal:
    return UsageRecord.objects.filter(status="success").first().cost_usd


def test_over_budget_is_429_naming_the_budget_and_nothing_goes_upstream(priced_route, fake_openai, build, openai_client):
    secret = build.key("k")
    key = VirtualKey.objects.get(name="k")
    client = openai_client(secret)
    client.chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=4)
    one = _answer_cost()
    Budget.objects.create(scope="key", key=key, amount_usd=one * 2 + one / 2, period="month")
    client.chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=4)
    calls_before = fake_openai.request_count
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=4)
    error = exc.value.response.json()["error"]
    assert error["code"] == "key_budget_exceeded" and "budget" in error["message"]
    assert fake_openai.request_count == calls_before
    assert UsageRecord.objects.count() == 2


def test_concurrent_requests_never_overspend_the_budget(priced_route, fake_openai, build, gateway):
    fake_openai.chunk_delay = 0.01
    team = Team.objects.create(name="t")
    secret = build.key("k", team=team)
    Budget.objects.create(scope="team", team=team, amount_usd=Decimal("0.05"), period="day")

    async def fire():
        async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
            async def one(i):
                body = {"model": "chat-default", "messages": MESSAGES, "max_tokens": 4, "stream": bool(i % 2)}
                r = await http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {secret}"})
                await r.aread()
                return r.status_code
            return await asyncio.gather(*(one(i) for i in range(100)))

    statuses = asyncio.run(fire())
    assert set(statuses) <= {200, 429} and 429 in statuses and 200 in statuses
    assert wait_for(lambda: UsageRecord.objects.count() == statuses.count(200), timeout=10)
    spent = sum(r.cost_usd for r in UsageRecord.objects.all())
    assert spent <= Decimal("0.05")


def test_alert_only_budget_never_blocks(priced_route, build, openai_client):
    secret = build.key("k")
    Budget.objects.create(scope="global", amount_usd=Decimal("0.000001"), period="total", action="alert")
    client = openai_client(secret)
    for _ in range(3):
        client.chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=4)
    assert UsageRecord.objects.count() == 3


def test_rpm_limit_is_exact_with_openai_headers(priced_route, build, gateway):
    secret = build.key("k")
    VirtualKey.objects.filter(name="k").update(rpm_limit=5)
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {secret}"}) as http:
        answers = [http.post("/v1/chat/completions", json={"model": "chat-default", "messages": MESSAGES}) for _ in range(7)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    assert answers[0].headers["x-ratelimit-limit-requests"] == "5"
    assert answers[0].headers["x-ratelimit-remaining-requests"] == "4"
    refused = answers[-1]
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"


def test_tpm_limit_counts_actual_tokens(priced_route, build, gateway):
    secret = build.key("k")
    VirtualKey.objects.filter(name="k").update(tpm_limit=60)
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {secret}"}) as http:
        codes = [http.post("/v1/chat/completions", json={"model": "chat-default", "messages": MESSAGES}).status_code
                 for _ in range(10)]
    assert 429 in codes and codes.index(429) == codes.count(200)  # refused once full, and from then on
    totals = [r.prompt_tokens + r.completion_tokens for r in UsageRecord.objects.order_by("created_at")]
    # Admission counts the prompt estimate; settlement corrects to the actual count,
    # so only the last admitted request can overshoot, by its completion.
    assert sum(totals[:-1]) <= 60 < sum(totals) + totals[-1]


def test_a_rotated_key_and_its_replacement_share_one_budget(priced_route, build, openai_client):
    from billing.keys import rotate_key

    old_secret = build.key("k")
    key = VirtualKey.objects.get(name="k")
    openai_client(old_secret).chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=4)
    one = _answer_cost()
    Budget.objects.create(scope="key", key=key, amount_usd=one * 3 + one / 2, period="month")
    new_secret = rotate_key(key, grace_seconds=600).secret
    old_client, new_client = openai_client(old_secret), openai_client(new_secret)
    old_client.chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=4)  # grace period
    new_client.chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=4)
    for client in (old_client, new_client):  # 3 answers spent: neither key may add a 4th
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=4)
    assert UsageRecord.objects.filter(status="success").count() == 3


def test_n_choices_are_reserved_n_times(fake_openai, build, gateway):
    """A $0.01 budget once accepted `n: 128` and spent 82 times the budget: the
    reservation now counts every choice (billing.money.reservation_estimate)."""
    fake_openai.reply_text = "a b c d"
    model = build.model(build.provider(fake_openai, name="p"), input_price="100", output_price="1000")
    build.route("chat-default", model)
    secret = build.key("k")
    Budget.objects.create(scope="key", key=VirtualKey.objects.get(name="k"), amount_usd=Decimal("0.01"), period="month")
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as http:
        body = {"model": "chat-default", "messages": MESSAGES, "max_tokens": 4}
        calls_before = fake_openai.request_count
        many = http.post("/v1/chat/completions", json={**body, "n": 128})  # 9 + 128 x 4 tokens: ~$0.51
        assert many.status_code == 429 and many.json()["error"]["code"] == "key_budget_exceeded"
        assert fake_openai.request_count == calls_before  # nothing went upstream
        assert http.post("/v1/chat/completions", json=body).status_code == 200  # one choice fits ($0.0049)


@pytest.mark.parametrize("limits", [{"rpm_limit": 0}, {"tpm_limit": 0}, {"rpm_limit": 0, "tpm_limit": 1000}])
def test_a_key_limit_of_zero_allows_nothing(priced_route, build, gateway, fake_openai, limits):
    secret = build.key("k")
    VirtualKey.objects.filter(name="k").update(**limits)
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {secret}"}) as http:
        answer = http.post("/v1/chat/completions", json={"model": "chat-default", "messages": MESSAGES})
    assert answer.status_code == 429 and answer.json()["error"]["code"] == "rate_limit_exceeded"
    assert "is 0" in answer.json()["error"]["message"] and fake_openai.request_count == 0
    assert UsageRecord.objects.count() == 0


def test_a_team_limit_of_zero_pauses_every_key_of_the_team(priced_route, build, gateway):
    team = Team.objects.create(name="t", rpm_limit=0)
    secret = build.key("k", team=team, rpm_limit=100)
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {secret}"}) as http:
        answer = http.post("/v1/chat/completions", json={"model": "chat-default", "messages": MESSAGES})
    assert answer.status_code == 429 and "this key's team is 0 requests per minute" in answer.json()["error"]["message"]
    Team.objects.filter(pk=team.pk).update(rpm_limit=None)  # blank = no limit: the key's own limit alone
