"""The `custom` kind: any OpenAI-compatible API behind an auth header of its own.

The wire format is OpenAI's (the same body, stream and errors as providers/adapters/
openai.py); only the key's header differs, from the provider's options:

- `auth_header`: the header carrying the key (default "authorization");
- `auth_scheme`: the word before the key (default "Bearer"; "" sends the raw key);
- `headers`: extra headers, as for every kind (the key's header wins over them).

So `{"auth_header": "x-api-key", "auth_scheme": ""}` sends `x-api-key: KEY`, and
`{"auth_scheme": "Token"}` sends `authorization: Token KEY`. Without a key no auth
header is sent (a self-hosted server that needs none).
"""

from __future__ import annotations

import re
from typing import Any

from ..catalog import ModelInfo, ProviderInfo
from ..kinds import KindSpec
from ..types import ChatRequest, EmbeddingRequest
from .base import provider_headers
from .openai import OpenAIAdapter

# RFC 7230 section 3.2.6: a header name (and an auth scheme) is a `token`.
TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
DEFAULT_HEADER, DEFAULT_SCHEME = "authorization", "Bearer"


def custom_headers(provider: ProviderInfo) -> dict[str, str]:
    options = provider.options
    header = str(options.get("auth_header") or DEFAULT_HEADER).lower()
    scheme = options.get("auth_scheme", DEFAULT_SCHEME)
    return provider_headers(provider, header, str(scheme or ""))


class CustomAdapter(OpenAIAdapter):
    name = "custom"

    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        url, _, body = super().build_request(model, req, stream)
        return url, custom_headers(model.provider), body

    def build_embedding_request(self, model: ModelInfo, req: EmbeddingRequest) -> tuple[str, dict, dict]:
        url, _, body = super().build_embedding_request(model, req)
        return url, custom_headers(model.provider), body

    def check_config(self, spec: KindSpec, base_url: str, options: dict[str, Any]) -> dict[str, str]:
        errors = super().check_config(spec, base_url, options)
        if errors:
            return errors
        header = options.get("auth_header", DEFAULT_HEADER)
        if not isinstance(header, str) or not TOKEN.match(header):
            return {"options": '"auth_header" must be an HTTP header name (letters, digits and !#$%&\'*+-.^_`|~).'}
        scheme = options.get("auth_scheme", DEFAULT_SCHEME)
        if not isinstance(scheme, str) or (scheme and not TOKEN.match(scheme)):
            return {"options": '"auth_scheme" must be one word such as "Bearer" or "Token", or "" for the raw key.'}
        for name, value in (options.get("headers") or {}).items():
            if not TOKEN.match(str(name)):
                return {"options": f'"headers": {name!r} is not an HTTP header name.'}
            if not isinstance(value, str) or "\r" in value or "\n" in value:
                return {"options": f'"headers.{name}" must be a string without line breaks.'}
        return {}
