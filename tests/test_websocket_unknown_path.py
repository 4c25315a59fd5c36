"""An unknown websocket path is a websocket close with a code that says so, never an
HTTP 500 from the router, under both servers the gateway runs on (uvicorn in the test
process, daphne as its own process)."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from channels.testing import WebsocketCommunicator

from gateway_project.asgi import application
from streaming.consumers import CLOSE_UNKNOWN_PATH
from tests.test_daphne_process import daphne  # noqa: F401  (the daphne process fixture)

def same_origin(url: str) -> str:
    """The Origin a browser on the gateway's own page sends (scheme http, host and port of `url`)."""
    return "http://" + url.split("://", 1)[1].split("/", 1)[0]


async def closed_with(url: str) -> tuple[int, str]:
    """Open a real websocket to url and return the close code and reason it ends with."""
    async with websockets.connect(url, origin=same_origin(url), open_timeout=10) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
    return closed.value.rcvd.code, closed.value.rcvd.reason


@pytest.mark.parametrize("path", ["/ws/nope/", "/ws/", "/", "/ws/ping/extra", "/v1/chat/completions"])
async def test_an_unknown_path_is_closed_under_uvicorn(gateway, path):
    url = gateway.replace("http://", "ws://") + path

    code, reason = await closed_with(url)

    assert code == CLOSE_UNKNOWN_PATH
    assert reason == "no websocket endpoint at this path"


@pytest.mark.slow
async def test_an_unknown_path_is_closed_under_daphne(daphne):  # noqa: F811
    code, _ = await closed_with(daphne.replace("http://", "ws://") + "/ws/nope/")

    assert code == CLOSE_UNKNOWN_PATH


async def test_the_known_path_still_answers_next_to_the_catch_all(gateway):
    async with websockets.connect(gateway.replace("http://", "ws://") + "/ws/ping/", origin=same_origin(gateway)) as ws:
        await ws.send('{"hello": "gateway"}')
        assert await asyncio.wait_for(ws.recv(), timeout=10) == '{"type": "pong", "echo": {"hello": "gateway"}}'


async def test_an_unknown_path_from_a_foreign_origin_is_still_refused():
    communicator = WebsocketCommunicator(application, "/ws/nope/", headers=[(b"host", b"localhost"), (b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected
