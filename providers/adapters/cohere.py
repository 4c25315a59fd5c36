"""Cohere API v2: chat (POST {base}/v2/chat, JSON or typed SSE events), embeddings
(POST {base}/v2/embed) and the model list (GET {base}/v1/models), translated to and
from the gateway's OpenAI shapes. Authorization is `Bearer <key>`.

Translation, in short (docs/providers/cohere.md has the whole table):
- messages keep their roles (system, user, assistant, tool; developer -> system);
  text and image_url parts have the same shape in both APIs. An assistant turn with
  tool calls carries its text as `tool_plan` (Cohere's reflection before a call), and
  an answer's `tool_plan` comes back as the message's content, so a history the client
  sends back round-trips.
- tools are function tools with the same JSON-schema shape; `strict` on any tool sets
  `strict_tools`. tool_choice: "required" -> REQUIRED, "none" -> NONE, "auto" -> absent;
  a named function (which Cohere cannot express) is sent as REQUIRED with only that
  tool offered, which forces the same call.
- response_format: json_object as is; json_schema -> json_object with `json_schema`.
- sampling parameters by the `PARAMS` table; what v2 has no field for is left out,
  n > 1 is refused (RequestNotTranslatable: Cohere answers one choice).
- answers: text content, `thinking` content -> reasoning_content, tool calls; finish
  reasons by cohere_stream.FINISH_REASONS, while ERROR and TIMEOUT (a generation that
  failed) are provider errors. Usage is `billed_units` (what Cohere bills), `tokens`
  only when an answer has no billed units.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from ..catalog import ModelInfo, ProviderInfo
from ..kinds import KindSpec
from ..params import DROP, Param, as_list, drops, map_params, overlay, table
from ..types import (
    ChatChunk, ChatRequest, ChatResponse, DiscoveredModel, EmbeddingRequest, EmbeddingResponse, ErrorKind,
    ProviderError, Usage,
)
from . import checks
from .base import Adapter, RequestNotTranslatable, auth_headers, float32_vector, provider_headers
from .cohere_stream import cohere_usage, finish, parse_events

# Statuses Cohere documents beyond classify_status's: 402 (no payment method / credits)
# and 498 (invalid token) refuse the account like a 401; 499 (request cancelled) is
# transient; 501 (not implemented for this model) is the target's, not the request's.
STATUS_KINDS = {402: ErrorKind.AUTH, 498: ErrorKind.AUTH, 499: ErrorKind.UNAVAILABLE, 501: ErrorKind.NOT_FOUND}
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")
DEFAULT_INPUT_TYPE = "search_document"
TRUNCATE = ("NONE", "START", "END")
EMBED_BATCH = 96  # texts per /v2/embed call (Cohere's limit); longer inputs are sent in batches
MAX_MODEL_PAGES = 20
# /v1/models `features` -> capability names (providers.models.CAPABILITIES)
FEATURE_CAPABILITIES = {
    "tools": "tools", "tool_use": "tools", "strict_tools": "tools",
    "json_mode": "json_mode", "json_schema": "json_mode",
    "vision": "vision", "reasoning": "thinking",
}


def _one_choice(value: Any) -> Any:
    """`n`: Cohere answers one choice; asking for more cannot be honoured."""
    if value in (1, None):
        return DROP
    raise RequestNotTranslatable("'n' must be 1 for a Cohere model: the Chat API answers one choice.", param="n")


# OpenAI's sampling parameters in Cohere's v2 Chat API. Ranges are Cohere's (p 0.01..0.99,
# k 0..500, penalties 0..1, temperature >= 0); what v2 has no field for is dropped
# (rows below for the record: an unlisted parameter is never sent either).
PARAMS = table(
    Param("temperature", min=0.0),
    Param("top_p", to="p", min=0.01, max=0.99),
    Param("top_k", to="k", min=0, max=500),
    Param("stop", to="stop_sequences", transform=as_list),
    Param("seed"),
    Param("frequency_penalty", min=0.0, max=1.0),
    Param("presence_penalty", min=0.0, max=1.0),
    Param("n", transform=_one_choice),
    *drops("logit_bias", "logprobs", "top_logprobs", "user", "parallel_tool_calls", "service_tier", "store", "metadata"),
)


# ---- requests ------------------------------------------------------------------------
def _text(content: Any, where: str) -> str:
    """Text-only content (system, tool results, assistant turns) as one string."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise RequestNotTranslatable(f"'{where}.content' must be a string or a list of parts.", param=f"{where}.content")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type", "text") != "text":
            raise RequestNotTranslatable(f"'{where}.content[{j}]' must be a text part for a Cohere model.",
                                         param=f"{where}.content[{j}]")
        texts.append(str(part.get("text") or ""))
    return "".join(texts)


