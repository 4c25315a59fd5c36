"""Every body the gateway could not translate for some provider is the client's 400,
naming the param, before any provider is called (routing/schemas.py)."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest

from routing.schemas import MAX_DEPTH, parse_chat_request
from gateway_project.errors import InvalidRequest

pytestmark = pytest.mark.django_db(transaction=True)

USER = {"role": "user", "content": "Hello"}


def nested(levels: int, leaf=1):
    """A value `levels` containers deep ({"a": {"a": ... leaf}})."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def body(**extra) -> dict:
    return {"model": "chat-default", "messages": [USER], **extra}


def user(content) -> dict:
    return body(messages=[{"role": "user", "content": content}])


TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
INVALID = [
    (user([{"type": "text", "text": 5}]), "messages[0].content[0].text"),
    (user([{"type": "text", "text": "a"}, {"type": "text", "text": {"x": 1}}]), "messages[0].content[1].text"),
    (user([{"type": "text"}]), "messages[0].content[0].text"),
    (user([{"type": "image_url", "image_url": "http://x/cat.png"}]), "messages[0].content[0].image_url"),
    (user([{"type": "image_url", "image_url": {"url": 7}}]), "messages[0].content[0].image_url.url"),
    (user([{"type": "image_url", "image_url": {"url": "http://x/a.png", "detail": "huge"}}]),
     "messages[0].content[0].image_url.detail"),
    (user([{"type": "input_audio", "input_audio": {"data": "AAA", "format": "ogg"}}]),
     "messages[0].content[0].input_audio.format"),
    (user([{"type": "file", "file": {}}]), "messages[0].content[0].file"),
    (user([]), "messages[0].content"),
    (user(12), "messages[0].content"),
    (body(messages=[{"role": ["user"], "content": "x"}]), "messages[0].role"),  # unhashable: was a 500
    (user([{"type": ["text"], "text": "x"}]), "messages[0].content[0].type"),
    (body(messages=[{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "http://x"}}]}]),
     "messages[0].content[0].type"),
    (body(messages=[USER, {"role": "tool", "tool_call_id": "c1", "content": {"result": 1}}]), "messages[1].content"),
    (body(messages=[USER, {"role": "tool", "content": "1"}]), "messages[1].tool_call_id"),
    (body(messages=[USER, {"role": "assistant", "content": None, "tool_calls": "f()"}]), "messages[1].tool_calls"),
    (body(messages=[USER, {"role": "assistant", "content": None, "tool_calls": ["f()"]}]), "messages[1].tool_calls[0]"),
    (body(messages=[USER, {"role": "assistant", "content": None,
                           "tool_calls": [{"id": "c1", "type": "function", "function": "lookup"}]}]),
     "messages[1].tool_calls[0].function"),
    (body(messages=[USER, {"role": "assistant", "content": None,
                           "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]}]),
     "messages[1].tool_calls[0].function.arguments"),
    (body(messages=[{"role": "user", "content": "x", "tool_calls": []}]), "messages[0].tool_calls"),
    (body(messages=[{"role": "user", "content": "x", "name": 3}]), "messages[0].name"),
    (body(tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}]), "tools[0].function.parameters"),
    (body(tools=[{"type": "retrieval", "function": {"name": "f"}}]), "tools[0]"),
    (body(tool_choice={"type": "function", "function": "f"}), "tool_choice.function"),
    (body(response_format={"type": "json_schema", "json_schema": "x"}), "response_format.json_schema"),
    (body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": []}}),
     "response_format.json_schema.schema"),
    (body(logit_bias={"50256": "ban"}), "logit_bias.50256"),
    (body(stream=True, stream_options={"include_usage": "yes"}), "stream_options.include_usage"),
    (body(metadata=[]), "metadata"),
    (body(metadata="tier=gold"), "metadata"),
    (body(max_tokens=2**40), "max_tokens"),
    (body(seed=99999999999999999999), "seed"),  # parsed as a float: not an integer
    # nesting: any JSON value of the body
    (body(metadata=nested(MAX_DEPTH)), "metadata"),
    (body(tools=[{"type": "function", "function": {"name": "f", "parameters": nested(MAX_DEPTH)}}]), "tools"),
    (body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": nested(300)}}),
     "response_format"),
    (body(messages=[{"role": "user", "content": "x", "extra": nested(300)}]), "messages"),
    (body(anything_else=nested(MAX_DEPTH)), "anything_else"),
]


@pytest.mark.parametrize("payload, param", INVALID, ids=[p for _, p in INVALID])
def test_bodies_no_provider_could_take_are_400_naming_the_param(payload, param, build, fake_openai, gateway):
    build.openai_route(fake_openai)
    # json, not orjson: it encodes what orjson refuses (deeper than 254, ints over 64 bits)
    response = httpx.post(f"{gateway}/v1/chat/completions", content=json.dumps(payload),
                          headers={"Authorization": f"Bearer {build.key()}"}, timeout=10)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"], error["type"]) == (param, "invalid_request", "invalid_request_error")
    assert fake_openai.request_count == 0


def test_depth_limit_is_exact():
    """MAX_DEPTH levels (the body counting as the first) pass; one more does not."""
    parse_chat_request(orjson.dumps(body(metadata=nested(MAX_DEPTH - 2, leaf={}))))
    with pytest.raises(InvalidRequest) as exc:
        parse_chat_request(orjson.dumps(body(metadata=nested(MAX_DEPTH - 1, leaf={}))))
    assert exc.value.param == "metadata"


def test_deeper_than_the_json_parser_takes_is_a_400(build, fake_openai, gateway):
    raw = b'{"model": "chat-default", "messages": [' + b"[" * 2000 + b"]" * 2000 + b"]}"
    response = httpx.post(f"{gateway}/v1/chat/completions", content=raw,
                          headers={"Authorization": f"Bearer {build.key()}"}, timeout=10)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["error"]["message"]


def test_an_image_as_a_string_for_an_anthropic_model_is_the_clients_400_not_the_providers_failure(
    build, fake_anthropic, gateway
):
    """The issue's example: it used to fail inside the Anthropic adapter (an 'unexpected
    answer' counted against the model's breaker); three of them opened it for everyone."""
    provider = build.provider(fake_anthropic, kind="anthropic")
    build.route("chat-default", build.model(provider, "claude-3-5-haiku"))
    key = build.key()
    bad = user([{"type": "image_url", "image_url": "data:image/png;base64,AAAA"}])
    for _ in range(6):
        response = httpx.post(f"{gateway}/v1/chat/completions", json=bad,
                              headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "messages[0].content[0].image_url"
    good = httpx.post(f"{gateway}/v1/chat/completions", json=user("Hello"),
                      headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert good.status_code == 200, good.text  # the model's breaker never heard of the bad ones
    assert fake_anthropic.request_count == 1


VALID = [
    user([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA",
                                                                              "detail": "low"}}]),
    body(messages=[{"role": "system", "content": [{"type": "text", "text": "Be brief."}]}, USER,
                   {"role": "assistant", "content": None,
                    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
                   {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "42"}]}],
         tools=[TOOL], tool_choice={"type": "function", "function": {"name": "lookup"}}),
    body(metadata={"tier": "gold", "tags": ["a", {"b": [1, 2]}]}, logit_bias={"50256": -100}, seed=-5),
    body(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": nested(20), "strict": True}}),
    body(stream=True, stream_options={"include_usage": True}, metadata=None, max_tokens=None),
]


@pytest.mark.parametrize("payload", VALID)
def test_valid_bodies_still_pass(payload):
    parse_chat_request(orjson.dumps(payload))
