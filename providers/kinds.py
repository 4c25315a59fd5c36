"""Provider kinds as data: which wire format (adapter) each speaks and what differs.

Most providers speak the OpenAI dialect; they differ only by the values declared
here. Adding an OpenAI-compatible provider is one row, not a new adapter. Parameter
differences are `Param` rows (providers/params.py), laid over the wire
format's own table by the one generic mapper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .params import Param, drops, table


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: str
    label: str
    wire: str  # adapter name in providers.adapters.ADAPTERS
    default_base_url: str = ""
    needs_api_key: bool = True
    # How this kind differs from its wire format's parameter table: renames, defaults,
    # ranges, drops (parameters the provider rejects are dropped silently).
    params: tuple[Param, ...] = ()
    # Whether `stream_options.include_usage` is understood (usage in streams).
    stream_usage: bool = True
    # Models of this kind cost nothing (local inference); prices are ignored.
    free: bool = False
    # This kind's rows by name, derived from `params` once (what its adapter lays over
    # the wire format's own table, or uses alone for the OpenAI dialect).
    param_table: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "param_table", table(*self.params))


KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec("openai", "OpenAI (or any OpenAI-compatible API)", "openai", "https://api.openai.com/v1"),
        KindSpec("azure_openai_v1", "Azure OpenAI (v1 API)", "openai", ""),
        # The OpenAI dialect with another URL scheme, error shapes or auth header.
        KindSpec("azure_openai", "Azure OpenAI (classic deployments, api-version)", "azure_openai", ""),
        KindSpec("huggingface", "Hugging Face (TGI, Inference Endpoints, router)", "huggingface",
                 "https://router.huggingface.co/v1"),
        KindSpec("custom", "Custom OpenAI-compatible API (configurable auth header)", "custom", "",
                 needs_api_key=False),
        KindSpec("groq", "Groq", "openai", "https://api.groq.com/openai/v1",
                 params=drops("logprobs", "top_logprobs", "logit_bias")),
        KindSpec("mistral", "Mistral", "openai", "https://api.mistral.ai/v1",
                 params=drops("logit_bias", "user", "logprobs", "top_logprobs")),
        KindSpec("deepseek", "DeepSeek", "openai", "https://api.deepseek.com/v1"),
        KindSpec("together", "Together AI", "openai", "https://api.together.xyz/v1"),
        KindSpec("openrouter", "OpenRouter", "openai", "https://openrouter.ai/api/v1"),
        # Perplexity's chat completions: OpenAI's body minus what it rejects; its
        # temperature range is [0, 2) and it has no tools or logprobs.
        KindSpec("perplexity", "Perplexity (Sonar)", "openai", "https://api.perplexity.ai",
                 params=(*drops("logit_bias", "logprobs", "top_logprobs", "n", "seed", "user", "tools",
                                "tool_choice", "parallel_tool_calls"), Param("temperature", max=1.99))),
        KindSpec("xai", "xAI (Grok)", "openai", "https://api.x.ai/v1",
                 params=drops("logit_bias")),
        KindSpec("vllm", "vLLM server (self-hosted)", "openai", "http://127.0.0.1:8000/v1",
                 needs_api_key=False),
        KindSpec("anthropic", "Anthropic Messages API", "anthropic", "https://api.anthropic.com"),
        KindSpec("cohere", "Cohere (API v2: chat, embed)", "cohere", "https://api.cohere.com"),
        # Google's Gemini API and Vertex AI: the same bodies, another URL and auth.
        KindSpec("gemini", "Google Gemini API", "gemini", "https://generativelanguage.googleapis.com"),
        KindSpec("vertex_ai", "Google Vertex AI (Gemini; service-account credential)", "vertex_ai", ""),
        # AWS Bedrock Converse: SigV4-signed; the public endpoint is per region (options.region).
        KindSpec("bedrock", "AWS Bedrock (Converse API, SigV4)", "bedrock", "", needs_api_key=False),
        KindSpec("ollama", "Ollama (native /api/chat)", "ollama", "http://127.0.0.1:11434",
                 needs_api_key=False, free=True),
        # Replicate: predictions (create, wait/poll or stream, cancel); prompt-based inputs.
        KindSpec("replicate", "Replicate (predictions API)", "replicate", "https://api.replicate.com"),
        KindSpec("mock", "Mock -- demo and chaos testing only, zero cost", "mock", "",
                 needs_api_key=False, free=True),
    )
}


def kind_choices() -> list[tuple[str, str]]:
    return [(spec.kind, spec.label) for spec in KINDS.values()]
