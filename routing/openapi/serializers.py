"""The /v1 bodies as DRF serializers: what drf-spectacular documents in the OpenAPI schema.

The hot path validates with routing/schemas.py (a flat, fast function); these
serializers are a second, independent statement of the same contract, so the schema
says exactly what the gateway accepts. tests/test_openapi_equivalence.py feeds both the
same bodies and fails on any disagreement: change the two together.

DRF's stock fields coerce ("5" -> 5, "true" -> True, 5 -> "5"); the gateway does not,
so the fields below are strict.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import ProhibitNullCharactersValidator
from rest_framework import serializers

from routing.schemas import (
    AUDIO_FORMATS,
    IMAGE_DETAIL,
    MAX_DEPTH,
    MAX_TOKENS,
    PART_TYPES,
    RESPONSE_FORMATS,
    ROLE_PARTS,
    TOOL_CHOICES,
)


# --- strict scalar fields ---------------------------------------------------------------
class Str(serializers.CharField):
    """A JSON string, kept as sent (no trimming; NUL characters allowed, as upstream)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        self.validators = [v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)]

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class Bool(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class Int(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return data


class Num(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if not isinstance(data, (int, float)) or isinstance(data, bool):
            self.fail("invalid")
        return data


class JSONObject(serializers.DictField):
    """Any JSON object (its values unchecked here; the body's depth limit applies)."""


class Literal(serializers.ChoiceField):
    """A field with exactly one allowed string: a discriminator ("type": "text")."""

    def __init__(self, value: str, **kwargs: Any) -> None:
        self.value = value
        super().__init__(choices=[value], **kwargs)


def optional(field: type[serializers.Field], **kwargs: Any) -> serializers.Field:
    """An optional field for which null means absent, as in OpenAI's API."""
    return field(required=False, allow_null=True, **kwargs)


# --- content parts ----------------------------------------------------------------------
class TextPart(serializers.Serializer):
    type = Literal("text")
    text = Str()


class RefusalPart(serializers.Serializer):
    type = Literal("refusal")
    refusal = Str()


class ImageURL(serializers.Serializer):
    url = Str(allow_blank=False, min_length=1, help_text="An http(s) URL or a data: URL (base64).")
    detail = optional(serializers.ChoiceField, choices=IMAGE_DETAIL)


class ImagePart(serializers.Serializer):
    type = Literal("image_url")
    image_url = ImageURL()


class InputAudio(serializers.Serializer):
    data = Str(help_text="Base64-encoded audio.")
    format = serializers.ChoiceField(choices=AUDIO_FORMATS)


class AudioPart(serializers.Serializer):
    type = Literal("input_audio")
    input_audio = InputAudio()


class FileObject(serializers.Serializer):
    file_data = optional(Str)
    file_id = optional(Str)
    filename = optional(Str)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("file_data") is None and attrs.get("file_id") is None:
            raise serializers.ValidationError("Needs 'file_data' or 'file_id'.")
        return attrs


class FilePart(serializers.Serializer):
    type = Literal("file")
    file = FileObject()


PARTS: dict[str, type[serializers.Serializer]] = {
    "text": TextPart, "refusal": RefusalPart, "image_url": ImagePart, "input_audio": AudioPart, "file": FilePart,
}


def _validate_with(serializer: type[serializers.Serializer], data: Any) -> dict:
    checked = serializer(data=data)
    if not checked.is_valid():
        raise serializers.ValidationError(checked.errors)
    return checked.validated_data


class Content(serializers.Field):
    """A message's content: a string, or a non-empty list of the parts its role allows
    (documented as such by routing/openapi/extensions.py)."""

    def __init__(self, parts: frozenset[str], **kwargs: Any) -> None:
        self.parts = parts
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            return data
        if not isinstance(data, list) or not data:
            raise serializers.ValidationError("Must be a string or a non-empty list of content parts.")
        for part in data:
            kind = part.get("type") if isinstance(part, dict) else None
            if not isinstance(kind, str) or kind not in PART_TYPES or kind not in self.parts:
                raise serializers.ValidationError(f"Part types allowed here: {', '.join(sorted(self.parts))}.")
            _validate_with(PARTS[kind], part)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


# --- messages ----------------------------------------------------------------------------
class FunctionCall(serializers.Serializer):
    name = Str(allow_blank=False, min_length=1)
    arguments = Str(help_text="The arguments as a JSON text.")


class ToolCall(serializers.Serializer):
    id = Str()
    type = Literal("function", required=False)
    function = FunctionCall()


def _message(role: str, *, content_optional: bool = False, **fields: serializers.Field) -> type[serializers.Serializer]:
    content = Content(ROLE_PARTS[role], required=not content_optional, allow_null=content_optional)
    attrs = {
        "role": Literal(role),
        "content": content,
        "name": optional(Str) if role != "function" else Str(),
        **fields,
    }
    return type(f"{role.title()}Message", (serializers.Serializer,), attrs)


class _AssistantBase(serializers.Serializer):
    def validate(self, attrs: dict) -> dict:
        if attrs.get("content") is None and not attrs.get("tool_calls") and attrs.get("function_call") is None:
            raise serializers.ValidationError({"content": "Required unless the message has tool_calls."})
        return attrs


AssistantMessage = type("AssistantMessage", (_AssistantBase,), {
    "role": Literal("assistant"),
    "content": Content(ROLE_PARTS["assistant"], required=False, allow_null=True,
                       help_text="Required unless the message has `tool_calls` or `function_call`."),
    "name": optional(Str),
    "refusal": optional(Str),
    "tool_calls": ToolCall(many=True, required=False, allow_null=True),
    "function_call": FunctionCall(required=False, allow_null=True),
})
MESSAGES: dict[str, type[serializers.Serializer]] = {
    "system": _message("system"),
    "developer": _message("developer"),
    "user": _message("user"),
    "assistant": AssistantMessage,
    "tool": _message("tool", tool_call_id=Str()),
    "function": _message("function"),
}


class Message(serializers.Field):
    """One chat message, by its role (documented as a oneOf of the role's shapes)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("role"), str) or data["role"] not in MESSAGES:
            raise serializers.ValidationError(f"An object whose role is one of {', '.join(sorted(MESSAGES))}.")
        if data["role"] != "assistant":
            for name in ("tool_calls", "function_call"):
                if data.get(name) is not None:
                    raise serializers.ValidationError({name: "Only allowed in assistant messages."})
        _validate_with(MESSAGES[data["role"]], data)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


# --- parameters --------------------------------------------------------------------------
class ToolFunction(serializers.Serializer):
    name = Str(allow_blank=False, min_length=1)
    description = optional(Str)
    parameters = optional(JSONObject, help_text="A JSON Schema object.")
    strict = optional(Bool)


class Tool(serializers.Serializer):
    type = Literal("function")
    function = ToolFunction()


class NamedFunction(serializers.Serializer):
    name = Str(allow_blank=False, min_length=1)


class NamedToolChoice(serializers.Serializer):
    type = Literal("function")
    function = NamedFunction()


class ToolChoice(serializers.Field):
    """'none', 'auto', 'required', or {"type": "function", "function": {"name": ...}}."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and data in TOOL_CHOICES:
            return data
        if not isinstance(data, dict):
            raise serializers.ValidationError(f"One of {', '.join(TOOL_CHOICES)}, or a named function.")
        _validate_with(NamedToolChoice, data)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class JSONSchemaFormat(serializers.Serializer):
    name = Str(allow_blank=False, min_length=1)
    schema = optional(JSONObject)
    description = optional(Str)
    strict = optional(Bool)


class ResponseFormat(serializers.Serializer):
    type = serializers.ChoiceField(choices=RESPONSE_FORMATS)
    json_schema = JSONSchemaFormat(required=False, help_text="Required when type is json_schema.")

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") != "json_schema":
            data = {k: v for k, v in data.items() if k != "json_schema"}  # read only for json_schema
        return super().to_internal_value(data)

    def validate(self, attrs: dict) -> dict:
        if attrs["type"] == "json_schema" and "json_schema" not in attrs:
            raise serializers.ValidationError({"json_schema": "Required when type is json_schema."})
        return attrs


class Stop(serializers.Field):
    """A string, or a list of up to 4 strings."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            return data
        if isinstance(data, list) and len(data) <= 4 and all(isinstance(s, str) for s in data):
            return data
        raise serializers.ValidationError("A string or a list of up to 4 strings.")

    def to_representation(self, value: Any) -> Any:
        return value


class StreamOptions(serializers.Serializer):
    include_usage = optional(Bool, help_text="Send a last chunk with the usage of the whole request.")


def _depth_exceeded(value: Any, depth: int = 1) -> bool:
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, list):
        return False
    if depth > MAX_DEPTH:
        return True
    return any(_depth_exceeded(v, depth + 1) for v in value)


class ChatCompletionRequest(serializers.Serializer):
    """POST /v1/chat/completions. `model` is a route name (GET /v1/models). Parameters
    not listed are passed to providers that support them."""

    model = Str(allow_blank=False, min_length=1, help_text="A route name, as listed by GET /v1/models.")
    messages = serializers.ListField(child=Message(), allow_empty=False, min_length=1)
    stream = optional(Bool)
    stream_options = optional(StreamOptions, help_text="Only allowed when `stream` is true.")
    metadata = optional(JSONObject, help_text="Routing data: conditional rules read it as metadata.<name>.")
    temperature = optional(Num, min_value=0, max_value=2)
    top_p = optional(Num, min_value=0, max_value=1)
    n = optional(Int, min_value=1, max_value=128)
    max_tokens = optional(Int, min_value=1, max_value=MAX_TOKENS)
    max_completion_tokens = optional(Int, min_value=1, max_value=MAX_TOKENS)
    presence_penalty = optional(Num, min_value=-2, max_value=2)
    frequency_penalty = optional(Num, min_value=-2, max_value=2)
    seed = optional(Int, min_value=-(2**63), max_value=2**63 - 1)
    stop = optional(Stop)
    user = optional(Str)
    logit_bias = optional(serializers.DictField, child=Num(min_value=-100, max_value=100))
    logprobs = optional(Bool)
    top_logprobs = optional(Int, min_value=0, max_value=20)
    tools = Tool(many=True, required=False, allow_null=True)
    tool_choice = optional(ToolChoice)
    parallel_tool_calls = optional(Bool)
    response_format = optional(ResponseFormat)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict) and _depth_exceeded(data):
            raise serializers.ValidationError(f"Nested deeper than {MAX_DEPTH} levels of objects and arrays.")
        return super().to_internal_value(data)

    def validate(self, attrs: dict) -> dict:
        if attrs.get("stream_options") is not None and not attrs.get("stream"):
            raise serializers.ValidationError({"stream_options": "Only allowed when 'stream' is true."})
        return attrs


# --- responses (documentation only: routing/render.py writes them) ------------------------
class Usage(serializers.Serializer):
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()


class AnswerMessage(serializers.Serializer):
    role = Literal("assistant")
    content = serializers.CharField(allow_null=True)
    tool_calls = ToolCall(many=True, required=False)
    refusal = serializers.CharField(allow_null=True, required=False)


class Choice(serializers.Serializer):
    index = serializers.IntegerField()
    message = AnswerMessage()
    logprobs = serializers.DictField(allow_null=True)
    finish_reason = serializers.ChoiceField(choices=["stop", "length", "tool_calls", "content_filter", "function_call"])


class ChatCompletion(serializers.Serializer):
    id = serializers.CharField(help_text="chatcmpl-<x-request-id>")
    object = Literal("chat.completion")
    created = serializers.IntegerField()
    model = serializers.CharField(help_text="The upstream model that answered.")
    choices = Choice(many=True)
    usage = Usage()
    system_fingerprint = serializers.CharField(allow_null=True)


class Delta(serializers.Serializer):
    role = Literal("assistant", required=False)
    content = serializers.CharField(allow_null=True, required=False)
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)


class ChunkChoice(serializers.Serializer):
    index = serializers.IntegerField()
    delta = Delta()
    logprobs = serializers.DictField(allow_null=True, required=False)
    finish_reason = serializers.CharField(allow_null=True)


class ChatCompletionChunk(serializers.Serializer):
    """One `data: {...}` event of the text/event-stream answer (the stream ends with
    `data: [DONE]`; a stream broken after output ends with a `data: {"error": ...}` event)."""

    id = serializers.CharField()
    object = Literal("chat.completion.chunk")
    created = serializers.IntegerField()
    model = serializers.CharField()
    choices = ChunkChoice(many=True)
    usage = Usage(allow_null=True, required=False, help_text="Only with stream_options.include_usage.")


class ErrorDetail(serializers.Serializer):
    message = serializers.CharField()
    type = serializers.CharField()
    param = serializers.CharField(allow_null=True, help_text="The offending parameter, e.g. messages[0].content[1].text")
    code = serializers.CharField(allow_null=True)


class Error(serializers.Serializer):
    """OpenAI's error format."""

    error = ErrorDetail()


class Model(serializers.Serializer):
    id = serializers.CharField(help_text="A route name.")
    object = Literal("model")
    created = serializers.IntegerField()
    owned_by = serializers.CharField()


class ModelList(serializers.Serializer):
    object = Literal("list")
    data = Model(many=True)
