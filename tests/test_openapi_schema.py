"""/api/schema/ documents the /v1 API next to the management API: the chat request,
its JSON and event-stream answers, the OpenAI error format, and the models endpoints."""

from __future__ import annotations

import pytest

from tests.test_management_api import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema() -> dict:
    response = token_client().get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def test_v1_endpoints_are_in_the_schema_next_to_the_management_api(schema):
    paths = schema["paths"]
    assert {"/v1/chat/completions", "/v1/models", "/v1/models/{model}", "/api/keys/", "/api/usage/"} <= set(paths)
    chat = paths["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletionRequest")
    ok = chat["responses"]["200"]["content"]
    assert ok["application/json"]["schema"]["$ref"].endswith("/ChatCompletion")
    assert ok["text/event-stream"]["schema"]["$ref"].endswith("/ChatCompletionChunk")
    for status in ("400", "401", "404", "429", "502", "503", "504"):  # no 403: a forbidden route is a 404
        assert chat["responses"][status]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert paths["/v1/models"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ModelList")
    assert {"type": "http", "scheme": "bearer"}.items() <= schema["components"]["securitySchemes"]["virtualKey"].items()


def test_messages_and_content_parts_are_described_by_role_and_type(schema):
    components = schema["components"]["schemas"]
    request = components["ChatCompletionRequest"]
    assert "model" in request["required"] and "messages" in request["required"]
    message = request["properties"]["messages"]["items"]
    assert message["discriminator"]["propertyName"] == "role"
    assert set(message["discriminator"]["mapping"]) == {"system", "developer", "user", "assistant", "tool", "function"}
    user_content = components["UserMessage"]["properties"]["content"]["oneOf"]
    assert user_content[0] == {"type": "string"}
    assert set(user_content[1]["items"]["discriminator"]["mapping"]) == {"text", "image_url", "input_audio", "file"}
    assert components["ImageURL"]["required"] == ["url"]
    assert set(components["ToolMessage"]["required"]) == {"role", "content", "tool_call_id"}
