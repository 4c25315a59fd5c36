"""One access line per /v1 request (logger `gateway.access`).

Written when a Call settles (`Call.settle`, routing/pipeline.py), or, for a request
refused before any Call existed (no such key, a malformed body, an unknown path) and
for the model listings, by routing/api.py. The line says what an operator needs to
read traffic: route, model, provider, status, HTTP status, latency, tokens, cost and
cache result — and never the prompt, the answer, the virtual key or a provider key
(only names, numbers and statuses are read here).

Off with GATEWAY_ACCESS_LOG=false; cheap when on (a dict and one record; figures in
docs/operations/logs.md).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings

from gateway_project import logs

if TYPE_CHECKING:
    from billing.usage import UsageEntry
    from gateway_project.errors import GatewayError

    from .pipeline import Call

log = logging.getLogger("gateway.access")
_INFO = logging.INFO


def _enabled() -> bool:
    return getattr(settings, "GATEWAY_ACCESS_LOG", True) and log.isEnabledFor(_INFO)


def call_settled(call: Call, entry: UsageEntry | None, status: str, http_status: int, error_kind: str) -> None:
    """The access line of a settled Call; `entry` is its usage record (None when the
    request is not recordable: refused by a stage before any provider was tried)."""
    if not _enabled():
        return
    ctx = logs.current()
    if ctx is not None and ctx.request_id == call.request_id:
        ctx.claimed = True
    cache = call.annotations.get("cache")
    if entry is not None:
        fields: dict[str, Any] = {
            "endpoint": entry.endpoint, "route": entry.route_name, "model": entry.model_name,
            "provider": entry.provider_name, "team": entry.team_name, "status": status,
            "http_status": http_status, "error_kind": error_kind, "stream": entry.stream,
            "latency_ms": entry.latency_ms, "ttft_ms": entry.ttft_ms,
            "tokens_in": entry.prompt_tokens, "tokens_out": entry.completion_tokens,
            "tokens_cached": entry.cache_read_tokens, "cost_usd": f"{entry.cost_usd:f}",
            "cache": cache.get("result") if isinstance(cache, dict) else None,
            "attempts": entry.attempts,
        }
    else:
        fields = {
            "endpoint": call.endpoint, "route": call.route.name, "model": "", "provider": "",
            "team": call.key.team_name, "status": status, "http_status": http_status,
            "error_kind": error_kind, "stream": call.req.stream,
            "latency_ms": int((time.monotonic() - call.run.started) * 1000), "ttft_ms": None,
            "tokens_in": 0, "tokens_out": 0, "tokens_cached": 0, "cost_usd": "0",
            "cache": cache.get("result") if isinstance(cache, dict) else None, "attempts": 0,
        }
    log.info("%s %s %s %s", fields["endpoint"], fields["route"], status, http_status,
             extra={"fields": fields, "request_id": call.request_id})


def without_call(path: str, http_status: int, status: str, error_kind: str = "") -> None:
    """The access line of a /v1 request that no Call settled: refused before one
    existed, or a model listing. Skipped if a Call of this request already wrote one."""
    if not _enabled():
        return
    ctx = logs.current()
    if ctx is not None and ctx.claimed:
        return  # a Call took this request's id: its settlement wrote the line
    latency = int((time.monotonic() - ctx.started) * 1000) if ctx is not None else None
    fields = {"endpoint": path, "route": "", "status": status, "http_status": http_status,
              "error_kind": error_kind, "latency_ms": latency}
    log.info("%s %s %s", path, status, http_status, extra={"fields": fields})


def refused(path: str, error: GatewayError) -> None:
    """`without_call` for a request answered with `error`."""
    without_call(path, error.status, "error" if error.status >= 500 else "rejected", str(error.code or ""))
