"""AWS Bedrock's Converse API (POST /model/{modelId}/converse and /converse-stream),
SigV4-signed with botocore's signer.

Transport here; the JSON translation is bedrock_translate.py, the binary event-stream
framing bedrock_eventstream.py.

Auth: the provider's secret is "ACCESS_KEY_ID:SECRET_ACCESS_KEY" (or with
":SESSION_TOKEN"); an empty one means the process environment's AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (botocore's EnvProvider alone: never the
instance-metadata service, which would be network I/O on the event loop). Every request
is signed in `encode`, after translation and before anything is sent, for service
`bedrock` in `options.region`. The model id is percent-encoded into the path as botocore
does (`:` -> %3A, `/` -> %2F: inference-profile ARNs), and the URL is handed to aiohttp
as already encoded, since requoting it would change the path that was signed.

Streams are application/vnd.amazon.eventstream messages; an exception message inside
the stream (throttlingException, modelStreamErrorException, ...) is a ProviderError of
its kind, a frame with a bad CRC is bad_response.

botocore is not imported with the adapter registry: a gateway without a Bedrock provider
never loads it, and one with a Bedrock model loads it when the catalogue loads (`preload`,
off the event loop), not in the first request.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from urllib.parse import quote

import aiohttp
import orjson
from yarl import URL

from ..catalog import ModelInfo, ProviderInfo
from ..kinds import KindSpec
from ..params import map_params, overlay
from ..types import ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, ErrorKind, ProviderError
from . import bedrock_translate as translate
from . import checks
from .base import Adapter, classify_status, loads, parse_retry_after, provider_error
from .bedrock_eventstream import EventStreamDecoder, FrameError

if TYPE_CHECKING:
    from botocore.credentials import Credentials

SERVICE = "bedrock"
REGION = re.compile(r"[a-z]{2}(-[a-z0-9]+)+-\d{1,2}")
EVENT_STREAM = "application/vnd.amazon.eventstream"
# x-amzn-errortype (or the body's __type/code) -> kind. Unlisted types: by status.
ERROR_KINDS = {
    "ThrottlingException": ErrorKind.RATE_LIMITED,
    "ServiceQuotaExceededException": ErrorKind.RATE_LIMITED,
    "ModelNotReadyException": ErrorKind.UNAVAILABLE,  # a 429 that is no quota: the model is loading
    "AccessDeniedException": ErrorKind.AUTH,
    "UnrecognizedClientException": ErrorKind.AUTH,
    "InvalidSignatureException": ErrorKind.AUTH,
    "IncompleteSignatureException": ErrorKind.AUTH,
    "MissingAuthenticationTokenException": ErrorKind.AUTH,
    "ExpiredTokenException": ErrorKind.AUTH,
    "ResourceNotFoundException": ErrorKind.NOT_FOUND,
    "ModelTimeoutException": ErrorKind.TIMEOUT,
    "ModelErrorException": ErrorKind.UNAVAILABLE,  # 424: the model failed on this request
    "InternalServerException": ErrorKind.UNAVAILABLE,
    "ServiceUnavailableException": ErrorKind.UNAVAILABLE,
}
# How Bedrock words a prompt beyond the model's window (a ValidationException), besides
# the wordings classify_status knows.
CONTEXT_HINTS = ("input is too long", "too many input tokens", "exceeds the maximum context")
# The exceptions ConverseStream may send after its 200 (`:exception-type`).
STREAM_ERROR_KINDS = {
    "throttlingException": ErrorKind.RATE_LIMITED,
    "modelStreamErrorException": ErrorKind.UNAVAILABLE,
    "internalServerException": ErrorKind.UNAVAILABLE,
    "serviceUnavailableException": ErrorKind.UNAVAILABLE,
    "modelTimeoutException": ErrorKind.TIMEOUT,
}


def model_path(model_id: str) -> str:
    """The model id as botocore puts it in the path (botocore.utils.percent_encode: every
    byte but letters, digits and -._~ percent-encoded, so ':' -> %3A and '/' -> %2F)."""
    return quote(model_id, safe="-._~")


def region_of(provider: ProviderInfo) -> str:
    return str(provider.options.get("region") or "")


def runtime_base(provider: ProviderInfo) -> str:
    return (provider.base_url or f"https://bedrock-runtime.{region_of(provider)}.amazonaws.com").rstrip("/")


def control_base(provider: ProviderInfo) -> str:
    """Where ListFoundationModels lives: the control plane (bedrock.{region}), not the runtime."""
    return str(provider.options.get("control_url") or f"https://bedrock.{region_of(provider)}.amazonaws.com").rstrip("/")


def credentials(provider: ProviderInfo) -> Credentials:
    """The provider's AWS credentials: its secret, else the environment's; ProviderError(AUTH)
    when there are none or the secret has the wrong shape."""
    from botocore.credentials import Credentials, EnvProvider  # botocore loads on first use (~0.3 s)

    key = provider.api_key
    if key:
        parts = key.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise ProviderError(ErrorKind.AUTH, f"{provider.name}: the API key must be "
                                                "ACCESS_KEY_ID:SECRET_ACCESS_KEY or ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN")
        return Credentials(parts[0], parts[1], parts[2] if len(parts) == 3 else None)
    found = EnvProvider(environ=os.environ).load()
    if found is None:
        missing = provider.api_key_ref or "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
        raise ProviderError(ErrorKind.AUTH, f"{provider.name}: no AWS credentials configured ({missing} is not set)")
    return found.get_frozen_credentials()


def sign(provider: ProviderInfo, method: str, url: str, headers: dict[str, str], body: bytes) -> dict[str, str]:
    """`headers` plus X-Amz-Date, Authorization (and X-Amz-Security-Token) for this request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials(provider), SERVICE, region_of(provider)).add_auth(request)
    return dict(request.headers.items())


