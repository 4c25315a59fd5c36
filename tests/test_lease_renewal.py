"""A stream keeps its budget lease while it runs: the lease (route deadline + margin)
bounds a JSON request, but a stream may run far longer, so the admission stage renews
it every half lease until the request finishes; nothing renews it afterwards.

Through the live gateway (official OpenAI SDK, slow fake stream) on the in-process
store and on Redis, then the renewal task itself.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from decimal import Decimal

import httpx
import openai
import pytest
import redis

from billing import admission, money
from billing.limits import BudgetSlot, SlotUsage, get_limit_store
from billing.models import Budget, UsageRecord, VirtualKey
from routing import stages
from routing.stages.admission import Admission, keep_alive
from tests.conftest import wait_for
from tests.limits_helpers import REDIS_UP, REDIS_URL

MESSAGES = [{"role": "user", "content": "one two three four"}]
WORDS = " ".join(f"w{i}" for i in range(14))  # 14 content chunks
TIMEOUT_S = Decimal("1.0")  # the route's deadline: bounds the first chunk, not the stream
MARGIN_S = 0.5  # so the lease is 1.5 s and a 0.25 s/chunk stream (~4 s) outlives it


class Watched(Admission):
    """The real admission stage, remembering each admitted request's admission (and
    so its renewal task) for the test to inspect."""

    def __init__(self) -> None:
        self.seen: list[admission.Admission] = []

    async def on_request(self, call) -> None:
        await super().on_request(call)
        self.seen.append(call.admission)


@pytest.fixture(params=["memory", "redis"])
def store(request, settings):
    """The process-wide limit store the live gateway uses: in-process, or Redis."""
    from billing.limits import reset_limit_store_for_tests

    if request.param == "redis":
        if not REDIS_UP:
            pytest.skip(f"Redis unreachable at {REDIS_URL}")
        redis.Redis.from_url(REDIS_URL).flushdb()
    settings.REDIS_URL = REDIS_URL if request.param == "redis" else ""
    reset_limit_store_for_tests()
    yield request.param
    reset_limit_store_for_tests()
    if request.param == "redis":
        redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture
def slow_stream(fake_openai, build, settings, store):
    """A key whose budget fits exactly one reservation (max_tokens=1000 at $1000/M
    reserves ~$1.00 of $1.50), a route with a 1 s deadline, a 0.5 s lease margin."""
    settings.GATEWAY_LEASE_MARGIN_S = MARGIN_S
    fake_openai.reply_text = WORDS
    fake_openai.chunk_delay = 0.25
    provider = build.provider(fake_openai, name="p")
    model = build.model(provider, input_price="1000", output_price="1000")
    route = build.route("chat-default", model, timeout_s=TIMEOUT_S)
    secret = build.key("k")
    Budget.objects.create(scope="key", key=VirtualKey.objects.get(name="k"), amount_usd=Decimal("1.50"), period="month")
    watched = Watched()
    with stages.installed([watched]):
        yield secret, watched, route


def _ask(client: openai.OpenAI) -> str:
    """One JSON request of the same size: 'ok', or the error code of a 429."""
    try:
        client.chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=1000)
        return "ok"
    except openai.RateLimitError as exc:
        return exc.response.json()["error"]["code"]


@pytest.mark.django_db(transaction=True)
def test_a_stream_outliving_its_lease_keeps_the_budget_reserved(slow_stream, openai_client, fake_openai):
    secret, watched, route = slow_stream
    assert money.lease_seconds(route.timeout_s) == 1.5  # what the stream must outlive
    client = openai_client(secret)
    chunks: list[str] = []
    finished = threading.Event()

    def consume() -> None:
        stream = client.chat.completions.create(model="chat-default", messages=MESSAGES, max_tokens=1000,
                                                stream=True, stream_options={"include_usage": True})
        for chunk in stream:
            chunks.extend(c.delta.content or "" for c in chunk.choices)
        finished.set()

    started = time.monotonic()
    reader = threading.Thread(target=consume)
    reader.start()
    time.sleep(2.5)  # a full lease (1.5 s) and more has passed: only renewals keep it
    assert not finished.is_set(), "the stream must still be running for the test to mean anything"
    assert _ask(client) == "key_budget_exceeded"  # the money is still reserved for the stream
    reader.join(timeout=20)
    assert finished.is_set() and "".join(chunks).split() == WORDS.split()
    assert time.monotonic() - started > 3  # it outlived its first lease twice over
    [stream_adm] = watched.seen  # the refused request was not admitted
    assert wait_for(lambda: stream_adm.renewal.done())  # the request ended: so did its renewals,
    assert stream_adm.renewal.cancelled()  # stopped by on_finish, not left to find the lease gone
    assert wait_for(lambda: UsageRecord.objects.filter(stream=True, status="success").count() == 1)
    assert _ask(client) == "ok"  # after it ended, the budget is free again (less what it spent)
    [_, json_adm] = watched.seen
    assert json_adm.lease is not None and json_adm.renewal is None  # a JSON request gets no renewal task


@pytest.mark.django_db(transaction=True)
def test_a_stream_the_client_abandons_stops_renewing_and_frees_the_budget(slow_stream, gateway, openai_client):
    secret, watched, _ = slow_stream
    body = {"model": "chat-default", "messages": MESSAGES, "max_tokens": 1000, "stream": True}
    with httpx.Client(base_url=gateway, timeout=30) as http:
        with http.stream("POST", "/v1/chat/completions", json=body,
                         headers={"Authorization": f"Bearer {secret}"}) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            for _ in range(4):
                next(lines)
            time.sleep(1.0)  # renewed at least once while the client reads
    # the client hung up mid-stream: the request settles in the background
    [adm] = watched.seen
    assert adm.renewal is not None and wait_for(lambda: adm.renewal.done()) and adm.renewal.cancelled()
    assert wait_for(lambda: UsageRecord.objects.filter(status="client_closed").count() == 1)
    assert _ask(openai_client(secret)) == "ok"


# --- the renewal task itself ----------------------------------------------------------
@pytest.mark.django_db
async def test_a_renewal_task_renews_until_the_lease_is_gone(settings):
    settings.REDIS_URL = ""
    s = BudgetSlot(key="budget:renewal", limit=100, blocking=True, ttl_s=3600)
    limits = get_limit_store()
    await limits.reserve([s], 0)  # the slot exists (seeded or not, reservations count)
    held = await limits.reserve([s], 60, lease_s=0.2)
    adm = admission.Admission(slots=[s], reserved=60, lease=held.lease)
    task = asyncio.get_running_loop().create_task(keep_alive(weakref.ref(adm), 0.2))
    await asyncio.sleep(0.5)  # 2.5 leases
    assert (await limits.usage([s]))[s.key] == SlotUsage(0, 60)  # still held: renewed
    await limits.settle([s], held.lease, 0)  # released elsewhere (e.g. the slot's settlement)
    await asyncio.wait_for(task, 1)  # the next renewal finds it gone and stops
    assert await limits.renew([s], held.lease, 10) is False  # and it stays gone


@pytest.mark.django_db
async def test_a_renewal_task_stops_when_its_request_is_dropped_unsettled(settings):
    """A request object dropped without on_finish (a path that never settles) must not
    keep its lease, and so the budget, alive forever: the task holds it only weakly."""
    settings.REDIS_URL = ""
    s = BudgetSlot(key="budget:dropped", limit=100, blocking=True, ttl_s=3600)
    limits = get_limit_store()
    held = await limits.reserve([s], 60, lease_s=0.2)
    adm = admission.Admission(slots=[s], reserved=60, lease=held.lease)
    task = asyncio.get_running_loop().create_task(keep_alive(weakref.ref(adm), 0.2))
    await asyncio.sleep(0.25)
    del adm
    gc.collect()
    await asyncio.wait_for(task, 1)
    await asyncio.sleep(0.25)  # the lease then expires by itself
    assert (await limits.usage([s]))[s.key] == SlotUsage(0, 0)


@pytest.mark.django_db
async def test_renew_without_a_lease_is_a_no_op(settings):
    settings.REDIS_URL = ""
    assert await admission.renew(admission.Admission(), 10) is True
    s = BudgetSlot(key="budget:settled", limit=100, blocking=True, ttl_s=3600)
    held = await get_limit_store().reserve([s], 5, lease_s=10)
    adm = admission.Admission(slots=[s], reserved=5, lease=held.lease)
    assert await admission.renew(adm, 10) is True
    await get_limit_store().settle([s], held.lease, 0)
    assert await admission.renew(adm, 10) is False  # held once, gone now


def test_the_lease_margin_is_a_setting(settings):
    settings.GATEWAY_LEASE_MARGIN_S = 2.5
    assert money.lease_seconds(Decimal("1.0")) == 3.5
    assert money.lease_seconds(None) == money.DEFAULT_LEASE_S
