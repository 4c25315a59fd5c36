"""The per-deployment secret ("pepper") virtual keys are hashed with (docs/security/keys.md).

A stored key hash is HMAC-SHA256(pepper, SHA-256(secret)), hex. Hashing the SHA-256
of the secret rather than the secret itself is what lets `manage.py rehash_keys`
upgrade every row still holding the legacy hash (plain SHA-256, before the pepper)
without knowing any secret; the hot path computes the SHA-256 anyway.

Each row says how its hash was made (VirtualKey.hash_scheme):
- `sha256`: the legacy hash (rows from before this release, and rows the previous
  release inserts during a rolling upgrade: the column's database default);
- `hmac-sha256:<fingerprint>`: peppered, with the pepper whose fingerprint that is
  (HMAC-SHA256(pepper, "llm-gateway key pepper fingerprint"), first 16 hex digits:
  it names the pepper without revealing it).

Where the peppers come from (settings):
- GATEWAY_KEY_PEPPER: the current pepper (new keys, and every row upgraded on use);
- GATEWAY_KEY_PEPPER_PREVIOUS: comma-separated earlier peppers, still accepted (a
  row hashed with one is upgraded to the current pepper on its first use);
- without GATEWAY_KEY_PEPPER the pepper is derived from SECRET_KEY (so the embedded
  default needs no configuration) and `manage.py check --deploy` warns; peppers
  derived from SECRET_KEY and from each of SECRET_KEY_FALLBACKS are always accepted
  as previous ones, so setting GATEWAY_KEY_PEPPER later (or rotating SECRET_KEY with
  Django's SECRET_KEY_FALLBACKS) keeps every key working.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from dataclasses import dataclass, field

from django.conf import settings
from django.core import checks
from django.core.signals import setting_changed

log = logging.getLogger("gateway.keys")

LEGACY_SCHEME = "sha256"
SCHEME_PREFIX = "hmac-sha256:"
MIN_PEPPER_CHARS = 32
_BLOCK = 64  # SHA-256's block size (HMAC pads the key to it)
_FINGERPRINT_MESSAGE = b"llm-gateway key pepper fingerprint"
_DERIVE_MESSAGE = b"llm-gateway virtual-key pepper v1"
_SETTINGS = {"GATEWAY_KEY_PEPPER", "GATEWAY_KEY_PEPPER_PREVIOUS", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "DEBUG",
             "DATABASES"}


@dataclass(frozen=True, slots=True)
class Pepper:
    secret: bytes = field(default=b"", repr=False)  # never in a repr, a log line or a traceback
    scheme: str = ""
    source: str = ""  # where it came from, for messages (never the value)
    # HMAC's keyed inner and outer SHA-256 states, computed once: hashing a key then
    # costs two copies and two small updates (~3 µs) instead of OpenSSL's one-shot HMAC,
    # whose per-call setup costs twice that (docs/security/keys.md, the figures).
    _inner: object = field(default=None, repr=False, compare=False)
    _outer: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = self.secret if len(self.secret) <= _BLOCK else hashlib.sha256(self.secret).digest()
        key = key.ljust(_BLOCK, b"\0")
        object.__setattr__(self, "_inner", hashlib.sha256(bytes(b ^ 0x36 for b in key)))
        object.__setattr__(self, "_outer", hashlib.sha256(bytes(b ^ 0x5C for b in key)))

    @classmethod
    def of(cls, secret: bytes, source: str) -> Pepper:
        fingerprint = hmac.new(secret, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:16]
        return cls(secret, SCHEME_PREFIX + fingerprint, source)

    def hash(self, sha256_digest: bytes) -> str:
        """The stored hash of a secret whose SHA-256 (raw bytes) is given:
        HMAC-SHA256(pepper, digest) in hex (RFC 2104, as hmac.new computes it)."""
        inner = self._inner.copy()
        inner.update(sha256_digest)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


@dataclass(frozen=True, slots=True)
class Peppers:
    current: Pepper
    previous: tuple[Pepper, ...]  # accepted, upgraded on use; never the current one
    derived: bool  # no GATEWAY_KEY_PEPPER: the current pepper comes from SECRET_KEY

    def by_scheme(self, scheme: str) -> Pepper | None:
        if scheme == self.current.scheme:
            return self.current
        return next((p for p in self.previous if p.scheme == scheme), None)


def derived_pepper(secret_key: str, source: str) -> Pepper:
    return Pepper.of(hmac.digest(secret_key.encode(), _DERIVE_MESSAGE, "sha256"), source)


def _configured() -> Peppers:
    explicit = (getattr(settings, "GATEWAY_KEY_PEPPER", "") or "").strip()
    previous_values = getattr(settings, "GATEWAY_KEY_PEPPER_PREVIOUS", []) or []
    if isinstance(previous_values, str):
        previous_values = previous_values.split(",")
    derived = [derived_pepper(settings.SECRET_KEY, "derived from SECRET_KEY")]
    derived += [derived_pepper(old, f"derived from SECRET_KEY_FALLBACKS[{i}]")
                for i, old in enumerate(getattr(settings, "SECRET_KEY_FALLBACKS", []) or [])]
    if explicit:
        current = Pepper.of(explicit.encode(), "GATEWAY_KEY_PEPPER")
        candidates = [Pepper.of(v.strip().encode(), f"GATEWAY_KEY_PEPPER_PREVIOUS[{i}]")
                      for i, v in enumerate(previous_values) if v.strip()] + derived
    else:
        current, candidates = derived[0], [Pepper.of(v.strip().encode(), f"GATEWAY_KEY_PEPPER_PREVIOUS[{i}]")
                                           for i, v in enumerate(previous_values) if v.strip()] + derived[1:]
    previous, seen = [], {current.scheme}
    for pepper in candidates:
        if pepper.scheme not in seen:
            seen.add(pepper.scheme)
            previous.append(pepper)
    return Peppers(current, tuple(previous), derived=not explicit)


_lock = threading.Lock()
_peppers: Peppers | None = None
_warned = False


def peppers() -> Peppers:
    """The configured peppers (computed once; tests' setting changes reset them)."""
    global _peppers, _warned
    value = _peppers
    if value is None:
        with _lock:
            value = _peppers = _configured()
        if value.derived and _server_database() and not _warned:
            _warned = True
            log.warning("GATEWAY_KEY_PEPPER is not set: virtual keys are hashed with a pepper derived from "
                        "SECRET_KEY (rotating SECRET_KEY without SECRET_KEY_FALLBACKS would invalidate every key). "
                        "Set GATEWAY_KEY_PEPPER; see docs/security/keys.md.")
    return value


def reset_peppers(**_kwargs) -> None:
    global _peppers
    with _lock:
        _peppers = None


def _on_setting_changed(setting: str, **kwargs) -> None:
    if setting in _SETTINGS:
        reset_peppers()


setting_changed.connect(_on_setting_changed)


def _server_database() -> bool:
    """A database server (where SECRET_KEY must be set): the embedded SQLite default logs nothing."""
    return settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3"


@checks.register(checks.Tags.security, deploy=True)
def check_key_pepper(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """`manage.py check --deploy`: the pepper is set, long enough, and not reused."""
    messages: list[checks.CheckMessage] = []
    explicit = (getattr(settings, "GATEWAY_KEY_PEPPER", "") or "").strip()
    if not explicit:
        messages.append(checks.Warning(
            "GATEWAY_KEY_PEPPER is not set: virtual keys are hashed with a pepper derived from SECRET_KEY. "
            "Rotating SECRET_KEY without listing the old one in SECRET_KEY_FALLBACKS would then make every "
            "virtual key invalid, and anyone holding SECRET_KEY and a database dump can check guessed keys.",
            hint="Set GATEWAY_KEY_PEPPER to a random value of at least 32 characters (e.g. the output of "
                 "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`), kept apart from the database; "
                 "existing keys keep working (they move to the new pepper on first use) and "
                 "`manage.py rehash_keys` reports what is left. See docs/security/keys.md.",
            id="billing.W001",
        ))
    elif len(explicit) < MIN_PEPPER_CHARS:
        messages.append(checks.Warning(
            f"GATEWAY_KEY_PEPPER has fewer than {MIN_PEPPER_CHARS} characters.",
            hint="Use a random value of at least 32 characters (docs/security/keys.md).",
            id="billing.W002",
        ))
    previous = getattr(settings, "GATEWAY_KEY_PEPPER_PREVIOUS", []) or []
    if isinstance(previous, str):
        previous = previous.split(",")
    if explicit and explicit in [v.strip() for v in previous]:
        messages.append(checks.Warning(
            "GATEWAY_KEY_PEPPER also appears in GATEWAY_KEY_PEPPER_PREVIOUS.",
            hint="List only earlier peppers there.",
            id="billing.W003",
        ))
    return messages
