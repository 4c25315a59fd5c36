"""Shared by the task-detection tests: a chat request builder, an image content part,
a tool definition and sample texts (a short article, a document past the long-context
threshold)."""

from __future__ import annotations

from providers.types import ChatRequest


def chat(user: str | list, *, system: str | None = None, history: tuple[dict, ...] = (), **params) -> ChatRequest:
    metadata = params.pop("metadata", {})
    messages = [{"role": "system", "content": system}] if system else []
    messages += [*history, {"role": "user", "content": user}]
    return ChatRequest(model="task-route", messages=messages, params=params, metadata=metadata)


def with_image(text: str) -> list[dict]:
    return [
        {"type": "text", "text": text},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]


WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}
ARTICLE = (
    "The central bank raised interest rates by a quarter point on Wednesday, citing persistent inflation in "
    "services and a tight labour market. Officials signalled that further increases were possible. "
)
LONG_DOCUMENT = ARTICLE * 400  # ~80,000 characters, ~20,000 tokens
