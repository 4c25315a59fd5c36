"""Hugging Face: TGI's OpenAI-compatible Messages API (Inference Endpoints, self-hosted
text-generation-inference) and the Inference Providers router.

POST {base}/chat/completions with a Bearer token, where {base} ends with /v1: the
router's https://router.huggingface.co/v1 when base_url is empty, or an endpoint's URL
(https://<name>.endpoints.huggingface.cloud), to which "/v1" is added when missing.

What differs from OpenAI's dialect:
- errors are `{"error": "...", "error_type": "validation" | "generation" |
  "overloaded" | "incomplete_generation" | ...}` with 422 / 424 / 429 / 500, and a
  model still loading answers 503 `{"error": "Model ... is currently loading",
  "estimated_time": 20.0}`: UNAVAILABLE with retry_after from estimated_time;
- errors inside a stream are events, either that shape or (TGI 3) `{"error":
  {"message": "...", "http_status_code": 422}}` whatever the cause: classified by
  TGI's own message prefixes ("Input validation error", "Model is overloaded", ...);
- parameters TGI takes otherwise are rows (`PARAMS`): `stop` as a list,
  `top_p` strictly inside (0, 1), `logit_bias` (a list of floats there, unused)
  dropped, `response_format` with TGI's `value` next to OpenAI's fields;
- older TGI versions answer tool calls with `arguments` as an object: made a string.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
from multidict import CIMultiDictProxy

from ..catalog import ModelInfo
from ..params import DROP, Param, as_list, map_params, overlay, table
from ..types import ChatRequest, ChatResponse, EmbeddingRequest, ErrorKind, ProviderError
from .base import auth_headers, classify_status, parse_retry_after, provider_error
from .openai import OpenAIAdapter

ROUTER = "https://router.huggingface.co/v1"


def _top_p(value: Any) -> Any:
    # TGI refuses top_p >= 1 ("must be > 0.0 and < 1.0"); 1 is its default anyway.
    return DROP if isinstance(value, (int, float)) and value >= 1 else value


def _response_format(value: Any) -> Any:
    """OpenAI's response_format with TGI's grammar (`value`) beside it: TGI reads
    {"type": "json_object" | "json_schema", "value": ...} and ignores the rest."""
    if not isinstance(value, dict):
        return value
    kind = value.get("type")
    if kind == "json_object":
        return {**value, "value": {"type": "object"}}
    if kind == "json_schema" and isinstance(value.get("json_schema"), dict):
        return {**value, "value": value["json_schema"]}
    return value


PARAMS = table(
    Param("stop", transform=as_list),
    Param("top_p", transform=_top_p, min=0.001),
    Param("logit_bias", drop=True),
    # TGI turns presence_penalty p into repetition_penalty p + 2, which must stay > 0
    Param("presence_penalty", min=-1.9),
    Param("response_format", transform=_response_format),
)

# TGI's messages for a prompt longer than the model takes (router/src/validation.rs)
_CONTEXT = re.compile(r"`inputs` tokens \+ `max_new_tokens` must be <=|`inputs` must have less than \d+ tokens")
# TGI's InferError types, and the message prefixes that name them in TGI 3's stream events
_KINDS = {
    "overloaded": ErrorKind.RATE_LIMITED,
    "generation": ErrorKind.UNAVAILABLE,
    "incomplete_generation": ErrorKind.UNAVAILABLE,
    "incomplete_generation_stream": ErrorKind.UNAVAILABLE,
    "stream_serialization_error": ErrorKind.UNAVAILABLE,
    "validation": ErrorKind.BAD_REQUEST,
    "template_error": ErrorKind.BAD_REQUEST,
    "missing_template_variable": ErrorKind.BAD_REQUEST,
    "tool_error": ErrorKind.BAD_REQUEST,
}
_PREFIXES = (("Model is overloaded", "overloaded"), ("Request failed during generation", "generation"),
             ("Incomplete generation", "incomplete_generation"), ("Input validation error", "validation"),
             ("Template error", "template_error"), ("Tool error", "tool_error"))


def endpoint_base(base_url: str) -> str:
    base = base_url or ROUTER
    return base if base.endswith("/v1") else f"{base}/v1"


def error_kind(status: int | None, message: str, error_type: str) -> ErrorKind:
    """A TGI error's kind: by its error_type (or the message's prefix), else by status."""
    if not error_type:
        error_type = next((t for prefix, t in _PREFIXES if message.startswith(prefix)), "")
    kind = _KINDS.get(error_type)
    if kind is ErrorKind.BAD_REQUEST and _CONTEXT.search(message):
        return ErrorKind.CONTEXT_LENGTH
    if kind is not None:
        return kind
    if status is None:
        return ErrorKind.UNAVAILABLE
    if status == 422 and _CONTEXT.search(message):
        return ErrorKind.CONTEXT_LENGTH
    return classify_status(status, message, error_type)


def _error_fields(data: Any) -> tuple[str, str, Any]:
    """(message, error_type, estimated_time) of a TGI, HF or OpenAI-shaped error body."""
    if not isinstance(data, dict):
        return "", "", None
    err = data.get("error")
    if isinstance(err, dict):  # the router's OpenAI shape, TGI 3's stream event
        return str(err.get("message") or ""), str(err.get("code") or err.get("type") or ""), None
    return str(err or ""), str(data.get("error_type") or ""), data.get("estimated_time")


def _string_arguments(data: Any) -> Any:
    """Older TGI sends a tool call's arguments as an object: as OpenAI's JSON string.
    Anything else is left for the shape checks."""
    choices = data.get("choices") if isinstance(data, dict) else None
    for choice in choices if isinstance(choices, list) else ():
        message = choice.get("message") if isinstance(choice, dict) else None
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), dict):
                function["arguments"] = orjson.dumps(function["arguments"]).decode()
    return data


class HuggingFaceAdapter(OpenAIAdapter):
    name = "huggingface"

    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        body = map_params(overlay(PARAMS, model.provider.spec.param_table), req.params, passthrough=True)
        body["model"] = model.upstream_id  # "tgi" (or a LoRA adapter id) on an endpoint; the model id on the router
        body["messages"] = req.messages
        if stream:
            body["stream"] = True
            if model.provider.spec.stream_usage:
                body["stream_options"] = {"include_usage": True}
        return f"{endpoint_base(model.provider.base_url)}/chat/completions", auth_headers(model), body

    def build_embedding_request(self, model: ModelInfo, req: EmbeddingRequest) -> tuple[str, dict, dict]:
        # text-embeddings-inference (TEI) endpoints serve OpenAI's /v1/embeddings
        _, headers, body = super().build_embedding_request(model, req)
        return f"{endpoint_base(model.provider.base_url)}/embeddings", headers, body

    def parse_response(self, model: ModelInfo, data: Any) -> ChatResponse:
        return super().parse_response(model, _string_arguments(data))

    def error_details(self, data: Any) -> tuple[str, str]:
        message, error_type, _ = _error_fields(data)
        return message, error_type

    def http_error(self, provider: str, status: int, headers: CIMultiDictProxy | dict, raw: bytes) -> ProviderError:
        try:
            message, error_type, estimated = _error_fields(orjson.loads(raw))
        except orjson.JSONDecodeError:
            message, error_type, estimated = "", "", None
        retry_after = parse_retry_after(headers)
        if retry_after is None and isinstance(estimated, (int, float)) and not isinstance(estimated, bool):
            retry_after = max(0.0, float(estimated))  # the model is loading: about this long
        return provider_error(error_kind(status, message, error_type), provider, f"HTTP {status}", message,
                              status=status, retry_after=retry_after)

    def stream_error(self, model: ModelInfo, event: dict) -> ProviderError:
        message, error_type, _ = _error_fields(event)  # TGI 2's {error, error_type} or TGI 3's {error: {...}}
        return provider_error(error_kind(None, message, error_type), model.provider.name, "stream error", message,
                              secrets=[model.provider.api_key], limit=200)
