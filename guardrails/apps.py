from django.apps import AppConfig


class GuardrailsConfig(AppConfig):
    name = "guardrails"
    verbose_name = "Guardrails"

    def ready(self) -> None:
        from . import signals  # noqa: F401 - connects the receivers
