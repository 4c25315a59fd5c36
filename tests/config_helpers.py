"""Shared by the tests/test_config_*.py modules: a sample config file and ways to
load it, edit it and snapshot the database."""

from __future__ import annotations

from billing.models import Team
from providers.models import Model, Provider
from routing.config import load_config_text
from routing.models import Route, RouteTarget

LITERAL_SECRET = "sk-literal-upstream-secret-7f3a9c"

SCHEMA = """
providers:
  - name: upstream-a
    kind: openai
    base_url: http://127.0.0.1:18080/v1
    api_key: env:UPSTREAM_A_KEY
    timeout_s: 30
    options: {}
    enabled: true
    models:
      - name: gpt-4o-mini
        upstream_id: gpt-4o-mini-2024-07-18
        input_price_per_mtok: "0.15"
        output_price_per_mtok: "0.60"
        context_window: 128000
        enabled: true
      - name: gpt-4o
        input_price_per_mtok: 2.5
        output_price_per_mtok: 0.1
  - name: upstream-b
    kind: anthropic
    base_url: http://127.0.0.1:18081
    api_key: %s
    timeout_s: "12.5"
    options: {headers: {X-Org: research}}
    models:
      - name: claude
        input_price_per_mtok: 3
        output_price_per_mtok: "15"
routes:
  - name: chat-default
    strategy: fallback
    timeout_s: 60
    max_attempts: 2
    backoff_base_ms: 200
    backoff_max_ms: 5000
    retry_after_cap_s: 10
    retry_on: [rate_limited, timeout, unavailable, bad_response]
    enabled: true
    description: Default chat route.
    targets:
      - model: upstream-a/gpt-4o-mini
        weight: 1
        enabled: true
      - model: upstream-b/claude
  - name: chat-single
    strategy: single
    targets:
      - model: upstream-a/gpt-4o
teams:
  - name: research
    description: The research team.
""" % LITERAL_SECRET

# Every routing setting: one route per strategy that has settings of its own.
ROUTING = """
providers:
  - name: mock
    kind: mock
    models:
      - {name: fast, quality_score: 40}
      - {name: smart, quality_score: 85}
      - {name: coder, quality_score: 70}
routes:
  - name: chat-ab
    strategy: loadbalance
    sticky_by: user
    targets:
      - {model: mock/fast, weight: 3}
      - {model: mock/smart, weight: 1}
  - name: chat-fastest
    strategy: least_latency
    explore_rate: "0.25"
    targets: [{model: mock/fast}, {model: mock/smart}]
  - name: chat-cheap
    strategy: cost
    min_quality: 60
    targets: [{model: mock/fast}, {model: mock/coder}, {model: mock/smart}]
  - name: chat-tasks
    strategy: task
    targets:
      - model: mock/coder
        task_types: [code_generation, code_review]
      - model: mock/smart
  - name: chat-smart
    strategy: conditional
    rules:
      - when: metadata.tier == 'premium'
        targets: [mock/smart]
      - when: max_tokens > 2000 and stream == true
        targets: [mock/smart, mock/coder]
    breaker:
      failure_threshold: 3
      failure_rate: 0.25
      window_s: 120
      min_requests: 20
      cooldown_s: 45
      when_all_open: try_anyway
    targets: [{model: mock/fast}, {model: mock/smart}, {model: mock/coder}]
"""


def load(text: str = SCHEMA) -> dict:
    return load_config_text(text)


def load_routing() -> dict:
    return load_config_text(ROUTING)


def state() -> dict:
    """Everything an import may touch, to prove an import changed nothing."""
    return {
        "providers": list(Provider.objects.order_by("pk").values()),
        "models": list(Model.objects.order_by("pk").values()),
        "routes": list(Route.objects.order_by("pk").values()),
        "targets": list(RouteTarget.objects.order_by("pk").values()),
        "teams": list(Team.objects.order_by("pk").values()),
    }


def with_changes(edit) -> dict:
    data = load()
    edit(data)
    return data
