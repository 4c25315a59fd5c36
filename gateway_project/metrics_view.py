"""/metrics: the Prometheus exposition of every series, behind an optional guard.

Who may scrape (settings, both checked when both are set):
- GATEWAY_METRICS_ALLOW: the client addresses (CIDR list) allowed; empty = any.
  Default 127.0.0.1 and ::1 only. The address is the connection's (REMOTE_ADDR):
  X-Forwarded-For is not trusted. Outside the list: 403.
- GATEWAY_METRICS_TOKEN: when set, `Authorization: Bearer <token>` is required;
  missing or wrong: 401 (compared in constant time).

What is served: with PROMETHEUS_MULTIPROC_DIR set, the sum of every worker's files
(prometheus_client's MultiProcessCollector) plus the scrape-time collectors once;
without it, this process's registry. Either way the series read from shared state
(breaker states from the breaker store, budgets from the ledger) are read here, by
the process that serves the scrape (routing.metrics).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from functools import lru_cache

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import REGISTRY, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from routing import metrics


@lru_cache(maxsize=8)
def _networks(allow: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in allow if cidr.strip())


def refusal(request: HttpRequest) -> HttpResponse | None:
    """The 401/403 for a caller the settings do not let scrape, else None."""
    networks = _networks(tuple(settings.GATEWAY_METRICS_ALLOW))
    if networks:
        try:
            address = ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "")
        except ValueError:
            address = None
        if address is None or not any(address in net for net in networks if net.version == address.version):
            return HttpResponse("metrics: this address may not scrape (GATEWAY_METRICS_ALLOW)\n", status=403,
                                content_type="text/plain")
    token = settings.GATEWAY_METRICS_TOKEN
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            response = HttpResponse("metrics: a bearer token is required (GATEWAY_METRICS_TOKEN)\n", status=401,
                                    content_type="text/plain")
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    return None


def render(prefetched: list[Metric]) -> bytes:
    """The exposition text (synchronous: the scrape-time collectors use the ORM)."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # every worker's counters and histograms, summed
        for collector in metrics.scrape_time_collectors():
            registry.register(collector)
    else:
        registry.register(metrics.Fixed(REGISTRY.collect()))
    registry.register(metrics.Fixed(prefetched + metrics.budget_families()))
    return generate_latest(registry)


async def metrics_view(request: HttpRequest) -> HttpResponse:
    denied = refusal(request)
    if denied is not None:
        return denied
    prefetched = await metrics.breaker_families()  # the breaker store is async (Redis)
    body = await sync_to_async(render)(prefetched)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
