from django.contrib import admin
from django.urls import include, path

from .health import healthz, readyz

urlpatterns = [
    # /v1/* is served by routing.api before Django (see gateway_project/asgi.py).
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("", include("django_prometheus.urls")),  # /metrics
    path("api/", include("billing.api.urls")),
    path("reports/", include("billing.reports.urls")),
    path("admin/", admin.site.urls),
]
