"""Prometheus series of the gateway, per route/provider/model (exported at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily  # the unpriced-models gauge (below)

LABELS = ("route", "provider", "model")

REQUESTS = Counter(
    "gateway_requests_total", "Requests that reached a provider, by outcome", (*LABELS, "status", "stream")
)
LATENCY = Histogram(
    "gateway_request_latency_seconds",
    "Total request latency through the gateway",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
TTFT = Histogram(
    "gateway_time_to_first_token_seconds",
    "Time to the first streamed token",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOKENS = Counter("gateway_tokens_total", "Tokens processed", (*LABELS, "type"))
COST = Counter("gateway_cost_usd_total", "Spend in USD", LABELS)
ATTEMPTS = Counter("gateway_upstream_attempts_total", "Upstream attempts by outcome", ("provider", "model", "outcome"))
REJECTED = Counter("gateway_rejected_requests_total", "Requests refused before any provider call", ("status", "code"))
CACHE = Counter(
    "gateway_cache_requests_total",
    "Cache outcomes: hit, semantic, coalesced (answered by an identical request in flight), miss, refresh, "
    "bypass (not cacheable or skipped by the client), error (the store could not be reached)",
    ("route", "result"),
)
CACHE_SAVED = Counter("gateway_cache_saved_usd_total", "What cache hits did not pay (the stored answers' cost)", ("route",))
CACHE_STORES = Counter("gateway_cache_stores_total", "Answers offered to the cache: stored, too_large, error", ("route", "outcome"))


# --- unpriced models (issue 14, docs/prices.md): read at scrape time ------------------
class _UnpricedCollector:
    """gateway_models_unpriced{provider,model} = 1 for every enabled model without a
    price (input and output 0 on a kind that is not free): its requests are served and
    recorded as unpriced, never silently billed at $0. One query per scrape."""

    def describe(self):
        return [GaugeMetricFamily("gateway_models_unpriced", "Enabled models without a price (1 each)",
                                  labels=["provider", "model"])]

    def collect(self):
        from providers.prices import unpriced_models  # the ORM: not at import time

        gauge = GaugeMetricFamily("gateway_models_unpriced", "Enabled models without a price (1 each)",
                                  labels=["provider", "model"])
        try:
            for provider, model in unpriced_models():
                gauge.add_metric([provider, model], 1)
        except Exception:  # noqa: BLE001 - database down or an async context: the other series still scrape
            pass
        yield gauge


REGISTRY.register(_UnpricedCollector())
