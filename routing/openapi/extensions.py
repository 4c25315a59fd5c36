"""OpenAPI schemas of the /v1 serializers' custom fields (drf-spectacular extensions):
a content that is a string or a list of parts, a message chosen by its role, ..."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent

from . import serializers as s


def _ref(auto_schema, serializer, direction) -> dict:
    component: ResolvedComponent = auto_schema.resolve_serializer(serializer, direction)
    return component.ref


def _one_of_by(auto_schema, direction, field: str, choices: dict) -> dict:
    refs = {name: _ref(auto_schema, serializer, direction) for name, serializer in choices.items()}
    return {
        "oneOf": list(refs.values()),
        "discriminator": {"propertyName": field, "mapping": {k: v["$ref"] for k, v in refs.items()}},
    }


class ContentSchema(OpenApiSerializerFieldExtension):
    target_class = s.Content

    def map_serializer_field(self, auto_schema, direction):
        parts = {kind: s.PARTS[kind] for kind in sorted(self.target.parts)}
        items = _one_of_by(auto_schema, direction, "type", parts) if len(parts) > 1 else _ref(
            auto_schema, next(iter(parts.values())), direction)
        schema = {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": items}]}
        if self.target.allow_null:
            schema["nullable"] = True
        return schema


class MessageSchema(OpenApiSerializerFieldExtension):
    target_class = s.Message

    def map_serializer_field(self, auto_schema, direction):
        return _one_of_by(auto_schema, direction, "role", s.MESSAGES)


class ToolChoiceSchema(OpenApiSerializerFieldExtension):
    target_class = s.ToolChoice

    def map_serializer_field(self, auto_schema, direction):
        named = _ref(auto_schema, s.NamedToolChoice, direction)
        return {"oneOf": [{"type": "string", "enum": list(s.TOOL_CHOICES)}, named], "nullable": True}


class StopSchema(OpenApiSerializerFieldExtension):
    target_class = s.Stop

    def map_serializer_field(self, auto_schema, direction):
        return {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}],
                "nullable": True}

