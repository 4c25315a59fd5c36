"""'Purge the cache' of a route: raise its epoch (every key and semantic namespace
includes it, so no older answer is served once the routing snapshot reloads: within
GATEWAY_CONFIG_TTL_S on other processes, at once on this one), then delete what the
stores hold for the route (memory, not correctness)."""

from __future__ import annotations

import logging

import redis
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db.models import F

from routing.models import Route

from . import semantic_index
from .keys import route_prefix
from .store import LocalStore, get_cache_store

log = logging.getLogger("gateway.cache")


def purge_route(route: Route) -> int:
    """Purge one route's cache; returns how many stored answers were deleted."""
    Route.objects.filter(pk=route.pk).update(cache_epoch=F("cache_epoch") + 1)
    from routing.catalog import routing_table

    routing_table.invalidate()
    deleted = 0
    try:
        deleted = _delete_answers(route_prefix(route.pk))
        index = semantic_index()
        if index is not None:
            async_to_sync(index.purge)(f"{route.pk}:")
    except (redis.RedisError, OSError) as exc:  # the epoch already made them unreachable
        log.warning("cache purge of route %s: the store could not be cleaned (%s)", route.name, type(exc).__name__)
    return deleted


def _delete_answers(prefix: str) -> int:
    store = get_cache_store()
    if isinstance(store, LocalStore):
        return store.delete_prefix_now(prefix)
    client = redis.Redis.from_url(settings.GATEWAY_CACHE_REDIS_URL, socket_timeout=5)
    try:
        count, batch = 0, []
        for key in client.scan_iter(match=prefix.replace("*", "\\*") + "*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                count += client.unlink(*batch)
                batch.clear()
        if batch:
            count += client.unlink(*batch)
        return count
    finally:
        client.close()
