"""Websocket consumers."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer

# Application close codes (4000-4999 are the application's, RFC 6455 7.4.2).
CLOSE_UNKNOWN_PATH = 4404


class PingConsumer(AsyncJsonWebsocketConsumer):
    """Echo probe proving the websocket transport works end to end."""

    async def receive_json(self, content, **kwargs):
        await self.send_json({"type": "pong", "echo": content})


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """Every path no other route matches: the handshake is accepted and the socket is
    closed at once with CLOSE_UNKNOWN_PATH, so a client sees a websocket close that
    says why. Without it Channels' URLRouter raises and the server answers HTTP 500."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_UNKNOWN_PATH, reason="no websocket endpoint at this path")
