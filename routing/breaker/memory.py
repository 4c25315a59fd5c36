"""In-process breaker store: the single-process default when REDIS_URL is unset.

Each method does its whole read-modify-write without awaiting, so on one event loop
it is atomic; a lock also covers threads running their own loops (async_to_sync).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .base import (
    WINDOW_BUCKETS,
    BreakerPolicy,
    BreakerStatus,
    BreakerStore,
    LatencyStats,
    Permit,
    State,
    bucket_index,
    bucket_is_live,
    check_alpha,
    ewma,
    should_open,
)


@dataclass(slots=True)
class _Breaker:
    state: State = State.CLOSED
    consecutive: int = 0
    opened_at: float | None = None
    probe_at: float | None = None
    opens: int = 0
    half_opens: int = 0
    closes: int = 0
    # one [index, requests, failures] per slot; index -1 marks an empty slot
    buckets: list[list[int]] = field(default_factory=lambda: [[-1, 0, 0] for _ in range(WINDOW_BUCKETS)])

    def window(self, now: float, window_s: float) -> tuple[int, int]:
        current = bucket_index(now, window_s)
        live = [b for b in self.buckets if bucket_is_live(b[0], current)]
        return sum(b[1] for b in live), sum(b[2] for b in live)

    def add(self, now: float, window_s: float, failed: bool) -> None:
        current = bucket_index(now, window_s)
        bucket = self.buckets[current % WINDOW_BUCKETS]
        if bucket[0] != current:
            bucket[:] = [current, 0, 0]
        bucket[1] += 1
        bucket[2] += int(failed)

    def open(self, now: float) -> None:
        self.state, self.opened_at, self.probe_at = State.OPEN, now, None
        self.opens += 1

    def closed(self) -> "_Breaker":
        """A fresh closed breaker that keeps the lifetime transition counters."""
        return _Breaker(opens=self.opens, half_opens=self.half_opens, closes=self.closes + 1)


@dataclass(slots=True)
class _Latency:
    ttft_s: float | None = None
    total_s: float | None = None
    samples: int = 0


class InProcessBreakerStore(BreakerStore):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # injectable so tests advance time without sleeping
        self._lock = threading.Lock()
        self._breakers: dict[str, _Breaker] = {}
        self._latencies: dict[str, _Latency] = {}

    def _get(self, target: str) -> _Breaker:
        breaker = self._breakers.get(target)
        if breaker is None:
            breaker = self._breakers[target] = _Breaker()
        return breaker

    async def admit(self, target: str, policy: BreakerPolicy) -> Permit:
        with self._lock:
            breaker = self._breakers.get(target)
            if breaker is None or breaker.state == State.CLOSED:
                return Permit.ALLOWED
            now = self._clock()
            if breaker.state == State.OPEN:
                if now < breaker.opened_at + policy.cooldown_s:
                    return Permit.REJECTED
            elif breaker.probe_at is not None and now - breaker.probe_at < policy.probe_timeout_s:
                return Permit.REJECTED  # half-open, a live probe is in flight
            if breaker.state == State.OPEN:
                breaker.half_opens += 1
            breaker.state, breaker.probe_at = State.HALF_OPEN, now
            return Permit.PROBE

    async def release(self, target: str) -> None:
        with self._lock:
            breaker = self._breakers.get(target)
            if breaker is not None and breaker.state == State.HALF_OPEN:
                breaker.probe_at = None

    async def record(self, target: str, policy: BreakerPolicy, *, success: bool, probe: bool = False) -> State:
        with self._lock:
            breaker = self._get(target)
            now = self._clock()
            if breaker.state == State.CLOSED:
                breaker.consecutive = 0 if success else breaker.consecutive + 1
                breaker.add(now, policy.window_s, failed=not success)
                if should_open(policy, breaker.consecutive, *breaker.window(now, policy.window_s)):
                    breaker.open(now)
            elif breaker.state == State.HALF_OPEN and probe:
                if success:
                    self._breakers[target] = breaker.closed()
                else:
                    breaker.open(now)
            # otherwise a late result (or a stale probe while open): ignored
            return self._breakers[target].state

    async def status(self, target: str, policy: BreakerPolicy) -> BreakerStatus:
        return (await self.statuses([target], policy))[target]

    async def statuses(self, targets: list[str], policy: BreakerPolicy) -> dict[str, BreakerStatus]:
        with self._lock:
            now = self._clock()
            return {target: self._status(self._breakers.get(target) or _Breaker(), policy, now) for target in targets}

    @staticmethod
    def _status(breaker: _Breaker, policy: BreakerPolicy, now: float) -> BreakerStatus:
        requests, failures = breaker.window(now, policy.window_s)
        retry_in = None
        if breaker.state == State.OPEN:
            retry_in = max(0.0, breaker.opened_at + policy.cooldown_s - now)
        return BreakerStatus(
            state=breaker.state,
            consecutive_failures=breaker.consecutive,
            window_requests=requests,
            window_failures=failures,
            opened_at=breaker.opened_at,
            retry_in_s=retry_in,
            opens=breaker.opens,
            half_opens=breaker.half_opens,
            closes=breaker.closes,
            probe_in_flight=(
                breaker.state == State.HALF_OPEN
                and breaker.probe_at is not None
                and now - breaker.probe_at < policy.probe_timeout_s
            ),
        )

    async def reset(self, target: str) -> None:
        with self._lock:
            old = self._breakers.get(target)
            if old is not None:
                # an operator's reset closes an open breaker (counted) or clears a closed one's window
                self._breakers[target] = old.closed() if old.state != State.CLOSED else \
                    _Breaker(opens=old.opens, half_opens=old.half_opens, closes=old.closes)

    async def record_latency(
        self, target: str, *, total_s: float, ttft_s: float | None = None, alpha: float = 0.2
    ) -> None:
        check_alpha(alpha)
        with self._lock:
            stats = self._latencies.setdefault(target, _Latency())
            stats.total_s = ewma(stats.total_s, total_s, alpha)
            if ttft_s is not None:
                stats.ttft_s = ewma(stats.ttft_s, ttft_s, alpha)
            stats.samples += 1

    async def latencies(self, targets: list[str]) -> dict[str, LatencyStats]:
        with self._lock:
            result = {}
            for target in targets:
                stats = self._latencies.get(target) or _Latency()
                result[target] = LatencyStats(ttft_s=stats.ttft_s, total_s=stats.total_s, samples=stats.samples)
            return result
