"""Admin "Model health": every model's breaker state, latency and probe history,
with an action to reset a breaker. Breaker states come from the shared breaker
store (Redis when configured), read once per page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from providers.models import HealthCheck

from . import admin_views as views
from .models import TargetHealth


@admin.register(TargetHealth)
class TargetHealthAdmin(admin.ModelAdmin):
    """Breaker states come from the shared breaker store, read once per page."""

    list_display = ["name", "provider", "enabled", "breaker", "consecutive_failures", "failure_rate", "opens",
                    "latency", "last_check"]
    list_display_links = ["name"]
    list_filter = ["enabled", "provider"]
    list_select_related = ["provider"]
    search_fields = ["name", "provider__name"]
    ordering = ["provider__name", "name"]
    actions = ["reset_breakers"]
    fieldsets = [
        (None, {"fields": ["provider", "name", "enabled", "quality_score"]}),
        (
            "Circuit breaker and latency",
            {
                "description": "Live, from the gateway's shared breaker store (with the gateway-wide breaker "
                "settings; a route can override them).",
                "fields": ["breaker", "consecutive_failures", "failure_rate", "opens", "latency"],
            },
        ),
        ("Active health checks", {"fields": ["recent_checks"]}),
    ]
    readonly_fields = ["breaker", "consecutive_failures", "failure_rate", "opens", "latency", "recent_checks"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # a view: models are edited under Providers

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_reset_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def get_changelist_instance(self, request: HttpRequest):
        changelist = super().get_changelist_instance(request)
        views.attach_health(list(changelist.result_list))  # the page's rows: one store read
        return changelist

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            views.attach_health([obj])
        return obj

    @admin.display(description="circuit breaker")
    def breaker(self, obj: TargetHealth) -> str:
        return views.breaker_html(obj.health.breaker)

    @admin.display(description="failures in a row")
    def consecutive_failures(self, obj: TargetHealth) -> int:
        return obj.health.breaker.consecutive_failures

    @admin.display(description="recent failure rate")
    def failure_rate(self, obj: TargetHealth) -> str:
        status = obj.health.breaker
        if not status.window_requests:
            return "no recent requests"
        return f"{status.window_failures} of {status.window_requests} ({status.window_failures / status.window_requests:.0%})"

    @admin.display(description="times opened")
    def opens(self, obj: TargetHealth) -> int:
        return obj.health.breaker.opens

    @admin.display(description="recent latency")
    def latency(self, obj: TargetHealth) -> str:
        return views.latency_text(obj.health.latency)

    @admin.display(description="last health check")
    def last_check(self, obj: TargetHealth) -> str:
        return views.check_html(obj.health.last_check)

    @admin.display(description="last 20 health checks")
    def recent_checks(self, obj: TargetHealth) -> str:
        return views.checks_table(HealthCheck.objects.filter(model=obj).order_by("-checked_at", "-id")[:20])

    @admin.action(description="Reset circuit breaker", permissions=["reset"])
    def reset_breakers(self, request: HttpRequest, queryset: QuerySet[TargetHealth]) -> HttpResponse | None:
        models = list(queryset.select_related("provider"))
        if request.POST.get("post") != "yes":
            return views.confirm_reset(self, request, models)
        views.reset_breakers(models)
        for model in models:
            self.log_change(request, model, "Reset the circuit breaker.")
        names = ", ".join(str(m) for m in models)
        self.message_user(
            request,
            f"Circuit breaker reset for {names}: back in rotation, with failure counts starting from zero.",
            messages.SUCCESS,
        )
        return None


