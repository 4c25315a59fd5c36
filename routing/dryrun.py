"""What would happen: a route's routing decision for a sample request, nobody called.

Used by the admin's "Test this route". The request goes through the hot path's own
functions — routing.schemas (parse), pipeline.plan (gathering.gather_signals: the
circuit breakers as they are right now; strategies.decide) and each stage's preview
(what admission, guardrails or the cache would do) — on the saved route, so the
explanation shows what a client sending this request would get. Nothing is reserved,
called or written.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from asgiref.sync import async_to_sync

from providers.catalog import model_info
from providers.kinds import KINDS
from providers.tokens import estimate_prompt_tokens
from providers.types import ChatRequest

from billing import money
from billing.keys import KeyInfo

from . import gathering, lookup, pipeline
from .breaker import State, get_breaker_store
from .catalog import RouteInfo, TargetInfo, route_info
from .models import Route, RouteTarget, Strategy
from .schemas import parse_chat_request
from .strategies import Candidate, Decision, Signals
from .task_detection import TaskDecision

BREAKER_WORDS = {State.CLOSED: "closed", State.OPEN: "open", State.HALF_OPEN: "half-open"}


@dataclass(frozen=True, slots=True)
class Row:
    """One target as an editor sees it: the strategy's reason and every factor."""

    position: int  # 1 = tried first; 0 for excluded targets
    label: str  # provider/model
    provider: str
    reason: str
    weight: int
    share: float | None  # of the route's total weight; None when every weight is 0
    price_in: Decimal  # USD per million tokens
    price_out: Decimal
    quality: int
    context_window: int | None
    latency_ms: int | None  # recent average total latency, None if never measured
    ttft_ms: int | None  # recent average time to first token (streams)
    breaker: str  # "closed", "open" or "half-open"
    retry_in_s: int | None  # open breakers: seconds until a trial request goes through

    @property
    def out_of_rotation(self) -> bool:
        """Open and still cooling down: as strategies.Signals.is_open."""
        return self.breaker == "open" and bool(self.retry_in_s)

    # --- the same, as words for the admin page ---
    @property
    def share_text(self) -> str:
        if not self.weight:
            return "0 (fallback only)"
        return f"{self.weight} ({self.share:.0%})" if self.share is not None else str(self.weight)

    @property
    def price_text(self) -> str:
        return f"${plain(self.price_in)} in / ${plain(self.price_out)} out"

    @property
    def latency_text(self) -> str:
        if self.latency_ms is None:
            return "not measured yet"
        ttft = f" ({self.ttft_ms} ms to first token)" if self.ttft_ms is not None else ""
        return f"{self.latency_ms} ms{ttft}"

    @property
    def breaker_text(self) -> str:
        if self.breaker != "open":
            return self.breaker
        return f"open: retry in {self.retry_in_s} s" if self.retry_in_s else "open: the next request is a trial"


def plain(amount: Decimal) -> str:
    """0.150000 -> 0.15, 10.000000 -> 10 (never 1E+1)."""
    return f"{amount.normalize():f}"


@dataclass(slots=True)
class Explanation:
    route: RouteInfo
    request: ChatRequest
    decision: Decision
    candidates: list[Row]  # in the order the gateway would try them
    excluded: list[Row]  # considered by the strategy but not eligible (reason says why)
    unused: list[tuple[str, str]]  # targets switched off, so never considered: (label, why)
    prompt_tokens: int  # estimate
    completion_tokens: int  # what the cost estimate assumes: max_tokens, or a guess
    first_cost: Decimal | None  # upper estimate if the first candidate answers
    stages: list[tuple[str, str]] = field(default_factory=list)  # (stage, what it would do)

    @property
    def task(self) -> TaskDecision | None:
        return self.decision.task

    @property
    def first(self) -> Row | None:
        return self.candidates[0] if self.candidates else None

    @property
    def shows_weights(self) -> bool:
        """Weights only steer the load-balancing strategy; on any other route they are
        ignored, so the explanation does not show them."""
        return self.route.strategy == Strategy.LOADBALANCE

    @property
    def any_open(self) -> bool:
        """Some candidate is out of rotation (decide() moved it to the end)."""
        return any(r.out_of_rotation for r in self.candidates)

    @property
    def all_open(self) -> bool:
        """Every candidate is out of rotation (the route's when_all_open setting decides)."""
        return bool(self.candidates) and all(r.out_of_rotation for r in self.candidates)


