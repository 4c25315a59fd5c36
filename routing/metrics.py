"""Prometheus series of the gateway (exported at /metrics: gateway_project.metrics_view).

Two kinds, kept apart on purpose:

- recorded on the hot path (counters and histograms below): in-memory increments,
  no I/O. With PROMETHEUS_MULTIPROC_DIR set in the environment *before the process
  starts*, prometheus_client keeps them in per-process files in that directory and
  one scrape sums every worker's (docs/operations/metrics.md).
- read at scrape time (the collectors at the end: breaker states from the breaker
  store, budgets' remaining money from the ledger, unpriced models): computed once
  per scrape by the process that serves it, so never counted once per worker.

Labels are route/provider/model (and team on the counters of spend and tokens);
never a key or user id: keys are many, and a label per key would let the series
grow without bound.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from prometheus_client import Counter, Histogram
from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger("gateway.metrics")
LABELS = ("route", "provider", "model")

REQUESTS = Counter(
    "gateway_requests_total",
    "Requests that reached a provider or a stage's answer, by outcome (error_kind: why an error or block ended it)",
    (*LABELS, "team", "status", "error_kind", "stream"),
)
LATENCY = Histogram(
    "gateway_request_latency_seconds",
    "Total request latency through the gateway: from receipt (before authentication) to the end of settlement",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
OVERHEAD = Histogram(
    "gateway_overhead_seconds",
    "The gateway's own time: total latency minus the time spent waiting on providers "
    "(every attempt's call, retry backoff, a stream's reads)",
    LABELS,
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
TTFT = Histogram(
    "gateway_time_to_first_token_seconds",
    "Time to the first streamed token",
    LABELS,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TOKENS = Counter(
    "gateway_tokens_total",
    "Tokens by type: input (all prompt tokens), output, cache_read and cache_write (the parts of input "
    "read from or written to the provider's prompt cache), reasoning (the part of output the model spent "
    "reasoning, where the provider reports it)",
    (*LABELS, "team", "type"),
)
COST = Counter("gateway_cost_usd_total", "Spend in USD", (*LABELS, "team"))
ATTEMPTS = Counter("gateway_upstream_attempts_total", "Upstream attempts by outcome", ("provider", "model", "outcome"))
REJECTED = Counter(
    "gateway_rejected_requests_total",
    "Requests refused before any provider call (code rate_limit_exceeded: a rate limit; *_budget_exceeded: a budget)",
    ("status", "code"),
)
CACHE = Counter(
    "gateway_cache_requests_total",
    "Cache outcomes: hit, semantic, coalesced (answered by an identical request in flight), miss, refresh, "
    "bypass (not cacheable or skipped by the client), error (the store could not be reached)",
    ("route", "result"),
)
CACHE_SAVED = Counter("gateway_cache_saved_usd_total", "What cache hits did not pay (the stored answers' cost)", ("route",))
CACHE_STORES = Counter("gateway_cache_stores_total", "Answers offered to the cache: stored, too_large, error", ("route", "outcome"))


# --- the hot path's children, looked up once -----------------------------------------------
# `metric.labels(...)` costs ~2.5 µs (str() of every value, a lock, a dict) and a request
# records nine series: the children of one (route, provider, model, team) are kept
# together, so a request pays one dict lookup. Bounded (label values come from the
# configuration, but a bound costs nothing); clearing it only costs the lookups again.
_MAX_SERIES = 10_000


class RequestSeries:
    """The children of one (route, provider, model, team): what `record_request` updates.
    TTFT and cost are created on first use, as `labels()` would (a route that never
    streams or never costs shows no such series)."""

    __slots__ = ("labels", "team", "latency", "overhead", "tokens", "_ttft", "_cost", "_reasoning", "_requests")

    def __init__(self, labels: tuple[str, str, str], team: str) -> None:
        self.labels, self.team = labels, team
        self.latency = LATENCY.labels(*labels)
        self.overhead = OVERHEAD.labels(*labels)
        self.tokens = tuple(TOKENS.labels(*labels, team, kind) for kind in ("input", "output", "cache_read", "cache_write"))
        self._ttft = self._cost = self._reasoning = None
        self._requests: dict[tuple[str, str, bool], object] = {}

    def requests(self, status: str, error_kind: str, stream: bool):
        key = (status, error_kind, stream)
        found = self._requests.get(key)
        if found is None:
            found = self._requests[key] = REQUESTS.labels(*self.labels, self.team, status, error_kind,
                                                          "true" if stream else "false")
        return found

    @property
    def ttft(self):
        if self._ttft is None:
            self._ttft = TTFT.labels(*self.labels)
        return self._ttft

    @property
    def reasoning(self):
        if self._reasoning is None:
            self._reasoning = TOKENS.labels(*self.labels, self.team, "reasoning")
        return self._reasoning

    @property
    def cost(self):
        if self._cost is None:
            self._cost = COST.labels(*self.labels, self.team)
        return self._cost


_series: dict[tuple[str, str, str, str], RequestSeries] = {}


def request_series(route: str, provider: str, model: str, team: str) -> RequestSeries:
    key = (route, provider, model, team)
    found = _series.get(key)
    if found is None:
        if len(_series) >= _MAX_SERIES:
            _series.clear()
        found = _series[key] = RequestSeries((route, provider, model), team)
    return found


def reset_series() -> None:
    """Forget the cached children (after a registry's metrics were cleared)."""
    _series.clear()


# --- read at scrape time ------------------------------------------------------------------
# gateway_breaker_state values (the contract: 0 closed, 1 half-open, 2 open).
BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


async def breaker_families() -> list[Metric]:
    """gateway_breaker_state{route,provider,model}, gateway_breaker_opens_total (the
    transitions into open: closed -> open and a failed half-open probe) and
    gateway_breaker_transitions_total{...,to} (open, half_open, closed), for every
    target of every enabled route, from the breaker store: one statuses() call (one
    Redis round trip) per route. With Redis the figures are the shared ones, the
    same whichever process is scraped. An unreachable store leaves both out."""
    from .breaker import get_breaker_store
    from .catalog import routing_table

    state = GaugeMetricFamily("gateway_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open",
                              labels=list(LABELS))
    opens = CounterMetricFamily("gateway_breaker_opens", "Times the breaker opened (closed -> open, and a failed "
                                "half-open probe), as the breaker store counts them", labels=list(LABELS))
    transitions = CounterMetricFamily(
        "gateway_breaker_transitions", "Breaker state changes by the state entered: open (tripped or a failed "
        "probe), half_open (a probe let through after the cooldown), closed (a probe succeeded or an operator "
        "reset it)", labels=[*LABELS, "to"])
    try:
        table = await routing_table.get()
        store = get_breaker_store()
        for route in table.routes.values():
            if not route.targets:
                continue
            statuses = await store.statuses([t.key for t in route.targets], route.breaker)
            for t in route.targets:
                status = statuses[t.key]
                labels = [route.name, t.model.provider.name, t.model.label]
                state.add_metric(labels, BREAKER_STATE_VALUES[status.state.value])
                opens.add_metric(labels, status.opens)
                transitions.add_metric([*labels, "open"], status.opens)
                transitions.add_metric([*labels, "half_open"], status.half_opens)
                transitions.add_metric([*labels, "closed"], status.closes)
    except Exception:  # noqa: BLE001 - a scrape must not fail because one source is down
        log.warning("metrics: breaker states could not be read", exc_info=True)
        return []
    return [state, opens, transitions]


def budget_families() -> list[Metric]:
    """gateway_budget_limit_usd and gateway_budget_remaining_usd of every enabled team
    and global budget, {budget (its id), scope, team, period}; remaining = limit minus
    billing.money.spent_in_period (the ledger: one aggregate query per budget, so the
    cost grows with the number of team budgets, not with traffic). Key budgets are
    left out: they would put a series per key in Prometheus. Synchronous (the ORM)."""
    from billing import money
    from billing.models import Budget

    limit = GaugeMetricFamily("gateway_budget_limit_usd", "A team or global budget's amount for its period",
                              labels=["budget", "scope", "team", "period"])
    remaining = GaugeMetricFamily("gateway_budget_remaining_usd", "What a team or global budget has left in its "
                                  "current period (negative when overspent)", labels=["budget", "scope", "team", "period"])
    try:
        for budget in Budget.objects.filter(enabled=True).exclude(scope=Budget.Scope.KEY).select_related("team"):
            labels = [str(budget.id), budget.scope, budget.team.name if budget.team else "", budget.period]
            limit.add_metric(labels, float(budget.amount_usd))
            remaining.add_metric(labels, float(budget.amount_usd - money.spent_in_period(budget)))
    except Exception:  # noqa: BLE001 - database down: the other series still scrape
        log.warning("metrics: budgets could not be read", exc_info=True)
        return []
    return [limit, remaining]


class Fixed:
    """A collector of metric families computed before the scrape (an async read)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self):
        return iter(self.families)


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


UNPRICED = _UnpricedCollector()
REGISTRY.register(UNPRICED)


def scrape_time_collectors() -> list:
    """The collectors registered on the default registry that read shared state at
    scrape time (not per-process values): in multiprocess mode the view adds them
    once to the registry it builds from the workers' files."""
    # billing.dead_letters registers an anonymous instance; the collector holds no
    # state, so a second one reads the same figures.
    from billing.dead_letters import _PendingCollector

    return [UNPRICED, _PendingCollector()]
