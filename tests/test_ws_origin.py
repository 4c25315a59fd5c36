"""Websocket origin checks (streaming/origin.py): the playground's socket is
authenticated by the session cookie, so a page of another origin must not open it with
the user's session (cross-site websocket hijacking). Raw websocket clients (the
`websockets` package) against the live gateway send good and bad Origin headers."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


async def handshake(gateway: str, path: str = "/ws/ping/", *, origin: str | None, headers: dict | None = None):
    """The HTTP status of the handshake (101 accepted) and the first frame, if any."""
    url = gateway.replace("http://", "ws://") + path
    try:
        async with websockets.connect(url, origin=origin, additional_headers=headers or {}, open_timeout=10) as ws:
            if path == "/ws/ping/":
                await ws.send('{"hello": 1}')
            return 101, json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    except websockets.InvalidStatus as refused:
        return refused.response.status_code, None


async def test_the_page_s_own_origin_is_accepted(gateway):
    status, frame = await handshake(gateway, origin=gateway)

    assert status == 101 and frame == {"type": "pong", "echo": {"hello": 1}}


@pytest.mark.parametrize("origin", [
    "http://evil.example",
    "http://127.0.0.1",          # the same host on another port is another origin
    "http://127.0.0.1:1",
    "http://localhost:{port}",   # another host name for the same server
    "null",                      # sandboxed frames, file: pages
    "http://127.0.0.1:{port}.evil.example",
    "not an origin",
    None,                        # no Origin at all: refused (browsers always send one)
])
async def test_foreign_or_missing_origins_are_refused(gateway, origin):
    port = gateway.rsplit(":", 1)[1]
    status, _ = await handshake(gateway, origin=origin.format(port=port) if origin else None)

    assert status == 403


async def test_configured_and_csrf_trusted_origins_are_accepted(gateway, settings):
    settings.GATEWAY_WS_ALLOWED_ORIGINS = ["http://tools.example:3000", "https://*.apps.example"]
    settings.CSRF_TRUSTED_ORIGINS = ["https://gateway.example.org", "not-an-origin"]

    for origin in ("http://tools.example:3000", "https://a.apps.example", "https://gateway.example.org"):
        assert (await handshake(gateway, origin=origin))[0] == 101, origin
    for origin in ("http://tools.example", "https://apps.example", "http://gateway.example.org"):
        assert (await handshake(gateway, origin=origin))[0] == 403, origin


async def test_a_host_outside_allowed_hosts_is_not_same_origin(gateway):
    status, _ = await handshake(gateway, origin="http://evil.example", headers={"host": "evil.example"})

    assert status == 403


async def test_the_forwarded_host_counts_only_when_django_is_told_to_trust_it(gateway, settings):
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "gw.example.org"]
    forwarded = {"x-forwarded-host": "gw.example.org"}

    assert (await handshake(gateway, origin="https://gw.example.org", headers=forwarded))[0] == 403
    settings.USE_X_FORWARDED_HOST = True
    assert (await handshake(gateway, origin="https://gw.example.org", headers=forwarded))[0] == 101


async def test_a_signed_in_session_cannot_be_used_from_another_origin(gateway, django_user_model):
    """The hijacking attempt itself: the victim's session cookie, sent by the browser
    on a page of another origin, is refused before the playground sees it."""
    def session_cookie() -> str:
        user = django_user_model.objects.create_user("victim", password="pw-victim-123", is_staff=True, is_superuser=True)
        client = Client()
        client.force_login(user)
        return f"sessionid={client.cookies['sessionid'].value}"

    cookie = {"cookie": await sync_to_async(session_cookie)()}

    status, frame = await handshake(gateway, "/ws/playground/", origin=gateway, headers=cookie)
    assert status == 101 and frame["type"] == "routes"  # same origin: the playground answers
    for origin in ("http://evil.example", "http://127.0.0.1:1", None):
        status, frame = await handshake(gateway, "/ws/playground/", origin=origin, headers=cookie)
        assert (status, frame) == (403, None), origin
