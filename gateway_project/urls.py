from django.contrib import admin
from django.urls import include, path

from gateway_admin.oidc_views import logout as oidc_logout
from gateway_admin.views import favicon
from streaming.views import playground

from .health import healthz, readyz
from .metrics_view import metrics_view

urlpatterns = [
    # /v1/* is served by routing.api before Django (see gateway_project/asgi.py).
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),  # guarded: GATEWAY_METRICS_ALLOW / GATEWAY_METRICS_TOKEN
    path("api/", include("billing.api.urls")),
    path("reports/", include("billing.reports.urls")),
    path("playground/", playground, name="playground"),
    # The admin's logout, then the identity provider's for single sign-on users (gateway_admin/oidc_views.py).
    path("admin/logout/", oidc_logout, name="gateway_admin_logout"),
    path("admin/", admin.site.urls),
    path("oidc/", include("gateway_admin.oidc_urls")),  # single sign-on (issue 16; docs/security/sso.md)
    path("favicon.ico", favicon, name="favicon"),
]
