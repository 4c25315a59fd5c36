"""Routing strategies: each orders a route's targets for one request, with reasons.

A strategy is a small function (route, request, signals) -> list of Candidates; the
engine then tries the candidates in order under the route's retry policy and the
targets' circuit breakers. Reasons are plain sentences shown in headers, usage
records and the admin's "Test this route".

Before any strategy runs, the targets whose model lacks a capability the request
needs (`required`: its endpoint, chat or embeddings, plus ChatRequest.needs) are set
aside (`Decision.excluded`, the engine logs them as skipped): a strategy only ever
orders targets that can serve the request. When none can, the request is the client's
400 (`unsupported_capability`), before anything is reserved or sent.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from billing import money
from gateway_project.errors import InvalidRequest
from providers.catalog import ModelInfo
from providers.models import CAPABILITIES
from providers.tokens import estimate_prompt_tokens, estimate_tokens, message_text
from providers.types import ChatRequest

from .breaker import BreakerStatus, LatencyStats, State
from .catalog import RouteInfo, TargetInfo
from .schemas import NEEDS
from .task_detection import TaskDecision, detect_task


_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class Candidate:
    target: TargetInfo
    reason: str

    @property
    def label(self) -> str:
        return self.target.model.label


@dataclass(slots=True)
class Signals:
    """What strategies may consult, gathered once per request (one shared-state read)."""

    breakers: dict[str, BreakerStatus] = field(default_factory=dict)
    latencies: dict[str, LatencyStats] = field(default_factory=dict)
    sticky_id: str | None = None  # key id or end-user id for sticky load balancing
    task_hint: str | None = None
    # Shared generator: a new random.Random() per request would seed from os.urandom.
    rng: random.Random = field(default_factory=lambda: _RNG)

    def closed(self) -> frozenset[str]:
        """Targets whose breakers were closed when the request arrived."""
        return frozenset(key for key, status in self.breakers.items() if status.state is State.CLOSED)

    def is_open(self, target: TargetInfo) -> bool:
        status = self.breakers.get(target.key)
        return status is not None and status.state is State.OPEN and (status.retry_in_s or 0) > 0


@dataclass(slots=True)
class Decision:
    strategy: str
    candidates: list[Candidate]
    excluded: list[Candidate] = field(default_factory=list)  # considered but not eligible, with why
    task: TaskDecision | None = None

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.candidates]


def estimated_cost(target: TargetInfo, prompt_tokens: int, max_tokens: int | None) -> Decimal:
    """billing.money's estimate for a request of `prompt_tokens` and `max_tokens` on
    this target (no multiplying parameters: the cost strategy itself passes the whole
    request to money.estimated_cost, so `n` counts there)."""
    req = ChatRequest(model="", messages=[], max_tokens=max_tokens)
    return money.estimated_cost(target.model, req, prompt_tokens=prompt_tokens)


def _ordered(route: RouteInfo, reason: Callable[[int, TargetInfo], str]) -> list[Candidate]:
    return [Candidate(t, reason(i, t)) for i, t in enumerate(route.targets)]


def single(route: RouteInfo, req: ChatRequest, signals: Signals) -> Decision:
    first = route.targets[:1]
    return Decision("single", [Candidate(t, "the route's only target (single strategy)") for t in first])


def fallback(route: RouteInfo, req: ChatRequest, signals: Signals) -> Decision:
    return Decision("fallback", _ordered(route, lambda i, t: "first choice" if i == 0 else f"fallback #{i}"))


def _unit(seed: str) -> float:
    """A stable number in (0, 1) from a string: the same user always draws the same."""
    return (int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big") + 1) / (2**64 + 2)


def _sticky_pick(route: RouteInfo, pool: list[TargetInfo], sticky_id: str) -> TargetInfo:
    """Weighted rendezvous hashing: each target scores -weight / ln(u) with u a hash
    of (user, target); the best score wins. Shares follow the weights, and when a
    target leaves the pool (breaker open) only its own users move."""
    return max(pool, key=lambda t: -t.weight / math.log(_unit(f"{route.name}|{sticky_id}|{t.model.id}")))


def loadbalance(route: RouteInfo, req: ChatRequest, signals: Signals) -> Decision:
    """Weighted random over healthy targets; with stickiness the draw is a hash of the
    key or user, so each keeps its arm while weights stay the same."""
    healthy = [t for t in route.targets if t.weight > 0 and not signals.is_open(t)]
    pool = healthy or [t for t in route.targets if t.weight > 0]
    total = sum(t.weight for t in pool)
    if not pool or total <= 0:
        decision = fallback(route, req, signals)
        decision.strategy = "loadbalance"
        return decision
    sticky = route.sticky_by != "none" and signals.sticky_id
    if sticky:
        chosen = _sticky_pick(route, pool, signals.sticky_id)
    else:
        point = signals.rng.random() * total
        chosen = pool[-1]
        for target in pool:
            point -= target.weight
            if point < 0:
                chosen = target
                break
    share = f"weight {chosen.weight} of {total} ({chosen.weight / total:.0%})"
    how = f"sticky by {route.sticky_by}" if sticky else "random draw"
    first = Candidate(chosen, f"load-balanced arm: {share}, {how}")
    rest = [Candidate(t, f"fallback #{i + 1}") for i, t in enumerate(x for x in route.targets if x is not chosen)]
    return Decision("loadbalance", [first, *rest])


def least_latency(route: RouteInfo, req: ChatRequest, signals: Signals) -> Decision:
    """Fastest recent target first (EWMA of time to first token for streams, of total
    latency otherwise); targets never measured go first so they get measured; with
    probability explore_rate a random other target is promoted to keep estimates fresh."""

    def estimate(t: TargetInfo) -> float | None:
        stats = signals.latencies.get(t.stats_key)
        if stats is None or stats.samples == 0:
            return None
        value = stats.ttft_s if req.stream and stats.ttft_s is not None else stats.total_s
        return value

    def describe(t: TargetInfo) -> str:
        value = estimate(t)
        return "not measured yet: tried to learn its latency" if value is None else f"recent latency {value * 1000:.0f} ms"

    ranked = sorted(route.targets, key=lambda t: (estimate(t) is not None, estimate(t) or 0.0, t.order))
    candidates = [Candidate(t, describe(t)) for t in ranked]
    if len(candidates) > 1 and signals.rng.random() < route.explore_rate:
        pick = signals.rng.randrange(1, len(candidates))
        explored = candidates.pop(pick)
        candidates.insert(0, Candidate(explored.target, f"exploring ({route.explore_rate:.0%} of requests): {explored.reason}"))
    return Decision("least_latency", candidates)


def _window_need(req: ChatRequest, prompt: int) -> int:
    """Tokens the context window must hold: the prompt plus max_tokens; for embeddings
    the longest single input (each input is embedded on its own)."""
    if "embeddings" in req.needs:
        return max((estimate_tokens(message_text(m.get("content"))) for m in req.messages), default=0)
    return prompt + (req.max_tokens or 0)


def cost(route: RouteInfo, req: ChatRequest, signals: Signals) -> Decision:
    """The cheapest target whose quality meets the route's minimum and whose context
    window fits the prompt plus max_tokens; the others are excluded, with why."""
    prompt = estimate_prompt_tokens(req.messages)
    need = _window_need(req, prompt)
    eligible, excluded = [], []
    for t in route.targets:
        window = t.model.context_window
        if t.model.quality < route.min_quality:
            excluded.append(Candidate(t, f"quality {t.model.quality} is below the route's minimum {route.min_quality}"))
        elif window is not None and need > window:
            excluded.append(Candidate(t, f"needs ~{need} tokens, context window is {window}"))
        else:
            # the same estimate admission reserves (max_tokens or the reserve, within the window, x n)
            eligible.append((money.estimated_cost(t.model, req, prompt_tokens=prompt), t))
    eligible.sort(key=lambda pair: (pair[0], -pair[1].model.quality, pair[1].order))
    candidates = [
        Candidate(t, f"{'cheapest' if i == 0 else f'#{i + 1} cheapest'}: ~${c:.6f}, quality {t.model.quality}")
        for i, (c, t) in enumerate(eligible)
    ]
    return Decision("cost", candidates, excluded)


def task(route: RouteInfo, req: ChatRequest, signals: Signals) -> Decision:
    """Detect the task type; its own targets first, then default targets (no task types)."""
    decision = detect_task(req, signals.task_hint)
    own = [t for t in route.targets if decision.task.value in t.task_types]
    defaults = [t for t in route.targets if not t.task_types]
    candidates = [Candidate(t, f"serves {decision.task.value}") for t in own]
    candidates += [Candidate(t, "default target (serves any task)") for t in defaults]
    if not candidates:
        candidates = [Candidate(t, f"no target serves {decision.task.value}: all targets in order") for t in route.targets]
    return Decision("task", candidates, task=decision)


def conditional(route: RouteInfo, req: ChatRequest, signals: Signals) -> Decision:
    """The first rule whose condition holds chooses the targets; no match, all in order."""
    by_label = {t.model.label: t for t in route.targets}
    for i, rule in enumerate(route.rules):
        if rule.matches(req):
            chosen = [by_label[name] for name in rule.targets if name in by_label]
            if chosen:
                return Decision("conditional", [Candidate(t, f"rule {i + 1} matched: {rule.text}") for t in chosen])
    return Decision("conditional", _ordered(route, lambda i, t: "no rule matched: default order"))


STRATEGIES: dict[str, Callable[[RouteInfo, ChatRequest, Signals], Decision]] = {
    "single": single,
    "fallback": fallback,
    "loadbalance": loadbalance,
    "least_latency": least_latency,
    "cost": cost,
    "task": task,
    "conditional": conditional,
}


# --- capabilities ----------------------------------------------------------------------
ENDPOINTS = frozenset({"chat", "embeddings"})
_CHAT = frozenset({"chat"})


def required(req: ChatRequest) -> frozenset[str]:
    """What a target's model must be able to do for `req`: its needs, and its endpoint
    (chat, unless the needs name one: an embeddings request needs "embeddings")."""
    if not req.needs:
        return _CHAT
    return req.needs if req.needs & ENDPOINTS else req.needs | _CHAT


def lacking(model: ModelInfo, needs: frozenset[str]) -> list[str]:
    """The capabilities of `needs` the model does not have, in CAPABILITIES order."""
    return [c for c in CAPABILITIES if c in needs and c not in model.capabilities]


def _lacks(missing: list[str]) -> str:
    return f"lacks {', '.join(missing)}: never sent this request"


def unsupported(route: RouteInfo, needs: frozenset[str]) -> InvalidRequest:
    """The client's 400 when no target of the route can serve the request, saying what
    is missing and where it is set."""
    missing = {t.model.label: lacking(t.model, needs) for t in route.targets}
    where = "; ".join(f"{label} lacks {', '.join(m)}" for label, m in missing.items())
    if "embeddings" in needs and all("embeddings" in m for m in missing.values()):
        return InvalidRequest(
            f"Route '{route.name}' cannot serve embeddings: none of its models has the 'embeddings' capability "
            f"({where}). Send chat requests to it, or embeddings to a route with an embedding model.",
            param="model", code="unsupported_capability")
    if "chat" in needs and all("chat" in m for m in missing.values()):
        return InvalidRequest(
            f"Route '{route.name}' serves embeddings only: none of its models has the 'chat' capability "
            f"({where}). Send POST /v1/embeddings to it, or chat requests to a chat route.",
            param="model", code="unsupported_capability")
    common = [c for c in CAPABILITIES if c in needs and all(c in m for m in missing.values())]
    asked = [c for c in CAPABILITIES if c in needs and c in NEEDS]
    reasons = ", ".join(f"{c} ({NEEDS[c][1]})" for c in asked)
    param = NEEDS[common[0]][0] if common and common[0] in NEEDS else None
    return InvalidRequest(
        f"No target of route '{route.name}' can serve this request: it needs {reasons or ', '.join(sorted(needs))}, "
        f"and {where}. Tick the capability on a model of the route (admin, or `capabilities:` in the config) "
        "or send the request without it.",
        param=param, code="unsupported_capability")


def capable_route(route: RouteInfo, req: ChatRequest) -> tuple[RouteInfo, list[Candidate]]:
    """The route with only the targets that can serve `req`, and the others as excluded
    candidates (why: what each lacks). The same route object when every target can.
    Raises the client's 400 (`unsupported`) when the route has targets but none can."""
    needs = required(req)
    if all(t.model.capabilities >= needs for t in route.targets):
        return route, []
    capable, set_aside = [], []
    for t in route.targets:
        if t.model.capabilities >= needs:
            capable.append(t)
        else:
            set_aside.append(Candidate(t, _lacks(lacking(t.model, needs))))
    if not capable:
        raise unsupported(route, needs)
    return replace(route, targets=tuple(capable)), set_aside


def decide(route: RouteInfo, req: ChatRequest, signals: Signals) -> Decision:
    """Order the route's candidates among the targets that can serve the request (the
    others are excluded, and a request none can serve is a 400: capable_route); targets
    with an open breaker move to the end (the engine skips them unless the route says
    to try anyway)."""
    route, set_aside = capable_route(route, req)
    decision = STRATEGIES.get(route.strategy, fallback)(route, req, signals)
    if set_aside:
        decision.excluded = set_aside + decision.excluded
    healthy = [c for c in decision.candidates if not signals.is_open(c.target)]
    tripped = [Candidate(c.target, f"{c.reason}; circuit breaker open") for c in decision.candidates if signals.is_open(c.target)]
    decision.candidates = healthy + tripped
    return decision
