"""The playground's websocket consumer (Channels' WebsocketCommunicator): streaming
through the real pipeline to a fake provider, Stop, errors, security, budgets."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from billing.models import Budget, UsageRecord, VirtualKey
from streaming.routing import websocket_urlpatterns
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
Status = UsageRecord.Status


def staff(name="tester", **kw):
    from gateway_admin.roles import PLAYGROUND_USERS, grant

    user = get_user_model().objects.create_user(name, password="pw-" + name, is_staff=True, **kw)
    grant(user, PLAYGROUND_USERS)
    return user


async def connect(user):
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/playground/")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    return comm


async def receive(comm, timeout=10):
    return orjson.loads(await comm.receive_from(timeout=timeout))


async def until(comm, kind, stream_id=None, timeout=10):
    """Frames up to and including the first of `kind` (for `stream_id`)."""
    frames = []
    while True:
        frame = await receive(comm, timeout)
        frames.append(frame)
        if frame["type"] == kind and (stream_id is None or frame.get("id") == stream_id):
            return frames


def run(coro):
    """asyncio.run, closing this loop's upstream HTTP session at the end."""
    from providers.http import close_session

    async def wrapped():
        try:
            return await coro
        finally:
            await close_session()

    return asyncio.run(wrapped())


def send_msg(text="Hello", route="chat-default", **kw):
    return {"type": "send", "id": kw.pop("id", "a"), "route": route,
            "messages": [{"role": "user", "content": text}], **kw}


@pytest.fixture
def route(fake_openai, build):
    build.openai_route(fake_openai)
    return fake_openai


def test_an_answer_streams_token_by_token_with_its_figures(route):
    route.reply("one two three four five")
    user = staff()

    async def scenario():
        comm = await connect(user)
        hello = await receive(comm)
        assert hello["type"] == "routes" and [r["name"] for r in hello["routes"]] == ["chat-default"]
        await comm.send_to(text_data=orjson.dumps(send_msg(system="Be brief.", temperature=0.2,
                                                           max_tokens=50)).decode())
        frames = await until(comm, "done")
        await comm.disconnect()
        return frames

    frames = run(scenario())
    deltas = [f["text"] for f in frames if f["type"] == "delta"]
    assert len(deltas) >= 5 and "".join(deltas) == "one two three four five"
    figures = frames[-1]["figures"]
    assert figures["model"] and figures["provider"] and figures["attempts"] == 1
    assert figures["completion_tokens"] == 5 and figures["ttft_ms"] is not None and Decimal(figures["cost_usd"]) > 0
    sent = route.last_request.body
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."} and sent["temperature"] == 0.2
    record = wait_for(lambda: UsageRecord.objects.first())
    key = VirtualKey.objects.get(playground_user=user)
    assert record.key_id == key.id and record.status == Status.SUCCESS and record.stream
    assert record.request_id == figures["request_id"]


def test_stop_cancels_the_upstream_request_and_records_client_closed(route):
    route.chunk_delay = 0.2
    route.reply(" ".join(f"w{i}" for i in range(40)))
    user = staff()

    async def scenario():
        comm = await connect(user)
        await receive(comm)
        await comm.send_to(text_data=orjson.dumps(send_msg()).decode())
        await until(comm, "delta")
        await comm.send_to(text_data=orjson.dumps({"type": "stop", "id": "a"}).decode())
        frames = await until(comm, "stopped")
        # the settlement runs in the background on this loop (the server's, in production)
        for _ in range(250):
            if await sync_to_async(UsageRecord.objects.filter(status=Status.CLIENT_CLOSED).exists)():
                break
            await asyncio.sleep(0.02)
        await comm.disconnect()
        return frames

    try:
        frames = run(scenario())
    finally:
        route.chunk_delay = 0
    assert frames[-1]["type"] == "stopped"
    record = wait_for(lambda: UsageRecord.objects.filter(status=Status.CLIENT_CLOSED).first())
    assert record is not None
    assert wait_for(lambda: route._aborted_streams >= 1, timeout=10)  # the provider saw the disconnect


