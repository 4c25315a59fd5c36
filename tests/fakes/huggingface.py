"""Fake Hugging Face text-generation-inference (TGI) Messages API, and a TEI endpoint.

From TGI's router (router/src/server.rs, lib.rs, validation.rs, infer/mod.rs):
- ``POST /v1/chat/completions`` (OpenAI's body; ``model`` "tgi" means the served
  model, whose id answers carry), ``POST /v1/embeddings`` (TEI), ``GET /info``;
  Bearer token.
- TGI deserialises strictly where OpenAI is loose: ``stop`` must be a list,
  ``logit_bias`` a list of floats (OpenAI's object is refused), ``response_format``
  needs its grammar under ``value`` (422 "Failed to deserialize the JSON body into
  the target type: ..."); ``top_p`` must be strictly between 0 and 1 (422
  ``{"error": "Input validation error: `top_p` must be > 0.0 and < 1.0",
  "error_type": "validation"}``).
- Errors ``{"error": "...", "error_type": "validation" | "generation" |
  "overloaded" | "incomplete_generation"}`` with 422 / 424 / 429 / 500
  (``fail_tgi``); a model still loading: 503 ``{"error": "Model ... is currently
  loading", "estimated_time": ...}`` (``loading``).
- Stream errors are events after the stream began (``stream_error``): TGI 2's
  ``{"error": "...", "error_type": "..."}`` or TGI 3's ``{"error": {"message": "...",
  "http_status_code": 422}}``, then ``[DONE]``.
- Usage in a stream only with ``stream_options.include_usage`` (the base class).
Tool calls and cached tokens as in tests/fakes/openai_tools.py.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Iterator

from .base import Behaviour, Exchange, Route, dumps
from .openai import _sse
from .openai_tools import ToolCallingOpenAI
from .text import Answer

TOP_P = "Input validation error: `top_p` must be > 0.0 and < 1.0"


class FakeTGI(ToolCallingOpenAI):
    """``base_url`` is the endpoint's root (the adapter adds /v1)."""

    default_reply_text = "Hello from fake-tgi."
    model_id = "meta-llama/Llama-3.1-8B-Instruct"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._stream_errors: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.url

    # -- scripting ---------------------------------------------------------------------
    def fail_tgi(self, status: int, message: str, error_type: str, *, times: int = 1) -> None:
        self.fail(status, body={"error": message, "error_type": error_type}, times=times)

    def loading(self, estimated_time: float = 20.0, *, times: int = 1) -> None:
        self.fail(503, body={"error": f"Model {self.model_id} is currently loading",
                             "estimated_time": estimated_time}, times=times)

    def stream_error(self, message: str, error_type: str | None = "generation") -> None:
        """The next stream sends one piece, then this error event (error_type None: TGI 3's shape)."""
        event = ({"error": message, "error_type": error_type} if error_type is not None
                 else {"error": {"message": message, "http_status_code": 422}})
        with self._lock:
            self._stream_errors.append(event)

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self._stream_errors.clear()

    # -- wire --------------------------------------------------------------------------
    def error_payload(self, status: int, message: str | None = None, **details: Any) -> Any:
        kinds = {422: "validation", 424: "generation", 429: "overloaded", 500: "incomplete_generation"}
        if status == 401:
            return {"error": "Authorization header is correct, but the token seems invalid"}
        return {"error": message or "Request failed", "error_type": kinds.get(status, "unknown")}

    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        if (ex.method, ex.path) == ("POST", "/v1/chat/completions"):
            return self._tgi_chat, True
        if (ex.method, ex.path) == ("POST", "/v1/embeddings"):
            return self._embeddings, True
        if (ex.method, ex.path) == ("GET", "/info"):
            return (lambda ex, _: ex.send_json(200, {"model_id": self.model_id, "max_total_tokens": 8192})), False
        return None

    def _authorized(self, ex: Exchange) -> bool:
        return self.api_key is None or ex.headers.get("authorization") == f"Bearer {self.api_key}"

    def _auth_error(self, ex: Exchange) -> None:
        ex.send_json(401, self.error_payload(401))

    def _tgi_chat(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        body = ex.json
        if isinstance(body, dict):
            problem = _deserialize_problem(body)
            if problem:
                return ex.send_bytes(422, ("Failed to deserialize the JSON body into the target type: "
                                           + problem).encode(), "text/plain; charset=utf-8")
            top_p = body.get("top_p")
            if top_p is not None and not 0 < top_p < 1:
                return ex.send_json(422, {"error": TOP_P, "error_type": "validation"})
            ex.json = {**body, "model": body.get("model") or "tgi"}  # a copy: the recorded body stays as sent
        self._chat_completions(ex, behaviour)

    def _completion(self, body: dict[str, Any], answer: Answer) -> dict[str, Any]:
        payload = super()._completion(body, answer)
        payload["model"] = self.model_id if body["model"] == "tgi" else body["model"]
        payload["system_fingerprint"] = "3.0.1-sha-fake"
        payload.pop("service_tier", None)
        return payload

    def _chunks(self, body: dict[str, Any], answer: Answer) -> Iterator[tuple[str, bytes]]:
        with self._lock:
            error = self._stream_errors.popleft() if self._stream_errors else None
        model = self.model_id if body["model"] == "tgi" else body["model"]
        sent = 0
        for phase, data in super()._chunks(body, answer):
            if error is not None and sent >= 2:
                yield "tail", _sse(error)
                yield "tail", b"data: [DONE]\n\n"
                return
            sent += 1
            yield phase, data.replace(dumps(body["model"]), dumps(model), 1) if data.startswith(b"data: {") else data


def _deserialize_problem(body: dict[str, Any]) -> str | None:
    """What serde refuses in TGI's ChatRequest (OpenAI's looser shapes)."""
    if "stop" in body and body["stop"] is not None and not isinstance(body["stop"], list):
        return "stop: invalid type: string, expected a sequence"
    if "logit_bias" in body and body["logit_bias"] is not None and not isinstance(body["logit_bias"], list):
        return "logit_bias: invalid type: map, expected a sequence"
    rf = body.get("response_format")
    if isinstance(rf, dict) and "value" not in rf:
        return "response_format: missing field `value`"
    return None
