"""Rate limits (rpm/tpm per scope) and budget reservations, exact across processes.

The contract (sliding window, seeding, reserve/settle) is documented in base.py; the
store serving this process comes from get_limit_store(): Redis when REDIS_URL is set
(exact across processes), else one in-process store. Money is integer units of
1e-10 USD: to_units() / from_units() convert ledger Decimals exactly.
"""

from __future__ import annotations

import threading

from .base import (
    DEFAULT_LEASE_S,
    WINDOW_S,
    Admitted,
    BudgetSlot,
    LimitStore,
    RateDecision,
    RateLimit,
    Reservation,
    SlotUsage,
)
from .memory import InProcessLimitStore
from .redis_store import RedisLimitStore
from .units import from_units, to_units

__all__ = [
    "DEFAULT_LEASE_S",
    "WINDOW_S",
    "Admitted",
    "BudgetSlot",
    "InProcessLimitStore",
    "LimitStore",
    "RateDecision",
    "RateLimit",
    "RedisLimitStore",
    "Reservation",
    "SlotUsage",
    "from_units",
    "get_limit_store",
    "reset_limit_store_for_tests",
    "to_units",
]

_store: LimitStore | None = None
_lock = threading.Lock()


def get_limit_store() -> LimitStore:
    """The process-wide store: RedisLimitStore(settings.REDIS_URL) when REDIS_URL is
    set, else an InProcessLimitStore (both created once, then reused)."""
    global _store
    if _store is None:
        from django.conf import settings  # lazily: the stores themselves need no Django

        with _lock:
            if _store is None:
                url = settings.REDIS_URL
                _store = RedisLimitStore(url) if url else InProcessLimitStore()
    return _store


def reset_limit_store_for_tests() -> None:
    """Forget the process-wide store (and its state); the next call builds a new one
    from the current settings."""
    global _store
    with _lock:
        _store = None
