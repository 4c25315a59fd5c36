"""OpenAI chat requests in Gemini's `generateContent` shape (Gemini API and Vertex AI).

What differs from OpenAI, and how it is translated:

- `contents` alternate `user` and `model` turns (assistant -> model); system and
  developer messages become the top-level `systemInstruction`.
- Assistant tool calls are `functionCall` parts (arguments as an object), tool results
  `functionResponse` parts in a user turn, named after the call they answer (Gemini
  matches results to calls by name and order, not by id).
- `thoughtSignature`: Gemini 2.5/3 signs the parts it generates (notably functionCall
  parts) and rejects the next turn when the signature is not sent back. The gateway
  hands it to the client inside the tool call as `extra_content.google.thought_signature`
  (what Google's own OpenAI-compatible endpoint does) and puts it back on the
  functionCall part here.
- Images and files: data: URLs -> `inlineData`; http(s)/gs URLs -> `fileData` with the
  MIME type guessed from the name (a URL whose type cannot be told is the client's 400).
- Sampling parameters -> `generationConfig` by the `PARAMS` table; `response_format`,
  tools, tool choice and reasoning effort by hand (no table can say them).
"""

from __future__ import annotations

import mimetypes
from typing import Any

from ..catalog import ModelInfo
from ..params import Param, as_list, map_params, overlay, table
from ..tokens import message_text
from ..types import ChatRequest, EmbeddingRequest
from .base import RequestNotTranslatable, tool_arguments

# OpenAI's sampling parameters in generationConfig. Gemini's temperature range is 0..2
# like OpenAI's; candidateCount is OpenAI's `n`.
PARAMS = table(
    Param("temperature", to="generationConfig.temperature", min=0.0, max=2.0),
    Param("top_p", to="generationConfig.topP", min=0.0, max=1.0),
    Param("top_k", to="generationConfig.topK", min=1),
    Param("stop", to="generationConfig.stopSequences", transform=as_list),
    Param("n", to="generationConfig.candidateCount", min=1),
    Param("seed", to="generationConfig.seed"),
    Param("presence_penalty", to="generationConfig.presencePenalty", min=-2.0, max=2.0),
    Param("frequency_penalty", to="generationConfig.frequencyPenalty", min=-2.0, max=2.0),
)

# reasoning_effort -> thinkingConfig. Gemini 3 takes a thinking level; Gemini 2.5 a
# token budget (Google's OpenAI-compatible endpoint maps effort to these budgets).
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
THINKING_LEVELS = {"minimal": "MINIMAL", "low": "LOW", "medium": "MEDIUM", "high": "HIGH"}

TOOL_CHOICE_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


def thought_signature(call: dict) -> str | None:
    """The signature a tool call carries back (extra_content.google.thought_signature)."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    value = google.get("thought_signature") if isinstance(google, dict) else None
    return value if isinstance(value, str) and value else None


def _media_part(url: Any, where: str, what: str) -> dict:
    if not isinstance(url, str) or not url:
        raise RequestNotTranslatable(f"'{where}' must be a URL or a data: URL string.", param=where)
    if url.startswith("data:"):
        head, sep, data = url[5:].partition(",")
        if not sep or not head.endswith(";base64"):
            raise RequestNotTranslatable(f"'{where}' must be a base64 data: URL for a Gemini model.", param=where)
        mime = head.removesuffix(";base64") or "application/octet-stream"
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith(("https://", "http://", "gs://")):
        mime, _ = mimetypes.guess_type(url.split("?", 1)[0])
        if not mime:
            raise RequestNotTranslatable(
                f"'{where}': Gemini needs the MIME type of a {what} given by URL, and it cannot be told from "
                f"this URL's name; send it as a base64 data: URL instead.", param=where)
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise RequestNotTranslatable(f"'{where}' must be an http(s)/gs URL or a base64 data: URL.", param=where)


def _parts(content: Any, where: str) -> list[dict]:
    """An OpenAI message `content` (a string or a list of parts) as Gemini parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            parts.append(_media_part(image.get("url") if isinstance(image, dict) else image, f"{at}.image_url", "image"))
        elif kind == "file":
            file = part.get("file") or {}
            if not file.get("file_data"):
                raise RequestNotTranslatable(f"'{at}.file' must carry 'file_data' (a data: URL) for a Gemini model.",
                                             param=f"{at}.file")
            parts.append(_media_part(file["file_data"], f"{at}.file.file_data", "file"))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            parts.append({"inlineData": {"mimeType": f"audio/{audio.get('format', 'wav')}", "data": audio.get("data")}})
    return parts


def _function_response(content: Any) -> dict:
    """A tool message's content as functionResponse.response (an object): a JSON object
    as it is, anything else under "result"."""
    text = message_text(content, sep="")
    value = tool_arguments(text) if text.lstrip().startswith("{") else None
    return value if value else {"result": text}


