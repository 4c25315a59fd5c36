"""Admission: rate limits and the budget reservation (a lease), decided in one store
step before anything else may cost money; settled once, however the request ends."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings

from billing import admission
from providers.tokens import estimate_prompt_tokens
from providers.types import Usage

from .base import Stage

if TYPE_CHECKING:
    from routing.pipeline import Call


class Admission(Stage):
    name = "admission"

    async def on_request(self, call: Call) -> None:
        tokens, cost = estimate(call)
        call.admission = await admission.admit(call.key, tokens, cost)
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
    """The most the request may use: prompt estimate plus max_tokens (or the configured
    reserve, bounded by the context window), at the priciest candidate."""
    req = call.req
    prompt = estimate_prompt_tokens(req.messages)
    costs = [Decimal(0)]
    for candidate in call.run.decision.candidates:
        model = candidate.target.model
        completion = req.max_tokens or settings.GATEWAY_RESERVE_COMPLETION_TOKENS
        if model.context_window:
            completion = max(0, min(completion, model.context_window - prompt))
        costs.append(model.price.cost(Usage(prompt, completion)))
    return prompt + (req.max_tokens or 0), max(costs)


def _plain(amount: Decimal) -> str:
    return f"{amount.normalize():f}" if amount else "0"
