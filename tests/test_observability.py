"""/metrics, /healthz and /readyz as an operator uses them."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_metrics_have_per_route_model_provider_series(fake_openai, build, openai_client, gateway):
    _, model = build.openai_route(fake_openai)
    openai_client(build.key()).chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "x"}])
    text = httpx.get(f"{gateway}/metrics").text
    labels = f'model="{model.provider.name}/gpt-4o-mini",provider="{model.provider.name}",route="chat-default"'
    for series in ("gateway_requests_total", "gateway_request_latency_seconds_count", "gateway_tokens_total",
                   "gateway_cost_usd_total"):
        assert any(line.startswith(series + "{") and labels in line for line in text.splitlines()), series
    assert "gateway_upstream_attempts_total" in text


def test_health_endpoints(gateway):
    assert httpx.get(f"{gateway}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway}/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
