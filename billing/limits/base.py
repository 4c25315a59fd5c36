"""Rate-limit and budget contract: types, the store ABC, the window math both stores share.

Rate limits (requests and tokens per minute, per scope such as "key:12" or "team:3"):
a sliding window of ``WINDOW_S`` one-second buckets aligned to the unix epoch. A hit at
time ``t`` is counted in bucket ``floor(t)``; the window at ``t`` is the buckets ``b``
with ``floor(t) - 60 < b <= floor(t)`` (the current partial second plus the 59 before
it), so bucket ``b`` leaves the window at time ``b + 60``. One hit checks every given
limit and counts in all of them or in none.

Budgets: a slot ("budget:7:2026-11") holds ``spent`` (seeded once from the ledger, the
source of truth, then increased by settle()) and ``reserved`` (estimates of requests
in flight). reserve() refuses when a blocking slot would end above its limit; settle()
turns a reservation into actual spend. A slot is *seeded* once its ``spent`` exists:
reserve() on an unseeded slot counts its spent as 0, and settle() leaves an unseeded
slot's spent alone (after reset_slot() the next seed reads the ledger, which already
holds that usage). Call ensure_seeded() before reserve().

Every reservation is a *lease* (Reservation.lease, an id): it is released by settle()
or, if its holder never settles (a process killed mid-request), by itself once its
``lease_s`` has passed: every step that reads a slot first drops its expired leases,
so no extra step and no sweeper is needed. settle() releases what the lease itself
reserved (a caller cannot release more), a lease settled after it expired releases
nothing twice, and ``reserved`` never goes below 0. A holder that runs longer than
its lease (a long stream) keeps it with renew(), which extends a lease still held and
never brings back one that expired or was settled.

Spend never goes below 0 either: settle() counts a negative actual cost as 0, and a
negative seed as 0 (what a provider reports cannot make a budget look unspent).

Money is integer units of 1e-10 USD (see units.py): exact in both stores.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

WINDOW_S = 60
NEVER = -2  # a "free at" bucket meaning: no amount of waiting makes room
DEFAULT_LEASE_S = 3600.0  # a reservation's lifetime when the caller names none


@dataclass(frozen=True, slots=True)
class RateLimit:
    scope: str  # e.g. "key:12", "team:3"
    requests_per_minute: int | None  # None: not checked (still counted)
    tokens_per_minute: int | None

    def __post_init__(self) -> None:
        for value in (self.requests_per_minute, self.tokens_per_minute):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"limits of {self.scope!r} must be None or an int >= 0")


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    refused_scope: str | None  # which RateLimit refused (the one that frees up last)
    refused_kind: str | None  # "requests" | "tokens"
    retry_after_s: float  # when refused: until enough usage leaves the window (60 if it never fits); 0 when allowed
    # For x-ratelimit-* headers: per kind, of the scope with the smallest remaining
    # (after this request when allowed). reset_*_s: until that scope's oldest counted
    # usage leaves the window, i.e. when its remaining next grows (0 if nothing counted).
    limit_requests: int | None
    remaining_requests: int | None
    reset_requests_s: float | None
    limit_tokens: int | None
    remaining_tokens: int | None
    reset_tokens_s: float | None
    bucket: int  # the 1-second bucket (unix second) the request was counted in; pass to adjust_tokens()


@dataclass(frozen=True, slots=True)
class BudgetSlot:
    key: str  # e.g. "budget:7:2026-11" (budget id + period key)
    limit: int  # units
    blocking: bool  # False = alert-only: counted, never refuses
    ttl_s: int | None  # expiry of the slot's state, refreshed by every write (None = keep)

    def __post_init__(self) -> None:
        check_units("limit", self.limit)
        if self.ttl_s is not None and (not isinstance(self.ttl_s, int) or self.ttl_s < 1):
            raise ValueError("ttl_s must be None or an int >= 1")


@dataclass(frozen=True, slots=True)
class Reservation:
    ok: bool
    refused: str | None  # the BudgetSlot.key that would be exceeded
    amount: int  # units reserved (0 when refused)
    lease: str | None = None  # pass to settle(); None when nothing is held (refused, or 0 units)


@dataclass(frozen=True, slots=True)
class SlotUsage:
    spent: int
    reserved: int


@dataclass(frozen=True, slots=True)
class Admitted:
    """What admit() decided. ``rate`` is the rate decision (its headers are those of
    an accepted request when only the budget refused); ``reservation`` is None when a
    rate limit refused (budgets were not consulted)."""

    rate: RateDecision
    reservation: Reservation | None

    @property
    def ok(self) -> bool:
        return self.rate.allowed and self.reservation is not None and self.reservation.ok


def check_units(name: str, value: int) -> None:
    # bool is an int too, and a float would silently lose exactness
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")


def clamp_units(name: str, value: int) -> int:
    """An amount reported from outside (a provider's usage): an int, floored at 0."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return max(0, value)


def check_lease(lease_s: float) -> float:
    if isinstance(lease_s, bool) or not isinstance(lease_s, (int, float)) or not 0 < lease_s < 10**7:
        raise ValueError(f"lease_s must be a number of seconds > 0, got {lease_s!r}")
    return float(lease_s)


def new_lease() -> str:
    """A lease id, unique across processes (64 random bits)."""
    return secrets.token_hex(8)


def is_live(bucket: int, current: int) -> bool:
    return current - WINDOW_S < bucket <= current


@dataclass(frozen=True, slots=True)
class WindowView:
    """One limit's window just before a hit, as both stores compute it atomically.

    ``*_free_at`` is set only when that kind refuses: the bucket whose leaving makes
    room for the request (oldest first), or NEVER (the limit is below the request's
    own size, e.g. tokens > tokens_per_minute, or 0 requests per minute)."""

    requests: int
    tokens: int
    oldest_requests: int | None  # oldest live bucket that holds requests
    oldest_tokens: int | None
    requests_free_at: int | None
    tokens_free_at: int | None

    @property
    def refuses(self) -> bool:
        return self.requests_free_at is not None or self.tokens_free_at is not None


def window_view(limit: RateLimit, buckets: Sequence[tuple[int, int, int]], tokens: int) -> WindowView:
    """``buckets``: the live (bucket, requests, tokens), oldest first. The Redis Lua
    (redis_scripts.py) mirrors this function."""

    def free_at(column: int, need: int) -> int:
        freed = 0
        for row in buckets:
            freed += row[column]
            if freed >= need:
                return row[0]
        return NEVER

    requests = sum(row[1] for row in buckets)
    used_tokens = sum(row[2] for row in buckets)
    rpm, tpm = limit.requests_per_minute, limit.tokens_per_minute
    requests_free_at = tokens_free_at = None
    if rpm is not None and requests + 1 > rpm:
        requests_free_at = free_at(1, requests + 1 - rpm)
    if tpm is not None and used_tokens + tokens > tpm:
        tokens_free_at = free_at(2, used_tokens + tokens - tpm)
    return WindowView(
        requests=requests,
        tokens=used_tokens,
        oldest_requests=next((row[0] for row in buckets if row[1] > 0), None),
        oldest_tokens=next((row[0] for row in buckets if row[2] > 0), None),
        requests_free_at=requests_free_at,
        tokens_free_at=tokens_free_at,
    )


def decide(
    limits: Sequence[RateLimit], views: Sequence[WindowView], tokens: int, current: int, now: float
) -> RateDecision:
    """The decision both stores return, from the views their atomic step saw (the
    request was counted iff no view refuses)."""
    refusals = [
        (limit.scope, kind, float(WINDOW_S) if free_at == NEVER else max(0.0, free_at + WINDOW_S - now))
        for limit, view in zip(limits, views, strict=True)
        for kind, free_at in (("requests", view.requests_free_at), ("tokens", view.tokens_free_at))
        if free_at is not None
    ]
    allowed = not refusals
    # the binding refusal is the one that lasts longest: retrying earlier is pointless
    scope, kind, retry = max(refusals, key=lambda r: r[2]) if refusals else (None, None, 0.0)
    request_headers = _most_constrained(
        [(lim.requests_per_minute, v.requests, v.oldest_requests) for lim, v in zip(limits, views, strict=True)],
        1 if allowed else 0, current, now,
    )
    token_headers = _most_constrained(
        [(lim.tokens_per_minute, v.tokens, v.oldest_tokens) for lim, v in zip(limits, views, strict=True)],
        tokens if allowed else 0, current, now,
    )
    return RateDecision(allowed, scope, kind, retry, *request_headers, *token_headers, bucket=current)


def _most_constrained(
    windows: list[tuple[int | None, int, int | None]], added: int, current: int, now: float
) -> tuple[int | None, int | None, float | None]:
    """(limit, remaining, reset_s) of the window with the smallest remaining (the first
    on a tie); ``windows`` are (limit, used, oldest bucket), ``added`` what was counted."""
    best: tuple[int, int, float] | None = None
    for cap, used, oldest in windows:
        if cap is None:
            continue
        if added:
            used += added
            oldest = current if oldest is None else oldest
        remaining = max(0, cap - used)
        reset = 0.0 if oldest is None else max(0.0, oldest + WINDOW_S - now)
        if best is None or remaining < best[1]:
            best = (cap, remaining, reset)
    return best or (None, None, None)


class LimitStore(abc.ABC):
    """Rate-limit windows and budget slots, exact across callers: every method is one
    atomic step, for coroutines of one process and for processes sharing Redis."""

    @abc.abstractmethod
    async def hit(self, limits: list[RateLimit], tokens: int) -> RateDecision:
        """Atomically over all ``limits``: refuse if for any of them
        requests_in_window + 1 > requests_per_minute or tokens_in_window + tokens >
        tokens_per_minute (None is not checked); else count 1 request and ``tokens`` in
        the current bucket of every limit. A refusal counts nothing."""

    @abc.abstractmethod
    async def adjust_tokens(self, limits: list[RateLimit], bucket: int, delta: int) -> None:
        """After the call: add actual - estimated tokens (may be negative) to ``bucket``
        of every limit, if it is still inside the window; a count never goes below 0."""

    @abc.abstractmethod
    async def ensure_seeded(self, slots: list[BudgetSlot], load_spent: Callable[[str], Awaitable[int]]) -> None:
        """For each unseeded slot: ``spent = await load_spent(slot.key)`` (below 0: 0),
        stored only if still unseeded (SETNX: concurrent seeders never add up)."""

    @abc.abstractmethod
    async def reserve(self, slots: list[BudgetSlot], amount: int, lease_s: float = DEFAULT_LEASE_S) -> Reservation:
        """Atomically, after dropping expired leases: refuse if any blocking slot has
        spent + reserved + amount > limit (nothing is reserved then); else reserved +=
        amount on every slot, held by one lease that expires after ``lease_s``."""

    @abc.abstractmethod
    async def settle(self, slots: list[BudgetSlot], lease: str | None, actual: int) -> dict[str, SlotUsage]:
        """Atomically on every slot: release ``lease`` (what it reserved; nothing if it
        expired or is unknown) and, if the slot is seeded, spent += max(0, ``actual``).
        Returns the new usage per slot key."""

    @abc.abstractmethod
    async def renew(self, slots: list[BudgetSlot], lease: str, lease_s: float) -> bool:
        """Atomically, after dropping expired leases: on every slot that still holds
        ``lease``, its expiry becomes max(its expiry, now + ``lease_s``); nothing else
        changes (amounts, other leases). Returns False, having done nothing, when no
        slot holds it any more (settled, expired, or its slots were reset): an expired
        lease is never brought back."""

    # --- the hot path's composites: one round trip each for Redis ------------------
    @abc.abstractmethod
    async def admit(
        self, limits: list[RateLimit], tokens: int, slots: list[BudgetSlot], amount: int,
        load_spent: Callable[[str], Awaitable[int]], lease_s: float = DEFAULT_LEASE_S,
    ) -> Admitted:
        """Admission, all or nothing: seed the unseeded ``slots`` (as ensure_seeded),
        then atomically check every limit (as hit) and every blocking slot (as
        reserve); only if none refuses, count the request and ``tokens`` and reserve
        ``amount`` under a lease of ``lease_s``. A refusal by either counts and
        reserves nothing."""

    async def settle_all(
        self, limits: list[RateLimit], bucket: int | None, token_delta: int,
        slots: list[BudgetSlot], lease: str | None, actual: int,
    ) -> dict[str, SlotUsage]:
        """adjust_tokens() (when ``bucket`` is not None) and settle() of one request."""
        if bucket is not None:
            await self.adjust_tokens(limits, bucket, token_delta)
        return await self.settle(slots, lease, actual) if slots else {}

    @abc.abstractmethod
    async def usage(self, slots: list[BudgetSlot]) -> dict[str, SlotUsage]:
        """Usage per slot key (0/0 for unknown slots), expired leases dropped first;
        one round trip for Redis."""

    @abc.abstractmethod
    async def reset_slot(self, key: str) -> None:
        """Forget a slot (after a budget edit or a ledger correction); the next
        ensure_seeded() reads the ledger again."""
