"""Cache keys: a hash of the route, the tenant scope and the normalised request.

Never the payload itself: a key is `gw:cache:v1:<route id>:<sha256 hex>`, the same for
requests that differ only in JSON formatting, key order, 0 written as 0.0, the spelling of `max_tokens`,
a text part list instead of a string, or surrounding whitespace in a message, and
different for anything that can change the answer (every message, every parameter
but the neutral ones in policy.NEUTRAL_PARAMS, the route and its purge epoch, the
tenant). The semantic cache uses a second digest, `context`, of everything but the
last user turn, so that its neighbours all share the same system prompt, earlier
turns and parameters.
"""

from __future__ import annotations

import hashlib
import json

import orjson
from dataclasses import dataclass
from typing import Any

from billing.keys import KeyInfo
from providers.types import ChatRequest

from .policy import NEUTRAL_PARAMS, CachePolicy

PREFIX = "gw:cache:v1:"


@dataclass(frozen=True, slots=True)
class CacheKeys:
    exact: str  # the value store's key
    namespace: str  # semantic neighbours: route, epoch, tenant and context digest
    question: str | None  # the last user turn's text, for the semantic index (None: not a text turn)
    prompt_bytes: int  # size of the normalised request (the size rule)


def tenant(policy: CachePolicy, key: KeyInfo) -> str:
    """Who shares answers. A team-scoped route falls back to the key for keys without a
    team (team-less keys of different owners must not share), and a call with no key
    at all (a staff test call) is its own tenant."""
    if policy.scope == "global":
        return "global"
    if policy.scope == "team" and key.team_id is not None:
        return f"team:{key.team_id}"
    return f"key:{key.id}" if key.id is not None else "staff"


def route_prefix(route_id: int) -> str:
    return f"{PREFIX}{route_id}:"


def cache_keys(route_id: int, policy: CachePolicy, key: KeyInfo, req: ChatRequest) -> CacheKeys:
    messages = [normal_message(m) for m in req.messages]
    params = {k: _number(v) for k, v in req.params.items() if k not in NEUTRAL_PARAMS and v is not None}
    head = {"model": req.model, "max_tokens": req.max_tokens, "params": params,
            "tenant": tenant(policy, key), "epoch": policy.epoch}
    body = _canonical({**head, "messages": messages})
    digest = hashlib.sha256(body).hexdigest()
    question = None
    last = messages[-1] if messages else None
    if last is not None and last.get("role") == "user" and isinstance(last.get("content"), str) and len(last) == 2:
        question = last["content"]
    context = hashlib.sha256(_canonical({**head, "messages": messages[:-1]})).hexdigest()[:32]
    return CacheKeys(
        exact=f"{route_prefix(route_id)}{digest}",
        namespace=f"{route_id}:{policy.epoch}:{head['tenant']}:{context}",
        question=question,
        prompt_bytes=len(body),
    )


def normal_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the key sees it: text parts joined into one string, text stripped
    of surrounding whitespace, empty optional fields dropped."""
    out = {k: v for k, v in message.items() if v not in (None, "", [], {})}
    content = message.get("content")
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        content = "".join(str(p.get("text") or "") for p in content)
    if isinstance(content, str):
        out["content"] = content.strip()
    elif content is not None:
        out["content"] = content
    return out


def _number(value: Any) -> Any:
    """0.0 and 0 (1.0 and 1) are the same parameter value."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number(v) for v in value]
    return value


def _canonical(value: Any) -> bytes:
    try:  # orjson: a third of json's time on the hit path; same compact, sorted, UTF-8 text
        return orjson.dumps(value, default=str, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an integer beyond 64 bits: json writes it as it is
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()
