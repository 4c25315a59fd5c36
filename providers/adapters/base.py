"""What every adapter shares: the contract, HTTP error classification, SSE parsing.

Adapters only translate. Retries, fallbacks and timeouts-as-policy live in the
routing engine, which decides on `ProviderError.kind` alone.

A call has two steps. Translation (`encode`: build_request plus serializing the body)
runs before anything is sent; whatever fails there is the request's fault, raised as
`RequestNotTranslatable` (the client's 400, never counted against the provider).
Only what happens after it (the HTTP exchange, parsing the answer) can be a
`ProviderError` about the provider.

Embeddings are the same two steps (`build_embedding_request`, then the exchange and
`parse_embedding_response`) for the adapters whose API has an embeddings endpoint
(`serves_embeddings`). The gateway always asks for floats and carries vectors as
float32 values (what every embeddings API computes; OpenAI's base64 is float32 too).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import email.utils
import logging
import math
import re
import sys
import time
from array import array
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from ..catalog import ModelInfo, ProviderInfo
from ..kinds import KindSpec
from ..http import get_session, iter_lines, timeout_for
from ..secrets import scrub_secrets
from .. import tracecontext  # the attempt's traceparent on provider requests
from ..types import (
    ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, EmbeddingRequest, EmbeddingResponse, ErrorKind, ProviderError,
)

log = logging.getLogger("gateway.adapters")
_SECRETISH = re.compile(r"(sk|pk|rk|key|tok)[-_][A-Za-z0-9_\-*]{8,}|[A-Za-z0-9_\-]{32,}", re.I)
_CONTEXT_HINTS = ("context length", "context_length", "maximum context", "too many tokens", "prompt is too long", "context window",
                  "maximum prompt length")
_POLICY_HINTS = ("content_policy", "content policy", "content_filter", "safety system")


def scrub(message: str, secrets: Iterable[str | None] = (), limit: int = 300) -> str:
    """Upstream error text made safe to show: every secret the gateway holds removed by
    value (and `secrets`, e.g. the provider's own key), then key-like strings, then
    bounded in length (after scrubbing, so a cut never leaves part of a key)."""
    text = _SECRETISH.sub("[redacted]", scrub_secrets(str(message or ""), secrets)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def provider_error(
    kind: ErrorKind,
    provider: str,
    what: str,
    upstream_text: Any = "",
    *,
    secrets: Iterable[str | None] = (),
    status: int | None = None,
    retry_after: float | None = None,
    limit: int = 300,
) -> ProviderError:
    """The one way to put text an upstream sent into a ProviderError: `what` is the
    gateway's own words, `upstream_text` (an error body's message, a stream error event)
    passes through `scrub`. The message reaches clients, logs and usage records."""
    text = scrub(str(upstream_text), secrets, limit) if upstream_text else ""
    message = f"{provider}: {what}" + (f" - {text}" if text else "")
    return ProviderError(kind, message, status=status, retry_after=retry_after)


def parse_retry_after(headers) -> float | None:
    """Seconds to wait, from `retry-after-ms` or `retry-after` (seconds or HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):  # neither seconds nor an HTTP date: ignore it
        return None
    return max(0.0, parsed.timestamp() - time.time())


def classify_status(status: int, message: str, code: str = "") -> ErrorKind:
    lowered = f"{code} {message}".lower()
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status == 408:
        return ErrorKind.TIMEOUT
    if status == 404:
        return ErrorKind.NOT_FOUND
    if status in (400, 409, 413, 422):
        if status == 413 or any(h in lowered for h in _CONTEXT_HINTS):
            return ErrorKind.CONTEXT_LENGTH
        if any(h in lowered for h in _POLICY_HINTS):
            return ErrorKind.CONTENT_POLICY
        return ErrorKind.BAD_REQUEST
    if status >= 500:
        return ErrorKind.UNAVAILABLE
    return ErrorKind.BAD_RESPONSE


TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def transport_error(exc: BaseException, provider: str) -> ProviderError:
    """Classify an HTTP client failure that produced no HTTP status."""
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return ProviderError(ErrorKind.TIMEOUT, f"{provider}: no answer within the timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ProviderError(ErrorKind.UNAVAILABLE, f"{provider}: connection failed ({type(exc).__name__})")
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError)):
        return ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: connection closed before the answer was complete")
    return ProviderError(ErrorKind.UNAVAILABLE, f"{provider}: {type(exc).__name__}")


def loads(raw: bytes | str, provider: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: answer is not valid JSON") from None


def tool_arguments(raw: str | None) -> dict:
    """An OpenAI tool call's JSON-string arguments as an object, for providers that
    want objects. Broken JSON (e.g. a call cut by max_tokens, replayed in the
    history) becomes {} rather than failing the request."""
    try:
        value = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class RequestNotTranslatable(Exception):
    """The gateway could not turn this request into the provider's wire format:
    nesting deeper than the JSON encoder takes, a malformed content part, a tool call
    it cannot convert. Nothing was sent. The request's fault, not the provider's:
    the engine neither counts it against a breaker nor reports it (even for a probe),
    and answers 400 (`param` names the offending part where known) when no target
    could take the request."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


# orjson refuses to serialize nesting deeper than this (its recursion limit)
JSON_MAX_DEPTH = 254


def _encode(adapter: Adapter, model: ModelInfo, req: ChatRequest, stream: bool) -> bytes:
    return orjson.dumps(adapter.build_request(model, req, stream)[2])


def _fails(adapter: Adapter, model: ModelInfo, req: ChatRequest, stream: bool) -> bool:
    try:
        _encode(adapter, model, req, stream)
    except ProviderError:
        return False
    except Exception:  # noqa: BLE001 - probing which part breaks the translation
        return True
    return False


def culprit(adapter: Adapter, model: ModelInfo, req: ChatRequest, stream: bool) -> str | None:
    """The request part whose translation fails ('messages[3]', 'tools', ...), found
    by translating parts of the request alone. Only on the failure path: a binary
    search over message prefixes, then one trial per parameter."""

    def fails(messages: list[dict], params: dict) -> bool:
        return _fails(adapter, model, dataclasses.replace(req, messages=messages, params=params), stream)

    messages = req.messages
    if fails(messages, {}):
        lo, hi = 1, len(messages)  # the shortest failing prefix has a length in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            if fails(messages[:mid], {}):
                hi = mid
            else:
                lo = mid + 1
        return f"messages[{hi - 1}]"
    for name, value in req.params.items():
        if fails(messages[:1], {name: value}):
            return name
    return None


def float32_vector(value: Any, provider: str, where: str) -> list[float]:
    """One embedding as a provider sent it (a list of numbers, or base64 of
    little-endian float32 values) -> its float32 values, or ProviderError(BAD_RESPONSE):
    not numbers, empty, or not finite as float32."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: {where} is not base64") from None
        if not raw or len(raw) % 4:
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: {where} is not a whole number of float32 values")
        vector = array("f", raw)
        if sys.byteorder == "big":
            vector.byteswap()
    elif isinstance(value, list) and value:
        try:
            vector = array("f", value)
        except TypeError:
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: {where} holds something other than numbers") from None
    else:
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: {where} is not a list of numbers")
    if not math.isfinite(sum(vector)):  # inf or nan anywhere (or beyond float32's range)
        raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: {where} holds a value that is not a finite float32")
    return vector.tolist()


class Adapter:
    """Base of all adapters. Subclasses implement the translation hooks."""

    name = "base"
    serves_embeddings = False  # has an embeddings endpoint (build_embedding_request, parse_embedding_response)

    # ---- hooks -------------------------------------------------------------
    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        """Return (url, headers, json body)."""
        raise NotImplementedError

    def parse_response(self, model: ModelInfo, data: Any) -> ChatResponse:
        raise NotImplementedError

    def parse_stream(self, model: ModelInfo, response: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
        raise NotImplementedError

    def error_details(self, data: Any) -> tuple[str, str]:
        """(message, code) from the provider's error body."""
        return "", ""

    def build_embedding_request(self, model: ModelInfo, req: EmbeddingRequest) -> tuple[str, dict, dict]:
        """Return (url, headers, json body) of an embeddings call; RequestNotTranslatable
        when the request cannot be put in this API (token ids where it takes text)."""
        raise RequestNotTranslatable(
            f"{model.label} cannot serve embeddings: the {model.provider.spec.wire} API has no embeddings endpoint."
        )

    def parse_embedding_response(self, model: ModelInfo, data: Any, count: int) -> EmbeddingResponse:
        """The answer's `count` vectors, in input order (float32_vector each)."""
        raise NotImplementedError

    def preload(self) -> None:
        """Load what this adapter needs that is slow to import (Bedrock: botocore), when the
        catalogue loads a model of its kind: off the event loop, before the first request."""

    def check_config(self, spec: KindSpec, base_url: str, options: dict[str, Any]) -> dict[str, str]:
        """A provider's settings as the admin, the API and YAML save them: errors by
        field ("base_url", "options"), empty when they are usable. The default: a base
        URL is needed unless the kind has a public endpoint. Adapters with options
        (region, API version, auth header) check them here, so a bad value is refused
        before it is saved, never found by the first request."""
        if not (base_url or spec.default_base_url):
            return {"base_url": f"A base URL is required for kind '{spec.kind}'."}
        return {}

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        """The models the provider's API lists (discovery in the admin), with the
        capabilities it reports. NotImplementedError when the API has no model list;
        ProviderError for a failed call."""
        raise NotImplementedError(f"the {provider.spec.wire} API has no model list")

    async def _get_json(self, provider: ProviderInfo, url: str, headers: dict, timeout: float) -> Any:
        """GET a JSON document (model lists): its JSON, or the classified error."""
        return await self._http_json(provider.name, "GET", url, headers, None, timeout)

    # ---- shared machinery --------------------------------------------------
    def encode(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, bytes]:
        """The translation step, before anything is sent: (url, headers, body bytes).

        Raises RequestNotTranslatable for anything the request itself makes fail, and
        ProviderError only for the target's own configuration (no API key)."""
        try:
            url, headers, body = self.build_request(model, req, stream)
            return url, headers, orjson.dumps(body)
        except (ProviderError, RequestNotTranslatable):
            raise
        except orjson.JSONEncodeError as exc:
            param = culprit(self, model, req, stream)
            where = f"'{param}'" if param else "The request"
            raise RequestNotTranslatable(
                f"{where} cannot be sent to {model.label}: nested deeper than {JSON_MAX_DEPTH} levels, "
                f"or holds a value JSON cannot carry ({exc}).",
                param=param,
            ) from None
        except Exception as exc:  # noqa: BLE001 - a shape the translation did not foresee: still the request's
            param = culprit(self, model, req, stream)
            where = f"'{param}'" if param else "The request"
            # Logged (without the content): a pattern of these may be a translation gap worth closing.
            log.warning("%s: request not translatable for %s (%s at %s)", self.name, model.label, type(exc).__name__, param)
            raise RequestNotTranslatable(
                f"{where} cannot be translated for {model.label} ({model.provider.spec.wire} format): "
                f"malformed or unsupported shape ({type(exc).__name__}).",
                param=param,
            ) from None

    async def complete(self, model: ModelInfo, req: ChatRequest, timeout: float) -> ChatResponse:
        url, headers, data = self.encode(model, req, stream=False)
        return self.parse_response(model, await self._exchange(model, url, headers, data, timeout))

    async def embed(self, model: ModelInfo, req: EmbeddingRequest, timeout: float) -> EmbeddingResponse:
        """The vectors of `req.input`, in order. Translation failures are
        RequestNotTranslatable (nothing sent), like chat's."""
        url, headers, body = self.build_embedding_request(model, req)
        data = await self._exchange(model, url, headers, orjson.dumps(body), timeout)
        return self.parse_embedding_response(model, data, len(req.input))

    async def _exchange(self, model: ModelInfo, url: str, headers: dict, data: bytes, timeout: float) -> Any:
        """POST a JSON body, read the whole answer: its JSON, or the classified error."""
        return await self._http_json(model.provider.name, "POST", url, headers, data, timeout)

    async def _http_json(self, provider: str, method: str, url: str, headers: dict, data: bytes | None,
                         timeout: float) -> Any:
        """One whole exchange: the answer's JSON; a transport failure, an HTTP error
        (`http_error`) or a body that is not JSON as a classified ProviderError."""
        headers = tracecontext.outgoing(headers)  # the attempt's traceparent (providers.tracecontext)
        try:
            async with get_session().request(method, url, data=data, headers=headers,
                                             timeout=timeout_for(timeout)) as response:
                raw = await response.read()
                status, response_headers = response.status, response.headers
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider) from None
        if status >= 400:
            raise self.http_error(provider, status, response_headers, raw)
        return loads(raw, provider)

    async def stream(self, model: ModelInfo, req: ChatRequest, timeout: float) -> AsyncIterator[ChatChunk]:
        url, headers, data = self.encode(model, req, stream=True)
        provider = model.provider.name
        headers = tracecontext.outgoing(headers)  # the attempt's traceparent (providers.tracecontext)
        try:
            response = await get_session().post(url, data=data, headers=headers,
                                                timeout=timeout_for(timeout))
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider) from None
        try:
            if response.status >= 400:
                raise self.http_error(provider, response.status, response.headers, await response.read())
            async for chunk in self.parse_stream(model, response):
                yield chunk
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider) from None
        finally:
            # Closing (not releasing) an unfinished response drops its connection: the
            # provider stops generating for a client who left.
            response.close()

    def http_error(self, provider: str, status: int, headers: CIMultiDictProxy | dict, raw: bytes) -> ProviderError:
        try:
            message, code = self.error_details(orjson.loads(raw))
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            message, code = "", ""
        kind = classify_status(status, message, code)
        return provider_error(kind, provider, f"HTTP {status}", message, status=status,
                              retry_after=parse_retry_after(headers))


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str]]:
    """Yield (event, data) pairs of a text/event-stream body (multi-line data joined)."""
    event, data = "", []
    async for line in iter_lines(response):
        if not line:
            if data:
                yield event, "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
    if data:
        yield event, "\n".join(data)


def auth_headers(model: ModelInfo, scheme: str = "bearer") -> dict[str, str]:
    return provider_headers(model.provider, scheme)


def provider_headers(provider: ProviderInfo, scheme: str = "bearer", prefix: str = "") -> dict[str, str]:
    """JSON headers, the provider's extra `options.headers`, and its key: as a Bearer
    token (`scheme` "bearer") or under the header named `scheme` ("x-api-key"), there
    after `prefix` and a space when one is given ("Token KEY": the custom kind)."""
    headers = {"content-type": "application/json", "accept": "application/json"}
    headers.update(provider.options.get("headers", {}))
    key = provider.api_key
    if provider.spec.needs_api_key and not key:
        # The reference itself (an env name, a file path, a vault path) is for the gateway's
        # log (catalogue load), not for clients' error messages.
        why = " (its key reference could not be read; the gateway's log says why)" if provider.api_key_ref else ""
        raise ProviderError(ErrorKind.AUTH, f"{provider.name}: no API key configured{why}")
    if key:
        if scheme == "bearer":
            headers["authorization"] = f"Bearer {key}"
        else:
            headers[scheme] = f"{prefix} {key}" if prefix else key
    return headers
