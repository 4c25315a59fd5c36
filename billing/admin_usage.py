"""Admin for the usage ledger: history, so nobody, superusers included, may add,
change or delete rows (invoices are built from it)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from .models import UsageDeadLetter, UsageRecord


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


@admin.register(UsageDeadLetter)
class UsageDeadLetterAdmin(admin.ModelAdmin):
    """Usage rows the ledger could not write, waiting for
    `manage.py replay_usage_dead_letters`; read-only (the replay is the one way out)."""

    list_display = ["created_at", "request_id", "source", "error", "replay_attempts", "replayed_at"]
    list_filter = [("replayed_at", admin.EmptyFieldListFilter), "source"]
    search_fields = ["=request_id"]
    ordering = ["-created_at"]
    readonly_fields = ["request_id", "created_at", "occurred_at", "source", "error", "replay_attempts", "replayed_at", "entry"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageDeadLetter | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageDeadLetter | None = None) -> bool:
        return False
