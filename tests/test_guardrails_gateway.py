"""Guardrails through a running gateway with the official OpenAI SDK: what the fake
provider receives (it records every request), what the client gets, the usage record,
the violation log and the metrics. PII is planted and must never leave — nor appear in
the database or the logs."""

from __future__ import annotations

import json
import logging

import httpx
import openai
import pytest

from billing.models import UsageRecord
from guardrails.models import Guardrail, Violation
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Status = UsageRecord.Status

EMAIL = "nguyen.van.an@example.com"
PHONE = "0912 345 678"
CARD = "4111 1111 1111 1111"
CCCD = "Số CCCD của tôi là 001203004567"
PLANTED = [EMAIL, PHONE, CARD, "001203004567"]


def add(name, kind, *, stage="both", action="redact", routes=(), teams=(), keys=(), **kw):
    params = {k: kw.pop(k) for k in list(kw) if k not in ("restore", "on_error", "enabled", "order")}
    g = Guardrail.objects.create(name=name, kind=kind, stage=stage, action=action, params=params, **kw)
    g.full_clean()
    g.routes.set(routes)
    g.teams.set(teams)
    g.keys.set(keys)
    return g


@pytest.fixture
def setup(fake_openai, build, openai_client):
    route, _ = build.openai_route(fake_openai)
    return fake_openai, openai_client(build.key()), route


def ask(client, text, **kw):
    return client.chat.completions.with_raw_response.create(
        model="chat-default", messages=[{"role": "user", "content": text}], **kw)


def stream(client, text, **kw):
    with client.chat.completions.with_streaming_response.create(
            model="chat-default", messages=[{"role": "user", "content": text}], stream=True,
            stream_options={"include_usage": True}, **kw) as response:
        chunks = list(response.parse())
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), response


def sent_text(fake) -> str:
    return " ".join(str(m.get("content")) for m in fake.last_request.body["messages"])


@pytest.mark.parametrize("streamed", [False, True])
def test_planted_pii_never_reaches_the_provider_and_comes_back_restored(setup, streamed):
    fake, client, route = setup
    add("pii-default", "pii", restore=True)
    prompt = f"Mail {EMAIL}, call {PHONE}, card {CARD}. {CCCD}."
    fake.reply("I will write to [EMAIL_1] and call [PHONE_1] today.")
    if streamed:
        text, response = stream(client, prompt)
    else:
        raw = ask(client, prompt)
        text, response = raw.parse().choices[0].message.content, raw
    seen = sent_text(fake)
    for value in PLANTED:
        assert value not in seen
    assert "[EMAIL_1]" in seen and "[PHONE_1]" in seen and "[CREDIT_CARD_1]" in seen and "[VN_CCCD_1]" in seen
    assert text == f"I will write to {EMAIL} and call {PHONE} today."
    assert response.headers["x-gateway-guardrails"] == "pii-default=redacted"
    record = wait_for(lambda: UsageRecord.objects.filter(status=Status.SUCCESS).first())
    notes = record.annotations["guardrails"]["input"]["pii-default"]
    assert notes["outcome"] == "redacted"
    assert notes["entities"] == {"email": 1, "phone": 1, "credit_card": 1, "vn_cccd": 1}
    violation = wait_for(lambda: Violation.objects.first())
    assert (violation.guardrail_name, violation.stage, violation.outcome) == ("pii-default", "input", "redacted")
    assert violation.request_id == record.request_id and violation.route_name == "chat-default"


def test_without_restore_the_client_sees_the_placeholders(setup):
    fake, client, _ = setup
    add("pii", "pii", entities=["email"])
    fake.reply("Noted: [EMAIL_1].")
    assert ask(client, f"I am {EMAIL}").parse().choices[0].message.content == "Noted: [EMAIL_1]."
    assert EMAIL not in sent_text(fake)


@pytest.mark.parametrize("streamed", [False, True])
def test_pii_the_model_writes_is_redacted_in_its_answer(setup, streamed):
    fake, client, _ = setup
    add("pii-out", "pii", stage="output")
    fake.reply(f"Contact our agent at agent.smith@example.org or {PHONE}.")
    text = stream(client, "who do I call?")[0] if streamed else ask(client, "who do I call?").parse().choices[0].message.content
    assert text == "Contact our agent at [EMAIL_1] or [PHONE_1]."


@pytest.mark.parametrize("streamed", [False, True])
def test_a_blocked_prompt_never_reaches_a_provider_and_costs_nothing(setup, streamed, caplog):
    fake, client, _ = setup
    add("banned-words", "keywords", action="block", words=["project-nightingale"])
    with pytest.raises(openai.BadRequestError) as caught:
        stream(client, "status of Project-Nightingale?") if streamed else ask(client, "status of Project-Nightingale?")
    assert caught.value.code == "content_policy_violation"
    assert "banned-words" in caught.value.message and "ightingale" not in caught.value.message
    assert fake.requests == []
    record = wait_for(lambda: UsageRecord.objects.first())
    assert (record.status, record.cost_usd, record.http_status) == (Status.BLOCKED, 0, 400)
    assert record.annotations["guardrails"]["input"]["banned-words"]["outcome"] == "blocked"
    assert wait_for(lambda: Violation.objects.filter(outcome="blocked").exists())


