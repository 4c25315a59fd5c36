"""Bad bodies, stateful features and wrong calls on /v1/responses: a 4xx in OpenAI's
error format naming the param, before any provider is called; never a 500. The
body fuzz runs the parser and every adapter's translation offline."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import httpx
import openai
import pytest

from gateway_project.errors import InvalidRequest
from providers.adapters import ADAPTERS
from providers.adapters.base import RequestNotTranslatable
from providers.catalog import ModelInfo, ProviderInfo
from providers.kinds import KINDS
from providers.types import Price
from routing.inbound.responses_input import parse_responses_request
from routing.schemas import MAX_DEPTH

USER = {"role": "user", "content": "Hello"}
CALL = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}


def nested(levels: int, leaf=1):
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def body(**extra) -> dict:
    return {"model": "chat-default", "input": "Hello", **extra}


def items(*input_items) -> dict:
    return body(input=list(input_items))


def user(content) -> dict:
    return items({"role": "user", "content": content})


INVALID = [  # (body, param, code)
    ({"input": "Hello"}, "model", "invalid_request"),
    ({"model": "chat-default"}, "input", "invalid_request"),
    (body(input=[]), "input", "invalid_request"),
    (body(input=5), "input", "invalid_request"),
    (items("Hello"), "input[0]", "invalid_request"),
    (items({"role": "tool", "content": "x"}), "input[0].role", "invalid_request"),
    (items({"role": ["user"], "content": "x"}), "input[0].role", "invalid_request"),
    (user(5), "input[0].content", "invalid_request"),
    (user([]), "input[0].content", "invalid_request"),
    (user([{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]), "input[0].content[0].type", "invalid_request"),
    (user([{"type": ["input_text"], "text": "x"}]), "input[0].content[0].type", "invalid_request"),
    (user([{"type": "input_text", "text": 5}]), "input[0].content[0].text", "invalid_request"),
    (user([{"type": "input_image"}]), "input[0].content[0].image_url", "invalid_request"),
    (user([{"type": "input_image", "image_url": {"url": "http://x/a.png"}}]), "input[0].content[0].image_url",
     "invalid_request"),
    (user([{"type": "input_image", "file_id": "file-1"}]), "input[0].content[0].file_id", "invalid_request"),
    (user([{"type": "input_image", "image_url": "http://x/a.png", "detail": "huge"}]), "input[0].content[0].detail",
     "invalid_request"),
    (user([{"type": "input_file"}]), "input[0].content[0]", "invalid_request"),
    (user([{"type": "input_file", "file_url": "http://x/a.pdf"}]), "input[0].content[0].file_url", "invalid_request"),
    (items({"role": "system", "content": [{"type": "input_image", "image_url": "http://x/a.png"}]}),
     "input[0].content[0].type", "invalid_request"),
    (items(USER, {"role": "assistant", "content": [{"type": "output_text", "text": {"x": 1}}]}),
     "input[1].content[0].text", "invalid_request"),
    (items(USER, {**CALL, "call_id": None}), "input[1].call_id", "invalid_request"),
    (items(USER, {**CALL, "name": ""}), "input[1].name", "invalid_request"),
    (items(USER, {**CALL, "arguments": {"a": 1}}), "input[1].arguments", "invalid_request"),
    (items(USER, {"type": "function_call_output", "call_id": "call_9", "output": "1"}), "input[1].call_id",
     "invalid_request"),
    (items(USER, CALL, {"type": "function_call_output", "call_id": "call_1", "output": 5}), "input[2].output",
     "invalid_request"),
    (items(USER, CALL, {"type": "function_call_output", "call_id": "call_1", "output": [{"type": "input_text"}]}),
     "input[2].output[0].text", "invalid_request"),
    (items({"type": "item_reference", "id": "msg_1"}), "input[0]", "stored_items_not_supported"),
    (items(USER, {"type": "web_search_call", "id": "ws_1"}), "input[1].type", "invalid_request"),
    (items({"role": "developer", "content": "Be brief."}), "input", "invalid_request"),
    (body(instructions=5), "instructions", "invalid_request"),
    (body(tools=[{"type": "web_search"}]), "tools[0].type", "unsupported_tool"),
    (body(tools=[{"type": "function", "name": "f"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]),
     "tools[1].type", "unsupported_tool"),
    (body(tools=[{"type": "function", "function": {"name": "f"}}]), "tools[0].name", "invalid_request"),  # chat's shape
    (body(tools="f"), "tools", "invalid_request"),
    (body(tools=[{"type": "function", "name": "f", "parameters": "{}"}]), "tools[0].parameters", "invalid_request"),
    (body(tools=[{"type": "function", "name": "f", "strict": "yes"}]), "tools[0].strict", "invalid_request"),
    (body(tools=[{"type": "function", "name": "f", "description": 3}]), "tools[0].description", "invalid_request"),
    (body(tool_choice={"type": "web_search_preview"}), "tool_choice", "invalid_request"),
    (body(tool_choice={"type": "function"}), "tool_choice.name", "invalid_request"),
    (body(tool_choice="sometimes"), "tool_choice", "invalid_request"),
    (body(parallel_tool_calls="yes"), "parallel_tool_calls", "invalid_request"),
    (body(temperature=3), "temperature", "invalid_request"),
    (body(top_p=-1), "top_p", "invalid_request"),
    (body(max_output_tokens=0), "max_output_tokens", "invalid_request"),
    (body(max_output_tokens="10"), "max_output_tokens", "invalid_request"),
    (body(max_output_tokens=2**40), "max_output_tokens", "invalid_request"),
    (body(text="json"), "text", "invalid_request"),
    (body(text={"format": {"type": "xml"}}), "text.format.type", "invalid_request"),
    (body(text={"format": {"type": "json_schema", "schema": {}}}), "text.format.name", "invalid_request"),
    (body(text={"format": {"type": "json_schema", "name": "x", "schema": []}}), "text.format.schema", "invalid_request"),
    (body(text={"verbosity": "loud"}), "text.verbosity", "invalid_request"),
    (body(reasoning="high"), "reasoning", "invalid_request"),
    (body(reasoning={"effort": "extreme"}), "reasoning.effort", "invalid_request"),
    (body(previous_response_id="resp_123"), "previous_response_id", "stored_responses_not_supported"),
    (body(conversation="conv_123"), "conversation", "stored_responses_not_supported"),
    (body(background=True), "background", "stored_responses_not_supported"),
    (body(prompt={"id": "pmpt_1"}), "prompt", "stored_responses_not_supported"),
    (body(stream="yes"), "stream", "invalid_request"),
    (body(store="no"), "store", "invalid_request"),
    (body(include="reasoning.encrypted_content"), "include", "invalid_request"),
    (body(metadata=[]), "metadata", "invalid_request"),
    (body(user=5), "user", "invalid_request"),
    (body(truncation="sometimes"), "truncation", "invalid_request"),
    (body(metadata=nested(MAX_DEPTH)), "metadata", "invalid_request"),
    (body(tools=[{"type": "function", "name": "f", "parameters": nested(300)}]), "tools", "invalid_request"),
]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("payload, param, code", INVALID, ids=[f"{i}-{p}" for i, (_, p, _) in enumerate(INVALID)])
def test_bad_bodies_are_400_naming_the_param(payload, param, code, build, fake_openai, gateway):
    build.openai_route(fake_openai)
    # json, not orjson: it encodes what orjson refuses (deeper than 254 levels)
    response = httpx.post(f"{gateway}/v1/responses", content=json.dumps(payload),
                          headers={"Authorization": f"Bearer {build.key()}"}, timeout=10)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, code, "invalid_request_error")
    assert error["message"]
    assert fake_openai.request_count == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("raw, says", [
    (b"{", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"model": "chat-default", "input": [' + b"[" * 2000 + b"]" * 2000 + b"]}", "nested too deeply"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_unreadable_bodies_are_400(raw, says, build, fake_openai, gateway):
    build.openai_route(fake_openai)
    response = httpx.post(f"{gateway}/v1/responses", content=raw,
                          headers={"Authorization": f"Bearer {build.key()}"}, timeout=10)
    assert response.status_code == 400 and says in response.json()["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_sdk_maps_the_errors_to_its_exceptions(build, fake_openai, openai_client):
    build.openai_route(fake_openai)
    client = openai_client(build.key())
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat-default", input="hi", previous_response_id="resp_abc")
    assert "send the whole conversation in 'input'" in caught.value.message
    assert caught.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="chat-default", input="hi", tools=[{"type": "web_search"}], stream=True)
    assert caught.value.body["code"] == "unsupported_tool"
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-route", input="hi")
    with pytest.raises(openai.AuthenticationError):
        openai_client("sk-gw-not-a-key").responses.create(model="chat-default", input="hi")
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve("resp_abc")
    assert caught.value.body["code"] == "response_not_found" and "does not store" in caught.value.message
    with pytest.raises(openai.NotFoundError):
        client.responses.delete("resp_abc")
    assert fake_openai.request_count == 0


@pytest.mark.django_db(transaction=True)
def test_wrong_method_is_405_and_no_key_is_401_before_the_body_is_parsed(build, fake_openai, gateway):
    build.openai_route(fake_openai)
    response = httpx.get(f"{gateway}/v1/responses", headers={"Authorization": f"Bearer {build.key()}"}, timeout=10)
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    response = httpx.post(f"{gateway}/v1/responses", content=b"{", timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"


@pytest.mark.django_db(transaction=True)
def test_a_body_too_large_is_413_in_openai_format(build, fake_openai, gateway, settings):
    build.openai_route(fake_openai)
    settings.GATEWAY_MAX_BODY_BYTES = 10_000
    response = httpx.post(f"{gateway}/v1/responses", json=body(input="x" * 20_000),
                          headers={"Authorization": f"Bearer {build.key()}"}, timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large" and fake_openai.request_count == 0


@pytest.mark.django_db(transaction=True)
def test_a_data_url_image_reaches_anthropic_as_a_base64_block(build, fake_anthropic, gateway):
    provider = build.provider(fake_anthropic, kind="anthropic")
    build.route("chat-default", build.model(provider, "claude-sonnet-4-6"))
    good = user([{"type": "input_text", "text": "What is it?"},
                 {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}])
    response = httpx.post(f"{gateway}/v1/responses", json=good, headers={"Authorization": f"Bearer {build.key()}"},
                          timeout=10)
    assert response.status_code == 200, response.text
    image = fake_anthropic.last_request.body["messages"][0]["content"][1]
    assert image == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


# --- fuzz: the parser and every adapter's translation, offline ------------------------------------
CODEX_BODY = {
    "model": "chat-default",
    "instructions": "You are a coding agent.",
    "input": [
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "sandbox"}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Fix the bug"},
            {"type": "input_image", "image_url": "data:image/png;base64,AAAA", "detail": "low"},
            {"type": "input_file", "file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Looking."}]},
        {"type": "function_call", "call_id": "call_1", "name": "shell", "arguments": "{\"cmd\": \"ls\"}"},
        {"type": "function_call_output", "call_id": "call_1", "output": [
            {"type": "input_text", "text": "a.py"}, {"type": "input_image", "image_url": "http://x/s.png"}]},
        {"role": "user", "content": "Go on"},
    ],
    "tools": [{"type": "function", "name": "shell", "description": "Run", "strict": False,
               "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}],
    "tool_choice": "auto", "parallel_tool_calls": False, "store": False, "stream": True,
    "include": ["reasoning.encrypted_content"], "prompt_cache_key": "c1", "reasoning": {"effort": "high"},
    "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}, "verbosity": "low"},
    "max_output_tokens": 100, "temperature": 0.5, "top_p": 1, "metadata": {"a": "b"}, "user": "u",
}
ODD_VALUES = [None, 0, -1, 1.5, True, "", "x", [], {}, [{}], [None], {"type": "input_text"}, 2**70]


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, (*path, i))


def _replaced(value, path, new):
    value = copy.deepcopy(value)
    target = value
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = new
    return value


def _model(kind: str) -> ModelInfo:
    provider = ProviderInfo(id=1, name="p", kind=kind, spec=KINDS[kind], base_url="http://127.0.0.1:9",
                            api_key="k", api_key_ref=None, timeout_s=5.0, options={})
    return ModelInfo(id=1, name="m", upstream_id="m", provider=provider, price=Price(Decimal(1), Decimal(1)),
                     context_window=None)


def test_fuzzed_bodies_are_parsed_or_refused_and_always_translatable():
    """Every value in a Codex-like body replaced by odd values: a 400 (InvalidRequest)
    or a request every adapter translates (or refuses as the client's: nothing else)."""
    models = {kind: _model(kind) for kind in ("openai", "anthropic", "ollama")}
    outcomes = {"parsed": 0, "refused": 0}
    for path in list(_paths(CODEX_BODY))[1:]:
        for odd in ODD_VALUES:
            raw = json.dumps(_replaced(CODEX_BODY, path, odd)).encode()
            try:
                parsed = parse_responses_request(raw)
            except InvalidRequest:
                outcomes["refused"] += 1
                continue
            outcomes["parsed"] += 1
            for kind, model in models.items():
                try:
                    ADAPTERS[model.provider.spec.wire].encode(model, parsed.chat, stream=parsed.chat.stream)
                except RequestNotTranslatable:
                    pass
    assert outcomes["parsed"] > 100 and outcomes["refused"] > 100  # both sides exercised


def test_the_codex_body_translates_field_by_field():
    parsed = parse_responses_request(json.dumps(CODEX_BODY).encode())
    chat = parsed.chat
    assert chat.messages == [
        {"role": "system", "content": "You are a coding agent."},
        {"role": "system", "content": "sandbox"},
        {"role": "user", "content": [
            {"type": "text", "text": "Fix the bug"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}}]},
        {"role": "assistant", "content": "Looking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "shell", "arguments": "{\"cmd\": \"ls\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.py"},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/s.png"}}]},  # the tool's image
        {"role": "user", "content": "Go on"},
    ]
    assert chat.params == {
        "tools": [{"type": "function", "function": {"name": "shell", "description": "Run", "strict": False,
                                                    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}}],
        "tool_choice": "auto", "parallel_tool_calls": False, "temperature": 0.5, "top_p": 1,
        "max_completion_tokens": 100, "reasoning_effort": "high", "user": "u",
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    }
    assert chat.stream and chat.max_tokens == 100 and chat.metadata == {"a": "b"}
    assert chat.needs == {"tools", "vision", "json_mode", "streaming"}
    assert parsed.shown["store"] is False and parsed.shown["text"]["verbosity"] == "low"
