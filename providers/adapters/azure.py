"""Azure OpenAI classic deployments: OpenAI's chat completions body, Azure's URL and key.

POST {base}/openai/deployments/{deployment}/chat/completions?api-version=V with the
header `api-key: KEY` (not a Bearer token); embeddings at .../deployments/{id}/embeddings.
The deployment is the model's upstream id. The API version is the provider's
`options.api_version`, or a deployment's own (`options.deployments[id].api_version`):
it decides which body fields exist, so the parameters an older version rejects are
dropped by rows (`SINCE`), not sent to fail.

Azure's additions to OpenAI's answers (`prompt_filter_results`, `content_filter_results`
per choice, a first stream chunk with no choices that only carries the prompt's filter
results) are read past; finish_reason "content_filter" passes through. Its content
filter refusing a prompt is HTTP 400 with error.code "content_filter", classified
CONTENT_POLICY by the shared rules. (The `azure_openai_v1` kind is the v1 API, which is
plain OpenAI dialect under /openai/v1 and needs none of this.)
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import aiohttp

from ..catalog import ModelInfo
from ..kinds import KindSpec
from ..params import Param, drops, map_params, overlay
from ..types import ChatChunk, ChatRequest, EmbeddingRequest
from .base import provider_headers
from .openai import OpenAIAdapter

# "2024-10-21" (GA) or "2025-04-01-preview"; the date orders versions.
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")

# The first API version (its date) whose chat completions body has each field (Azure
# OpenAI data-plane reference, one spec per version). Older versions answer 400
# "Unrecognized request argument", so under them these fields are dropped.
SINCE: dict[str, str] = {
    "tools": "2023-12-01", "tool_choice": "2023-12-01", "response_format": "2023-12-01",
    "seed": "2023-12-01", "logprobs": "2023-12-01", "top_logprobs": "2023-12-01",
    "parallel_tool_calls": "2024-08-01",
    "max_completion_tokens": "2024-09-01", "stream_options": "2024-09-01",
    "store": "2024-10-01", "metadata": "2024-10-01",
    "reasoning_effort": "2024-12-01",
    "prediction": "2025-01-01", "modalities": "2025-01-01", "audio": "2025-01-01",
}


@lru_cache(maxsize=64)
def version_rows(version: str) -> tuple[Param, ...]:
    """The drop rows of one API version (computed once per version)."""
    return drops(*(name for name, since in SINCE.items() if version[:10] < since))


def api_version(model: ModelInfo) -> str:
    """The deployment's own API version, else the provider's (check_config made sure
    one is there and well formed)."""
    options = model.provider.options
    own = (options.get("deployments") or {}).get(model.upstream_id) or {}
    return str(own.get("api_version") or options.get("api_version") or "")


def _resource(base_url: str) -> str:
    """The resource endpoint: a pasted ".../openai" suffix is not doubled."""
    return base_url[: -len("/openai")] if base_url.endswith("/openai") else base_url


class AzureOpenAIAdapter(OpenAIAdapter):
    name = "azure_openai"

    def _url(self, model: ModelInfo, operation: str, version: str) -> str:
        deployment = quote(model.upstream_id, safe="")
        return (f"{_resource(model.provider.base_url)}/openai/deployments/{deployment}/{operation}"
                f"?api-version={quote(version, safe='')}")

    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        version = api_version(model)
        rules = overlay(model.provider.spec.param_table, version_rows(version))
        body = map_params(rules, req.params, passthrough=True)
        body["model"] = model.upstream_id  # ignored by Azure (the URL names the deployment), sent as the SDK does
        body["messages"] = req.messages
        if stream:
            body["stream"] = True
            if model.provider.spec.stream_usage and version[:10] >= SINCE["stream_options"]:
                body["stream_options"] = {"include_usage": True}
        return self._url(model, "chat/completions", version), provider_headers(model.provider, "api-key"), body

    def build_embedding_request(self, model: ModelInfo, req: EmbeddingRequest) -> tuple[str, dict, dict]:
        version = api_version(model)
        _, _, body = super().build_embedding_request(model, req)
        return self._url(model, "embeddings", version), provider_headers(model.provider, "api-key"), body

    async def parse_stream(self, model: ModelInfo, response: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
        async for chunk in super().parse_stream(model, response):
            # Azure's first chunk (no choices, no usage) only reports the prompt's
            # content-filter results: nothing for the client.
            if chunk.choices or chunk.usage is not None:
                yield chunk

    def check_config(self, spec: KindSpec, base_url: str, options: dict[str, Any]) -> dict[str, str]:
        errors = super().check_config(spec, base_url, options)
        if errors:
            return errors
        version = options.get("api_version")
        if not isinstance(version, str) or not API_VERSION.match(version):
            return {"options": '"api_version" is required: an Azure OpenAI API version string such as '
                               '"2024-10-21" or "2025-04-01-preview" (quoted in YAML, or it reads as a date).'}
        deployments = options.get("deployments", {})
        if not isinstance(deployments, dict):
            return {"options": '"deployments" must be an object: {"<deployment>": {"api_version": "..."}}.'}
        for name, own in deployments.items():
            if not isinstance(own, dict) or set(own) - {"api_version"}:
                return {"options": f'"deployments.{name}" must be an object with only "api_version".'}
            if "api_version" in own and not (isinstance(own["api_version"], str)
                                             and API_VERSION.match(own["api_version"])):
                return {"options": f'"deployments.{name}.api_version" is not an API version such as "2024-10-21".'}
        return {}
