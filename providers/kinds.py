"""Provider kinds as data: which wire format (adapter) each speaks and what differs.

Most providers speak the OpenAI dialect; they differ only by the values declared
here. Adding an OpenAI-compatible provider is one row, not a new adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: str
    label: str
    wire: str  # adapter name in providers.adapters.ADAPTERS
    default_base_url: str = ""
    needs_api_key: bool = True
    # OpenAI parameters the provider rejects; the adapter drops them silently.
    unsupported_params: frozenset[str] = field(default_factory=frozenset)
    # Whether `stream_options.include_usage` is understood (usage in streams).
    stream_usage: bool = True
    # Models of this kind cost nothing (local inference); prices are ignored.
    free: bool = False


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec("openai", "OpenAI (or any OpenAI-compatible API)", "openai", "https://api.openai.com/v1"),
        KindSpec("azure_openai_v1", "Azure OpenAI (v1 API)", "openai", ""),
        KindSpec("groq", "Groq", "openai", "https://api.groq.com/openai/v1",
                 unsupported_params=frozenset({"logprobs", "top_logprobs", "logit_bias"})),
        KindSpec("mistral", "Mistral", "openai", "https://api.mistral.ai/v1",
                 unsupported_params=frozenset({"logit_bias", "user", "logprobs", "top_logprobs"})),
        KindSpec("deepseek", "DeepSeek", "openai", "https://api.deepseek.com/v1"),
        KindSpec("together", "Together AI", "openai", "https://api.together.xyz/v1"),
        KindSpec("openrouter", "OpenRouter", "openai", "https://openrouter.ai/api/v1"),
        KindSpec("vllm", "vLLM server (self-hosted)", "openai", "http://127.0.0.1:8000/v1",
                 needs_api_key=False),
        KindSpec("anthropic", "Anthropic Messages API", "anthropic", "https://api.anthropic.com"),
        KindSpec("ollama", "Ollama (native /api/chat)", "ollama", "http://127.0.0.1:11434",
                 needs_api_key=False, free=True),
        KindSpec("mock", "Mock -- demo and chaos testing only, zero cost", "mock", "",
                 needs_api_key=False, free=True),
    )
}


def kind_choices() -> list[tuple[str, str]]:
    return [(spec.kind, spec.label) for spec in KINDS.values()]
