"""Active health probes: one minimal request to a model, classified like any call."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .adapters import adapter_for
from .adapters.base import RequestNotTranslatable, scrub
from .catalog import ModelInfo
from .types import ChatRequest, EmbeddingRequest, ProviderError

PROBE_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class ProbeResult:
    model_id: int
    ok: bool
    latency_s: float
    error_kind: str = ""
    message: str = ""


async def probe(model: ModelInfo) -> ProbeResult:
    """Ask for one token (a chat model) or one embedding of one word (a model that serves
    embeddings only). Cheap on every provider, and exercises auth, routing to the model
    and the answer format end to end."""
    timeout = min(model.provider.timeout_s, PROBE_TIMEOUT_S)
    started = time.monotonic()
    try:
        if "chat" not in model.capabilities and "embeddings" in model.capabilities:
            await adapter_for(model).embed(model, EmbeddingRequest(model=model.name, input=["ping"]), timeout)
        else:
            req = ChatRequest(model=model.name, messages=[{"role": "user", "content": "ping"}], max_tokens=1,
                              params={"max_tokens": 1})
            await adapter_for(model).complete(model, req, timeout)
    except ProviderError as error:
        return ProbeResult(model.id, False, time.monotonic() - started, error.kind.value, scrub(error.message))
    except RequestNotTranslatable as error:  # nothing was sent: says nothing about the provider
        return ProbeResult(model.id, False, time.monotonic() - started, "not_translatable", scrub(error.message))
    except Exception as exc:  # noqa: BLE001 - a probe must report, never crash the sweep
        return ProbeResult(model.id, False, time.monotonic() - started, "bad_response", type(exc).__name__)
    return ProbeResult(model.id, True, time.monotonic() - started)
