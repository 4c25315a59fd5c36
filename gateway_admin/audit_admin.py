"""The audit trail in the admin: a read-only list (filters by who, action, object type,
channel and date; search), each entry's before/after as a table, and exports (CSV and
JSON Lines: the selected entries, or everything the current filter shows).

Nobody may add, change or delete an entry here, superusers included; seeing the trail
takes gateway_admin.view_auditentry (the Auditors role). Every audited object's change
page links to its own trail (templates/admin/change_form_object_tools.html).

Fast with a long trail: no query per row (entries have no foreign keys), the filters'
choices are fixed lists but "who" (one DISTINCT over an indexed column), no full count.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.timezone import localtime

from . import audit_chain
from . import audit_fields as af
from .models import AuditEntry

CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


def trail_url(object_type: str, object_id: str) -> str:
    return reverse("admin:gateway_admin_auditentry_changelist") + "?" + urlencode(
        {"object_type": object_type, "object_id": object_id})


def trail_url_for(obj) -> str:
    spec = af.spec_for(type(obj)) if obj is not None else None
    if spec is None or obj.pk is None:
        return ""
    return trail_url(af.object_type(type(obj)), af.object_id(spec, obj))


class ObjectTypeFilter(admin.SimpleListFilter):
    title = "object type"
    parameter_name = "object_type"

    def lookups(self, request, model_admin):
        seen = {}
        for model in af.registered():
            concrete = model._meta.concrete_model
            seen.setdefault(af.object_type(concrete), concrete._meta.verbose_name_plural)
        seen["gateway_admin.auditentry"] = "audit trail (retention, exports)"
        return sorted(seen.items(), key=lambda kv: str(kv[1]))

    def queryset(self, request, queryset):
        return queryset.filter(object_type=self.value()) if self.value() else queryset


class ViaFilter(admin.SimpleListFilter):
    title = "channel"
    parameter_name = "via"
    CHOICES = [("admin", "admin"), ("api", "management API"), ("command", "management command"),
               ("task", "Celery task"), ("web", "other web pages"), ("playground", "playground"), ("system", "system")]

    def lookups(self, request, model_admin):
        return self.CHOICES

    def queryset(self, request, queryset):
        return queryset.filter(via=self.value()) if self.value() else queryset


class WhoFilter(admin.SimpleListFilter):
    title = "who"
    parameter_name = "actor"
    LIMIT = 200

    def lookups(self, request, model_admin):
        actors = AuditEntry.objects.order_by("actor").values_list("actor", flat=True).distinct()[: self.LIMIT]
        return [(a, a) for a in actors]

    def queryset(self, request, queryset):
        return queryset.filter(actor=self.value()) if self.value() else queryset


def _fields(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dict) and set(value) <= {"id", "name"} and "id" in value:
        return f"{value.get('name', '')} (#{value['id']})".strip()
    if isinstance(value, list) and all(isinstance(v, dict) and "id" in v for v in value):
        return ", ".join(_shown(v) for v in value) or "(none)"
    if isinstance(value, str):
        return value if value else '""'
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)


class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["seq", "when", "actor", "via", "remote_addr", "action", "object_type", "object_link", "fields_changed"]
    list_display_links = ["seq", "when"]
    list_filter = [("at", admin.DateFieldListFilter), "action", ObjectTypeFilter, "actor_type", ViaFilter, WhoFilter]
    search_fields = ["actor", "username", "object_repr", "object_id", "remote_addr"]
    ordering = ["-seq"]
    list_per_page = 100
    show_full_result_count = False
    actions = ["export_csv", "export_jsonl"]
    fields = ["seq", "at", "actor", "actor_type", "user_id", "username", "via", "remote_addr", "source", "action",
              "object_type", "object_id", "object_repr", "object_link", "changes", "prev_hash", "entry_hash"]
    readonly_fields = fields

    # --- read-only for everyone ------------------------------------------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        # The per-object link (?object_type=...&object_id=...) and date ranges (?at__gte=...).
        if lookup in ("object_type", "object_id", "object_type__exact", "object_id__exact", "at__gte", "at__lt",
                      "seq__gte", "seq__lte"):
            return True
        return super().lookup_allowed(lookup, value, request)

    # --- columns ---------------------------------------------------------------------------
    @admin.display(description="when", ordering="at")
    def when(self, entry: AuditEntry) -> str:
        return localtime(entry.at).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="object")
    def object_link(self, entry: AuditEntry) -> str:
        label = entry.object_repr or entry.object_id or "—"
        app, _, model = entry.object_type.partition(".")
        if entry.action == AuditEntry.Action.DELETE or not entry.object_id or entry.object_type == "authtoken.token":
            return label
        try:
            url = reverse(f"admin:{app}_{model}_change", args=[entry.object_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="fields")
    def fields_changed(self, entry: AuditEntry) -> str:
        names = sorted({*_fields(entry.before), *_fields(entry.after)})
        text = ", ".join(names)
        return text if len(text) <= 80 else text[:79] + "…"

    @admin.display(description="before → after")
    def changes(self, entry: AuditEntry) -> str:
        before, after = _fields(entry.before), _fields(entry.after)
        names = sorted({*before, *after})
        if not names:
            return "—"
        rows = format_html_join(
            "", "<tr><th>{}</th><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
            ((name, _shown(before.get(name)) if entry.before else "", _shown(after.get(name)) if entry.after else "")
             for name in names),
        )
        return format_html('<table class="audit-diff"><thead><tr><th>field</th><th>before</th><th>after</th>'
                           "</tr></thead><tbody>{}</tbody></table>", rows)

    # --- exports ---------------------------------------------------------------------------
    def get_urls(self):
        export = path("export/", self.admin_site.admin_view(self.export_view), name="gateway_admin_auditentry_export")
        return [export, *super().get_urls()]

    def _download(self, queryset, fmt: str, filters: dict[str, Any]) -> StreamingHttpResponse:
        audit_chain.export_event(fmt, filters)
        response = StreamingHttpResponse(audit_chain.lines(queryset, fmt), content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="audit-trail.{fmt}"'
        response["Cache-Control"] = "no-store"
        return response

    def export_view(self, request: HttpRequest) -> HttpResponse:
        """Everything the list shows with its current filters and search, as ?format=csv|jsonl."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        fmt = request.GET.get("format", "csv")
        if fmt not in CONTENT_TYPES:
            return HttpResponse(f"Unknown format {fmt!r}: use csv or jsonl.", status=400, content_type="text/plain")
        params = request.GET.copy()
        params.pop("format", None)
        request.GET = params
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request)
        return self._download(queryset, fmt, {k: v for k, v in params.items()})

    @admin.action(description="Export selected entries as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset) -> HttpResponse:
        return self._download(queryset, "csv", {"selected": queryset.count()})

    @admin.action(description="Export selected entries as JSON Lines", permissions=["view"])
    def export_jsonl(self, request: HttpRequest, queryset) -> HttpResponse:
        return self._download(queryset, "jsonl", {"selected": queryset.count()})

    def changelist_view(self, request: HttpRequest, extra_context=None):
        query = request.GET.copy()
        for key in ("p", "o", "_changelist_filters"):
            query.pop(key, None)
        base = reverse("admin:gateway_admin_auditentry_export")
        extra = {
            "export_csv_url": f"{base}?{urlencode({**query.dict(), 'format': 'csv'})}",
            "export_jsonl_url": f"{base}?{urlencode({**query.dict(), 'format': 'jsonl'})}",
        }
        return super().changelist_view(request, {**(extra_context or {}), **extra})


def register(site=None) -> None:
    site = site or admin.site
    if not site.is_registered(AuditEntry):
        site.register(AuditEntry, AuditEntryAdmin)
