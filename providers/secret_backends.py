"""Pluggable secret stores: `<scheme>:<reference>` in a provider's key (or a secret
header) is read from the backend registered for <scheme> (docs/security/secrets.md).

Registering a backend:

    GATEWAY_SECRET_BACKENDS = {"vault": "providers.secret_backends.VaultKV2Backend"}
    # or with constructor arguments:
    GATEWAY_SECRET_BACKENDS = {"vault": {"class": "providers.secret_backends.VaultKV2Backend",
                                         "mount": "kv", "ttl_s": 60}}

(the environment variable GATEWAY_SECRET_BACKENDS takes `vault=dotted.path.Class,...`).

Writing one: subclass `SecretBackend`, implement `get(reference) -> str` (synchronous:
it runs off the event loop, when the routing catalogue is loaded or refreshed and when
a provider is saved; never per request). Raise `SecretNotFound` when the store says the
secret does not exist and `SecretBackendError` for anything else (refused, unreachable);
their messages are shown to operators, so they name the reference, never a value.

Caching, by (scheme, reference), in each process:

* a value is reused for the backend's `ttl_s` (default GATEWAY_SECRET_TTL_S, 300 s),
  so a rotation in the store reaches the gateway within that time;
* when a refresh fails with `SecretBackendError` (store down, token expired) the last
  good value keeps being used and the failure is logged, retried after
  `retry_s` (30 s) rather than at every catalogue refresh;
* `SecretNotFound` (the secret was deleted) drops the cached value at once: the
  provider fails, it does not keep a secret the store no longer has;
* every value read is registered with providers.secrets for scrubbing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.utils.module_loading import import_string

from .secrets import remember, scrub_secrets

log = logging.getLogger("gateway.secrets")


class SecretBackendError(Exception):
    """The backend could not return the secret (refused, unreachable, malformed).
    The message names the reference, never a secret."""


class SecretNotFound(SecretBackendError):
    """The store has no such secret (or no such field in it)."""


class SecretBackend:
    """A store of secrets addressed as `<scheme>:<reference>`."""

    scheme: str = ""
    ttl_s: float | None = None  # None: settings.GATEWAY_SECRET_TTL_S
    retry_s: float = 30.0  # after a failed refresh, the stale value is served this long before retrying

    def get(self, reference: str) -> str:
        """The secret at `reference` (the text after "<scheme>:"). Synchronous."""
        raise NotImplementedError

    def check_reference(self, reference: str) -> str | None:
        """A problem with the reference's syntax (shown on save), or None."""
        return None if reference else "the reference is empty"


