from django.apps import AppConfig


class RoutingConfig(AppConfig):
    name = "routing"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from gateway_project.schedule import ensure_periodic_tasks

        from . import signals  # noqa: F401

        # Once the beat tables exist: create the default periodic tasks if missing.
        post_migrate.connect(ensure_periodic_tasks, sender=self, dispatch_uid="gateway-default-schedule")
