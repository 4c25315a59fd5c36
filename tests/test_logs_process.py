"""LOG_FORMAT=json in real processes: a uvicorn gateway and a Celery worker, their
output parsed line by line — every line is one JSON object (the server's and the
worker's own lines too), each request's lines carry the x-request-id its client got,
and a task's lines its task id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.conftest import database_url, free_port, wait_for
from tests.factories import UsageRecordFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
PROVIDER_KEY = "sk-test-logs-process-provider-0123456789"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url(), "SECRET_KEY": settings.SECRET_KEY,
            "DJANGO_SETTINGS_MODULE": "gateway_project.settings", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
            "GATEWAY_CONFIG_TTL_S": "0.5", **extra}


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.terminate()
    try:
        out, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return out.decode(errors="replace"), err.decode(errors="replace")


def _parse_every_line(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except json.JSONDecodeError:
            pytest.fail(f"a line that is not JSON: {raw!r}\n--- whole output ---\n{text}")
        assert {"time", "level", "logger", "message"} <= set(lines[-1]), raw
    return lines


def _start_uvicorn(*args: str) -> tuple[str, subprocess.Popen]:
    connection.ensure_connection()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "gateway_project.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), *args],  # uvicorn's access log on: its lines must be JSON too
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = _stop(proc)
            raise RuntimeError(f"the gateway did not start:\n{out}\n{err}")
        time.sleep(0.1)
    return url, proc


@pytest.fixture
def json_gateway(transactional_db):
    url, proc = _start_uvicorn()
    yield url, proc
    if proc.poll() is None:
        _stop(proc)


def test_a_json_gateway_process_writes_only_json_lines_with_request_ids(json_gateway, build, fake_openai):
    url, proc = json_gateway
    fake_openai.api_key = PROVIDER_KEY
    build.route("chat-default", build.model(build.provider(fake_openai, name="upstream", api_key=PROVIDER_KEY)))
    key = build.key()
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "chat-default", "messages": [{"role": "user", "content": "process-marker prompt"}]}
    ok = [httpx.post(f"{url}/v1/chat/completions", headers=headers, json=body, timeout=30) for _ in range(3)]
    streamed = httpx.post(f"{url}/v1/chat/completions", headers=headers, json={**body, "stream": True}, timeout=30)
    refused = httpx.post(f"{url}/v1/chat/completions", headers={"authorization": "Bearer sk-gw-nope"}, json=body)
    assert [r.status_code for r in ok + [streamed, refused]] == [200, 200, 200, 200, 401]
    time.sleep(0.3)  # the access lines are written at settlement, right after the answer
    out, err = _stop(proc)

    lines = _parse_every_line(err) + _parse_every_line(out)
    loggers = {line["logger"] for line in lines}
    assert {"uvicorn.error", "uvicorn.access", "gateway.access"} <= loggers, loggers
    access = [line for line in lines if line["logger"] == "gateway.access"]
    ids = [r.headers["x-request-id"] for r in ok + [streamed]]
    assert [a["request_id"] for a in access if a["status"] == "success"] == ids
    assert all(a["provider"] == "upstream" and a["tokens_out"] > 0 for a in access if a["status"] == "success")
    assert [a["http_status"] for a in access if a["status"] == "rejected"] == [401]
    assert all(line["pid"] == proc.pid for line in lines)
    text = err + out
    assert "process-marker" not in text and key not in text and PROVIDER_KEY not in text


def test_a_json_celery_worker_logs_its_tasks_under_their_ids():
    from billing.models import UsageRecord
    from billing.tasks import prune_usage_records

    UsageRecordFactory(request_id="old", created_at=timezone.now() - timedelta(days=40))
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "gateway_project", "--quiet", "worker", "--pool=solo",
         "--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=ROOT, env=_env(GATEWAY_USAGE_RETENTION_DAYS="30"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        result = prune_usage_records.delay()  # the app's own broker (filesystem, or Redis when configured)
        assert wait_for(lambda: not UsageRecord.objects.filter(request_id="old").exists(), timeout=60, interval=0.2)
        time.sleep(0.5)  # the task's last lines (succeeded) come right after its work
    finally:
        out, err = _stop(worker)
    # Celery's shutdown notice is os.write() from its signal handler, not a log record:
    # the one text the worker's stdout may hold (docs/operations/logs.md).
    notices = [raw for raw in out.splitlines() if raw.strip()]
    assert all(raw.startswith("worker: ") and "shutdown" in raw for raw in notices), out
    lines = _parse_every_line(err)
    task_lines = [line for line in lines if line.get("request_id") == result.id]
    assert any("succeeded" in line["message"] for line in task_lines), lines
    assert any(line["message"].startswith("retention:") for line in task_lines), lines
    assert all(line["task"] == "billing.tasks.prune_usage_records" for line in task_lines)


def test_several_uvicorn_workers_with_the_shipped_log_config_write_only_json(transactional_db, build, fake_openai):
    """--workers N: uvicorn's supervisor logs before any worker imports Django; its
    lines are JSON with --log-config gateway_project/uvicorn_logging.json."""
    build.route("chat-default", build.model(build.provider(fake_openai)))
    key = build.key()
    url, proc = _start_uvicorn("--workers", "2", "--log-config", "gateway_project/uvicorn_logging.json")
    try:
        body = {"model": "chat-default", "messages": [{"role": "user", "content": "hi"}]}
        responses = [httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                                json=body, timeout=30) for _ in range(4)]
        assert all(r.status_code == 200 for r in responses)
        time.sleep(0.3)
    finally:
        out, err = _stop(proc)
    lines = _parse_every_line(err) + _parse_every_line(out)
    assert any(line["pid"] == proc.pid and "parent process" in line["message"] for line in lines)
    access = [line for line in lines if line["logger"] == "gateway.access"]
    assert sorted(a["request_id"] for a in access) == sorted(r.headers["x-request-id"] for r in responses)
    assert all(a["pid"] != proc.pid for a in access)  # served by the workers
