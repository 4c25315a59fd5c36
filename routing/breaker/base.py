"""Circuit-breaker and latency-statistics contract: types, the store ABC, window math.

What a key names is the caller's choice; the gateway (routing.catalog.TargetInfo) uses
two kinds: a breaker belongs to one route's use of one model (``route:<r>:model:<m>``,
governed by that route's BreakerPolicy, so a route whose rules are off never opens
and another route's traffic never opens it), while latency statistics belong to the
model (``model:<m>``, shared by every route that uses it).

State machine, per breaker key:

    CLOSED --(consecutive failures >= failure_threshold, or
              window_requests >= min_requests and failure ratio >= failure_rate)--> OPEN
    OPEN   --(admit() after cooldown_s; exactly one caller gets PROBE)-----------> HALF_OPEN
    HALF_OPEN --(probe success)--> CLOSED (counters and window cleared)
    HALF_OPEN --(probe failure)--> OPEN (fresh cooldown; counts as another opening)

While OPEN or HALF_OPEN only the probe's result (``record(probe=True)``) counts: late
results of requests admitted before the breaker opened are ignored, so they can
neither re-open nor close it. A probe not reported within ``probe_timeout_s`` frees
the probe slot (the caller crashed or was cancelled) and the next admit() probes.

Sliding window (identical in both stores; the Redis Lua mirrors these functions):
the window is cut into ``WINDOW_BUCKETS`` (6) fixed sub-buckets of ``window_s / 6``
seconds aligned to the unix epoch; a result at time ``t`` goes to bucket index
``floor(t / (window_s / 6))``, stored in slot ``index % 6`` (a slot holding an older
index is recycled). The window sums the buckets whose index lies in
``(current - 6, current]``: the current partial bucket plus the five before it, so
results count for between 5/6 and 6/6 of ``window_s``. A bucket with a newer index
than the current one (``window_s`` was lowered meanwhile) is ignored too.

Latency statistics are exponentially weighted moving averages: the first sample is
taken as is, then ``new = alpha * sample + (1 - alpha) * old``. ``samples`` counts
record_latency() calls; ``ttft_s`` is only updated by calls that measured it.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from enum import StrEnum

WINDOW_BUCKETS = 6


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5  # consecutive failures that open the breaker (0 disables this rule)
    failure_rate: float = 0.5  # failure ratio over the window that opens it (0 disables this rule)
    window_s: float = 60.0  # sliding window for the rate rule
    min_requests: int = 10  # the rate rule needs at least this many results in the window
    cooldown_s: float = 30.0  # open -> half-open after this long
    probe_timeout_s: float = 60.0  # a half-open probe not reported within this frees the probe slot

    def __post_init__(self) -> None:
        # Fail loudly: a nonsensical policy would silently never (or always) open.
        if self.failure_threshold < 0 or self.min_requests < 0:
            raise ValueError("failure_threshold and min_requests must be >= 0")
        if not 0 <= self.failure_rate <= 1:
            raise ValueError("failure_rate must be within [0, 1]")
        if self.window_s <= 0 or self.cooldown_s < 0 or self.probe_timeout_s <= 0:
            raise ValueError("window_s and probe_timeout_s must be > 0, cooldown_s >= 0")


class Permit(StrEnum):
    """The breaker's answer to "may I call this target now?" (admit())."""

    ALLOWED = "allowed"
    PROBE = "probe"
    REJECTED = "rejected"


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    state: State
    consecutive_failures: int
    window_requests: int
    window_failures: int
    opened_at: float | None  # unix time
    retry_in_s: float | None  # seconds until half-open when open (0 = the next admit probes), else None
    opens: int  # times this breaker has opened (lifetime counter, for metrics/tests)
    probe_in_flight: bool
    half_opens: int = 0  # times it went from open to half-open (a probe was let through after the cooldown)
    closes: int = 0  # times it closed again: a probe succeeded, or an operator reset it


