"""Fake Google Gemini API (generativelanguage ``v1beta``), as the REST reference describes it.

Endpoints::

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent?alt=sse   (SSE, one GenerateContentResponse per event)
    POST /v1beta/models/{model}:batchEmbedContents  and  :embedContent
    GET  /v1beta/models  (pageSize / pageToken)  and  /v1beta/models/{model}

(and the same under /v1, which the google-genai SDK uses by default).

Auth: ``x-goog-api-key`` (or ``?key=``); a wrong key is 400 INVALID_ARGUMENT with
ErrorInfo reason API_KEY_INVALID, a missing one 403 PERMISSION_DENIED, as Google answers.
Errors are ``{"error": {"code", "message", "status", "details"}}`` (429 carries RetryInfo).

Behaviour, deterministic (one token == one word, tests/fakes/text.py):

- roles must be ``user``/``model``; ``systemInstruction`` counts like one more message.
- tools: when functionDeclarations are offered (toolConfig mode not NONE) and the last
  user text mentions the weather, one ``functionCall`` per city named (Paris, London,
  Tokyo; Paris when none), each signed with a ``thoughtSignature``. Calls sent back
  in the history must carry the signature the fake gave them, and on ``gemini-3*``
  models every call must be signed (400 otherwise, as Gemini 3 checks). A turn of
  ``functionResponse`` parts must name the functions called just before.
- thinking: ``generationConfig.thinkingConfig`` with a non-zero budget (or a level) adds
  THINKING_TEXT's words to ``thoughtsTokenCount``; ``includeThoughts`` also sends the
  thought as a ``thought: true`` part first.
- ``responseMimeType: application/json`` answers ``{"reply": <text>}``; candidateCount
  gives that many candidates; stopSequences and maxOutputTokens cut the text.
- safety: a user text containing BLOCK_PROMPT is refused as a prompt
  (promptFeedback.blockReason SAFETY, no candidates); one containing UNSAFE_ANSWER
  stops with finishReason SAFETY.
- ``cached_tokens``: reported as cachedContentTokenCount (implicit caching), at most the prompt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any, Iterator

from .base import Behaviour, Exchange, FakeServer, Route, StreamEvent, dumps, random_id
from .text import PER_MESSAGE_OVERHEAD, Answer, count_words, split_pieces
from .vectors import embedding

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL",
                503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
_MESSAGES = {429: "Resource has been exhausted (e.g. check quota).", 500: "An internal error has occurred.",
             503: "The model is overloaded. Please try again later.", 504: "Deadline expired before operation could complete."}
THINKING_TEXT = "**Planning** The user wants a short answer, so I will keep it brief."
BLOCK_PROMPT = "BLOCK_PROMPT"
UNSAFE_ANSWER = "UNSAFE_ANSWER"
CITIES = ("Paris", "London", "Tokyo")
EMBEDDING_SIZE = 768
_WEATHER = re.compile(r"\bweather\b", re.I)
_SIGNING_KEY = b"fake-gemini-thought"
_PATH = re.compile(r"^/(?:v1beta|v1)/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")
_MODELS = re.compile(r"^/(?:v1beta|v1)/models(?:/(?P<model>[^/:]+))?$")
SAFETY_RATINGS = [{"category": c, "probability": "NEGLIGIBLE"} for c in (
    "HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_DANGEROUS_CONTENT", "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT")]


def thought_signature(name: str, args: Any) -> str:
    """The signature the fake puts on a functionCall part (base64 bytes, as Gemini's)."""
    digest = hmac.new(_SIGNING_KEY, f"{name}|{json.dumps(args, sort_keys=True)}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest * 2).decode()


def parts_text(parts: Any, *, thoughts: bool = False) -> str:
    """The text of a list of parts (thought parts only with ``thoughts``)."""
    return " ".join(p["text"] for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str)
                    and bool(p.get("thought")) == thoughts and p["text"])


class FakeGemini(FakeServer):
    """Fake of the Gemini API; ``base_url`` is the server root (the SDK's ``base_url``)."""

    default_reply_text = "Hello from fake-gemini."
    default_models = ("gemini-2.5-flash", "gemini-3-pro-preview", "gemini-embedding-001")
    thinking_text = THINKING_TEXT

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cached_tokens: int | None = None
        self.max_page_size = 1000  # models.list caps pageSize at 1000

    # -- routing -------------------------------------------------------------------------
    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        listing = _MODELS.match(ex.path)
        if ex.method == "GET" and listing:
            return (self._get_model if listing["model"] else self._list_models), False
        match = _PATH.match(ex.path)
        if ex.method != "POST" or not match:
            return None
        method = match["method"]
        handler = {"generateContent": self._generate, "streamGenerateContent": self._generate,
                   "batchEmbedContents": self._batch_embed, "embedContent": self._embed}.get(method)
        return (handler, True) if handler else None

    def model_of(self, ex: Exchange) -> str:
        match = _PATH.match(ex.path)
        return match["model"] if match else ""

    def error_payload(self, status: int, message: str | None = None, *, reason: str | None = None,
                      details: list | None = None) -> Any:
        code = STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
        error: dict[str, Any] = {"code": status, "message": message or _MESSAGES.get(status, "Request contains an invalid argument."),
                                 "status": code}
        if details is None and status == 429:
            details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2s"}]
        if reason:
            details = [*(details or []), {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                                          "domain": "googleapis.com"}]
        if details:
            error["details"] = details
        return {"error": error}

    def garbage_event(self) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"te\r\n\r\n'

    # -- validation ----------------------------------------------------------------------
    def authorized(self, ex: Exchange) -> bool:
        """Send Google's answer to a missing or wrong key and return False."""
        key = ex.headers.get("x-goog-api-key") or ex.query.get("key")
        if self.api_key is None or key == self.api_key:
            return True
        if not key:
            self.send_error(ex, 403, "Method doesn't allow unregistered callers (callers without established "
                                     "identity). Please use API Key or other form of API consumer identity to call this API.")
        else:
            self.send_error(ex, 400, "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID")
        return False

    def problem(self, body: Any, model: str) -> str | None:
        """Why Gemini would refuse this generateContent body (400), or None."""
        if not isinstance(body, dict):
            return "Invalid JSON payload received."
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return "* GenerateContentRequest.contents: contents is not specified"
        calls: list[str] = []  # names of the model's last function calls, answered next
        for i, content in enumerate(contents):
            role = content.get("role") if isinstance(content, dict) else None
            if role not in (None, "user", "model"):
                return "Please use a valid role: user, model."
            parts = content.get("parts")
            if not isinstance(parts, list) or not parts:
                return f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            for part in parts:
                problem = self._part_problem(part, model, role)
                if problem:
                    return problem
            responses = [p["functionResponse"].get("name") for p in parts if "functionResponse" in p]
            if responses and responses != calls[: len(responses)]:
                return ("Please ensure that the number of function response parts is equal to the number of function "
                        "call parts of the function call turn.")
            calls = [p["functionCall"].get("name") for p in parts if "functionCall" in p] if role == "model" else calls
        for decl in (d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.:-]{0,63}", str(decl.get("name"))):
                return f"* GenerateContentRequest.tools[0].function_declarations: invalid name {decl.get('name')!r}"
            if "parameters" in decl and "parametersJsonSchema" in decl:
                return "parameters and parameters_json_schema cannot both be set"
        return None

    def _part_problem(self, part: Any, model: str, role: str | None) -> str | None:
        if not isinstance(part, dict):
            return "Invalid value at 'contents.parts': not an object"
        if "inlineData" in part:
            data = part["inlineData"]
            try:
                base64.b64decode(data.get("data") or "", validate=True)
            except ValueError:
                return "Invalid value at 'contents.parts.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
            if not data.get("mimeType"):
                return "* GenerateContentRequest.contents.parts.inline_data.mime_type: mime_type is not specified"
        if "fileData" in part and not (part["fileData"].get("fileUri") and part["fileData"].get("mimeType")):
            return "* GenerateContentRequest.contents.parts.file_data: file_uri and mime_type are required"
        if "functionCall" in part:
            if role != "model":
                return "Please ensure that function call turns come immediately after a user turn or after a function response turn."
            call = part["functionCall"]
            signature = part.get("thoughtSignature")
            if signature is not None and _bytes(signature) != _bytes(thought_signature(call.get("name"), call.get("args") or {})):
                return "Corrupted thought signature."
            if signature is None and model.startswith("gemini-3"):
                return (f"Function call `{call.get('name')}` in the 2. content block is missing a `thought_signature`. "
                        "Learn more: https://ai.google.dev/gemini-api/docs/thought-signatures")
        if "functionResponse" in part and not isinstance(part["functionResponse"].get("response"), dict):
            return "* GenerateContentRequest.contents.parts.function_response.response: must be an object"
        return None

    # -- generation ----------------------------------------------------------------------
    def _generate(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self.authorized(ex):
            return
        model = self.model_of(ex)
        if not self.model_known(model):
            return self.send_error(ex, 404, f"models/{model} is not found for API version v1beta, or is not "
                                            "supported for generateContent.")
        body = ex.json
        problem = self.problem(body, model)
        if problem:
            return self.send_error(ex, 400, problem)
        response = self.respond(body, model, behaviour)
        if ex.path.endswith(":streamGenerateContent"):
            if ex.query.get("alt") != "sse":  # without alt=sse the API streams one JSON array: not faked
                return self.send_error(ex, 400, "this fake streams only with alt=sse")
            self.send_stream(ex, behaviour, self._events(response), "text/event-stream")
        else:
            self.send_result(ex, behaviour, response)

    def count_prompt(self, body: dict) -> int:
        contents = body["contents"]
        total = sum(count_words(parts_text(c.get("parts"))) + PER_MESSAGE_OVERHEAD for c in contents)
        system = body.get("systemInstruction")
        if system:
            total += count_words(parts_text(system.get("parts") if isinstance(system, dict) else [])) + PER_MESSAGE_OVERHEAD
        return total

    def respond(self, body: dict, model: str, behaviour: Behaviour | None) -> dict:
        """The GenerateContentResponse this body gets (the stream sends the same, in pieces)."""
        config = body.get("generationConfig") or {}
        last_user = next((c for c in reversed(body["contents"]) if c.get("role", "user") == "user"), {})
        user_text = parts_text(last_user.get("parts"))
        prompt = self.count_prompt(body) if self.prompt_tokens is None else self.prompt_tokens
        usage_base = {"promptTokenCount": prompt}
        if BLOCK_PROMPT in user_text:
            return {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]},
                "usageMetadata": {**usage_base, "totalTokenCount": usage_base["promptTokenCount"]},
                "modelVersion": model, "responseId": random_id("", 22)}
        calls = None if behaviour is not None and behaviour.kind == "reply" else self._calls(body, user_text)
        if calls:
            parts: list[dict] = [{"functionCall": c, "thoughtSignature": thought_signature(c["name"], c["args"])}
                                 for c in calls]
            answer = Answer("", prompt, sum(count_words(json.dumps(c["args"])) for c in calls))
            finish = "STOP"
        else:
            answer = self.answer(behaviour, prompt_tokens=prompt, max_words=config.get("maxOutputTokens"),
                                 stops=config.get("stopSequences") or [])
            text = answer.text
            if config.get("responseMimeType") == "application/json":
                text = json.dumps({"reply": text})
            parts = [{"text": text}]
            finish = {"length": "MAX_TOKENS"}.get(answer.reason, "STOP")
            if UNSAFE_ANSWER in user_text:
                parts, finish = [{"text": first_word(text)}], "SAFETY"
        thoughts = 0
        thinking = config.get("thinkingConfig") or {}
        if thinking and _field(thinking, "thinkingBudget", -1) != 0:
            thoughts = count_words(self.thinking_text)
            if _field(thinking, "includeThoughts"):
                parts.insert(0, {"text": self.thinking_text, "thought": True})
        count = max(1, int(config.get("candidateCount") or 1))
        candidates = []
        for index in range(count):
            candidate: dict[str, Any] = {"content": {"parts": [dict(p) for p in parts], "role": "model"},
                                         "finishReason": finish, "index": index}
            candidate["safetyRatings"] = ([{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                                            "blocked": True}] if finish == "SAFETY" else SAFETY_RATINGS)
            candidates.append(candidate)
        usage = {"promptTokenCount": answer.prompt_tokens, "candidatesTokenCount": answer.completion_tokens * count}
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = min(self.cached_tokens, usage["promptTokenCount"])
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["candidatesTokenCount"] + thoughts
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": usage["promptTokenCount"]}]
        return {"candidates": candidates, "usageMetadata": usage, "modelVersion": model,
                "responseId": random_id("", 22)}

    def _calls(self, body: dict, user_text: str) -> list[dict] | None:
        declarations = [d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations") or []]
        mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {})
        if not declarations or mode.get("mode") == "NONE" or not _WEATHER.search(user_text):
            return None
        last = body["contents"][-1]
        if any("functionResponse" in p for p in last.get("parts") or []):
            return None  # the results are in: answer with text
        allowed = mode.get("allowedFunctionNames") or [d["name"] for d in declarations]
        cities = [c for c in CITIES if c.lower() in user_text.lower()] or [CITIES[0]]
        return [{"name": allowed[0], "args": {"city": city}} for city in cities]

    def _events(self, response: dict) -> Iterator[StreamEvent]:
        """The answer as Gemini streams it: text in word pieces (thoughts first, in one
        piece), function calls whole, the running usage on every event, finishReason
        (and the final usage) on the last."""
        if "candidates" not in response:
            yield "tail", _sse(response)
            return
        usage = response["usageMetadata"]
        running = {"promptTokenCount": usage["promptTokenCount"]}
        candidates = response["candidates"]
        pieces: list[tuple[int, dict]] = []
        for candidate in candidates:
            for part in candidate["content"]["parts"]:
                if "text" in part and not part.get("thought"):
                    pieces.extend((candidate["index"], {"text": piece}) for piece in split_pieces(part["text"]) or [""])
                else:
                    pieces.append((candidate["index"], part))
        for n, (index, part) in enumerate(pieces):
            running["candidatesTokenCount"] = min(n + 1, usage.get("candidatesTokenCount", 0))
            running["totalTokenCount"] = running["promptTokenCount"] + running["candidatesTokenCount"]
            chunk = {"candidates": [{"content": {"parts": [part], "role": "model"}, "index": index}],
                     "usageMetadata": dict(running), "modelVersion": response["modelVersion"],
                     "responseId": response["responseId"]}
            yield "content", _sse(chunk)
        final = {"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": c["finishReason"],
                                 "index": c["index"], "safetyRatings": c["safetyRatings"]} for c in candidates],
                 "usageMetadata": usage, "modelVersion": response["modelVersion"], "responseId": response["responseId"]}
        yield "tail", _sse(final)

    # -- embeddings ------------------------------------------------------------------------
    def _embed_values(self, model: str, request: dict) -> list[float]:
        text = parts_text((request.get("content") or {}).get("parts"))
        return embedding(model, text, EMBEDDING_SIZE, request.get("outputDimensionality"))

    def _batch_embed(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self.authorized(ex):
            return
        model = self.model_of(ex)
        requests = (ex.json or {}).get("requests") if isinstance(ex.json, dict) else None
        if not isinstance(requests, list) or not requests:
            return self.send_error(ex, 400, "* BatchEmbedContentsRequest.requests: requests is not specified")
        for i, request in enumerate(requests):
            if request.get("model") != f"models/{model}":
                return self.send_error(ex, 400, f"* BatchEmbedContentsRequest.requests[{i}].model: the model must be "
                                                f"models/{model}, as in the URL")
        self.send_result(ex, behaviour, {"embeddings": [{"values": self._embed_values(model, r)} for r in requests]})

    def _embed(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self.authorized(ex):
            return
        body = ex.json if isinstance(ex.json, dict) else {}
        self.send_result(ex, behaviour, {"embedding": {"values": self._embed_values(self.model_of(ex), body)}})

    # -- models ------------------------------------------------------------------------------
    def model_entry(self, name: str) -> dict:
        embed = "embedding" in name
        methods = ["embedContent", "batchEmbedContents"] if embed else [
            "generateContent", "countTokens", "createCachedContent", "batchGenerateContent"]
        entry = {"name": f"models/{name}", "version": "001", "displayName": name.replace("-", " ").title(),
                 "description": f"Fake {name}", "inputTokenLimit": 2048 if embed else 1048576,
                 "outputTokenLimit": 1 if embed else 65536, "supportedGenerationMethods": methods}
        if not embed:
            entry.update({"temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": True})
        return entry

    def _list_models(self, ex: Exchange, _: Behaviour | None) -> None:
        if not self.authorized(ex):
            return
        names = self.listed_models()
        size = min(int(ex.query.get("pageSize") or 50), self.max_page_size)
        start = int(ex.query.get("pageToken") or 0)
        page: dict[str, Any] = {"models": [self.model_entry(n) for n in names[start:start + size]]}
        if start + size < len(names):
            page["nextPageToken"] = str(start + size)
        ex.send_json(200, page)

    def _get_model(self, ex: Exchange, _: Behaviour | None) -> None:
        if not self.authorized(ex):
            return
        name = _MODELS.match(ex.path)["model"]  # type: ignore[index] - routed here by that match
        if not self.model_known(name) or (self.known_models is None and name not in self.default_models):
            return self.send_error(ex, 404, f"models/{name} is not found for API version v1beta")
        ex.send_json(200, self.model_entry(name))


def _field(obj: dict, name: str, default: Any = None) -> Any:
    """A field by its JSON name or its proto name: Google's JSON parser takes both
    (the SDK sends some nested fields, e.g. thinkingConfig's, as include_thoughts)."""
    snake = re.sub(r"[A-Z]", lambda m: "_" + m.group().lower(), name)
    return obj.get(name, obj.get(snake, default))


def _bytes(value: Any) -> bytes | None:
    """A proto `bytes` field's JSON value decoded: Google takes standard and URL-safe
    base64 alike (the google-genai SDK sends the URL-safe form)."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        return None


def first_word(text: str) -> str:
    words = text.split()
    return words[0] if words else ""


def _sse(obj: dict) -> bytes:
    return b"data: " + dumps(obj) + b"\r\n\r\n"


__all__ = ["BLOCK_PROMPT", "CITIES", "FakeGemini", "THINKING_TEXT", "UNSAFE_ANSWER", "thought_signature"]
