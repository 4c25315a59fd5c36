"""Admin for guardrails (what the gateway checks on prompts and answers) and the
violation log (what they found: counts by type, never the text).

A guardrail's parameters are form fields of its kind (generated from the kind's
declared schema, guardrails.kinds), shown only for the chosen kind and validated by the
same schema the YAML import uses, so a broken pattern or an unknown entity type is
refused before it is saved.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.text import capfirst

from .kinds import KINDS, Param, ParamError
from .models import Guardrail, Violation

SHORT_ACTIONS = [("redact", "redact"), ("block", "block"), ("flag", "flag (shadow)")]
SCOPE_HELP = (
    "Leave all three empty for a global guardrail. Each list that is set restricts it: the request must "
    "be on one of the routes AND from one of the teams AND use one of the keys that are listed."
)


def _field_name(kind: str, param: str) -> str:
    return f"{kind}__{param}"


def _form_field(p: Param) -> forms.Field:
    common: dict[str, Any] = {"required": False, "help_text": p.help}
    if p.type == "int":
        return forms.IntegerField(min_value=p.min, max_value=p.max, **common)
    if p.type == "float":
        return forms.FloatField(min_value=p.min, max_value=p.max, **common)
    if p.type == "bool":
        return forms.BooleanField(**common)
    if p.type == "choice":
        return forms.ChoiceField(choices=[(c, c) for c in p.choices], **common)
    if p.type == "choices":
        return forms.MultipleChoiceField(choices=[(c, c) for c in p.choices], widget=forms.CheckboxSelectMultiple,
                                         **common)
    if p.type in ("words", "text"):
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 6, "cols": 60}), strip=False, **common)
    return forms.CharField(**common)


def _initial(p: Param, value: Any) -> Any:
    if p.type == "words" and isinstance(value, list):
        return "\n".join(value)
    return value


class _ModelErrorsShown:
    """Guardrail.clean() names fields a form may not have (the changelist's form has only
    action and enabled; the change form has no `params`, the kind's fields stand for
    it). Django's ModelForm raises ValueError on those (a 500): show them above the form
    instead, or drop a `params` error the kind's fields already show."""

    def _update_errors(self, errors: ValidationError) -> None:
        if hasattr(errors, "error_dict"):
            for name in [n for n in errors.error_dict if n != NON_FIELD_ERRORS and n not in self.fields]:
                messages = errors.error_dict.pop(name)
                if name == "params" and self._errors:
                    continue  # the form's own clean() already put it at the kind's field
                label = Guardrail._meta.get_field(name).verbose_name
                errors.error_dict.setdefault(NON_FIELD_ERRORS, []).extend(
                    ValidationError(f"{label}: {m}") for e in messages for m in e.messages)
            if not errors.error_dict:
                return
        super()._update_errors(errors)


