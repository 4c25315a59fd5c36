"""Fixtures shared by the Bedrock gateway tests (tests/test_provider_bedrock*.py): one
fake Bedrock per session, reset around each test, and a route to it. A test module imports
the fixtures by their function names (`fake_bedrock_fixture`, ...); pytest knows them by
their `name` (`fake_bedrock`, ...), so test arguments never shadow an import."""

from __future__ import annotations

from decimal import Decimal
from collections.abc import Iterator

import pytest

from tests.conftest import _fresh
from tests.fakes.bedrock import FakeBedrock
from tests.sdk_helpers import only_record  # noqa: F401 - re-exported to this module's users

MODEL_ID = "anthropic.claude-3-5-sonnet-20240620-v1:0"
UPSTREAM_PATH = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
OPTIONS = {"region": "us-east-1"}


@pytest.fixture(scope="session", name="_bedrock_server")
def bedrock_server_fixture() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server
    assert server.errors == []


@pytest.fixture(name="fake_bedrock")
def fake_bedrock_fixture(_bedrock_server: FakeBedrock) -> Iterator[FakeBedrock]:
    yield from _fresh(_bedrock_server)


@pytest.fixture(name="bedrock_route")
def bedrock_route_fixture(fake_bedrock, build):
    """Route `chat-bedrock` -> one Bedrock model priced $3 / $15 per million tokens
    (cache reads $0.30, writes $3.75)."""
    provider = build.provider(fake_bedrock, name="br", kind="bedrock", options=dict(OPTIONS))
    model = build.model(provider, "claude-sonnet", upstream_id=MODEL_ID, input_price="3", output_price="15",
                        cache_read_price_per_mtok=Decimal("0.30"), cache_write_price_per_mtok=Decimal("3.75"))
    build.route("chat-bedrock", model)
    return model


@pytest.fixture(name="client")
def client_fixture(bedrock_route, build, openai_client):
    return openai_client(build.key())


def upstream_body(fake: FakeBedrock) -> dict:
    request = fake.last_request
    assert request is not None and request.path.startswith("/model/")
    return request.body
