"""Discovery: the models a provider's own API lists, ready to add with a click.

`discover` asks the provider's adapter (`Adapter.list_models`) from a sync admin view
— on the server's event loop under ASGI, else on a short-lived loop whose HTTP session
is closed — and pairs each listed model with what the gateway knows: the price
catalogue's entry for it and the models already configured with that upstream id.
`add_models` creates the chosen ones. A failure is a sentence for the editor (the
provider's error text arrives scrubbed of every key: providers.secrets), never a 500.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from asgiref.sync import async_to_sync
from django.db import transaction

from .adapters import ADAPTERS
from .catalog import provider_info
from .http import close_session, has_session
from .kinds import KINDS
from .models import CAPABILITIES, Model, PriceSource, Provider, default_capabilities
from .price_catalogue import CatalogueEntry, lookup
from .types import DiscoveredModel, ErrorKind, ProviderError

log = logging.getLogger("gateway.discovery")

# The longest an editor waits for a model list (the provider's own timeout, if shorter).
TIMEOUT_S = 20.0
ERROR_WORDS = {
    ErrorKind.AUTH: "refused the API key (check the provider's key)",
    ErrorKind.TIMEOUT: "did not answer in time",
    ErrorKind.UNAVAILABLE: "could not be reached or failed",
    ErrorKind.NOT_FOUND: "has no model list at this base URL (check the base URL)",
    ErrorKind.RATE_LIMITED: "is rate limiting us; try again in a minute",
}


@dataclass(frozen=True, slots=True)
class Candidate:
    """One listed model, with what adding it would create."""

    upstream_id: str
    display_name: str
    reported: frozenset[str]  # the capabilities the API reported (empty: it does not say)
    capabilities: tuple[str, ...]  # what the new model gets, in CAPABILITIES order
    capabilities_from: str  # "the API", "the catalogue" or "defaults"
    context_window: int | None
    entry: CatalogueEntry | None  # the price catalogue's row, when it has one
    configured_as: tuple[str, ...]  # this provider's models already sending this upstream id
    name: str  # the name a new model would get (valid and unused)


@dataclass(slots=True)
class Discovery:
    provider: Provider
    candidates: list[Candidate] = field(default_factory=list)
    error: str = ""  # for the editor; no secrets
    unsupported: bool = False  # the kind's API has no model list


def discover(provider: Provider) -> Discovery:
    """The provider's listed models (sorted by upstream id), or why there are none."""
    spec = KINDS.get(provider.kind)
    if spec is None:
        return Discovery(provider, error=f"Unknown provider kind '{provider.kind}'.")
    adapter = ADAPTERS[spec.wire]
    timeout = min(float(provider.timeout_s), TIMEOUT_S)
    try:
        listed = async_to_sync(_list_models)(adapter, provider_info(provider), timeout)
    except NotImplementedError:
        return Discovery(provider, unsupported=True,
                         error=f"{spec.label} offers no model list to discover: add its models by hand.")
    except ProviderError as exc:  # its message is scrubbed of every provider key this process holds
        what = ERROR_WORDS.get(exc.kind, "gave an answer the gateway cannot read")
        status = f" (HTTP {exc.status})" if exc.status else ""
        return Discovery(provider, error=f"{provider.name} {what}{status}: {exc.message}")
    except Exception:  # the editor gets a sentence; the traceback goes to the log
        log.exception("model discovery for provider %s failed unexpectedly", provider.name)
        return Discovery(provider, error="Discovery failed unexpectedly; the details are in the server log.")
    return Discovery(provider, candidates=candidates(provider, listed))


async def _list_models(adapter, info, timeout: float) -> list[DiscoveredModel]:
    short_lived = not has_session()
    try:
        return await adapter.list_models(info, timeout)
    finally:
        if short_lived:
            await close_session()


def candidates(provider: Provider, listed: list[DiscoveredModel]) -> list[Candidate]:
    serves_embeddings = ADAPTERS[provider.spec.wire].serves_embeddings
    configured: dict[str, list[str]] = {}
    for model in provider.models.all():
        configured.setdefault(model.effective_upstream_id, []).append(model.name)
    taken = {name for names in configured.values() for name in names}
    found, seen = [], set()
    for item in sorted(listed, key=lambda m: m.upstream_id):
        if item.upstream_id in seen:
            continue
        seen.add(item.upstream_id)
        entry = lookup(provider.kind, item.upstream_id)
        caps, source = _capabilities(item, entry, serves_embeddings)
        name = "" if item.upstream_id in configured else _free_name(item.upstream_id, taken)
        taken.add(name)
        found.append(Candidate(
            upstream_id=item.upstream_id, display_name=item.display_name, reported=item.capabilities,
            capabilities=caps, capabilities_from=source,
            context_window=item.context_window or (entry.context_window if entry else None),
            entry=entry, configured_as=tuple(configured.get(item.upstream_id, ())), name=name,
        ))
    return found


def _capabilities(item: DiscoveredModel, entry: CatalogueEntry | None,
                  serves_embeddings: bool) -> tuple[tuple[str, ...], str]:
    """The API's word first, then the catalogue's, then the defaults of a new model;
    embeddings only where the adapter can send them."""
    for chosen, source in ((item.capabilities, "the API"), (entry.capabilities if entry else (), "the catalogue"),
                           (default_capabilities(), "defaults")):
        caps = [c for c in CAPABILITIES if c in set(chosen) and (c != "embeddings" or serves_embeddings)]
        if {"chat", "embeddings"} & set(caps):
            return tuple(caps), source
    return tuple(default_capabilities()), "defaults"


def _free_name(upstream_id: str, taken: set[str]) -> str:
    """A valid model name from an upstream id ("openai/gpt-oss-120b" -> "openai-gpt-oss-120b"),
    unused in this provider."""
    base = re.sub(r"[^A-Za-z0-9._:-]+", "-", upstream_id).strip("-._:")[:190] or "model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def add_models(provider: Provider, chosen: list[Candidate]) -> list[Model]:
    """Create a model per chosen candidate (skipping those configured meanwhile):
    capabilities and context window as shown, prices from the catalogue when it has
    them (free kinds: none). One transaction."""
    created = []
    with transaction.atomic():
        existing = {m.effective_upstream_id for m in provider.models.all()}
        for c in chosen:
            if c.upstream_id in existing or not c.name:
                continue
            model = Model(provider=provider, name=c.name, upstream_id=c.upstream_id if c.upstream_id != c.name else "",
                          capabilities=list(c.capabilities), context_window=c.context_window)
            if c.entry is not None and not provider.spec.free:
                for attr, value in c.entry.model_fields().items():
                    if attr != "context_window" or model.context_window is None:
                        setattr(model, attr, value)
                model.price_source = PriceSource.CATALOGUE
            model.full_clean()
            model.save()
            created.append(model)
    return created
