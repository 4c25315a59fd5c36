"""The logic behind two custom admin pages of the routing app.

"Test this route" (on a route's change page): "Explain" asks routing.dryrun what would
happen (nobody is called); "Send it for real" goes through the real pipeline as an
API client would, except that the caller is the signed-in admin instead of a virtual
key: the answer is billed and recorded in the usage ledger under the key prefix "admin".

"Model health" (routing.admin.TargetHealthAdmin): breaker states and latencies read
from the shared breaker store once per page, the last probes, breaker resets.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from asgiref.sync import async_to_sync
from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from billing.keys import KeyInfo
from gateway_project.errors import GatewayError
from providers.models import HealthCheck
from providers.types import ChatResponse, ErrorKind, ProviderError

from providers.http import close_session, has_session

from . import engine, lookup, pipeline
from .breaker import BreakerStatus, LatencyStats, State, get_breaker_store
from .dryrun import BREAKER_WORDS, explain, request_body
from .models import Route, Strategy
from .task_detection import TaskDecision, TaskType

log = logging.getLogger("gateway.admin")
TEMPLATE = "admin/routing/route/test_route.html"

# What each error kind means to someone reading an attempt log or choosing retries.
ERROR_KIND_LABELS: dict[ErrorKind, str] = {
    ErrorKind.RATE_LIMITED: "Rate limited – the provider asked us to slow down (HTTP 429, overloaded)",
    ErrorKind.TIMEOUT: "Timeout – no answer in time",
    ErrorKind.UNAVAILABLE: "Unavailable – server error (5xx) or connection refused",
    ErrorKind.BAD_RESPONSE: "Bad response – malformed or cut-off answer",
    ErrorKind.AUTH: "Auth – the provider refused our API key (401/403); retrying rarely helps",
    ErrorKind.BAD_REQUEST: "Bad request – the provider rejected the request itself (400/404/422)",
    ErrorKind.CONTEXT_LENGTH: "Context length – prompt too long for the model; retrying the same model cannot help",
    ErrorKind.CONTENT_POLICY: "Content policy – refused by the provider's safety system",
}


def outcome_text(outcome: str) -> str:
    """An attempt's outcome as a sentence fragment."""
    if outcome == "ok":
        return "answered"
    if outcome == engine.SKIPPED:
        return "skipped: its circuit breaker is open"
    if outcome == engine.UNSUPPORTED:
        return "skipped: the model lacks what the request needs"
    if outcome == engine.NOT_TRANSLATABLE:
        return "skipped: the request cannot be put in this provider's format"
    kind = ErrorKind._value2member_map_.get(outcome)
    return f"failed: {ERROR_KIND_LABELS.get(kind, outcome)}" if kind else f"failed: {outcome}"


