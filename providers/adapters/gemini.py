"""Google Gemini API (generativelanguage): generateContent, its SSE stream,
batchEmbedContents and the model list.

    POST {base}/v1beta/models/{id}:generateContent
    POST {base}/v1beta/models/{id}:streamGenerateContent?alt=sse
    POST {base}/v1beta/models/{id}:batchEmbedContents
    GET  {base}/v1beta/models
    header x-goog-api-key: <key>

The body translation is gemini_request.py, the answer's gemini_response.py. A stream is
SSE whose every event is a whole GenerateContentResponse (text pieces, complete
function calls, the running usageMetadata) and which simply ends: a stream that ends
before any candidate finished was cut. Vertex AI (vertex.py) speaks the same bodies
under another URL and auth, by overriding `_url` and `_headers`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from ..catalog import ModelInfo, ProviderInfo
from ..kinds import KindSpec
from ..types import (
    ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, EmbeddingRequest, EmbeddingResponse, ErrorKind,
    ProviderError, Usage,
)
from . import checks
from . import gemini_response as answer
from .base import Adapter, classify_status, float32_vector, loads, parse_retry_after, provider_error, provider_headers, sse_events
from .gemini_request import batch_embed_body, generate_content_body

API_VERSIONS = ("v1beta", "v1")
# supportedGenerationMethods -> the gateway's capabilities (providers.models.CAPABILITIES).
# The list names generateContent only; every such model also streams.
METHOD_CAPABILITIES = {
    "generateContent": ("chat", "streaming"),
    "embedContent": ("embeddings",),
    "batchEmbedContents": ("embeddings",),
}
# What the list does not say: Gemini models (not the Gemma ones the API also serves)
# take tools, images and JSON mode.
GEMINI_CHAT_CAPABILITIES = ("tools", "vision", "json_mode")
MAX_MODEL_PAGES = 20  # discovery reads at most this many pages of the model list


class GeminiAdapter(Adapter):
    name = "gemini"
    serves_embeddings = True

    # ---- where and how to send -----------------------------------------------
    def _base(self, provider: ProviderInfo) -> str:
        version = provider.options.get("api_version") or "v1beta"
        return f"{provider.base_url}/{version}"

    def _url(self, model: ModelInfo, method: str) -> str:
        """The model's URL for `method` (generateContent, streamGenerateContent, ...)."""
        upstream = model.upstream_id.removeprefix("models/")
        return f"{self._base(model.provider)}/models/{upstream}:{method}"

    def _headers(self, provider: ProviderInfo) -> dict[str, str]:
        return provider_headers(provider, scheme="x-goog-api-key")

    # ---- chat -----------------------------------------------------------------
    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        body = generate_content_body(model, req)
        if stream:
            url = self._url(model, "streamGenerateContent") + "?alt=sse"
            headers = {**self._headers(model.provider), "accept": "text/event-stream"}
            return url, headers, body
        return self._url(model, "generateContent"), self._headers(model.provider), body

    def parse_response(self, model: ModelInfo, data: Any) -> ChatResponse:
        provider = model.provider.name
        data = checks.expect_object(data, provider, "the answer")
        blocked = answer.blocked_prompt(data, provider)
        if blocked is not None:
            raise blocked
        candidates = checks.expect_list(data.get("candidates"), provider, "the answer's candidates", optional=True)
        if not candidates:
            raise checks.bad(provider, "answer has no candidates")
        choices = []
        for i, candidate in enumerate(candidates):
            candidate = checks.expect_object(candidate, provider, "a candidate")
            texts, thoughts, calls = answer.read_parts(candidate.get("content"), provider)
            message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
            if thoughts:
                message["reasoning_content"] = "".join(thoughts)
            if calls:
                message["tool_calls"] = calls
            finish = answer.finish_reason(candidate.get("finishReason"), bool(calls), provider) or "stop"
            choices.append({"index": checks.expect_index(candidate.get("index"), provider, i), "message": message,
                            "logprobs": None, "finish_reason": finish})
        return ChatResponse(model=str(data.get("modelVersion") or model.upstream_id), choices=choices,
                            usage=answer.usage_of(data.get("usageMetadata"), provider))

    async def parse_stream(self, model: ModelInfo, response: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
        """One chunk per event: role on a candidate's first event, text, reasoning and
        whole tool calls as deltas (Gemini sends each call complete), the finish reason;
        then one usage chunk from the last usageMetadata when the stream ends."""
        provider = model.provider.name
        name = model.upstream_id
        usage: Usage | None = None
        started: set[int] = set()
        finished: set[int] = set()
        tool_counts: dict[int, int] = {}  # candidate index -> tool calls sent so far
        async for _event, data in sse_events(response):
            obj = checks.expect_object(loads(data, provider), provider, "a stream event")
            if "error" in obj:
                message, code = answer.error_details(obj)
                status = obj["error"].get("code") if isinstance(obj["error"], dict) else None
                status = status if type(status) is int else 500  # an error event without a code: the server's
                kind = answer.error_kind(status, message, code, classify_status(status, message, code))
                raise provider_error(kind, provider, "stream error", message, secrets=[model.provider.api_key], limit=200)
            blocked = answer.blocked_prompt(obj, provider)
            if blocked is not None:
                raise blocked
            name = str(obj.get("modelVersion") or name)
            usage = answer.usage_of(obj.get("usageMetadata"), provider) or usage
            choices = []
            for i, candidate in enumerate(checks.expect_list(obj.get("candidates"), provider, "candidates", optional=True)):
                candidate = checks.expect_object(candidate, provider, "a candidate")
                index = checks.expect_index(candidate.get("index"), provider, i)
                texts, thoughts, calls = answer.read_parts(candidate.get("content"), provider)
                delta: dict[str, Any] = {}
                if index not in started:
                    started.add(index)
                    delta["role"] = "assistant"
                    delta["content"] = ""
                if texts:
                    delta["content"] = "".join(texts)
                if thoughts:
                    delta["reasoning_content"] = "".join(thoughts)
                if calls:
                    first = tool_counts.get(index, 0)
                    delta["tool_calls"] = [{"index": first + k, **call} for k, call in enumerate(calls)]
                    tool_counts[index] = first + len(calls)
                finish = answer.finish_reason(candidate.get("finishReason"), bool(tool_counts.get(index)), provider)
                if finish:
                    finished.add(index)
                if delta or finish:
                    choices.append({"index": index, "delta": delta, "finish_reason": finish})
            if choices:
                yield ChatChunk(name, choices)
        if not finished or finished != started:
            raise ProviderError(ErrorKind.BAD_RESPONSE, f"{provider}: stream ended before the answer finished")
        if usage is not None:
            yield ChatChunk(name, [], usage=usage)

    # ---- errors -----------------------------------------------------------------
    def error_details(self, data: Any) -> tuple[str, str]:
        return answer.error_details(data)

    def http_error(self, provider: str, status: int, headers, raw: bytes) -> ProviderError:
        try:
            message, code = self.error_details(loads(raw, provider))
        except ProviderError:
            message, code = "", ""
        kind = answer.error_kind(status, message, code, classify_status(status, message, code))
        retry_after = parse_retry_after(headers)
        if retry_after is None and status == 429:
            retry_after = answer.retry_delay(raw)
        return provider_error(kind, provider, f"HTTP {status}" + (f" {code}" if code else ""), message,
                              status=status, retry_after=retry_after)

    # ---- embeddings -------------------------------------------------------------
    def build_embedding_request(self, model: ModelInfo, req: EmbeddingRequest) -> tuple[str, dict, dict]:
        return self._url(model, "batchEmbedContents"), self._headers(model.provider), batch_embed_body(model, req)

    def parse_embedding_response(self, model: ModelInfo, data: Any, count: int) -> EmbeddingResponse:
        provider = model.provider.name
        data = checks.expect_object(data, provider, "the embeddings answer")
        items = checks.expect_list(data.get("embeddings"), provider, "the answer's embeddings")
        if len(items) != count:
            raise checks.bad(provider, f"{len(items)} embeddings for {count} inputs")
        vectors = [float32_vector(checks.expect_object(item, provider, "an embedding").get("values"), provider,
                                  f"embedding {i}") for i, item in enumerate(items)]
        # batchEmbedContents reports no token counts: the gateway estimates them.
        return EmbeddingResponse(model=model.upstream_id, vectors=vectors, usage=None)

    # ---- configuration and discovery --------------------------------------------
    def check_config(self, spec: KindSpec, base_url: str, options: dict[str, Any]) -> dict[str, str]:
        errors = super().check_config(spec, base_url, options)
        version = options.get("api_version")
        if version is not None and version not in API_VERSIONS:
            errors["options"] = f'"api_version" must be one of {", ".join(API_VERSIONS)} (default v1beta).'
        return errors

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        """GET {base}/v1beta/models, every page (at most MAX_MODEL_PAGES): supportedGenerationMethods
        -> capabilities, inputTokenLimit -> context window, outputTokenLimit, `thinking` -> thinking."""
        found: list[DiscoveredModel] = []
        token = ""
        headers = self._headers(provider)
        for _ in range(MAX_MODEL_PAGES):
            url = f"{self._base(provider)}/models?pageSize=1000" + (f"&pageToken={token}" if token else "")
            page = checks.expect_object(await self._get_json(provider, url, headers, timeout), provider.name, "the model list")
            for item in checks.expect_list(page.get("models"), provider.name, "the models", optional=True):
                item = checks.expect_object(item, provider.name, "a model")
                found.append(discovered(item))
            token = page.get("nextPageToken") or ""
            if not token:
                break
        return found


def discovered(item: dict) -> DiscoveredModel:
    """One entry of models.list as a DiscoveredModel."""
    methods = item.get("supportedGenerationMethods") or []
    capabilities = {cap for method in methods for cap in METHOD_CAPABILITIES.get(method, ())}
    upstream_id = str(item.get("name") or "").removeprefix("models/")
    if "chat" in capabilities and upstream_id.startswith("gemini-"):
        capabilities.update(GEMINI_CHAT_CAPABILITIES)
    if item.get("thinking") is True:
        capabilities.add("thinking")

    def limit(name: str) -> int | None:
        value = item.get(name)
        return value if type(value) is int and value > 0 else None

    return DiscoveredModel(
        upstream_id=upstream_id,
        display_name=str(item.get("displayName") or ""),
        capabilities=frozenset(capabilities),
        context_window=limit("inputTokenLimit"),
        max_output_tokens=limit("outputTokenLimit"),
    )
