"""Adapter registry: one adapter per wire format, looked up by a kind's `wire`."""

from __future__ import annotations

from ..catalog import ModelInfo
from .anthropic import AnthropicAdapter
from .azure import AzureOpenAIAdapter
from .base import Adapter
from .bedrock import BedrockAdapter
from .cohere import CohereAdapter
from .custom import CustomAdapter
from .gemini import GeminiAdapter
from .huggingface import HuggingFaceAdapter
from .mock import MockAdapter
from .ollama import OllamaAdapter
from .openai import OpenAIAdapter
from .replicate import ReplicateAdapter
from .vertex import VertexAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        OpenAIAdapter(), AzureOpenAIAdapter(), HuggingFaceAdapter(), CustomAdapter(),  # the OpenAI dialect
        AnthropicAdapter(), GeminiAdapter(), VertexAdapter(), CohereAdapter(), BedrockAdapter(),
        ReplicateAdapter(), OllamaAdapter(), MockAdapter(),
    )
}


def adapter_for(model: ModelInfo) -> Adapter:
    return ADAPTERS[model.provider.spec.wire]


__all__ = ["ADAPTERS", "Adapter", "adapter_for"]