def _user_content(content: Any, where: str) -> Any:
    """A user turn: a string as is; parts as Cohere's text and image_url parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise RequestNotTranslatable(f"'{where}.content' must be a string or a list of parts.", param=f"{where}.content")
    parts: list[dict] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else None
            if not isinstance(url, str) or not url:
                raise RequestNotTranslatable(f"'{where}.content[{j}].image_url' must be an object with a 'url' string.",
                                             param=f"{where}.content[{j}].image_url")
            image_url = {"url": url}
            if image.get("detail") in ("auto", "low", "high"):
                image_url["detail"] = image["detail"]
            parts.append({"type": "image_url", "image_url": image_url})
        else:
            raise RequestNotTranslatable(f"'{where}.content[{j}]' ({kind}) cannot be sent to a Cohere model: "
                                         "it takes text and image_url parts.", param=f"{where}.content[{j}]")
    return parts


def _tool_call(call: Any, where: str) -> dict:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise RequestNotTranslatable(f"'{where}' must be a function call with a name.", param=where)
    arguments = fn.get("arguments")
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments or {}).decode()
    return {"id": str(call.get("id") or ""), "type": "function", "function": {"name": fn["name"], "arguments": arguments}}


def translate_messages(messages: list[dict]) -> list[dict]:
    """OpenAI chat messages -> Cohere v2 messages (same roles, developer -> system)."""
    out: list[dict] = []
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        role = msg.get("role")
        if role in ("system", "developer"):
            out.append({"role": "system", "content": _text(msg.get("content"), where)})
        elif role == "user":
            out.append({"role": "user", "content": _user_content(msg.get("content"), where)})
        elif role == "assistant":
            calls = msg.get("tool_calls") or []
            text = _text(msg.get("content"), where)
            if calls:
                item: dict[str, Any] = {"role": "assistant",
                                        "tool_calls": [_tool_call(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)]}
                if text:
                    item["tool_plan"] = text
                out.append(item)
            else:
                out.append({"role": "assistant", "content": text})
        elif role == "tool":
            if not msg.get("tool_call_id"):
                raise RequestNotTranslatable(f"'{where}.tool_call_id' is required.", param=f"{where}.tool_call_id")
            out.append({"role": "tool", "tool_call_id": str(msg["tool_call_id"]), "content": _text(msg.get("content"), where)})
        else:
            raise RequestNotTranslatable(f"'{where}.role' {role!r} has no Cohere equivalent.", param=f"{where}.role")
    return out


def _tools(params: dict) -> dict[str, Any]:
    """tools, strict_tools and tool_choice (see the module docstring for a named choice)."""
    body: dict[str, Any] = {}
    tools = []
    for j, tool in enumerate(params.get("tools") or []):
        fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise RequestNotTranslatable(f"'tools[{j}]' must be a function tool: Cohere takes no other kind.",
                                         param=f"tools[{j}]")
        spec = {"name": fn["name"], "parameters": fn.get("parameters") or {"type": "object", "properties": {}}}
        if fn.get("description"):
            spec["description"] = fn["description"]
        tools.append({"type": "function", "function": spec})
        if fn.get("strict"):
            body["strict_tools"] = True
    choice = params.get("tool_choice")
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        tools = [t for t in tools if t["function"]["name"] == name]
        if not tools:
            raise RequestNotTranslatable(f"'tool_choice' names {name!r}, which is not among the tools.", param="tool_choice")
        body["tool_choice"] = "REQUIRED"
    elif choice == "required":
        body["tool_choice"] = "REQUIRED"
    elif choice == "none":
        body["tool_choice"] = "NONE"
    elif choice not in (None, "auto"):
        raise RequestNotTranslatable(f"'tool_choice' {choice!r} is not one Cohere can express.", param="tool_choice")
    if tools:
        body["tools"] = tools
    return body


def _response_format(value: Any) -> dict[str, Any] | None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        return {"type": "json_object", **({"json_schema": schema} if isinstance(schema, dict) else {})}
    raise RequestNotTranslatable(f"'response_format' {kind!r} has no Cohere equivalent.", param="response_format")


# ---- answers ---------------------------------------------------------------------------
def _answer_message(message: dict, provider: str) -> dict[str, Any]:
    texts, thoughts, calls = [], [], []
    for item in checks.expect_list(message.get("content"), provider, "the message's content", optional=True):
        item = checks.expect_object(item, provider, "a content item")
        if item.get("type") == "text":
            texts.append(checks.expect_text(item.get("text"), provider, "a text item's text") or "")
        elif item.get("type") == "thinking":
            thoughts.append(checks.expect_text(item.get("thinking"), provider, "a thinking item's text") or "")
    for call in checks.expect_list(message.get("tool_calls"), provider, "tool_calls", optional=True):
        call = checks.expect_object(call, provider, "a tool call")
        fn = checks.expect_object(call.get("function"), provider, "a tool call's function")
        name = checks.expect_text(fn.get("name"), provider, "a tool call's name")
        if not name:
            raise checks.bad(provider, "a tool call without a name")
        arguments = checks.expect_text(fn.get("arguments"), provider, "a tool call's arguments") or "{}"
        calls.append({"id": checks.expect_text(call.get("id"), provider, "a tool call's id") or f"call_{len(calls)}",
                      "type": "function", "function": {"name": name, "arguments": arguments}})
    plan = checks.expect_text(message.get("tool_plan"), provider, "tool_plan") or ""
    text = "".join(texts)
    out: dict[str, Any] = {"role": "assistant", "content": (text or plan or None) if calls else text}
    if calls:
        out["tool_calls"] = calls
    if thoughts:
        out["reasoning_content"] = "".join(thoughts)
    return out


class CohereAdapter(Adapter):
    name = "cohere"
    serves_embeddings = True

    def build_request(self, model: ModelInfo, req: ChatRequest, stream: bool) -> tuple[str, dict, dict]:
        body: dict[str, Any] = {"model": model.upstream_id, "messages": translate_messages(req.messages)}
        map_params(overlay(PARAMS, model.provider.spec.param_table), req.params, passthrough=False, into=body)
        if req.max_tokens is not None:
            body["max_tokens"] = req.max_tokens
        body.update(_tools(req.params))
        response_format = _response_format(req.params.get("response_format"))
        if response_format is not None:
            body["response_format"] = response_format
        if stream:
            body["stream"] = True
        return f"{model.provider.base_url}/v2/chat", auth_headers(model), body

    def error_details(self, data: Any) -> tuple[str, str]:
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return data["message"], ""
        return "", ""

    def http_error(self, provider: str, status: int, headers, raw: bytes) -> ProviderError:
        error = super().http_error(provider, status, headers, raw)
        error.kind = STATUS_KINDS.get(status, error.kind)
        return error

    def parse_response(self, model: ModelInfo, data: Any) -> ChatResponse:
        provider = model.provider.name
        data = checks.expect_object(data, provider, "the answer")
        message = _answer_message(checks.expect_object(data.get("message"), provider, "the answer's message"), provider)
        reason = finish(data.get("finish_reason"), provider)
        return ChatResponse(
            model=model.upstream_id,
            choices=[{"index": 0, "message": message, "logprobs": None, "finish_reason": reason}],
            usage=cohere_usage(data.get("usage"), provider),
        )

    def parse_stream(self, model: ModelInfo, response: aiohttp.ClientResponse) -> AsyncIterator[ChatChunk]:
        return parse_events(model, response)

    # ---- embeddings ----------------------------------------------------------------------
    def build_embedding_request(self, model: ModelInfo, req: EmbeddingRequest) -> tuple[str, dict, dict]:
        for i, item in enumerate(req.input):
            if not isinstance(item, str):
                raise RequestNotTranslatable(f"'input[{i}]' must be text: Cohere embeds texts, not token ids.",
                                             param=f"input[{i}]")
        options = model.provider.options
        input_type = req.params.get("input_type") or options.get("input_type") or DEFAULT_INPUT_TYPE
        if input_type not in INPUT_TYPES:
            raise RequestNotTranslatable(f"'input_type' must be one of {', '.join(INPUT_TYPES)}.", param="input_type")
        body: dict[str, Any] = {"model": model.upstream_id, "texts": list(req.input), "input_type": input_type,
                                "embedding_types": ["float"]}
        if req.dimensions is not None:
            body["output_dimension"] = req.dimensions
        if options.get("truncate"):
            body["truncate"] = options["truncate"]
        return f"{model.provider.base_url}/v2/embed", auth_headers(model), body

    async def embed(self, model: ModelInfo, req: EmbeddingRequest, timeout: float) -> EmbeddingResponse:
        """One /v2/embed call per EMBED_BATCH texts (Cohere's limit per call), vectors in
        input order, usage summed."""
        if len(req.input) <= EMBED_BATCH:
            return await super().embed(model, req, timeout)
        vectors: list[list[float]] = []
        prompt, counted = 0, False
        for start in range(0, len(req.input), EMBED_BATCH):
            part = await super().embed(model, EmbeddingRequest(
                req.model, req.input[start:start + EMBED_BATCH], req.encoding_format, req.dimensions, req.params), timeout)
            vectors.extend(part.vectors)
            if part.usage is not None:
                prompt, counted = prompt + part.usage.prompt_tokens, True
        return EmbeddingResponse(model.upstream_id, vectors,
                                 Usage.reported(model.provider.name, prompt, 0) if counted else None)

    def parse_embedding_response(self, model: ModelInfo, data: Any, count: int) -> EmbeddingResponse:
        provider = model.provider.name
        answer = checks.expect_object(data, provider, "the embeddings answer")
        embeddings = answer.get("embeddings")
        if isinstance(embeddings, dict):  # embeddings_by_type (what embedding_types asks for)
            embeddings = embeddings.get("float")
        items = checks.expect_list(embeddings, provider, "the answer's float embeddings")
        if len(items) != count:
            raise checks.bad(provider, f"{len(items)} embeddings for {count} inputs")
        vectors = [float32_vector(item, provider, f"embedding {i}") for i, item in enumerate(items)]
        return EmbeddingResponse(model.upstream_id, vectors, cohere_usage(answer.get("meta"), provider, "meta"))

    # ---- configuration and discovery ---------------------------------------------------------
    def check_config(self, spec: KindSpec, base_url: str, options: dict[str, Any]) -> dict[str, str]:
        errors = super().check_config(spec, base_url, options)
        input_type = options.get("input_type")
        if input_type is not None and input_type not in INPUT_TYPES:
            errors["options"] = f'"input_type" must be one of {", ".join(INPUT_TYPES)}.'
        elif options.get("truncate") is not None and options["truncate"] not in TRUNCATE:
            errors["options"] = f'"truncate" must be one of {", ".join(TRUNCATE)}.'
        return errors

    async def list_models(self, provider: ProviderInfo, timeout: float) -> list[DiscoveredModel]:
        """GET /v1/models, every page: endpoints and features -> capabilities."""
        headers = provider_headers(provider)
        found: list[DiscoveredModel] = []
        token: str | None = None
        for _ in range(MAX_MODEL_PAGES):
            url = f"{provider.base_url}/v1/models?page_size=1000" + (f"&page_token={quote(token)}" if token else "")
            data = checks.expect_object(await self._get_json(provider, url, headers, timeout), provider.name, "the model list")
            for item in checks.expect_list(data.get("models"), provider.name, "the model list's models"):
                discovered = _discovered(checks.expect_object(item, provider.name, "a model"), provider.name)
                if discovered is not None:
                    found.append(discovered)
            token = checks.expect_text(data.get("next_page_token"), provider.name, "next_page_token")
            if not token:
                break
        return found


def _discovered(item: dict, provider: str) -> DiscoveredModel | None:
    """One /v1/models entry; None for a model the gateway cannot use (no chat or embed)."""
    name = checks.expect_text(item.get("name"), provider, "a model's name")
    endpoints = set(checks.expect_list(item.get("endpoints"), provider, "a model's endpoints", optional=True))
    capabilities: set[str] = set()
    if "chat" in endpoints:
        capabilities |= {"chat", "streaming"}
        features = checks.expect_list(item.get("features"), provider, "a model's features", optional=True)
        capabilities |= {FEATURE_CAPABILITIES[f] for f in features if f in FEATURE_CAPABILITIES}
    if "embed" in endpoints:
        capabilities.add("embeddings")
    if not name or not capabilities:
        return None
    context = item.get("context_length")
    window = int(context) if isinstance(context, (int, float)) and not isinstance(context, bool) and context > 0 else None
    label = f"{name} (deprecated)" if item.get("is_deprecated") else name
    return DiscoveredModel(name, label, frozenset(capabilities), window)
