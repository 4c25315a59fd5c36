"""Admin for routes (the public model names clients call and where they lead) and the
model health page (circuit breakers, latency and probe history per model).

A route and its targets are checked as a whole (routing.validation) before anything
is saved, so an editor cannot switch on a route that could never answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.dispatch import receiver
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.safestring import mark_safe

from providers.models import Model, Provider
from providers.signals import edited_in_admin
from providers.types import ErrorKind

from . import admin_views as views
from .admin_views import ERROR_KIND_LABELS
from .conditions import ConditionError, parse_rules
from .engine import TERMINAL
from .models import Route, RouteTarget, Strategy
from .task_detection import TaskType
from .validation import TargetSpec, check_route_targets


def retry_choices() -> list[tuple[str, str]]:
    choices = []
    for kind in ErrorKind:
        label = ERROR_KIND_LABELS.get(kind, kind.value)
        if kind in TERMINAL:
            label += " (never retried: the request stops here)"
        choices.append((kind.value, label))
    return choices


# Settings each used by one strategy (the change form hides the others' with JavaScript).
STRATEGY_SETTINGS = ["sticky_by", "explore_rate", "min_quality", "rules"]
STRATEGY_HELP = mark_safe(
    "How the gateway chooses among this route's targets for each request. Each setting below "
    "belongs to one strategy and is ignored by the others: <em>sticky by</em> (load balance), "
    "<em>explore rate</em> (least latency), <em>minimum quality</em> (cost), <em>rules</em> "
    "(conditional). The task strategy uses the task types ticked on each target below. "
    "Use “Test this route” (top right) to see what a sample request would do."
)
RULES_HELP = mark_safe(
    "Conditional strategy: a JSON list of rules, checked in order; the first rule whose "
    "<code>when</code> holds sends the request to its <code>targets</code> (which must be targets of "
    "this route). No rule matches: all targets in order. Example:<pre>[\n"
    '  {"when": "metadata.tier == \'premium\'", "targets": ["openai/gpt-4o"]},\n'
    '  {"when": "max_tokens > 2000 and stream == true", "targets": ["anthropic/claude-sonnet"]}\n'
    "]</pre>Conditions compare <code>metadata.&lt;name&gt;</code>, <code>params.&lt;name&gt;</code>, "
    "max_tokens, temperature, stream, user, messages, prompt_tokens or tools with == != &gt; &gt;= &lt; "
    "&lt;= in, not in, contains, or test <code>&lt;field&gt; exists</code>; join clauses with "
    "<code>and</code>."
)
CACHE_HELP = (
    "Answer repeated requests from stored answers: free and in a millisecond. Exact mode needs the same "
    "messages and parameters; semantic mode also answers the same question asked in other words, in the "
    "same conversation context and with the same numbers, names and negations. Cached answers still pass "
    "the output guardrails, and answers never cross the 'shared between' line. By default only requests "
    "with temperature 0 and without tools are cached; others are answered normally "
    "(header x-gateway-cache: bypass, with the reason). Clients may send x-gateway-cache: bypass or refresh. "
    "To drop every stored answer of a route, use the list's action 'Purge the cache'."
)
CACHE_FIELDS = ["cache_mode", "cache_ttl_s", "cache_scope", "cache_threshold", "cache_max_messages",
                "cache_only_deterministic", "cache_allow_tools"]

TRACING_HELP = (
    "With OpenTelemetry tracing on (OTEL_EXPORTER_OTLP_ENDPOINT), every request is one span and every "
    "provider call one child span, without prompts or answers. Tick the box to see this route's "
    "prompts and answers in its spans while debugging: they are recorded as the guardrails left them."
)

BREAKER_HELP = (
    "A circuit breaker takes a failing model out of rotation for a while, so requests go straight "
    "to the next target instead of waiting on one that keeps failing; after the cooldown one trial "
    "request is let through, and its success puts the model back. Leave a box blank to use the "
    "gateway-wide default shown under it."
)
# Route field -> the gateway-wide setting used when the field is blank.
BREAKER_DEFAULTS = {
    "breaker_failure_threshold": "GATEWAY_BREAKER_FAILURES",
    "breaker_failure_rate": "GATEWAY_BREAKER_FAILURE_RATE",
    "breaker_window_s": "GATEWAY_BREAKER_WINDOW_S",
    "breaker_min_requests": "GATEWAY_BREAKER_MIN_REQUESTS",
    "breaker_cooldown_s": "GATEWAY_BREAKER_COOLDOWN_S",
}
# Strategy settings with a default: left blank (or not sent at all) they keep it.
# Blank (or absent from a scripted post) = the model default; checkboxes excepted (absent = unticked).
DEFAULTED = ("sticky_by", "explore_rate", "min_quality", "when_all_open", "cache_mode", "cache_ttl_s", "cache_scope",
             "cache_max_messages")


class RulesField(forms.JSONField):
    """JSON in a textarea; a list of rules is shown one rule per line, as in the example."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value  # what the editor typed, to correct it
        if isinstance(value, list) and value:
            return "[\n" + ",\n".join(f"  {json.dumps(rule, ensure_ascii=False)}" for rule in value) + "\n]"
        return json.dumps(value, ensure_ascii=False)


