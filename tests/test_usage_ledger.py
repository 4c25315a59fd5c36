"""Usage records: one per request that reached a provider, whatever happened."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest

from billing.models import UsageRecord
from billing.usage import UsageEntry, record_usage
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_client_disconnect_mid_stream_is_recorded(fake_openai, build, gateway):
    fake_openai.reply_text = " ".join(f"word{i}" for i in range(200))
    fake_openai.chunk_delay = 0.02
    build.openai_route(fake_openai)
    key = build.key()
    body = {"model": "chat-default", "stream": True, "messages": [{"role": "user", "content": "long story"}]}
    with httpx.Client(base_url=gateway, timeout=10) as http:
        with http.stream("POST", "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
            assert resp.status_code == 200
            lines = resp.iter_lines()
            received = [next(lines) for _ in range(10)]
            assert any(line.startswith("data: ") for line in received)
        # leaving the block closes the connection mid-stream

    record = wait_for(lambda: UsageRecord.objects.first(), timeout=10)
    assert record is not None, "a disconnected stream must still be recorded"
    assert record.status == "client_closed" and record.stream
    assert 0 < record.completion_tokens < 200 and record.usage_estimated
    assert record.prompt_tokens > 0
    time.sleep(0.3)
    assert UsageRecord.objects.count() == 1


def test_requests_refused_before_any_provider_call_record_nothing(fake_openai, build, gateway):
    build.openai_route(fake_openai)
    key = build.key()
    with httpx.Client(base_url=gateway) as http:
        http.post("/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]},
                  headers={"Authorization": f"Bearer {key}"})
        http.post("/v1/chat/completions", json={"model": "chat-default"}, headers={"Authorization": f"Bearer {key}"})
    assert UsageRecord.objects.count() == 0


def test_record_usage_is_idempotent_by_request_id():
    entry = UsageEntry(request_id="r-1", route_id=None, route_name="x", status="success", http_status=200,
                       prompt_tokens=3, completion_tokens=4)
    record_usage(entry)
    entry.completion_tokens = 999
    record_usage(entry)
    record = UsageRecord.objects.get()
    assert record.completion_tokens == 4


def test_prices_are_captured_at_request_time(fake_openai, build, openai_client):
    _, model = build.openai_route(fake_openai)
    openai_client(build.key()).chat.completions.create(model="chat-default", messages=[{"role": "user", "content": "x"}])
    before = UsageRecord.objects.get()
    model.input_price_per_mtok = 100
    model.save()
    before.refresh_from_db()
    assert str(before.input_price_per_mtok) == "0.150000"


def test_ledger_after_response_mode_still_records_exactly_once(fake_openai, build, openai_client, settings):
    settings.GATEWAY_LEDGER_AFTER_RESPONSE = True
    build.openai_route(fake_openai)
    client = openai_client(build.key())
    raw = client.chat.completions.with_raw_response.create(model="chat-default", messages=[{"role": "user", "content": "x"}])
    assert raw.headers["x-gateway-cost-usd"] != "0"
    record = wait_for(lambda: UsageRecord.objects.filter(request_id=raw.headers["x-request-id"]).first())
    assert record is not None and record.status == "success" and record.cost_usd == Decimal(raw.headers["x-gateway-cost-usd"]).quantize(Decimal("1e-10"))
    time.sleep(0.2)
    assert UsageRecord.objects.count() == 1
