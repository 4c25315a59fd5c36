"""The playground page (staff users); the work happens over its websocket
(streaming.playground)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@staff_member_required
def playground(request: HttpRequest) -> HttpResponse:
    return render(request, "playground/index.html", {
        "title": "Playground",
        "usage_url": settings.GATEWAY_MY_USAGE_URL,
        "max_message_bytes": settings.GATEWAY_PLAYGROUND_MAX_MESSAGE_BYTES,
    })
