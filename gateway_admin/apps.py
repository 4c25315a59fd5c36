from __future__ import annotations

from django.apps import AppConfig


class GatewayAdminAppConfig(AppConfig):
    """Holds the admin's static files (favicon, layout CSS). The admin site itself is
    installed through gateway_admin.site.GatewayAdminConfig, in place of Django's."""

    name = "gateway_admin"
    verbose_name = "LLM Gateway admin"
