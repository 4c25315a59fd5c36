"""The playground's keys: one virtual key per user, created on first use.

A user's playground spend is recorded against that key like any client's — its budgets
and rate limits apply, it shows in the admin (Virtual keys, "playground:<username>")
and in every report. A key an admin revoked or let expire is not replaced: the
playground says so, and an admin decides (issue a new one by clearing the link, or
lift the key's limits).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from gateway_project.db import run_db
from gateway_project.errors import AuthenticationFailed

from .keys import KeyInfo, issue_key, key_cache
from .models import VirtualKey


def playground_key(user) -> VirtualKey:
    """The user's playground key, created on first use (race-safe)."""
    key = VirtualKey.objects.filter(playground_user=user).first()
    if key is not None:
        return key
    try:
        with transaction.atomic():
            issued = issue_key(f"playground:{user.get_username()}", metadata={"playground": True},
                               tags=["playground"])
            issued.key.playground_user = user
            issued.key.save(update_fields=["playground_user"])
            return issued.key
    except IntegrityError:  # another tab created it at the same moment
        return VirtualKey.objects.get(playground_user=user)


async def playground_keyinfo(user) -> KeyInfo:
    """The hot path's view of the user's playground key (cached like any key), or
    AuthenticationFailed when it was revoked or has expired."""
    key = await run_db(playground_key, user)
    info = await key_cache.get(key.key_hash)
    if info is None:
        raise AuthenticationFailed("Your playground key could not be loaded.")
    if info.revoked:
        raise AuthenticationFailed("Your playground key has been revoked; ask an admin.", code="revoked_api_key")
    if info.expires_at is not None and info.expires_at <= timezone.now():
        raise AuthenticationFailed("Your playground key has expired; ask an admin.", code="expired_api_key")
    return info
