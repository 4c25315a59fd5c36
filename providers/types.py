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
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # True when the provider reported nothing (cut stream, client gone) and the
    # gateway counted the tokens itself.
    estimated: bool = False

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


@dataclass(slots=True)
class ChatChunk:
    """One streamed piece. `choices` are OpenAI-shaped: {index, delta, finish_reason}.

    A chunk may carry only `usage` (choices empty), as OpenAI's final usage chunk does.
    """

    model: str
    choices: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input_per_mtok: Decimal
    output_per_mtok: Decimal

    def cost(self, usage: Usage) -> Decimal:
        million = Decimal(1_000_000)
        return (
            Decimal(usage.prompt_tokens) * self.input_per_mtok
            + Decimal(usage.completion_tokens) * self.output_per_mtok
        ) / million
