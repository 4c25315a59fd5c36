"""Prices with an effective date: which of a model's price history rows is in effect,
applying rows whose date has come, scheduling new ones, and the unpriced models.

The model's own price fields always hold the price in effect (what every reader —
routing, export, reports, the admin list — sees); the history (ModelPrice) says since
when and what came before. A row dated in the future waits; `apply_due_prices` copies
it into the model once its date has come. The routing catalogue calls it each time it
reloads (providers.catalog.load_models, every GATEWAY_CONFIG_TTL_S), so a scheduled
price is billed from its date on, at most one refresh interval late.
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from django.db.models import F, Q
from django.utils import timezone

from .kinds import KINDS
from .models import PRICE_FIELDS, Model, ModelPrice, PriceSource

log = logging.getLogger("gateway.prices")


def due_prices(now: datetime | None = None) -> dict[int, ModelPrice]:
    """The newest history row of each model whose date has come but which is not yet
    in the model's fields (newer than its price_effective_from). One query; usually
    empty."""
    now = now or timezone.now()
    rows = (
        ModelPrice.objects.filter(effective_from__lte=now)
        .filter(Q(model__price_effective_from__isnull=True) | Q(effective_from__gt=F("model__price_effective_from")))
        .order_by("model_id", "effective_from", "id")
    )
    latest: dict[int, ModelPrice] = {}
    for row in rows:
        latest[row.model_id] = row  # ordered ascending: the last one per model wins
    return latest


def apply_due_prices(now: datetime | None = None, *, notify: bool = False) -> list[int]:
    """Copy each due row into its model (ids of the models changed). `notify` saves
    through Model.save (signals: the editing process's routing table is refreshed at
    once); without it a plain UPDATE, for the catalogue loader that is reading the
    models anyway. Idempotent: processes racing to apply the same row write the same
    values."""
    changed = []
    for model_id, row in due_prices(now).items():
        values = dict(zip(PRICE_FIELDS, row.prices()))
        Model.objects.filter(pk=model_id).update(price_effective_from=row.effective_from, **values)
        if notify:  # a save touching no price (no new history row) sends post_save
            Model.objects.get(pk=model_id).save(update_fields=["updated_at"])
        changed.append(model_id)
    if changed:
        log.info("scheduled prices took effect for %d model(s)", len(changed))
    return changed


def schedule_price(model: Model, effective_from: datetime, prices: dict[str, Decimal | None],
                   source: str = PriceSource.SCHEDULED) -> ModelPrice:
    """A new price for `model` from `effective_from` on (past or future); applied at
    once when its date has already come. `prices` by PRICE_FIELDS name; missing cache
    prices are blank (the input price)."""
    row = ModelPrice.objects.create(model=model, effective_from=effective_from, source=source,
                                    **{name: prices.get(name) for name in PRICE_FIELDS})
    if effective_from <= timezone.now():
        apply_due_prices(notify=True)
    return row


def upcoming_prices(model: Model) -> list[ModelPrice]:
    """Rows dated in the future, soonest first."""
    return list(model.price_history.filter(effective_from__gt=timezone.now()).order_by("effective_from", "id"))


def non_free_kinds() -> list[str]:
    return [kind for kind, spec in KINDS.items() if not spec.free]


def unpriced_models() -> list[tuple[str, str]]:
    """(provider name, model name) of every enabled model of an enabled provider whose
    input and output prices are both 0 on a kind that is not free. One query."""
    qs = (Model.objects.filter(enabled=True, provider__enabled=True, input_price_per_mtok=0, output_price_per_mtok=0,
                               provider__kind__in=non_free_kinds())
          .order_by("provider__name", "name").values_list("provider__name", "name"))
    return list(qs)
