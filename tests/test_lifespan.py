"""ASGI lifespan (uvicorn): startup completes, and shutdown waits for the usage rows
still queued before it closes the upstream session."""

from __future__ import annotations

import asyncio

import pytest

from billing.models import UsageRecord
from billing.usage import UsageEntry, write_usage
from gateway_project.asgi import application
from providers import http

pytestmark = pytest.mark.django_db(transaction=True)


async def test_shutdown_drains_queued_usage_rows_and_closes_the_session():
    inbox: asyncio.Queue = asyncio.Queue()
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    server = asyncio.ensure_future(application({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    await asyncio.sleep(0.05)
    assert sent == [{"type": "lifespan.startup.complete"}]
    http.get_session()  # the upstream session of this loop
    writes = [
        asyncio.ensure_future(write_usage(UsageEntry(request_id=f"life-{i}", route_id=None, route_name="r",
                                                     status="success", http_status=200)))
        for i in range(20)
    ]
    await asyncio.sleep(0)  # queued, not yet written
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(server, 10)
    assert sent[-1] == {"type": "lifespan.shutdown.complete"}
    assert all(w.done() for w in writes)
    assert not http.has_session()
    assert await UsageRecord.objects.filter(request_id__startswith="life-").acount() == 20