class OptionalJSONField(forms.JSONField):
    """Blank when there is no value: forms.JSONField writes the text `null` in the box."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class TestRouteForm(forms.Form):
    prompt = forms.CharField(
        label="Sample prompt",
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="What a user would ask, e.g. “Write a Python function that reverses a string.”",
    )
    system = forms.CharField(
        label="System prompt (optional)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text="Instructions an application puts before the conversation, e.g. “You are a support agent.”",
    )
    max_tokens = forms.IntegerField(
        label="Longest answer (max_tokens)",
        min_value=1,
        required=False,
        initial=256,
        help_text="The cost estimate assumes the answer is this long (an upper bound). Blank: no limit.",
    )
    stream = forms.BooleanField(
        label="Stream the answer",
        required=False,
        help_text="Only for “Send it for real”; the explanation is the same either way.",
    )
    metadata = OptionalJSONField(
        label="Metadata (optional JSON)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
        help_text='Sent as the request\'s metadata, e.g. {"tier": "premium"}; conditional rules read it '
        "as metadata.tier.",
    )
    task_hint = forms.ChoiceField(
        label="Task hint (optional)",
        required=False,
        choices=[("", "— detect it from the prompt —"), *TaskType.choices],
        help_text="What a client would send in the x-gateway-task header: it overrides detection (task strategy).",
    )

    def clean_metadata(self) -> dict[str, Any]:
        value = self.cleaned_data.get("metadata")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('Metadata must be a JSON object, e.g. {"tier": "premium"}.')
        return value


@dataclass(frozen=True, slots=True)
class AttemptRow:
    target: str
    outcome: str
    latency_ms: int
    status: int | None
    message: str


@dataclass(slots=True)
class RealCall:
    """What happened when the sample was sent for real, ready to show."""

    answer: str = ""
    error: str = ""  # a readable message when the request failed
    request_id: str = ""
    model: str = ""  # provider/model that answered (or was tried last)
    provider: str = ""
    latency_ms: int | None = None
    ttft_ms: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: bool = False
    cost: Decimal | None = None
    strategy: str = ""
    task: TaskDecision | None = None
    candidates: list[tuple[str, str]] = field(default_factory=list)  # (target, reason)
    attempts: list[AttemptRow] = field(default_factory=list)


admin_key = lookup.staff_key  # the caller of "Send it for real"


def _answer_text(response: ChatResponse) -> str:
    message = (response.choices[0].get("message") or {}) if response.choices else {}
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content:
        return content
    if message.get("tool_calls"):
        names = ", ".join((tc.get("function") or {}).get("name", "?") for tc in message["tool_calls"])
        return f"(no text: the model asked to call a tool: {names})"
    return "(the model returned an empty answer)"


def _result(call: pipeline.Call | None, answer: str = "", error: str = "") -> RealCall:
    result = RealCall(answer=answer, error=error)
    if call is None:
        return result
    run = call.run
    result.request_id = call.request_id
    result.latency_ms = int((time.monotonic() - run.started) * 1000)
    result.ttft_ms = int(call.ttft * 1000) if call.ttft is not None else None
    if run.target is not None:
        result.model, result.provider = run.target.model.label, run.target.model.provider.name
    if call.usage is not None:
        result.prompt_tokens, result.completion_tokens = call.usage.prompt_tokens, call.usage.completion_tokens
        result.usage_estimated = call.usage.estimated
    result.cost = call.cost if call.settled else None
    result.strategy = run.decision.strategy
    result.task = run.decision.task
    result.candidates = [(c.label, c.reason) for c in run.decision.candidates]
    result.attempts = [AttemptRow(a.target, outcome_text(a.outcome), a.latency_ms, a.status, a.message) for a in run.log]
    return result


async def send(body: bytes, key: KeyInfo, task_hint: str | None) -> RealCall:
    """The hot path for an admin pseudo-key (no virtual key to authenticate)."""
    call = None
    try:
        call = await pipeline.prepare_for_key(key, body, task_hint)
        if not call.req.stream:
            return _result(call, answer=_answer_text(await pipeline.complete(call)))
        parts = []
        async for chunk in await pipeline.open_stream(call):
            parts.extend((c.get("delta") or {}).get("content") or "" for c in chunk.choices)
        return _result(call, answer="".join(parts) or "(the model returned an empty answer)")
    except GatewayError as error:
        return _result(call, error=error.message)
    except ProviderError as error:  # a stream that broke after it had started
        return _result(call, error=f"The answer was cut off: {error.message}")


async def _send_once(body: bytes, key: KeyInfo, task_hint: str | None) -> RealCall:
    """send() from a sync admin view: under ASGI it runs on the server's loop (whose
    HTTP session stays); elsewhere on a loop of its own, whose session is closed."""
    short_lived = not has_session()
    try:
        return await send(body, key, task_hint)
    finally:
        if short_lived:
            await close_session()


def send_for_real(route: Route, data: dict[str, Any], username: str) -> RealCall:
    body = request_body(
        route.name, data["prompt"], system=data.get("system") or "", max_tokens=data.get("max_tokens"),
        metadata=data.get("metadata") or None, stream=bool(data.get("stream")),
    )
    try:
        return async_to_sync(_send_once)(body, admin_key(username), data.get("task_hint") or None)
    except Exception:  # the editor gets a sentence; the traceback goes to the log
        log.exception("admin test call of route %s failed unexpectedly", route.name)
        return RealCall(error="The gateway failed unexpectedly while sending the request; the details are in the server log.")


def test_route_view(model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str) -> HttpResponse:
    route = model_admin.get_object(request, unquote(object_id))
    if route is None:
        raise Http404("No such route.")
    if not model_admin.has_change_permission(request, route):
        raise PermissionDenied
    form = TestRouteForm(request.POST or None)
    explanation = real = None
    problem = ""
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        if "_send" in request.POST:
            real = send_for_real(route, data, request.user.get_username())
        else:
            # The dry run gathers its signals as the real call would (gathering.gather_signals),
            # for the same caller, so a sticky route draws with the same id.
            try:
                explanation = explain(
                    route, data["prompt"], system=data["system"], max_tokens=data["max_tokens"],
                    metadata=data["metadata"], task_hint=data["task_hint"] or None,
                    key=admin_key(request.user.get_username()),
                )
            except GatewayError as error:
                problem = error.message
    opts = model_admin.model._meta
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Test the route “{route}”",
        "opts": opts,
        "original": route,
        "strategy_label": Strategy(route.strategy).label if route.strategy in Strategy.values else route.strategy,
        "form": form,
        "explanation": explanation,
        "real": real,
        "problem": problem,
        "media": model_admin.media + form.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, TEMPLATE, context)


# --- the Model health page (routing.admin.TargetHealthAdmin) -----------------------------
# A breaker belongs to one route's use of a model (catalog.TargetInfo.key), under that
# route's policy; latency statistics belong to the model. The page shows, per model,
# the breaker of every route that uses it, and a reset resets them all.
from .breaker import BreakerPolicy  # noqa: E402 - this half's own imports (the top half has its own owner)
from .catalog import breaker_key, breaker_policy, stats_key  # noqa: E402
from .models import RouteTarget  # noqa: E402
from django.utils.safestring import mark_safe  # noqa: E402

BREAKER_COLOURS = {State.CLOSED: "#2e7d32", State.OPEN: "#c62828", State.HALF_OPEN: "#e65100"}


@dataclass(frozen=True, slots=True)
class RouteBreaker:
    """One route's breaker of a model, as the gateway applies it."""

    route: Route
    in_use: bool  # the route and its target of this model are both switched on
    policy: BreakerPolicy
    status: BreakerStatus