def test_compare_mode_streams_two_routes_in_parallel(route, build, fake_openai_b):
    build.openai_route(fake_openai_b, name="chat-b", provider_name="p-b")
    route.reply("from a")
    fake_openai_b.reply("from b")
    user = staff()

    async def scenario():
        comm = await connect(user)
        await receive(comm)
        await comm.send_to(text_data=orjson.dumps(send_msg(id="a")).decode())
        await comm.send_to(text_data=orjson.dumps(send_msg(id="b", route="chat-b")).decode())
        frames = []
        done = set()
        while len(done) < 2:
            frame = await receive(comm)
            frames.append(frame)
            if frame["type"] == "done":
                done.add(frame["id"])
        await comm.disconnect()
        return frames

    frames = run(scenario())
    text = {i: "".join(f["text"] for f in frames if f["type"] == "delta" and f["id"] == i) for i in "ab"}
    assert text == {"a": "from a", "b": "from b"}


@pytest.mark.parametrize(("raw", "code"), [
    (b"\x00\x01", "binary_frame"),
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_message"),
    ('{"type": "dance"}', "unknown_type"),
    ('{"type": "send", "id": "a", "route": "chat-default", "messages": []}', "invalid_request"),
    ('{"type": "send", "id": "a", "route": "chat-default", "messages": [{"role": "user", "content": "x"}], "evil": 1}',
     "invalid_request"),
    ('{"type": "send", "id": "a", "route": "chat-default", "messages": [{"role": "wizard", "content": "x"}]}', None),
    ('{"type": "send", "id": "a", "route": "nope", "messages": [{"role": "user", "content": "x"}]}',
     "model_not_found"),
    ('{"type": "send", "id": "' + "x" * 100 + '", "route": "chat-default", "messages": []}', "invalid_id"),
    ('{"type": "send", "id": "a", "route": "chat-default", "messages": [{"role": "user", "content": "'
     + "x" * 600_000 + '"}]}', "message_too_large"),
])
def test_bad_frames_get_an_error_frame_and_the_socket_stays_usable(route, raw, code):
    route.reply("still here")
    user = staff()

    async def scenario():
        comm = await connect(user)
        await receive(comm)
        if isinstance(raw, bytes):
            await comm.send_to(bytes_data=raw)
        else:
            await comm.send_to(text_data=raw)
        error = await receive(comm)
        await comm.send_to(text_data=orjson.dumps(send_msg(id="ok")).decode())
        frames = await until(comm, "done", "ok")
        await comm.disconnect()
        return error, frames

    error, frames = run(scenario())
    assert error["type"] == "error" and error["message"]
    if code:
        assert error["code"] == code
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == "still here"


def test_anonymous_and_non_staff_users_are_refused():
    async def refused(user):
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/playground/")
        comm.scope["user"] = user
        await comm.connect()
        out = await comm.receive_output(timeout=5)
        await comm.disconnect()
        return out

    assert run(refused(AnonymousUser()))["code"] == 4403
    plain = get_user_model().objects.create_user("plain", password="pw")
    assert run(refused(plain))["code"] == 4403


def test_an_exhausted_budget_is_shown_as_a_message(route):
    user = staff()
    from billing.playground import playground_key
    from billing.budgets import set_key_budget

    key = playground_key(user)
    set_key_budget(key, Decimal("0"), Budget.Period.MONTH)

    async def scenario():
        comm = await connect(user)
        await receive(comm)
        await comm.send_to(text_data=orjson.dumps(send_msg()).decode())
        frames = await until(comm, "error")
        await comm.disconnect()
        return frames

    error = run(scenario())[-1]
    assert error["id"] == "a" and error["status"] in (402, 429) and "budget" in error["message"].lower()
    assert route.requests == []


def test_the_playground_key_is_created_once_and_shown_in_the_admin(route, client):
    user = staff("admin-ish", is_superuser=True)

    async def twice():
        for _ in range(2):
            comm = await connect(user)
            await receive(comm)
            await comm.disconnect()

    run(twice())
    key = VirtualKey.objects.get(playground_user=user)
    assert key.name == "playground:admin-ish" and VirtualKey.objects.count() == 1
    client.force_login(user)
    assert "playground:admin-ish" in client.get("/admin/billing/virtualkey/").content.decode()