class VaultKV2Backend(SecretBackend):
    """HashiCorp Vault's key/value engine, version 2, over its HTTP API.

    Reference: `vault:<path>#<field>`, read as GET {VAULT_ADDR}/v1/{mount}/data/{path}
    and the response's data.data[field]. Without `#field` the secret must have exactly
    one field. The token is VAULT_TOKEN, else the contents of VAULT_TOKEN_FILE (read at
    each request: a Vault Agent or Kubernetes projected token can rotate it);
    VAULT_NAMESPACE is sent when set (Vault Enterprise / HCP). Arguments override the
    environment: url, mount (VAULT_KV_MOUNT, default "secret"), token, token_file,
    namespace, timeout_s (5), ttl_s, ca_file (VAULT_CACERT).
    """

    scheme = "vault"

    def __init__(self, *, url: str | None = None, mount: str | None = None, token: str | None = None,
                 token_file: str | None = None, namespace: str | None = None, timeout_s: float = 5.0,
                 ttl_s: float | None = None, ca_file: str | None = None) -> None:
        # Unset arguments are read from the environment at each request (as Vault's CLI does).
        self._url, self._mount, self._token, self._token_file = url, mount, token, token_file
        self._namespace, self._ca_file = namespace, ca_file
        self.timeout_s = float(timeout_s)
        self.ttl_s = ttl_s

    @property
    def url(self) -> str:
        return (self._url or os.environ.get("VAULT_ADDR") or "").rstrip("/")

    @property
    def mount(self) -> str:
        return (self._mount or os.environ.get("VAULT_KV_MOUNT") or "secret").strip("/")

    @property
    def token_file(self) -> str:
        return self._token_file or os.environ.get("VAULT_TOKEN_FILE") or ""

    @property
    def namespace(self) -> str:
        return self._namespace or os.environ.get("VAULT_NAMESPACE") or ""

    @property
    def ca_file(self) -> str:
        return self._ca_file or os.environ.get("VAULT_CACERT") or ""

    def check_reference(self, reference: str) -> str | None:
        path, _, field = reference.partition("#")
        if not path.strip("/"):
            return "a Vault reference looks like vault:<path>#<field>, e.g. vault:gateway/openai#api_key"
        if ".." in path.split("/"):
            return "a Vault path cannot contain '..'"
        return None

    def token(self) -> str:
        token = self._token or os.environ.get("VAULT_TOKEN", "")
        if not token and self.token_file:
            try:
                with open(self.token_file, encoding="utf-8") as fh:
                    token = fh.read().strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise SecretBackendError(f"vault: cannot read the token file {self.token_file} "
                                         f"({getattr(exc, 'strerror', None) or type(exc).__name__})") from None
        if not token:
            raise SecretBackendError("vault: no token (set VAULT_TOKEN or VAULT_TOKEN_FILE)")
        remember(token)
        return token

    def get(self, reference: str) -> str:
        import httpx  # loaded when a Vault reference is first read

        if not self.url:
            raise SecretBackendError("vault: VAULT_ADDR is not set")
        path, _, field = reference.partition("#")
        path = path.strip("/")
        where = f"{self.mount}/{path}"
        headers = {"X-Vault-Token": self.token(), "Accept": "application/json"}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        url = f"{self.url}/v1/{quote(self.mount, safe='/')}/data/{quote(path, safe='/')}"
        try:
            response = httpx.get(url, headers=headers, timeout=self.timeout_s, verify=self.ca_file or True)
        except httpx.HTTPError as exc:
            raise SecretBackendError(f"vault: cannot reach {self.url} ({type(exc).__name__})") from None
        if response.status_code == 404:
            raise SecretNotFound(f"vault: no secret at {where}")
        if response.status_code == 403:
            raise SecretBackendError(f"vault: permission denied reading {where} (HTTP 403): the token is "
                                     f"invalid or expired, or its policy does not allow read on "
                                     f"{self.mount}/data/{path}")
        if response.status_code != 200:
            raise SecretBackendError(f"vault: HTTP {response.status_code} reading {where}{_vault_errors(response)}")
        try:
            data = response.json()["data"]["data"]
        except (ValueError, KeyError, TypeError):
            raise SecretBackendError(f"vault: unexpected answer reading {where} (not a KV version 2 secret? "
                                     f"check the mount, VAULT_KV_MOUNT={self.mount})") from None
        if not isinstance(data, dict):  # a deleted version answers data: null
            raise SecretNotFound(f"vault: the current version of {where} is deleted")
        if not field:
            if len(data) != 1:
                names = ", ".join(sorted(map(str, data))) or "none"
                raise SecretBackendError(f"vault: {where} has several fields ({names}): name one, "
                                         f"vault:{path}#<field>")
            field = next(iter(data))
        if field not in data:
            names = ", ".join(sorted(map(str, data))) or "none"
            raise SecretNotFound(f"vault: {where} has no field {field!r} (fields: {names})")
        value = data[field]
        if not isinstance(value, str):
            value = json.dumps(value)  # a service-account JSON stored as an object
        return value


def _vault_errors(response: Any) -> str:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return ""
    text = "; ".join(str(e) for e in errors)[:200]
    return f": {scrub_secrets(text)}" if text else ""


# --- the registry ---------------------------------------------------------------------

