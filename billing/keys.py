"""Virtual keys: issue, update, rotate, revoke, and authenticate (the hot path's first step).

Keys are 256-bit random secrets; only a hash is stored: HMAC-SHA256 with the
deployment's pepper over the secret's SHA-256 (billing.keys_pepper; a slow hash adds
nothing for secrets of this entropy and would cost every request). Rows from before
the pepper hold the plain SHA-256 (hash_scheme "sha256"), rows hashed with an earlier
pepper say so too: `authenticate` looks the peppered hash up first (one HMAC, the
in-process cache keyed by it), and only on a miss, and only while such rows exist,
looks for the legacy/earlier hashes and upgrades the row it finds (`manage.py
rehash_keys` upgrades the legacy ones in bulk). Every entry point (admin, management
API, `manage.py issue_key`) changes keys through the functions here.

Timing: unknown, revoked and expired keys take the same path in `authenticate`:
hash, cache lookup, one constant-time comparison, every check evaluated, then one
decision. What is equalised:
- the cache keeps negative results (unknown hashes) for the same TTL as keys, so a
  repeated guess is served from memory exactly like a known key;
- a cold lookup runs the same three queries by hash whether or not the key exists
  (key, its routes, its budgets), so the first lookup of an unknown key hits the
  database like the first lookup of a known one.
What is not: the queries return rows for a known key and none for an unknown one
(microseconds), and the error *code* differs on purpose (`invalid_api_key`,
`revoked_api_key`, `expired_api_key`): it tells a legitimate client why, and
reveals nothing to someone who does not already hold the key. While rows with a
legacy or earlier-pepper hash exist, an unknown key also takes the fallback (one more
query the first time a hash is seen, then cached like the rest); once `rehash_keys`
and first uses have upgraded every row, the fallback costs nothing and is skipped.
Repeated failures from one address are slowed down by billing.auth_throttle (the
API layer calls it; a valid key is never slowed).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from gateway_project.db import run_db
from gateway_project.errors import AuthenticationFailed
from gateway_project.snapshot import KeyedCache, Snapshot

from .keys_pepper import LEGACY_SCHEME, peppers

from .budgets import set_key_budget
from .models import MAX_RATE_LIMIT, RATE_LIMIT_HELP, Budget, Team, VirtualKey  # noqa: F401 (re-exported)

log = logging.getLogger("gateway.keys")
KEY_PREFIX = "sk-gw-"
DISPLAY_CHARS = 12
MAX_GRACE_SECONDS = 30 * 24 * 3600
MAX_TAGS, MAX_TAG_CHARS = 20, 50
UNSET: Any = object()  # "not given" (None means "no limit" / "never")
# Rate limits (requests / tokens per minute, of a key or a team): None = no limit;
# 0 = nothing allowed (fail closed: every request is refused with 429, e.g. to pause a
# key without revoking it). The ceiling (MAX_RATE_LIMIT, billing.models) is the
# columns' range on every database.


def hash_key(raw: str) -> str:
    """The stored hash of a secret under the current pepper (what new keys get)."""
    return peppers().current.hash(hashlib.sha256(raw.encode()).digest())


def legacy_hash(raw: str) -> str:
    """The hash rows from before the pepper hold (hash_scheme "sha256")."""
    return hashlib.sha256(raw.encode()).hexdigest()


class KeyStateError(Exception):
    """The key cannot be rotated in its current state (revoked, expired, already rotated)."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: VirtualKey
    secret: str  # shown once, never stored


