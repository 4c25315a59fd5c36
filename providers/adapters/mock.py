"""The built-in mock provider: deterministic text, no network, zero cost.

For the offline demo and for chaos testing only. Options (provider JSON):
latency_ms (before the first token), tokens_per_s (0 = instant), failure_rate (0..1,
fails with a simulated 503), reply (fixed text instead of the generated one),
dimensions (the size of its embeddings when the request names none; default 16).
Embeddings are unit vectors drawn from a hash of the model and the input: the same
text always gets the same vector.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
from collections.abc import AsyncIterator
from typing import Any

from ..catalog import ModelInfo, ProviderInfo
from ..tokens import message_text
from ..types import (
    ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, EmbeddingRequest, EmbeddingResponse, ErrorKind, ProviderError,
    Usage,
)
from .base import Adapter, float32_vector

WORDS = (
    "gateway route model token stream budget latency provider answer request cache "
    "fallback policy cost team key guard signal metric trace window prompt reply"
).split()


def mock_reply(model: ModelInfo, req: ChatRequest) -> str:
    fixed = model.provider.options.get("reply")
    if fixed:
        return str(fixed)
    last = next((message_text(m.get("content"), sep="") for m in reversed(req.messages) if m.get("role") == "user"), "")
    digest = hashlib.sha256(f"{model.upstream_id}|{last}".encode()).digest()
    words = [WORDS[b % len(WORDS)] for b in digest[:12]]
    return f"[mock {model.upstream_id}] " + " ".join(words) + "."


def mock_usage(req: ChatRequest, text: str) -> Usage:
    prompt = sum(len(message_text(m.get("content"), sep="").split()) + 3 for m in req.messages)
    # Through the same check as a real provider's counts (a huge fixed reply is bounded too).
    return Usage.reported("mock", prompt, len(text.split()))


DEFAULT_DIMENSIONS = 16


def mock_vector(model: ModelInfo, item: Any, dimensions: int) -> list[float]:
    """A unit vector drawn from a hash of the model and the input (text or token ids)."""
    seed = hashlib.sha256(f"{model.upstream_id}|{item!r}".encode()).digest()
    rng = random.Random(seed)
    values = [rng.gauss(0, 1) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return float32_vector([v / norm for v in values], "mock", "a mock embedding")


class MockAdapter(Adapter):
    name = "mock"
    serves_embeddings = True

    def check_config(self, spec, base_url: str, options: dict[str, Any]) -> dict[str, str]:
        rate = options.get("failure_rate", 0)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            return {"options": '"failure_rate" must be a number between 0 and 1.'}
        for opt in ("latency_ms", "tokens_per_s"):
            val = options.get(opt, 0)
            if isinstance(val, bool) or not isinstance(val, (int, float)) or val < 0:
                return {"options": f'"{opt}" must be a non-negative number.'}
        return {}

    async def _simulate(self, model: ModelInfo) -> None:
        opts = model.provider.options
        if random.random() < float(opts.get("failure_rate", 0)):
            raise ProviderError(ErrorKind.UNAVAILABLE, f"{model.provider.name}: simulated failure (mock)", status=503)
        await asyncio.sleep(float(opts.get("latency_ms", 0)) / 1000)

    async def embed(self, model: ModelInfo, req: EmbeddingRequest, timeout: float) -> EmbeddingResponse:
        await self._simulate(model)
        configured = int(model.provider.options.get("dimensions", DEFAULT_DIMENSIONS))
        dimensions = req.dimensions or max(1, min(configured, 4096))
        tokens = sum(len(item.split()) if isinstance(item, str) else len(item) for item in req.input)
        return EmbeddingResponse(
            model=model.upstream_id,
            vectors=[mock_vector(model, item, dimensions) for item in req.input],
            usage=Usage.reported("mock", tokens, 0),
        )

    async def _prepare(self, model: ModelInfo, req: ChatRequest) -> tuple[str, float, str]:
        await self._simulate(model)
        opts = model.provider.options
        text, finish = mock_reply(model, req), "stop"
        if req.max_tokens and len(text.split()) > req.max_tokens:
            text, finish = " ".join(text.split()[: req.max_tokens]), "length"
        rate = float(opts.get("tokens_per_s", 0))
        return text, (1 / rate if rate > 0 else 0.0), finish

    async def complete(self, model: ModelInfo, req: ChatRequest, timeout: float) -> ChatResponse:
        text, per_token, finish = await self._prepare(model, req)
        await asyncio.sleep(per_token * len(text.split()))
        message = {"role": "assistant", "content": text}
        return ChatResponse(
            model=model.upstream_id,
            choices=[{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            usage=mock_usage(req, text),
        )

    async def stream(self, model: ModelInfo, req: ChatRequest, timeout: float) -> AsyncIterator[ChatChunk]:
        text, per_token, finish = await self._prepare(model, req)
        name = model.upstream_id
        yield ChatChunk(name, [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        words = text.split(" ")
        for i, word in enumerate(words):
            if per_token:
                await asyncio.sleep(per_token)
            piece = word if i == 0 else " " + word
            yield ChatChunk(name, [{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
        yield ChatChunk(name, [{"index": 0, "delta": {}, "finish_reason": finish}])
        yield ChatChunk(name, [], usage=mock_usage(req, text))

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        """The mock's own models: the names in its `models` option (a list), else a
        chat model and an embeddings model. No network."""
        names = provider.options.get("models")
        if isinstance(names, list) and all(isinstance(n, str) and n for n in names):
            return [DiscoveredModel(upstream_id=n, display_name=n, capabilities=frozenset(("chat", "streaming")))
                    for n in names]
        chat = ("chat", "streaming", "tools", "vision", "json_mode")
        return [DiscoveredModel("mock-chat", "Mock chat", frozenset(chat), context_window=128_000),
                DiscoveredModel("mock-embed", "Mock embeddings", frozenset(("embeddings",)), context_window=8192)]
