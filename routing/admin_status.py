"""Admin "Gateway status" (staff with the status permission): one page that says whether the gateway is
well -- providers' health checks, every route x model circuit breaker, the Celery
queue's depth, recent failed requests, the ledger's dead letters and the worker
heartbeat.

Nothing here is computed twice: breakers, latencies and probes come from the Model
health page's functions (routing.admin_breakers.attach_health and its renderers), the
ledger from billing.ledger_health, the heartbeat from routing.heartbeat. Each section
is read on its own: one that fails (Redis down, say) says so, the rest still show.

The page hangs off the (unlisted) worker heartbeat admin's URLs, as Test this route
hangs off the route admin's: /admin/routing/workerheartbeat/status/, named
"admin:routing_status", linked from the admin home's Health group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import redis
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from kombu.transport.redis import PRIORITY_STEPS, Channel

from billing.ledger_health import ledger_state
from billing.models import UsageRecord
from gateway_project.health import short_reason
from providers.types import ErrorKind

from . import admin_breakers as health_views
from . import admin_views as views
from .admin_health import IN_SERVICE, service_state
from .breaker import State
from .heartbeat import HeartbeatState, heartbeat_state
from .models import TargetHealth, WorkerHeartbeat

TEMPLATE = "admin/status.html"
RECENT_ERRORS = 20
ERRORS_WINDOW = timedelta(hours=24)  # bounds the scan: failed rows are found among the last day's
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Section:
    """One part of the page: its value, or why it could not be read."""

    value: Any = None
    error: str = ""


def read(fn: Callable[[], T]) -> Section:
    try:
        return Section(fn())
    except Exception as exc:  # noqa: BLE001 - one broken dependency must not hide the other sections
        return Section(error=short_reason(exc))


# ---- providers, models and breakers ------------------------------------------------
@dataclass(frozen=True, slots=True)
class BreakerRow:
    route: str
    model: str
    in_use: bool
    state: State
    html: str  # state and detail (routing.admin_breakers.breaker_html)
    failures: str


def models_health() -> list[TargetHealth]:
    """Every model with its health (.health: routes' breakers, latency, last probe)."""
    models = list(TargetHealth.objects.select_related("provider").order_by("provider__name", "name"))
    health_views.attach_health(models)
    for m in models:
        m.service = service_state(m)
        m.in_service = m.service == IN_SERVICE
        m.check_html = health_views.check_html(m.health.last_check)
        m.latency_text = health_views.latency_text(m.health.latency)
    return models


def breaker_rows(models: list[TargetHealth]) -> list[BreakerRow]:
    rows = [
        BreakerRow(b.route.name, str(m), b.in_use, b.status.state, health_views.breaker_html(b.status),
                   health_views.failure_words(b.status))
        for m in models for b in m.health.breakers
    ]
    # What needs attention first: open, then half-open breakers; then by route and model.
    order = {State.OPEN: 0, State.HALF_OPEN: 1, State.CLOSED: 2}
    return sorted(rows, key=lambda r: (order[r.state], r.route, r.model))


# ---- the Celery queue ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QueueDepth:
    depth: int | None  # None: not measurable (the broker is not Redis)
    queue: str
    note: str


def queue_depth() -> QueueDepth:
    """Tasks waiting in the default queue: the LLEN of its Redis lists (kombu keeps one
    list per priority step). "n/a" with the embedded filesystem broker."""
    url = settings.CELERY_BROKER_URL
    queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
    if not url.startswith(REDIS_SCHEMES):
        scheme = url.split(":", 1)[0]
        default = " (the embedded default)" if scheme == "filesystem" else ""
        return QueueDepth(None, queue, f"n/a: the broker is {scheme}{default}, not Redis")
    steps = (getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}).get("priority_steps", PRIORITY_STEPS)
    keys = [f"{queue}{Channel.sep}{step}" if step else queue for step in steps]
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        with client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.llen(key)
            depth = sum(pipe.execute())
    finally:
        client.close()
    return QueueDepth(depth, queue, "tasks waiting for a worker")


