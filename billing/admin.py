"""Admin for teams and virtual keys (budgets: admin_budgets.py; usage: admin_usage.py).

Keys are issued, edited, rotated and revoked only through billing.keys; a secret is
shown once (right after issue or rotation) and only its hash is stored.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.timezone import localtime

from . import admin_usage  # noqa: F401  (registers the usage ledger and its dead letters)
from .admin_budgets import BudgetInlineSaving, KeyBudgetInline, TeamBudgetInline
from .admin_keys import KeyConfirmations, key_status
from .keys import KEY_STATUSES, issue_key, normalize_tags, save_team, update_key, with_status
from .models import Team, VirtualKey


def limits_text(rpm: int | None, tpm: int | None) -> str:
    """Both rate limits in one short cell: "120 requests, 200,000 tokens / min"."""
    parts = [f"{rpm:,} requests" if rpm is not None else "", f"{tpm:,} tokens" if tpm is not None else ""]
    shown = ", ".join(p for p in parts if p)
    return f"{shown} / min" if shown else "none"


@admin.register(Team)
class TeamAdmin(BudgetInlineSaving, admin.ModelAdmin):
    list_display = ["name", "active_key_count", "key_count", "rate_limits", "short_description"]
    search_fields = ["name", "description"]
    ordering = ["name"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["name", "description"]}),
        ("Rate limits (all the team's keys together)", {"fields": ["rpm_limit", "tpm_limit"]}),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    def save_model(self, request: HttpRequest, obj: Team, form, change: bool) -> None:
        save_team(obj)  # the one validation every entry point shares

    def get_inlines(self, request: HttpRequest, obj: Team | None):
        # Budgets need a saved team (their scope check names it): add them after saving.
        return [TeamBudgetInline] if obj is not None else []

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        now = timezone.now()
        active = Q(keys__revoked_at__isnull=True) & (Q(keys__expires_at__isnull=True) | Q(keys__expires_at__gt=now))
        return (
            super()
            .get_queryset(request)
            .annotate(_key_count=Count("keys", distinct=True), _active_keys=Count("keys", filter=active, distinct=True))
        )

    @admin.display(description="rate limits (whole team)")
    def rate_limits(self, obj: Team) -> str:
        return limits_text(obj.rpm_limit, obj.tpm_limit)

    @admin.display(description="description", ordering="description")
    def short_description(self, obj: Team) -> str:
        return Truncator(obj.description).chars(80)

    @admin.display(description="keys", ordering="_key_count")
    def key_count(self, obj: Team) -> int:
        return obj._key_count

    @admin.display(description="active keys", ordering="_active_keys")
    def active_key_count(self, obj: Team) -> int:
        return obj._active_keys


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("expired", "expired"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> QuerySet[VirtualKey]:
        return with_status(queryset, self.value()) if self.value() in KEY_STATUSES else queryset


class VirtualKeyForm(forms.ModelForm):
    tags = forms.CharField(
        required=False, help_text="Comma-separated labels for reports and filtering, e.g. prod, search."
    )

    class Meta:
        model = VirtualKey
        fields = ["name", "team", "allowed_routes", "expires_at", "rpm_limit", "tpm_limit", "tags", "metadata"]
        help_texts = {"metadata": 'Free-form JSON object kept with the key, e.g. {"owner": "jane@example.com"}.'}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["tags"] = ", ".join(self.instance.tags or [])

    def clean_tags(self) -> list[str]:
        try:
            return normalize_tags(self.cleaned_data.get("tags") or "")
        except ValidationError as exc:
            raise forms.ValidationError(exc.messages) from None

    def clean_metadata(self):
        metadata = self.cleaned_data.get("metadata")
        if metadata is None:
            return {}
        if not isinstance(metadata, dict):
            raise forms.ValidationError('Enter a JSON object, e.g. {"owner": "jane@example.com"}.')
        return metadata

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and self.instance.pk is None and expires_at <= timezone.now():
            raise forms.ValidationError("A new key must expire in the future (or leave blank: never).")
        return expires_at


@admin.register(VirtualKey)
class VirtualKeyAdmin(BudgetInlineSaving, KeyConfirmations, admin.ModelAdmin):
    form = VirtualKeyForm
    # Created/revoked dates, routes, labels: on each key's page.
    list_display = ["name", "prefix_display", "team", "status", "rate_limits", "expires"]
    list_filter = [KeyStatusFilter, "team"]
    list_select_related = ["team"]
    search_fields = ["name", "prefix", "team__name"]
    ordering = ["-created_at"]
    filter_horizontal = ["allowed_routes"]
    show_facets = admin.ShowFacets.ALWAYS
    actions = ["rotate_selected", "revoke_selected"]
    KEY_INFO = ["prefix_display", "status", "key_buttons", "replaced_by_link", "created_at", "revoked_at"]

    def get_fieldsets(self, request: HttpRequest, obj: VirtualKey | None = None):
        fieldsets = [
            (None, {"fields": ["name", "team"]}),
            ("Access", {"fields": ["allowed_routes", "expires_at"]}),
            ("Rate limits (this key alone)", {"fields": ["rpm_limit", "tpm_limit"]}),
            ("Labels", {"fields": ["tags", "metadata"]}),
        ]
        if obj is None:
            fieldsets[0][1]["description"] = (
                "Saving creates the key and shows its secret once, at the top of the next page. "
                "Copy it then: only a hash is stored and the secret cannot be shown again. "
                "Budgets can be added once the key exists."
            )
        else:
            # The hash is never shown: it is useless to people and only helps attackers.
            info = self.KEY_INFO
            if not self.has_change_permission(request, obj):  # view-only: no rotate/revoke buttons
                info = [f for f in info if f != "key_buttons"]
            fieldsets.insert(1, ("Key", {"fields": info}))
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: VirtualKey | None = None) -> list[str]:
        return [] if obj is None else self.KEY_INFO

    def get_inlines(self, request: HttpRequest, obj: VirtualKey | None):
        # On the add page the key is made by issue_key; its budgets come after.
        return [KeyBudgetInline] if obj is not None else []

    @admin.display(description="prefix", ordering="prefix")
    def prefix_display(self, obj: VirtualKey) -> str:
        return f"{obj.prefix}…" if obj.prefix else "—"

    @admin.display(description="status")
    def status(self, obj: VirtualKey) -> str:
        return key_status(obj)

    @admin.display(description="rate limits (this key)")
    def rate_limits(self, obj: VirtualKey) -> str:
        return limits_text(obj.rpm_limit, obj.tpm_limit)

    @admin.display(description="expires", ordering="expires_at")
    def expires(self, obj: VirtualKey) -> str:
        return localtime(obj.expires_at).strftime("%Y-%m-%d %H:%M") if obj.expires_at else "never"

    @admin.display(description="actions")
    def key_buttons(self, obj: VirtualKey) -> str:
        if obj.is_revoked:
            return "Revoked."
        revoke = reverse("admin:billing_virtualkey_revoke", args=[obj.pk])
        if obj.replaced_by_id is not None or obj.is_expired:
            return format_html('<a class="button" href="{}">Revoke this key…</a> (asks for confirmation)', revoke)
        rotate = reverse("admin:billing_virtualkey_rotate", args=[obj.pk])
        return format_html(
            '<a class="button" href="{}">Rotate this key…</a> <a class="button" href="{}">Revoke this key…</a> '
            "(both ask for confirmation)",
            rotate,
            revoke,
        )

    @admin.display(description="replaced by")
    def replaced_by_link(self, obj: VirtualKey) -> str:
        if obj.replaced_by_id is None:
            return "—"
        url = reverse("admin:billing_virtualkey_change", args=[obj.replaced_by_id])
        return format_html('<a href="{}">{}</a> (rotated; this key works until its expiry)', url, obj.replaced_by)

    # --- issuing and editing: through billing.keys only ---------------------------

    def save_model(self, request: HttpRequest, obj: VirtualKey, form, change: bool) -> None:
        data = form.cleaned_data
        fields = {f: data.get(f) for f in ("team", "expires_at", "rpm_limit", "tpm_limit")}
        fields.update(metadata=data.get("metadata") or {}, tags=data.get("tags") or [])
        if change:
            update_key(obj, name=data["name"], routes=data.get("allowed_routes") or (), **fields)
            return
        issued = issue_key(data["name"], routes=data.get("allowed_routes") or (), **fields)
        # The admin goes on with `obj` (history entry, redirect): make it the issued key.
        obj.pk = issued.key.pk
        obj.refresh_from_db()
        obj._state.adding = False
        messages.success(
            request,
            format_html(
                "Key “{}” created. Its secret is shown <strong>only this once</strong>; copy it now, "
                "it cannot be shown again: <code>{}</code>",
                issued.key.name,
                issued.secret,
            ),
        )

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        if change:  # update_key already set the routes; this saves the budget inline
            for formset in formsets:
                self.save_formset(request, form, formset, change=change)
        # On add, issue_key already set the allowed routes.

    # --- rotating and revoking: after confirmation (admin_keys.KeyConfirmations) ----

    @admin.action(description="Rotate selected keys", permissions=["change"])
    def rotate_selected(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> HttpResponse | None:
        return self.rotate_keys(request, list(queryset.select_related("team")), bulk=True)

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> HttpResponse | None:
        if request.POST.get("post") == "yes":
            self.revoke_keys(request, queryset)
            return None  # back to the changelist
        return self.confirm_revoke(request, list(queryset.select_related("team")), bulk=True)

    def _one_key(self, request: HttpRequest, object_id: str) -> VirtualKey:
        key = get_object_or_404(VirtualKey.objects.select_related("team"), pk=object_id)
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        return key

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = self._one_key(request, object_id)
        if request.method == "POST":
            self.revoke_keys(request, [key])
            return HttpResponseRedirect(reverse("admin:billing_virtualkey_change", args=[key.pk]))
        return self.confirm_revoke(request, [key], bulk=False)

    def rotate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self.rotate_keys(request, [self._one_key(request, object_id)], bulk=False)

    def get_urls(self):
        view = self.admin_site.admin_view
        extra = [
            path("<path:object_id>/revoke/", view(self.revoke_view), name="billing_virtualkey_revoke"),
            path("<path:object_id>/rotate/", view(self.rotate_view), name="billing_virtualkey_rotate"),
        ]
        return extra + super().get_urls()
