"""In-process limit store: the single-process default when REDIS_URL is unset.

Each method does its whole read-modify-write without awaiting, so on one event loop
it is atomic; a lock also covers threads running their own loops (async_to_sync).
ensure_seeded() awaits the loader outside the lock and re-checks before storing.
Leases expire lazily: looking a slot up drops the leases whose time has passed
(a heap ordered by expiry, so an admission costs nothing when none has).
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

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
    WindowView,
    check_lease,
    check_units,
    clamp_units,
    decide,
    is_live,
    new_lease,
    window_view,
)


@dataclass(slots=True)
class _Slot:
    spent: int | None = None  # None: not seeded yet
    reserved: int = 0  # the sum of the live leases' amounts
    expires_at: float | None = None
    leases: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> (amount, expires at)
    by_expiry: list[tuple[float, str]] = field(default_factory=list)  # heap; settled ids linger until popped

    def hold(self, lease: str, amount: int, expires_at: float) -> None:
        self.reserved += amount
        self.leases[lease] = (amount, expires_at)
        heapq.heappush(self.by_expiry, (expires_at, lease))

    def release(self, lease: str) -> None:
        held = self.leases.pop(lease, None)
        if held is not None:
            self.reserved = max(0, self.reserved - held[0])
        if len(self.by_expiry) > 2 * len(self.leases) + 64:
            # settled leases wait in the heap until their expiry: rebuild it from the live ones
            # (amortised O(1); keeps memory bounded by the requests in flight, not the request rate)
            self.by_expiry = [(expires_at, lid) for lid, (_, expires_at) in self.leases.items()]
            heapq.heapify(self.by_expiry)

    def extend(self, lease: str, expires_at: float) -> bool:
        """Move a held lease's expiry later (never earlier); False if not held."""
        held = self.leases.get(lease)
        if held is None:
            return False
        if expires_at > held[1]:
            self.leases[lease] = (held[0], expires_at)
            # the old heap entry stays until popped; prune() skips it (its time no longer matches)
            heapq.heappush(self.by_expiry, (expires_at, lease))
        return True

    def prune(self, now: float) -> None:
        while self.by_expiry and self.by_expiry[0][0] <= now:
            expires_at, lease = heapq.heappop(self.by_expiry)
            held = self.leases.get(lease)
            if held is not None and held[1] == expires_at:
                self.release(lease)


def _view(limit: RateLimit, window: dict[int, list[int]], tokens: int) -> WindowView:
    """window_view() of a live window, in one pass when nothing refuses (every request
    but the refused ones); a refusal, which needs the rows, goes to window_view itself."""
    requests = used = 0
    oldest_requests = oldest_tokens = None
    for bucket in sorted(window):
        r, t = window[bucket]
        requests += r
        used += t
        if oldest_requests is None and r > 0:
            oldest_requests = bucket
        if oldest_tokens is None and t > 0:
            oldest_tokens = bucket
    rpm, tpm = limit.requests_per_minute, limit.tokens_per_minute
    if (rpm is not None and requests + 1 > rpm) or (tpm is not None and used + tokens > tpm):
        return window_view(limit, [(b, *window[b]) for b in sorted(window)], tokens)
    return WindowView(requests, used, oldest_requests, oldest_tokens, None, None)


class InProcessLimitStore(LimitStore):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # injectable so tests advance time without sleeping
        self._lock = threading.Lock()
        self._windows: dict[str, dict[int, list[int]]] = {}  # scope -> bucket -> [requests, tokens]
        self._slots: dict[str, _Slot] = {}

    # --- rate limits -------------------------------------------------------------
    def _live_buckets(self, scope: str, current: int) -> dict[int, list[int]]:
        buckets = self._windows.setdefault(scope, {})
        low = current - WINDOW_S  # is_live(b, current), inlined: this runs over every bucket of every request
        for bucket in [b for b in buckets if not low < b <= current]:
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
        views = [_view(limit, window, tokens) for limit, window in zip(limits, windows, strict=True)]
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
        if slot is not None:
            slot.prune(now)  # the leases of holders that never settled
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
            spent = clamp_units("spent", await load_spent(budget.key))  # other callers may seed meanwhile
            with self._lock:
                now = self._clock()
                existing = self._slot(budget.key, now)
                if existing is None or existing.spent is None:
                    self._write(budget, now).spent = spent

    async def reserve(self, slots: list[BudgetSlot], amount: int, lease_s: float = DEFAULT_LEASE_S) -> Reservation:
        check_units("amount", amount)
        lease_s = check_lease(lease_s)
        with self._lock:
            now = self._clock()
            refused = self._refusal(slots, amount, now)
            if refused is not None:
                return Reservation(ok=False, refused=refused, amount=0)
            return self._reserve(slots, amount, now, lease_s)

    def _refusal(self, slots: list[BudgetSlot], amount: int, now: float) -> str | None:
        for budget in slots:
            usage = self._usage(budget.key, now)
            if budget.blocking and usage.spent + usage.reserved + amount > budget.limit:
                return budget.key
        return None

    def _reserve(self, slots: list[BudgetSlot], amount: int, now: float, lease_s: float) -> Reservation:
        lease = new_lease() if amount and slots else None
        for budget in slots:
            slot = self._write(budget, now)
            if lease is not None:
                slot.hold(lease, amount, now + lease_s)
        return Reservation(ok=True, refused=None, amount=amount, lease=lease)

    async def admit(
        self, limits: list[RateLimit], tokens: int, slots: list[BudgetSlot], amount: int,
        load_spent: Callable[[str], Awaitable[int]], lease_s: float = DEFAULT_LEASE_S,
    ) -> Admitted:
        check_units("tokens", tokens)
        check_units("amount", amount)
        lease_s = check_lease(lease_s)
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
            return Admitted(rate, self._reserve(slots, amount, now, lease_s))

    async def settle(self, slots: list[BudgetSlot], lease: str | None, actual: int) -> dict[str, SlotUsage]:
        actual = clamp_units("actual", actual)  # a negative cost never lowers spend
        with self._lock:
            now = self._clock()
            for budget in slots:
                if self._slot(budget.key, now) is None:
                    continue  # forgotten (reset_slot) or expired: the next seed reads the ledger
                slot = self._write(budget, now)
                if lease is not None:
                    slot.release(lease)
                if slot.spent is not None:
                    slot.spent += actual
            return {budget.key: self._usage(budget.key, now) for budget in slots}

    async def renew(self, slots: list[BudgetSlot], lease: str, lease_s: float) -> bool:
        lease_s = check_lease(lease_s)
        with self._lock:
            now = self._clock()
            renewed = False
            for budget in slots:
                slot = self._slot(budget.key, now)  # drops expired leases first: none comes back
                if slot is not None and slot.extend(lease, now + lease_s):
                    self._write(budget, now)  # a write: refreshes the slot's expiry, as in Redis
                    renewed = True
            return renewed

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
