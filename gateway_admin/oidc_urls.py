"""/oidc/...: single sign-on (gateway_admin/oidc_views.py). The names are
mozilla-django-oidc's own, so its helpers reverse them unchanged."""

from __future__ import annotations

from django.urls import path
from django.views.decorators.cache import never_cache

from .oidc_views import AuthenticateView, CallbackView, logout

urlpatterns = [
    path("authenticate/", never_cache(AuthenticateView.as_view()), name="oidc_authentication_init"),
    path("callback/", never_cache(CallbackView.as_view()), name="oidc_authentication_callback"),
    path("logout/", logout, name="oidc_logout"),
]
