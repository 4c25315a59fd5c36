"""Fake Ollama server: ``POST /api/chat``, ``POST /api/embed``, ``GET /api/tags``, ``GET /api/version``, ``GET /``.

Reproduces the real wire format: streaming is the default (``stream`` absent or
true) as ``application/x-ndjson``, one JSON object per line with ``done: false``
and a final ``done: true`` object carrying ``done_reason`` and the
``prompt_eval_count`` / ``eval_count`` counters and nanosecond durations;
errors are ``{"error": "message"}``; unknown models give 404
``model "x" not found, try pulling it first``; ``name`` == ``name:latest``.

``/api/embed`` (docs/api.md "Generate Embeddings", server EmbedHandler): ``input`` a
string or a list of strings (anything else: 400 ``invalid input type``; an empty
string or list embeds nothing), vectors normalised to length 1, ``dimensions``
keeps the first values and normalises again, ``prompt_eval_count`` the tokens of
all inputs; an unknown model is 404 ``model 'x' not found``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from .base import Behaviour, Exchange, FakeServer, Route, StreamEvent, dumps
from .text import Answer, prompt_token_count
from .vectors import embedding, token_count

_ERRORS = {400: "invalid request", 401: "unauthorized", 404: "not found", 429: "too many requests",
           500: "internal server error", 503: "server busy, please try again.  maximum pending requests exceeded"}
_DONE_REASON = {"stop": "stop", "stop_sequence": "stop", "length": "length"}
VERSION = "0.12.6"
# Vector sizes of common embedding models; any other model embeds at DEFAULT_EMBEDDING_SIZE.
EMBEDDING_SIZES = {"all-minilm": 384, "nomic-embed-text": 768, "mxbai-embed-large": 1024}
DEFAULT_EMBEDDING_SIZE = 768


def _now() -> str:
    """RFC 3339 timestamp with sub-second digits, like Go's time.Time JSON."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _tagged(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