@dataclass(frozen=True, slots=True)
class LatencyStats:
    ttft_s: float | None  # EWMA of time to first token (streams), None if never measured
    total_s: float | None  # EWMA of total latency
    samples: int


def bucket_index(now: float, window_s: float) -> int:
    """Index of the fixed sub-bucket holding time ``now`` (see the module docstring)."""
    return math.floor(now / (window_s / WINDOW_BUCKETS))


def bucket_is_live(index: int, current: int) -> bool:
    return current - WINDOW_BUCKETS < index <= current


def should_open(policy: BreakerPolicy, consecutive: int, requests: int, failures: int) -> bool:
    """The CLOSED -> OPEN rule, shared by both stores."""
    if policy.failure_threshold > 0 and consecutive >= policy.failure_threshold:
        return True
    return (
        policy.failure_rate > 0
        and requests > 0
        and requests >= policy.min_requests
        and failures / requests >= policy.failure_rate
    )


def ewma(old: float | None, sample: float, alpha: float) -> float:
    return sample if old is None else alpha * sample + (1 - alpha) * old


def check_alpha(alpha: float) -> None:
    if not 0 < alpha <= 1:
        raise ValueError("alpha must be within (0, 1]")


class BreakerStore(abc.ABC):
    """Breaker state and latency statistics per target, exact across callers.

    Every method is one atomic step: concurrent callers (coroutines, or processes
    sharing Redis) observe each transition exactly once.
    """

    @abc.abstractmethod
    async def admit(self, target: str, policy: BreakerPolicy) -> Permit:
        """ALLOWED when closed; REJECTED when open within the cooldown; after the
        cooldown, moves to half-open and grants PROBE to exactly one caller; REJECTED
        while that probe is in flight, unless it is older than probe_timeout_s (then
        a new PROBE is granted)."""

    @abc.abstractmethod
    async def release(self, target: str) -> None:
        """Give back a PROBE permit without a result (the call was never made, e.g. the
        request could not be translated for this provider): a half-open breaker frees
        its probe slot at once, so the next admit() probes; any other state is left
        as it is."""

    @abc.abstractmethod
    async def record(self, target: str, policy: BreakerPolicy, *, success: bool, probe: bool = False) -> State:
        """Record one result; returns the state afterwards (see the module docstring)."""

    @abc.abstractmethod
    async def status(self, target: str, policy: BreakerPolicy) -> BreakerStatus:
        """A read-only snapshot; does not itself move OPEN to HALF_OPEN."""

    @abc.abstractmethod
    async def statuses(self, targets: list[str], policy: BreakerPolicy) -> dict[str, BreakerStatus]:
        """status() of several targets at once (one round trip for Redis)."""

    @abc.abstractmethod
    async def reset(self, target: str) -> None:
        """Back to closed with counters and window cleared; ``opens`` is kept."""

    @abc.abstractmethod
    async def record_latency(
        self, target: str, *, total_s: float, ttft_s: float | None = None, alpha: float = 0.2
    ) -> None:
        """Fold one measurement into the target's EWMAs."""

    async def record_success(
        self,
        target: str,
        policy: BreakerPolicy,
        *,
        total_s: float,
        ttft_s: float | None = None,
        alpha: float = 0.2,
        stats_key: str | None = None,
    ) -> State:
        """record(success=True) on the breaker `target` of a call that was not a probe,
        and record_latency() of its answer on `stats_key` (default: `target`),
        together (one round trip for Redis)."""
        state = await self.record(target, policy, success=True)
        await self.record_latency(stats_key or target, total_s=total_s, ttft_s=ttft_s, alpha=alpha)
        return state

    @abc.abstractmethod
    async def latencies(self, targets: list[str]) -> dict[str, LatencyStats]:
        """LatencyStats of several targets (one round trip for Redis); targets never
        measured get ``LatencyStats(None, None, 0)``."""
