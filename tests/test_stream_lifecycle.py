"""A stream the transport opened but never read (the client left between the answer's
start and its first byte) is settled like any other: one client_closed record, the
budget lease released, the upstream connection closed."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from billing.keys import issue_key
from billing.models import UsageRecord
from gateway_project import background
from providers.http import close_session
from routing import pipeline

pytestmark = pytest.mark.django_db(transaction=True)


def body(text: str) -> bytes:
    return orjson.dumps({"model": "chat-default", "stream": True, "max_tokens": 1000,
                         "messages": [{"role": "user", "content": text}]})


async def open_and_drop(secret: str) -> pipeline.Call:
    call = await pipeline.prepare(f"Bearer {secret}", body("hello"))
    stream = await pipeline.open_stream(call)
    await stream.aclose()  # nothing read
    await background.wait(timeout_s=5)
    await close_session()  # this loop's upstream session (async_to_sync: a short-lived loop)
    return call


def test_a_stream_closed_before_its_first_chunk_is_settled_and_recorded(fake_openai, build):
    from asgiref.sync import async_to_sync

    build.openai_route(fake_openai)
    secret = issue_key("k", budget_usd=Decimal("0.001")).secret  # room for one reservation at a time
    first = async_to_sync(open_and_drop)(secret)
    record = UsageRecord.objects.get()
    assert (record.request_id, record.status, record.http_status) == (first.request_id, "client_closed", 499)
    assert fake_openai.request_count == 1
    # the lease was released: the next full reservation fits the budget
    second = async_to_sync(open_and_drop)(secret)
    assert UsageRecord.objects.filter(request_id=second.request_id).exists()
