"""Fake OpenAI API: ``POST /v1/chat/completions``, ``POST /v1/embeddings`` and ``GET /v1/models``.

Reproduces the real wire format: ``chat.completion`` objects, SSE streams of
``data: {chat.completion.chunk}\\n\\n`` events ending with ``data: [DONE]``
(usage chunk with ``choices: []`` only when ``stream_options.include_usage``),
``{"error": {"message", "type", "param", "code"}}`` errors, Bearer auth and the
``x-request-id`` response header.

Embeddings (API reference, "Create embeddings"): ``input`` is a non-empty string, a
list of up to 2048 non-empty strings, a list of token ids or a list of token-id
lists (anything else: 400 "'$.input' is invalid"); ``encoding_format`` ``float``
(default) or ``base64`` (little-endian float32 bytes); ``dimensions`` shortens
text-embedding-3 vectors (ada-002 refuses it); the answer is a ``list`` of
``embedding`` objects in input order with ``usage`` {prompt_tokens, total_tokens}.
Scripted faults (``fail``, ``hang``, ``malformed``, ``cut_stream``, ``mangle``)
apply to it as to chat.
"""

from __future__ import annotations

import time
from typing import Any, Iterator

from .base import Behaviour, Exchange, FakeServer, Route, StreamEvent, dumps, random_id
from .text import Answer, prompt_token_count
from .vectors import embedding, to_base64, token_count

_ERRORS: dict[int, tuple[str, str | None, str]] = {  # status -> (type, code, message)
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided. You can find your "
          "API key at https://platform.openai.com/account/api-keys."),
    403: ("request_forbidden", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    429: ("rate_limit_error", "rate_limit_exceeded",
          "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_FINISH = {"stop": "stop", "stop_sequence": "stop", "length": "length"}
_INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
MAX_EMBEDDING_INPUTS = 2048
# Vector sizes of the embedding models; any other model embeds at DEFAULT_EMBEDDING_SIZE.
EMBEDDING_SIZES = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}
FIXED_SIZE_MODELS = frozenset({"text-embedding-ada-002"})  # refuse `dimensions`
DEFAULT_EMBEDDING_SIZE = 1536
_BAD_JSON = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't "
             "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
             "sent was not valid JSON.)")


