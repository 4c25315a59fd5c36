"""The production shape on this machine: two gateway processes (the Dockerfile's uvicorn
command, each on its own port), a Celery worker and a Celery beat (compose.yaml's
commands), all on the suite's PostgreSQL database and one Redis, behind a fake provider.

Concurrent traffic (JSON and streams alternating, over both processes) against a team
budget, then: one usage record per answered request, by request id; spend exact (the
ledger's sum is what the shared budget counter holds, nothing left reserved, never over
the budget, refusals once it is spent); and the cost rollups that beat schedules and the
worker computes equal the ledger's sums.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from django.db import connection
from django.utils import timezone

from billing.admission import BudgetInfo, slot_for
from billing.limits import RedisLimitStore, to_units
from billing.models import Budget, CostRollup, Team, UsageRecord
from tests.breaker_helpers import flush, gateway_env, redis_up, spawn, stop_process
from tests.conftest import free_port, wait_for
from tests.deploy_helpers import compose_command, gateway_argv

REDIS_URL = "redis://127.0.0.1:6379/14"  # this suite's own Redis database
MESSAGES = [{"role": "user", "content": "one two three four"}]
REQUESTS = 80
BUDGET = Decimal("0.40")  # a request costs $0.011 (11 tokens at $1000/Mtok): about half of them fit

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the production shape runs on PostgreSQL"),
]


def _python(argv: list[str]) -> list[str]:
    """`uvicorn ...` / `celery ...` as this interpreter's module (the venv's console scripts)."""
    return [sys.executable, "-m", *argv]


class Fleet:
    """The processes of one deployment, started together, stopped (with their output) at the end."""

    def __init__(self, queue: str) -> None:
        self.metrics_dir = tempfile.TemporaryDirectory(prefix="gateway-metrics-")
        env = gateway_env(
            REDIS_URL=REDIS_URL, CELERY_BROKER_URL=REDIS_URL, WEB_CONCURRENCY="1",
            PROMETHEUS_MULTIPROC_DIR=self.metrics_dir.name,
        )
        self.ports = [free_port(), free_port()]
        self.gateways = [spawn(_python(gateway_argv(port)), env) for port in self.ports]
        # compose's worker and beat commands; the worker only takes this test's queue, under
        # a name of its own, so nothing else on this Redis can steal or send it work.
        worker = compose_command("worker") + ["-Q", queue, "-n", f"{queue}@%h"]
        self.worker = spawn(_python(worker), env)
        self.beat = spawn(_python(compose_command("beat")), env)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def wait_ready(self, timeout: float = 90) -> None:
        # Generous: four Django processes start at once on two cores (~10 s when idle).
        deadline = time.monotonic() + timeout
        for url, proc in zip(self.urls, self.gateways):
            last = ""
            while True:
                try:
                    answer = httpx.get(f"{url}/readyz", timeout=2)
                    if answer.status_code == 200:
                        break
                    last = answer.text
                except httpx.HTTPError as exc:
                    last = repr(exc)
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gateway {url} not ready ({last}):\n" + self.stop())
                time.sleep(0.1)

    def stop(self) -> str:
        for proc in [*self.gateways, self.worker, self.beat]:  # all at once: they drain in parallel
            if proc.poll() is None:
                proc.terminate()
        out = []
        for name, proc in [("gateway-1", self.gateways[0]), ("gateway-2", self.gateways[1]),
                           ("worker", self.worker), ("beat", self.beat)]:
            out.append(f"--- {name} (exit {proc.poll()}) ---\n{stop_process(proc)}")
        self.metrics_dir.cleanup()
        return "\n".join(out)


@pytest.fixture
def priced_route(fake_openai, build):
    fake_openai.reply_text = "a b c d"
    fake_openai.chunk_delay = 0.005
    model = build.model(build.provider(fake_openai, name="p"), input_price="1000", output_price="1000")
    build.route("chat-default", model)
    return fake_openai


@pytest.fixture
def rollup_every_second():
    """Beat's rollup-costs entry (gateway_project/schedule.py) every second, on a queue of
    this test's own: the database schedule is what editors change in the admin too."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from gateway_project.schedule import DEFAULT_SCHEDULE

    queue = f"test-scale-{uuid.uuid4().hex[:12]}"
    PeriodicTask.objects.exclude(name="rollup-costs").update(enabled=False)  # the others are not under test
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.update_or_create(
        name="rollup-costs", defaults={"task": DEFAULT_SCHEDULE["rollup-costs"][0], "interval": every, "queue": queue}
    )
    return queue


@pytest.fixture
def account(build) -> tuple[Team, str, Budget]:
    """A team with a monthly budget and a key; made before the processes start, so their
    first snapshots already hold them."""
    team = Team.objects.create(name="scale")
    secret = build.key("scale-key", team=team)
    return team, secret, Budget.objects.create(scope="team", team=team, amount_usd=BUDGET, period="month")


@pytest.fixture
def fleet(priced_route, account, rollup_every_second):
    if not redis_up(REDIS_URL):
        pytest.skip("no Redis at 127.0.0.1:6379")
    flush(REDIS_URL)
    fleet = Fleet(rollup_every_second)
    try:
        fleet.wait_ready()
        yield fleet
    finally:
        fleet.stop()
        flush(REDIS_URL)


