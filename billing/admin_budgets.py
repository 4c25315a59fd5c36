"""Admin for budgets (their own list, and inlines on keys and teams) and the
read-only list of budget alerts. Budgets are saved and deleted through
billing.budgets (validation, key cache), never with a bare .save()."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from . import money
from .budgets import delete_budget, save_budget
from .models import Budget, BudgetAlert

BUDGET_SETTINGS = ["amount_usd", "period", "action", "alert_threshold_pct", "alert_emails", "webhook_url", "enabled"]


class _OwnedBudgetForm(forms.ModelForm):
    """An inline budget: its scope follows from where it is edited (a key or a team)."""

    scope: str = ""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.instance.scope = self.scope


class KeyBudgetForm(_OwnedBudgetForm):
    scope = Budget.Scope.KEY


class TeamBudgetForm(_OwnedBudgetForm):
    scope = Budget.Scope.TEAM


def masked_url(url: str) -> str:
    """A webhook URL for people who may only view it: scheme and host (a webhook's path
    or query often is its secret, e.g. a Slack incoming webhook)."""
    if not url:
        return "—"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}/…" if parts.path.strip("/") or parts.query else url


class WebhookMasking:
    """For view-only users (no change permission), the webhook URL is shown masked."""

    def get_fields(self, request: HttpRequest, obj=None):
        fields = super().get_fields(request, obj)  # type: ignore[misc]
        if self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            return fields
        return ["webhook_url_masked" if f == "webhook_url" else f for f in fields]

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = super().get_fieldsets(request, obj)  # type: ignore[misc]
        if self.has_change_permission(request, obj):  # type: ignore[attr-defined]
            return fieldsets
        return [(name, {**opts, "fields": ["webhook_url_masked" if f == "webhook_url" else f
                                           for f in opts["fields"]]}) for name, opts in fieldsets]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        return [*super().get_readonly_fields(request, obj), "webhook_url_masked"]  # type: ignore[misc]

    @admin.display(description="webhook URL")
    def webhook_url_masked(self, obj: Budget) -> str:
        return masked_url(obj.webhook_url)


class _BudgetInline(WebhookMasking, admin.TabularInline):
    model = Budget
    fields = BUDGET_SETTINGS
    extra = 0
    show_change_link = True


class KeyBudgetInline(_BudgetInline):
    fk_name = "key"
    form = KeyBudgetForm
    verbose_name_plural = "budgets of this key"


class TeamBudgetInline(_BudgetInline):
    fk_name = "team"
    form = TeamBudgetForm
    verbose_name_plural = "budgets of this team (all its keys together)"


class BudgetInlineSaving:
    """For ModelAdmins with a budget inline: save and delete its rows through billing.budgets."""

    def save_formset(self, request: HttpRequest, form, formset, change: bool) -> None:
        if formset.model is not Budget:
            super().save_formset(request, form, formset, change)  # type: ignore[misc]
            return
        for budget in formset.save(commit=False):  # also fills formset.deleted_objects
            save_budget(budget)
        for budget in formset.deleted_objects:
            delete_budget(budget)


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["scope", "key", "team", *BUDGET_SETTINGS]
        help_texts = {
            "key": "For key budgets only.",
            "team": "For team budgets only.",
            "alert_emails": "Comma-separated addresses, e.g. finance@example.com, lead@example.com.",
        }


@admin.register(Budget)
class BudgetAdmin(WebhookMasking, admin.ModelAdmin):
    form = BudgetForm
    # Short cells; the choices' explanations are on the change page and in the filters.
    list_display = ["owner", "scope_short", "amount", "period_short", "action_short", "alert_threshold_pct", "enabled"]
    list_display_links = ["owner"]
    list_editable = ["enabled"]
    list_filter = ["scope", "period", "action", "enabled", "team"]
    list_select_related = ["key", "team"]
    search_fields = ["key__name", "key__prefix", "team__name"]
    autocomplete_fields = ["key", "team"]
    readonly_fields = ["spent_this_period", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["scope", "key", "team"]}),
        ("Limit", {"fields": ["amount_usd", "period", "action", "enabled", "spent_this_period"]}),
        ("Alerts", {"fields": ["alert_threshold_pct", "alert_emails", "webhook_url"]}),
        ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    @admin.display(description="owner")
    def owner(self, obj: Budget) -> str:
        return str(obj.key or obj.team or "whole gateway")

    @admin.display(description="scope", ordering="scope")
    def scope_short(self, obj: Budget) -> str:
        return {"key": "key", "team": "team", "global": "whole gateway"}.get(obj.scope, obj.scope)

    @admin.display(description="amount", ordering="amount_usd")
    def amount(self, obj: Budget) -> str:
        return f"${obj.amount_usd:,.2f}"

    @admin.display(description="period", ordering="period")
    def period_short(self, obj: Budget) -> str:
        return {"day": "per day", "month": "per month", "total": "in total"}.get(obj.period, obj.period)

    @admin.display(description="when reached", ordering="action")
    def action_short(self, obj: Budget) -> str:
        return {"block": "block (429)", "alert": "alert only"}.get(obj.action, obj.action)

    @admin.display(description="spent this period")
    def spent_this_period(self, obj: Budget) -> str:
        """billing.money's figure: the one enforcement, alerts and the finance report use."""
        if obj.pk is None:
            return "—"
        spent = money.spent_in_period(obj)
        share = f" ({spent * 100 / obj.amount_usd:.1f}%)" if obj.amount_usd else ""
        rotated = " Includes the spend of the keys this key replaced (rotation)." if obj.scope == "key" else ""
        return (
            f"${spent} of ${obj.amount_usd}{share} in {money.period_key(obj.period)} (UTC), from the usage "
            f"ledger.{rotated} Requests in flight are not counted until they finish."
        )

    def save_model(self, request: HttpRequest, obj: Budget, form, change: bool) -> None:
        save_budget(obj)

    def delete_model(self, request: HttpRequest, obj: Budget) -> None:
        delete_budget(obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for budget in queryset:
            delete_budget(budget)


@admin.register(BudgetAlert)
class BudgetAlertAdmin(admin.ModelAdmin):
    """What was alerted, when: history, so read-only for everyone."""

    list_display = ["created_at", "budget", "period_key", "threshold_pct", "spent_usd", "delivered"]
    list_filter = ["threshold_pct", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["budget__key", "budget__team"]
    search_fields = ["budget__key__name", "budget__team__name", "period_key"]
    date_hierarchy = "created_at"
    ordering = ["-created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BudgetAlert | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BudgetAlert | None = None) -> bool:
        return False