def normalize_tags(value: str | Iterable[str] | None) -> list[str]:
    """Tags from a list or a comma-separated string: stripped, de-duplicated, in order."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(t, str) for t in items):
        raise ValidationError({"tags": "Tags must be strings."})
    tags = list(dict.fromkeys(t.strip() for t in items if t.strip()))
    if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_CHARS for t in tags):
        raise ValidationError({"tags": f"At most {MAX_TAGS} tags of at most {MAX_TAG_CHARS} characters each."})
    return tags


def validate_rate_limits(rpm_limit: int | None = None, tpm_limit: int | None = None) -> None:
    """The one check of a key's or a team's rate limits, called by every entry point
    (admin, management API, `issue_key`, `gateway_import`): None (no limit) or a whole
    number from 0 (nothing allowed) to MAX_RATE_LIMIT. Raises ValidationError naming
    the field(s)."""
    errors = {}
    for field, value in (("rpm_limit", rpm_limit), ("tpm_limit", tpm_limit)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RATE_LIMIT:
            errors[field] = (
                f"Must be a whole number greater than or equal to 0 (0 = nothing allowed) and at most "
                f"{MAX_RATE_LIMIT}, or null for no limit; got {value!r}."
            )
    if errors:
        raise ValidationError(errors)


def save_team(team: Team) -> Team:
    """Validate (rate limits, then the model) and save a team; keys see its limits
    within GATEWAY_CONFIG_TTL_S (their cached KeyInfo carries them)."""
    validate_rate_limits(team.rpm_limit, team.tpm_limit)
    team.full_clean()
    team.save()
    return team


def _check(key: VirtualKey) -> None:
    validate_rate_limits(key.rpm_limit, key.tpm_limit)
    if not isinstance(key.metadata, dict):
        raise ValidationError({"metadata": "Metadata must be a JSON object."})
    key.tags = normalize_tags(key.tags)
    key.full_clean(validate_unique=False)  # key_hash uniqueness: the database says it


@transaction.atomic
def issue_key(
    name: str,
    *,
    team: Team | None = None,
    routes: Iterable = (),
    expires_at: datetime | None = None,
    metadata: dict | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    tags: Iterable[str] | None = None,
    budget_usd: Decimal | None = None,
    budget_period: str = Budget.Period.MONTH,
    budget_action: str = Budget.Action.BLOCK,
) -> IssuedKey:
    """Create a key and return it with its secret (shown once). `budget_usd` gives it
    a budget per `budget_period` (blocking by default). Raises ValidationError on bad values."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    pepper = peppers().current
    key = VirtualKey(
        name=name,
        key_hash=pepper.hash(hashlib.sha256(secret.encode()).digest()),
        hash_scheme=pepper.scheme,
        prefix=secret[:DISPLAY_CHARS],
        team=team,
        expires_at=expires_at,
        metadata={} if metadata is None else metadata,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        tags=list(tags or ()),
    )
    _check(key)
    key.save()
    routes = list(routes)
    if routes:
        key.allowed_routes.set(routes)
    if budget_usd is not None:
        set_key_budget(key, budget_usd, budget_period, action=budget_action)
    return IssuedKey(key, secret)


@transaction.atomic
def update_key(
    key: VirtualKey,
    *,
    name: str = UNSET,
    team: Team | None = UNSET,
    routes: Iterable = UNSET,
    expires_at: datetime | None = UNSET,
    rpm_limit: int | None = UNSET,
    tpm_limit: int | None = UNSET,
    metadata: dict = UNSET,
    tags: Iterable[str] = UNSET,
) -> VirtualKey:
    """Change what is given (UNSET = leave alone). A past `expires_at` expires the key now."""
    changes = {
        "name": name, "team": team, "expires_at": expires_at, "rpm_limit": rpm_limit,
        "tpm_limit": tpm_limit, "metadata": metadata, "tags": tags,
    }
    for field, value in changes.items():
        if value is not UNSET:
            setattr(key, field, list(value) if field == "tags" else value)
    _check(key)
    key.save()
    if routes is not UNSET:
        key.allowed_routes.set(list(routes))
    return key


def update_key_limits(key: VirtualKey, *, rpm: int | None = UNSET, tpm: int | None = UNSET) -> VirtualKey:
    """Requests/minute and tokens/minute of one key (None = no limit)."""
    return update_key(key, rpm_limit=rpm, tpm_limit=tpm)


