"""The production entry point: `daphne gateway_project.asgi:application` in its own
process, configured only by the environment, sharing the database with this test."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
from django.conf import settings
from django.db import connection

from billing.models import UsageRecord
from routing.models import Route
from tests.conftest import database_url, free_port, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def daphne(transactional_db):
    connection.ensure_connection()
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "GATEWAY_CONFIG_TTL_S": "0.5",
        "SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "gateway_project.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("daphne did not start:\n" + proc.stdout.read().decode(errors="replace"))
        time.sleep(0.1)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_daphne_streams_through_a_failing_first_target_and_sees_admin_edits(daphne, fake_openai, fake_openai_b, build):
    fake_openai_b.reply_text = "answer from the second target"
    first = build.model(build.provider(fake_openai, name="first"))
    second = build.model(build.provider(fake_openai_b, name="second"))
    build.route("chat-default", first, second)
    client = openai.OpenAI(base_url=f"{daphne}/v1", api_key=build.key(), max_retries=0)
    fake_openai.fail(500)

    chunks = list(client.chat.completions.create(
        model="chat-default", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True},
    ))

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "answer from the second target"
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.provider_name == "second" and record.attempts == 2 and record.completion_tokens > 0
    assert httpx.get(f"{daphne}/readyz").json()["database"] == "ok"

    # An edit made elsewhere (here: this process, standing in for the admin) reaches
    # the daphne process within its GATEWAY_CONFIG_TTL_S.
    Route.objects.filter(name="chat-default").update(enabled=False)
    started = time.monotonic()
    assert wait_for(lambda: _status(client) == 404, timeout=5)
    assert time.monotonic() - started < 3


def _status(client: openai.OpenAI) -> int:
    try:
        client.chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "x"}])
        return 200
    except openai.APIStatusError as exc:
        return exc.status_code
