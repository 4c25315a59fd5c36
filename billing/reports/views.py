"""Finance reports: read-only pages for staff holding billing.view_finance_reports, and
My usage (/reports/me/), any signed-in user's own playground spend and limits."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from billing.models import VirtualKey

from . import exports, mine, queries
from .chart import spend_chart
from .forms import PRESETS, DateRangeForm, date_range
from .freshness import Freshness

PERMISSION = "billing.view_finance_reports"
BREAKDOWNS = [("team", "Team"), ("key", "Key"), ("route", "Route"), ("model", "Model"), ("provider", "Provider")]
TOP_ROWS = 15  # per breakdown on the page; the CSV has every row


def can_view_reports(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm(PERMISSION)  # superusers have every perm


def finance_required(view: Callable) -> Callable:
    """Anonymous: to the login page. Logged in without the permission: 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_view_reports(request.user):
            context = {**admin.site.each_context(request), "title": "Finance reports"}
            return render(request, "reports/forbidden.html", context, status=403)
        return view(request, *args, **kwargs)

    return require_GET(wrapper)


@finance_required
def overview(request: HttpRequest) -> HttpResponse:
    form, start, end = date_range(request.GET)
    report = queries.report(start, end, [dim for dim, _ in BREAKDOWNS])
    days, tables = report.days, report.tables
    query = urlencode({"start": start.isoformat(), "end": end.isoformat()})
    context = {
        **admin.site.each_context(request),
        "title": "Finance reports",
        # Show the effective dates in the inputs (a blank or preset query has none).
        "form": form if form.errors else DateRangeForm(initial={"start": start, "end": end}),
        "preset": request.GET.get("preset", ""),
        "start": start,
        "end": end,
        "query": query,
        "presets": [(key, label) for key, (label, _) in PRESETS.items()],
        "total": report.total,
        "freshness": Freshness.of(report.live),
        "chart": spend_chart(days),
        "breakdowns": [
            {"dim": dim, "label": label, "rows": tables[dim][:TOP_ROWS], "more": len(tables[dim][TOP_ROWS:])}
            for dim, label in BREAKDOWNS
        ],
        "savings": tables["route"],
        "burn": queries.budget_burn(),
    }
    return render(request, "reports/overview.html", context)


@finance_required
def csv_export(request: HttpRequest, view: str) -> HttpResponse:
    if view not in exports.VIEWS:
        raise Http404("No such report")
    _, start, end = date_range(request.GET)
    response = HttpResponse(exports.render(view, start, end), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{view}_{start}_{end}.csv"'
    return response


def signed_in(view: Callable) -> Callable:
    """Any active signed-in user (staff or not); anonymous: to the login page."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated or not request.user.is_active:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return require_GET(wrapper)


@signed_in
def my_usage(request: HttpRequest) -> HttpResponse:
    """The signed-in user's own playground key: spend, budgets, limits, last requests.
    Looks the key up, never creates it (the playground does, on first use)."""
    key = VirtualKey.objects.select_related("team").filter(playground_user=request.user).first()
    usage = mine.my_usage(key) if key is not None else None
    context = {
        **admin.site.each_context(request),
        "title": "My usage",
        "usage": usage,
        "freshness": Freshness.of(usage.live) if usage else None,
        "playground_url": reverse("playground"),
        "can_view_reports": can_view_reports(request.user),
    }
    return render(request, "reports/me.html", context)