class GuardrailListForm(_ModelErrorsShown, forms.ModelForm):
    """The changelist's inline action/enabled form."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "action" in self.fields:  # the long explanations made the list wider than a laptop screen
            self.fields["action"].choices = SHORT_ACTIONS

    def _post_clean(self) -> None:
        # Rows left as they were are not saved, so not re-validated either: one guardrail
        # with broken stored parameters must not make every other row unsavable.
        if self.has_changed():
            super()._post_clean()


class GuardrailForm(_ModelErrorsShown, forms.ModelForm):
    class Meta:
        model = Guardrail
        exclude = ["params"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        params = self.instance.params or {}
        for kind in KINDS.values():
            for name, p in kind.params.items():
                field = self.fields[_field_name(kind.name, name)]
                if self.instance.kind == kind.name and name in params:
                    field.initial = _initial(p, params[name])
                elif p.default is not None:
                    field.initial = _initial(p, p.default() if callable(p.default) else p.default)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        kind = KINDS.get(data.get("kind") or "")
        if kind is None:
            return data
        raw = {}
        for name, p in kind.params.items():
            value = data.get(_field_name(kind.name, name))
            if p.type != "bool" and value in (None, "", []):
                continue
            raw[name] = value
        try:
            self.instance.params = kind.clean(raw)
        except ParamError as exc:
            target = _field_name(kind.name, exc.param) if exc.param in kind.params else None
            if target not in self.errors:  # e.g. "is required" after the field's own "must be at least 1"
                self.add_error(target, exc.message if target else f"{exc.param or 'parameters'}: {exc.message}")
        return data


def _param_fields() -> dict[str, forms.Field]:
    fields = {}
    for kind in KINDS.values():
        for name, p in kind.params.items():
            field = fields[_field_name(kind.name, name)] = _form_field(p)
            words = name.removesuffix("_s").replace("_", " ")
            field.label = capfirst(words) + (" (seconds)" if name.endswith("_s") else "")
    return fields


# Declared on the class, not added in __init__: the admin builds its form class from the
# fieldsets (modelform_factory) and refuses any field name the class does not declare.
GuardrailForm.declared_fields.update(_param_fields())
GuardrailForm.base_fields.update(GuardrailForm.declared_fields)


def kind_fieldsets() -> list[tuple[str, dict]]:
    return [
        (f"{kind.label} settings", {
            "fields": [_field_name(kind.name, n) for n in kind.params],
            "description": kind.help,
            "classes": [f"guardrail-kind guardrail-kind-{kind.name}"],
        })
        for kind in KINDS.values() if kind.params
    ]


def short_choice_filter(field: str, choices: list[tuple[str, str]]) -> type[admin.SimpleListFilter]:
    """A list filter on `field` with short labels (the choices' explanations made the
    filter column a page long); same URL parameter as the stock filter."""

    class ShortChoiceFilter(admin.SimpleListFilter):
        title = field
        parameter_name = f"{field}__exact"

        def lookups(self, request, model_admin):
            return choices

        def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
            return queryset.filter(**{field: self.value()}) if self.value() else queryset

    return ShortChoiceFilter


STAGES = [("input", "input (prompts)"), ("output", "output (answers)"), ("both", "both")]


@admin.register(Guardrail)
class GuardrailAdmin(admin.ModelAdmin):
    form = GuardrailForm
    list_display = ["name", "kind", "stage_short", "action", "on_error_short", "scope_summary", "order", "enabled"]
    list_editable = ["action", "enabled"]
    list_filter = ["enabled", "kind", short_choice_filter("stage", STAGES), short_choice_filter("action", SHORT_ACTIONS)]
    search_fields = ["name", "description"]
    filter_horizontal = ["routes", "teams", "keys"]
    save_on_top = True
    change_form_template = "admin/guardrails/guardrail/change_form.html"
    change_list_template = "admin/guardrails/guardrail/change_list.html"

    def get_fieldsets(self, request: HttpRequest, obj: Guardrail | None = None):
        return [
            (None, {"fields": ["name", "description", "kind", "enabled", "order"]}),
            ("What it does", {"fields": ["stage", "action", "restore", "on_error"],
                              "description": "Flag is shadow mode: it logs and counts what the guardrail would do "
                              "and changes nothing — switch a new rule on as Flag, watch the violation log, then "
                              "enforce it."}),
            *kind_fieldsets(),
            ("Scope", {"fields": ["routes", "teams", "keys"], "description": SCOPE_HELP}),
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).prefetch_related("routes", "teams", "keys")

    def get_changelist_form(self, request: HttpRequest, **kwargs: Any):
        return super().get_changelist_form(request, form=GuardrailListForm, **kwargs)

    # Short values in the list: the choices' explanations belong on the change page.
    @admin.display(description="stage", ordering="stage")
    def stage_short(self, g: Guardrail) -> str:
        return g.stage

    @admin.display(description="on error", ordering="on_error")
    def on_error_short(self, g: Guardrail) -> str:
        return "fail closed" if g.on_error == "block" else "fail open"

    @admin.display(description="scope")
    def scope_summary(self, g: Guardrail) -> str:
        parts = []
        for label, rel in (("routes", g.routes), ("teams", g.teams), ("keys", g.keys)):
            names = [str(o) for o in rel.all()]
            if names:
                shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
                parts.append(f"{label}: {shown}")
        return "; ".join(parts) or "global"

    def get_urls(self):
        own = [path("sandbox/", self.admin_site.admin_view(self.sandbox_view), name="guardrails_guardrail_sandbox")]
        return own + super().get_urls()

    def sandbox_view(self, request: HttpRequest) -> HttpResponse:
        """The sandbox runs guardrails on typed text and changes nothing: for those who may view them."""
        from .admin_sandbox import sandbox_view

        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return sandbox_view(request)


@admin.register(Violation)
class ViolationAdmin(admin.ModelAdmin):
    # The request id is searchable and on each violation's page.
    list_display = ["created_at", "guardrail_name", "stage", "outcome", "entity_summary", "route_name", "team_name",
                    "key_prefix"]
    list_filter = ["outcome", "stage", "guardrail_name", "stream", "created_at"]
    search_fields = ["request_id", "guardrail_name", "key_prefix", "route_name", "team_name"]
    date_hierarchy = "created_at"
    list_per_page = 100

    @admin.display(description="findings")
    def entity_summary(self, v: Violation) -> str:
        return ", ".join(f"{e} ×{n}" for e, n in sorted((v.entities or {}).items())) or "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Violation | None = None) -> bool:
        return False
