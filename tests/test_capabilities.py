"""Per-model capabilities through a running gateway: a request that needs what a
model lacks (tools, images, a JSON response_format, a stream) is never sent to it —
the fake behind it records nothing — and goes to the route's next target that has
it; when no target has it, the client gets a 400 naming what is missing, before
anything is reserved."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from billing.models import UsageRecord, VirtualKey
from routing.schemas import parse_chat_request
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
CHAT = ["chat", "streaming"]  # a plain chat model: no tools, no images, no JSON mode
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
IMAGE = {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture
def two_targets(fake_openai, fake_openai_b, build):
    """A route whose first target is a plain chat model (fake_openai) and whose second
    can do everything (fake_openai_b)."""
    fake_openai.reply_text, fake_openai_b.reply_text = "from plain", "from capable"
    plain = build.model(build.provider(fake_openai, name="plain"), capabilities=CHAT)
    capable = build.model(build.provider(fake_openai_b, name="capable"))
    build.route("chat-default", plain, capable)
    return build.key("k")


def only_record() -> UsageRecord:
    assert wait_for(lambda: UsageRecord.objects.count() >= 1)
    time.sleep(0.05)
    return UsageRecord.objects.get()


@pytest.mark.parametrize("extra, lacks", [
    ({"tools": TOOLS}, "tools"),
    ({"tools": TOOLS, "tool_choice": "none"}, "tools"),
    ({"messages": [IMAGE]}, "vision"),
    ({"response_format": {"type": "json_object"}}, "json_mode"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}},
     "json_mode"),
], ids=["tools", "tools-choice-none", "image", "json-object", "json-schema"])
def test_a_request_goes_past_a_model_that_lacks_what_it_needs(two_targets, fake_openai, fake_openai_b, openai_client,
                                                               extra, lacks):
    body = {"model": "chat-default", "messages": HELLO, **extra}
    raw = openai_client(two_targets).chat.completions.with_raw_response.create(**body)
    assert raw.parse().choices[0].message.content == "from capable"
    assert fake_openai.request_count == 0  # never sent anything
    sent = fake_openai_b.last_request.body
    assert {k: sent[k] for k in extra} == extra  # the capable target got the request as sent
    assert raw.headers["x-gateway-attempt-log"] == "plain/gpt-4o-mini=unsupported_capability,capable/gpt-4o-mini=ok"
    assert raw.headers["x-gateway-attempts"] == "1"
    record = only_record()
    assert record.attempt_log[0] == {"target": "plain/gpt-4o-mini", "outcome": "unsupported_capability",
                                     "latency_ms": 0, "status": None, "reason": f"lacks {lacks}"}
    assert [c["target"] for c in record.candidates] == ["capable/gpt-4o-mini"]


def test_a_plain_request_still_goes_to_the_first_target(two_targets, fake_openai, fake_openai_b, openai_client):
    answer = openai_client(two_targets).chat.completions.create(model="chat-default", messages=HELLO)
    assert answer.choices[0].message.content == "from plain" and fake_openai_b.request_count == 0


def test_a_stream_goes_past_a_model_that_cannot_stream(fake_openai, fake_openai_b, build, openai_client):
    build.route("chat-default", build.model(build.provider(fake_openai, name="batch"), capabilities=["chat"]),
                build.model(build.provider(fake_openai_b, name="streamer")))
    fake_openai_b.reply_text = "streamed"
    chunks = list(openai_client(build.key()).chat.completions.create(model="chat-default", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed"
    assert fake_openai.request_count == 0
    assert [a["outcome"] for a in only_record().attempt_log] == ["unsupported_capability", "ok"]


def test_the_cost_strategy_orders_only_the_capable_targets(fake_openai, fake_openai_b, build, openai_client):
    cheap = build.model(build.provider(fake_openai, name="cheap"), input_price="0.01", output_price="0.01",
                        capabilities=CHAT)
    dear = build.model(build.provider(fake_openai_b, name="dear"), input_price="5", output_price="5")
    build.route("chat-default", cheap, dear, strategy="cost")
    client = openai_client(build.key())
    client.chat.completions.create(model="chat-default", messages=HELLO)
    assert fake_openai.request_count == 1  # the cheapest, for what it can serve
    raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=HELLO, tools=TOOLS)
    assert raw.headers["x-gateway-candidates"] == "dear/gpt-4o-mini" and fake_openai.request_count == 1


# --- no target can serve it -------------------------------------------------------------------
def test_no_capable_target_is_a_400_naming_what_is_missing(fake_openai, build, gateway):
    build.route("chat-default", build.model(build.provider(fake_openai, name="plain"), capabilities=CHAT))
    secret = build.key("k")
    VirtualKey.objects.filter(name="k").update(rpm_limit=1)
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {secret}"}) as http:
        refused = http.post("/v1/chat/completions", json={"model": "chat-default", "messages": [IMAGE], "tools": TOOLS})
        error = refused.json()["error"]
        assert refused.status_code == 400 and error["code"] == "unsupported_capability"
        assert error["param"] == "tools" and error["type"] == "invalid_request_error"
        assert "it needs tools (it defines tools), vision (it sends images)" in error["message"]
        assert "plain/gpt-4o-mini lacks tools, vision" in error["message"]
        assert fake_openai.request_count == 0
        # Refused before admission: the key's one request a minute is still there.
        assert http.post("/v1/chat/completions", json={"model": "chat-default", "messages": HELLO}).status_code == 200
    assert UsageRecord.objects.count() == 1


def test_the_openai_sdk_sees_a_bad_request_error(fake_openai, build, openai_client):
    build.route("chat-default", build.model(build.provider(fake_openai), capabilities=CHAT))
    with pytest.raises(openai.BadRequestError, match="needs json_mode"):
        openai_client(build.key()).chat.completions.create(
            model="chat-default", messages=HELLO, response_format={"type": "json_object"})


# --- what a body needs ---------------------------------------------------------------------------
@pytest.mark.parametrize("extra, needs", [
    ({}, set()),
    ({"tools": TOOLS}, {"tools"}),
    ({"tools": []}, set()),
    ({"functions": [{"name": "f"}]}, {"tools"}),
    ({"messages": [IMAGE]}, {"vision"}),
    ({"response_format": {"type": "text"}}, set()),
    ({"response_format": {"type": "json_object"}}, {"json_mode"}),
    ({"stream": True}, {"streaming"}),
    ({"reasoning_effort": "high"}, set()),  # asks for no capability (routing/schemas.py NEEDS says why)
    ({"stream": True, "tools": TOOLS, "messages": [IMAGE]}, {"streaming", "tools", "vision"}),
])
def test_the_needs_of_a_chat_body(extra, needs):
    import orjson

    body = {"model": "m", "messages": HELLO, **extra}
    assert parse_chat_request(orjson.dumps(body)).needs == needs
