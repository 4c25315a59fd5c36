"""The LLM Gateway admin site: Django's AdminSite with the product's name, "View site"
leading to the playground, and a home page (and sidebar) grouped by what people do
instead of by Django app.

Only the *listing* changes: every model stays registered on this one site, so every
admin URL keeps working, including an app's own index page (/admin/billing/). The
Celery-beat tables and DRF auth tokens are internals: listed for superusers only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

PRODUCT_NAME = "LLM Gateway"
# Apps whose models only superusers see listed (their URLs still work for anyone
# with the permission): the beat scheduler's tables and the management API's tokens.
SUPERUSER_ONLY_APPS = frozenset({"django_celery_beat", "authtoken"})


@dataclass(frozen=True, slots=True)
class Link:
    """A page that is not a model's changelist, listed like one."""

    key: str  # row id/class suffix, e.g. "financereports"
    name: str
    url_name: str  # reversed; a plain path when it starts with "/"
    perm: str = ""  # needed to see the link ("" = any staff user)
    superuser: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    slug: str
    name: str
    description: str
    entries: list[tuple[str, str] | Link] = field(default_factory=list)  # (app_label, object_name) or a Link
    names: dict[str, str] = field(default_factory=dict)  # object_name -> the name shown here


GROUPS: list[Group] = [
    Group(
        "providers", "Providers & models", "Where requests can go, and what each model costs.",
        [("providers", "Provider"), ("providers", "Model")],
    ),
    Group(
        "routes", "Routes", "The model names clients call, how each picks a model, and how the models are doing.",
        [("routing", "Route"), ("routing", "TargetHealth")],
    ),
    Group(
        "keys", "Keys, teams & budgets", "Who may call the gateway, how fast, and how much they may spend.",
        [("billing", "VirtualKey"), ("billing", "Team"), ("billing", "Budget"), ("billing", "BudgetAlert")],
    ),
    Group(
        "guardrails", "Guardrails", "What is checked in prompts and answers, and what was found.",
        [("guardrails", "Guardrail"), Link("sandbox", "Try guardrails (sandbox)", "admin:guardrails_guardrail_sandbox",
                                           perm="guardrails.view_guardrail"), ("guardrails", "Violation")],
    ),
    Group(
        "usage", "Usage & reports", "Every request with its tokens, cost and timing; spend reports.",
        [Link("financereports", "Finance reports", "reports:overview", perm="billing.view_finance_reports"),
         ("billing", "UsageRecord")],
    ),
    Group(
        "health", "Health", "Is the gateway up, and did every usage row reach the ledger?",
        [Link("status", "Gateway status", "admin:routing_status", perm="routing.view_workerheartbeat"),
         Link("readiness", "Readiness check (JSON)", "readyz"),
         Link("metrics", "Prometheus metrics", "/metrics"),
         ("billing", "UsageDeadLetter")],
        names={"UsageDeadLetter": "Usage rows not yet written (dead letters)"},
    ),
    Group(
        "access", "People & access", "Who may sign in to this admin, and the management API's tokens.",
        [("auth", "User"), ("auth", "Group"), ("authtoken", "TokenProxy"), ("gateway_admin", "AuditEntry")],
        names={"TokenProxy": "Management API tokens", "AuditEntry": "Audit trail"},
    ),
    Group(
        "scheduler", "Scheduled jobs (Celery beat)", "Internals: when health checks, rollups and clean-ups run.",
        [("django_celery_beat", name) for name in
         ("PeriodicTask", "IntervalSchedule", "CrontabSchedule", "ClockedSchedule", "SolarSchedule")],
    ),
]


def _link_row(link: Link, request: HttpRequest) -> dict[str, Any] | None:
    if link.superuser and not request.user.is_superuser:
        return None
    if link.perm and not request.user.has_perm(link.perm):
        return None
    try:
        url = link.url_name if link.url_name.startswith("/") else reverse(link.url_name)
    except NoReverseMatch:  # a page this deployment does not serve
        return None
    return {"name": link.name, "object_name": link.key, "admin_url": url, "add_url": None, "view_only": True,
            "perms": {"view": True}, "model": None}


class GatewayAdminSite(admin.AdminSite):
    site_header = PRODUCT_NAME
    site_title = PRODUCT_NAME
    index_title = f"{PRODUCT_NAME} admin"
    site_url = "/playground/"  # "View site": where prompt testers work (gateway_project/urls.py)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        """By task (GROUPS) for the home page and the sidebar; an app's own index page
        (app_label given) stays Django's. Models no group names are kept, under their
        app, after the groups: a newly registered model is never hidden."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        if not request.user.is_superuser:
            apps = [a for a in apps if a["app_label"] not in SUPERUSER_ONLY_APPS]
        models = {(a["app_label"], m["object_name"]): m for a in apps for m in a["models"]}
        grouped = []
        for group in GROUPS:
            rows, worth_showing = [], False
            for entry in group.entries:
                if isinstance(entry, Link):
                    row = _link_row(entry, request)
                    # A link anyone may follow does not make a group worth showing by itself.
                    worth_showing |= row is not None and bool(entry.perm)
                else:
                    row = models.pop(entry, None)
                    if row is not None and entry[1] in group.names:
                        row = {**row, "name": group.names[entry[1]]}
                    worth_showing |= row is not None
                if row is not None:
                    rows.append(row)
            if worth_showing:
                grouped.append({
                    "name": group.name, "app_label": group.slug, "description": group.description,
                    "app_url": rows[0]["admin_url"], "has_module_perms": True, "models": rows,
                })
        for app in apps:  # what no group claimed, under its own app
            left = [m for m in app["models"] if (app["app_label"], m["object_name"]) in models]
            if left:
                grouped.append({**app, "models": left})
        return grouped


class GatewayAdminConfig(AdminConfig):
    """Installed instead of django.contrib.admin: the same app, with this site as admin.site."""

    default_site = "gateway_admin.site.GatewayAdminSite"
