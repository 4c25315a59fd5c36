"""Shared by tests/test_provider_cohere*.py: what they send, and readers of what the
gateway relayed (the fixtures are in tests/cohere_fixtures.py)."""

from __future__ import annotations


from tests.fakes.cohere import FakeCohere
from tests.sdk_helpers import only_record, streamed  # noqa: F401 - re-exported to this module's users

COHERE_KEY = "co-upstream-secret-4242"
MODEL = "command-a-03-2025"
VISION_MODEL = "command-a-vision-07-2025"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello to the gateway"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def upstream_body(fake: FakeCohere, path: str = "/v2/chat") -> dict:
    request = fake.last_request
    assert request is not None and request.path == path
    return request.body


def tool_calls_of(chunks) -> dict[int, dict]:
    """Streamed tool calls assembled by index: {index: {id, name, arguments, pieces}}."""
    calls: dict[int, dict] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                entry = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": "", "pieces": 0})
                entry["id"] = tc.id or entry["id"]
                if tc.function:
                    entry["name"] = tc.function.name or entry["name"]
                    if tc.function.arguments:
                        entry["arguments"] += tc.function.arguments
                        entry["pieces"] += 1
    return calls
