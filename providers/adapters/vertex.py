"""Vertex AI's Gemini: the Gemini API's bodies (gemini.py) under Vertex's URL and auth.

    POST {base}/v1/projects/{project}/locations/{location}/publishers/google/models/{id}:generateContent
         (:streamGenerateContent?alt=sse, :predict for text embeddings)
    Authorization: Bearer <OAuth access token>

Options: `project` (required), `location` (default "global"), `api_version` ("v1" or
"v1beta1"). An empty base URL is the regional endpoint https://{location}-aiplatform.googleapis.com
(https://aiplatform.googleapis.com for "global"). The provider's api_key is the
service account's JSON credential; access tokens come from vertex_auth.AccessTokens,
and a 401 (an expired or revoked token) gets one retry with a fresh token.

Embeddings are Vertex's text-embeddings `predict` ({"instances": [{"content"}]} ->
predictions[].embeddings.values, with token counts in their statistics).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from ..catalog import ModelInfo, ProviderInfo
from ..kinds import KindSpec
from ..types import (
    ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, EmbeddingRequest, EmbeddingResponse, ErrorKind, ProviderError,
    Usage,
)
from . import checks
from .base import RequestNotTranslatable, float32_vector
from .gemini import GeminiAdapter
from .gemini_request import generate_content_body
from .vertex_auth import AccessTokens

API_VERSIONS = ("v1", "v1beta1")
DEFAULT_LOCATION = "global"
T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")  # project ids and locations: no '/', '?' or spaces


def public_endpoint(location: str) -> str:
    return "https://aiplatform.googleapis.com" if location == "global" else f"https://{location}-aiplatform.googleapis.com"


class VertexAdapter(GeminiAdapter):
    name = "vertex_ai"
    serves_embeddings = True

    def __init__(self) -> None:
        self.tokens = AccessTokens()

    # ---- where and how to send -----------------------------------------------
    def _url(self, model: ModelInfo, method: str) -> str:
        options = model.provider.options
        location = options.get("location") or DEFAULT_LOCATION
        base = model.provider.base_url or public_endpoint(location)
        version = options.get("api_version") or "v1"
        upstream = model.upstream_id.removeprefix("publishers/google/models/")
        return (f"{base}/{version}/projects/{options.get('project')}/locations/{location}"
                f"/publishers/google/models/{upstream}:{method}")

    def _headers(self, provider: ProviderInfo) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        headers.update(provider.options.get("headers", {}))
        token = self.tokens.current(provider)
        if token is None:  # `_authorized` runs first; only a token expiring in between gets here
            raise ProviderError(ErrorKind.AUTH, f"{provider.name}: no access token")
        headers["authorization"] = f"Bearer {token}"
        return headers

    # ---- calls: a token first, one retry after a 401 ---------------------------
    async def _with_token(self, provider: ProviderInfo, timeout: float, call: Callable[[], Awaitable[T]]) -> T:
        """`call()` with a valid token cached; after a 401, once more with a fresh one."""
        await self.tokens.get(provider, timeout)
        try:
            return await call()
        except ProviderError as exc:
            if exc.status != 401:
                raise
        self.tokens.forget(provider)
        await self.tokens.get(provider, timeout)
        return await call()

    async def complete(self, model: ModelInfo, req: ChatRequest, timeout: float) -> ChatResponse:
        self._translatable(model, req)
        parent = super().complete
        return await self._with_token(model.provider, timeout, lambda: parent(model, req, timeout))

    async def embed(self, model: ModelInfo, req: EmbeddingRequest, timeout: float) -> EmbeddingResponse:
        self.build_embedding_body(model, req)  # translation failures before any token is fetched
        parent = super().embed
        return await self._with_token(model.provider, timeout, lambda: parent(model, req, timeout))

    async def stream(self, model: ModelInfo, req: ChatRequest, timeout: float) -> AsyncIterator[ChatChunk]:
        self._translatable(model, req)
        for attempt in (1, 2):
            await self.tokens.get(model.provider, timeout)
            sent = False
            try:
                async for chunk in super().stream(model, req, timeout):
                    sent = True
                    yield chunk
                return
            except ProviderError as exc:
                # A 401 comes before the first chunk: retrying then repeats nothing.
                if exc.status != 401 or sent or attempt == 2:
                    raise
                self.tokens.forget(model.provider)

    @staticmethod
    def _translatable(model: ModelInfo, req: ChatRequest) -> None:
        """Translate once before fetching a token: a request that cannot be sent is the
        client's 400 (RequestNotTranslatable), not a token exchange and an AUTH error.
        Other failures are left to encode() (after the token), which names the culprit."""
        try:
            generate_content_body(model, req)
        except RequestNotTranslatable:
            raise
        except Exception:  # noqa: BLE001 - see above
            pass

    # ---- embeddings: text-embeddings predict -----------------------------------
    def build_embedding_body(self, model: ModelInfo, req: EmbeddingRequest) -> dict[str, Any]:
        instances = []
        for i, text in enumerate(req.input):
            if not isinstance(text, str):
                raise RequestNotTranslatable(f"'input[{i}]': Vertex AI embeds text only, not token ids.",
                                             param=f"input[{i}]")
            instances.append({"content": text})
        body: dict[str, Any] = {"instances": instances}
        if req.dimensions is not None:
            body["parameters"] = {"outputDimensionality": req.dimensions}
        return body

    def build_embedding_request(self, model: ModelInfo, req: EmbeddingRequest) -> tuple[str, dict, dict]:
        return self._url(model, "predict"), self._headers(model.provider), self.build_embedding_body(model, req)

    def parse_embedding_response(self, model: ModelInfo, data: Any, count: int) -> EmbeddingResponse:
        provider = model.provider.name
        data = checks.expect_object(data, provider, "the embeddings answer")
        items = checks.expect_list(data.get("predictions"), provider, "the answer's predictions")
        if len(items) != count:
            raise checks.bad(provider, f"{len(items)} embeddings for {count} inputs")
        vectors, tokens = [], 0
        for i, item in enumerate(items):
            embedding = checks.expect_object(checks.expect_object(item, provider, "a prediction").get("embeddings"),
                                             provider, "a prediction's embeddings")
            vectors.append(float32_vector(embedding.get("values"), provider, f"embedding {i}"))
            stats = checks.expect_object(embedding.get("statistics"), provider, "embedding statistics", optional=True)
            count_i = stats.get("token_count", 0)
            tokens += int(count_i) if isinstance(count_i, (int, float)) and not isinstance(count_i, bool) else 0
        return EmbeddingResponse(model=model.upstream_id, vectors=vectors, usage=Usage.reported(provider, tokens, 0))

    # ---- configuration and discovery --------------------------------------------
    def check_config(self, spec: KindSpec, base_url: str, options: dict[str, Any]) -> dict[str, str]:
        project = options.get("project")
        if not isinstance(project, str) or not _NAME.match(project):
            return {"options": '"project" is required: the Google Cloud project id (e.g. "my-project-123").'}
        location = options.get("location", DEFAULT_LOCATION)
        if not isinstance(location, str) or not _NAME.match(location):
            return {"options": '"location" must be a Vertex AI region such as "us-central1", or "global".'}
        version = options.get("api_version")
        if version is not None and version not in API_VERSIONS:
            return {"options": f'"api_version" must be one of {", ".join(API_VERSIONS)} (default v1).'}
        return {}

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        raise NotImplementedError("Vertex AI's publisher model list is not read (add models by their id)")