async def _one(client: httpx.AsyncClient, secret: str, stream: bool) -> dict:
    """One request; what the client saw: status, request id, and whether the answer was whole."""
    body = {"model": "chat-default", "messages": MESSAGES, "max_tokens": 4, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    headers = {"Authorization": f"Bearer {secret}"}
    async with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
        raw = (await r.aread()).decode()
    seen = {"status": r.status_code, "request_id": r.headers.get("x-request-id"), "stream": stream,
            "gateway": str(client.base_url), "answered": False, "code": None}
    if r.status_code != 200:
        seen["code"] = json.loads(raw)["error"]["code"]
    elif stream:
        events = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
        seen["answered"] = events[-1:] == ["[DONE]"] and any(
            json.loads(e).get("usage") for e in events[:-1]
        )
    else:
        seen["answered"] = bool(json.loads(raw)["choices"][0]["message"]["content"])
    return seen


def _traffic(urls: list[str], secret: str, n: int, in_flight: int = 12) -> list[dict]:
    """n requests, `in_flight` at a time: process by i % 2, JSON or stream by (i // 2) % 2,
    so each process serves both kinds and both race for the same budget all along."""
    async def go() -> list[dict]:
        clients = [httpx.AsyncClient(base_url=u, timeout=30) for u in urls]
        gate = asyncio.Semaphore(in_flight)

        async def paced(i: int) -> dict:
            async with gate:
                return await _one(clients[i % 2], secret, bool((i // 2) % 2))

        try:
            return await asyncio.gather(*(paced(i) for i in range(n)))
        finally:
            for c in clients:
                await c.aclose()
    return asyncio.run(go())


def _budget_counter(budget: Budget) -> tuple[int, int]:
    """(spent, reserved) in units, as every gateway process sees the budget in Redis."""
    info = BudgetInfo(budget.id, budget.scope, None, budget.team_id, budget.amount_usd, budget.period, True, 80)
    slot = slot_for(info, timezone.now())

    async def read():
        store = RedisLimitStore(REDIS_URL)
        try:
            return (await store.usage([slot]))[slot.key]
        finally:
            await store.aclose()

    usage = asyncio.run(read())
    return usage.spent, usage.reserved


def test_two_gateways_worker_and_beat_on_postgres_and_redis(account, fleet, priced_route):
    team, secret, budget = account
    seen = _traffic(fleet.urls, secret, REQUESTS)

    answered = [s for s in seen if s["answered"]]
    refused = [s for s in seen if s["status"] == 429]
    assert len(answered) + len(refused) == REQUESTS, [s for s in seen if not s["answered"] and s["status"] != 429]
    assert {s["code"] for s in refused} == {"team_budget_exceeded"}
    # both processes served both kinds, and the budget ran out part way
    assert {(s["gateway"], s["stream"]) for s in answered} == {(u, k) for u in fleet.urls for k in (False, True)}
    assert answered and refused

    # one usage record per answered request, by request id; refused requests cost nothing
    ids = [s["request_id"] for s in answered]
    assert len(set(ids)) == len(ids) and None not in ids
    assert wait_for(lambda: UsageRecord.objects.count() >= len(ids), timeout=10)
    time.sleep(0.3)  # a duplicate would have landed by now
    records = list(UsageRecord.objects.all())
    assert sorted(r.request_id for r in records) == sorted(ids)
    assert all(r.status == UsageRecord.Status.SUCCESS and r.team_id == team.id for r in records)
    assert priced_route.request_count == len(ids)  # each answered request reached the provider once

    # the budget is exact: the shared counter holds the ledger's sum, nothing is left
    # reserved, and reservations of max_tokens never let spend pass the budget
    spent = sum(r.cost_usd for r in records)
    assert wait_for(lambda: _budget_counter(budget) == (to_units(spent), 0), timeout=5), (
        _budget_counter(budget), to_units(spent))
    assert BUDGET / 2 <= spent <= BUDGET, spent
    # one at a time now: what in-flight reservations held back admits a few more, then
    # the budget refuses, and spend never passes it
    statuses: list[int] = []
    while 429 not in statuses and len(statuses) < 20:
        statuses.append(_traffic(fleet.urls, secret, 1)[0]["status"])
    assert statuses[-1] == 429 and set(statuses) <= {200, 429}, statuses
    assert wait_for(lambda: UsageRecord.objects.count() == len(ids) + statuses.count(200))
    assert sum(r.cost_usd for r in UsageRecord.objects.all()) <= BUDGET

    # beat's rollup-costs, run by the worker, converges on the ledger's sums
    def rollups_match() -> bool:
        rows = CostRollup.objects.filter(team_id=team.id)
        ledger = UsageRecord.objects.all()
        return (sum(r.requests for r in rows), sum(r.cost_usd for r in rows),
                sum(r.prompt_tokens + r.completion_tokens for r in rows)) == (
            ledger.count(), sum(r.cost_usd for r in ledger),
            sum(r.prompt_tokens + r.completion_tokens for r in ledger))

    assert wait_for(rollups_match, timeout=20, interval=0.5), "rollups never matched the ledger:\n" + fleet.stop()
    rollup = CostRollup.objects.get(team_id=team.id)
    assert (rollup.route_name, rollup.provider_name, rollup.errors) == ("chat-default", "p", 0)
