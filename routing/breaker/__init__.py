"""Circuit breakers (per route and model) and latency statistics (per model).

The contract (state machine, sliding window, EWMA) is documented in base.py; the
store serving this process comes from get_breaker_store(): Redis when REDIS_URL is
set (exact across processes), else one in-process store.
"""

from __future__ import annotations

import threading

from .base import (
    BreakerPolicy,
    BreakerStatus,
    BreakerStore,
    LatencyStats,
    Permit,
    State,
)
from .memory import InProcessBreakerStore
from .redis_store import RedisBreakerStore

__all__ = [
    "BreakerPolicy",
    "BreakerStatus",
    "BreakerStore",
    "InProcessBreakerStore",
    "LatencyStats",
    "Permit",
    "RedisBreakerStore",
    "State",
    "get_breaker_store",
    "reset_breaker_store_for_tests",
]

_store: BreakerStore | None = None
_lock = threading.Lock()


def get_breaker_store() -> BreakerStore:
    """The process-wide store: RedisBreakerStore(settings.REDIS_URL) when REDIS_URL
    is set, else an InProcessBreakerStore (both created once, then reused)."""
    global _store
    if _store is None:
        from django.conf import settings  # lazily: the stores themselves need no Django

        with _lock:
            if _store is None:
                url = settings.REDIS_URL
                _store = RedisBreakerStore(url) if url else InProcessBreakerStore()
    return _store


def reset_breaker_store_for_tests() -> None:
    """Forget the process-wide store (and its state); the next call builds a new one
    from the current settings."""
    global _store
    with _lock:
        _store = None
