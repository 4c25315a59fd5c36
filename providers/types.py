"""The boundary: internal types that adapters translate provider wire formats to and from.

Nothing outside an adapter sees provider JSON. Messages keep the OpenAI chat shape
(the gateway's public dialect), so the OpenAI-dialect adapters pass them through and
the others translate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from .secrets import scrub_secrets


class ErrorKind(StrEnum):
    """Why an upstream call failed; the routing engine decides on the kind alone."""

    RATE_LIMITED = "rate_limited"  # 429 / overloaded: retry later or elsewhere
    TIMEOUT = "timeout"  # connect/read timeout or the route's deadline
    UNAVAILABLE = "unavailable"  # 5xx, connection refused/reset
    BAD_RESPONSE = "bad_response"  # malformed JSON, truncated body or stream
    AUTH = "auth"  # the provider refused our credentials (401/403)
    NOT_FOUND = "not_found"  # the provider does not know the model/endpoint (404): a target misconfiguration
    BAD_REQUEST = "bad_request"  # the provider rejected the request itself (400/422)
    CONTEXT_LENGTH = "context_length"  # prompt + max_tokens exceed the model's window
    CONTENT_POLICY = "content_policy"  # refused by the provider's safety system


class ProviderError(Exception):
    """A failed upstream call, classified. Its message is scrubbed of every provider
    secret this process holds as it is made (providers.secrets), whoever builds it."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        message = scrub_secrets(message)
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"ProviderError({self.kind}, {self.message!r}, status={self.status})"


@dataclass(slots=True)
class ChatRequest:
    """A validated chat completion request in the gateway's (OpenAI) dialect.

    `params` holds the optional sampling/tooling parameters exactly as the client
    sent them (temperature, top_p, stop, tools, response_format, ...); adapters map
    or drop them per provider. `max_tokens` is normalised from either spelling.
    """

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    # The request as it came, when it came in another dialect than OpenAI chat:
    # {"dialect": "anthropic", "body": {...}, "headers": {...}}. An adapter of the same
    # dialect may send `body` as it is (passthrough: unknown fields, cache_control,
    # thinking); every other adapter translates `messages` and `params`. A stage that
    # rewrites the request (redaction) drops it, so nothing unredacted is passed on.
    native: dict[str, Any] | None = None
    # What the answer must be able to do, beyond plain chat ("tools", "vision",
    # "json_mode", "thinking"): a target whose model lacks one is not tried.
    needs: frozenset[str] = frozenset()


# The most tokens one request may report per side (prompt, completion). Far above any
# real context window, and what bounds a ledger row: tokens x the largest price a
# model may have (providers.models.MAX_PRICE_PER_MTOK) always fits the cost columns.
MAX_REPORTED_TOKENS = 10**9


def reported_tokens(value: Any, provider: str, name: str, *, optional: bool = False) -> int:
    """A token count as a provider reported it, or ProviderError(BAD_RESPONSE).

    Accepted: an int (or an integral float such as 12.0) in 0..MAX_REPORTED_TOKENS;
    with `optional`, a missing or null value counts as 0. Refused: negatives, 12.5,
    strings, booleans, null where a number is needed, anything above the bound. The
    one check every adapter uses, so a broken provider is a provider failure
    (fallback, breaker), never a gateway error or a row the ledger cannot hold.
    """
    if value is None and optional:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not int:  # bool is an int subclass: refused too
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: usage {name} is not a whole number")
    if not 0 <= value <= MAX_REPORTED_TOKENS:
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: usage {name} out of range (0..{MAX_REPORTED_TOKENS})")
    return value


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0  # every input token, prompt-cache reads and writes included
    completion_tokens: int = 0
    # True when the provider reported nothing (cut stream, client gone) and the
    # gateway counted the tokens itself.
    estimated: bool = False
    cache_read_tokens: int = 0  # of prompt_tokens: read from the provider's prompt cache
    cache_write_tokens: int = 0  # of prompt_tokens: written to it
    reasoning_tokens: int = 0  # of completion_tokens: the model's reasoning (thinking), billed as output

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def reported(cls, provider: str, prompt: Any, completion: Any) -> "Usage":
        """Usage from the values a provider reported (raw JSON values, or a sum of
        already checked parts): both sides go through `reported_tokens`. The one
        constructor every adapter uses for provider-reported usage."""
        return cls(reported_tokens(prompt, provider, "prompt tokens"), reported_tokens(completion, provider, "completion tokens"))


@dataclass(slots=True)
class ChatResponse:
    """A complete answer. `choices` are OpenAI-shaped: {index, message, finish_reason}."""

    model: str
    choices: list[dict[str, Any]]
    usage: Usage | None = None
    # The provider's own answer (JSON object) when the request was passed through in its
    # dialect (ChatRequest.native): the inbound endpoint of that dialect returns it as is.
    native: dict[str, Any] | None = None


@dataclass(slots=True)
class ChatChunk:
    """One streamed piece. `choices` are OpenAI-shaped: {index, delta, finish_reason}.

    A chunk may carry only `usage` (choices empty), as OpenAI's final usage chunk does.
    """

    model: str
    choices: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage | None = None
    # Passthrough streams: the provider's own event(s) this chunk was read from, as
    # (event name, JSON object) pairs, re-sent unmodified by the same dialect's endpoint.
    native: list[tuple[str, dict[str, Any]]] | None = None


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal
    # Prompt-cache prices (Anthropic: reads ~0.1x, writes ~1.25x input); None = input price.
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None

    def cost(self, usage: Usage) -> Decimal:
        million = Decimal(1_000_000)
        read = min(usage.cache_read_tokens, usage.prompt_tokens)
        write = min(usage.cache_write_tokens, usage.prompt_tokens - read)
        fresh = usage.prompt_tokens - read - write
        read_price = self.input_per_mtok if self.cache_read_per_mtok is None else self.cache_read_per_mtok
        write_price = self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        return (
            Decimal(fresh) * self.input_per_mtok
            + Decimal(read) * read_price
            + Decimal(write) * write_price
            + Decimal(usage.completion_tokens) * self.output_per_mtok
        ) / million


@dataclass(slots=True)
class EmbeddingRequest:
    """POST /v1/embeddings, validated: `input` is always a list (of strings, or of token
    id lists), `encoding_format` what the client asked for (the gateway asks providers
    for floats and encodes base64 itself)."""

    model: str
    input: list[Any]
    encoding_format: str = "float"
    dimensions: int | None = None
    params: dict[str, Any] = field(default_factory=dict)  # user, ... as sent


@dataclass(slots=True)
class EmbeddingResponse:
    model: str
    vectors: list[list[float]]
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class DiscoveredModel:
    """One model an upstream's own model list names (the admin's "discover models"):
    what an editor needs to add it with a click. `capabilities` uses
    providers.models.CAPABILITIES' names, and is empty when the API does not say."""

    upstream_id: str
    display_name: str = ""
    capabilities: frozenset[str] = frozenset()
    context_window: int | None = None
    max_output_tokens: int | None = None