def _headers(provider: ProviderInfo, accept: str) -> dict[str, str]:
    return {"content-type": "application/json", "accept": accept, **provider.options.get("headers", {})}


def _validation_kind(message: str, code: str) -> ErrorKind:
    """A ValidationException's kind: context_length when its text says the prompt is too
    long, else what classify_status makes of a 400 (bad_request, content_policy, ...)."""
    if any(hint in message.lower() for hint in CONTEXT_HINTS):
        return ErrorKind.CONTEXT_LENGTH
    return classify_status(400, message, code)


def _error_type(headers: Any, data: Any) -> str:
    """AWS's error code: the x-amzn-errortype header ("ValidationException:http://..."),
    else the body's __type ("com.amazon...#ValidationException") or code."""
    raw = headers.get("x-amzn-errortype") or ""
    if not raw and isinstance(data, dict):
        raw = str(data.get("__type") or data.get("code") or "")
    return raw.split(":", 1)[0].rsplit("#", 1)[-1]


class BedrockAdapter(Adapter):
    name = "bedrock"

    # ---- request ------------------------------------------------------------
    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        system, messages = translate.translate_messages(req.messages)
        body: dict[str, Any] = {"messages": messages}
        if system:
            body["system"] = system
        params = {**req.params, "max_tokens": req.max_tokens}
        map_params(overlay(translate.PARAMS, model.provider.spec.param_table), params, passthrough=False, into=body)
        config = translate.tool_config(req.params, messages)
        if config:
            body["toolConfig"] = config
        action = "converse-stream" if stream else "converse"
        url = f"{runtime_base(model.provider)}/model/{model_path(model.upstream_id)}/{action}"
        return url, _headers(model.provider, EVENT_STREAM if stream else "application/json"), body

    def preload(self) -> None:
        import botocore.auth  # noqa: F401 - ~0.3 s, paid by the catalogue load, not a request
        import botocore.awsrequest  # noqa: F401
        import botocore.credentials  # noqa: F401

    def encode(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[URL, dict, bytes]:  # type: ignore[override]
        """Translate, then sign: the signature covers the exact body bytes and path."""
        url, headers, data = super().encode(model, req, stream)
        return URL(url, encoded=True), sign(model.provider, "POST", url, headers, data), data

    # ---- answers --------------------------------------------------------------
    def parse_response(self, model: ModelInfo, data: Any) -> ChatResponse:
        provider = model.provider.name
        data = checks.expect_object(data, provider, "the answer")
        output = checks.expect_object(data.get("output"), provider, "output")
        message = checks.expect_object(output.get("message"), provider, "output.message")
        usage = data.get("usage")
        return ChatResponse(
            model=model.upstream_id,
            choices=[{"index": 0, "message": translate.message(message.get("content"), provider), "logprobs": None,
                      "finish_reason": translate.finish(data.get("stopReason"), provider)}],
            usage=translate.usage(usage, provider) if usage is not None else None,
        )

    async def parse_stream(self, model: ModelInfo, response: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
        """One chunk per event with an internal meaning: the role (messageStart), text,
        reasoning and tool-call deltas (contentBlockStart/Delta), the finish reason
        (messageStop), usage (metadata, the last event)."""
        provider = model.provider.name
        name = model.upstream_id
        decoder = EventStreamDecoder()
        tool_index: dict[int, int] = {}  # contentBlockIndex -> OpenAI tool_calls index
        stopped = False
        async for data in response.content.iter_any():
            try:
                messages = decoder.feed(data)
            except FrameError as exc:
                raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: broken event-stream frame ({exc})") from None
            for headers, payload in messages:
                kind = headers.get(":message-type")
                if kind in ("exception", "error"):
                    raise self._stream_error(model, headers, payload)
                if kind != "event":
                    continue
                event = headers.get(":event-type")
                obj = checks.expect_object(loads(payload, provider), provider, f"a {event} event")
                if event == "metadata":
                    usage = obj.get("usage")
                    yield ChatChunk(name, [], usage=translate.usage(usage, provider) if usage is not None else None)
                    continue
                delta = self._delta(event, obj, provider, tool_index)
                if event == "messageStop":
                    stopped = True
                    choice = {"index": 0, "delta": {}, "finish_reason": translate.finish(obj.get("stopReason"), provider)}
                    yield ChatChunk(name, [choice])
                elif delta is not None:
                    yield ChatChunk(name, [{"index": 0, "delta": delta, "finish_reason": None}])
        try:
            decoder.finish()
        except FrameError as exc:
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: broken event-stream frame ({exc})") from None
        if not stopped:
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: stream ended without messageStop")

    @staticmethod
    def _delta(event: str | None, obj: dict, provider: str, tool_index: dict[int, int]) -> dict | None:
        """The OpenAI delta of a messageStart/contentBlockStart/contentBlockDelta event (None: nothing to say)."""
        if event == "messageStart":
            return {"role": "assistant", "content": ""}
        if event not in ("contentBlockStart", "contentBlockDelta"):
            return None  # contentBlockStop, and events Converse may add
        block = checks.expect_index(obj.get("contentBlockIndex"), provider, 0)
        if event == "contentBlockStart":
            start = checks.expect_object(obj.get("start"), provider, "contentBlockStart.start", optional=True)
            use = checks.expect_object(start.get("toolUse"), provider, "contentBlockStart.start.toolUse", optional=True)
            if not use:
                return None
            index = tool_index.setdefault(block, len(tool_index))
            checks.expect_text(use.get("name"), provider, "a toolUse start's name")
            return {"tool_calls": [{"index": index, "id": use.get("toolUseId"), "type": "function",
                                    "function": {"name": use.get("name"), "arguments": ""}}]}
        delta = checks.expect_object(obj.get("delta"), provider, "contentBlockDelta.delta")
        if "text" in delta:
            return {"content": checks.expect_text(delta["text"], provider, "a text delta") or ""}
        if "toolUse" in delta:
            use = checks.expect_object(delta["toolUse"], provider, "a toolUse delta")
            partial = checks.expect_text(use.get("input"), provider, "a toolUse delta's input") or ""
            return {"tool_calls": [{"index": tool_index.get(block, 0), "function": {"arguments": partial}}]}
        if "reasoningContent" in delta:
            thought = checks.expect_object(delta["reasoningContent"], provider, "a reasoningContent delta")
            if "text" in thought:
                return {"reasoning_content": checks.expect_text(thought["text"], provider, "a reasoning delta") or ""}
            if "signature" in thought:
                return {"reasoning_signature": checks.expect_text(thought["signature"], provider, "a signature delta") or ""}
        return None  # redacted reasoning, citations: nothing the OpenAI shape carries

    def _stream_error(self, model: ModelInfo, headers: dict, payload: bytes) -> ProviderError:
        provider = model.provider.name
        if headers.get(":message-type") == "error":  # the generic form: the code and text in headers
            code, message = str(headers.get(":error-code") or ""), str(headers.get(":error-message") or "")
        else:
            code = str(headers.get(":exception-type") or "")
            try:
                body = orjson.loads(payload)
            except orjson.JSONDecodeError:
                body = None
            message = str(body.get("message") or body.get("Message") or "") if isinstance(body, dict) else ""
        kind = STREAM_ERROR_KINDS.get(code)
        if kind is None:
            kind = _validation_kind(message, code) if code == "validationException" else ErrorKind.UNAVAILABLE
        return provider_error(kind, provider, f"stream error {code or 'unknown'}", message,
                              secrets=[model.provider.api_key], limit=200)

    # ---- errors ----------------------------------------------------------------
    def error_details(self, data: Any) -> tuple[str, str]:
        if isinstance(data, dict):
            return str(data.get("message") or data.get("Message") or ""), ""
        return "", ""

    def http_error(self, provider: str, status: int, headers, raw: bytes) -> ProviderError:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        message, _ = self.error_details(data)
        code = _error_type(headers, data)
        kind = ERROR_KINDS.get(code) or (_validation_kind(message, code) if code == "ValidationException"
                                         else classify_status(status, message, code))
        what = f"HTTP {status}" + (f" {code}" if code else "")
        return provider_error(kind, provider, what, message, status=status, retry_after=parse_retry_after(headers))

    # ---- configuration and discovery ---------------------------------------------
    def check_config(self, spec: KindSpec, base_url: str, options: dict[str, Any]) -> dict[str, str]:
        """`options.region` is required (it is in every signature, and names the public
        endpoint when the base URL is blank); `control_url`, when set, is an http(s) URL."""
        region = options.get("region")
        if not isinstance(region, str) or not REGION.fullmatch(region):
            return {"options": '"region" is required: an AWS region such as "us-east-1".'}
        control = options.get("control_url")
        if control is not None and not (isinstance(control, str) and re.match(r"https?://[^/\s]+", control)):
            return {"options": '"control_url" must be an http(s) URL (the Bedrock control-plane endpoint).'}
        return {}

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        """ListFoundationModels (GET {control plane}/foundation-models), signed like chat:
        the models that answer text, with vision (image input) and streaming as reported."""
        url = f"{control_base(provider)}/foundation-models"
        headers = sign(provider, "GET", url, {"accept": "application/json"}, b"")
        data = checks.expect_object(await self._get_json(provider, url, headers, timeout), provider.name, "the model list")
        found = []
        for item in checks.expect_list(data.get("modelSummaries"), provider.name, "modelSummaries"):
            item = checks.expect_object(item, provider.name, "a model summary")
            if "TEXT" not in (item.get("outputModalities") or []):
                continue  # embedding and image models: not chat models
            capabilities = {"chat"}
            if item.get("responseStreamingSupported"):
                capabilities.add("streaming")
            if "IMAGE" in (item.get("inputModalities") or []):
                capabilities.add("vision")
            found.append(DiscoveredModel(
                upstream_id=str(item.get("modelId")),
                display_name=" ".join(str(p) for p in (item.get("providerName"), item.get("modelName")) if p),
                capabilities=frozenset(capabilities)))
        return found