@dataclass(frozen=True, slots=True)
class Health:
    breakers: list[RouteBreaker]  # one per route that has the model as a target, by route name
    latency: LatencyStats
    last_check: HealthCheck | None


def _route_targets(models: list) -> dict[int, list[RouteTarget]]:
    """Every route target of these models (one query), by model id, by route name."""
    found: dict[int, list[RouteTarget]] = {}
    for t in RouteTarget.objects.filter(model__in=models).select_related("route").order_by("route__name"):
        found.setdefault(t.model_id, []).append(t)
    return found


async def _read_store(
    breakers: list[tuple[str, BreakerPolicy]], stats: list[str]
) -> tuple[dict[str, BreakerStatus], dict[str, LatencyStats]]:
    """One store read per distinct route policy (statuses are read with the policy
    that governs them), and one for the models' latencies."""
    store = get_breaker_store()
    by_policy: dict[BreakerPolicy, list[str]] = {}
    for key, policy in breakers:
        by_policy.setdefault(policy, []).append(key)
    statuses: dict[str, BreakerStatus] = {}
    for policy, keys in by_policy.items():
        statuses.update(await store.statuses(keys, policy))
    return statuses, await store.latencies(stats)


def attach_health(models: list) -> None:
    """Set `.health` on each model: its routes' breakers and its latency (a few store
    reads for all of them), one query for their route targets and one for their
    latest health checks."""
    if not models:
        return
    targets = _route_targets(models)
    policies = {t.route_id: breaker_policy(t.route) for ts in targets.values() for t in ts}
    keyed = [(breaker_key(t.route_id, t.model_id), policies[t.route_id]) for ts in targets.values() for t in ts]
    statuses, latencies = async_to_sync(_read_store)(keyed, [stats_key(m.pk) for m in models])
    latest = HealthCheck.objects.filter(model__in=models).values("model_id").annotate(last=Max("id")).values("last")
    checks = {c.model_id: c for c in HealthCheck.objects.filter(id__in=latest)}
    for m in models:
        breakers = [
            RouteBreaker(t.route, t.enabled and t.route.enabled, policies[t.route_id],
                         statuses[breaker_key(t.route_id, t.model_id)])
            for t in targets.get(m.pk, [])
        ]
        m.health = Health(breakers, latencies[stats_key(m.pk)], checks.get(m.pk))


def confirm_reset(model_admin: admin.ModelAdmin, request: HttpRequest, models: list) -> HttpResponse:
    targets = _route_targets(models)
    for m in models:
        m.breaker_routes = [t.route.name for t in targets.get(m.pk, [])]  # whose breakers the reset closes
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Reset circuit breakers?",
        "opts": model_admin.opts,
        "models": models,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": model_admin.media,
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, "admin/routing/targethealth/reset_confirmation.html", context)


