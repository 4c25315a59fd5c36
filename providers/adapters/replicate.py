"""Replicate's predictions API: create a prediction, then wait for it, poll it or
stream it; cancel it when nobody wants the answer any more.

- Create: official models (upstream id `owner/name`) at
  POST {base}/v1/models/{owner}/{name}/predictions with {"input": {...}}; versioned
  models (`owner/name:version`) at POST {base}/v1/predictions with {"version", "input"}.
  `Authorization: Bearer <token>`. The input is built by `replicate_input`.
- Not streamed: `Prefer: wait=N` (sync mode: Replicate holds the request up to N s,
  at most 60, within the request's timeout); a prediction still `starting` or
  `processing` after that is polled at `urls.get` with a growing interval until it
  succeeds, fails or is canceled, within the request's timeout.
- Streamed: the create body says `"stream": true` and the answer's `urls.stream` is an
  SSE stream (GET, `Accept: text/event-stream`) of `output` events (text pieces),
  `error` and `done` ({} or {"reason": "canceled" | "error"}). After `done` the
  prediction is read once more for its token counts.
- Cancel: a prediction whose answer will not be read (the client left mid-stream, the
  deadline passed, the stream broke) is canceled with POST `urls.cancel`, scheduled in
  the background so the closing request never waits for it.

Outputs are a list of text pieces (joined) or a string. Usage comes from the
prediction's `metrics.input_token_count` / `output_token_count`; without them the
gateway estimates it (Usage.estimated). Errors are problem+json bodies
({"title", "detail", "status"}); a failed prediction's `error` text is classified by
`failure_kind`. Replicate's language models take no tools (the capability is not
offered: a model configured without "tools" never gets such requests).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from gateway_project.background import spawn

from ..catalog import ModelInfo, ProviderInfo
from ..http import get_session, timeout_for
from ..kinds import KindSpec
from ..types import ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, ErrorKind, ProviderError, Usage
from . import checks
from .. import tracecontext  # the attempt's traceparent on provider requests
from .base import (
    _CONTEXT_HINTS, TRANSPORT_ERRORS, Adapter, auth_headers, loads, provider_error, provider_headers, sse_events,
    transport_error,
)
from .replicate_input import MAX_WAIT_S, option_errors, prediction_input

log = logging.getLogger("gateway.adapters.replicate")

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
POLL_FIRST_S, POLL_MAX_S = 0.1, 2.0  # polling interval: doubles from the first to the max
CANCEL_TIMEOUT_S = 5.0
METRICS_TIMEOUT_S = 5.0
DEFAULT_COLLECTION = "language-models"  # Replicate's collection of language models (discovery)

# A failed prediction's `error` text -> why, first match wins. Replicate reports what
# the model's code raised: running out of GPU memory is the machine's fault (try
# elsewhere), an input the model's schema or code refused is the request's.
FAILURE_KINDS: tuple[tuple[tuple[str, ...], ErrorKind], ...] = (
    (("out of memory", "cuda", "cudnn", "nccl", "worker crashed", "prediction interrupted"), ErrorKind.UNAVAILABLE),
    ((*_CONTEXT_HINTS, "input is too long", "exceeds the maximum"), ErrorKind.CONTEXT_LENGTH),
    (("nsfw", "safety checker", "content policy", "flagged"), ErrorKind.CONTENT_POLICY),
    (("validation", "invalid", "is required", "must be", "not a valid", "valueerror", "unexpected keyword"),
     ErrorKind.BAD_REQUEST),
    (("timed out", "timeout"), ErrorKind.TIMEOUT),
)


def failure_kind(error_text: str) -> ErrorKind:
    """The ErrorKind of a failed prediction's error text (UNAVAILABLE when unknown:
    the model crashed, another target may answer)."""
    lowered = error_text.lower()
    for hints, kind in FAILURE_KINDS:
        if any(hint in lowered for hint in hints):
            return kind
    return ErrorKind.UNAVAILABLE


def _version_ref(upstream_id: str) -> tuple[str, str | None]:
    """`owner/name` or `owner/name:version` -> ("owner/name", version or None)."""
    ref, _, version = upstream_id.partition(":")
    return ref, version or None


@dataclass(slots=True)
class Prediction:
    """The prediction a call created: where to read and cancel it, and whether its
    answer was read to the end (nothing to cancel then)."""

    id: str
    get_url: str
    cancel_url: str
    stream_url: str | None
    settled: bool = False


def _prediction(model: ModelInfo, data: Any) -> Prediction:
    provider = model.provider.name
    obj = checks.expect_object(data, provider, "the prediction")
    pid = obj.get("id")
    if not isinstance(pid, str) or not pid:
        raise checks.bad(provider, "the prediction has no id")
    urls = checks.expect_object(obj.get("urls"), provider, "the prediction's urls", optional=True)
    base = f"{model.provider.base_url}/v1/predictions/{pid}"
    get_url = checks.expect_text(urls.get("get"), provider, "urls.get") or base
    cancel_url = checks.expect_text(urls.get("cancel"), provider, "urls.cancel") or f"{base}/cancel"
    return Prediction(pid, get_url, cancel_url, checks.expect_text(urls.get("stream"), provider, "urls.stream"))


def output_text(value: Any, provider: str) -> str:
    """A prediction's output as text: a list of text pieces (joined) or a string."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(piece, str) for piece in value):
        return "".join(value)
    raise checks.bad(provider, "the prediction's output is not text")