class RouteForm(forms.ModelForm):
    retry_on = forms.MultipleChoiceField(
        label="Retry on the same target when",
        choices=retry_choices,
        required=False,
        # A declared form field does not inherit the model field's default: without
        # this, the add form showed every box unticked and saved [] (never retry).
        initial=Route._meta.get_field("retry_on").get_default,
        widget=forms.CheckboxSelectMultiple,
        help_text="Ticked errors are retried on the same target, up to 'attempts per target'. "
        "Any other failure moves straight on to the next target (fallback strategy). "
        "Tick none to never retry the same target.",
    )
    rules = RulesField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 90, "class": "vLargeTextField"}),
        help_text=RULES_HELP,
    )

    class Meta:
        model = Route
        fields = "__all__"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in DEFAULTED:
            if name in self.fields:
                self.fields[name].required = False
        for name, setting in BREAKER_DEFAULTS.items():
            if name in self.fields:
                field = self.fields[name]
                field.help_text = f"{field.help_text} Blank = gateway default: {getattr(settings, setting):g}."
        if "cache_threshold" in self.fields:
            from .cache import default_threshold

            self.fields["cache_threshold"].help_text = (
                "Semantic mode: how alike two questions must be (0.5-1, higher is stricter). "
                f"Blank = the gateway's measured default: {default_threshold():g}."
            )

    def clean_rules(self) -> list:
        rules = self.cleaned_data.get("rules")
        return [] if rules in (None, "") else rules

    def clean(self) -> dict:
        cleaned = super().clean()
        for name in DEFAULTED:
            if name in self.fields and cleaned.get(name) in (None, ""):
                cleaned[name] = Route._meta.get_field(name).get_default()
        return cleaned


class TargetModelField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Model) -> str:
        label = f"{obj.provider.name}/{obj.name}"
        if not obj.provider.enabled:
            return f"{label} (provider disabled)"
        if not obj.enabled:
            return f"{label} (model disabled)"
        return label


class RouteTargetForm(forms.ModelForm):
    task_types = forms.MultipleChoiceField(
        label="task types (task strategy)",
        choices=TaskType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tasks this target serves. None ticked: a default target, used for any task.",
    )

    class Meta:
        model = RouteTarget
        fields = "__all__"


def target_specs(targets: Iterable[RouteTarget]) -> list[TargetSpec]:
    return [TargetSpec(model=t.model, enabled=t.enabled, weight=t.weight) for t in targets]


def _valid_rules(rules) -> list | None:
    """The rules, if they parse (else Route.clean already reports them on the field)."""
    try:
        parse_rules(rules)
    except ConditionError:
        return None
    return rules


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
            data = form.cleaned_data
            specs.append(TargetSpec(model=model, enabled=data.get("enabled", False), weight=data.get("weight", 1)))
        route = self.instance  # already carries the submitted name/enabled/strategy/rules
        check_route_targets(
            route.name or "(unnamed)", route.enabled, route.strategy, specs, rules=_valid_rules(route.rules)
        )
        super().clean()


class RouteTargetInline(admin.TabularInline):
    model = RouteTarget
    form = RouteTargetForm
    formset = RouteTargetFormSet
    fields = ["model", "order", "weight", "task_types", "enabled"]
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


def short_strategy(value: str) -> str:
    """"Fallback", not the choice's whole explanation (that is on the change page)."""
    return Strategy(value).label.split(" – ")[0] if value in Strategy.values else value


