"""Fake Replicate predictions API.

Endpoints (Replicate's HTTP API reference, and the official `replicate` SDK's client):

- ``POST /v1/models/{owner}/{name}/predictions`` (official models) and
  ``POST /v1/predictions`` (``{"version": id, "input": {...}}``): 201 with a prediction
  object ``{id, model, version, input, logs, output, data_removed, error, status,
  created_at, started_at, completed_at, urls {get, cancel, stream, web}, metrics}``.
  With ``Prefer: wait`` / ``Prefer: wait=N`` (sync mode) a prediction that finishes
  in time comes back finished; without it, it comes back ``starting``.
- ``GET /v1/predictions/{id}``: the prediction now. A prediction takes ``polls``
  reads (the fake's setting, or ``finish_after(n)``) before it is ``succeeded``
  (``processing`` until then); ``never_finish()`` keeps it running.
- ``POST /v1/predictions/{id}/cancel``: status ``canceled`` (recorded in ``canceled``).
- ``GET /stream/v1/predictions/{id}`` (``urls.stream``; Replicate serves streams from a
  separate host, the fake under this prefix): ``text/event-stream`` of ``output``
  events (``id: <ts>:<n>``, ``data:`` the text piece, one ``data:`` line per line of
  it), then ``done`` with ``{}``, or ``{"reason": "canceled"}`` when the prediction was
  canceled meanwhile; a failed prediction sends ``error`` (``{"detail": ...}``) and
  ``done`` ``{"reason": "error"}``. Stream faults (``cut_stream``, ``hang``,
  ``malformed``, ``mangle``) scripted for a create apply to its stream.
- ``GET /v1/models`` (paged ``{next, previous, results}``) and
  ``GET /v1/collections/{slug}`` (``{name, slug, description, models}``).

Errors are problem+json ``{"title", "detail", "status"}`` (422 adds
``invalid_fields``). Inputs: ``prompt`` is required (422 otherwise);
``max_tokens``/``max_new_tokens`` cap the answer (one token per word, tests/fakes/text.py),
``stop_sequences`` is a comma-separated string. ``metrics`` carry
``input_token_count``/``output_token_count`` unless ``report_tokens`` is False.
``fail_prediction(error)`` makes the next prediction fail with that error text.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any, Iterator

from .base import Behaviour, Exchange, FakeServer, Route, StreamEvent, dumps, random_id
from .text import Answer, count_words

_TITLES = {400: "Bad request", 401: "Unauthenticated", 402: "Insufficient credit", 403: "Forbidden",
           404: "Not found", 422: "Input validation failed", 429: "Request was throttled.",
           500: "Internal server error", 503: "Service unavailable"}
_DETAILS = {401: "You did not pass a valid authentication token",
            402: "You have insufficient credit to run this model.",
            404: "The requested resource could not be found.",
            429: "Request was throttled. Expected available in 1 second."}
STREAM_PREFIX = "/stream"
VERSION = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeReplicate(FakeServer):
    """Fake of api.replicate.com; ``base_url`` is the server root (the SDK's base_url)."""

    default_reply_text = "Hello from fake-replicate."
    default_models = ("meta/meta-llama-3-8b-instruct", "mistralai/mixtral-8x7b-instruct-v0.1")
    json_content_type = "application/json"

    def __init__(self, *, polls: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.polls = polls  # reads of a prediction before it is finished (0: finished when created)
        self.report_tokens = True
        self.predictions: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._failures: deque[str] = deque()
        self._polls_next: deque[int] = deque()

    def reset(self) -> None:
        super().reset()
        with self._lock:
            self.predictions.clear()
            self._failures.clear()
            self._polls_next.clear()
        self.report_tokens = True

    # -- scripting ---------------------------------------------------------------------
    def fail_prediction(self, error: str, *, times: int = 1) -> None:
        """The next prediction(s) end ``failed`` with ``error`` as its error text."""
        with self._lock:
            self._failures.extend([error] * times)

    def finish_after(self, polls: int, *, times: int = 1) -> None:
        """The next prediction(s) answer ``starting``/``processing`` to ``polls`` reads."""
        with self._lock:
            self._polls_next.extend([polls] * times)

    def never_finish(self, *, times: int = 1) -> None:
        self.finish_after(10**9, times=times)

    @property
    def canceled(self) -> list[str]:
        """Ids of the predictions a client canceled, in order."""
        return [r.path.split("/")[3] for r in self.requests if r.method == "POST" and r.path.endswith("/cancel")]

    def wait_for_cancel(self, count: int = 1, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.canceled) < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- routing -----------------------------------------------------------------------
    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        parts = ex.path.strip("/").split("/")
        if ex.method == "POST" and len(parts) == 5 and parts[:2] == ["v1", "models"] and parts[4] == "predictions":
            return self._create, True
        if (ex.method, ex.path) == ("POST", "/v1/predictions"):
            return self._create, True
        if ex.method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "predictions"]:
            return self._get, False
        if ex.method == "POST" and len(parts) == 4 and parts[:2] == ["v1", "predictions"] and parts[3] == "cancel":
            return self._cancel, False
        if ex.method == "GET" and ex.path.startswith(f"{STREAM_PREFIX}/v1/predictions/"):
            return self._stream, False
        if (ex.method, ex.path) == ("GET", "/v1/models"):
            return self._models, False
        if ex.method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "collections"]:
            return self._collection, False
        return None

    def error_payload(self, status: int, message: str | None = None, **details: Any) -> Any:
        body = {"title": _TITLES.get(status, "Error"), "detail": message or _DETAILS.get(status, "Request failed."),
                "status": status}
        body.update(details)
        return body

    def _problem(self, ex: Exchange, status: int, message: str | None = None, **details: Any) -> None:
        self.send_error(ex, status, message, **details)

    def garbage_event(self) -> bytes:
        return b"event: done\nid: 0:0\ndata: {\"reason\n\n"

    def _authorized(self, ex: Exchange) -> bool:
        return self.api_key is None or ex.headers.get("authorization") == f"Bearer {self.api_key}"

    # -- predictions ----------------------------------------------------------------------
    def _create(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self._problem(ex, 401)
        body = ex.json if isinstance(ex.json, dict) else None
        if body is None:
            return self._problem(ex, 400, "The request body is not a JSON object.")
        if ex.path == "/v1/predictions":
            version = body.get("version")
            if not isinstance(version, str) or not version:
                return self._problem(ex, 422, "- version: version is required\n", title="Invalid version or not permitted")
            model = "replicate/versioned-model"
        else:
            _, _, owner, name, _ = ex.path.strip("/").split("/")
            model, version = f"{owner}/{name}", VERSION
            if not self.model_known(model):
                return self._problem(ex, 404)
        inputs = body.get("input")
        problem = self._input_problem(inputs)
        if problem is not None:
            return self._problem(ex, 422, f"- input: {problem}\n",
                                 invalid_fields=[{"type": "invalid", "field": "input", "description": problem}])
        with self._lock:
            error = self._failures.popleft() if self._failures else None
            polls = self._polls_next.popleft() if self._polls_next else self.polls
        prediction = self._new_prediction(ex, model, version, inputs, body.get("stream") is True)
        record = {"prediction": prediction, "polls_left": polls, "error": error, "behaviour": behaviour,
                  "answer": self._answer(inputs, behaviour)}
        with self._lock:
            self.predictions[prediction["id"]] = record
        if _prefers_wait(ex) and polls == 0 and not body.get("stream"):
            self._finish(record)
        self._send_prediction(ex, record, 201)

    def _input_problem(self, inputs: Any) -> str | None:
        if not isinstance(inputs, dict):
            return "input is required"
        if not isinstance(inputs.get("prompt"), str):
            return "prompt is required"
        for name in ("max_tokens", "max_new_tokens", "top_k", "seed"):
            if name in inputs and (isinstance(inputs[name], bool) or not isinstance(inputs[name], int)):
                return f"{name}: Invalid type. Expected: integer, given: {type(inputs[name]).__name__}"
        for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
            if name in inputs and (isinstance(inputs[name], bool) or not isinstance(inputs[name], (int, float))):
                return f"{name}: Invalid type. Expected: number, given: {type(inputs[name]).__name__}"
        if "stop_sequences" in inputs and not isinstance(inputs["stop_sequences"], str):
            return "stop_sequences: Invalid type. Expected: string"
        return None

    def _answer(self, inputs: dict, behaviour: Behaviour | None) -> Answer:
        prompt_tokens = count_words(inputs.get("prompt", "")) + count_words(inputs.get("system_prompt") or "")
        limit = inputs.get("max_tokens", inputs.get("max_new_tokens"))
        stops = [s for s in (inputs.get("stop_sequences") or "").split(",") if s]
        return self.answer(behaviour, prompt_tokens=prompt_tokens, max_words=limit, stops=stops)

    def _new_prediction(self, ex: Exchange, model: str, version: str, inputs: dict, stream: bool) -> dict[str, Any]:
        pid = random_id("", 26).lower()
        root = f"http://{ex.headers.get('host') or f'127.0.0.1:{self.port}'}"
        urls = {"get": f"{root}/v1/predictions/{pid}", "cancel": f"{root}/v1/predictions/{pid}/cancel",
                "web": f"https://replicate.com/p/{pid}"}
        if stream:
            urls["stream"] = f"{root}{STREAM_PREFIX}/v1/predictions/{pid}"
        return {"id": pid, "model": model, "version": version, "input": inputs, "logs": "", "output": None,
                "data_removed": False, "error": None, "status": "starting", "created_at": _now(),
                "urls": urls}

    def _finish(self, record: dict[str, Any]) -> None:
        prediction, answer = record["prediction"], record["answer"]
        if prediction["status"] in ("succeeded", "failed", "canceled"):
            return
        prediction["started_at"] = prediction.get("started_at") or _now()
        prediction["completed_at"] = _now()
        if record["error"] is not None:
            prediction.update(status="failed", error=record["error"], output=None,
                              logs=f"Traceback (most recent call last):\n{record['error']}")
            prediction["metrics"] = {"predict_time": 0.05}
            return
        prediction.update(status="succeeded", output=answer.pieces)
        metrics: dict[str, Any] = {"predict_time": 0.05, "total_time": 0.06}
        if self.report_tokens:
            metrics.update(input_token_count=answer.prompt_tokens, output_token_count=answer.completion_tokens,
                           tokens_per_second=100.0, time_to_first_token=0.01)
        prediction["metrics"] = metrics

    def _send_prediction(self, ex: Exchange, record: dict[str, Any], status: int = 200) -> None:
        prediction = dict(record["prediction"])
        finished = prediction["status"] in ("succeeded", "failed", "canceled")
        behaviour = record["behaviour"] if finished and not prediction["urls"].get("stream") else None
        kind = behaviour.kind if behaviour else None
        data = dumps(behaviour.mangle(prediction) if kind == "mangle" else prediction)  # type: ignore[union-attr,misc]
        if kind == "malformed":
            ex.send_bytes(status, data[: len(data) // 2], self.json_content_type)
        elif kind == "cut":
            ex.send_truncated(status, data, self.json_content_type)
        else:
            ex.send_bytes(status, data, self.json_content_type)

    def _record(self, ex: Exchange, index: int) -> dict[str, Any] | None:
        pid = ex.path.strip("/").split("/")[index]
        with self._lock:
            return self.predictions.get(pid)

    def _get(self, ex: Exchange, _behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self._problem(ex, 401)
        record = self._record(ex, 2)
        if record is None:
            return self._problem(ex, 404)
        with self._lock:
            prediction = record["prediction"]
            if prediction["status"] == "starting":
                prediction.update(status="processing", started_at=_now())
            if record["polls_left"] <= 0:
                self._finish(record)
            else:
                record["polls_left"] -= 1
                if record["polls_left"] == 0:
                    self._finish(record)
        self._send_prediction(ex, record)

    def _cancel(self, ex: Exchange, _behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self._problem(ex, 401)
        record = self._record(ex, 2)
        if record is None:
            return self._problem(ex, 404)
        with self._lock:
            prediction = record["prediction"]
            if prediction["status"] not in ("succeeded", "failed", "canceled"):
                prediction.update(status="canceled", completed_at=_now())
        self._send_prediction(ex, record)

    def _stream(self, ex: Exchange, _behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self._problem(ex, 401)
        record = self._record(ex, 3)
        if record is None:
            return self._problem(ex, 404)
        with self._lock:
            if record["prediction"]["status"] == "starting":
                record["prediction"].update(status="processing", started_at=_now())
        self.send_stream(ex, record["behaviour"], self._events(record), "text/event-stream")

    def _events(self, record: dict[str, Any]) -> Iterator[StreamEvent]:
        stamp = int(time.time())
        prediction = record["prediction"]
        if record["error"] is not None:
            self._finish(record)
            yield "tail", _event("error", f"{stamp}:0", dumps({"detail": record["error"]}).decode())
            yield "tail", _event("done", f"{stamp}:1", dumps({"reason": "error"}).decode())
            return
        pieces = record["answer"].pieces
        for n, piece in enumerate(pieces):
            if prediction["status"] == "canceled":
                break
            yield "content", _event("output", f"{stamp}:{n}", piece)
        if prediction["status"] == "canceled":
            yield "tail", _event("done", f"{stamp}:{len(pieces)}", dumps({"reason": "canceled"}).decode())
            return
        with self._lock:
            self._finish(record)
        yield "tail", _event("done", f"{stamp}:{len(pieces)}", "{}")

    # -- listing --------------------------------------------------------------------------
    def _model_object(self, ref: str) -> dict[str, Any]:
        owner, name = ref.split("/", 1)
        return {"url": f"https://replicate.com/{ref}", "owner": owner, "name": name,
                "description": f"{name} (fake)", "visibility": "public", "github_url": None, "paper_url": None,
                "license_url": None, "run_count": 1000, "cover_image_url": None, "default_example": None,
                "latest_version": {"id": VERSION, "created_at": _now(), "cog_version": "0.9.4", "openapi_schema": {}}}

    def _models(self, ex: Exchange, _behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self._problem(ex, 401)
        ex.send_json(200, {"next": None, "previous": None,
                           "results": [self._model_object(m) for m in self.listed_models()]})

    def _collection(self, ex: Exchange, _behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return self._problem(ex, 401)
        slug = ex.path.strip("/").split("/")[2]
        ex.send_json(200, {"name": slug.replace("-", " ").title(), "slug": slug, "description": "Fake collection.",
                           "models": [self._model_object(m) for m in self.listed_models()]})


def _prefers_wait(ex: Exchange) -> bool:
    prefer = ex.headers.get("prefer", "").replace(" ", "")
    return prefer == "wait" or prefer.startswith("wait=")


def _event(name: str, event_id: str, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.split("\n"))
    return f"event: {name}\nid: {event_id}\n{lines}\n".encode()
