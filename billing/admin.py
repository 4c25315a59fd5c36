"""Admin for teams, virtual keys and the usage ledger.

Keys are issued and revoked only through billing.keys (issue_key, revoke_key); the
secret is shown once, right after issue, and only its hash is stored. The usage
ledger is history: nobody, superusers included, may add, change or delete rows.
"""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .keys import issue_key, revoke_key
from .models import Team, UsageRecord, VirtualKey

REVOKE_TEMPLATE = "admin/billing/virtualkey/revoke_confirmation.html"


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "active_key_count", "key_count"]
    search_fields = ["name", "description"]
    ordering = ["name"]
    readonly_fields = ["created_at", "updated_at"]
    fields = ["name", "description", "created_at", "updated_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        now = timezone.now()
        active = Q(keys__revoked_at__isnull=True) & (Q(keys__expires_at__isnull=True) | Q(keys__expires_at__gt=now))
        return (
            super()
            .get_queryset(request)
            .annotate(_key_count=Count("keys", distinct=True), _active_keys=Count("keys", filter=active, distinct=True))
        )

    @admin.display(description="keys", ordering="_key_count")
    def key_count(self, obj: Team) -> int:
        return obj._key_count

    @admin.display(description="active keys", ordering="_active_keys")
    def active_key_count(self, obj: Team) -> int:
        return obj._active_keys


def key_status(key: VirtualKey) -> str:
    if key.is_revoked:
        return "revoked"
    if key.is_expired:
        return "expired"
    return "active"


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("expired", "expired"), ("revoked", "revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> QuerySet[VirtualKey]:
        now = timezone.now()
        live = queryset.filter(revoked_at__isnull=True)
        if self.value() == "active":
            return live.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        if self.value() == "expired":
            return live.filter(expires_at__lte=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class VirtualKeyForm(forms.ModelForm):
    class Meta:
        model = VirtualKey
        fields = ["name", "team", "allowed_routes", "expires_at", "metadata"]
        help_texts = {"metadata": 'Free-form JSON kept with the key, e.g. {"owner": "jane@example.com"}.'}

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        if expires_at is not None and self.instance.pk is None and expires_at <= timezone.now():
            raise forms.ValidationError("A new key must expire in the future (or leave blank: never).")
        return expires_at


@admin.register(VirtualKey)
class VirtualKeyAdmin(admin.ModelAdmin):
    form = VirtualKeyForm
    list_display = ["name", "prefix_display", "team", "status", "expires_at", "created_at"]
    list_filter = [KeyStatusFilter, "team"]
    list_select_related = ["team"]
    search_fields = ["name", "prefix", "team__name"]
    ordering = ["-created_at"]
    filter_horizontal = ["allowed_routes"]
    show_facets = admin.ShowFacets.ALWAYS
    actions = ["revoke_selected"]

    def get_fieldsets(self, request: HttpRequest, obj: VirtualKey | None = None):
        fieldsets = [
            (None, {"fields": ["name", "team"]}),
            ("Access", {"fields": ["allowed_routes", "expires_at"]}),
            ("Metadata", {"fields": ["metadata"], "classes": ["collapse"]}),
        ]
        if obj is None:
            fieldsets[0][1]["description"] = (
                "Saving creates the key and shows its secret once, at the top of the next page. "
                "Copy it then: only a hash is stored and the secret cannot be shown again."
            )
        else:
            # The hash is never shown: it is useless to people and only helps attackers.
            fieldsets.insert(
                1, ("Key", {"fields": ["prefix_display", "status", "revoke_button", "created_at", "revoked_at"]})
            )
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: VirtualKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["prefix_display", "status", "revoke_button", "created_at", "revoked_at"]

    @admin.display(description="prefix", ordering="prefix")
    def prefix_display(self, obj: VirtualKey) -> str:
        return f"{obj.prefix}…" if obj.prefix else "—"

    @admin.display(description="status")
    def status(self, obj: VirtualKey) -> str:
        return key_status(obj)

    @admin.display(description="revoke")
    def revoke_button(self, obj: VirtualKey) -> str:
        if obj.is_revoked:
            return "Already revoked."
        url = reverse("admin:billing_virtualkey_revoke", args=[obj.pk])
        return format_html('<a class="button" href="{}">Revoke this key…</a> (asks for confirmation)', url)

    # --- issuing: through billing.keys.issue_key only -------------------------------

    def save_model(self, request: HttpRequest, obj: VirtualKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        issued = issue_key(
            data["name"],
            team=data.get("team"),
            routes=data.get("allowed_routes") or (),
            expires_at=data.get("expires_at"),
            metadata=data.get("metadata") or {},
        )
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
        if change:
            super().save_related(request, form, formsets, change)
        # On add, issue_key already set the allowed routes.

    # --- revoking: through billing.keys.revoke_key only, after confirmation -------

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[VirtualKey]) -> HttpResponse | None:
        if request.POST.get("post") == "yes":
            self._revoke(request, queryset)
            return None  # back to the changelist
        return self._confirm_revoke(request, list(queryset.select_related("team")), bulk=True)

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        key = get_object_or_404(VirtualKey.objects.select_related("team"), pk=object_id)
        if not self.has_change_permission(request, key):
            raise PermissionDenied
        if request.method == "POST":
            self._revoke(request, [key])
            return HttpResponseRedirect(reverse("admin:billing_virtualkey_change", args=[key.pk]))
        return self._confirm_revoke(request, [key], bulk=False)

    def get_urls(self):
        extra = [
            path(
                "<path:object_id>/revoke/",
                self.admin_site.admin_view(self.revoke_view),
                name="billing_virtualkey_revoke",
            )
        ]
        return extra + super().get_urls()

    def _revoke(self, request: HttpRequest, keys) -> None:
        revoked = []
        for key in keys:
            if key.revoked_at is None:
                revoke_key(key)
                self.log_change(request, key, "Revoked.")
                revoked.append(key)
        if revoked:
            names = ", ".join(str(k) for k in revoked)
            self.message_user(
                request,
                f"Revoked {len(revoked)} key{'s' if len(revoked) != 1 else ''}: {names}. "
                "Clients using them are refused within seconds.",
                messages.SUCCESS,
            )
        else:
            self.message_user(request, "Nothing to do: the selected keys were already revoked.", messages.INFO)

    def _confirm_revoke(self, request: HttpRequest, keys: list[VirtualKey], *, bulk: bool) -> HttpResponse:
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": "Revoke keys?" if bulk else "Revoke this key?",
            "opts": opts,
            "keys": [(k, key_status(k)) for k in keys],
            "to_revoke": sum(1 for k in keys if not k.is_revoked),
            "bulk": bulk,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, REVOKE_TEMPLATE, context)


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """The usage ledger, read-only for everyone (it is what invoices are built from)."""

    list_display = [
        "created_at",
        "request_id",
        "route_name",
        "provider_name",
        "model_name",
        "status",
        "error_kind",
        "tokens",
        "cost",
        "latency_ms",
        "ttft_ms",
        "attempts",
    ]
    list_filter = ["status", "route_name", "provider_name", "stream", ("created_at", admin.DateFieldListFilter)]
    date_hierarchy = "created_at"
    search_fields = ["=request_id", "^key_prefix"]
    search_help_text = "Paste a full request id, or the start of a key prefix (sk-gw-…)."
    ordering = ["-created_at"]
    show_facets = admin.ShowFacets.NEVER  # counting per filter value is costly on a big ledger
    show_full_result_count = False
    fieldsets = [
        ("Request", {"fields": ["request_id", "created_at", "status", "http_status", "error_kind", "stream"]}),
        ("Who and where", {"fields": ["key_prefix", "team_name", "route_name", "provider_name", "model_name"]}),
        (
            "Usage and cost",
            {
                "fields": [
                    "prompt_tokens",
                    "completion_tokens",
                    "usage_estimated",
                    "input_price_per_mtok",
                    "output_price_per_mtok",
                    "cost",
                ]
            },
        ),
        ("Timing and attempts", {"fields": ["latency_ms", "ttft_ms", "attempts", "attempt_table"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    @admin.display(description="tokens (in + out)")
    def tokens(self, obj: UsageRecord) -> str:
        text = f"{obj.prompt_tokens} + {obj.completion_tokens}"
        return f"~{text} (estimated)" if obj.usage_estimated else text

    @admin.display(description="cost (USD)", ordering="cost_usd")
    def cost(self, obj: UsageRecord) -> str:
        return f"${obj.cost_usd.quantize(Decimal('0.000001')):f}"

    @admin.display(description="attempt log")
    def attempt_table(self, obj: UsageRecord) -> str:
        rows = [a for a in obj.attempt_log or [] if isinstance(a, dict)]
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    n,
                    a.get("target", "?"),
                    a.get("outcome", "?"),
                    f"{a['latency_ms']} ms" if a.get("latency_ms") is not None else "—",
                    a.get("status") or "—",
                )
                for n, a in enumerate(rows, start=1)
            ),
        )
        return format_html(
            "<table><thead><tr><th>#</th><th>target</th><th>outcome</th><th>latency</th>"
            "<th>HTTP status</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )
