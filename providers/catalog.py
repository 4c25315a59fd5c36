"""Immutable snapshots of providers and models, as the hot path and adapters see them.

Built from the database in one pass (see `load_models`) and cached in process by the
routing catalog; adapters receive a `ModelInfo` and never touch the ORM.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import DatabaseError

from .kinds import KINDS, KindSpec
from .models import ENV_REF, Model, Provider
from .prices import apply_due_prices
from .secrets import remember
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
    api_key_ref: str | None  # "env:VAR" when the key comes from the environment
    timeout_s: float
    options: dict[str, Any]

    def __post_init__(self) -> None:
        # Every key this process holds is scrubbed by value from upstream error texts
        # and log records (providers/secrets.py): registered as it is loaded.
        remember(self.api_key)

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
    """Return (secret, env reference) for a stored key value."""
    if not stored:
        return None, None
    match = ENV_REF.match(stored)
    if match:
        return os.environ.get(match.group(1)) or None, stored
    return stored, None


def provider_info(provider: Provider) -> ProviderInfo:
    """The adapter's view of a provider (model lists: discovery in the admin)."""
    spec = KINDS[provider.kind]
    secret, ref = resolve_api_key(provider.api_key)
    return ProviderInfo(
        id=provider.id,
        name=provider.name,
        kind=provider.kind,
        spec=spec,
        base_url=provider.effective_base_url,
        api_key=secret,
        api_key_ref=ref,
        timeout_s=float(provider.timeout_s),
        options=dict(provider.options or {}),
    )


def model_info(model: Model) -> ModelInfo:
    pinfo = provider_info(model.provider)
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
    models = {m.id: model_info(m) for m in qs if m.provider.kind in KINDS}
    from .adapters import ADAPTERS  # the adapters import this module

    for wire in {info.provider.spec.wire for info in models.values()}:
        ADAPTERS[wire].preload()  # here, off the event loop, before the first request needs it
    return models
