"""Virtual keys: issue, revoke, and authenticate (the hot path's first step).

Keys are 256-bit random secrets; only their SHA-256 hash is stored (a slow hash
adds nothing for secrets of this entropy and would cost every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gateway_project.errors import AuthenticationFailed
from gateway_project.snapshot import KeyedCache

from .models import Team, VirtualKey

KEY_PREFIX = "sk-gw-"
DISPLAY_CHARS = 12


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: VirtualKey
    secret: str  # shown once, never stored


@transaction.atomic
def issue_key(
    name: str,
    *,
    team: Team | None = None,
    routes: Iterable = (),
    expires_at: datetime | None = None,
    metadata: dict | None = None,
) -> IssuedKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = VirtualKey.objects.create(
        name=name,
        key_hash=hash_key(secret),
        prefix=secret[:DISPLAY_CHARS],
        team=team,
        expires_at=expires_at,
        metadata=metadata or {},
    )
    routes = list(routes)
    if routes:
        key.allowed_routes.set(routes)
    return IssuedKey(key, secret)


def revoke_key(key: VirtualKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at", "updated_at"])


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the hot path knows about a key; cached in process for a few seconds."""

    id: int | None  # None: the admin's test calls (no virtual key)
    key_hash: str
    prefix: str
    name: str
    team_id: int | None
    team_name: str
    allowed_route_ids: frozenset[int]  # empty = every route
    expires_at: datetime | None
    revoked: bool

    def may_use(self, route_id: int) -> bool:
        return not self.allowed_route_ids or route_id in self.allowed_route_ids


def load_key(key_hash: str) -> KeyInfo | None:
    key = VirtualKey.objects.select_related("team").filter(key_hash=key_hash).first()
    if key is None:
        return None
    return KeyInfo(
        id=key.id,
        key_hash=key.key_hash,
        prefix=key.prefix,
        name=key.name,
        team_id=key.team_id,
        team_name=key.team.name if key.team else "",
        allowed_route_ids=frozenset(key.allowed_routes.values_list("id", flat=True)),
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
    )


key_cache: KeyedCache[KeyInfo | None] = KeyedCache(load_key, ttl=lambda: settings.GATEWAY_CONFIG_TTL_S)


def bearer_token(header: str | None) -> str:
    if not header:
        raise AuthenticationFailed(
            "Missing API key. Send it as 'Authorization: Bearer <virtual key>'.", code="missing_api_key"
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("Malformed Authorization header; expected 'Bearer <virtual key>'.")
    return token


async def authenticate(header: str | None) -> KeyInfo:
    """Bearer header -> KeyInfo, or AuthenticationFailed (401).

    Unknown, revoked and expired keys take the same path (hash, cache lookup,
    constant-time compare), so timing does not tell them apart.
    """
    token = bearer_token(header)
    digest = hash_key(token)
    info = await key_cache.get(digest)
    # The lookup is by hash; the constant-time comparison guards against any index
    # or cache behaviour that could leak partial matches.
    if info is None or not hmac.compare_digest(info.key_hash, digest):
        raise AuthenticationFailed("Invalid API key provided.")
    if info.revoked:
        raise AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
    if info.expires_at is not None and info.expires_at <= timezone.now():
        raise AuthenticationFailed("This API key has expired.", code="expired_api_key")
    return info
