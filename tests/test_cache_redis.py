"""The cache's Redis store against the real Redis on this machine: answers stored
under hashed keys (never the payload) with the route's TTL, hits served from it,
purge deleting the route's keys, and an unreachable Redis degrading to misses."""

from __future__ import annotations

import json

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
