"""Key edits (revocation, expiry, allowed routes) apply at once in this process and
within GATEWAY_CONFIG_TTL_S elsewhere."""

from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from .admission import budgets
from .keys import key_cache
from .models import Budget, Team, VirtualKey


@receiver([post_save, post_delete], sender=VirtualKey)
@receiver([post_save, post_delete], sender=Team)
@receiver(m2m_changed, sender=VirtualKey.allowed_routes.through)
def invalidate_keys(**kwargs) -> None:
    key_cache.clear()


@receiver([post_save, post_delete], sender=Budget)
def invalidate_budgets(**kwargs) -> None:
    budgets.invalidate()
    key_cache.clear()  # KeyInfo carries the ids of the key's budgets
