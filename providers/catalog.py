"""Immutable snapshots of providers and models, as the hot path and adapters see them.

Built from the database in one pass (see `load_models`) and cached in process by the
routing catalog; adapters receive a `ModelInfo` and never touch the ORM.

Secrets are resolved here, as the snapshot is built (in a worker thread, at each
catalogue refresh), never per request: a provider's key and its secret headers may be
references (env:, file:, a registered backend: providers.secret_refs). A reference that
cannot be read, or a stored key no configured encryption key decrypts, leaves the
provider without that secret and says why in `api_key_error`: its requests fail as a
provider failure (the route's next target is tried), the rest of the catalogue loads.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import DatabaseError

from .kinds import KINDS, KindSpec
from .models import Model, Provider
from .prices import apply_due_prices
from .secret_keys import UndecryptableSecret
from .secret_refs import Resolved, is_reference, resolve_safely
from .secrets import is_secret_header, remember
from .types import Price

log = logging.getLogger("gateway.catalog")


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    id: int
    name: str
    kind: str
    spec: KindSpec
    base_url: str
    api_key: str | None  # resolved secret; repr-hidden below
    api_key_ref: str | None  # the reference ("env:VAR", "file:/path", "vault:...") when the key is one
    timeout_s: float
    options: dict[str, Any]  # secret header references resolved
    api_key_error: str | None = None  # why there is no key although one is configured (never a secret)

    def __post_init__(self) -> None:
        # Every key this process holds is scrubbed by value from upstream error texts
        # and log records (providers/secrets.py): registered as it is loaded.
        remember(self.api_key)
        for name, value in (self.options.get("headers") or {}).items():
            if is_secret_header(name) and isinstance(value, str):
                remember(value)

    def __repr__(self) -> str:  # never print the secret
        return f"ProviderInfo({self.name!r}, kind={self.kind!r})"


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: int
    name: str
    upstream_id: str
    provider: ProviderInfo
    price: Price
    context_window: int | None
    quality: int = 50
    capabilities: frozenset[str] = frozenset(("chat", "streaming", "tools", "vision", "json_mode"))
    # No price (input and output 0) on a kind that is not free: still served, and its
    # usage records are marked "unpriced" (docs/prices.md), never silently $0.
    unpriced: bool = False

    def can(self, *needs: str) -> bool:
        return self.capabilities.issuperset(needs)

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.name}"


def resolve_api_key(stored: str) -> tuple[str | None, str | None]:
    """Return (secret, reference) for a stored key value (None when it cannot be read)."""
    resolved = resolve_safely(stored)
    return resolved.value, resolved.ref


def _resolve_stored_key(stored: str) -> Resolved:
    if isinstance(stored, UndecryptableSecret):
        return Resolved(None, None, f"the stored key cannot be decrypted: {stored.reason} (docs/security/secrets.md)")
    return resolve_safely(stored)


def _resolve_headers(options: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Options with header values that are references resolved; the problems. A header
    whose reference cannot be read is left out."""
    headers = options.get("headers")
    if not isinstance(headers, dict) or not any(isinstance(v, str) and is_reference(v) for v in headers.values()):
        return options, []
    out, problems = {}, []
    for name, value in headers.items():
        if isinstance(value, str) and is_reference(value):
            resolved = resolve_safely(value)
            if resolved.value is None:
                problems.append(f"header {name}: {resolved.error}")
                continue
            value = resolved.value
        out[name] = value
    return {**options, "headers": out}, problems


_reported: dict[int, str] = {}
_reported_lock = threading.Lock()


def _report(provider: Provider, problem: str | None) -> None:
    """Log a provider's secret problem once (not at every refresh), and its recovery."""
    with _reported_lock:
        before = _reported.get(provider.id)
        if before == problem:
            return
        if problem is None:
            _reported.pop(provider.id, None)
        else:
            _reported[provider.id] = problem
    if problem is not None:
        log.error("provider %s: %s; its requests fail until this is fixed", provider.name, problem)
    elif before is not None:
        log.info("provider %s: its secrets are readable again", provider.name)


def provider_info(provider: Provider) -> ProviderInfo:
    """The adapter's view of a provider (model lists: discovery in the admin).
    Resolves its secrets: call off the event loop."""
    spec = KINDS[provider.kind]
    key = _resolve_stored_key(provider.api_key)
    options, problems = _resolve_headers(dict(provider.options or {}))
    error = "; ".join(filter(None, [key.error, *problems])) or None
    _report(provider, error)
    return ProviderInfo(
        id=provider.id,
        name=provider.name,
        kind=provider.kind,
        spec=spec,
        base_url=provider.effective_base_url,
        api_key=key.value,
        api_key_ref=key.ref,
        timeout_s=float(provider.timeout_s),
        options=options,
        api_key_error=error,
    )


def model_info(model: Model, providers: dict[int, ProviderInfo] | None = None) -> ModelInfo:
    """`providers`: ProviderInfos already built in this load (secrets resolved once per provider)."""
    if providers is None:
        pinfo = provider_info(model.provider)
    elif (pinfo := providers.get(model.provider_id)) is None:
        pinfo = providers[model.provider_id] = provider_info(model.provider)
    spec = pinfo.spec
    price = Price(model.input_price_per_mtok, model.output_price_per_mtok,
                  model.cache_read_price_per_mtok, model.cache_write_price_per_mtok)
    if spec.free:
        price = Price(price.input_per_mtok * 0, price.output_per_mtok * 0, Decimal(0), Decimal(0))
    return ModelInfo(
        id=model.id,
        name=model.name,
        upstream_id=model.effective_upstream_id,
        provider=pinfo,
        price=price,
        context_window=model.context_window,
        quality=model.quality_score,
        capabilities=frozenset(model.capabilities if isinstance(model.capabilities, list) else ()),
        unpriced=not spec.free and not price.input_per_mtok and not price.output_per_mtok,
    )


def load_models() -> dict[int, ModelInfo]:
    """All enabled models of enabled providers (with a known kind), by id. Sync (ORM).

    First applies the scheduled prices whose date has come (providers.prices): each
    reload bills them from then on. If that write fails the models load as they are
    (the prices apply at a later reload)."""
    try:
        apply_due_prices()
    except DatabaseError:
        log.warning("scheduled prices not applied (database error); retried at the next reload", exc_info=True)
    qs = Model.objects.select_related("provider").filter(enabled=True, provider__enabled=True)
    providers: dict[int, ProviderInfo] = {}
    models = {m.id: model_info(m, providers) for m in qs if m.provider.kind in KINDS}
    from .adapters import ADAPTERS  # the adapters import this module

    for wire in {info.provider.spec.wire for info in models.values()}:
        ADAPTERS[wire].preload()  # here, off the event loop, before the first request needs it
    return models
