"""The roles on the pages outside the admin: the playground (page and websocket) needs
streaming.use_playground (Playground users), the finance reports and their CSV
exports need billing.view_finance_reports (Finance, Auditors); staff status alone
opens neither."""

from __future__ import annotations


import orjson
import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User

from billing.models import VirtualKey
from billing.reports import exports
from streaming.routing import websocket_urlpatterns

from .roles_fixtures import AUD, FIN, KM, NO_ROLE, PLAY, RE, staff

ROLES = (RE, KM, FIN, AUD, PLAY, NO_ROLE)


# --- the finance reports ----------------------------------------------------------------------

REPORT_URLS = ["/reports/", *[f"/reports/csv/{view}/" for view in exports.VIEWS]]


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_the_finance_reports_and_exports_per_role(client, role):
    client.force_login(staff(role))
    allowed = role in (FIN, AUD)
    for url in REPORT_URLS:
        response = client.get(url)
        assert response.status_code == (200 if allowed else 403), url
        if allowed and "/csv/" in url:
            assert response["Content-Type"].startswith("text/csv")
        if not allowed:
            assert "billing.view_finance_reports" in response.content.decode()
    # Read-only even for those who may read them.
    assert client.post("/reports/").status_code in (403, 405)


@pytest.mark.django_db
def test_the_reports_need_a_sign_in_and_staff_status(client):
    response = client.get("/reports/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(staff(FIN, is_staff=False))
    assert client.get("/reports/").status_code == 403
    assert client.get("/reports/csv/spend/").status_code == 403


# --- the playground page ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_the_playground_page_per_role(client, role):
    client.force_login(staff(role))
    response = client.get("/playground/")
    if role == PLAY:
        assert response.status_code == 200 and b"/static/playground/playground.js" in response.content
    else:
        assert response.status_code == 403
        html = response.content.decode()
        assert "streaming.use_playground" in html and "Playground users" in html
        assert "playground.js" not in html


@pytest.mark.django_db
def test_the_playground_page_needs_a_staff_sign_in(client):
    assert client.get("/playground/").status_code == 302
    client.force_login(staff(PLAY, is_staff=False))
    assert client.get("/playground/").status_code == 302  # to the admin's sign-in
    client.force_login(User.objects.create_superuser("root", password=None))
    assert client.get("/playground/").status_code == 200


# --- the playground websocket -------------------------------------------------------------------


from tests.test_playground_consumer import run  # noqa: E402  (asyncio.run closing the loop's HTTP session)


async def open_socket(user):
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/playground/")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    return comm


async def first_frame(user) -> dict:
    """The socket's first output: a JSON frame, or the close {"type": "websocket.close", "code": ...}."""
    comm = await open_socket(user)
    out = await comm.receive_output(timeout=5)
    await comm.disconnect()
    if out["type"] == "websocket.send":
        return orjson.loads(out["text"])
    return out


async def frames_until(comm, kind: str, timeout: float = 10) -> list[dict]:
    frames = []
    while True:
        frame = orjson.loads(await comm.receive_from(timeout=timeout))
        frames.append(frame)
        if frame["type"] == kind:
            return frames


def prompt(**extra) -> str:
    return orjson.dumps({"type": "send", "id": "a", "route": "chat-default",
                         "messages": [{"role": "user", "content": "Hello"}], **extra}).decode()


@pytest.fixture
def chat_route(fake_openai, build):
    build.openai_route(fake_openai)
    fake_openai.reply("hello back")
    return fake_openai


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", [KM, FIN, AUD, NO_ROLE])
def test_roles_without_the_playground_are_refused_by_the_websocket(role):
    frame = run(first_frame(staff(role)))
    assert frame["type"] == "websocket.close" and frame["code"] == 4403
    assert not VirtualKey.objects.exists()  # no playground key made for them


@pytest.mark.django_db(transaction=True)
def test_a_playground_user_without_staff_status_is_refused_by_the_websocket():
    frame = run(first_frame(staff(PLAY, is_staff=False)))
    assert frame["type"] == "websocket.close" and frame["code"] == 4403


@pytest.mark.django_db(transaction=True)
def test_a_playground_user_streams_an_answer_and_may_not_test_routes_as_the_admin(chat_route):
    user = staff(PLAY)

    async def scenario():
        comm = await open_socket(user)
        hello = orjson.loads(await comm.receive_from(timeout=10))
        await comm.send_to(text_data=prompt())
        answer = await frames_until(comm, "done")
        await comm.send_to(text_data=prompt(id="b", as_admin=True))
        refused = await frames_until(comm, "error")
        await comm.disconnect()
        return hello, answer, refused[-1]

    hello, answer, refused = run(scenario())
    assert hello["type"] == "routes" and [r["name"] for r in hello["routes"]] == ["chat-default"]
    assert hello["key"] == VirtualKey.objects.get(playground_user=user).prefix
    assert "".join(f["text"] for f in answer if f["type"] == "delta") == "hello back"
    assert refused["code"] == "permission_denied" and refused["status"] == 403


@pytest.mark.django_db(transaction=True)
def test_a_route_editor_streams_a_route_test_but_not_the_playground(chat_route):
    """The admin's "Test this route" streams over the playground socket: a route editor
    may open it for that, without a playground key or the playground's routes."""
    user = staff(RE)

    async def scenario():
        comm = await open_socket(user)
        hello = orjson.loads(await comm.receive_from(timeout=10))
        await comm.send_to(text_data=prompt())
        refused = await frames_until(comm, "error")
        await comm.send_to(text_data=prompt(id="t", as_admin=True))
        tested = await frames_until(comm, "done")
        await comm.disconnect()
        return hello, refused[-1], tested

    hello, refused, tested = run(scenario())
    assert hello == {"type": "routes", "key": None, "usage_url": hello["usage_url"], "routes": []}
    assert refused["code"] == "permission_denied" and "streaming.use_playground" in refused["message"]
    assert "".join(f["text"] for f in tested if f["type"] == "delta") == "hello back"
    assert not VirtualKey.objects.filter(playground_user=user).exists()
    assert len(chat_route.requests) == 1  # the refused prompt never reached the provider
