"""The playground page (staff users holding the playground permission); the work
happens over its websocket (streaming.playground)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .models import PLAYGROUND_PERMISSION  # the "Playground users" role's (gateway_admin.roles)


def can_use_playground(user) -> bool:
    return user.is_active and user.is_staff and user.has_perm(PLAYGROUND_PERMISSION)


@staff_member_required
def playground(request: HttpRequest) -> HttpResponse:
    if not can_use_playground(request.user):
        context = {**admin.site.each_context(request), "title": "Playground"}
        return render(request, "playground/forbidden.html", context, status=403)
    return render(request, "playground/index.html", {
        "title": "Playground",
        "usage_url": settings.GATEWAY_MY_USAGE_URL,
        "max_message_bytes": settings.GATEWAY_PLAYGROUND_MAX_MESSAGE_BYTES,
    })
