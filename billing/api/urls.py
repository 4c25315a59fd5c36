"""Management REST API (/api/...): keys, teams, budgets, usage; OpenAPI schema and docs."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from .permissions import AUTHENTICATION
from .views import BudgetViewSet, KeyViewSet, TeamViewSet, UsageViewSet

router = SimpleRouter()
router.register("keys", KeyViewSet, basename="api-key")
router.register("teams", TeamViewSet, basename="api-team")
router.register("budgets", BudgetViewSet, basename="api-budget")
router.register("usage", UsageViewSet, basename="api-usage")

docs = {"authentication_classes": AUTHENTICATION}  # staff only (SPECTACULAR_SETTINGS.SERVE_PERMISSIONS)
urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(**docs), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema", **docs), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema", **docs), name="api-redoc"),
    *router.urls,
]