@transaction.atomic
def rotate_key(key: VirtualKey, grace_seconds: int, *, expires_at: datetime | None = None) -> IssuedKey:
    """Issue a replacement for `key` and let the old one expire after `grace_seconds`
    (0 = at once; an earlier existing expiry is kept).

    The new key copies the name, team, allowed routes, limits, metadata and tags, and
    takes over the key budgets (the same rows, so spend so far still counts); during
    the grace period the old key spends against them too (load_key). Its expiry is
    `expires_at`, not the old key's. Raises KeyStateError for revoked, expired or
    already rotated keys.
    """
    if isinstance(grace_seconds, bool) or not isinstance(grace_seconds, int) or not (
        0 <= grace_seconds <= MAX_GRACE_SECONDS
    ):
        raise ValidationError({"grace_seconds": f"Must be a whole number from 0 to {MAX_GRACE_SECONDS}."})
    old = VirtualKey.objects.select_for_update().get(pk=key.pk)
    if old.is_revoked:
        raise KeyStateError("A revoked key cannot be rotated; issue a new key instead.")
    if old.replaced_by_id is not None:
        raise KeyStateError(f"This key was already rotated; rotate its replacement (key {old.replaced_by_id}).")
    if old.is_expired:
        raise KeyStateError("An expired key cannot be rotated; issue a new key instead.")
    issued = issue_key(
        old.name,
        team=old.team,
        routes=list(old.allowed_routes.all()),
        expires_at=expires_at,
        metadata=old.metadata,
        rpm_limit=old.rpm_limit,
        tpm_limit=old.tpm_limit,
        tags=old.tags,
    )
    Budget.objects.filter(scope=Budget.Scope.KEY, key=old).update(key=issued.key, updated_at=timezone.now())
    grace_end = timezone.now() + timedelta(seconds=grace_seconds)
    old.replaced_by = issued.key
    old.expires_at = grace_end if old.expires_at is None else min(old.expires_at, grace_end)
    old.save(update_fields=["replaced_by", "expires_at", "updated_at"])
    key.replaced_by, key.expires_at = old.replaced_by, old.expires_at
    return issued


KEY_STATUSES = ("active", "expired", "revoked")


def with_status(keys: QuerySet[VirtualKey], status: str) -> QuerySet[VirtualKey]:
    """The keys of a status: active (usable now, rotated keys in their grace period
    included), expired (not revoked, past expiry) or revoked."""
    now = timezone.now()
    live = keys.filter(revoked_at__isnull=True)
    if status == "active":
        return live.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    if status == "expired":
        return live.filter(expires_at__lte=now)
    if status == "revoked":
        return keys.filter(revoked_at__isnull=False)
    raise ValueError(f"unknown key status {status!r}")


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
    rpm_limit: int | None = None  # None = no limit
    tpm_limit: int | None = None
    team_rpm_limit: int | None = None
    team_tpm_limit: int | None = None
    budget_ids: frozenset[int] = frozenset()  # enabled key + team budgets (global ones: elsewhere)

    def may_use(self, route_id: int) -> bool:
        return not self.allowed_route_ids or route_id in self.allowed_route_ids


def load_key(key_hash: str) -> KeyInfo | None:
    key = VirtualKey.objects.select_related("team").filter(key_hash=key_hash).first()
    # The follow-up reads select by hash too and run whether or not the key exists:
    # a cold lookup of an unknown key does the same database work as a known one.
    route_ids = VirtualKey.allowed_routes.through.objects.filter(virtualkey__key_hash=key_hash)
    budgets = Budget.objects.filter(enabled=True).filter(
        Q(scope=Budget.Scope.KEY, key__key_hash=key_hash)
        # a rotated key in its grace period spends against its replacement's budgets
        | Q(scope=Budget.Scope.KEY, key__replaced_keys__key_hash=key_hash)
        | Q(scope=Budget.Scope.TEAM, team__keys__key_hash=key_hash)
    )
    allowed_route_ids = frozenset(route_ids.values_list("route_id", flat=True))
    budget_ids = frozenset(budgets.values_list("id", flat=True))
    if key is None:
        return None
    team = key.team
    return KeyInfo(
        id=key.id,
        key_hash=key.key_hash,
        prefix=key.prefix,
        name=key.name,
        team_id=key.team_id,
        team_name=team.name if team else "",
        allowed_route_ids=allowed_route_ids,
        expires_at=key.expires_at,
        revoked=key.revoked_at is not None,
        rpm_limit=key.rpm_limit,
        tpm_limit=key.tpm_limit,
        team_rpm_limit=team.rpm_limit if team else None,
        team_tpm_limit=team.tpm_limit if team else None,
        budget_ids=budget_ids,
    )


class _KeyCache(KeyedCache[KeyInfo | None]):
    """The key cache (keyed by the current-pepper hash); clearing it (a key edited in
    this process, tests) also forgets what the legacy fallback knows."""

    def clear(self) -> None:
        super().clear()
        _fallback_misses.clear()
        old_schemes.invalidate()

    def put(self, key: str, value: KeyInfo | None) -> None:
        """Store a value loaded elsewhere (a row upgraded by the fallback)."""
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key] = (time.monotonic(), value)


