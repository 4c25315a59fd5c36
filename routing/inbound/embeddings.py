"""POST /v1/embeddings in OpenAI's wire format: the body checked into an
EmbeddingRequest, the answer rendered (floats, or base64 of little-endian float32
values as OpenAI sends them), errors in OpenAI's format.

`model` is a route name, as for chat; the route's targets whose model has the
"embeddings" capability serve it (routing.embeddings_call: admission, guardrails on
the inputs, the engine's fallback and breakers, one usage record). Providers are
always asked for floats; the gateway encodes base64 itself, so every target answers
either encoding (the official openai SDK asks for base64 unless told otherwise).
"""

from __future__ import annotations

import asyncio
import base64
import sys
from array import array
from typing import Any

import orjson
from django.conf import settings

from billing.keys import authenticate
from billing.models import UsageRecord
from gateway_project.errors import GatewayError, InvalidRequest
from providers.types import EmbeddingRequest, EmbeddingResponse

from .. import api, embeddings_call
from ..lookup import resolve_route
from ..pipeline import Call
from ..render import Headers, call_headers, error_body
from ..schemas import load_body

# Bounds of one request. OpenAI's: 2048 inputs and 300,000 tokens in all. Per input
# the gateway is generous (models differ: 512 to 32k tokens); the provider enforces
# its own limit, and a too-long input is then its 400.
MAX_INPUTS = 2048
MAX_INPUT_TOKENS = 32_768
MAX_TOTAL_TOKENS = 300_000
MAX_TOKEN_ID = 2**31 - 1
MAX_DIMENSIONS = 65_536
ENCODINGS = ("float", "base64")
INPUT_SHAPE = "a string, a list of strings, a list of token ids, or a list of token-id lists"


def _bad(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _token_ids(where: str, value: list) -> list[int]:
    if not value:
        raise _bad("input", f"'{where}' must not be an empty list.")
    for i, token in enumerate(value):
        if type(token) is not int or not 0 <= token <= MAX_TOKEN_ID:
            raise _bad("input", f"'{where}[{i}]' must be a token id (an integer from 0 to {MAX_TOKEN_ID}).")
    return value


def _inputs(value: Any) -> list:
    """`input` as a list of texts or of token-id lists, or a 400 naming what is wrong."""
    if value is None:
        raise _bad("input", f"'input' is required: {INPUT_SHAPE}.")
    if isinstance(value, str):
        value = [value]
    elif not isinstance(value, list):
        raise _bad("input", f"'input' must be {INPUT_SHAPE}.")
    elif value and all(type(v) is int for v in value):
        value = [value]  # one list of token ids
    if not value:
        raise _bad("input", "'input' must not be an empty list.")
    if len(value) > MAX_INPUTS:
        raise _bad("input", f"'input' may hold at most {MAX_INPUTS} inputs; got {len(value)}.")
    texts = isinstance(value[0], str)
    for i, item in enumerate(value):
        where = f"input[{i}]" if len(value) > 1 else "input"
        if texts:
            if not isinstance(item, str):
                raise _bad("input", f"'{where}' must be a string, like the list's first input.")
            if not item:
                raise _bad("input", f"'{where}' must not be an empty string.")
        elif isinstance(item, list):
            _token_ids(where, item)
        else:
            raise _bad("input", f"'{where}' must be a list of token ids (or every input a string).")
    sizes = [embeddings_call.input_tokens(item) for item in value]
    longest = max(range(len(sizes)), key=sizes.__getitem__)
    if sizes[longest] > MAX_INPUT_TOKENS:
        where = f"input[{longest}]" if len(value) > 1 else "input"
        raise _bad("input", f"'{where}' is too long: about {sizes[longest]} tokens, at most {MAX_INPUT_TOKENS} per input.")
    if sum(sizes) > MAX_TOTAL_TOKENS:
        raise _bad("input", f"'input' is too large: about {sum(sizes)} tokens in all, at most {MAX_TOTAL_TOKENS} per request.")
    return value


def parse_embedding_request(raw: bytes) -> EmbeddingRequest:
    body = load_body(raw)
    model = body.pop("model", None)
    if not isinstance(model, str) or not model:
        raise _bad("model", "'model' is required: the name of a route.")
    inputs = _inputs(body.pop("input", None))
    encoding = body.pop("encoding_format", None)
    if encoding is None:
        encoding = "float"
    if encoding not in ENCODINGS:
        raise _bad("encoding_format", "'encoding_format' must be 'float' or 'base64'.")
    dimensions = body.pop("dimensions", None)
    if dimensions is not None and (type(dimensions) is not int or not 1 <= dimensions <= MAX_DIMENSIONS):
        raise _bad("dimensions", f"'dimensions' must be an integer from 1 to {MAX_DIMENSIONS}.")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise _bad("user", "'user' must be a string.")
    params = {k: v for k, v in body.items() if v is not None}
    return EmbeddingRequest(model=model, input=inputs, encoding_format=encoding, dimensions=dimensions, params=params)


# --- the answer ------------------------------------------------------------------------
def encode_base64(vector: list[float]) -> str:
    """OpenAI's base64 embedding: the vector's little-endian float32 bytes."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def embeddings_body(call: Call, req: EmbeddingRequest, result: EmbeddingResponse) -> bytes:
    encode = encode_base64 if req.encoding_format == "base64" else None
    data = [
        {"object": "embedding", "index": i, "embedding": encode(v) if encode else v}
        for i, v in enumerate(result.vectors)
    ]
    usage = call.usage_or_zero()
    return orjson.dumps({
        "object": "list",
        "data": data,
        "model": result.model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.total_tokens},
    })


# --- the endpoint ----------------------------------------------------------------------
async def handle(scope, body: bytes, send) -> None:
    api._allow(scope["method"], "POST")
    key = await authenticate(api.auth_header(scope))
    req = parse_embedding_request(body)
    call = await embeddings_call.plan(key, req, await resolve_route(key, req.model))
    try:
        after = settings.GATEWAY_LEDGER_AFTER_RESPONSE
        result = await embeddings_call.embed(call, req, settle=not after)
        headers = call_headers(call) + [("x-gateway-cost-usd", f"{call.cost:f}")]
        await api._respond(send, 200, headers, embeddings_body(call, req, result))
        if after:  # shielded: a client hanging up now must not cancel the bookkeeping
            await asyncio.shield(call.settle(call.success_status, 200))
    except GatewayError as error:
        # Refused by a stage (a rate limit, a budget, a guardrail) or failed upstream:
        # settled already.
        await api._error(send, error, call_headers(call) if call.entered else None)
    except Exception as exc:  # noqa: BLE001 - never a traceback to the client
        await call.settle(UsageRecord.Status.ERROR, 500, "internal")
        await api._error(send, api.unexpected(exc, call.request_id), call_headers(call))


def error_response(error: GatewayError, headers: Headers) -> tuple[int, Headers, bytes]:
    """OpenAI's error format, as on chat (routing.api uses it for body-read errors)."""
    return error.status, api.JSON + headers, error_body(error)
