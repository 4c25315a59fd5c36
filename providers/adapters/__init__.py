"""Adapter registry: one adapter per wire format, looked up by a kind's `wire`."""

from __future__ import annotations

from ..catalog import ModelInfo
from .anthropic import AnthropicAdapter
from .base import Adapter
from .mock import MockAdapter
from .ollama import OllamaAdapter
from .openai import OpenAIAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter for adapter in (OpenAIAdapter(), AnthropicAdapter(), OllamaAdapter(), MockAdapter())
}


def adapter_for(model: ModelInfo) -> Adapter:
    return ADAPTERS[model.provider.spec.wire]


__all__ = ["ADAPTERS", "Adapter", "adapter_for"]