class StrategyFilter(admin.SimpleListFilter):
    title = "strategy"
    parameter_name = "strategy__exact"  # the URL the stock filter used

    def lookups(self, request, model_admin):
        return [(value, short_strategy(value)) for value in Strategy.values]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Route]) -> QuerySet[Route]:
        return queryset.filter(strategy=self.value()) if self.value() else queryset


@admin.register(Route)
class RouteAdmin(admin.ModelAdmin):
    form = RouteForm
    inlines = [RouteTargetInline]
    # `enabled` is deliberately not list_editable: switching a route on must go
    # through the change form, where its targets are checked.
    list_display = ["name", "enabled", "strategy_short", "targets_summary", "cache_short"]
    list_filter = ["enabled", StrategyFilter, "cache_mode"]
    actions = ["purge_cache"]
    search_fields = ["name", "description"]
    ordering = ["name"]
    show_facets = admin.ShowFacets.ALWAYS
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description", "enabled"]}),
        ("Strategy", {"description": STRATEGY_HELP, "fields": ["strategy", *STRATEGY_SETTINGS]}),
        (
            "Retries",
            {
                "classes": ["collapse"],
                "description": "How hard the gateway tries before giving up. Each target is tried up to "
                "'attempts per target' times for the ticked errors, waiting a little longer before each "
                "retry; then the next target is tried. The overall timeout bounds everything. "
                "The defaults suit most routes.",
                "fields": ["timeout_s", "max_attempts", "backoff_base_ms", "backoff_max_ms", "retry_after_cap_s",
                           "retry_on"],
            },
        ),
        ("Circuit breaker", {"classes": ["collapse"], "description": BREAKER_HELP,
                             "fields": [*BREAKER_DEFAULTS, "when_all_open"]}),
        ("Answer cache", {"description": CACHE_HELP, "fields": CACHE_FIELDS}),
        ("Tracing", {"classes": ["collapse"], "description": TRACING_HELP, "fields": ["trace_content"]}),
        ("History", {"classes": ["collapse"], "fields": ["created_at", "updated_at"]}),
    ]

    def get_urls(self):
        test = path("<path:object_id>/test/", self.admin_site.admin_view(self.test_view), name="routing_route_test")
        return [test, *super().get_urls()]

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return views.test_route_view(self, request, object_id)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Route]:
        targets = RouteTarget.objects.select_related("model__provider").order_by("order", "id")
        return super().get_queryset(request).prefetch_related(Prefetch("targets", queryset=targets))

    @admin.display(description="strategy", ordering="strategy")
    def strategy_short(self, obj: Route) -> str:
        return short_strategy(obj.strategy)

    @admin.display(description="cache", ordering="cache_mode")
    def cache_short(self, obj: Route) -> str:
        if obj.cache_mode == "off":
            return "—"
        ttl = obj.cache_ttl_s
        kept = f"{ttl // 3600} h" if ttl % 3600 == 0 else f"{ttl // 60} min" if ttl % 60 == 0 else f"{ttl} s"
        return f"{obj.cache_mode}, {kept}, per {obj.cache_scope}" if obj.cache_scope != "global" else f"{obj.cache_mode}, {kept}, shared"

    @admin.action(description="Purge the cache of the selected routes", permissions=["change"])
    def purge_cache(self, request: HttpRequest, queryset: QuerySet[Route]) -> None:
        from .cache.purge import purge_route

        names, deleted = [], 0
        for route in queryset:
            deleted += purge_route(route)
            names.append(route.name)
        self.message_user(
            request,
            f"Cache purged for {', '.join(names)}: no answer stored before now will be served "
            f"({deleted} stored answers deleted; other gateway processes stop serving them within "
            f"{settings.GATEWAY_CONFIG_TTL_S:g} s).",
            messages.SUCCESS,
        )

    def save_model(self, request: HttpRequest, obj: Route, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.cache_mode == "semantic":
            from .cache import semantic_index

            if semantic_index() is None:
                self.message_user(
                    request,
                    f"Route {obj.name}: semantic caching needs the embedding extra, which is not installed here; "
                    "until it is, this route caches exact repeats only.",
                    messages.WARNING,
                )

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


from . import admin_health  # noqa: E402,F401 - registers the Model health page
from . import admin_status  # noqa: E402,F401 - registers the Gateway status page (issue 15)
