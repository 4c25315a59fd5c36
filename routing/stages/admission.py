"""Admission: rate limits and the budget reservation (a lease), decided in one store
step before anything else may cost money; settled once, however the request ends."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from billing import admission, money

from .base import Stage

if TYPE_CHECKING:
    from routing.pipeline import Call


class Admission(Stage):
    name = "admission"

    async def on_request(self, call: Call) -> None:
        tokens, cost = estimate(call)
        call.admission = await admission.admit(call.key, tokens, cost, money.lease_seconds(call.route.timeout_s))
        call.headers.extend(admission.rate_headers(call.admission.rate).items())

    async def on_finish(self, call: Call) -> None:
        if call.admission is None:
            return
        usage = call.usage_or_zero()
        await admission.settle(call.admission, usage.total_tokens, call.actual_cost())

    async def preview(self, call: Call) -> str | None:
        tokens, cost = estimate(call)
        return (f"reserves up to ${_plain(cost)} ({tokens} tokens) against the budgets and rate limits "
                "that apply, and settles the actual cost afterwards")


def estimate(call: Call) -> tuple[int, Decimal]:
    """The most the request may use (billing.money: every cost multiplier, the
    priciest candidate)."""
    found = money.reservation_estimate(call.req, [c.target.model for c in call.run.decision.candidates])
    return found.tokens, found.cost


def _plain(amount: Decimal) -> str:
    return f"{amount.normalize():f}" if amount else "0"
