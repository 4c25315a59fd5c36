from django.contrib import admin
from django.urls import include, path, re_path

from routing import views as api

from .health import healthz, readyz

urlpatterns = [
    path("v1/chat/completions", api.chat_completions, name="chat-completions"),
    path("v1/models", api.list_models, name="models"),
    path("v1/models/<path:name>", api.retrieve_model, name="model"),
    re_path(r"^v1/(?P<path>.*)$", api.not_found),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("django_prometheus.urls")),  # /metrics
    path("api/", include("billing.api.urls")),
    path("reports/", include("billing.reports.urls")),
    path("admin/", admin.site.urls),
]
