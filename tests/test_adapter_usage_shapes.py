"""Answers of the wrong shape (choices that are not a list, a stream delta that is not
an object, text that is not a string, ...) are the provider's bad_response at the
adapter boundary: the route falls back, nothing downstream meets the wrong type, and
the client never sees a 500. Fakes send the shapes over real HTTP (mangle)."""

from __future__ import annotations

import time

import httpx
import pytest

from billing.models import UsageRecord
from providers.types import ErrorKind
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def when(predicate, change):
    def edit(obj):
        if predicate(obj):
            change(obj)
        return obj
    return edit


def openai_choices(obj):
    return isinstance(obj.get("choices"), list) and obj["choices"]


def set_first_choice(key, value):
    return when(openai_choices, lambda o: o["choices"][0].__setitem__(key, value))


def set_in_first_choice(outer, key, value):
    return when(openai_choices, lambda o: o["choices"][0][outer].__setitem__(key, value))


CASES = {
    # kind, stream, edit
    "openai json: choices not a list": ("openai", False, when(lambda o: "choices" in o, lambda o: o.__setitem__("choices", 5))),
    "openai json: choices a string": ("openai", False, when(lambda o: "choices" in o, lambda o: o.__setitem__("choices", "abc"))),
    "openai json: content a number": ("openai", False, set_in_first_choice("message", "content", 12)),
    "openai json: tool_calls a string": ("openai", False, set_in_first_choice("message", "tool_calls", "call it")),
    "openai json: finish_reason a list": ("openai", False, set_first_choice("finish_reason", ["stop"])),
    "openai json: index a string": ("openai", False, set_first_choice("index", "0")),
    "openai sse: choices not a list": ("openai", True, when(lambda o: "choices" in o, lambda o: o.__setitem__("choices", 5))),
    "openai sse: delta a string": ("openai", True, set_first_choice("delta", "Hello")),
    "openai sse: delta a list": ("openai", True, set_first_choice("delta", [1])),
    "openai sse: choice a string": ("openai", True, when(openai_choices, lambda o: o.__setitem__("choices", ["x"]))),
    "openai sse: content a number": ("openai", True, set_in_first_choice("delta", "content", 12)),
    "anthropic json: block a string": ("anthropic", False, when(lambda o: "content" in o, lambda o: o.__setitem__("content", ["hi"]))),
    "anthropic json: text a number": ("anthropic", False, when(lambda o: "content" in o, lambda o: o["content"][0].__setitem__("text", 5))),
    "anthropic json: stop_reason a list": ("anthropic", False, when(lambda o: "stop_reason" in o, lambda o: o.__setitem__("stop_reason", ["end_turn"]))),
    "anthropic sse: delta a string": ("anthropic", True, when(lambda o: o.get("type") == "content_block_delta", lambda o: o.__setitem__("delta", "hi"))),
    "anthropic sse: text a number": ("anthropic", True, when(lambda o: o.get("type") == "content_block_delta", lambda o: o["delta"].__setitem__("text", 5))),
    "anthropic sse: message a string": ("anthropic", True, when(lambda o: o.get("type") == "message_start", lambda o: o.__setitem__("message", "m"))),
    "ollama json: message content a number": ("ollama", False, when(lambda o: "message" in o, lambda o: o["message"].__setitem__("content", 5))),
    "ollama json: tool_calls an object": ("ollama", False, when(lambda o: "message" in o, lambda o: o["message"].__setitem__("tool_calls", {"a": 1}))),
    "ollama sse: message a string": ("ollama", True, when(lambda o: "message" in o, lambda o: o.__setitem__("message", "hi"))),
}
FAKES = {"openai": "fake_openai", "anthropic": "fake_anthropic", "ollama": "fake_ollama"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_wrongly_shaped_answer_is_a_bad_response_and_the_route_falls_back(case, request, build, fake_openai_b, gateway, caplog):
    kind, stream, edit = CASES[case]
    fake = request.getfixturevalue(FAKES[kind])
    primary = build.model(build.provider(fake, name="primary", kind=kind), "m-1")
    build.route("chat-default", primary, build.model(build.provider(fake_openai_b, name="backup")))
    key = build.key()
    fake.mangle(edit)
    response = httpx.post(f"{gateway}/v1/chat/completions", timeout=10, headers={"Authorization": f"Bearer {key}"},
                          json={"model": "chat-default", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-provider"] == "backup"
    assert fake.pending == 0  # the primary did get the broken answer
    assert wait_for(lambda: UsageRecord.objects.count() >= 1)
    time.sleep(0.05)
    record = UsageRecord.objects.get()
    assert [a["outcome"] for a in record.attempt_log] == [ErrorKind.BAD_RESPONSE.value, "ok"]
    assert_classified_by_the_adapter(caplog)


def assert_classified_by_the_adapter(caplog) -> None:
    """The adapter said what was wrong: the engine's safety net for adapter bugs (an
    unexpected exception, logged with its traceback) was not needed."""
    assert not [r for r in caplog.records if "failed unexpectedly" in r.getMessage()]
