"""Prompts and answers in trace spans: never by default; with the route's debug setting
(trace_content), as the guardrails left them (a PII guardrail's placeholders), and
still never a restored original nor the prompt of a blocked request."""

from __future__ import annotations

import json

import openai
import pytest

from tests.test_guardrails_gateway import EMAIL, PHONE, add
from tests.tracing_helpers import collector_fixture, collector_server  # noqa: F401 - the fixtures
from tests.tracing_helpers import all_values

pytestmark = pytest.mark.django_db(transaction=True)
PROMPT = f"Write to {EMAIL} about the invoice"


def _route(build, fake, **kw):
    build.route("chat-default", build.model(build.provider(fake, name="primary")), **kw)
    return build.key()


def _ask(client, streamed: bool) -> str:
    messages = [{"role": "user", "content": PROMPT}]
    if streamed:
        chunks = client.chat.completions.create(model="chat-default", messages=messages, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return client.chat.completions.create(model="chat-default", messages=messages).choices[0].message.content


def _server(collector):
    collector.wait(servers=1, clients=1)
    (server,) = collector.servers()
    return server


@pytest.mark.parametrize("streamed", [False, True])
def test_no_content_in_any_span_by_default(collector, build, fake_openai, openai_client, streamed):
    fake_openai.reply("The invoice is settled, thank you.")
    _ask(openai_client(_route(build, fake_openai)), streamed)
    server = _server(collector)
    text = all_values(collector.spans)
    assert "invoice" not in text and EMAIL not in text and "settled" not in text
    assert "gen_ai.input.messages" not in server.attributes and "gen_ai.output.messages" not in server.attributes


@pytest.mark.parametrize("streamed", [False, True])
def test_the_debug_setting_records_content_after_redaction(collector, build, fake_openai, openai_client,
                                                           streamed):
    add("pii", "pii")  # redact, both ways, no restore
    fake_openai.reply(f"Done. I also copied {PHONE}.")
    answer = _ask(openai_client(_route(build, fake_openai, trace_content=True)), streamed)
    assert answer == "Done. I also copied [PHONE_1]."
    server = _server(collector)
    prompt = json.loads(server.attributes["gen_ai.input.messages"])
    assert prompt == [{"role": "user", "parts": [{"type": "text", "content": "Write to [EMAIL_1] about the invoice"}]}]
    (output,) = json.loads(server.attributes["gen_ai.output.messages"])
    assert output["role"] == "assistant" and output["finish_reason"] == "stop"
    assert output["parts"] == [{"type": "text", "content": "Done. I also copied [PHONE_1]."}]
    text = all_values(collector.spans)
    assert EMAIL not in text and PHONE not in text


def test_a_restored_answer_is_withheld(collector, build, fake_openai, openai_client):
    add("pii", "pii", restore=True)
    fake_openai.reply("I will write to [EMAIL_1].")
    answer = _ask(openai_client(_route(build, fake_openai, trace_content=True)), False)
    assert answer == f"I will write to {EMAIL}."  # the client gets the original back...
    server = _server(collector)
    assert "[EMAIL_1]" in server.attributes["gen_ai.input.messages"]
    assert "gen_ai.output.messages" not in server.attributes  # ...the trace never does
    assert server.attributes["gateway.content.withheld"] == "restored_originals"
    assert EMAIL not in all_values(collector.spans)


def test_a_blocked_prompt_is_withheld(collector, build, fake_openai, openai_client):
    add("no-mail", "pii", action="block", stage="input", entities=["email"])
    with pytest.raises(openai.BadRequestError):
        _ask(openai_client(_route(build, fake_openai, trace_content=True)), False)
    collector.wait(servers=1)
    (server,) = collector.servers()
    assert server.attributes["gateway.content.withheld"] == "blocked"
    assert server.attributes["gateway.status"] == "blocked"
    assert EMAIL not in all_values(collector.spans) and collector.clients() == []
