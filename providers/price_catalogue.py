"""The price catalogue shipped with the gateway (providers/data/prices.json).

List prices per provider kind and upstream model id: input, output, prompt-cache read
and write prices (USD per million tokens), the context window, the capabilities, and
the date the provider's section was checked. It is read from the repository only —
never fetched at run time — and offered, never imposed: the admin fills a new model's
empty prices from it (showing the checked date), discovery adds models with it, and
`manage.py price_catalogue drift` compares configured prices with it. See docs/prices.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from .models import CAPABILITIES, MAX_PRICE_PER_MTOK, Provider

PATH = Path(__file__).resolve().parent / "data" / "prices.json"
ENTRY_FIELDS = ("input", "output", "cache_read", "cache_write", "context_window", "capabilities")
SECTION_FIELDS = ("checked", "source", "price_page")
# Dated snapshots share their alias's price: claude-haiku-4-5-20251001, gpt-4o-2024-08-06.
DATE_SUFFIX = re.compile(r"(-\d{8}|-\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    kind: str  # the section it was found in (azure_openai resolves to openai's rows)
    upstream_id: str
    input: Decimal
    output: Decimal
    cache_read: Decimal | None  # None: no separate price (the input price applies)
    cache_write: Decimal | None
    context_window: int | None
    capabilities: tuple[str, ...]
    checked: date
    source: str
    price_page: str

    def model_fields(self) -> dict[str, Any]:
        """The entry as providers.models.Model field values."""
        return {
            "input_price_per_mtok": self.input, "output_price_per_mtok": self.output,
            "cache_read_price_per_mtok": self.cache_read, "cache_write_price_per_mtok": self.cache_write,
            "context_window": self.context_window,
        }

    def summary(self) -> str:
        """E.g. "$2.50 in / $10.00 out per 1M, cache read $1.25, 128,000 tokens (catalogue, checked 2026-12-03)"."""
        parts = [f"${money(self.input)} in / ${money(self.output)} out per 1M"]
        if self.cache_read is not None:
            parts.append(f"cache read ${money(self.cache_read)}")
        if self.cache_write is not None:
            parts.append(f"cache write ${money(self.cache_write)}")
        if self.context_window:
            parts.append(f"{self.context_window:,} tokens")
        return ", ".join(parts) + f" (catalogue, checked {self.checked.isoformat()})"


def money(amount: Decimal) -> str:
    plain = amount.normalize()
    return f"{plain.quantize(Decimal('0.01')) if plain.as_tuple().exponent > -2 else plain:f}"


def load(path: Path = PATH) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def problems(data: dict[str, Any]) -> list[str]:
    """Everything wrong with a catalogue document, as sentences (empty: valid). The
    tests and `price_catalogue check` use it; the loader refuses an invalid file."""
    found: list[str] = []
    sections = data.get("providers")
    if not isinstance(sections, dict) or not sections:
        return ["'providers' must be an object of provider kinds"]
    for kind, section in sections.items():
        where = f"providers.{kind}"
        if not isinstance(section, dict):
            found.append(f"{where}: not an object")
            continue
        for name in SECTION_FIELDS:
            if not isinstance(section.get(name), str) or not section.get(name):
                found.append(f"{where}.{name}: missing")
        try:
            date.fromisoformat(section.get("checked") or "")
        except (TypeError, ValueError):
            found.append(f"{where}.checked: not a date (YYYY-MM-DD)")
        same = section.get("same_as")
        if same is not None:
            if same not in sections or "same_as" in sections.get(same, {}):
                found.append(f"{where}.same_as: '{same}' is not a section with models of its own")
            continue
        models = section.get("models")
        if not isinstance(models, dict) or not models:
            found.append(f"{where}.models: missing")
            continue
        for model_id, entry in models.items():
            found += _entry_problems(f"{where}.models.{model_id}", entry)
    return found


def _entry_problems(where: str, entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: not an object"]
    found = [f"{where}.{name}: missing" for name in ENTRY_FIELDS if name not in entry]
    found += [f"{where}.{name}: unknown field" for name in entry if name not in ENTRY_FIELDS]
    for name in ("input", "output", "cache_read", "cache_write"):
        value = entry.get(name)
        if value is None and name.startswith("cache"):
            continue
        try:
            price = Decimal(value) if isinstance(value, str) else None
        except InvalidOperation:
            price = None
        if price is None or not price.is_finite() or not 0 <= price <= MAX_PRICE_PER_MTOK:
            found.append(f"{where}.{name}: not a price (a string of 0..{MAX_PRICE_PER_MTOK} USD per 1M)")
    window = entry.get("context_window")
    if window is not None and (type(window) is not int or window <= 0):
        found.append(f"{where}.context_window: not a positive whole number")
    caps = entry.get("capabilities")
    if not isinstance(caps, list) or not caps or set(caps) - set(CAPABILITIES):
        found.append(f"{where}.capabilities: a list of {', '.join(CAPABILITIES)}")
    elif not {"chat", "embeddings"} & set(caps):
        found.append(f"{where}.capabilities: lists neither chat nor embeddings")
    return found


@cache
def _index() -> dict[str, dict[str, CatalogueEntry]]:
    data = load()
    if found := problems(data):
        raise ValueError(f"{PATH}: " + "; ".join(found[:5]))
    sections = data["providers"]
    index: dict[str, dict[str, CatalogueEntry]] = {}
    for kind, section in sections.items():
        own = sections[section.get("same_as", kind)]
        index[kind] = {
            model_id: _entry(section.get("same_as", kind), model_id, entry, own, section)
            for model_id, entry in own["models"].items()
        }
    return index


def _entry(kind: str, model_id: str, entry: dict, own: dict, section: dict) -> CatalogueEntry:
    optional = lambda v: None if v is None else Decimal(v)  # noqa: E731
    return CatalogueEntry(
        kind=kind, upstream_id=model_id, input=Decimal(entry["input"]), output=Decimal(entry["output"]),
        cache_read=optional(entry["cache_read"]), cache_write=optional(entry["cache_write"]),
        context_window=entry["context_window"], capabilities=tuple(entry["capabilities"]),
        checked=date.fromisoformat(section["checked"]), source=section["source"],
        price_page=section["price_page"],
    )


def kinds() -> list[str]:
    return list(_index())


def entries(kind: str) -> dict[str, CatalogueEntry]:
    """The catalogue's models for a provider kind (empty when it has none)."""
    return _index().get(kind, {})


def lookup(kind: str, upstream_id: str) -> CatalogueEntry | None:
    """The entry for a model of a provider kind: the exact upstream id, else its alias
    without a date suffix (a dated snapshot bills as its alias); None when unknown."""
    models = entries(kind)
    found = models.get(upstream_id)
    if found is None and DATE_SUFFIX.search(upstream_id):
        found = models.get(DATE_SUFFIX.sub("", upstream_id))
    return found


def entry_for(provider: Provider | None, upstream_id: str) -> CatalogueEntry | None:
    """The entry for a configured (or about to be) model of `provider`; None for a free
    kind (its prices are ignored) or an id the catalogue does not list."""
    if provider is None or not upstream_id or provider.spec is None or provider.spec.free:
        return None
    return lookup(provider.kind, upstream_id)