key_cache = _KeyCache(load_key, ttl=lambda: settings.GATEWAY_CONFIG_TTL_S)

# Compared against when the hash is unknown, so that case runs the same comparison.
_NO_KEY_HASH = "0" * 64


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

    Unknown, revoked and expired keys take the same path (hash, cache lookup that
    also caches misses, one constant-time compare, all checks evaluated before the
    one decision); see the module docstring for what is and is not equalised. A
    known key costs one SHA-256 and one HMAC and, within the cache's TTL, no database
    round trip; only a miss looks for a legacy or earlier-pepper row (`_fallback`).
    """
    token = bearer_token(header)
    sha = hashlib.sha256(token.encode()).digest()
    digest = peppers().current.hash(sha)
    looked_up = digest
    info = await key_cache.get(digest)
    if info is None:
        found = await _fallback(sha, digest)
        if found is not None:
            info, looked_up = found
    # The lookup is by hash; the constant-time comparison guards against any index
    # or cache behaviour that could leak partial matches.
    matched = hmac.compare_digest(info.key_hash if info is not None else _NO_KEY_HASH, looked_up)
    revoked = info is not None and info.revoked
    expired = info is not None and info.expires_at is not None and info.expires_at <= timezone.now()
    if info is None or not matched:
        raise AuthenticationFailed("Invalid API key provided.")
    if revoked:
        raise AuthenticationFailed("This API key has been revoked.", code="revoked_api_key")
    if expired:
        raise AuthenticationFailed("This API key has expired.", code="expired_api_key")
    return info


# --- rows with a legacy or earlier-pepper hash ---------------------------------------
def load_old_schemes() -> frozenset[str]:
    """The non-current schemes this process can still verify that some row uses: at
    most a handful of indexed EXISTS queries (hash_scheme is indexed), refreshed in
    the background like the rest of the configuration, and only ever read on a miss."""
    config = peppers()
    known = [LEGACY_SCHEME, *(p.scheme for p in config.previous)]
    return frozenset(s for s in known if VirtualKey.objects.filter(hash_scheme=s).exists())


old_schemes: Snapshot[frozenset[str]] = Snapshot(load_old_schemes, ttl=lambda: settings.GATEWAY_CONFIG_TTL_S)
# Hashes the fallback found no row for, with when: a repeated unknown key is answered
# from memory (bounded like the key cache).
_fallback_misses: dict[str, float] = {}
_FALLBACK_MAX = 100_000


def _candidates(sha: bytes, schemes: frozenset[str]) -> dict[str, str]:
    """stored hash -> scheme, for each non-current scheme in use."""
    config = peppers()
    out = {}
    for scheme in schemes:
        if scheme == LEGACY_SCHEME:
            out[sha.hex()] = scheme
        elif (pepper := config.by_scheme(scheme)) is not None and pepper is not config.current:
            out[pepper.hash(sha)] = scheme
    return out


async def _fallback(sha: bytes, digest: str) -> tuple[KeyInfo, str] | None:
    """On a miss of the peppered hash: the row holding the same secret's legacy or
    earlier-pepper hash, upgraded to `digest` (the current pepper) and cached under it.
    Returns (info, the hash its row holds now) or None."""
    schemes = await old_schemes.get()
    if not schemes:
        return None  # every row is on the current pepper: nothing to look for
    ttl = settings.GATEWAY_CONFIG_TTL_S
    seen = _fallback_misses.get(digest)
    if seen is not None and time.monotonic() - seen < ttl:
        return None
    candidates = _candidates(sha, schemes)
    if not candidates:
        return None
    upgrade = getattr(settings, "GATEWAY_KEY_UPGRADE_ON_USE", True)
    found = await run_db(_upgrade, candidates, digest, peppers().current.scheme, upgrade)
    if found is None:
        if len(_fallback_misses) >= _FALLBACK_MAX:
            _fallback_misses.clear()
        _fallback_misses[digest] = time.monotonic()
        return None
    info, stored = found
    # Cached under the current hash either way; a row left as it was (upgrades off) is
    # looked for again once the entry is older than the TTL.
    key_cache.put(digest, info if stored == digest else replace(info, key_hash=digest))
    return info, stored


def _upgrade(candidates: dict[str, str], digest: str, scheme: str, upgrade: bool = True
             ) -> tuple[KeyInfo, str] | None:
    """Find the row by any candidate hash (or by `digest`: another process upgraded it
    meanwhile) and move it to `digest`/`scheme` (unless `upgrade` is off: then it is
    served as stored). If the write fails, the row is still served under the hash it
    holds (and upgraded on a later use)."""
    rows = VirtualKey.objects.filter(key_hash__in=[digest, *candidates]).values_list("pk", "key_hash", "hash_scheme")
    for pk, stored, row_scheme in rows:
        if stored == digest:
            info = load_key(digest)
            return (info, digest) if info is not None else None
        if candidates.get(stored) != row_scheme:
            continue  # the same hex under another scheme: not this secret's
        if not upgrade:
            info = load_key(stored)
            return (info, stored) if info is not None else None
        try:
            with transaction.atomic():
                moved = VirtualKey.objects.filter(pk=pk, key_hash=stored).update(key_hash=digest, hash_scheme=scheme)
        except IntegrityError:
            moved = 0  # upgraded by another process between our read and write
        except DatabaseError:
            log.warning("could not upgrade a virtual key's hash (key %s); serving it as stored", pk, exc_info=True)
            info = load_key(stored)
            return (info, stored) if info is not None else None
        if moved:
            log.info("virtual key %s: hash upgraded from %s to the current pepper", pk, row_scheme)
        info = load_key(digest)
        return (info, digest) if info is not None else None
    return None


@dataclass(frozen=True, slots=True)
class RehashReport:
    upgraded: int  # legacy rows moved to the current pepper by this run
    current: int  # rows on the current pepper (after the run)
    previous: dict[str, int]  # pepper source -> rows still on it (upgraded on first use)
    unknown: dict[str, int]  # scheme -> rows whose pepper is not configured (they cannot authenticate)
    legacy: int  # legacy rows left (with check_only)


def rehash_keys(*, check_only: bool = False, batch: int = 500) -> RehashReport:
    """Move every legacy (plain SHA-256) row to the current pepper without knowing any
    secret: the new hash is HMAC(pepper, the stored SHA-256). Rows on an earlier pepper
    cannot be moved without the secret; they move on first use and are counted."""
    config = peppers()
    current = config.current
    upgraded, last_pk = 0, 0
    while not check_only:
        with transaction.atomic():
            rows = list(VirtualKey.objects.select_for_update().filter(hash_scheme=LEGACY_SCHEME, pk__gt=last_pk)
                        .order_by("pk").values_list("pk", "key_hash")[:batch])
            if not rows:
                break
            last_pk = rows[-1][0]
            for pk, stored in rows:
                try:
                    raw = bytes.fromhex(stored)
                except ValueError:
                    raw = b""
                if len(raw) != 32:  # not a SHA-256: no secret can match it anyway
                    log.warning("virtual key %s: its legacy hash is not a SHA-256; left as it is", pk)
                    continue
                upgraded += VirtualKey.objects.filter(pk=pk, key_hash=stored, hash_scheme=LEGACY_SCHEME).update(
                    key_hash=current.hash(raw), hash_scheme=current.scheme
                )
    counts = dict(VirtualKey.objects.order_by().values_list("hash_scheme").annotate(n=Count("pk"))
                  .values_list("hash_scheme", "n"))
    previous = {p.source: counts.pop(p.scheme) for p in config.previous if p.scheme in counts}
    legacy = counts.pop(LEGACY_SCHEME, 0)
    on_current = counts.pop(current.scheme, 0)
    if upgraded:
        key_cache.clear()
        old_schemes.invalidate()
    return RehashReport(upgraded=upgraded, current=on_current, previous=previous, unknown=counts, legacy=legacy)


def key_lineage(key_id: int) -> list[int]:
    """The key and every key it replaced (rotation), newest first."""
    ids, frontier = [key_id], [key_id]
    while frontier:
        frontier = list(VirtualKey.objects.filter(replaced_by_id__in=frontier).values_list("id", flat=True))
        ids.extend(i for i in frontier if i not in ids)
    return ids
