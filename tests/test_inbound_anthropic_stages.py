"""/v1/messages through the same stages as chat: a redacting guardrail rewrites the
request, so the client's own (unredacted) copy is never passed through; output
guardrails see the answer of a passed-through stream, thinking and signatures still
arrive; the answer cache serves Anthropic clients too.
"""

from __future__ import annotations

import anthropic
import pytest

from billing.models import UsageRecord
from tests.conftest import wait_for
from tests.fakes.anthropic import THINKING_TEXT, signature
from tests.test_guardrails_gateway import EMAIL, add
from tests.test_inbound_anthropic import THINKING, USER, claude, claude_model, upstream  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)
DETERMINISTIC = {"temperature": 0}  # what the cache's default policy asks of a cacheable request


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_a_redacted_prompt_is_translated_never_passed_through(fake_anthropic, claude_model, build, claude, stream):
    add("pii-default", "pii")
    client = claude(build.key())
    question = [{"role": "user", "content": f"Write to {EMAIL} please"}]
    if stream:
        with client.messages.stream(model="claude", max_tokens=50, messages=question,
                                    extra_body={"some_future_field": 1}) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(model="claude", max_tokens=50, messages=question,
                                         extra_body={"some_future_field": 1})
    assert message.content[0].text == "Hello from fake-anthropic."
    received = upstream(fake_anthropic)
    assert EMAIL.encode() not in received.raw_body  # the provider never saw it
    assert "some_future_field" not in received.body  # the translation, not the client's bytes
    assert "[EMAIL" in received.body["messages"][0]["content"][0]["text"]
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.endpoint == "messages" and record.status == "success"


def test_a_flagged_prompt_is_still_passed_through(fake_anthropic, claude_model, build, claude):
    add("pii-flag", "pii", action="flag")
    claude(build.key()).messages.create(model="claude", max_tokens=50, messages=[{"role": "user", "content": EMAIL}],
                                        extra_body={"some_future_field": 1})
    assert upstream(fake_anthropic).body["some_future_field"] == 1


def test_output_guardrails_check_a_passed_through_stream_and_thinking_survives(fake_anthropic, claude_model,
                                                                               build, claude):
    add("pii-out", "pii", stage="output")
    fake_anthropic.reply_text = f"Mail {EMAIL} today."
    client = claude(build.key())
    with client.messages.stream(model="claude", max_tokens=4096, thinking=THINKING, messages=USER) as events:
        message = events.get_final_message()
    thinking, text = message.content
    assert (thinking.thinking, thinking.signature) == (THINKING_TEXT, signature(THINKING_TEXT))
    assert EMAIL not in text.text and text.text.startswith("Mail ") and text.text.endswith(" today.")
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0

    plain = client.messages.create(model="claude", max_tokens=4096, thinking=THINKING, messages=USER)
    assert EMAIL not in plain.content[-1].text


def test_an_unchanged_answer_keeps_its_thinking_blocks_under_output_guardrails(fake_anthropic, claude_model,
                                                                               build, claude):
    add("pii-out", "pii", stage="output")
    message = claude(build.key()).messages.create(model="claude", max_tokens=4096, thinking=THINKING, messages=USER)
    assert message.content[0].type == "thinking" and message.content[0].signature == signature(THINKING_TEXT)
    assert message.id.startswith("msg_01")  # Anthropic's own Message, not rebuilt


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_the_answer_cache_serves_anthropic_clients(fake_openai, build, claude, stream):
    build.route("gpt", build.model(build.provider(fake_openai, name="openai-main"), "gpt-4o-mini"),
                cache_mode="exact", cache_ttl_s=60)
    fake_openai.reply_text = "Cached words here."
    client = claude(build.key())

    def ask():
        if stream:
            with client.messages.stream(model="gpt", max_tokens=50, messages=USER, extra_body=DETERMINISTIC) as events:
                return events.get_final_message()
        return client.messages.create(model="gpt", max_tokens=50, messages=USER, extra_body=DETERMINISTIC)

    first = ask()
    assert wait_for(lambda: UsageRecord.objects.count() == 1)
    second = None
    for _ in range(20):  # the answer is stored in the background, after the first reply
        second = ask()
        if UsageRecord.objects.filter(status="cache_hit").exists():
            break
    assert second.content[0].text == first.content[0].text == "Cached words here."
    assert fake_openai.request_count == UsageRecord.objects.filter(status="success").count()  # hits never call it
    hit = UsageRecord.objects.filter(status="cache_hit").get()
    assert hit.endpoint == "messages"
    assert second.stop_reason == "end_turn" and second.usage.output_tokens == 3


def test_sdk_async_client_streams_too(fake_anthropic, claude_model, build, gateway):
    import asyncio

    key = build.key()

    async def run():
        async with anthropic.AsyncAnthropic(base_url=gateway, api_key=key, max_retries=0) as client:
            async with client.messages.stream(model="claude", max_tokens=50, messages=USER) as events:
                return await events.get_final_message()

    assert asyncio.run(run()).content[0].text == "Hello from fake-anthropic."
