"""Breakers and health as the admin shows them ("Model health", routing.admin_health, and
the Gateway status page, routing.admin_status): breaker states and latencies read from
the shared breaker store once per page, the last probes, breaker resets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from asgiref.sync import async_to_sync
from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime

from providers.models import HealthCheck

from .breaker import BreakerPolicy, BreakerStatus, LatencyStats, State, get_breaker_store
from .catalog import breaker_key, breaker_policy, stats_key
from .dryrun import BREAKER_WORDS
from .models import Route, RouteTarget

# A breaker belongs to one route's use of a model (catalog.TargetInfo.key), under that
# route's policy; latency statistics belong to the model. The page shows, per model,
# the breaker of every route that uses it, and a reset resets them all.

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
