"""A route's cache policy and the rules that decide whether a request is cacheable.

The rules are declared here, once, and documented in docs/caching.md: a request that
breaks one is answered normally with `x-gateway-cache: bypass` and the rule's name as
the reason (`x-gateway-cache-reason`), so nobody has to guess why a cache never hits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway_project.errors import InvalidRequest
from providers.types import ChatRequest

OFF, EXACT, SEMANTIC = "off", "exact", "semantic"

# Parameters that change nothing in the answer's content: left out of the cache key,
# and never a reason to bypass. Everything else the client sends is part of the key.
# (max_tokens / max_completion_tokens: keyed once, as the request's normalised max_tokens.)
NEUTRAL_PARAMS = frozenset({"stream", "stream_options", "user", "metadata", "store", "service_tier",
                            "max_tokens", "max_completion_tokens"})
TOOL_PARAMS = frozenset({"tools", "tool_choice", "functions", "function_call", "parallel_tool_calls"})


@dataclass(frozen=True, slots=True)
class CachePolicy:
    mode: str = OFF
    ttl_s: int = 3600
    scope: str = "team"
    threshold: float | None = None  # semantic: None = the measured default
    max_messages: int = 20
    only_deterministic: bool = True
    allow_tools: bool = False
    epoch: int = 0

    @property
    def on(self) -> bool:
        return self.mode != OFF


NO_CACHE = CachePolicy()


def uncacheable(policy: CachePolicy, req: ChatRequest, prompt_bytes: int, max_bytes: int) -> str | None:
    """Why this request may not be cached (a short reason), or None when it may.

    - `temperature`: with only_deterministic, temperature must be sent and be 0
      (a provider's default temperature samples);
    - `n`: more than one choice asked for;
    - `tools`: tools or functions are offered, unless the route allows them;
    - `messages`: the conversation is longer than max_messages;
    - `size`: the prompt is larger than GATEWAY_CACHE_MAX_PROMPT_BYTES.
    """
    params = req.params
    if policy.only_deterministic and not _zero(params.get("temperature")):
        return "temperature"
    if params.get("n") not in (None, 1):
        return "n"
    if not policy.allow_tools and any(params.get(p) for p in TOOL_PARAMS if p != "parallel_tool_calls"):
        return "tools"
    if len(req.messages) > policy.max_messages:
        return "messages"
    if prompt_bytes > max_bytes:
        return "size"
    return None


def _zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


CONTROLS = ("bypass", "refresh")


def cache_control(header: str | None) -> str | None:
    """The client's `x-gateway-cache` request header: bypass, refresh, or absent."""
    if header is None or not header.strip():
        return None
    value = header.strip().lower()
    if value not in CONTROLS:
        raise InvalidRequest(
            f"x-gateway-cache must be 'bypass' (skip the cache) or 'refresh' (skip the lookup, store the answer), "
            f"not {header.strip()[:40]!r}.",
            param="x-gateway-cache", code="invalid_cache_control",
        )
    return value
