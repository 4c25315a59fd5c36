"""Saves in this process refresh the routing table at once; other processes pick
edits up within GATEWAY_CONFIG_TTL_S."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from providers.models import Model, Provider

from .catalog import routing_table
from .models import Route, RouteTarget


@receiver([post_save, post_delete], sender=Provider)
@receiver([post_save, post_delete], sender=Model)
@receiver([post_save, post_delete], sender=Route)
@receiver([post_save, post_delete], sender=RouteTarget)
def invalidate_routing_table(**kwargs) -> None:
    routing_table.invalidate()
