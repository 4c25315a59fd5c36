"""Admission: rate limits and the budget reservation (a lease), decided in one store
step before anything else may cost money; settled once, however the request ends.

The lease lasts the route's deadline plus a margin (billing.money.lease_seconds), which
bounds a non-stream request; a stream may run far longer (the deadline bounds only its
first chunk), so a stream's lease is renewed every half lease by one background task
that on_finish cancels. JSON requests get no task and no extra round trip.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from decimal import Decimal
from typing import TYPE_CHECKING

from billing import admission, money
from gateway_project.background import spawn

from .base import Stage

if TYPE_CHECKING:
    from routing.pipeline import Call

log = logging.getLogger("gateway.billing")


class Admission(Stage):
    name = "admission"

    async def on_request(self, call: Call) -> None:
        tokens, cost = estimate(call)
        lease_s = money.lease_seconds(call.route.timeout_s)
        adm = call.admission = await admission.admit(call.key, tokens, cost, lease_s)
        call.headers.extend(admission.rate_headers(adm.rate).items())
        if call.req.stream and adm.lease is not None:
            adm.renewal = spawn(keep_alive(weakref.ref(adm), lease_s))

    async def on_finish(self, call: Call) -> None:
        if call.admission is None:
            return
        if call.admission.renewal is not None:
            call.admission.renewal.cancel()  # before settling: nothing renews a settled lease
        usage = call.usage_or_zero()
        await admission.settle(call.admission, usage.total_tokens, call.cost)  # set by Call.settle

    async def preview(self, call: Call) -> str | None:
        tokens, cost = estimate(call)
        return (f"reserves up to ${_plain(cost)} ({tokens} tokens) against the budgets and rate limits "
                "that apply, and settles the actual cost afterwards")


async def keep_alive(ref: weakref.ref[admission.Admission], lease_s: float) -> None:
    """Renew the lease every ``lease_s / 2`` (so it always has half a lease left) until
    cancelled (on_finish), until the lease is gone, or until the admission itself is
    gone: a request dropped without settling (nothing left refers to it) must not keep
    its budget blocked forever, so only a weak reference is held between renewals."""
    while True:
        await asyncio.sleep(lease_s / 2)
        adm = ref()
        if adm is None or adm.settled:
            return
        try:
            held = await admission.renew(adm, lease_s)
        except Exception as exc:  # noqa: BLE001 - e.g. Redis unreachable: try again next time
            log.warning("could not renew the budget lease of a stream: %s", type(exc).__name__)
            held = True
        if not held:
            if not adm.settled:
                log.warning("a stream's budget lease was gone (expired or reset) before it was renewed")
            return
        del adm  # hold it only while renewing


def estimate(call: Call) -> tuple[int, Decimal]:
    """The most the request may use (billing.money: every cost multiplier, the
    priciest candidate)."""
    found = money.reservation_estimate(call.req, [c.target.model for c in call.run.decision.candidates])
    return found.tokens, found.cost


def _plain(amount: Decimal) -> str:
    return f"{amount.normalize():f}" if amount else "0"