# ---- recent errors -------------------------------------------------------------------
def recent_errors(limit: int = RECENT_ERRORS) -> list[UsageRecord]:
    """The last failed requests of the last day: when, route, model, error kind (never
    the prompt: only these columns are read)."""
    since = timezone.now() - ERRORS_WINDOW
    rows = list(
        UsageRecord.objects.filter(status=UsageRecord.Status.ERROR, created_at__gte=since)
        .order_by("-created_at")
        .only("id", "request_id", "created_at", "route_name", "model_name", "error_kind", "http_status")[:limit]
    )
    for row in rows:
        kind = ErrorKind._value2member_map_.get(row.error_kind)
        row.error_label = views.ERROR_KIND_LABELS.get(kind, "") if kind else ""
    return rows


# ---- the heartbeat ---------------------------------------------------------------------
def age_text(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h ago"
    return f"{seconds // 86400} days ago"


def heartbeat_rows(state: HeartbeatState) -> list[dict[str, Any]]:
    return [{"row": w, "age": age_text((state.now - w.beat_at).total_seconds()), "stale": state.worker_stale(w)}
            for w in state.workers]


# ---- the page ------------------------------------------------------------------------
def gather() -> dict[str, Any]:
    models = read(models_health)
    breakers = read(lambda: breaker_rows(models.value)) if not models.error else Section(error=models.error)
    errors = read(recent_errors)
    heartbeat = read(heartbeat_state)
    workers = read(lambda: heartbeat_rows(heartbeat.value)) if not heartbeat.error else Section([])
    queue = read(queue_depth)
    ledger = read(ledger_state)
    summary = {
        "models_failing": None if models.error else sum(
            1 for m in models.value if m.in_service and m.health.last_check and not m.health.last_check.ok),
        "breakers_open": None if breakers.error else sum(1 for b in breakers.value if b.state is not State.CLOSED),
        "errors": None if errors.error else len(errors.value),
    }
    return {"models": models, "breakers": breakers, "errors": errors, "heartbeat": heartbeat, "workers": workers.value,
            "heartbeat_age": age_text(heartbeat.value.age_s) if heartbeat.value and heartbeat.value.last else "",
            "queue": queue,
            "ledger": ledger, "summary": summary, "errors_window_h": int(ERRORS_WINDOW.total_seconds() // 3600),
            "recent_limit": RECENT_ERRORS}


# Who may see the page: the view permission of its (unlisted) heartbeat model, which the
# Route editors and Auditors roles hold (gateway_admin.roles.STATUS_PAGE_PERMISSION).
STATUS_PERMISSION = "routing.view_workerheartbeat"


def status_view(model_admin: admin.ModelAdmin, request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(STATUS_PERMISSION):
        raise PermissionDenied  # Route editors and Auditors (gateway_admin.roles), superusers
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Gateway status",
        "opts": model_admin.opts,
        "can_view_usage": request.user.has_perm("billing.view_usagerecord"),
        "now": timezone.now(),
        **gather(),
    }
    request.current_app = model_admin.admin_site.name
    return TemplateResponse(request, TEMPLATE, context)


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    """Heartbeat rows are written by the beat task only; the status page shows them.
    Unlisted (the home page's Health group links the status page instead)."""

    list_display = ["hostname", "beat_at", "pid"]
    ordering = ["-beat_at"]

    def get_model_perms(self, request: HttpRequest) -> dict[str, bool]:
        return {}  # not listed on the home page or the sidebar

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        # admin_view: signed-in, active staff only; anyone else is sent to the login page; then
        # the status permission (routing.view_workerheartbeat) or 403.
        status = path("status/", self.admin_site.admin_view(self.status_view), name="routing_status")
        return [status, *super().get_urls()]

    def status_view(self, request: HttpRequest) -> HttpResponse:
        return status_view(self, request)