_registry: tuple[Any, dict[str, SecretBackend]] | None = None
_registry_lock = threading.Lock()


class SecretBackendConfigError(Exception):
    pass


def _build(scheme: str, spec: Any) -> SecretBackend:
    if isinstance(spec, str):
        path, kwargs = spec, {}
    elif isinstance(spec, dict) and isinstance(spec.get("class"), str):
        kwargs = {k: v for k, v in spec.items() if k != "class"}
        path = spec["class"]
    else:
        raise SecretBackendConfigError(f"GATEWAY_SECRET_BACKENDS[{scheme!r}]: a dotted class path, or a mapping "
                                       "with 'class' and the constructor's arguments")
    try:
        cls = import_string(path)
        backend = cls(**kwargs)
    except Exception as exc:  # noqa: BLE001 - a configuration mistake, named
        raise SecretBackendConfigError(f"GATEWAY_SECRET_BACKENDS[{scheme!r}] = {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(backend, SecretBackend):
        raise SecretBackendConfigError(f"GATEWAY_SECRET_BACKENDS[{scheme!r}] = {path} is not a SecretBackend")
    backend.scheme = scheme
    return backend


def backends() -> dict[str, SecretBackend]:
    """The registered backends by scheme (built once per value of the setting)."""
    global _registry
    config = getattr(settings, "GATEWAY_SECRET_BACKENDS", {}) or {}
    cached = _registry
    if cached is not None and cached[0] == config:
        return cached[1]
    with _registry_lock:
        built = {str(scheme).lower(): _build(str(scheme).lower(), spec) for scheme, spec in config.items()}
        _registry = (dict(config), built)
        clear_cache()
        return built


# --- the cache ------------------------------------------------------------------------

class _Entry:
    __slots__ = ("value", "fetched_at", "failed_at", "error")

    def __init__(self) -> None:
        self.value: str | None = None
        self.fetched_at = 0.0
        self.failed_at = 0.0
        self.error = ""


_cache: dict[tuple[str, str], _Entry] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def _ttl(backend: SecretBackend) -> float:
    return float(backend.ttl_s if backend.ttl_s is not None else getattr(settings, "GATEWAY_SECRET_TTL_S", 300.0))


def fetch(backend: SecretBackend, reference: str) -> str:
    """The secret, from the cache while fresh (see the module docstring). Raises
    SecretBackendError when there is no usable value."""
    key = (backend.scheme, reference)
    with _cache_lock:
        entry = _cache.setdefault(key, _Entry())
    now = time.monotonic()
    if entry.value is not None and now - entry.fetched_at < _ttl(backend):
        return entry.value
    if entry.failed_at and now - entry.failed_at < backend.retry_s:
        if entry.value is not None:
            return entry.value
        raise SecretBackendError(entry.error)
    try:
        value = backend.get(reference)
    except SecretNotFound as exc:
        entry.value, entry.failed_at, entry.error = None, now, str(exc)
        raise
    except SecretBackendError as exc:
        entry.failed_at, entry.error = now, str(exc)
        if entry.value is None:
            raise
        log.warning("secret %s:%s not refreshed, the last value read is kept: %s", backend.scheme, reference, exc)
        return entry.value
    except Exception as exc:  # noqa: BLE001 - a backend's own bug: named, never a traceback with values
        entry.failed_at, entry.error = now, f"{backend.scheme}: {type(exc).__name__} reading {reference}"
        if entry.value is None:
            raise SecretBackendError(entry.error) from None
        log.warning("secret %s:%s not refreshed (%s), the last value read is kept", backend.scheme, reference,
                    type(exc).__name__)
        return entry.value
    if not isinstance(value, str) or not value:
        entry.failed_at, entry.error = now, f"{backend.scheme}: the secret at {reference} is empty"
        raise SecretBackendError(entry.error)
    remember(value)
    entry.value, entry.fetched_at, entry.failed_at, entry.error = value, now, 0.0, ""
    return value
