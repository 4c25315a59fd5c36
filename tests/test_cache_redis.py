"""The cache's Redis store against the real Redis on this machine: answers stored
under hashed keys (never the payload) with the route's TTL, hits served from it,
purge deleting the route's keys, and an unreachable Redis degrading to misses."""

from __future__ import annotations

import json
import time

import pytest
import redis
from django.conf import settings
from prometheus_client import REGISTRY

from routing.cache.purge import purge_route
from routing.cache.store import RedisStore, get_cache_store, reset_cache_store_for_tests
from tests.conftest import wait_for

CACHE_REDIS_URL = "redis://127.0.0.1:6379/10"


def _redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(CACHE_REDIS_URL, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(not _redis_up(), reason=f"Redis unreachable at {CACHE_REDIS_URL}")]
Q = [{"role": "user", "content": "My card is on file; what is my plan's price?"}]


@pytest.fixture
def redis_cache(monkeypatch):
    client = redis.Redis.from_url(CACHE_REDIS_URL)
    client.flushdb()
    monkeypatch.setattr(settings, "GATEWAY_CACHE_REDIS_URL", CACHE_REDIS_URL)
    reset_cache_store_for_tests()
    yield client
    reset_cache_store_for_tests()
    client.flushdb()


def ask(client, **kw):
    return client.chat.completions.with_raw_response.create(model="chat-default", messages=Q, temperature=0, **kw)


def test_answers_live_in_redis_under_hashed_keys_with_the_routes_ttl(redis_cache, fake_openai, build, openai_client):
    route, _ = build.openai_route(fake_openai, cache_mode="exact", cache_ttl_s=300)
    client = openai_client(build.key())
    fake_openai.reply("Your plan costs $12.")
    assert ask(client).headers["x-gateway-cache"] == "miss"
    assert isinstance(get_cache_store(), RedisStore)
    keys = wait_for(lambda: redis_cache.keys("gw:cache:v1:*"))
    assert len(keys) == 1
    key = keys[0].decode()
    assert key.startswith(f"gw:cache:v1:{route.pk}:") and len(key.rsplit(":", 1)[1]) == 64  # a sha256, no payload
    assert "card" not in key and "plan" not in key
    assert 290 < redis_cache.ttl(key) <= 300
    stored = json.loads(redis_cache.get(key))
    assert stored["choices"][0]["message"]["content"] == "Your plan costs $12."
    hit = ask(client)
    assert hit.headers["x-gateway-cache"] == "hit" and hit.parse().choices[0].message.content == "Your plan costs $12."
    assert fake_openai.request_count == 1
    assert purge_route(route) == 1
    assert redis_cache.keys("gw:cache:v1:*") == []
    assert ask(client).headers["x-gateway-cache"] == "miss"


def test_an_unreachable_redis_makes_misses_not_errors(monkeypatch, fake_openai, build, openai_client):
    monkeypatch.setattr(settings, "GATEWAY_CACHE_REDIS_URL", "redis://127.0.0.1:1/0")
    reset_cache_store_for_tests()
    build.openai_route(fake_openai, cache_mode="exact")
    client = openai_client(build.key())
    before = REGISTRY.get_sample_value("gateway_cache_requests_total", {"route": "chat-default", "result": "error"}) or 0
    for _ in range(2):
        raw = ask(client)
        assert raw.status_code == 200 and raw.headers["x-gateway-cache"] == "miss"
    assert fake_openai.request_count == 2
    after = REGISTRY.get_sample_value("gateway_cache_requests_total", {"route": "chat-default", "result": "error"})
    assert after == before + 2
    reset_cache_store_for_tests()


@pytest.fixture
def two_gateways(redis_cache, transactional_db):
    """Two gateway processes (uvicorn) sharing the test database and the Redis cache."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    import httpx
    from django.db import connection

    from tests.conftest import database_url, free_port

    connection.ensure_connection()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DATABASE_URL": database_url(), "GATEWAY_CONFIG_TTL_S": "0.5",
           "SECRET_KEY": settings.SECRET_KEY, "DJANGO_SETTINGS_MODULE": "gateway_project.settings",
           "GATEWAY_CACHE_REDIS_URL": CACHE_REDIS_URL}
    procs, urls = [], []
    for _ in range(2):
        port = free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
             "gateway_project.asgi:application"], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
        urls.append(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 30
    for url, proc in zip(urls, procs):
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                for p in procs:
                    p.kill()
                raise RuntimeError("gateway did not start:\n" + proc.stdout.read().decode(errors="replace"))
            time.sleep(0.1)
    yield urls
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_identical_requests_on_two_processes_make_one_upstream_call(two_gateways, fake_openai, build):
    import threading

    import httpx

    build.openai_route(fake_openai, cache_mode="exact")
    key = build.key()
    fake_openai.hang(1.0)
    body = {"model": "chat-default", "messages": Q, "temperature": 0}
    results: list = [None] * 6

    def call(i):
        results[i] = httpx.post(f"{two_gateways[i % 2]}/v1/chat/completions", json=body, timeout=30,
                                headers={"authorization": f"Bearer {key}"})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join(30)
    assert all(r is not None and r.status_code == 200 for r in results), [r and r.text for r in results]
    assert fake_openai.request_count == 1
    assert sorted(r.headers["x-gateway-cache"] for r in results) == ["hit"] * 5 + ["miss"]
    assert len({r.json()["choices"][0]["message"]["content"] for r in results}) == 1