def reset_breakers(models: list) -> int:
    """Close the breaker of every route that uses these models; returns how many."""
    keys = [breaker_key(t.route_id, t.model_id) for ts in _route_targets(models).values() for t in ts]

    async def reset() -> None:
        store = get_breaker_store()
        for key in keys:
            await store.reset(key)

    async_to_sync(reset)()
    return len(keys)


def policy_words(policy: BreakerPolicy) -> str:
    """A route's breaker rules in words, for route editors."""
    rules = []
    if policy.failure_threshold > 0:
        rules.append(f"{policy.failure_threshold} failures in a row")
    if policy.failure_rate > 0:
        rules.append(f"{policy.failure_rate:.0%} of at least {policy.min_requests} requests failing "
                     f"within {policy.window_s:g} s")
    if not rules:
        return "never opens (this route's breaker rules are off)"
    return f"opens after {' or '.join(rules)}; a trial request after {policy.cooldown_s:g} s"


def failure_words(status: BreakerStatus) -> str:
    if not status.window_requests:
        return "no recent requests"
    share = status.window_failures / status.window_requests
    return f"{status.window_failures} of {status.window_requests} recent requests failed ({share:.0%})"


def breakers_html(health: Health) -> str:
    """The list column: one line per route's breaker of the model."""
    if not health.breakers:
        return format_html('<span class="help">{}</span>', "no route uses this model")
    return format_html_join(
        mark_safe("<br>"), "{}: {} <span class=\"help\">· {}{}</span>",
        ((b.route.name, breaker_html(b.status), failure_words(b.status), "" if b.in_use else "; switched off")
         for b in health.breakers),
    )


def breakers_table(health: Health) -> str:
    """The detail page: every route's breaker of the model, with its policy in words."""
    if not health.breakers:
        return "No route uses this model, so it has no circuit breaker (health checks still measure it)."
    rows = format_html_join(
        "", "<tr><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        ((b.route.name, "" if b.in_use else " (switched off)", breaker_html(b.status), policy_words(b.policy),
          b.status.consecutive_failures, failure_words(b.status), b.status.opens) for b in health.breakers),
    )
    return format_html("<table><thead><tr><th>route</th><th>state</th><th>rules</th><th>failures in a row</th>"
                       "<th>recent failures</th><th>times opened</th></tr></thead><tbody>{}</tbody></table>", rows)


def breaker_html(status: BreakerStatus) -> str:
    if status.state is State.OPEN:
        detail = f"retry in {math.ceil(status.retry_in_s)} s" if status.retry_in_s else "the next request is a trial"
    elif status.state is State.HALF_OPEN:
        detail = "trial request in flight" if status.probe_in_flight else "waiting for a trial request"
    else:
        detail = "in rotation"
    return format_html(
        '<strong style="color: {}">● {}</strong> <span class="help">{}</span>',
        BREAKER_COLOURS[status.state], BREAKER_WORDS[status.state], detail,
    )


def latency_text(stats: LatencyStats) -> str:
    if not stats.samples or stats.total_s is None:
        return "not measured yet"
    text = f"{stats.total_s * 1000:.0f} ms total"
    if stats.ttft_s is not None:
        text += f", {stats.ttft_s * 1000:.0f} ms to first token"
    return f"{text} (average of recent requests)"


def _check_parts(check: HealthCheck) -> tuple[str, str, str, str]:
    when = localtime(check.checked_at).strftime("%Y-%m-%d %H:%M:%S")
    latency = f"{check.latency_ms} ms" if check.latency_ms is not None else "—"
    result = "ok" if check.ok else f"failed ({check.error_kind or 'error'})"
    return when, result, latency, check.message


def check_html(check: HealthCheck | None) -> str:
    if check is None:
        return "never checked"
    when, result, latency, message = _check_parts(check)
    colour = BREAKER_COLOURS[State.CLOSED if check.ok else State.OPEN]
    return format_html('{} <strong style="color: {}">{}</strong>, {}<br><span class="help">{}</span>',
                       when, colour, result, latency, message)


def checks_table(checks: Iterable[HealthCheck]) -> str:
    rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            (_check_parts(c) for c in checks))
    if not rows:
        return "No health check yet (they run on a schedule when the Celery beat worker is up)."
    return format_html("<table><thead><tr><th>when</th><th>result</th><th>latency</th><th>error</th></tr>"
                       "</thead><tbody>{}</tbody></table>", rows)
