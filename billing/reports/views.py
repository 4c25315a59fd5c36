"""Finance reports: read-only pages for staff holding billing.view_finance_reports."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import exports, queries
from .chart import spend_chart
from .forms import PRESETS, DateRangeForm, date_range

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
    days = queries.daily(start, end)
    tables = {dim: queries.breakdown(dim, start, end) for dim, _ in BREAKDOWNS}
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
        "total": queries.sum_rows(days),
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