def request_body(
    route_name: str,
    prompt: str,
    *,
    system: str = "",
    max_tokens: int | None = None,
    metadata: dict[str, Any] | None = None,
    stream: bool = False,
) -> bytes:
    """The JSON a client would send for this sample, in the gateway's (OpenAI) dialect."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    body: dict[str, Any] = {"model": route_name, "messages": messages, "stream": stream}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if metadata:
        body["metadata"] = metadata
    return orjson.dumps(body)


def live_route_info(route: Route) -> tuple[RouteInfo, list[tuple[str, str]]]:
    """The saved route as the hot path sees it (only usable targets), plus the
    targets left out and why. Sync (ORM)."""
    targets, unused = [], []
    rows = RouteTarget.objects.filter(route=route).select_related("model__provider").order_by("order", "id")
    for t in rows:
        why = _unusable(t)
        if why:
            unused.append((str(t.model), why))
        else:
            targets.append(TargetInfo(model_info(t.model), t.order, t.weight, frozenset(t.task_types or ())))
    return route_info(route, tuple(targets)), unused


def _unusable(t: RouteTarget) -> str:
    if not t.enabled:
        return "this target is switched off on the route"
    if not t.model.enabled:
        return "the model is switched off"
    if not t.model.provider.enabled:
        return "the provider is switched off"
    if t.model.provider.kind not in KINDS:
        return f"the provider's kind '{t.model.provider.kind}' is unknown to this gateway"
    return ""


async def _plan(
    info: RouteInfo, req: ChatRequest, key: KeyInfo, task_hint: str | None, sticky_id: str | None,
    rng: random.Random | None,
) -> tuple[pipeline.Call, list[tuple[str, str]]]:
    signals = await gathering.gather_signals(info, req, key, task_hint)  # as the hot path reads them
    keys = [t.stats_key for t in info.targets]
    if keys and not signals.latencies:  # the explanation shows every target's latency
        signals.latencies = await get_breaker_store().latencies(keys)
    if sticky_id is not None and info.sticky_by != "none":
        signals.sticky_id = sticky_id
    if rng is not None:
        signals.rng = rng
    call = await pipeline.plan(key, req, info, task_hint, signals)
    return call, await pipeline.preview(call)


def explain(
    route: Route,
    prompt: str,
    *,
    system: str = "",
    max_tokens: int | None = None,
    metadata: dict[str, Any] | None = None,
    task_hint: str | None = None,
    sticky_id: str | None = None,
    rng: random.Random | None = None,
    key: KeyInfo | None = None,
) -> Explanation:
    """Which targets would serve this request, in which order, and why.

    `key` is the caller (default: the admin's test-call caller, lookup.staff_key).
    Raises gateway_project.errors.InvalidRequest when the sample is not a valid
    request (the same check the API makes).
    """
    req = parse_chat_request(request_body(route.name, prompt, system=system, max_tokens=max_tokens, metadata=metadata))
    info, unused = live_route_info(route)
    call, notes = async_to_sync(_plan)(info, req, key or lookup.staff_key("dry-run"), task_hint or None,
                                       sticky_id, rng)
    explanation = explain_decision(info, req, call.run.decision, call.signals, unused)
    explanation.stages = notes
    return explanation


def explain_decision(
    info: RouteInfo, req: ChatRequest, decision: Decision, signals: Signals, unused: Iterable[tuple[str, str]] = ()
) -> Explanation:
    """Pure: a decision and the signals it was made with -> rows an editor can read."""
    total = sum(t.weight for t in info.targets if t.weight > 0)
    prompt = estimate_prompt_tokens(req.messages)
    first = decision.candidates[0].target if decision.candidates else None
    # The same estimate the budget reservation makes (billing.money), on the first candidate.
    estimate = money.reservation_estimate(req, [first.model] if first else [], prompt_tokens=prompt)
    return Explanation(
        route=info,
        request=req,
        decision=decision,
        candidates=_rows(decision.candidates, signals, total, start=1),
        excluded=_rows(decision.excluded, signals, total, start=0),
        unused=list(unused),
        prompt_tokens=prompt,
        completion_tokens=estimate.completion_tokens if first else (req.max_tokens or 0),
        first_cost=estimate.cost if first else None,
    )


def _rows(candidates: Iterable[Candidate], signals: Signals, total: int, *, start: int) -> list[Row]:
    return [_row(c, signals, total, start + i if start else 0) for i, c in enumerate(candidates)]


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _row(c: Candidate, signals: Signals, total: int, position: int) -> Row:
    model = c.target.model
    status = signals.breakers.get(c.target.key)
    stats = signals.latencies.get(c.target.stats_key)
    measured = stats is not None and stats.samples > 0
    open_ = status is not None and status.state is State.OPEN
    return Row(
        position=position,
        label=model.label,
        provider=model.provider.name,
        reason=c.reason,
        weight=c.target.weight,
        share=c.target.weight / total if total and c.target.weight > 0 else (0.0 if total else None),
        price_in=model.price.input_per_mtok,
        price_out=model.price.output_per_mtok,
        quality=model.quality,
        context_window=model.context_window,
        latency_ms=_ms(stats.total_s) if measured else None,
        ttft_ms=_ms(stats.ttft_s) if measured else None,
        breaker=BREAKER_WORDS[status.state] if status else "closed",
        retry_in_s=math.ceil(status.retry_in_s) if open_ and status.retry_in_s is not None else None,
    )