def prediction_usage(obj: dict, provider: str) -> Usage | None:
    """Token counts from `metrics` (both needed), or None: the gateway estimates."""
    metrics = checks.expect_object(obj.get("metrics"), provider, "the prediction's metrics", optional=True)
    prompt, completion = metrics.get("input_token_count"), metrics.get("output_token_count")
    if prompt is None or completion is None:
        return None
    return Usage.reported(provider, prompt, completion)


def _finish_reason(usage: Usage | None, req: ChatRequest) -> str:
    """Replicate reports no stop reason: an answer that used the whole token budget
    was cut by it."""
    if usage is not None and req.max_tokens and usage.completion_tokens >= req.max_tokens:
        return "length"
    return "stop"


class ReplicateAdapter(Adapter):
    name = "replicate"

    # ---- translation -----------------------------------------------------------
    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        ref, version = _version_ref(model.upstream_id)
        owner, _, name = ref.partition("/")
        if not owner or not name or "/" in name:
            raise ProviderError(ErrorKind.NOT_FOUND, f"{model.provider.name}: upstream id {model.upstream_id!r} is not "
                                                     "'owner/name' or 'owner/name:version'")
        body: dict[str, Any] = {"input": prediction_input(model, req)}
        base = model.provider.base_url
        if version is None:
            url = f"{base}/v1/models/{owner}/{name}/predictions"
        else:
            url, body = f"{base}/v1/predictions", {"version": version, **body}
        if stream:
            body["stream"] = True
        return url, auth_headers(model), body

    def error_details(self, data: Any) -> tuple[str, str]:
        """problem+json: ("title: detail", title)."""
        if not isinstance(data, dict):
            return "", ""
        title, detail = str(data.get("title") or ""), str(data.get("detail") or "")
        if detail.startswith(title.rstrip(".")):  # "Request was throttled." / "Request was throttled. Expected ..."
            return detail, title
        return ": ".join(part for part in (title, detail) if part), title

    def http_error(self, provider: str, status: int, headers, raw: bytes) -> ProviderError:
        error = super().http_error(provider, status, headers, raw)
        if status == 402:  # out of credit: the account's problem, like a refused key
            error.kind = ErrorKind.AUTH
        elif status == 422 and "version" in error.message.lower():
            error.kind = ErrorKind.NOT_FOUND  # "Invalid version or not permitted": the target's config
        return error

    def parse_response(self, model: ModelInfo, data: Any, req: ChatRequest | None = None) -> ChatResponse:
        """A finished prediction -> the answer; a failed or canceled one -> its error."""
        provider = model.provider.name
        obj = checks.expect_object(data, provider, "the prediction")
        status = obj.get("status")
        if status != "succeeded":
            raise self._failure(model, obj)
        usage = prediction_usage(obj, provider)
        message = {"role": "assistant", "content": output_text(obj.get("output"), provider)}
        reason = _finish_reason(usage, req) if req is not None else "stop"
        return ChatResponse(
            model=str(obj.get("model") or model.upstream_id),
            choices=[{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
            usage=usage,
        )

    def _failure(self, model: ModelInfo, obj: dict) -> ProviderError:
        provider, status = model.provider.name, obj.get("status")
        if status == "canceled":
            return ProviderError(ErrorKind.UNAVAILABLE, f"{provider}: the prediction was canceled")
        if status != "failed":
            return checks.bad(provider, f"unexpected prediction status {str(status)[:40]!r}")
        text = obj.get("error")
        text = text if isinstance(text, str) else orjson.dumps(text).decode() if text else ""
        return provider_error(failure_kind(text), provider, "prediction failed", text,
                              secrets=[model.provider.api_key])

    # ---- the exchanges ---------------------------------------------------------
    async def _call(self, model: ModelInfo, method: str, url: str, headers: dict, timeout: float,
                    data: bytes | None = None) -> Any:
        return await self._http_json(model.provider.name, method, url, headers, data, timeout)

    async def complete(self, model: ModelInfo, req: ChatRequest, timeout: float) -> ChatResponse:
        url, headers, data = self.encode(model, req, stream=False)
        deadline = time.monotonic() + timeout
        # A second less than the timeout: Replicate answers when the wait is over, and
        # that answer (the prediction's id) must arrive before our read gives up.
        wait = min(int(model.provider.options.get("wait", MAX_WAIT_S)), int(timeout - 1))
        if wait >= 1:
            headers = {**headers, "prefer": f"wait={wait}"}
        obj = await self._call(model, "POST", url, headers, timeout, data)
        prediction = _prediction(model, obj)
        try:
            delay = POLL_FIRST_S
            while obj.get("status") not in TERMINAL:
                if time.monotonic() + delay >= deadline:
                    raise ProviderError(ErrorKind.TIMEOUT, f"{model.provider.name}: prediction not finished "
                                                           f"within {timeout:.1f} s (canceled)")
                await asyncio.sleep(delay)
                delay = min(delay * 2, POLL_MAX_S)
                obj = checks.expect_object(
                    await self._call(model, "GET", prediction.get_url, auth_headers(model),
                                     max(deadline - time.monotonic(), POLL_FIRST_S)),
                    model.provider.name, "the prediction")
            prediction.settled = True
        finally:
            if not prediction.settled:  # timed out, cancelled by the deadline, or polling failed
                self._cancel_later(model, prediction)
        return self.parse_response(model, obj, req)

    async def stream(self, model: ModelInfo, req: ChatRequest, timeout: float) -> AsyncIterator[ChatChunk]:
        url, headers, data = self.encode(model, req, stream=True)
        obj = await self._call(model, "POST", url, headers, timeout, data)
        prediction = _prediction(model, obj)
        provider = model.provider.name
        try:
            if obj.get("status") in ("failed", "canceled"):
                prediction.settled = True
                raise self._failure(model, obj)
            if not prediction.stream_url:
                raise ProviderError(ErrorKind.NOT_FOUND, f"{provider}: {model.upstream_id} does not stream "
                                                         "(the prediction has no urls.stream)")
            stream_headers = tracecontext.outgoing(
                {**auth_headers(model), "accept": "text/event-stream", "cache-control": "no-store"})
            try:
                response = await get_session().get(prediction.stream_url, headers=stream_headers,
                                                   timeout=timeout_for(timeout))
            except TRANSPORT_ERRORS as exc:
                raise transport_error(exc, provider) from None
            try:
                if response.status >= 400:
                    raise self.http_error(provider, response.status, response.headers, await response.read())
                async for chunk in self._events(model, response, prediction):
                    yield chunk
            except TRANSPORT_ERRORS as exc:
                raise transport_error(exc, provider) from None
            finally:
                response.close()
            usage = await self._final_usage(model, prediction, timeout)
            yield ChatChunk(model.upstream_id, [{"index": 0, "delta": {}, "finish_reason": _finish_reason(usage, req)}])
            if usage is not None:
                yield ChatChunk(model.upstream_id, [], usage=usage)
        finally:
            # Also on GeneratorExit: the gateway closes this iterator when its client
            # disconnects, and the prediction would otherwise run (and bill) to the end.
            if not prediction.settled:
                self._cancel_later(model, prediction)

    async def _events(self, model: ModelInfo, response: aiohttp.ClientResponse,
                      prediction: Prediction) -> AsyncIterator[ChatChunk]:
        """The stream's text pieces as chunks, until `done` (then `prediction.settled`)."""
        provider, name = model.provider.name, model.upstream_id
        first = True
        async for event, data in sse_events(response):
            if event == "output":
                delta: dict[str, Any] = {"content": data}
                if first:
                    delta["role"], first = "assistant", False
                yield ChatChunk(name, [{"index": 0, "delta": delta, "finish_reason": None}])
            elif event == "error":
                prediction.settled = True  # the prediction failed: nothing left to cancel
                raise self._failure(model, {"status": "failed", "error": _error_event_text(data)})
            elif event == "done":
                prediction.settled = True
                done = loads(data, provider) if data.strip() else {}
                reason = done.get("reason") if isinstance(done, dict) else None
                if reason == "canceled":
                    raise ProviderError(ErrorKind.UNAVAILABLE, f"{provider}: the prediction was canceled")
                if reason:
                    raise provider_error(ErrorKind.UNAVAILABLE, provider, "stream ended with an error", str(reason))
                return
            # `logs` events (the model's log lines) and unknown events carry no answer
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: stream ended before done")

    async def _final_usage(self, model: ModelInfo, prediction: Prediction, timeout: float) -> Usage | None:
        """The finished prediction's token counts (one GET), or None: the stream's text
        is already out, so a failure here only means the gateway estimates."""
        try:
            obj = await self._call(model, "GET", prediction.get_url, auth_headers(model),
                                   min(timeout, METRICS_TIMEOUT_S))
            if isinstance(obj, dict) and obj.get("status") == "succeeded":
                return prediction_usage(obj, model.provider.name)
        except ProviderError as exc:
            log.info("%s: no token counts after the stream (%s)", model.label, exc.kind)
        return None

    def _cancel_later(self, model: ModelInfo, prediction: Prediction) -> None:
        """POST urls.cancel in the background: the caller is being torn down (client
        gone, deadline) and must not wait for it."""
        prediction.settled = True
        try:
            spawn(self._cancel(model, prediction))
        except RuntimeError:  # no running loop (interpreter shutdown): nothing to schedule on
            log.warning("%s: prediction %s could not be canceled", model.label, prediction.id)

    async def _cancel(self, model: ModelInfo, prediction: Prediction) -> None:
        try:
            await self._call(model, "POST", prediction.cancel_url, auth_headers(model), CANCEL_TIMEOUT_S)
        except ProviderError as exc:
            log.warning("%s: canceling prediction %s failed: %s", model.label, prediction.id, exc.message)

    # ---- configuration and discovery ------------------------------------------------
    def check_config(self, spec: KindSpec, base_url: str, options: dict[str, Any]) -> dict[str, str]:
        errors = super().check_config(spec, base_url, options)
        problems = option_errors(options)
        if problems:
            errors["options"] = " ".join(problems)
        return errors

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        """The models of one Replicate collection (`options.discovery_collection`,
        default "language-models"): GET /v1/models lists every public model (images,
        audio, video), of which an editor adding chat models wants only these."""
        slug = provider.options.get("discovery_collection") or DEFAULT_COLLECTION
        data = await self._get_json(provider, f"{provider.base_url}/v1/collections/{slug}",
                                    provider_headers(provider), timeout)
        found = []
        for item in checks.expect_list(checks.expect_object(data, provider.name, "the collection").get("models"),
                                       provider.name, "the collection's models"):
            item = checks.expect_object(item, provider.name, "a model")
            owner, name = item.get("owner"), item.get("name")
            if isinstance(owner, str) and isinstance(name, str) and owner and name:
                found.append(DiscoveredModel(f"{owner}/{name}", f"{owner}/{name}", frozenset({"chat", "streaming"})))
        return found


def _error_event_text(data: str) -> str:
    """An `error` event's text: its JSON `detail` (or `error`), else the data as sent."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data
    if isinstance(obj, dict):
        return str(obj.get("detail") or obj.get("error") or data)
    return data
