"""The ASGI application serves websockets (Channels) next to HTTP."""

from __future__ import annotations

from channels.testing import WebsocketCommunicator

from gateway_project.asgi import application


async def test_websocket_round_trip():
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=[(b"host", b"localhost"), (b"origin", b"http://localhost")])
    connected, _ = await communicator.connect()
    assert connected
    await communicator.send_json_to({"hello": "gateway"})
    assert await communicator.receive_json_from() == {"type": "pong", "echo": {"hello": "gateway"}}
    await communicator.disconnect()


async def test_websocket_from_a_foreign_origin_is_refused():
    communicator = WebsocketCommunicator(application, "/ws/ping/", headers=[(b"host", b"localhost"), (b"origin", b"http://evil.example")])
    connected, _ = await communicator.connect()
    assert not connected
