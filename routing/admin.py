"""Admin for routes: the public model names clients call and where they lead.

A route and its targets are checked as a whole (routing.validation) before anything
is saved, so an editor cannot switch on a route that could never answer.
"""

from __future__ import annotations

from collections.abc import Iterable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, QuerySet
from django.dispatch import receiver
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from providers.models import Model, Provider
from providers.signals import edited_in_admin
from providers.types import ErrorKind

from .engine import TERMINAL
from .models import Route, RouteTarget
from .validation import TargetSpec, check_route_targets

# What each error kind means to someone choosing what to retry.
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


def retry_choices() -> list[tuple[str, str]]:
    choices = []
    for kind in ErrorKind:
        label = ERROR_KIND_LABELS.get(kind, kind.value)
        if kind in TERMINAL:
            label += " (never retried: the request stops here)"
        choices.append((kind.value, label))
    return choices


class RouteForm(forms.ModelForm):
    retry_on = forms.MultipleChoiceField(
        label="Retry on the same target when",
        choices=retry_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Ticked errors are retried on the same target, up to 'attempts per target'. "
        "Any other failure moves straight on to the next target (fallback strategy). "
        "Tick none to never retry the same target.",
    )

    class Meta:
        model = Route
        fields = "__all__"


class TargetModelField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Model) -> str:
        label = f"{obj.provider.name}/{obj.name}"
        if not obj.provider.enabled:
            return f"{label} (provider disabled)"
        if not obj.enabled:
            return f"{label} (model disabled)"
        return label


def target_specs(targets: Iterable[RouteTarget]) -> list[TargetSpec]:
    return [TargetSpec(model=t.model, enabled=t.enabled, weight=t.weight) for t in targets]


class RouteTargetFormSet(BaseInlineFormSet):
    """Refuses a route + targets combination that could never serve, before saving."""

    def clean(self) -> None:
        if any(self.errors):
            return  # field errors first; the whole-route check needs complete rows
        specs = []
        for form in self.forms:
            if self.can_delete and self._should_delete_form(form):
                continue
            model = form.cleaned_data.get("model")
            if model is None:  # an untouched extra row
                continue
            specs.append(
                TargetSpec(
                    model=model,
                    enabled=form.cleaned_data.get("enabled", False),
                    weight=form.cleaned_data.get("weight", 1),
                )
            )
        route = self.instance  # already carries the submitted name/enabled/strategy
        check_route_targets(route.name or "(unnamed)", route.enabled, route.strategy, specs)
        super().clean()


class RouteTargetInline(admin.TabularInline):
    model = RouteTarget
    formset = RouteTargetFormSet
    fields = ["model", "order", "weight", "enabled"]
    extra = 0
    verbose_name = "target"
    verbose_name_plural = "targets (tried in order, lowest first)"

    def get_extra(self, request: HttpRequest, obj: Route | None = None, **kwargs) -> int:
        return 2 if obj is None else 0

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "model":
            kwargs["queryset"] = Model.objects.select_related("provider").order_by("provider__name", "name")
            kwargs["form_class"] = TargetModelField
            kwargs["help_text"] = "provider/model. Disabled models or providers are skipped at request time."
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    form = RouteForm
    inlines = [RouteTargetInline]
    # `enabled` is deliberately not list_editable: switching a route on must go
    # through the change form, where its targets are checked.
    list_display = ["name", "strategy", "enabled", "target_count", "targets_summary"]
    list_filter = ["enabled", "strategy"]
    search_fields = ["name", "description"]
    ordering = ["name"]
    show_facets = admin.ShowFacets.ALWAYS
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "strategy", "timeout_s", "enabled"]}),
        (
            "Retry policy",
            {
                "classes": ["collapse"],
                "description": "How hard the gateway tries before giving up. Each target is tried up to "
                "'attempts per target' times for the ticked errors, waiting a little longer before each "
                "retry; then the next target is tried. The overall timeout above bounds everything. "
                "The defaults suit most routes.",
                "fields": ["max_attempts", "backoff_base_ms", "backoff_max_ms", "retry_after_cap_s", "retry_on"],
            },
        ),
        ("History", {"classes": ["collapse"], "fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Route]:
        targets = RouteTarget.objects.select_related("model__provider").order_by("order", "id")
        return (
            super()
            .get_queryset(request)
            .annotate(_target_count=Count("targets", distinct=True))
            .prefetch_related(Prefetch("targets", queryset=targets))
        )

    @admin.display(description="targets", ordering="_target_count")
    def target_count(self, obj: Route) -> int:
        return obj._target_count

    @admin.display(description="tried in order")
    def targets_summary(self, obj: Route) -> str:
        parts = []
        for t in obj.targets.all():
            off = (
                "target off" if not t.enabled
                else "model off" if not t.model.enabled
                else "provider off" if not t.model.provider.enabled
                else ""
            )
            parts.append(f"{t.model} ({off})" if off else str(t.model))
        return " → ".join(parts) or "—"


def unservable_routes(routes: QuerySet[Route]) -> list[str]:
    """Readable problems of the enabled routes among `routes` that could no longer serve."""
    targets = RouteTarget.objects.select_related("model__provider")
    problems = []
    for route in routes.filter(enabled=True).prefetch_related(Prefetch("targets", queryset=targets)):
        try:
            check_route_targets(route.name, route.enabled, route.strategy, target_specs(route.targets.all()))
        except ValidationError as error:
            problems.extend(error.messages)
    return problems


def warn_unservable_routes(request: HttpRequest, routes: QuerySet[Route]) -> None:
    for problem in unservable_routes(routes):
        messages.warning(request, f"{problem} Requests to it will fail until it has a usable target.")


@receiver(edited_in_admin)
def warn_after_provider_edit(sender, request: HttpRequest, instance, **kwargs) -> None:
    """A provider or model edited in the admin may leave enabled routes unservable."""
    if isinstance(instance, Provider):
        routes = Route.objects.filter(targets__model__provider=instance)
    elif isinstance(instance, Model):
        routes = Route.objects.filter(targets__model=instance)
    else:
        return
    warn_unservable_routes(request, routes.distinct())
