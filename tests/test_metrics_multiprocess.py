"""Several gateway processes, one scrape: two real uvicorn processes (the README's
flags) sharing PROMETHEUS_MULTIPROC_DIR; a scrape of either shows the requests both
served, and the series read at scrape time (breakers, budgets, dead letters) once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from django.conf import settings
from django.db import connection
from prometheus_client.parser import text_string_to_metric_families

from billing.models import Budget, Team, UsageRecord
from tests.conftest import database_url, free_port, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def start_gateway(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway_project.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--loop", "uvloop", "--http", "httptools", "--no-access-log"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("uvicorn did not start:\n" + proc.stdout.read().decode(errors="replace"))
        time.sleep(0.1)


@pytest.fixture
def two_gateways(transactional_db, tmp_path):
    connection.ensure_connection()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "GATEWAY_CONFIG_TTL_S": "0.5",
        "SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),  # emptied before the processes start, as documented
    }
    env.pop("REDIS_URL", None)
    procs = [start_gateway(env) for _ in range(2)]
    yield [url for _, url in procs], tmp_path
    for proc, _ in procs:
        proc.terminate()
    for proc, _ in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def samples(url: str) -> list:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def total(rows: list, name: str, **labels) -> float:
    return sum(s.value for s in rows if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_one_scrape_sums_the_requests_of_both_processes(two_gateways, fake_openai, build):
    (a, b), directory = two_gateways
    _, model = build.openai_route(fake_openai, provider_name="mp")
    team = Team.objects.create(name="mp-team")
    Budget.objects.create(scope="team", team=team, amount_usd=Decimal("3"), period="day")
    key = build.key(team=team)
    for url, n in ((a, 3), (b, 2)):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
        for _ in range(n):
            client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "hi"}])
    assert wait_for(lambda: UsageRecord.objects.count() == 5)
    assert len(list(directory.glob("*.db"))) >= 2  # each process writes its own files

    for url in (a, b):  # whichever process answers the scrape
        rows = samples(url)
        assert total(rows, "gateway_requests_total", provider="mp", team="mp-team", status="success") == 5
        assert total(rows, "gateway_request_latency_seconds_count", provider="mp") == 5
        assert total(rows, "gateway_overhead_seconds_count", provider="mp") == 5
        assert total(rows, "gateway_tokens_total", provider="mp", type="output") > 0
        # read at scrape time, by the serving process only: once, not once per worker
        breaker = [s for s in rows if s.name == "gateway_breaker_state" and s.labels.get("provider") == "mp"]
        assert len(breaker) == 1 and breaker[0].value == 0
        budget = [s for s in rows if s.name == "gateway_budget_remaining_usd" and s.labels.get("team") == "mp-team"]
        assert len(budget) == 1 and 0 < budget[0].value < 3
        pending = [s for s in rows if s.name == "gateway_ledger_dead_letters_pending"]
        assert sorted(s.labels["place"] for s in pending) == ["file", "table"]
        assert all("pid" not in s.labels for s in rows if s.name.startswith("gateway_"))