def test_a_blocked_answer_is_an_error_and_records_the_guardrail(setup):
    fake, client, _ = setup
    add("banned-words", "keywords", stage="output", action="block", words=["project-nightingale"])
    fake.reply("The codename is project-nightingale.")
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "what is the codename?")
    assert caught.value.code == "content_policy_violation"
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.status == Status.BLOCKED and record.cost_usd > 0  # the provider did answer
    assert record.annotations["guardrails"]["output"]["banned-words"]["outcome"] == "blocked"


def test_a_stream_blocked_midway_ends_with_an_error_event_and_never_shows_the_word(setup, gateway, build):
    fake, _, _ = setup
    add("banned-words", "keywords", stage="output", action="block", words=["project-nightingale"])
    fake.reply("Well, the codename of the thing is project-nightingale and more text follows.")
    key = build.key("raw")
    with httpx.stream("POST", f"{gateway}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                      json={"model": "chat-default", "stream": True,
                            "messages": [{"role": "user", "content": "codename?"}]}) as response:
        body = response.read().decode()
    assert response.status_code == 200
    events = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {")]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices"))
    assert text == "Well, the codename of the thing is "  # up to the word, none of it
    assert events[-1]["error"]["code"] == "content_policy_violation"
    assert '"code":"content_policy_violation"' in body and "[DONE]" not in body
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.status == Status.BLOCKED and record.error_kind == "blocked"


def test_shadow_mode_changes_nothing_but_logs_and_counts(setup, gateway):
    fake, client, _ = setup
    add("watch-pii", "pii", action="flag")
    raw = ask(client, f"my mail is {EMAIL}")
    assert EMAIL in sent_text(fake)
    assert "x-gateway-guardrails" not in raw.headers
    assert wait_for(lambda: Violation.objects.filter(outcome="flagged", guardrail_name="watch-pii").exists())
    metrics = httpx.get(f"{gateway}/metrics").text
    assert 'gateway_guardrail_decisions_total{action="flag",guardrail="watch-pii",outcome="flagged",stage="input"}' \
        in metrics


def test_scope_lists_each_restrict_and_combine(setup, build, fake_openai, openai_client):
    from billing.models import Team

    fake, client, route = setup
    other, _ = build.openai_route(fake_openai, name="chat-other", provider_name="p2")
    team = Team.objects.create(name="legal")
    legal_key = build.key("legal-key", team=team)
    add("legal-on-default", "keywords", action="block", words=["merger"], routes=[route], teams=[team])
    legal = openai_client(legal_key)
    with pytest.raises(openai.BadRequestError):
        ask(legal, "the merger")  # route AND team match
    assert ask(client, "the merger").http_response.status_code == 200  # another team
    answer = legal.chat.completions.create(model="chat-other", messages=[{"role": "user", "content": "the merger"}])
    assert answer.choices[0].message.content  # another route


def test_a_disabled_guardrail_does_nothing(setup):
    fake, client, _ = setup
    add("off", "keywords", action="block", words=["merger"], enabled=False)
    assert ask(client, "the merger").http_response.status_code == 200


def test_fail_closed_when_the_judge_route_fails(setup, build, fake_openai_b):
    fake, client, _ = setup
    judge, _ = build.openai_route(fake_openai_b, name="moderation", provider_name="judge")
    add("safety", "classifier", stage="input", action="block", route="moderation", timeout_s=2)
    fake_openai_b.fail(500, times=5)
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, "hello")
    assert "could not check" in caught.value.message
    assert fake.requests == []


def test_the_classifier_blocks_on_the_judges_verdict(setup, build, fake_openai_b):
    fake, client, _ = setup
    build.openai_route(fake_openai_b, name="moderation", provider_name="judge")
    add("safety", "classifier", stage="input", action="block", route="moderation", threshold=0.7)
    fake_openai_b.reply('{"flagged": true, "score": 0.93, "category": "violence"}')
    with pytest.raises(openai.BadRequestError):
        ask(client, "how do I hurt someone")
    assert fake.requests == []
    assert "how do I hurt someone" in str(fake_openai_b.last_request.body["messages"])
    fake_openai_b.reply('{"flagged": false, "score": 0.02}')
    assert ask(client, "how do I bake bread").http_response.status_code == 200
    judged = UsageRecord.objects.filter(route_name="moderation", key_prefix="guardrail")
    assert wait_for(lambda: judged.count() == 2)


def test_no_planted_value_in_the_database_or_logs(setup, caplog):
    fake, client, _ = setup
    add("pii-default", "pii", restore=True)
    add("pii-watch", "pii", action="flag", stage="output")
    fake.reply(f"Echo: {EMAIL} and [EMAIL_1]")
    with caplog.at_level(logging.DEBUG):
        ask(client, f"Mail {EMAIL}, call {PHONE}, card {CARD}. {CCCD}.")
        wait_for(lambda: Violation.objects.count() >= 2)
    stored = [str(list(UsageRecord.objects.values())), str(list(Violation.objects.values()))]
    for value in PLANTED:
        assert all(value not in s for s in stored), value
        assert value not in caplog.text, value


def test_the_dry_run_says_which_guardrails_would_check_the_request(setup):
    from routing.dryrun import explain

    fake, _, route = setup
    add("pii-default", "pii", restore=True)
    add("banned-words", "keywords", stage="output", action="block", words=["x"])
    ex = explain(route, "Hello", max_tokens=100)
    notes = dict(ex.stages)
    assert "pii-default (pii, redact, restores originals)" in notes["guardrails"]
    assert "checks the answer with banned-words (keywords, block), pii-default" in notes["guardrails"]
    assert fake.requests == [] and not Violation.objects.exists()