def translate_messages(messages: list[dict]) -> tuple[dict | None, list[dict]]:
    """OpenAI messages -> (systemInstruction or None, contents with alternating roles)."""
    system: list[str] = []
    contents: list[dict] = []
    names: dict[str, str] = {}  # tool call id -> function name, for the results

    def append(role: str, parts: list[dict]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:  # consecutive turns of one role: merged
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for i, msg in enumerate(messages):
        role = msg.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(message_text(msg.get("content"), sep=""))
        elif role == "user":
            append("user", _parts(msg.get("content"), where))
        elif role == "assistant":
            parts = _parts(msg.get("content"), where)
            for call in msg.get("tool_calls") or []:
                fn = call.get("function") or {}
                names[str(call.get("id"))] = fn.get("name")
                part: dict[str, Any] = {"functionCall": {"name": fn.get("name"), "args": tool_arguments(fn.get("arguments"))}}
                signature = thought_signature(call)
                if signature:
                    part["thoughtSignature"] = signature
                parts.append(part)
            append("model", parts)
        elif role == "tool":
            name = names.get(str(msg.get("tool_call_id")))
            if not name:
                raise RequestNotTranslatable(
                    f"'{where}.tool_call_id' answers no tool call earlier in the conversation; Gemini needs the "
                    f"function's name for a tool result.", param=f"{where}.tool_call_id")
            append("user", [{"functionResponse": {"name": name, "response": _function_response(msg.get("content"))}}])
        elif role == "function":  # OpenAI's legacy function results carry the name themselves
            append("user", [{"functionResponse": {"name": msg.get("name"),
                                                  "response": _function_response(msg.get("content"))}}])
    text = "\n\n".join(s for s in system if s)
    return ({"parts": [{"text": text}]} if text else None), contents


def _tools(params: dict) -> dict:
    body: dict[str, Any] = {}
    tools = [t for t in params.get("tools") or [] if t.get("type") == "function"]
    if tools:
        declarations = []
        for t in tools:
            fn = t["function"]
            declaration: dict[str, Any] = {"name": fn["name"], "description": fn.get("description", "")}
            if fn.get("parameters"):
                # OpenAI's parameters are JSON Schema: parametersJsonSchema takes it as it is
                # (`parameters` is an OpenAPI subset that refuses additionalProperties, $ref...).
                declaration["parametersJsonSchema"] = fn["parameters"]
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    choice = params.get("tool_choice")
    config: dict[str, Any] | None = None
    if isinstance(choice, str) and choice in TOOL_CHOICE_MODES:
        config = {"mode": TOOL_CHOICE_MODES[choice]}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config = {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = [t["function"]["name"] for t in allowed.get("tools") or [] if isinstance(t.get("function"), dict)]
        config = {"mode": "ANY" if allowed.get("mode") == "required" else "AUTO", "allowedFunctionNames": names}
    if config is not None and tools:
        body["toolConfig"] = {"functionCallingConfig": config}
    return body


def _response_format(value: Any) -> dict:
    """response_format -> generationConfig fields (JSON Schema as responseJsonSchema:
    the OpenAI schema as it is, where responseSchema would refuse JSON Schema keywords)."""
    if not isinstance(value, dict):
        return {}
    kind = value.get("type")
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        config: dict[str, Any] = {"responseMimeType": "application/json"}
        if schema:
            config["responseJsonSchema"] = schema
        return config
    return {}


def _thinking(model: ModelInfo, effort: Any) -> dict | None:
    if not isinstance(effort, str):
        return None
    effort = effort.lower()
    if model.upstream_id.startswith("gemini-2"):
        budget = THINKING_BUDGETS.get(effort)
        if budget is None:
            return None
        return {"thinkingBudget": budget, "includeThoughts": budget > 0}
    if effort == "none":
        return {"thinkingLevel": "MINIMAL"}
    level = THINKING_LEVELS.get(effort)
    return {"thinkingLevel": level, "includeThoughts": True} if level else None


def generate_content_body(model: ModelInfo, req: ChatRequest) -> dict[str, Any]:
    """The generateContent body of a chat request (the same for the stream)."""
    system, contents = translate_messages(req.messages)
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = system
    params = req.params
    body.update(_tools(params))
    map_params(overlay(PARAMS, model.provider.spec.param_table), params, passthrough=False, into=body)
    config = body.get("generationConfig") or {}
    if req.max_tokens is not None:
        config["maxOutputTokens"] = req.max_tokens
    config.update(_response_format(params.get("response_format")))
    thinking = _thinking(model, params.get("reasoning_effort"))
    if thinking:
        config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    return body


def batch_embed_body(model: ModelInfo, req: EmbeddingRequest) -> dict[str, Any]:
    """batchEmbedContents: one request per input text, in order."""
    requests = []
    for i, text in enumerate(req.input):
        if not isinstance(text, str):
            raise RequestNotTranslatable(
                f"'input[{i}]': Gemini embeds text only, not token ids.", param=f"input[{i}]")
        item: dict[str, Any] = {"model": f"models/{model.upstream_id}", "content": {"parts": [{"text": text}]}}
        if req.dimensions is not None:
            item["outputDimensionality"] = req.dimensions
        requests.append(item)
    return {"requests": requests}
