"""Shared by the Gemini and Vertex AI gateway tests: the fake server (one per session,
fresh settings per test, see `fresh`), the conversations sent, and readers of the answers."""

from __future__ import annotations

from collections.abc import Iterator

from tests.fakes.gemini import FakeGemini
from tests.sdk_helpers import only_record, streamed  # noqa: F401 - re-exported to this module's users

GEMINI_KEY = "gemini-upstream-key-4242"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the gateway"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                       "additionalProperties": False},
    },
}
WEATHER_QUESTION = [{"role": "user", "content": "What is the weather in Paris today?"}]
# 1x1 transparent PNG
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")


def fresh(fake: FakeGemini) -> Iterator[FakeGemini]:
    saved = {k: getattr(fake, k) for k in ("reply_text", "prompt_tokens", "completion_tokens", "chunk_delay",
                                           "cached_tokens", "known_models")}
    fake.reset()
    yield fake
    fake.reset()
    for k, v in saved.items():
        setattr(fake, k, v)
    assert fake.errors == []


def serve() -> Iterator[FakeGemini]:
    """A running FakeGemini with GEMINI_KEY (for a session-scoped fixture)."""
    with FakeGemini(api_key=GEMINI_KEY) as fake:
        yield fake


def stream_tool_calls(chunks) -> list[dict]:
    """Tool calls assembled from stream deltas, as an OpenAI client does."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": "", "extra": None})
                slot["id"] = delta.id or slot["id"]
                slot["name"] += (delta.function.name or "") if delta.function else ""
                slot["arguments"] += (delta.function.arguments or "") if delta.function else ""
                slot["extra"] = (delta.model_extra or {}).get("extra_content") or slot["extra"]
    return [calls[i] for i in sorted(calls)]