class FakeOllama(FakeServer):
    """Fake of a local Ollama server; ``base_url`` is the server root."""

    default_reply_text = "Hello from fake-ollama."
    default_models = ("llama3.2:latest",)
    json_content_type = "application/json; charset=utf-8"
    embedding_size: int | None = None  # overrides EMBEDDING_SIZES for every model (small vectors in tests)
    # /api/show answers by tagged model name: {"capabilities": [...], "context_length": N}
    # (assign a new dict on the instance; the class default is shared).
    model_details: dict[str, dict[str, Any]] = {}

    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        if (ex.method, ex.path) == ("POST", "/api/chat"):
            return self._chat, True
        if (ex.method, ex.path) == ("POST", "/api/embed"):
            return self._embed, True
        if (ex.method, ex.path) == ("GET", "/api/tags"):
            return self._tags, False
        if (ex.method, ex.path) == ("POST", "/api/show"):
            return self._show, False
        if (ex.method, ex.path) == ("GET", "/api/version"):
            return lambda ex, _: ex.send_json(200, {"version": VERSION}, content_type=self.json_content_type), False
        if ex.method in ("GET", "HEAD") and ex.path == "/":
            return lambda ex, _: ex.send_bytes(200, b"Ollama is running", "text/plain; charset=utf-8"), False
        return None

    def error_payload(self, status: int, message: str | None = None) -> Any:
        return {"error": message or _ERRORS.get(status, "error")}

    def garbage_event(self) -> bytes:
        return b'{"model":"garbage","message":{"role":"assistant","content":"oo\n'

    def not_found(self, ex: Exchange) -> None:
        ex.send_bytes(404, b"404 page not found", "text/plain")  # Go's default mux answer

    def model_known(self, model: str) -> bool:
        return self.known_models is None or _tagged(model) in {_tagged(m) for m in self.known_models}

    # -- endpoints ----------------------------------------------------------------------
    def _authorized(self, ex: Exchange) -> bool:
        return self.api_key is None or ex.headers.get("authorization") == f"Bearer {self.api_key}"

    def _tags(self, ex: Exchange, _: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self.send_error(ex, 401)
        models = [{
            "name": _tagged(m), "model": _tagged(m), "modified_at": "2025-01-01T00:00:00.000000Z",
            "size": 2019393189, "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                        "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
        } for m in self.listed_models()]
        ex.send_json(200, {"models": models}, content_type=self.json_content_type)

    def _show(self, ex: Exchange, _: Behaviour | None) -> None:
        """POST /api/show: a model's details; `capabilities` and the context length
        from `model_details` (by tagged name), else a chat model's."""
        if not self._authorized(ex):
            return self.send_error(ex, 401)
        name = (ex.json or {}).get("model") if isinstance(ex.json, dict) else None
        if not isinstance(name, str) or not self.model_known(name):
            return self.send_error(ex, 404, f"model '{name}' not found")
        details = self.model_details.get(_tagged(name), {})
        ex.send_json(200, {
            "modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
            "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                        "parameter_size": "3.2B", "quantization_level": "Q4_K_M"},
            "model_info": {"general.architecture": "llama",
                           "llama.context_length": details.get("context_length", 131072)},
            "capabilities": details.get("capabilities", ["completion", "tools"]),
            "modified_at": "2025-01-01T00:00:00.000000Z",
        }, content_type=self.json_content_type)

    def _chat(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self.send_error(ex, 401)
        body = ex.json
        if ex.invalid_json or not isinstance(body, dict):
            return self.send_error(ex, 400, "invalid character in request body")
        if not body.get("model"):
            return self.send_error(ex, 400, "model is required")
        if not self.model_known(body["model"]):
            return self.send_error(ex, 404, f'model "{body["model"]}" not found, try pulling it first')
        messages = body.get("messages") or []
        if not messages:  # an empty chat just loads the model
            return ex.send_json(200, {"model": body["model"], "created_at": _now(),
                                      "message": {"role": "assistant", "content": ""},
                                      "done_reason": "load", "done": True}, content_type=self.json_content_type)
        options = body.get("options") or {}
        limit, stop = options.get("num_predict"), options.get("stop")
        answer = self.answer(
            behaviour,
            prompt_tokens=prompt_token_count(messages),
            max_words=limit if isinstance(limit, int) and limit >= 0 else None,
            stops=[stop] if isinstance(stop, str) else (stop or []),
        )
        if body.get("stream") is not False:  # Go *bool: absent/null means stream
            self.send_stream(ex, behaviour, self._lines(body, answer), "application/x-ndjson")
        else:
            self.send_result(ex, behaviour, self._final(body, answer, answer.text))

    def _embed(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self.send_error(ex, 401)
        body = ex.json
        if ex.invalid_json or not isinstance(body, dict):
            return self.send_error(ex, 400, "invalid character in request body")
        model = body.get("model") or ""
        raw = body.get("input")
        if isinstance(raw, str):
            inputs = [raw] if raw else []
        elif isinstance(raw, list) and all(isinstance(v, str) for v in raw):
            inputs = raw
        elif raw is None:
            inputs = []
        else:
            return self.send_error(ex, 400, "invalid input type")
        if not model or not self.model_known(model):
            return self.send_error(ex, 404, f"model '{model}' not found")
        if not inputs:
            return ex.send_json(200, {"model": model, "embeddings": []}, content_type=self.json_content_type)
        size = self.embedding_size or EMBEDDING_SIZES.get(model.split(":")[0], DEFAULT_EMBEDDING_SIZE)
        dimensions = body.get("dimensions")
        vectors = [embedding(model, text, size, dimensions if isinstance(dimensions, int) else None) for text in inputs]
        scripted = behaviour if behaviour is not None and behaviour.kind == "reply" else None
        counted = sum(token_count(text) for text in inputs)
        tokens = next(v for v in (scripted and scripted.prompt_tokens, self.prompt_tokens, counted) if v is not None)
        load, prompt_ns = 1_000_000, tokens * 1_000_000
        self.send_result(ex, behaviour, {
            "model": model, "embeddings": vectors, "total_duration": load + prompt_ns, "load_duration": load,
            "prompt_eval_count": tokens,
        })

    # -- payloads ------------------------------------------------------------------------
    @staticmethod
    def _final(body: dict[str, Any], answer: Answer, content: str) -> dict[str, Any]:
        load, prompt_ns, eval_ns = 1_000_000, answer.prompt_tokens * 1_000_000, answer.completion_tokens * 10_000_000
        return {
            "model": body["model"], "created_at": _now(),
            "message": {"role": "assistant", "content": content},
            "done_reason": _DONE_REASON[answer.reason], "done": True,
            "total_duration": load + prompt_ns + eval_ns, "load_duration": load,
            "prompt_eval_count": answer.prompt_tokens, "prompt_eval_duration": prompt_ns,
            "eval_count": answer.completion_tokens, "eval_duration": eval_ns,
        }

    def _lines(self, body: dict[str, Any], answer: Answer) -> Iterator[StreamEvent]:
        for piece in answer.pieces:
            yield "content", dumps({"model": body["model"], "created_at": _now(),
                                    "message": {"role": "assistant", "content": piece}, "done": False}) + b"\n"
        yield "tail", dumps(self._final(body, answer, "")) + b"\n"
