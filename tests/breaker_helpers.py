"""Shared by the breaker, health-check and routing-header tests: a fresh breaker store
per test (in-process or Redis), reading a model's breaker, usage-record checks, and
gateway subprocesses (daphne, Celery worker) started against the test database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import redis

from billing.models import UsageRecord
from routing.breaker import BreakerStatus, LatencyStats, get_breaker_store, reset_breaker_store_for_tests
from tests.conftest import database_url, free_port, wait_for

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
BREAKER_REDIS_URL = "redis://127.0.0.1:6379/13"  # breakers shared by every gateway process
BROKER_REDIS_URL = "redis://127.0.0.1:6379/12"  # Celery broker of the health-check worker
MESSAGES = [{"role": "user", "content": "Tell me something"}]


def redis_up(url: str = BREAKER_REDIS_URL) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def flush(url: str) -> None:
    redis.Redis.from_url(url).flushdb()


needs_redis = pytest.mark.skipif(not redis_up(), reason="no Redis at 127.0.0.1:6379")


@pytest.fixture
def breakers(request, settings):
    """A fresh process-wide breaker store: "memory" (default) or "redis" (REDIS_URL
    set for this process, db 13 flushed before and after). Parametrize indirectly."""
    kind = getattr(request, "param", "memory")
    if kind == "redis":
        if not redis_up():
            pytest.skip("no Redis at 127.0.0.1:6379")
        flush(BREAKER_REDIS_URL)
    settings.REDIS_URL = BREAKER_REDIS_URL if kind == "redis" else ""
    reset_breaker_store_for_tests()
    yield kind
    reset_breaker_store_for_tests()
    if kind == "redis":
        flush(BREAKER_REDIS_URL)


BOTH_STORES = pytest.mark.parametrize("breakers", ["memory", "redis"], indirect=True)


def run(coro_fn: Callable[[], T]) -> T:
    """Run one store coroutine from a synchronous test (its own short-lived loop)."""
    return asyncio.run(coro_fn())


def breaker(model, route) -> BreakerStatus:
    """The breaker of `route`'s use of `model`, read with that route's policy, as the
    gateway sees it (breakers belong to route x model)."""
    from routing.catalog import breaker_key, breaker_policy

    return run(lambda: get_breaker_store().status(breaker_key(route.id, model.id), breaker_policy(route)))


def latency(model) -> LatencyStats:
    """The model's latency statistics (shared by every route that uses it)."""
    from routing.catalog import stats_key

    return run(lambda: get_breaker_store().latencies([stats_key(model.id)]))[stats_key(model.id)]


def wait_past_cooldown(model, route) -> None:
    status = breaker(model, route)
    assert status.retry_in_s is not None, f"breaker is {status.state}, not open"
    time.sleep(status.retry_in_s + 0.05)


def ask(client, model: str = "chat-default", **kw):
    """One chat completion through the gateway; the raw response (headers + parse())."""
    return client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, **kw)


def answer(raw) -> str:
    return raw.parse().choices[0].message.content


def all_at_once(n: int, fn: Callable[[int], T], in_flight: int | None = None) -> list[T]:
    """Call fn(0..n-1) from `in_flight` threads (default n), released together."""
    workers = in_flight or n
    barrier = threading.Barrier(workers)
    results: list[T | None] = [None] * n
    errors: list[BaseException] = []
    counter = iter(range(n))
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                results[i] = fn(i)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
                errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


def one_record_per_request(request_ids: list[str], *, others: int = 0) -> list[UsageRecord]:
    """Exactly one usage record for each request id (plus `others` for requests not listed)."""
    assert len(set(request_ids)) == len(request_ids)
    expected = len(request_ids) + others
    assert wait_for(lambda: UsageRecord.objects.count() >= expected, timeout=10)
    time.sleep(0.1)  # a double record would show up by now
    assert UsageRecord.objects.count() == expected
    records = {r.request_id: r for r in UsageRecord.objects.filter(request_id__in=request_ids)}
    assert set(records) == set(request_ids)
    return [records[rid] for rid in request_ids]


# --- subprocesses against the test database -----------------------------------------
def gateway_env(**extra: str) -> dict[str, str]:
    from django.conf import settings

    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
        "GATEWAY_CONFIG_TTL_S": "0.5",
    }
    env.pop("REDIS_URL", None)
    env.update(extra)
    return env


class Daphne:
    """`daphne gateway_project.asgi:application` in its own OS process."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = spawn(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "gateway_project.asgi:application"],
            env,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daphne did not start:\n" + self.stop())
            time.sleep(0.05)

    def stop(self) -> str:
        return stop_process(self.proc)


def celery_worker(env: dict[str, str]) -> subprocess.Popen:
    return spawn(
        [sys.executable, "-m", "celery", "-A", "gateway_project", "worker", "--pool=solo", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env,
    )


def spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen:
    # Output goes to a file, not a pipe nobody reads (a full pipe would block the child).
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log = log  # type: ignore[attr-defined]
    return proc


def stop_process(proc: subprocess.Popen) -> str:
    """Terminate (then kill) a child we started; return its output."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log = proc.log  # type: ignore[attr-defined]
    if log.closed:  # stopped before
        return ""
    log.seek(0)
    out = log.read().decode(errors="replace")
    log.close()
    return out
