"""Shared by the tests/test_admin_*.py modules: a complete sample configuration and
response text for asserting error messages.

Import the `config` fixture by name into a test module to use it there."""

from __future__ import annotations

import pytest

from billing.keys import issue_key
from billing.models import UsageRecord

from .factories import ModelFactory, ProviderFactory, RouteFactory, RouteTargetFactory, TeamFactory


def errors_text(response) -> str:
    return response.content.decode()


@pytest.fixture
def config():
    """A small but complete configuration: two providers, a route, a key, a usage row."""
    route = RouteFactory(name="chat-default")
    first = RouteTargetFactory(route=route, order=0)
    RouteTargetFactory(route=route, order=1, model=ModelFactory(provider=ProviderFactory(kind="mock", base_url="")))
    issued = issue_key("search-backend", team=TeamFactory(), routes=[route])
    UsageRecord.objects.create(
        request_id="req-123",
        route_name=route.name,
        provider_name=first.model.provider.name,
        model_name=str(first.model),
        status=UsageRecord.Status.SUCCESS,
        http_status=200,
        prompt_tokens=12,
        completion_tokens=34,
        attempts=2,
        attempt_log=[
            {"target": "p/a", "outcome": "timeout", "latency_ms": 5000, "status": None},
            {"target": "p/b", "outcome": "ok", "latency_ms": 321, "status": None},
        ],
    )
    return {"route": route, "key": issued.key, "model": first.model, "provider": first.model.provider}
