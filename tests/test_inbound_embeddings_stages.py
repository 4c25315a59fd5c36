"""The stages an embeddings request passes: admission (rate limits and the budget
reservation, estimated from the inputs' tokens) and the input guardrails (an embedded
text leaves for a provider like a prompt); what the fake provider received proves it."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import openai
import pytest

from billing.models import Budget, UsageRecord, VirtualKey
from tests.conftest import wait_for
from tests.test_guardrails_gateway import EMAIL, add

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def route(fake_openai, build, monkeypatch):
    monkeypatch.setattr(fake_openai, "embedding_size", 4)
    model = build.model(build.provider(fake_openai), "text-embedding-3-small", input_price="1000", output_price="0",
                        capabilities=["embeddings"])
    return build.route("embed", model)


def post(gateway, secret, body):
    return httpx.post(f"{gateway}/v1/embeddings", json={"model": "embed", **body},
                      headers={"Authorization": f"Bearer {secret}"})


# --- admission ------------------------------------------------------------------------------
def test_the_tpm_limit_counts_the_inputs_tokens_before_anything_is_sent(route, fake_openai, build, gateway):
    secret = build.key("k")
    VirtualKey.objects.filter(name="k").update(tpm_limit=100)
    # ~125 tokens of input (500 characters at 4 a token): refused at admission.
    refused = post(gateway, secret, {"input": ["word " * 100]})
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert fake_openai.request_count == 0
    # Token ids count one each, exactly: 60 fit, then 60 more do not.
    assert post(gateway, secret, {"input": [list(range(60))]}).status_code == 200
    assert post(gateway, secret, {"input": [list(range(60))]}).status_code == 429
    assert fake_openai.request_count == 1


def test_a_budget_refuses_what_it_cannot_pay_and_is_charged_the_actual_cost(route, fake_openai, build, gateway):
    secret = build.key("k")
    key = VirtualKey.objects.get(name="k")
    # $1000 per million tokens: 10 tokens cost $0.01.
    Budget.objects.create(scope="key", key=key, amount_usd=Decimal("0.015"), period="month")
    assert post(gateway, secret, {"input": [list(range(10))]}).status_code == 200
    record = wait_for(lambda: UsageRecord.objects.first())
    assert (record.prompt_tokens, record.cost_usd) == (10, Decimal("0.01"))
    over = post(gateway, secret, {"input": [list(range(10))]})
    assert over.status_code == 429 and over.json()["error"]["code"] == "key_budget_exceeded"
    assert fake_openai.request_count == 1 and UsageRecord.objects.count() == 1


# --- guardrails -----------------------------------------------------------------------------
def test_pii_is_redacted_from_embedded_texts(route, fake_openai, build, openai_client):
    add("pii-default", "pii")
    raw = openai_client(build.key()).embeddings.with_raw_response.create(
        model="embed", input=["nothing to hide", f"write to {EMAIL} today"])
    assert len(raw.parse().data) == 2
    sent = fake_openai.last_request.body["input"]
    assert sent == ["nothing to hide", "write to [EMAIL_1] today"]
    assert EMAIL not in fake_openai.last_request.raw_body.decode()
    assert raw.headers["x-gateway-guardrails"] == "pii-default=redacted"
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.status == "success" and "pii-default" in record.annotations["guardrails"]["input"]


def test_a_blocking_guardrail_refuses_the_input_and_records_it(route, fake_openai, build, openai_client):
    add("banned-words", "keywords", action="block", words=["project-nightingale"])
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client(build.key()).embeddings.create(model="embed", input=["fine", "about project-nightingale"])
    assert exc.value.response.json()["error"]["code"] == "content_policy_violation"
    assert fake_openai.request_count == 0
    record = wait_for(lambda: UsageRecord.objects.first())
    assert (record.status, record.endpoint, record.cost_usd) == ("blocked", "embeddings", Decimal(0))


def test_token_ids_are_refused_when_an_input_guardrail_applies(route, fake_openai, build, gateway):
    add("pii-default", "pii")
    refused = post(gateway, build.key(), {"input": [[101, 2023, 102]]})
    error = refused.json()["error"]
    assert refused.status_code == 400 and (error["code"], error["param"]) == ("input_not_checkable", "input")
    assert "pii-default" in error["message"]
    assert fake_openai.request_count == 0
    time.sleep(0.05)
    assert UsageRecord.objects.count() == 0


def test_token_ids_pass_where_no_guardrail_applies(route, fake_openai, build, gateway):
    add("pii-elsewhere", "pii", routes=[build.route("other")])
    assert post(gateway, build.key(), {"input": [[101, 2023, 102]]}).status_code == 200
    assert fake_openai.last_request.body["input"] == [[101, 2023, 102]]


def test_output_guardrails_do_not_count_a_vector_as_checked(route, build, openai_client):
    from guardrails.metrics import DECISIONS

    add("pii-out", "pii", stage="output")
    passed = DECISIONS.labels("pii-out", "output", "redact", "passed")
    before = passed._value.get()
    openai_client(build.key()).embeddings.create(model="embed", input="hello")
    assert wait_for(lambda: UsageRecord.objects.exists())
    time.sleep(0.05)
    assert passed._value.get() == before
