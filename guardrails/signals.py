"""Saves in this process refresh the guardrail table at once; other processes pick
edits up within GATEWAY_CONFIG_TTL_S."""

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .models import Guardrail
from .policy import guardrail_table


@receiver(post_save, sender=Guardrail)
@receiver(post_delete, sender=Guardrail)
def _guardrail_changed(sender, **kwargs) -> None:
    guardrail_table.invalidate()


for _through in (Guardrail.routes.through, Guardrail.teams.through, Guardrail.keys.through):
    m2m_changed.connect(_guardrail_changed, sender=_through, dispatch_uid=f"guardrail-scope-{_through.__name__}")
