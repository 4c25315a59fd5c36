"""Admin "Model health": per model, the circuit breaker of each route that uses it
(state and rules in words), the model's latency and probe history, and an action
that resets all of the model's breakers. Breaker states come from the shared
breaker store (Redis when configured), read once per page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html

from providers.models import HealthCheck

from . import admin_breakers as health_views
from .breaker import State
from .models import TargetHealth


IN_SERVICE = "in service"
MODEL_OFF = "model off"
PROVIDER_OFF = "provider off"


def service_state(model: TargetHealth) -> str:
    """Whether the gateway sends requests to the model: only when both the model and its
    provider are switched on (the model's own tick alone said "enabled" for models of a
    switched-off provider)."""
    if not model.provider.enabled:
        return PROVIDER_OFF
    return IN_SERVICE if model.enabled else MODEL_OFF


class InServiceFilter(admin.SimpleListFilter):
    title = "in service"
    parameter_name = "service"

    def lookups(self, request, model_admin):
        return [("yes", IN_SERVICE), ("model_off", MODEL_OFF), ("provider_off", PROVIDER_OFF)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[TargetHealth]) -> QuerySet[TargetHealth]:
        if self.value() == "yes":
            return queryset.filter(enabled=True, provider__enabled=True)
        if self.value() == "model_off":
            return queryset.filter(enabled=False, provider__enabled=True)
        if self.value() == "provider_off":
            return queryset.filter(provider__enabled=False)
        return queryset


@admin.register(TargetHealth)
class TargetHealthAdmin(admin.ModelAdmin):
    """Breaker states come from the shared breaker store, read once per page."""

    list_display = ["name", "provider", "in_service", "breakers", "latency", "last_check"]
    list_display_links = ["name"]
    list_filter = [InServiceFilter, "provider"]
    list_select_related = ["provider"]
    search_fields = ["name", "provider__name"]
    ordering = ["provider__name", "name"]
    actions = ["reset_breakers"]
    fieldsets = [
        (None, {"fields": ["provider", "name", "in_service", "quality_score"]}),
        (
            "Circuit breakers and latency",
            {
                "description": "Live, from the gateway's shared breaker store. Each route that uses this model "
                "has its own breaker, under that route's rules (set on the route: Circuit breaker); "
                "latency is the model's, shared by its routes.",
                "fields": ["breaker_table", "latency"],
            },
        ),
        ("Active health checks", {"fields": ["recent_checks"]}),
    ]
    readonly_fields = ["in_service", "breaker_table", "latency", "recent_checks"]

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
        health_views.attach_health(list(changelist.result_list))  # the page's rows: one store read
        return changelist

    def get_object(self, request: HttpRequest, object_id: str, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is not None:
            health_views.attach_health([obj])
        return obj

    @admin.display(description="in service", ordering="enabled")
    def in_service(self, obj: TargetHealth) -> str:
        state = service_state(obj)
        colour = health_views.BREAKER_COLOURS[State.CLOSED] if state == IN_SERVICE else "var(--body-quiet-color)"
        return format_html('<strong style="color: {}; white-space: nowrap">{}</strong>', colour, state)

    @admin.display(description="circuit breakers (per route)")
    def breakers(self, obj: TargetHealth) -> str:
        return health_views.breakers_html(obj.health)

    @admin.display(description="circuit breaker of each route")
    def breaker_table(self, obj: TargetHealth) -> str:
        return health_views.breakers_table(obj.health)

    @admin.display(description="recent latency")
    def latency(self, obj: TargetHealth) -> str:
        return health_views.latency_text(obj.health.latency)

    @admin.display(description="last health check")
    def last_check(self, obj: TargetHealth) -> str:
        return health_views.check_html(obj.health.last_check)

    @admin.display(description="last 20 health checks")
    def recent_checks(self, obj: TargetHealth) -> str:
        return health_views.checks_table(HealthCheck.objects.filter(model=obj).order_by("-checked_at", "-id")[:20])

    @admin.action(description="Reset circuit breakers (every route using the model)", permissions=["reset"])
    def reset_breakers(self, request: HttpRequest, queryset: QuerySet[TargetHealth]) -> HttpResponse | None:
        models = list(queryset.select_related("provider"))
        if request.POST.get("post") != "yes":
            return health_views.confirm_reset(self, request, models)
        count = health_views.reset_breakers(models)
        for model in models:
            self.log_change(request, model, "Reset the circuit breakers of every route using it.")
        names = ", ".join(str(m) for m in models)
        self.message_user(
            request,
            f"Circuit breaker reset for {names} ({count} route breaker{'s' if count != 1 else ''}): back in "
            "rotation on every route, with failure counts starting from zero.",
            messages.SUCCESS,
        )
        return None


