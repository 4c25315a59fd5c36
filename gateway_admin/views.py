"""The one page the admin app serves outside /admin/."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """/favicon.ico, which browsers ask for on pages that name no icon (JSON, the API
    docs): the admin's SVG icon instead of a 404 in the log."""
    return HttpResponsePermanentRedirect(static("gateway_admin/favicon.svg"))
