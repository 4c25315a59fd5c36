"""Admin for the usage ledger: history, so nobody, superusers included, may add,
change or delete rows (invoices are built from it)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator
from django.utils.timezone import localtime

from .models import UsageDeadLetter, UsageRecord

# The admin's test calls have no virtual key; routing.lookup.staff_key records them
# under this key prefix (billing may not import routing; a test pins the two together).
# Shown as the finance reports group them, "(no key)", and saying why.
STAFF_KEY_PREFIX = "admin"


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """The usage ledger, read-only for everyone (it is what invoices are built from)."""

    # At 1366 px: when, where, who, outcome, size, cost, speed. The request id (searchable),
    # provider, HTTP status, prices and attempt log are on each record's page.
    # Each cell is one short line plus, where it helps, a second quieter one.
    list_display = ["when", "route_and_model", "key_label", "outcome", "tokens", "cost", "latency"]
    list_display_links = ["when"]
    list_filter = ["status", "route_name", "provider_name", "stream", ("created_at", admin.DateFieldListFilter)]
    date_hierarchy = "created_at"
    search_fields = ["=request_id", "^key_prefix"]
    search_help_text = "Paste a full request id, or the start of a key prefix (sk-gw-…)."
    ordering = ["-created_at"]
    show_facets = admin.ShowFacets.NEVER  # counting per filter value is costly on a big ledger
    show_full_result_count = False
    fieldsets = [
        ("Request", {"fields": ["request_id", "created_at", "status", "http_status_text", "error_kind", "stream"]}),
        ("Who and where", {"fields": ["key_label", "team_name", "route_name", "provider_name", "model_name"]}),
        (
            "Usage and cost",
            {
                "fields": [
                    "prompt_tokens",
                    "completion_tokens",
                    "usage_source",
                    "input_price",
                    "output_price",
                    "cost_charged",
                ]
            },
        ),
        ("Timing and attempts", {"fields": ["total_latency", "first_token", "attempts", "attempt_table"]}),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: UsageRecord | None = None) -> list:
        """A cache hit's page also says what the cache saved (other requests save nothing
        by the cache, so their pages do not carry an always-zero line)."""
        if obj is None or not _cache_saving(obj):
            return self.fieldsets
        fieldsets = [(name, {**options, "fields": list(options["fields"])}) for name, options in self.fieldsets]
        usage = next(options["fields"] for name, options in fieldsets if name == "Usage and cost")
        usage.insert(usage.index("cost_charged") + 1, "cache_saved")
        return fieldsets

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageRecord | None = None) -> bool:
        return False

    @admin.display(description="when", ordering="created_at")
    def when(self, obj: UsageRecord) -> str:
        at = localtime(obj.created_at)
        return format_html("{}<br>{}", at.strftime("%Y-%m-%d"), at.strftime("%H:%M:%S"))

    @admin.display(description="route → model", ordering="route_name")
    def route_and_model(self, obj: UsageRecord) -> str:
        return format_html('{}<br><span class="quiet">{}</span>', obj.route_name, obj.model_name or "no model called")

    @admin.display(description="key", ordering="key_prefix")
    def key_label(self, obj: UsageRecord) -> str:
        """As the finance reports group it: a key's prefix, or "(no key)" for calls made
        without a virtual key (the admin's test calls record the prefix "admin")."""
        if obj.key_id is None and obj.key_prefix == STAFF_KEY_PREFIX:
            return mark_safe('(no key)<br><span class="quiet">staff test call</span>')
        if obj.key_id is None:
            return "(no key)"
        return f"{obj.key_prefix}…" if obj.key_prefix else "—"

    @admin.display(description="outcome", ordering="status")
    def outcome(self, obj: UsageRecord) -> str:
        label = obj.get_status_display().capitalize()
        if not obj.error_kind:
            return label
        return format_html('{}<br><span class="quiet">{}</span>', label, obj.error_kind.replace("_", " "))

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, obj: UsageRecord) -> str:
        if obj.ttft_ms is None:
            return f"{obj.latency_ms} ms"
        return format_html('{} ms<br><span class="quiet">first token {} ms</span>', obj.latency_ms, obj.ttft_ms)

    # The detail page's own labels ("Http status", "Ttft ms" from the field names read badly).
    @admin.display(description="HTTP status")
    def http_status_text(self, obj: UsageRecord) -> str:
        return str(obj.http_status) if obj.http_status else "—"

    @admin.display(description="input price (USD per 1M tokens)")
    def input_price(self, obj: UsageRecord) -> str:
        return f"${obj.input_price_per_mtok.normalize():f}"

    @admin.display(description="output price (USD per 1M tokens)")
    def output_price(self, obj: UsageRecord) -> str:
        return f"${obj.output_price_per_mtok.normalize():f}"

    @admin.display(description="total latency")
    def total_latency(self, obj: UsageRecord) -> str:
        return f"{obj.latency_ms} ms"

    @admin.display(description="time to first token")
    def first_token(self, obj: UsageRecord) -> str:
        return f"{obj.ttft_ms} ms" if obj.ttft_ms is not None else "— (not a stream, or no token arrived)"

    @admin.display(description="token counts")
    def usage_source(self, obj: UsageRecord) -> str:
        """In words: a bare boolean showed a green tick for the bad case (estimated)."""
        if obj.usage_estimated:
            return "Estimated by the gateway: the provider reported no token counts (about 4 characters per token)."
        return "Reported by the provider."

    @admin.display(description="tokens in + out")
    def tokens(self, obj: UsageRecord) -> str:
        text = f"{obj.prompt_tokens} + {obj.completion_tokens}"
        return format_html('~{}<br><span class="quiet">estimated</span>', text) if obj.usage_estimated else text

    @admin.display(description="cost (USD)", ordering="cost_usd")
    def cost(self, obj: UsageRecord) -> str:
        """In the list, a cache hit's $0 says what the hit saved underneath."""
        if not _cache_saving(obj):
            return _usd(obj.cost_usd)
        return format_html('{}<br><span class="quiet">saved {}</span>', _usd(obj.cost_usd), _usd(obj.cache_saved_usd))

    @admin.display(description="cost (USD)")
    def cost_charged(self, obj: UsageRecord) -> str:
        """The detail page's cost: the amount alone (the saving has its own line there)."""
        return _usd(obj.cost_usd)

    @admin.display(description="saved by the cache (USD)")
    def cache_saved(self, obj: UsageRecord) -> str:
        """Exact (the list rounds to the micro-dollar), and what it means."""
        return (f"${obj.cache_saved_usd.normalize():f}: what the cached answer cost when it was stored, "
                "which this request did not pay")

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


def _usd(amount: Decimal) -> str:
    """The ledger's amounts to the micro-dollar, as the cost column always showed them."""
    return f"${amount.quantize(Decimal('0.000001')):f}"


def _cache_saving(obj: UsageRecord) -> bool:
    return obj.status == UsageRecord.Status.CACHE_HIT or bool(obj.cache_saved_usd)


@admin.register(UsageDeadLetter)
class UsageDeadLetterAdmin(admin.ModelAdmin):
    """Usage rows the ledger could not write, waiting for
    `manage.py replay_usage_dead_letters`; read-only (the replay is the one way out)."""

    list_display = ["created_at", "request_id", "source", "short_error", "replay_attempts", "replayed_at"]
    list_filter = [("replayed_at", admin.EmptyFieldListFilter), "source"]
    search_fields = ["=request_id"]
    ordering = ["-created_at"]
    readonly_fields = ["request_id", "created_at", "occurred_at", "source", "error", "replay_attempts", "replayed_at", "entry"]

    @admin.display(description="error", ordering="error")
    def short_error(self, obj: UsageDeadLetter) -> str:
        return Truncator(obj.error).chars(100)  # whole on the row's page

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: UsageDeadLetter | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: UsageDeadLetter | None = None) -> bool:
        return False
