"""In-process limit store: the single-process default when REDIS_URL is unset.

Each method does its whole read-modify-write without awaiting, so on one event loop
it is atomic; a lock also covers threads running their own loops (async_to_sync).
ensure_seeded() awaits the loader outside the lock and re-checks before storing.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .base import (
    Admitted,
    BudgetSlot,
    LimitStore,
    RateDecision,
    RateLimit,
    Reservation,
    SlotUsage,
    check_units,
    decide,
    is_live,
    window_view,
)


@dataclass(slots=True)
class _Slot:
    spent: int | None = None  # None: not seeded yet
    reserved: int = 0
    expires_at: float | None = None


class InProcessLimitStore(LimitStore):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # injectable so tests advance time without sleeping
        self._lock = threading.Lock()
        self._windows: dict[str, dict[int, list[int]]] = {}  # scope -> bucket -> [requests, tokens]
        self._slots: dict[str, _Slot] = {}

    # --- rate limits -------------------------------------------------------------
    def _live_buckets(self, scope: str, current: int) -> dict[int, list[int]]:
        buckets = self._windows.setdefault(scope, {})
        for bucket in [b for b in buckets if not is_live(b, current)]:
            del buckets[bucket]  # left the window (or lies ahead of a clock that went back)
        return buckets

    async def hit(self, limits: list[RateLimit], tokens: int) -> RateDecision:
        check_units("tokens", tokens)
        with self._lock:
            now = self._clock()
            rate, windows = self._rate(limits, tokens, now)
            if rate.allowed:
                self._count(windows, rate.bucket, tokens)
            self._forget_idle(limits)
            return rate

    def _rate(self, limits: list[RateLimit], tokens: int, now: float) -> tuple[RateDecision, list]:
        """The decision on the windows as they are (lock held); counts nothing."""
        current = math.floor(now)
        windows = [self._live_buckets(limit.scope, current) for limit in limits]
        views = [
            window_view(limit, [(b, *window[b]) for b in sorted(window)], tokens)
            for limit, window in zip(limits, windows, strict=True)
        ]
        return decide(limits, views, tokens, current, now), windows

    @staticmethod
    def _count(windows: list[dict[int, list[int]]], bucket: int, tokens: int) -> None:
        for window in windows:
            counts = window.setdefault(bucket, [0, 0])
            counts[0] += 1
            counts[1] += tokens

    def _forget_idle(self, limits: list[RateLimit]) -> None:
        for scope in {limit.scope for limit in limits}:
            if not self._windows.get(scope):
                self._windows.pop(scope, None)  # keep idle scopes from piling up

    async def adjust_tokens(self, limits: list[RateLimit], bucket: int, delta: int) -> None:
        with self._lock:
            current = math.floor(self._clock())
            if not is_live(bucket, current):
                return
            for limit in limits:
                counts = self._live_buckets(limit.scope, current).setdefault(bucket, [0, 0])
                counts[1] = max(0, counts[1] + int(delta))

    # --- budgets -----------------------------------------------------------------
    def _slot(self, key: str, now: float) -> _Slot | None:
        slot = self._slots.get(key)
        if slot is not None and slot.expires_at is not None and now >= slot.expires_at:
            del self._slots[key]
            return None
        return slot

    def _write(self, budget: BudgetSlot, now: float) -> _Slot:
        # every write refreshes the expiry, as EXPIRE does in the Redis store
        slot = self._slot(budget.key, now) or self._slots.setdefault(budget.key, _Slot())
        slot.expires_at = None if budget.ttl_s is None else now + budget.ttl_s
        return slot

    def _unseeded(self, slots: list[BudgetSlot]) -> list[BudgetSlot]:
        with self._lock:
            now = self._clock()
            return [s for s in slots if (slot := self._slot(s.key, now)) is None or slot.spent is None]

    async def ensure_seeded(self, slots: list[BudgetSlot], load_spent: Callable[[str], Awaitable[int]]) -> None:
        for budget in self._unseeded(slots):
            spent = await load_spent(budget.key)  # other callers may seed meanwhile
            check_units("spent", spent)
            with self._lock:
                now = self._clock()
                existing = self._slot(budget.key, now)
                if existing is None or existing.spent is None:
                    self._write(budget, now).spent = spent

    async def reserve(self, slots: list[BudgetSlot], amount: int) -> Reservation:
        check_units("amount", amount)
        with self._lock:
            now = self._clock()
            refused = self._refusal(slots, amount, now)
            if refused is not None:
                return Reservation(ok=False, refused=refused, amount=0)
            self._reserve(slots, amount, now)
            return Reservation(ok=True, refused=None, amount=amount)

    def _refusal(self, slots: list[BudgetSlot], amount: int, now: float) -> str | None:
        for budget in slots:
            usage = self._usage(budget.key, now)
            if budget.blocking and usage.spent + usage.reserved + amount > budget.limit:
                return budget.key
        return None

    def _reserve(self, slots: list[BudgetSlot], amount: int, now: float) -> None:
        for budget in slots:
            self._write(budget, now).reserved += amount

    async def admit(
        self, limits: list[RateLimit], tokens: int, slots: list[BudgetSlot], amount: int,
        load_spent: Callable[[str], Awaitable[int]],
    ) -> Admitted:
        check_units("tokens", tokens)
        check_units("amount", amount)
        await self.ensure_seeded(slots, load_spent)
        with self._lock:
            now = self._clock()
            rate, windows = self._rate(limits, tokens, now)
            if not rate.allowed:
                self._forget_idle(limits)
                return Admitted(rate, None)
            refused = self._refusal(slots, amount, now)
            if refused is not None:
                self._forget_idle(limits)
                return Admitted(rate, Reservation(ok=False, refused=refused, amount=0))
            self._count(windows, rate.bucket, tokens)
            self._reserve(slots, amount, now)
            return Admitted(rate, Reservation(ok=True, refused=None, amount=amount))

    async def settle(self, slots: list[BudgetSlot], reserved: int, actual: int) -> dict[str, SlotUsage]:
        check_units("reserved", reserved)
        check_units("actual", actual)
        with self._lock:
            now = self._clock()
            for budget in slots:
                if self._slot(budget.key, now) is None:
                    continue  # forgotten (reset_slot) or expired: the next seed reads the ledger
                slot = self._write(budget, now)
                slot.reserved = max(0, slot.reserved - reserved)
                if slot.spent is not None:
                    slot.spent += actual
            return {budget.key: self._usage(budget.key, now) for budget in slots}

    def _usage(self, key: str, now: float) -> SlotUsage:
        slot = self._slot(key, now)
        return SlotUsage(spent=0, reserved=0) if slot is None else SlotUsage(slot.spent or 0, slot.reserved)

    async def usage(self, slots: list[BudgetSlot]) -> dict[str, SlotUsage]:
        with self._lock:
            now = self._clock()
            return {budget.key: self._usage(budget.key, now) for budget in slots}

    async def reset_slot(self, key: str) -> None:
        with self._lock:
            self._slots.pop(key, None)
