"""Fake AWS Bedrock runtime: ``POST /model/{modelId}/converse`` and ``/converse-stream``
(+ the control plane's ``GET /foundation-models``), SigV4 verified.

Reproduces the real wire format (botocore's bedrock-runtime model): Converse JSON
(``output.message.content`` blocks, ``stopReason``, ``usage`` with cache counts,
``metrics``); ConverseStream as application/vnd.amazon.eventstream messages
(tests/fakes/eventstream.py): messageStart, contentBlockStart (tool use only),
contentBlockDelta (text / toolUse.input partial JSON / reasoningContent text and
signature), contentBlockStop, messageStop, metadata; every payload padded with a ``p``
field as AWS does. Errors are restJson: the status, ``x-amzn-errortype`` and
``{"message": ...}``; errors after the 200 are exception messages in the stream
(``stream_exception``).

Every request's signature is recomputed with botocore's signer from what was received
(method, raw path, query, the signed headers, the body) and the fake's credentials;
a missing, malformed, stale or wrong signature is a 403 as AWS words it.
Extended thinking (``additionalModelRequestFields.thinking.type == "enabled"``) puts a
signed reasoningContent block first; a reasoning block sent back must carry the
signature the fake gave it. ``cachePoint`` blocks mark cacheable prefixes (written the
first time, read after).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import re
import uuid
from typing import Any, Iterator
from urllib.parse import unquote, urlencode

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .base import Behaviour, Exchange, FakeServer, Route, StreamEvent
from .eventstream import corrupt, encode_message, event, exception
from .text import PER_MESSAGE_OVERHEAD, Answer, content_text, count_words, split_pieces

_ERROR_TYPES = {  # status -> (x-amzn-errortype, message)
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request."),
    424: ("ModelErrorException", "The model encountered an error processing the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "The service is temporarily unable to handle the request."),
}
_BAD_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                  "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([a-z0-9;\-]+), Signature=([0-9a-f]{64})")
_ROUTE = re.compile(r"/model/([^/]+)/(converse|converse-stream)")
_WEATHER = re.compile(r"\bweather\b", re.IGNORECASE)
CITIES = ("Paris", "London", "Tokyo", "Berlin")
THINKING_TEXT = "The user wants a short answer, so I will keep it brief."
_SIGNING_KEY = b"fake-bedrock-reasoning"
BLOCK_KINDS = ("text", "image", "document", "toolUse", "toolResult", "reasoningContent", "cachePoint", "guardContent")
IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")
INFERENCE_KEYS = ("maxTokens", "temperature", "topP", "stopSequences")
MAX_SKEW = datetime.timedelta(minutes=5)


def reasoning_signature(text: str) -> str:
    return base64.b64encode(hmac.new(_SIGNING_KEY, text.encode(), hashlib.sha256).digest()).decode()


def _padding(payload: dict[str, Any]) -> dict[str, Any]:
    """AWS pads every stream payload with a `p` field of varying length."""
    return {**payload, "p": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[: 10 + len(payload) * 7 % 40]}


class SignatureError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type, self.message = error_type, message


class FakeBedrock(FakeServer):
    """Fake of the Bedrock runtime (and ListFoundationModels); ``base_url`` is the
    server root, given to botocore as ``endpoint_url`` and to the gateway as base_url."""

    default_reply_text = "Hello from fake-bedrock."
    default_models = ("anthropic.claude-3-5-sonnet-20240620-v1:0", "amazon.nova-lite-v1:0")
    thinking_text = THINKING_TEXT

    def __init__(self, *, access_key: str = "AKIDFAKEBEDROCK00001", secret_key: str = "fake/secret+key0000000000000000",
                 session_token: str | None = None, region: str = "us-east-1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.access_key, self.secret_key, self.session_token, self.region = access_key, secret_key, session_token, region
        self.api_key = ":".join(p for p in (access_key, secret_key, session_token) if p)
        self._cached_prefixes: set[str] = set()

    def reset(self) -> None:
        super().reset()
        self._cached_prefixes.clear()

    # -- scripting -------------------------------------------------------------------------
    def stream_exception(self, exception_type: str, message: str, *, after_chunks: int = 1, times: int = 1) -> None:
        """The next stream sends `after_chunks` content events, then an exception message
        (`:message-type` exception, `:exception-type` exception_type) and ends."""
        self._push(Behaviour("mangle", body=exception_type, text=message, after_chunks=after_chunks,
                             mangle=lambda obj: obj), times)

    # -- wire --------------------------------------------------------------------------------
    def route(self, ex: Exchange) -> tuple[Route, bool] | None:
        match = _ROUTE.fullmatch(ex.path)
        if ex.method == "POST" and match:
            return self._converse, True
        if (ex.method, ex.path) == ("GET", "/foundation-models"):
            return self._foundation_models, False
        return None

    def response_headers(self) -> dict[str, str]:
        return {"x-amzn-RequestId": str(uuid.uuid4())}

    def error_payload(self, status: int, message: str | None = None, **details: Any) -> Any:
        return {"message": message or _ERROR_TYPES.get(status, ("", "Request failed."))[1]}

    def send_error(self, ex: Exchange, status: int, message: str | None = None, *, headers=None, **details: Any) -> None:
        error_type = details.pop("error_type", None) or _ERROR_TYPES.get(
            status, ("InternalServerException" if status >= 500 else "ValidationException", ""))[0]
        headers = {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                   **(headers or {})}
        super().send_error(ex, status, message, headers=headers)

    def not_found(self, ex: Exchange) -> None:
        self.send_error(ex, 404, "The requested operation is not recognized by the service.",
                        error_type="UnknownOperationException")

    def garbage_event(self) -> bytes:
        return corrupt(event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "garbage"}}))

    # -- SigV4 -------------------------------------------------------------------------------
    def verify_signature(self, ex: Exchange) -> None:
        """Recompute the request's SigV4 signature as AWS does; SignatureError if it is not right."""
        header = ex.headers.get("authorization")
        if not header:
            raise SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token")
        match = _AUTH.fullmatch(header)
        if match is None:
            raise SignatureError("IncompleteSignatureException", f"Authorization header requires 'Credential', "
                                 f"'Signature' and 'SignedHeaders' parameters. Authorization={header[:40]}")
        key_id, day, region, service, signed, signature = match.groups()
        if key_id != self.access_key:
            raise SignatureError("UnrecognizedClientException", "The security token included in the request is invalid.")
        if self.session_token is not None and ex.headers.get("x-amz-security-token") != self.session_token:
            raise SignatureError("UnrecognizedClientException", "The security token included in the request is invalid.")
        if region != self.region or service != "bedrock":
            raise SignatureError("InvalidSignatureException", f"Credential should be scoped to a valid region "
                                 f"and service 'bedrock' in '{self.region}', not '{region}'/'{service}'.")
        stamp = ex.headers.get("x-amz-date", "")
        try:
            when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise SignatureError("IncompleteSignatureException", "Date must be in ISO-8601 'basic format'.") from None
        if abs(datetime.datetime.now(datetime.timezone.utc) - when) > MAX_SKEW or stamp[:8] != day:
            raise SignatureError("InvalidSignatureException", f"Signature expired: {stamp} is now earlier or later "
                                 "than the allowed 5 minutes.")
        names = signed.split(";")
        if "host" not in names or any(name not in ex.headers for name in names):
            raise SignatureError("InvalidSignatureException", _BAD_SIGNATURE)
        query = f"?{urlencode(ex.query)}" if ex.query else ""
        request = AWSRequest(method=ex.method, url=f"http://{ex.headers['host']}{ex.path}{query}",
                             data=ex.raw_body, headers={name: ex.headers[name] for name in names})
        request.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(self.access_key, self.secret_key, self.session_token), "bedrock", self.region)
        expected = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
        if not hmac.compare_digest(expected, signature):
            raise SignatureError("InvalidSignatureException", _BAD_SIGNATURE)

    def _authorized(self, ex: Exchange) -> bool:
        try:
            self.verify_signature(ex)
        except SignatureError as exc:
            self.send_error(ex, 403, exc.message, error_type=exc.error_type)
            return False
        return True

    # -- endpoints -------------------------------------------------------------------------------
    def _foundation_models(self, ex: Exchange, _: Behaviour | None) -> None:
        if not self._authorized(ex):
            return
        summaries = [{
            "modelArn": f"arn:aws:bedrock:{self.region}::foundation-model/{m}", "modelId": m,
            "modelName": m.split(".", 1)[-1], "providerName": m.split(".", 1)[0].title(),
            "inputModalities": ["TEXT", "IMAGE"], "outputModalities": ["TEXT"], "responseStreamingSupported": True,
            "customizationsSupported": [], "inferenceTypesSupported": ["ON_DEMAND"],
            "modelLifecycle": {"status": "ACTIVE"}} for m in self.listed_models()]
        summaries.append({"modelArn": f"arn:aws:bedrock:{self.region}::foundation-model/amazon.titan-embed-text-v2:0",
                          "modelId": "amazon.titan-embed-text-v2:0", "modelName": "Titan Text Embeddings V2",
                          "providerName": "Amazon", "inputModalities": ["TEXT"], "outputModalities": ["EMBEDDING"],
                          "responseStreamingSupported": False, "inferenceTypesSupported": ["ON_DEMAND"],
                          "modelLifecycle": {"status": "ACTIVE"}})
        ex.send_json(200, {"modelSummaries": summaries})

    def _converse(self, ex: Exchange, behaviour: Behaviour | None) -> None:
        if not self._authorized(ex):
            return
        model_id, action = _ROUTE.fullmatch(ex.path).groups()  # type: ignore[union-attr]
        model_id = unquote(model_id)
        problem = self._problem(ex, model_id)
        if problem is not None:
            return self.send_error(ex, *problem)
        body: dict[str, Any] = ex.json
        blocks, answer = self._reply(body, behaviour)
        cache = self._cache_split(model_id, body, answer.prompt_tokens)
        if action == "converse-stream":
            if behaviour is not None and behaviour.kind == "mangle":
                events = self._events(blocks, answer, cache, behaviour)
                behaviour = None  # applied above: the base class would read binary frames as text
            else:
                events = self._events(blocks, answer, cache, None)
            self.send_stream(ex, behaviour, events, "application/vnd.amazon.eventstream")
        else:
            self.send_result(ex, behaviour, {
                "output": {"message": {"role": "assistant", "content": blocks}},
                "stopReason": answer.reason,
                "usage": self._usage(answer, cache),
                "metrics": {"latencyMs": 123},
            })

    # -- validation --------------------------------------------------------------------------
    def _problem(self, ex: Exchange, model_id: str) -> tuple[int, str] | None:
        if ex.invalid_json or not isinstance(ex.json, dict):
            return 400, "Malformed input request, please reformat your input and try again."
        body = ex.json
        if not self.model_known(model_id):
            return 400, "The provided model identifier is invalid."
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return 400, "A conversation must start with a user message. Try again with a conversation that starts with a user message."
        uses_tools = False
        for i, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("user", "assistant"):
                return 400, f"messages.{i}.role: Member must satisfy enum value set: [user, assistant]"
            if (i == 0 and role != "user") or (i and messages[i - 1].get("role") == role):
                return 400, "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."
            content = message.get("content")
            if not isinstance(content, list) or not content:
                return 400, f"The content field in the Message object at messages.{i} is empty. Add a ContentBlock object to the content field and try again."
            for j, block in enumerate(content):
                keys = list(block) if isinstance(block, dict) else []
                if len(keys) != 1 or keys[0] not in BLOCK_KINDS:
                    return 400, f"messages.{i}.content.{j}: a ContentBlock must set exactly one member"
                problem = self._block_problem(keys[0], block[keys[0]], f"messages.{i}.content.{j}")
                if problem:
                    return 400, problem
                uses_tools = uses_tools or keys[0] in ("toolUse", "toolResult")
        for j, block in enumerate(body.get("system") or []):
            if not isinstance(block, dict) or not (isinstance(block.get("text"), str) and block["text"].strip() or "cachePoint" in block):
                return 400, f"system.{j}: a SystemContentBlock must set text or cachePoint"
        config = body.get("inferenceConfig") or {}
        if set(config) - set(INFERENCE_KEYS):
            return 400, f"inferenceConfig: unknown field(s) {sorted(set(config) - set(INFERENCE_KEYS))}"
        if "temperature" in config and not 0 <= config["temperature"] <= 1:
            return 400, "inferenceConfig.temperature: Member must have value less than or equal to 1"
        if "maxTokens" in config and (not isinstance(config["maxTokens"], int) or config["maxTokens"] < 1):
            return 400, "inferenceConfig.maxTokens: Member must have value greater than or equal to 1"
        tools = (body.get("toolConfig") or {}).get("tools")
        if uses_tools and not tools:
            return 400, "The toolConfig field must be defined when using toolUse and toolResult content blocks."
        for spec in tools or []:
            inner = spec.get("toolSpec") if isinstance(spec, dict) else None
            if not isinstance(inner, dict) or not inner.get("name") or not isinstance((inner.get("inputSchema") or {}).get("json"), dict):
                return 400, "toolConfig.tools: a toolSpec needs a name and inputSchema.json"
        return None

    @staticmethod
    def _block_problem(kind: str, value: Any, where: str) -> str | None:
        if kind == "text" and not (isinstance(value, str) and value.strip()):
            return f"The text field in the ContentBlock object at {where} is blank. Add text to the text field, and try again."
        if kind == "image":
            source = (value or {}).get("source") or {}
            if value.get("format") not in IMAGE_FORMATS:
                return f"{where}.image.format: Member must satisfy enum value set: {list(IMAGE_FORMATS)}"
            try:
                base64.b64decode(source.get("bytes") or "", validate=True)
            except ValueError:
                return f"{where}.image.source.bytes: invalid base64"
            if not source.get("bytes"):
                return f"{where}.image.source: bytes are required"
        if kind == "toolUse" and not (value.get("toolUseId") and value.get("name") and isinstance(value.get("input"), dict)):
            return f"{where}.toolUse: toolUseId, name and input are required"
        if kind == "toolResult" and not (value.get("toolUseId") and isinstance(value.get("content"), list)):
            return f"{where}.toolResult: toolUseId and content are required"
        if kind == "reasoningContent":
            text = (value or {}).get("reasoningText") or {}
            if text.get("signature") != reasoning_signature(str(text.get("text"))):
                return f"{where}.reasoningContent: the reasoning block's signature is invalid"
        return None

    # -- answers -----------------------------------------------------------------------------
    @staticmethod
    def _prompt_tokens(body: dict[str, Any]) -> int:
        total = sum(count_words(content_text(m["content"])) + PER_MESSAGE_OVERHEAD for m in body["messages"])
        system = [b["text"] for b in body.get("system") or [] if "text" in b]
        return total + (count_words(" ".join(system)) + PER_MESSAGE_OVERHEAD if system else 0)

    def _reply(self, body: dict[str, Any], behaviour: Behaviour | None) -> tuple[list[dict], Answer]:
        prompt = self._prompt_tokens(body)
        scripted = behaviour is not None and behaviour.kind == "reply"
        config = body.get("inferenceConfig") or {}
        calls = None if scripted else self._tool_calls(body)
        if calls:
            completion = sum(count_words(json.dumps(c["toolUse"]["input"])) for c in calls)
            answer = Answer("", prompt if self.prompt_tokens is None else self.prompt_tokens,
                            completion if self.completion_tokens is None else self.completion_tokens, "tool_use")
            blocks: list[dict] = list(calls)
        else:
            answer = self.answer(behaviour, prompt_tokens=prompt, max_words=config.get("maxTokens"),
                                 stops=config.get("stopSequences") or [])
            reason = {"stop": "end_turn", "length": "max_tokens"}.get(answer.reason, answer.reason)
            answer = Answer(answer.text, answer.prompt_tokens, answer.completion_tokens, reason, answer.stop_sequence)
            blocks = [{"text": answer.text}]
        thinking = (body.get("additionalModelRequestFields") or {}).get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            thought = self.thinking_text
            blocks.insert(0, {"reasoningContent": {"reasoningText": {"text": thought, "signature": reasoning_signature(thought)}}})
            answer = Answer(answer.text, answer.prompt_tokens, answer.completion_tokens + count_words(thought),
                            answer.reason, answer.stop_sequence)
        return blocks, answer

    @staticmethod
    def _tool_calls(body: dict[str, Any]) -> list[dict] | None:
        """toolUse blocks when tools are offered and the last user turn asks about the
        weather in text (one call per city it names; Paris when it names none)."""
        tools = (body.get("toolConfig") or {}).get("tools")
        last = body["messages"][-1]
        if not tools or last["role"] != "user":
            return None
        text = " ".join(b["text"] for b in last["content"] if "text" in b)
        if not _WEATHER.search(text):
            return None
        cities = [c for c in CITIES if c in text] or ["Paris"]
        name = tools[0]["toolSpec"]["name"]
        return [{"toolUse": {"toolUseId": f"tooluse_{uuid.uuid4().hex[:22]}", "name": name, "input": {"city": city}}}
                for city in cities]

    def _cache_split(self, model_id: str, body: dict[str, Any], prompt_tokens: int) -> tuple[int, int, int]:
        """(fresh input, cache writes, cache reads): the prefix up to the last cachePoint
        (system blocks, then messages, in whole units) is written once, then read."""
        units = [("system", b) for b in body.get("system") or []] + [("message", m) for m in body["messages"]]
        marked, tokens = None, 0
        for i, (kind, unit) in enumerate(units):
            if kind == "system" and "cachePoint" in unit or kind == "message" and any("cachePoint" in b for b in unit["content"]):
                prefix = units[: i + 1]
                tokens = sum(count_words(content_text(u["text"] if k == "system" else u["content"])) + PER_MESSAGE_OVERHEAD
                             for k, u in prefix if k == "message" or "text" in u)
                marked = hashlib.sha256(json.dumps([model_id, body.get("toolConfig"), prefix], sort_keys=True).encode()).hexdigest()
        if marked is None or tokens > prompt_tokens:
            return prompt_tokens, 0, 0
        with self._cond:
            seen = marked in self._cached_prefixes
            self._cached_prefixes.add(marked)
        return (prompt_tokens - tokens, 0, tokens) if seen else (prompt_tokens - tokens, tokens, 0)

    @staticmethod
    def _usage(answer: Answer, cache: tuple[int, int, int]) -> dict[str, int]:
        fresh, written, read = cache
        if fresh + written + read != answer.prompt_tokens:
            fresh, written, read = answer.prompt_tokens, 0, 0
        return {"inputTokens": fresh, "outputTokens": answer.completion_tokens,
                "totalTokens": fresh + written + read + answer.completion_tokens,
                "cacheReadInputTokens": read, "cacheWriteInputTokens": written}

    def _events(self, blocks: list[dict], answer: Answer, cache: tuple[int, int, int],
                behaviour: Behaviour | None) -> Iterator[StreamEvent]:
        edit = behaviour.mangle if behaviour is not None else None
        failure = behaviour.body if behaviour is not None and isinstance(behaviour.body, str) else None
        sent = 0

        def frame(kind: str, payload: dict[str, Any]) -> bytes:
            return event(kind, _padding(edit(payload) if edit else payload))

        yield "head", frame("messageStart", {"role": "assistant"})
        for index, block in enumerate(blocks):
            if "toolUse" in block:
                use = block["toolUse"]
                yield "head", frame("contentBlockStart", {"contentBlockIndex": index, "start": {
                    "toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}}})
                raw = json.dumps(use["input"])
                step = max(1, len(raw) // 3)
                deltas = [{"toolUse": {"input": raw[i:i + step]}} for i in range(0, len(raw), step)]
            elif "reasoningContent" in block:
                thought = block["reasoningContent"]["reasoningText"]
                deltas = [{"reasoningContent": {"text": piece}} for piece in split_pieces(thought["text"])]
                deltas.append({"reasoningContent": {"signature": thought["signature"]}})
            else:
                deltas = [{"text": piece} for piece in answer.pieces]
            for delta in deltas:
                if failure is not None and sent >= (behaviour.after_chunks or 0):  # type: ignore[union-attr]
                    yield "tail", exception(failure, behaviour.text or "")  # type: ignore[union-attr]
                    return
                yield "content", frame("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})
                sent += 1
            yield "tail", frame("contentBlockStop", {"contentBlockIndex": index})
        yield "tail", frame("messageStop", {"stopReason": answer.reason})
        yield "tail", frame("metadata", {"usage": self._usage(answer, cache), "metrics": {"latencyMs": 321}})


__all__ = ["FakeBedrock", "encode_message", "reasoning_signature", "SignatureError"]
