"""Shared fixtures: fake providers on 127.0.0.1, a live gateway, data builders.

The live gateway is the real ASGI application served by uvicorn in a background
thread of the test process, on a real port; official SDKs talk to it over HTTP.
Tests that use it need committed data: mark them `django_db(transaction=True)`.
"""

from __future__ import annotations

import socket
import threading
import time
from decimal import Decimal

import pytest

from tests.fakes import FakeAnthropic, FakeOllama, FakeOpenAI


def database_url() -> str:
    """The test database as a DATABASE_URL, for gateway processes started by tests
    (they must see the same data; tests using them need committed data)."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- fake providers (one server per session, reset between tests) ---------------
@pytest.fixture(scope="session")
def _openai_server():
    with FakeOpenAI(api_key="sk-upstream-openai-secret-1234") as fake:
        yield fake


@pytest.fixture(scope="session")
def _openai_server_b():
    with FakeOpenAI(api_key="sk-upstream-openai-secret-5678") as fake:
        yield fake


@pytest.fixture(scope="session")
def _anthropic_server():
    with FakeAnthropic(api_key="sk-ant-upstream-secret-9999") as fake:
        yield fake


@pytest.fixture(scope="session")
def _ollama_server():
    with FakeOllama() as fake:
        yield fake


def _fresh(fake):
    saved = {k: getattr(fake, k) for k in ("reply_text", "prompt_tokens", "completion_tokens", "chunk_delay",
                                          "api_key")}  # a test that changes the upstream key gets it back
    fake.reset()
    yield fake
    fake.reset()
    for k, v in saved.items():
        setattr(fake, k, v)


@pytest.fixture
def fake_openai(_openai_server):
    yield from _fresh(_openai_server)


@pytest.fixture
def fake_openai_b(_openai_server_b):
    yield from _fresh(_openai_server_b)


@pytest.fixture
def fake_anthropic(_anthropic_server):
    yield from _fresh(_anthropic_server)


@pytest.fixture
def fake_ollama(_ollama_server):
    yield from _fresh(_ollama_server)


# --- the gateway, live ------------------------------------------------------------
class LiveGateway:
    def __init__(self) -> None:
        import uvicorn

        from gateway_project.asgi import application

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            application, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", loop="asyncio"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-gateway", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live gateway did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def _ledger_connection_closed_at_the_end(django_db_setup, django_db_blocker):
    """The ledger thread keeps its connection for the process's life; give it back
    before the test database is dropped (PostgreSQL refuses while it is open)."""
    yield
    from billing.usage import close_ledger_connection

    with django_db_blocker.unblock():
        close_ledger_connection()


@pytest.fixture(scope="session")
def _live_gateway(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        gateway = LiveGateway()
        gateway.start()
        yield gateway
        gateway.stop()


@pytest.fixture
def gateway(_live_gateway, transactional_db):
    """Base URL of a running gateway that sees this test's (committed) data."""
    return _live_gateway.url


@pytest.fixture
def redis_sends(monkeypatch) -> list:
    """Every command batch the redis client writes from now on (one per round trip):
    tests that promise "one round trip" count them."""
    import redis.asyncio.connection

    sends: list = []
    original = redis.asyncio.connection.AbstractConnection.send_packed_command

    async def counting(self, command, check_health=True):
        sends.append(command)
        return await original(self, command, check_health)

    monkeypatch.setattr(redis.asyncio.connection.AbstractConnection, "send_packed_command", counting)
    # The limit store's scripts go over its own pipelined connection (billing/limits/redis_mux.py).
    from billing.limits import redis_mux

    mux_send = redis_mux._Protocol.send

    def mux_counting(self, data):
        sends.append(data)
        return mux_send(self, data)

    monkeypatch.setattr(redis_mux._Protocol, "send", mux_counting)
    return sends


@pytest.fixture(autouse=True)
def _fresh_config_caches():
    """Each test starts from what is in the database, not a previous test's cache."""
    from billing.admission import budgets
    from billing.auth_throttle import reset_auth_throttle_for_tests
    from billing.keys import key_cache
    from billing.limits import reset_limit_store_for_tests
    from guardrails.policy import guardrail_table
    from routing.breaker import reset_breaker_store_for_tests
    from routing.cache.store import reset_cache_store_for_tests
    from routing.catalog import routing_table
    from routing.health import reset_absorbed
    from routing.lookup import table_watch

    def fresh():
        routing_table.invalidate()
        guardrail_table.invalidate()
        table_watch.reset()
        reset_absorbed()
        budgets.invalidate()
        key_cache.clear()
        reset_limit_store_for_tests()
        reset_breaker_store_for_tests()
        reset_cache_store_for_tests()
        reset_auth_throttle_for_tests()

    fresh()
    yield
    fresh()


# --- data builders ------------------------------------------------------------------
@pytest.fixture
def build():
    return Builder()


class Builder:
    """Terse creation of providers/models/routes/keys for API tests: the factories
    (tests/factories.py) with the defaults these tests share."""

    def provider(self, fake=None, *, name=None, kind="openai", timeout_s="5", **kw):
        from providers.models import Provider
        from tests.factories import ProviderFactory

        if fake is not None:
            kw.setdefault("base_url", fake.base_url)
            kw.setdefault("api_key", fake.api_key or "")
        name = name or f"{kind}-{Provider.objects.count() + 1}"
        return ProviderFactory(name=name, kind=kind, timeout_s=Decimal(timeout_s), **kw)

    def model(self, provider, name="gpt-4o-mini", *, input_price="0.15", output_price="0.60", **kw):
        from tests.factories import ModelFactory

        return ModelFactory(
            provider=provider, name=name, input_price_per_mtok=Decimal(input_price),
            output_price_per_mtok=Decimal(output_price), **kw,
        )

    def route(self, name, *models, strategy="fallback", **kw):
        from tests.factories import RouteFactory, RouteTargetFactory

        kw.setdefault("max_attempts", 1)
        kw.setdefault("backoff_base_ms", 10)
        kw.setdefault("backoff_max_ms", 40)
        route = RouteFactory(name=name, strategy=strategy, **kw)
        for i, model in enumerate(models):
            RouteTargetFactory(route=route, model=model, order=i)
        return route

    def key(self, name="test-key", *, routes=(), team=None, **kw) -> str:
        from billing.keys import issue_key

        return issue_key(name, team=team, routes=routes, **kw).secret

    def openai_route(self, fake, name="chat-default", **kw) -> tuple:
        provider = self.provider(fake, name=kw.pop("provider_name", None))
        model = self.model(provider)
        return self.route(name, model, **kw), model


@pytest.fixture
def openai_client(gateway):
    import openai

    def make(key: str, **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=30, **kw)

    return make


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    """Poll until predicate() is truthy (for effects that finish after a response)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