class FakeOpenAI(FakeServer):
    """Fake of the OpenAI Chat Completions API; ``base_url`` ends with ``/v1``."""

    default_reply_text = "Hello from fake-openai."
    default_models = ("gpt-4o-mini", "gpt-4o")
    embedding_size: int | None = None  # overrides EMBEDDING_SIZES for every model (small vectors in tests)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        if (ex.method, ex.path) == ("POST", "/v1/chat/completions"):
            return self._chat_completions, True
        if (ex.method, ex.path) == ("POST", "/v1/embeddings"):
            return self._embeddings, True
        if (ex.method, ex.path) == ("GET", "/v1/models"):
            return self._models, False
        return None

    def response_headers(self) -> dict[str, str]:
        return {"x-request-id": random_id("req_", 32), "openai-processing-ms": "1",
                "openai-version": "2020-10-01"}

    def error_payload(self, status: int, message: str | None = None, *, type: str | None = None,
                      code: str | None = None, param: str | None = None) -> Any:
        default_type, default_code, default_message = _ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, "Request failed."))
        return {"error": {"message": message or default_message, "type": type or default_type,
                          "param": param, "code": code if code is not None else default_code}}

    def garbage_event(self) -> bytes:
        return b'data: {"id":"chatcmpl-garbage","choices":[{"delta":{"content":"oops\n\n'

    # -- endpoints -------------------------------------------------------------------
    def _authorized(self, ex: Exchange) -> bool:
        if self.api_key is None:
            return True
        if "authorization" not in ex.headers:
            return False
        return ex.headers["authorization"] == f"Bearer {self.api_key}"

    def _auth_error(self, ex: Exchange) -> None:
        if "authorization" in ex.headers:
            return self.send_error(ex, 401)
        payload = self.error_payload(401, "You didn't provide an API key. You need to provide your API key "
                                     "in an Authorization header using Bearer auth (i.e. Authorization: "
                                     "Bearer YOUR_KEY).")
        payload["error"]["code"] = None  # the real API sends code null when the header is missing
        ex.send_json(401, payload)

    def _models(self, ex: Exchange, _: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self._auth_error(ex)
        data = [{"id": m, "object": "model", "created": 1686935002, "owned_by": "openai"}
                for m in self.listed_models()]
        ex.send_json(200, {"object": "list", "data": data})

    def _validate(self, ex: Exchange) -> tuple[int, str, dict[str, Any]] | None:
        body = ex.json
        if ex.invalid_json or not isinstance(body, dict):
            return 400, _BAD_JSON, {}
        if not body.get("model"):
            return 400, "you must provide a model parameter", {}
        if "messages" not in body:
            return 400, "Missing required parameter: 'messages'.", {
                "param": "messages", "code": "missing_required_parameter"}
        if not isinstance(body["messages"], list) or not body["messages"]:
            return 400, ("Invalid 'messages': empty array. Expected an array with minimum length 1, "
                         "but got an empty array instead."), {"param": "messages", "code": "empty_array"}
        if body.get("stream_options") is not None and not body.get("stream"):
            return 400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", {
                "param": "stream_options", "code": "invalid_value"}
        if not self.model_known(body["model"]):
            return 404, (f"The model `{body['model']}` does not exist or you do not have access to it."), {
                "code": "model_not_found"}
        return None

    def _chat_completions(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self._auth_error(ex)
        problem = self._validate(ex)
        if problem is not None:
            status, message, details = problem
            return self.send_error(ex, status, message, **details)
        body: dict[str, Any] = ex.json
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        stop = body.get("stop")
        answer = self.answer(
            behaviour,
            prompt_tokens=prompt_token_count(body["messages"]),
            max_words=limit if isinstance(limit, int) else None,
            stops=[stop] if isinstance(stop, str) else (stop or []),
        )
        if body.get("stream"):
            self.send_stream(ex, behaviour, self._chunks(body, answer), "text/event-stream; charset=utf-8")
        else:
            self.send_result(ex, behaviour, self._completion(body, answer))

    def _embeddings(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self._auth_error(ex)
        problem = self._validate_embeddings(ex)
        if problem is not None:
            status, message, details = problem
            return self.send_error(ex, status, message, **details)
        body: dict[str, Any] = ex.json
        inputs = body["input"]
        if isinstance(inputs, str) or (inputs and all(isinstance(t, int) for t in inputs)):
            inputs = [inputs]  # one text, or one list of token ids
        model = body["model"]
        size = self.embedding_size or EMBEDDING_SIZES.get(model, DEFAULT_EMBEDDING_SIZE)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(inputs):
            vector = embedding(model, item, size, body.get("dimensions"))
            data.append({"object": "embedding", "index": i, "embedding": to_base64(vector) if as_base64 else vector})
        scripted = behaviour if behaviour is not None and behaviour.kind == "reply" else None
        counted = sum(token_count(item) for item in inputs)
        prompt = next(v for v in (scripted and scripted.prompt_tokens, self.prompt_tokens, counted) if v is not None)
        payload = {"object": "list", "data": data, "model": model,
                   "usage": {"prompt_tokens": prompt, "total_tokens": prompt}}
        self.send_result(ex, behaviour, payload)

    def _validate_embeddings(self, ex: Exchange) -> tuple[int, str, dict[str, Any]] | None:
        body = ex.json
        if ex.invalid_json or not isinstance(body, dict):
            return 400, _BAD_JSON, {}
        if not body.get("model"):
            return 400, "you must provide a model parameter", {}
        if "input" not in body:
            return 400, "'input' is a required property", {}
        if not _valid_input(body["input"]):
            return 400, _INVALID_INPUT, {}
        if body.get("encoding_format") not in (None, "float", "base64"):
            return 400, (f"Invalid value for 'encoding_format': '{body['encoding_format']}'. "
                         "Supported values are: 'float' and 'base64'."), {
                "param": "encoding_format", "code": "invalid_value"}
        dimensions = body.get("dimensions")
        if dimensions is not None:
            if body["model"] in FIXED_SIZE_MODELS:
                return 400, "This model does not support specifying dimensions.", {}
            if type(dimensions) is not int or dimensions < 1:
                return 400, f"Invalid value for 'dimensions' = {dimensions}. Must be greater than 0.", {
                    "param": "dimensions", "code": "invalid_value"}
        if not self.model_known(body["model"]):
            return 404, (f"The model `{body['model']}` does not exist or you do not have access to it."), {
                "code": "model_not_found"}
        return None

    # -- payloads ---------------------------------------------------------------------
    @staticmethod
    def _usage(answer: Answer) -> dict[str, Any]:
        return {
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "total_tokens": answer.total_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }

    def _completion(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        return {
            "id": random_id("chatcmpl-", 29),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": answer.text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": _FINISH[answer.reason],
            }],
            "usage": self._usage(answer),
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
        }

    def _chunks(self, body: dict[str, Any], answer: Answer) -> Iterator[StreamEvent]:
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {"id": random_id("chatcmpl-", 29), "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body["model"],
                "service_tier": "default", "system_fingerprint": "fp_fake0001"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            extra = {"usage": None} if include_usage else {}
            return _sse({**base, "choices": [choice], **extra})

        yield "head", chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in answer.pieces:
            yield "content", chunk({"content": piece})
        yield "tail", chunk({}, _FINISH[answer.reason])
        if include_usage:
            yield "tail", _sse({**base, "choices": [], "usage": self._usage(answer)})
        yield "tail", b"data: [DONE]\n\n"


def _valid_input(value: Any) -> bool:
    """A non-empty string, or a non-empty list (at most 2048) of non-empty strings, of
    token ids, or of non-empty token-id lists (one kind per list)."""
    if isinstance(value, str):
        return bool(value)
    if not isinstance(value, list) or not 0 < len(value) <= MAX_EMBEDDING_INPUTS:
        return False
    if all(isinstance(v, str) and v for v in value):
        return True
    if all(_token_ids(v) for v in value):
        return True
    return _token_ids(value)


def _token_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(t) is int and t >= 0 for t in value)


def _sse(obj: Any) -> bytes:
    return b"data: " + dumps(obj) + b"\n\n"
