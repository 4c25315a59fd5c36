"""The embeddings request path: the chat pipeline's frame around `engine.embed`.

    plan()   the request as routing and the stages see it (`as_chat_request`), the
             capability check (a route without an embedding model is the client's 400,
             before anything is reserved), then pipeline.plan: signals and the
             strategy's order among the route's embedding models.
    embed()  the stages that apply to embeddings, the engine (breakers, retries,
             fallback, exactly as chat), and settlement: one usage record
             (endpoint "embeddings"), the reservation settled at the actual cost.

Of the stages, admission (rate limits and the budget reservation, estimated from the
inputs' tokens) and the input half of guardrails apply: an embedded text leaves for a
provider like a prompt does, so PII redaction rewrites it (the vector is then the
redacted text's) and a blocking guardrail refuses it. Token-id inputs cannot be
checked, so they are refused (400) when an input guardrail applies to the request.
The chat-only stages (the answer cache, output guardrails: a vector has no text) are
left out; a new stage applies to embeddings only once it is named in
EMBEDDING_STAGES.
"""

from __future__ import annotations

import asyncio
import dataclasses

from billing.keys import KeyInfo
from billing.models import UsageRecord
from gateway_project.errors import GatewayError, InvalidRequest
from guardrails.policy import guardrail_table
from providers.tokens import estimate_tokens
from providers.types import ChatRequest, EmbeddingRequest, EmbeddingResponse, Usage

from . import engine, pipeline, stages
from .catalog import RouteInfo
from .pipeline import Call
from .stages import Blocked
from .stages.guard import JUDGE_PREFIX

Status = UsageRecord.Status
EMBEDDINGS = frozenset({"embeddings"})
EMBEDDING_STAGES = frozenset({"admission", "guardrails"})
GUARDRAILS = "guardrails"


def input_tokens(item: str | list[int]) -> int:
    """One input's size in tokens: estimated for a text (providers.tokens), exact for
    token ids."""
    return estimate_tokens(item) if isinstance(item, str) else len(item)


def as_chat_request(req: EmbeddingRequest) -> ChatRequest:
    """The request as the routing decision and the stages read it: one user message per
    input, no answer (max_tokens 0: the reservation is the inputs' tokens at the input
    price), needing "embeddings". A token-id input has no text; a blank text of the
    same estimated size (4 characters a token) stands in for it, so every estimate
    (admission, the cost strategy, `prompt_tokens` rules) counts it right. The params
    are the request's, for `params.<name>` rules and sticky-by-user routes."""
    messages = [
        {"role": "user", "content": item if isinstance(item, str) else " " * (4 * len(item))}
        for item in req.input
    ]
    params = dict(req.params, encoding_format=req.encoding_format)
    if req.dimensions is not None:
        params["dimensions"] = req.dimensions
    return ChatRequest(model=req.model, messages=messages, max_tokens=0, params=params, needs=EMBEDDINGS)


async def plan(key: KeyInfo, req: EmbeddingRequest, route: RouteInfo) -> Call:
    """The routing decision for an embeddings request. Raises the client's 400 when no
    target of the route serves embeddings."""
    call = await pipeline.plan(key, as_chat_request(req), route)  # a route without embedding models: 400
    call.endpoint = "embeddings"
    call.annotate("embeddings", inputs=len(req.input))
    return call


async def embed(call: Call, req: EmbeddingRequest, settle: bool = True) -> EmbeddingResponse:
    """The vectors, with the usage settled (ledger row committed) before returning;
    with settle=False the caller settles right after sending the response, as chat's
    GATEWAY_LEDGER_AFTER_RESPONSE."""
    try:
        await _refuse_unchecked_tokens(call, req)
        await _request_stages(call)
        await pipeline._final_decision(call)
        sent = _as_checked(call, req)
        response = await engine.embed(call.run, call.req, sent)
        call.usage = response.usage or Usage(sum(input_tokens(i) for i in sent.input), 0, estimated=True)
    except GatewayError as error:
        await call.settle_error(error)
        raise
    except asyncio.CancelledError:
        call.settle_in_background(Status.CLIENT_CLOSED, 499, "client_closed")
        raise
    call.cost = call.actual_cost()
    if settle:
        await call.settle(call.success_status, 200)
    return response


async def _request_stages(call: Call) -> None:
    """The on_request of the stages in EMBEDDING_STAGES, in list order (none of them
    answers a request)."""
    for stage in stages.active().all:
        if stage.name not in EMBEDDING_STAGES:
            continue
        if stage.overrides("on_request"):
            try:
                await stage.on_request(call)
            except Blocked:
                call.blocked = True
                raise
        call.entered.append(stage)
    # The guardrails keep state for checking the answer; a vector has none to check
    # (and its on_finish would count the output guardrails as passed).
    call.stage_state.pop(GUARDRAILS, None)


async def _refuse_unchecked_tokens(call: Call, req: EmbeddingRequest) -> None:
    """Token ids slip past every text check: refused (before anything is reserved) when
    an input guardrail applies to this request."""
    if isinstance(req.input[0], str) or call.key.prefix == JUDGE_PREFIX:
        return
    if not any(s.name == GUARDRAILS for s in stages.active().all):
        return
    inputs, _ = (await guardrail_table.get()).select(call.route.id, call.key.team_id, call.key.id)
    if inputs:
        names = ", ".join(f"'{g.name}'" for g in inputs)
        raise InvalidRequest(
            f"Token-id input cannot be checked by the guardrails that apply to this request ({names}): "
            "send the text instead.", param="input", code="input_not_checkable")


def _as_checked(call: Call, req: EmbeddingRequest) -> EmbeddingRequest:
    """The request as the stages left it: texts a guardrail redacted are sent redacted."""
    if not isinstance(req.input[0], str):
        return req
    texts = [m["content"] for m in call.req.messages]
    return req if texts == req.input else dataclasses.replace(req, input=texts)