def test_the_page_needs_a_staff_login(client):
    assert client.get("/playground/").status_code == 302
    client.force_login(staff())
    page = client.get("/playground/")
    assert page.status_code == 200 and b"/static/playground/playground.js" in page.content


def test_the_admin_streams_a_saved_route_as_the_staff_key(route):
    route.reply("saved answer")
    user = staff("editor", is_superuser=True)

    async def scenario():
        comm = await connect(user)
        await receive(comm)
        await comm.send_to(text_data=orjson.dumps(send_msg(id="t", as_admin=True)).decode())
        frames = await until(comm, "done", "t")
        await comm.disconnect()
        return frames

    frames = run(scenario())
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == "saved answer"
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.key_prefix == "admin" and record.key_id is None


def test_the_admin_streams_an_unsaved_draft_of_a_route(route, build, fake_openai_b):
    from providers.models import Model

    saved = build.openai_route(fake_openai_b, name="chat-b", provider_name="p-b")[0]
    other = Model.objects.get(provider__name="p-b")
    fake_openai_b.reply("from the draft's target")
    user = staff("editor", is_superuser=True)
    draft = {"id": None, "fields": {"name": "brand-new", "strategy": "fallback", "timeout_s": "30"},
             "targets": [{"model": other.pk, "order": 0, "weight": 1, "enabled": True}]}

    async def scenario():
        comm = await connect(user)
        await receive(comm)
        await comm.send_to(text_data=orjson.dumps(send_msg(id="t", draft=draft)).decode())
        frames = await until(comm, "done", "t")
        bad = {**draft, "targets": []}
        await comm.send_to(text_data=orjson.dumps(send_msg(id="u", draft=bad)).decode())
        error = (await until(comm, "error", "u"))[-1]
        await comm.disconnect()
        return frames, error

    frames, error = run(scenario())
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == "from the draft's target"
    assert frames[-1]["figures"]["route"] == "brand-new"
    assert "target" in error["message"]
    record = wait_for(lambda: UsageRecord.objects.first())
    assert record.route_name == "brand-new" and record.route_id is None
    assert not Route_exists("brand-new") and saved.name == "chat-b"


def Route_exists(name):
    from routing.models import Route

    return Route.objects.filter(name=name).exists()


def test_admin_tests_need_route_permission(route):
    user = staff("viewer")

    async def scenario():
        comm = await connect(user)
        await receive(comm)
        await comm.send_to(text_data=orjson.dumps(send_msg(id="t", as_admin=True)).decode())
        frame = await receive(comm)
        await comm.disconnect()
        return frame

    assert run(scenario())["code"] == "permission_denied"


def test_a_repeated_prompt_on_a_cached_route_is_answered_from_the_cache(fake_openai, build):
    build.openai_route(fake_openai, cache_mode="exact")
    fake_openai.reply("cached words here", prompt_tokens=10, completion_tokens=3)
    user = staff()

    async def scenario():
        comm = await connect(user)
        await receive(comm)
        answers = []
        for i in range(3):
            await comm.send_to(text_data=orjson.dumps(send_msg("Same question", id=f"q{i}", temperature=0)).decode())
            answers.append((await until(comm, "done"))[-1]["figures"])
            await asyncio.sleep(0.2)  # the first answer is stored just after it is recorded
        await comm.send_to(text_data=orjson.dumps(send_msg("Same question", id="hot", temperature=0.7)).decode())
        answers.append((await until(comm, "done"))[-1]["figures"])
        await comm.disconnect()
        return answers

    first, second, third, sampled = run(scenario())
    assert first["cache"] == "miss"
    assert second["cache"].startswith("hit (") and "saved $" in second["cache"] and Decimal(second["cost_usd"]) == 0
    assert third["cache"].startswith("hit (")
    assert sampled["cache"] == "bypass (temperature)"
    assert fake_openai.request_count == 2
