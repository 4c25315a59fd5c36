"""The signals a routing decision reads besides the request: the task hint and sticky
id (local), breakers and latencies (shared: one store read). The hot path and the dry
run both read them through these functions."""

from __future__ import annotations

from billing.keys import KeyInfo
from providers.types import ChatRequest

from .breaker import get_breaker_store
from .catalog import RouteInfo
from .strategies import Signals


async def gather_signals(route: RouteInfo, req: ChatRequest, key: KeyInfo, task_hint: str | None) -> Signals:
    """Shared state the strategy may consult: one read of breakers (and latencies).
    The dry run (routing.dryrun) reads through this very function."""
    signals = local_signals(route, req, key, task_hint)
    await read_shared_signals(route, signals)
    return signals


def local_signals(route: RouteInfo, req: ChatRequest, key: KeyInfo, task_hint: str | None) -> Signals:
    """The signals that need no shared state: the task hint and the sticky id."""
    signals = Signals(task_hint=task_hint)
    if route.sticky_by == "user":
        signals.sticky_id = str(req.params.get("user") or f"key:{key.id}")
    elif route.sticky_by == "key":
        signals.sticky_id = f"key:{key.id}"
    return signals


async def read_shared_signals(route: RouteInfo, signals: Signals) -> None:
    """Breakers (route x model) and, for least latency, latencies (per model): one read."""
    keys = [t.key for t in route.targets]
    if not keys:
        return
    store = get_breaker_store()
    signals.breakers = await store.statuses(keys, route.breaker)
    if route.strategy == "least_latency":
        signals.latencies = await store.latencies([t.stats_key for t in route.targets])
