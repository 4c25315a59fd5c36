"""Fixtures of tests/test_provider_cohere*.py, loaded there as a plugin (`pytest_plugins`):
one fake Cohere server per session, reset between tests, and a route to it. A plugin's
fixtures are registered for the whole session, so every name here is Cohere's own, never
a common one such as `client` (which would replace pytest-django's for every test)."""

from __future__ import annotations

import pytest

from tests.cohere_helpers import COHERE_KEY, MODEL
from tests.fakes.cohere import FakeCohere


@pytest.fixture(scope="session")
def _cohere_server():
    with FakeCohere(api_key=COHERE_KEY) as fake:
        fake.embedding_size = 8
        yield fake


@pytest.fixture
def fake_cohere(_cohere_server):
    fake = _cohere_server
    saved = {k: getattr(fake, k) for k in ("reply_text", "prompt_tokens", "completion_tokens", "known_models")}
    fake.reset()
    yield fake
    fake.reset()
    for k, v in saved.items():
        setattr(fake, k, v)
    assert fake.errors == []


@pytest.fixture
def cohere_route(fake_cohere, build):
    """Route `chat-cohere` -> one Command A model priced $2.50 / $10 per million tokens."""
    provider = build.provider(fake_cohere, name="cohere-main", kind="cohere")
    model = build.model(provider, MODEL, input_price="2.5", output_price="10")
    build.route("chat-cohere", model)
    return model


@pytest.fixture
def cohere_client(cohere_route, build, openai_client):
    return openai_client(build.key())
