"""Admission on the hot path: rate limits and budget reservations, then settlement.

    admit()   before any provider call: rpm/tpm of the key and its team (atomic,
              all or nothing), then a budget reservation of the request's estimated
              maximum cost (billing.money.reservation_estimate) against every budget
              that applies (key, team, global), as a lease that expires by itself
              after ``lease_s`` (billing.money.lease_seconds: the route's deadline
              plus a margin) if this process dies before settling; raises
              RateLimited / BudgetExceeded (429) and nothing goes upstream.
    settle()  after the call, however it ended: tokens adjusted to the actual count,
              the lease released and the actual cost (never below 0) added to spend.

    renew()   while a request outlives its lease (a stream runs past the route's
              deadline): extends the lease if it is still held (routing.stages.admission
              renews a stream's lease every half lease until it settles).

Accepted spend can exceed a budget only by what in-flight reservations underestimated
(requests without max_tokens reserve GATEWAY_RESERVE_COMPLETION_TOKENS, bounded by the
model's context window) or by requests still running after their lease expired (a
non-stream request past its deadline plus GATEWAY_LEASE_MARGIN_S, or a stream whose
renewals failed, e.g. with Redis unreachable).

Rate limits: None = no limit; 0 = nothing allowed (fail closed: the key or team is
paused). billing.keys.validate_rate_limits is what every entry point checks them with.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from gateway_project.db import run_db
from gateway_project.errors import GatewayError
from gateway_project.snapshot import Snapshot

from . import money
from .keys import KeyInfo
from .limits import BudgetSlot, RateDecision, RateLimit, from_units, get_limit_store, to_units
from .models import Budget

log = logging.getLogger("gateway.billing")


class RateLimited(GatewayError):
    status = 429
    type = "requests"
    code = "rate_limit_exceeded"


class BudgetExceeded(GatewayError):
    status = 429
    type = "insufficient_quota"
    code = "budget_exceeded"


@dataclass(frozen=True, slots=True)
class BudgetInfo:
    id: int
    scope: str
    key_id: int | None
    team_id: int | None
    amount: Decimal
    period: str
    blocking: bool
    threshold_pct: int

    def applies_to(self, key: KeyInfo) -> bool:
        # Key and team budgets come with the key (KeyInfo.budget_ids: its own, its
        # team's, and during a rotation's grace period its replacement's).
        return self.scope == Budget.Scope.GLOBAL or self.id in key.budget_ids


def load_budgets() -> tuple[BudgetInfo, ...]:
    return tuple(
        BudgetInfo(b.id, b.scope, b.key_id, b.team_id, b.amount_usd, b.period, b.action == Budget.Action.BLOCK,
                   b.alert_threshold_pct)
        for b in Budget.objects.filter(enabled=True)
    )


budgets: Snapshot[tuple[BudgetInfo, ...]] = Snapshot(load_budgets, ttl=lambda: settings.GATEWAY_CONFIG_TTL_S)


_SLOT_TTL = {Budget.Period.DAY: 3 * 86400, Budget.Period.MONTH: 40 * 86400, Budget.Period.TOTAL: None}


def slot_for(budget: BudgetInfo, now: datetime) -> BudgetSlot:
    return BudgetSlot(
        key=f"budget:{budget.id}:{money.period_key(budget.period, now)}",
        limit=to_units(budget.amount),
        blocking=budget.blocking,
        ttl_s=_SLOT_TTL.get(budget.period),
    )


def rate_limits(key: KeyInfo) -> list[RateLimit]:
    """The windows a request of `key` counts in. A scope with both limits None has
    none; 0 is a limit (nothing fits), not "no limit"."""
    limits = []
    if key.id is not None and (key.rpm_limit is not None or key.tpm_limit is not None):
        limits.append(RateLimit(f"key:{key.id}", key.rpm_limit, key.tpm_limit))
    if key.team_id is not None and (key.team_rpm_limit is not None or key.team_tpm_limit is not None):
        limits.append(RateLimit(f"team:{key.team_id}", key.team_rpm_limit, key.team_tpm_limit))
    return limits


@dataclass(slots=True, weakref_slot=True)  # weakref: a renewal must not keep an abandoned request alive
class Admission:
    limits: list[RateLimit] = field(default_factory=list)
    rate: RateDecision | None = None
    estimated_tokens: int = 0
    slots: list[BudgetSlot] = field(default_factory=list)
    slot_budgets: dict[str, BudgetInfo] = field(default_factory=dict)
    reserved: int = 0
    lease: str | None = None
    settled: bool = False
    renewal: asyncio.Task | None = None  # a stream's lease keeper (routing.stages.admission)


async def admit(
    key: KeyInfo, estimated_tokens: int, estimated_cost: Decimal, lease_s: float = money.DEFAULT_LEASE_S
) -> Admission:
    """Rate limits and budget reservation, all or nothing (one store step: one Redis
    round trip). The reservation is a lease of `lease_s` seconds (pass
    money.lease_seconds(route.timeout_s)). Raises RateLimited or BudgetExceeded; a
    refused request counts nothing."""
    adm = Admission(limits=rate_limits(key), estimated_tokens=estimated_tokens)
    now = timezone.now()
    applicable = [b for b in await budgets.get() if b.applies_to(key)]
    adm.slots = [slot_for(b, now) for b in applicable]
    adm.slot_budgets = {s.key: b for s, b in zip(adm.slots, applicable)}
    if not adm.limits and not adm.slots:
        return adm

    async def load(slot_key: str) -> int:
        return await _spent_units(adm.slot_budgets[slot_key], slot_key, now)

    admitted = await get_limit_store().admit(
        adm.limits, estimated_tokens, adm.slots, to_units(max(estimated_cost, money.ZERO)), load, lease_s
    )
    if admitted.reservation is None:
        raise _rate_error(admitted.rate, adm.limits)
    if not admitted.reservation.ok:
        raise _budget_error(adm.slot_budgets[admitted.reservation.refused], key)
    adm.rate = admitted.rate if adm.limits else None
    adm.reserved = admitted.reservation.amount
    adm.lease = admitted.reservation.lease
    return adm


# The ledger reads seeding a slot, in flight, by (event loop, slot key): the requests
# that find the same slot unseeded at once (a process's first burst, every request in
# flight after a Redis restart) share one read of its spend instead of each summing the
# ledger (100 concurrent requests made 100 aggregate queries). The store keeps the
# first seed whatever (SETNX), and one slot key is one budget in one period, so the
# shared read is the one each would have made.
_seeding: dict[tuple[asyncio.AbstractEventLoop, str], asyncio.Future] = {}


async def _spent_units(budget: BudgetInfo, slot_key: str, now: datetime) -> int:
    key = (asyncio.get_running_loop(), slot_key)
    reading = _seeding.get(key)
    if reading is None:
        reading = _seeding[key] = asyncio.ensure_future(run_db(money.spent_in_period, budget, now))
        reading.add_done_callback(lambda done, key=key: _seeded(key, done))
    return to_units(await asyncio.shield(reading))


def _seeded(key: tuple[asyncio.AbstractEventLoop, str], done: asyncio.Future) -> None:
    if _seeding.get(key) is done:
        del _seeding[key]
    if not done.cancelled():
        done.exception()  # retrieved: every waiter may have gone (cancelled) before it ended


async def renew(adm: Admission, lease_s: float) -> bool:
    """Extend the request's lease to at least `lease_s` from now (one store step: one
    Redis round trip), on every budget slot that still holds it. False when the lease
    is gone (settled, or expired: an expired lease is never brought back); True, and
    nothing is done, when the request holds no lease (no budget applies, or 0 reserved)."""
    if adm.lease is None or not adm.slots:
        return True
    if adm.settled:
        return False
    return await get_limit_store().renew(adm.slots, adm.lease, lease_s)


async def settle(adm: Admission, actual_tokens: int, actual_cost: Decimal) -> None:
    """Exactly once per admitted request, whatever happened to it."""
    if adm.settled:
        return
    adm.settled = True
    bucket = adm.rate.bucket if adm.limits and adm.rate is not None else None
    usage = await get_limit_store().settle_all(
        adm.limits, bucket, actual_tokens - adm.estimated_tokens, adm.slots, adm.lease, to_units(actual_cost)
    )
    if adm.slots:
        crossed = [
            adm.slot_budgets[k] for k, u in usage.items()
            if _crossed(adm.slot_budgets[k], from_units(u.spent), max(actual_cost, money.ZERO))
        ]
        if crossed:
            # Rare: hand delivery (email, webhook) to Celery; the broker write is
            # blocking I/O, so it goes to a thread.
            await asyncio.to_thread(_enqueue_budget_check, [b.id for b in crossed])


def _enqueue_budget_check(budget_ids: list[int]) -> None:
    try:
        from .tasks import check_budgets

        check_budgets.delay()
        log.info("budget threshold crossed: %s; alert check queued", budget_ids)
    except Exception:  # noqa: BLE001 - the periodic check will catch up
        log.exception("could not queue the budget alert check for %s", budget_ids)


def _crossed(budget: BudgetInfo, spent: Decimal, added: Decimal) -> bool:
    """Did this request push spend over the alert threshold or the budget itself?"""
    before = spent - added
    marks = (budget.amount * budget.threshold_pct / 100, budget.amount)
    return any(before < mark <= spent for mark in marks)


def _reset_text(seconds: float | None) -> str:
    """OpenAI's x-ratelimit-reset-* format: '1s', '6m0s', '250ms'."""
    if seconds is None:
        return "0s"
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rate_headers(decision: RateDecision | None) -> dict[str, str]:
    if decision is None:
        return {}
    headers = {}
    if decision.limit_requests is not None:
        headers["x-ratelimit-limit-requests"] = str(decision.limit_requests)
        headers["x-ratelimit-remaining-requests"] = str(max(0, decision.remaining_requests or 0))
        headers["x-ratelimit-reset-requests"] = _reset_text(decision.reset_requests_s)
    if decision.limit_tokens is not None:
        headers["x-ratelimit-limit-tokens"] = str(decision.limit_tokens)
        headers["x-ratelimit-remaining-tokens"] = str(max(0, decision.remaining_tokens or 0))
        headers["x-ratelimit-reset-tokens"] = _reset_text(decision.reset_tokens_s)
    return headers


