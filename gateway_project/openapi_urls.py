"""The OpenAPI schema's URLconf: the site's URLs, plus the /v1 endpoints documented by
routing/openapi/views.py (settings.SPECTACULAR_SETTINGS["SERVE_URLCONF"]; offline:
`manage.py spectacular --urlconf gateway_project.openapi_urls`). It composes the site
with routing's documentation views, so it lives with the other composition modules."""

from __future__ import annotations

from django.urls import path

from gateway_project.urls import urlpatterns as site

from routing.openapi.views import ChatCompletions, ModelDetail, Models

urlpatterns = [
    path("v1/chat/completions", ChatCompletions.as_view(), name="v1-chat-completions"),
    path("v1/models", Models.as_view(), name="v1-models"),
    path("v1/models/<str:model>", ModelDetail.as_view(), name="v1-model"),
    *site,
]
