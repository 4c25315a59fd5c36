"""Failed-authentication throttling on /v1 (billing.auth_throttle, docs/security/keys.md):
per client address and per key prefix, after N failures each further failure answered
429 too_many_failed_attempts no sooner than the interval after the previous one, so
many connections do not help; a valid key from the same address is always served at
once. In process and through Redis (DB 8)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time

import anthropic
import httpx
import openai
import pytest
import redis
from asgiref.sync import async_to_sync
from prometheus_client import REGISTRY

from billing import auth_throttle
from billing.auth_throttle import MemoryStore, Policy, RedisStore, client_address, presented_prefix
from gateway_project.errors import AuthenticationFailed

pytestmark = pytest.mark.django_db(transaction=True)
REDIS_TEST_URL = "redis://127.0.0.1:6379/8"
MESSAGES = [{"role": "user", "content": "hi"}]
BODY = {"model": "chat-default", "messages": MESSAGES}


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(params=["memory", "redis"])
def throttle(request, settings):
    """Small numbers so the tests run in seconds: 3 failures free, then one answer per 0.2 s."""
    if request.param == "redis":
        if not redis_up():
            pytest.skip("Redis is not reachable at 127.0.0.1:6379")
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()
        settings.REDIS_URL = REDIS_TEST_URL
    settings.GATEWAY_AUTH_THROTTLE_FAILURES = 3
    settings.GATEWAY_AUTH_THROTTLE_WINDOW_S = 60
    settings.GATEWAY_AUTH_THROTTLE_INTERVAL_S = 0.2
    settings.GATEWAY_AUTH_THROTTLE_MAX_WAIT_S = 5
    auth_throttle.reset_auth_throttle_for_tests()
    yield request.param
    auth_throttle.reset_auth_throttle_for_tests()


@pytest.fixture(autouse=True)
def _forget_failures():
    auth_throttle.reset_auth_throttle_for_tests()  # earlier tests' wrong keys from 127.0.0.1
    yield
    auth_throttle.reset_auth_throttle_for_tests()  # and ours, for the tests after


@pytest.fixture
def route(build, fake_openai):
    return build.openai_route(fake_openai)[0]


def wrong(i: int | str = 0) -> str:
    """A wrong key; each its own prefix (so only the address is a shared source)."""
    return "sk-gw-" + hashlib.sha256(str(i).encode()).hexdigest()[:38]


def failures(reason: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("gateway_auth_failures_total", {"reason": reason, "outcome": outcome}) or 0.0


# --- through the gateway, OpenAI format --------------------------------------------------------
def test_after_n_failures_the_answer_is_429_in_openai_format_and_spaced(throttle, route, gateway):
    before = failures("invalid_api_key", "throttled")
    with httpx.Client(base_url=gateway, timeout=30) as http:
        codes = []
        for i in range(3):
            answer = http.post("/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {wrong(i)}"})
            codes.append((answer.status_code, answer.json()["error"]["code"]))
        assert codes == [(401, "invalid_api_key")] * 3
        times, answers = [], []
        for i in range(3, 8):
            answers.append(http.post("/v1/chat/completions", json=BODY,
                                     headers={"Authorization": f"Bearer {wrong(i)}"}))
            times.append(time.monotonic())
    for answer in answers:
        assert answer.status_code == 429
        assert answer.json() == {"error": {
            "message": answer.json()["error"]["message"], "type": "invalid_request_error", "param": None,
            "code": "too_many_failed_attempts"}}
        assert int(answer.headers["retry-after"]) >= 59 and answer.headers["x-should-retry"] == "false"
        assert answer.headers["content-type"] == "application/json"
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 0.15, gaps  # one answer per interval (0.2 s)
    assert failures("invalid_api_key", "throttled") - before == 5


def test_a_valid_key_from_the_throttled_address_is_served_at_once(throttle, route, build, gateway, openai_client):
    good = build.key()
    with httpx.Client(base_url=gateway, timeout=30) as http:
        for i in range(6):
            http.post("/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {wrong(i)}"})
    # The address is throttled now; wrong keys keep arriving from other connections meanwhile.
    stop = threading.Event()

    def attack() -> None:
        with httpx.Client(base_url=gateway, timeout=30) as http:
            i = 100
            while not stop.is_set():
                http.post("/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {wrong(i)}"})
                i += 1

    attackers = [threading.Thread(target=attack) for _ in range(4)]
    for thread in attackers:
        thread.start()
    try:
        time.sleep(0.3)
        client = openai_client(good)
        latencies = []
        for _ in range(5):
            t0 = time.monotonic()
            assert client.chat.completions.create(model="chat-default", messages=MESSAGES).choices
            latencies.append(time.monotonic() - t0)
            assert client.models.list().data
    finally:
        stop.set()
        for thread in attackers:
            thread.join(timeout=30)
    assert max(latencies) < 1.0, latencies  # never held like a failure (those wait 0.2 s+ each)


def test_many_connections_get_no_more_answers_than_the_interval_allows(throttle, route, gateway):
    """16 concurrent connections for 2 s: at most 3 free answers + one per 0.2 s (+ slack)."""
    async def attack() -> tuple[int, float]:
        answered = 0
        async with httpx.AsyncClient(base_url=gateway, timeout=30,
                                     limits=httpx.Limits(max_connections=16)) as http:
            stop_at = time.monotonic() + 2.0

            async def one(n: int) -> None:
                nonlocal answered
                i = 0
                while time.monotonic() < stop_at:
                    answer = await http.post("/v1/chat/completions", json=BODY,
                                             headers={"Authorization": f"Bearer {wrong(f'{n}-{i}')}"})
                    if time.monotonic() <= stop_at:
                        assert answer.status_code in (401, 429)
                        answered += 1
                    i += 1

            started = time.monotonic()
            await asyncio.gather(*(one(n) for n in range(16)))
            return answered, time.monotonic() - started

    answered, _ = asyncio.run(attack())
    assert answered <= 3 + 2.0 / 0.2 + 3, answered  # ~13; unthrottled this is hundreds


def test_throttled_sources_become_free_after_a_quiet_window(throttle, settings, route, gateway):
    settings.GATEWAY_AUTH_THROTTLE_WINDOW_S = 1
    with httpx.Client(base_url=gateway, timeout=30) as http:
        statuses = [http.get("/v1/models", headers={"Authorization": f"Bearer {wrong(i)}"}).status_code
                    for i in range(5)]
        assert statuses == [401, 401, 401, 429, 429]
        time.sleep(1.2)
        assert http.get("/v1/models", headers={"Authorization": f"Bearer {wrong(9)}"}).status_code == 401


def test_missing_and_malformed_keys_count_too(throttle, route, gateway):
    with httpx.Client(base_url=gateway, timeout=30) as http:
        statuses = [http.post("/v1/chat/completions", json=BODY).status_code for _ in range(3)]
        statuses.append(http.post("/v1/chat/completions", json=BODY, headers={"Authorization": "Basic abc"}).status_code)
    assert statuses == [401, 401, 401, 429]


# --- every /v1 endpoint, in its API's format ---------------------------------------------------
def exhaust(gateway: str, n: int = 3) -> None:
    with httpx.Client(base_url=gateway, timeout=30) as http:
        for i in range(n):
            assert http.get("/v1/models", headers={"Authorization": f"Bearer {wrong(f'e{i}')}"}).status_code == 401


def test_anthropic_messages_throttled_in_anthropic_format(throttle, route, gateway):
    exhaust(gateway)
    client = anthropic.Anthropic(base_url=gateway, api_key=wrong("a"), max_retries=0, timeout=30)
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="chat-default", max_tokens=10, messages=MESSAGES)
    body = limited.value.body
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert "failed authentication" in body["error"]["message"]
    assert limited.value.response.headers["retry-after"]
    with httpx.Client(base_url=gateway, timeout=30) as http:  # count_tokens and Anthropic's /v1/models too
        counted = http.post("/v1/messages/count_tokens", headers={"x-api-key": wrong("b")},
                            json={"model": "chat-default", "messages": MESSAGES})
        models = http.get("/v1/models", headers={"x-api-key": wrong("c"), "anthropic-version": "2023-06-01"})
    for answer in (counted, models):
        assert answer.status_code == 429 and answer.json()["error"]["type"] == "rate_limit_error"


def test_responses_embeddings_and_models_throttled_in_openai_format(throttle, route, gateway):
    exhaust(gateway)
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=wrong("o"), max_retries=0, timeout=30)
    calls = [
        lambda: client.responses.create(model="chat-default", input="hi"),
        lambda: client.embeddings.create(model="chat-default", input="hi"),
        lambda: client.models.retrieve("chat-default"),
        lambda: client.models.list(),
        lambda: client.chat.completions.create(model="chat-default", messages=MESSAGES),
    ]
    for call in calls:
        with pytest.raises(openai.RateLimitError) as limited:
            call()
        assert limited.value.code == "too_many_failed_attempts"
        assert set(limited.value.response.json()["error"]) == {"message", "type", "param", "code"}


def test_the_sdk_does_not_retry_a_throttled_answer(throttle, route, gateway):
    exhaust(gateway)
    sent = []
    hooks = {"request": [sent.append]}
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=wrong("r"), max_retries=3, timeout=30,
                           http_client=httpx.Client(event_hooks=hooks))
    with pytest.raises(openai.RateLimitError):
        client.models.list()
    assert len(sent) == 1  # x-should-retry: false


def test_off_switch(settings, route, gateway):
    settings.GATEWAY_AUTH_THROTTLE = False
    settings.GATEWAY_AUTH_THROTTLE_FAILURES = 1
    with httpx.Client(base_url=gateway, timeout=30) as http:
        statuses = {http.get("/v1/models", headers={"Authorization": f"Bearer {wrong(i)}"}).status_code
                    for i in range(5)}
    assert statuses == {401}


# --- sources ------------------------------------------------------------------------------------
def call_failed(address: str, key: str | None) -> int:
    scope = {"client": (address, 5000)}
    error = async_to_sync(auth_throttle.failed)(scope, f"Bearer {key}" if key else None,
                                                AuthenticationFailed("Invalid API key provided."))
    return error.status


def test_per_key_prefix_across_addresses(throttle):
    statuses = [call_failed(f"10.0.0.{i}", "sk-gw-SAMEPREFIX-" + str(i)) for i in range(5)]
    assert statuses == [401, 401, 401, 429, 429]  # one prefix, five addresses
    # other prefixes from other addresses are not affected
    assert [call_failed(f"10.0.1.{i}", f"sk-gw-{i:06d}-other") for i in range(3)] == [401] * 3


def test_per_address_across_prefixes_and_ipv6_by_its_64(throttle):
    statuses = [call_failed(f"2001:db8:1:2::{i:x}", f"sk-gw-{i:06d}") for i in range(1, 6)]
    assert statuses == [401, 401, 401, 429, 429]  # five addresses of one /64
    assert call_failed("2001:db8:1:3::1", "sk-gw-elsewhere") == 401  # the next /64 is another source


def test_client_address_normalisation():
    assert client_address({"client": ("203.0.113.7", 1)}) == "203.0.113.7"
    assert client_address({"client": ("::ffff:203.0.113.7", 1)}) == "203.0.113.7"
    assert client_address({"client": ("2001:db8::1", 1)}) == "2001:db8::/64"
    assert client_address({"client": None}) == "-" and client_address({}) == "-"
    assert client_address({"client": ("/run/gw.sock", None)}) == "/run/gw.sock"
    assert presented_prefix("Bearer sk-gw-abcdefghijklmnop") == "sk-gw-abcdef"
    assert presented_prefix(None) is None and presented_prefix("Basic x") is None


def test_x_forwarded_for_counts_only_from_a_trusted_proxy(throttle, route):
    """The address is the server's scope client: uvicorn takes X-Forwarded-For only from
    FORWARDED_ALLOW_IPS (docs/security/keys.md). Both sides of that, on the real app."""
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from gateway_project.asgi import application

    async def get(app, peer: str, forwarded: str) -> int:
        transport = httpx.ASGITransport(app=app, client=(peer, 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            answer = await http.get("/v1/models", headers={"Authorization": f"Bearer {wrong(forwarded)}",
                                                           "X-Forwarded-For": forwarded})
            return answer.status_code

    trusted = ProxyHeadersMiddleware(application, trusted_hosts="10.9.9.9")

    async def scenario() -> tuple[list[int], list[int]]:
        # From the trusted proxy: each forwarded client is its own source.
        via_proxy = [await get(trusted, "10.9.9.9", f"198.51.100.{i}") for i in range(5)]
        # From anyone else: the header is ignored, all five are the peer's failures.
        spoofed = [await get(trusted, "192.0.2.50", f"198.51.101.{i}") for i in range(5)]
        return via_proxy, spoofed

    via_proxy, spoofed = async_to_sync(scenario)()
    assert via_proxy == [401] * 5
    assert spoofed == [401, 401, 401, 429, 429]


# --- the stores ------------------------------------------------------------------------------------
POLICY = Policy(failures=2, window_ms=10_000, interval_ms=100, max_wait_ms=250)


def test_memory_store_slots_and_cap():
    store = MemoryStore()

    async def run():
        return [await store.fail(["s"], POLICY) for _ in range(7)]

    decisions = async_to_sync(run)()
    assert [d.throttled for d in decisions] == [False, False, True, True, True, True, True]
    waits = [d.wait_ms for d in decisions]
    assert waits[:3] == [0, 0, 0] and 90 <= waits[3] <= 100 and 190 <= waits[4] <= 200
    assert all(w <= 250 for w in waits)  # capped
    assert all(9_000 <= d.retry_after_ms <= 10_000 for d in decisions[2:])


def test_memory_store_stays_bounded():
    store = MemoryStore(max_sources=50)

    async def run():
        for i in range(500):
            await store.fail([f"s{i}"], POLICY)

    async_to_sync(run)()
    assert len(store._state) <= 50


@pytest.mark.skipif(not redis_up(), reason="Redis is not reachable at 127.0.0.1:6379")
def test_redis_state_is_shared_by_processes_and_matches_the_memory_store():
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    first, second, memory = RedisStore(REDIS_TEST_URL), RedisStore(REDIS_TEST_URL), MemoryStore()

    async def run():
        shared = [await (first if i % 2 else second).fail(["src"], POLICY) for i in range(6)]
        local = [await memory.fail(["src"], POLICY) for _ in range(6)]
        return shared, local

    shared, local = async_to_sync(run)()
    assert [d.throttled for d in shared] == [d.throttled for d in local] == [False, False, True, True, True, True]
    for a, b in zip(shared, local):
        assert abs(a.wait_ms - b.wait_ms) <= 30  # the same slots, whichever process asked
    keys = redis.Redis.from_url(REDIS_TEST_URL).keys("gw:af:*")
    assert keys == [b"gw:af:src"] and 0 < redis.Redis.from_url(REDIS_TEST_URL).pttl(keys[0]) <= 10_000 + 250 + 1000


def test_redis_down_falls_back_to_the_process(settings, route, gateway, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/8"  # nothing listens there
    settings.GATEWAY_AUTH_THROTTLE_FAILURES = 2
    auth_throttle.reset_auth_throttle_for_tests()
    auth_throttle._store = RedisStore(settings.REDIS_URL)  # only the throttle: the rest of the gateway has no Redis
    settings.REDIS_URL = ""
    with httpx.Client(base_url=gateway, timeout=30) as http:
        statuses = [http.get("/v1/models", headers={"Authorization": f"Bearer {wrong(i)}"}).status_code
                    for i in range(4)]
    assert statuses == [401, 401, 429, 429]
    assert "Redis unavailable" in caplog.text


def test_no_key_or_address_in_the_metric_or_redis(throttle, route, gateway):
    with httpx.Client(base_url=gateway, timeout=30) as http:
        for i in range(5):
            http.get("/v1/models", headers={"Authorization": f"Bearer {wrong(i)}"})
    from prometheus_client import generate_latest

    text = generate_latest(REGISTRY).decode()
    lines = [line for line in text.splitlines() if line.startswith("gateway_auth_failures_total{")]
    assert lines and all("sk-gw" not in line and "127.0.0.1" not in line for line in lines)
    assert {label.split("=")[0] for line in lines for label in line.split("{")[1].split("}")[0].split(",")} == {
        "reason", "outcome"}
    if throttle == "redis":
        stored = redis.Redis.from_url(REDIS_TEST_URL).keys("gw:af:*")
        assert stored and all(b"sk-gw" not in k and b"127.0.0.1" not in k for k in stored)
