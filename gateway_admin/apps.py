from __future__ import annotations

from django.apps import AppConfig


class GatewayAdminAppConfig(AppConfig):
    """Holds the admin's static files (favicon, layout CSS). The admin site itself is
    installed through gateway_admin.site.GatewayAdminConfig, in place of Django's."""

    name = "gateway_admin"
    verbose_name = "LLM Gateway admin"

    def ready(self) -> None:
        # The audit trail (issue 16; docs/security/audit.md): the hooks that record every
        # change of the audited models, and the trail's read-only admin.
        from . import audit_admin, audit_hooks

        audit_hooks.install()
        audit_admin.register()

        # The role groups get the permissions of models added by later migrations
        # after every migrate (and test-database flush): gateway_admin.roles.
        from .roles import connect_post_migrate

        connect_post_migrate()