def _rate_error(decision: RateDecision, limits: list[RateLimit]) -> RateLimited:
    kind = decision.refused_kind or "requests"
    who = "this key" if (decision.refused_scope or "").startswith("key:") else "this key's team"
    wait = max(1, int(decision.retry_after_s + 0.999))
    refusing = next((lim for lim in limits if lim.scope == decision.refused_scope), None)
    cap = None if refusing is None else (
        refusing.requests_per_minute if kind == "requests" else refusing.tokens_per_minute
    )
    message = (
        f"The rate limit of {who} is 0 {kind} per minute: it may not send requests."
        if cap == 0
        else f"Rate limit reached for {who}: too many {kind} per minute. Try again in {wait} s."
    )
    error = RateLimited(message, headers={"retry-after": str(wait), **rate_headers(decision)})
    error.type = kind
    return error


def _budget_error(budget: BudgetInfo, key: KeyInfo) -> BudgetExceeded:
    owner = {"key": "this key", "team": f"team '{key.team_name}'", "global": "the gateway"}[budget.scope]
    period = {"day": "today", "month": "this month", "total": "in total"}[budget.period]
    return BudgetExceeded(
        f"The budget of ${budget.amount} for {owner} ({period}) would be exceeded by this request.",
        code=f"{budget.scope}_budget_exceeded",
    )
